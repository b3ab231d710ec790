#include "auth-service/eap/eap_session.h"

#include <arpa/inet.h>

#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace vpn::auth::eap {

// Fields above `mu` are the manager's (guarded by SessionManager::mu_); the
// rest belong to the session's own mutex.
struct SessionManager::Session {
  std::string id;
  absl::Time deadline;
  bool done = false;     // finished (success or failure)
  bool removed = false;  // swept from the map
  std::string address_key;  // the client's address bytes; set before it is stored

  absl::Mutex mu;
  enum class Phase { kIdentity, kMethod, kDone };
  Phase phase ABSL_GUARDED_BY(mu) = Phase::kIdentity;
  uint8_t last_identifier ABSL_GUARDED_BY(mu) = 0;  // of our last request
  // Every response processed so far with the reply it got, so a duplicate
  // (even of an earlier round) gets the same reply and changes nothing.
  std::vector<std::pair<Bytes, Result>> history ABSL_GUARDED_BY(mu);
  std::unique_ptr<Method> method ABSL_GUARDED_BY(mu);
  std::string peer ABSL_GUARDED_BY(mu);      // IDi, for logs
  Bytes address ABSL_GUARDED_BY(mu);         // the client's IP address
  std::string identity ABSL_GUARDED_BY(mu);  // EAP-Identity, for logs
};

namespace {

constexpr size_t kMaxIdentitySize = 256;
constexpr size_t kMaxHistory = 16;  // rounds remembered per session

absl::string_view AsText(ByteSpan bytes) {
  return absl::string_view(reinterpret_cast<const char*>(bytes.data()),
                           bytes.size());
}

// IDi data for logs: text as is; 4 or 16 binary bytes as an IP address
// (ID_IPV4_ADDR / ID_IPV6_ADDR, what Windows sends); else hex.
std::string PeerForLog(ByteSpan id) {
  const absl::string_view text = AsText(id);
  if (Printable(text) == text) return std::string(text);
  char buf[INET6_ADDRSTRLEN] = {};
  if (id.size() == 4 && inet_ntop(AF_INET, id.data(), buf, sizeof(buf))) {
    return buf;
  }
  if (id.size() == 16 && inet_ntop(AF_INET6, id.data(), buf, sizeof(buf))) {
    return buf;
  }
  return absl::BytesToHexString(text.substr(0, 32));
}

}  // namespace

std::string ClientAddressKey(ByteSpan address) {
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0,
                                          0, 0, 0, 0, 0xff, 0xff};
  if (address.size() == 4) {
    return std::string(address.begin(), address.end());
  }
  if (address.size() != 16) return "";
  if (address.subspan(0, 12) == ByteSpan(kMapped)) {
    return std::string(address.begin() + 12, address.end());
  }
  return std::string(address.begin(), address.begin() + 8);  // the /64
}

std::string AddressForLog(ByteSpan address) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (address.empty()) return "unknown";
  if (address.size() == 4 &&
      inet_ntop(AF_INET, address.data(), buf, sizeof(buf))) {
    return buf;
  }
  if (address.size() == 16 &&
      inet_ntop(AF_INET6, address.data(), buf, sizeof(buf))) {
    return buf;
  }
  return absl::BytesToHexString(AsText(address.subspan(0, 16)));
}

std::string Printable(absl::string_view text) {
  std::string out;
  for (char c : text.substr(0, 64)) {
    out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  }
  return out;
}

Result Result::Copy() const {
  Result copy;
  copy.outcome = outcome;
  copy.session = session;
  copy.message = message;
  copy.msk = msk.Copy();
  copy.identity = identity;
  return copy;
}

SessionManager::SessionManager(const crypto::Provider& provider,
                               MethodFactory factory, SessionOptions options,
                               SessionObserver observer)
    : provider_(provider),
      factory_(std::move(factory)),
      options_(std::move(options)),
      observer_(std::move(observer)) {}

SessionManager::~SessionManager() = default;

absl::Time SessionManager::Now() const {
  return options_.clock ? options_.clock() : absl::Now();
}

void SessionManager::Report(absl::string_view result) {
  if (observer_.on_result) observer_.on_result(result);
}

absl::StatusOr<Result> SessionManager::Start(ByteSpan peer_identity,
                                             ByteSpan peer_address) {
  MaybeSweep();
  auto session = std::make_shared<Session>();
  uint8_t random[17];
  provider_.RandomBytes(absl::MakeSpan(random));
  session->id = absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(random), 16));
  const uint8_t identifier = random[16];

  Result result;
  result.outcome = Result::Outcome::kContinue;
  result.session = session->id;
  result.message = BuildIdentityRequest(identifier);
  {
    absl::MutexLock session_lock(&session->mu);
    session->last_identifier = identifier;
    session->peer = PeerForLog(peer_identity);
    session->address.assign(peer_address.begin(), peer_address.end());
  }
  session->address_key = ClientAddressKey(peer_address);
  {
    absl::MutexLock lock(&mu_);
    if (sessions_.size() >= options_.max_sessions) {
      log_.Warning("EAP session limit reached",
                   {{"max_sessions", options_.max_sessions}});
      return absl::ResourceExhaustedError(
          absl::StrCat("too many EAP sessions (", options_.max_sessions, ")"));
    }
    if (!session->address_key.empty()) {
      size_t& held = per_address_[session->address_key];
      if (held >= options_.max_sessions_per_address) {
        // Per packet an attacker picks the volume: debug level only.
        log_.Debug("EAP session limit of one address reached",
                   {{"address", AddressForLog(peer_address)},
                    {"max_sessions_per_address", options_.max_sessions_per_address}});
        return absl::ResourceExhaustedError(
            absl::StrCat("too many EAP sessions from one address (",
                         options_.max_sessions_per_address, ")"));
      }
      ++held;
    }
    session->deadline = Now() + options_.ttl;
    sessions_.emplace(session->id, session);
    ++active_;
    if (observer_.on_active) observer_.on_active(active_);
  }
  return result;
}

std::shared_ptr<SessionManager::Session> SessionManager::Find(
    absl::string_view id) {
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return nullptr;
  std::shared_ptr<Session> session = it->second;
  if (session->deadline <= Now()) {
    if (!session->done) {
      --active_;
      Report("expired");
    }
    ForgetLocked(*session);
    sessions_.erase(it);
    if (observer_.on_active) observer_.on_active(active_);
    return nullptr;
  }
  return session;
}

void SessionManager::ForgetLocked(Session& session) {
  session.removed = true;
  if (session.address_key.empty()) return;
  auto it = per_address_.find(session.address_key);
  if (it != per_address_.end() && --it->second == 0) per_address_.erase(it);
}

void SessionManager::MarkProgress(Session& session, bool done) {
  absl::MutexLock lock(&mu_);
  if (session.removed) return;
  if (done && !session.done) {
    session.done = true;
    --active_;
    if (observer_.on_active) observer_.on_active(active_);
  }
  session.deadline = Now() + (session.done ? options_.linger : options_.ttl);
}

Result SessionManager::Round(absl::string_view id, ByteSpan message) {
  MaybeSweep();
  std::shared_ptr<Session> session = Find(id);
  if (session == nullptr) {
    // RFC 3748 §4.2: Success/Failure echo the response's identifier.
    const uint8_t identifier = message.size() >= 2 ? message[1] : 0;
    log_.Info("EAP round for an unknown or expired session",
              {{"session", Printable(id.substr(0, 8))}});
    Report("unknown_session");
    Result result;
    result.outcome = Result::Outcome::kFailure;
    result.session = std::string(id.substr(0, 64));
    result.message = BuildFailure(identifier);
    return result;
  }

  absl::MutexLock session_lock(&session->mu);
  // A retransmitted response gets the reply it got before.
  for (const auto& [response, reply] : session->history) {
    if (ByteSpan(response) == message) return reply.Copy();
  }
  if (session->phase == Session::Phase::kDone) {
    // Something new after the end: refused, and the outcome stands.
    Result result;
    result.outcome = Result::Outcome::kFailure;
    result.session = session->id;
    result.message = BuildFailure(session->last_identifier);
    return result;
  }

  std::string label;
  std::string reason;
  Result result = Process(*session, message, &label, &reason);
  const bool done = result.outcome != Result::Outcome::kContinue;
  if (session->history.size() >= kMaxHistory) {
    session->history.erase(session->history.begin());
  }
  session->history.emplace_back(Bytes(message.begin(), message.end()),
                                result.Copy());
  if (done) {
    session->phase = Session::Phase::kDone;
    session->method.reset();  // wipes the method's secrets
  }
  MarkProgress(*session, done);

  if (done) {
    Report(label);
    if (result.outcome == Result::Outcome::kSuccess) {
      log_.Info("EAP authentication succeeded",
                {{"session", session->id.substr(0, 8)},
                 {"peer", session->peer},
                 {"address", AddressForLog(session->address)},
                 {"user", Printable(result.identity)}});
    } else {
      log_.Info("EAP authentication failed",
                {{"session", session->id.substr(0, 8)},
                 {"peer", session->peer},
                 {"address", AddressForLog(session->address)},
                 {"eap_identity", session->identity},
                 {"result", label},
                 {"reason", reason}});
    }
  } else if (!reason.empty()) {
    log_.Info("EAP-MSCHAPv2 attempt failed; retry offered",
              {{"session", session->id.substr(0, 8)},
               {"peer", session->peer},
               {"address", AddressForLog(session->address)},
               {"eap_identity", session->identity},
               {"reason", reason}});
  }
  return result;
}

Result SessionManager::Finish(Session& session, Result::Outcome outcome,
                              uint8_t identifier, const std::string& label,
                              std::string* result_label) {
  *result_label = label;
  Result result;
  result.outcome = outcome;
  result.session = session.id;
  result.message = outcome == Result::Outcome::kSuccess
                       ? BuildSuccess(identifier)
                       : BuildFailure(identifier);
  return result;
}

Result SessionManager::Process(Session& session, ByteSpan message,
                               std::string* result_label, std::string* reason) {
  const uint8_t expected = session.last_identifier;
  auto protocol_error = [&](std::string why) {
    *reason = std::move(why);
    return Finish(session, Result::Outcome::kFailure, expected,
                  "protocol_error", result_label);
  };

  absl::StatusOr<Packet> packet = ParsePacket(message);
  if (!packet.ok()) return protocol_error(std::string(packet.status().message()));
  if (packet->code != Code::kResponse) {
    return protocol_error(
        absl::StrCat("expected a Response, got code ",
                     static_cast<int>(packet->code)));
  }
  if (packet->identifier != expected) {
    return protocol_error(absl::StrCat("identifier ", packet->identifier,
                                       ", expected ", expected));
  }
  const uint8_t next = static_cast<uint8_t>(expected + 1);

  if (session.phase == Session::Phase::kIdentity) {
    if (packet->type != type::kIdentity) {
      return protocol_error(absl::StrCat("type ", packet->type,
                                         " in answer to EAP-Identity"));
    }
    if (packet->type_data.size() > kMaxIdentitySize) {
      return protocol_error("EAP identity longer than 256 bytes");
    }
    const absl::string_view identity = AsText(packet->type_data);
    session.identity = Printable(identity);
    session.method = factory_(PeerInfo{identity, session.address});
    if (session.method == nullptr) {
      *reason = "no EAP method available";
      return Finish(session, Result::Outcome::kFailure, expected, "failure",
                    result_label);
    }
    absl::StatusOr<Bytes> request = session.method->Initiate(next);
    if (!request.ok()) {
      *reason = std::string(request.status().message());
      return Finish(session, Result::Outcome::kFailure, expected, "failure",
                    result_label);
    }
    session.phase = Session::Phase::kMethod;
    session.last_identifier = next;
    Result result;
    result.outcome = Result::Outcome::kContinue;
    result.session = session.id;
    result.message = *std::move(request);
    return result;
  }

  // Phase::kMethod.
  if (packet->type == type::kNak || packet->type == type::kExpanded) {
    *reason = "peer refused the EAP method (Nak)";
    return Finish(session, Result::Outcome::kFailure, packet->identifier,
                  "failure", result_label);
  }
  if (packet->type != session.method->type()) {
    return protocol_error(absl::StrCat("type ", packet->type, ", expected ",
                                       session.method->type()));
  }
  absl::StatusOr<Method::Step> step = session.method->Process(*packet, next);
  if (!step.ok()) {
    if (GetEapError(step.status()).has_value()) {
      return protocol_error(std::string(step.status().message()));
    }
    *reason = std::string(step.status().message());
    return Finish(session, Result::Outcome::kFailure, packet->identifier,
                  "error", result_label);
  }
  switch (step->kind) {
    case Method::Step::Kind::kContinue: {
      *reason = step->reason;
      session.last_identifier = next;
      Result result;
      result.outcome = Result::Outcome::kContinue;
      result.session = session.id;
      result.message = std::move(step->request);
      return result;
    }
    case Method::Step::Kind::kSuccess: {
      Result result = Finish(session, Result::Outcome::kSuccess,
                             packet->identifier, "success", result_label);
      result.msk = std::move(step->msk);
      result.identity = std::move(step->identity);
      return result;
    }
    case Method::Step::Kind::kFailure:
      *reason = step->reason;
      return Finish(session, Result::Outcome::kFailure, packet->identifier,
                    "failure", result_label);
  }
  return protocol_error("unreachable");
}

void SessionManager::MaybeSweep() {
  {
    absl::MutexLock lock(&mu_);
    if (Now() - last_sweep_ < absl::Seconds(1)) return;
  }
  Sweep();
}

size_t SessionManager::Sweep() {
  absl::MutexLock lock(&mu_);
  const absl::Time now = Now();
  last_sweep_ = now;
  size_t expired = 0;
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    Session& session = *it->second;
    if (session.deadline <= now) {
      if (!session.done) {
        --active_;
        ++expired;
      }
      ForgetLocked(session);
      sessions_.erase(it++);
    } else {
      ++it;
    }
  }
  if (expired > 0) {
    log_.Info("EAP sessions expired", {{"count", expired}});
    for (size_t i = 0; i < expired; ++i) Report("expired");
  }
  if (observer_.on_active) observer_.on_active(active_);
  return active_;
}

size_t SessionManager::active_sessions() const {
  absl::MutexLock lock(&mu_);
  return active_;
}

size_t SessionManager::stored_sessions() const {
  absl::MutexLock lock(&mu_);
  return sessions_.size();
}

}  // namespace vpn::auth::eap
