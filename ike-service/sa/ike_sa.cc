#include "ike-service/sa/ike_sa.h"

#include "common/store/sa_keys.h"

namespace vpn::ike {

std::string IkeSa::record_key() const {
  return store::IkeSaKey(spi_i, spi_r);
}

}  // namespace vpn::ike
