// EAP conversations (RFC 3748) on the authenticator side, one per IKE_AUTH:
// EAP-Request/Identity, then one Method (EAP-MSCHAPv2), then EAP-Success
// with the MSK or EAP-Failure.
//
// The manager enforces the EAP identifier sequence (each response must
// carry the identifier of the last request), answers anything malformed or
// out of sequence with EAP-Failure (never an error), and answers an exact
// retransmission of any earlier response with the identical reply, without
// changing state (so duplicated IKE messages are harmless). Sessions are
// bounded in number and expire after `ttl` without progress; finished ones
// are kept for `linger` so a retransmitted last round gets the same answer.
// Thread-safe; rounds of one session are serialized.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "auth-service/eap/eap_method.h"
#include "common/crypto/crypto.h"
#include "common/log/log.h"

namespace vpn::auth::eap {

struct Result {
  enum class Outcome { kContinue, kSuccess, kFailure };
  Outcome outcome = Outcome::kFailure;
  std::string session;
  Bytes message;            // EAP packet for the peer
  crypto::SecretBytes msk;  // kSuccess
  std::string identity;     // kSuccess: authenticated user name

  Result Copy() const;
};

struct SessionOptions {
  absl::Duration ttl = absl::Seconds(60);     // idle time before expiry
  absl::Duration linger = absl::Seconds(10);  // finished sessions kept
  size_t max_sessions = 10000;
  // Sessions held for one client address (ClientAddressKey: an IPv6 /64),
  // unfinished or lingering, so one address cannot take the whole table; as
  // ike-service's per-source half-open limit. Sessions without an address
  // are not counted.
  size_t max_sessions_per_address = 128;
  std::function<absl::Time()> clock;  // test hook; absl::Now when unset
};

// Metric hooks (optional).
struct SessionObserver {
  // Per finished session: "success", "failure" (authentication failed),
  // "protocol_error" (malformed or out-of-sequence packet), "error" (e.g.
  // the user store failed), "expired" (abandoned); per round for a session
  // that does not exist (any more): "unknown_session".
  std::function<void(absl::string_view result)> on_result;
  std::function<void(size_t active)> on_active;  // unfinished sessions
};

class SessionManager {
 public:
  SessionManager(const crypto::Provider& provider, MethodFactory factory,
                 SessionOptions options, SessionObserver observer = {});
  ~SessionManager();

  // A new session and its EAP-Request/Identity (kContinue). `peer_address`
  // (4 or 16 bytes, or empty when unknown) goes to the method (PeerInfo).
  // kResourceExhausted when max_sessions are in use, or
  // max_sessions_per_address for `peer_address`.
  absl::StatusOr<Result> Start(ByteSpan peer_identity,
                               ByteSpan peer_address = {});
  // The peer's next EAP response. Unknown or expired sessions and bad
  // packets give kFailure with an EAP-Failure packet.
  Result Round(absl::string_view session, ByteSpan message);

  // Drops expired sessions; returns the number of unfinished ones.
  size_t Sweep();
  size_t active_sessions() const;
  size_t stored_sessions() const;

 private:
  struct Session;

  absl::Time Now() const;
  // Process and Finish run with session.mu held (not annotated: Session is
  // incomplete here).
  std::shared_ptr<Session> Find(absl::string_view id);
  Result Process(Session& session, ByteSpan message, std::string* result_label,
                 std::string* reason);
  Result Finish(Session& session, Result::Outcome outcome, uint8_t identifier,
                const std::string& label, std::string* result_label);
  void MarkProgress(Session& session, bool done);
  // Takes `session` out of sessions_' accounting (the caller erases it).
  void ForgetLocked(Session& session) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MaybeSweep();
  void Report(absl::string_view result);

  const crypto::Provider& provider_;
  const MethodFactory factory_;
  const SessionOptions options_;
  const SessionObserver observer_;
  const log::Logger log_{"auth-service"};

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<Session>> sessions_
      ABSL_GUARDED_BY(mu_);
  // Stored sessions by client address (Session::address_key).
  absl::flat_hash_map<std::string, size_t> per_address_ ABSL_GUARDED_BY(mu_);
  size_t active_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time last_sweep_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

// Printable ASCII for logs: other bytes become '?', at most 64 characters.
std::string Printable(absl::string_view text);

// A 4- or 16-byte IP address as text; "unknown" when empty, else hex.
std::string AddressForLog(ByteSpan address);

// The key a client address is counted under (sessions held, failed
// attempts): 4 bytes for IPv4 (and IPv4-mapped IPv6), the /64 for other
// IPv6, since one client holds a whole /64; empty (not counted) otherwise.
std::string ClientAddressKey(ByteSpan address);

}  // namespace vpn::auth::eap
