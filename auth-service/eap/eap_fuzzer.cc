// Fuzz target for the EAP and EAP-MSCHAPv2 parsers and the server's session
// state machine: the input is parsed every way, then fed to a session as the
// answer to EAP-Identity and as the answer to the MSCHAPv2 Challenge.
#include <cstddef>
#include <cstdint>
#include <memory>

#include "auth-service/eap/eap_packet.h"
#include "auth-service/eap/eap_session.h"
#include "auth-service/eap/mschapv2_server.h"
#include "common/crypto/crypto.h"
#include "common/log/log.h"

namespace {

using namespace vpn::auth::eap;  // NOLINT

class OneUser : public CredentialSource {
 public:
  absl::StatusOr<vpn::crypto::SecretBytes> NtHash(
      absl::string_view user) override {
    if (user != "user") return absl::NotFoundError("unknown");
    return vpn::crypto::SecretBytes(Bytes(16, 0x42));
  }
};

absl::Time& Clock() {
  static absl::Time now = absl::UnixEpoch();
  return now;
}

SessionManager& Manager() {
  vpn::log::SetMinimumLevel(vpn::log::Level::kError);
  static OneUser* users = new OneUser();
  static SessionOptions* options = [] {
    auto* o = new SessionOptions();
    o->clock = [] { return Clock(); };  // advanced per input, so sweeps work
    return o;
  }();
  static SessionManager* manager = new SessionManager(
      vpn::crypto::GetProvider(),
      [](const PeerInfo&) {
        MsChapV2Options options;
        options.retries = 1;
        return std::make_unique<MsChapV2Server>(vpn::crypto::GetProvider(),
                                                *users, options);
      },
      *options);
  return *manager;
}

// Rewrites the identifier so the input reaches the state machine's checks.
Bytes WithIdentifier(vpn::crypto::ByteSpan input, uint8_t identifier) {
  Bytes bytes(input.begin(), input.end());
  if (bytes.size() >= 2) bytes[1] = identifier;
  return bytes;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const vpn::crypto::ByteSpan input(data, size);
  if (auto packet = ParsePacket(input); packet.ok()) {
    (void)ParsePeerMessage(*packet);
    (void)ParseChallenge(*packet);
    (void)ParseStatusRequest(*packet);
  }

  SessionManager& manager = Manager();
  // As the answer to EAP-Identity.
  if (auto start = manager.Start({}); start.ok()) {
    (void)manager.Round(start->session,
                        WithIdentifier(input, start->message[1]));
  }
  // As the answer to the Challenge.
  if (auto start = manager.Start({}); start.ok()) {
    const uint8_t id = start->message[1];
    const uint8_t name[] = {'u', 's', 'e', 'r'};
    Result challenge =
        manager.Round(start->session, BuildResponse(id, type::kIdentity, name));
    if (challenge.outcome == Result::Outcome::kContinue) {
      (void)manager.Round(challenge.session,
                          WithIdentifier(input, challenge.message[1]));
    }
  }
  Clock() += absl::Minutes(2);
  manager.Sweep();
  return 0;
}
