#include "ike-service/sa/ike_sa.h"

#include "absl/strings/str_format.h"

namespace vpn::ike {

std::string IkeSa::record_key() const {
  return absl::StrFormat("ike/%016x-%016x", spi_i, spi_r);
}

}  // namespace vpn::ike
