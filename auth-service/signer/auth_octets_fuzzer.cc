// Fuzz target for the Sign request check: the first two bytes choose the
// nonce and MAC lengths, the rest is the IKE_SA_INIT response.
#include <cstddef>
#include <cstdint>
#include <string>

#include "auth-service/signer/auth_octets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const std::string nonce(data[0] % 300, 'n');
  const std::string mac(data[1] % 80, 'm');
  const std::string message(reinterpret_cast<const char*>(data + 2), size - 2);
  (void)vpn::auth::CheckResponderSignedOctets(message, nonce, mac);
  return 0;
}
