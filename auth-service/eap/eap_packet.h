// EAP (RFC 3748 §4) and EAP-MSCHAPv2 (draft-kamath-pppext-eap-mschapv2-02,
// [MS-CHAP] §2.2) packet parsing and building.
//
// Every parser is bounds-checked and rejects bad input with kInvalidArgument
// carrying an EapError (see GetEapError), never by reading past the buffer.
// Parsed packets are views into the caller's buffer.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/crypto/crypto.h"

namespace vpn::auth::eap {

using crypto::ByteSpan;
using crypto::Bytes;

enum class Code : uint8_t {
  kRequest = 1,
  kResponse = 2,
  kSuccess = 3,
  kFailure = 4,
};

// EAP method types (IANA "EAP Method Types").
namespace type {
inline constexpr uint8_t kIdentity = 1;
inline constexpr uint8_t kNotification = 2;
inline constexpr uint8_t kNak = 3;
inline constexpr uint8_t kMsChapV2 = 26;
inline constexpr uint8_t kExpanded = 254;
}  // namespace type

// MS-CHAPv2 OpCodes (RFC 2759 §3-7 as carried in EAP).
namespace opcode {
inline constexpr uint8_t kChallenge = 1;
inline constexpr uint8_t kResponse = 2;
inline constexpr uint8_t kSuccess = 3;
inline constexpr uint8_t kFailure = 4;
inline constexpr uint8_t kChangePassword = 7;
}  // namespace opcode

inline constexpr size_t kEapHeaderSize = 4;      // Code, Identifier, Length
inline constexpr size_t kChallengeSize = 16;     // authenticator/peer challenge
inline constexpr size_t kNtResponseSize = 24;
inline constexpr size_t kResponseValueSize = 49;  // RFC 2759 §4
inline constexpr size_t kMaxNameSize = 256;       // user or server name
inline constexpr size_t kMaxMessageSize = 1024;   // S=/E= message text

// The typed reason a parser rejected its input.
enum class EapError {
  kTruncated,          // shorter than a header or than its Length field
  kBadLength,          // Length field below the minimum for the code
  kUnknownCode,        // Code outside 1..4
  kMissingType,        // Request/Response without a Type octet
  kUnexpectedType,     // not the method the parser handles
  kUnexpectedCode,     // e.g. a Request where a Response is required
  kBadOpCode,          // unknown or unsupported MS-CHAPv2 OpCode
  kBadMsLength,        // MS-Length disagrees with the EAP Length
  kBadValueSize,       // Value-Size is not 16 (challenge) or 49 (response)
  kNameTooLong,        // more than kMaxNameSize bytes
  kMessageTooLong,     // more than kMaxMessageSize bytes
};
absl::string_view EapErrorName(EapError error);

// The EapError carried by a parser's status, if any.
std::optional<EapError> GetEapError(const absl::Status& status);
absl::Status MakeEapError(EapError error, absl::string_view detail);

// One EAP packet. For Request/Response, `type` is set and `type_data` is
// what follows the Type octet; Success/Failure carry neither. Octets beyond
// the Length field are ignored as link-layer padding (RFC 3748 §4.1).
struct Packet {
  Code code = Code::kRequest;
  uint8_t identifier = 0;
  uint8_t type = 0;
  ByteSpan type_data;
  ByteSpan bytes;  // the whole packet, Length octets
};

absl::StatusOr<Packet> ParsePacket(ByteSpan bytes);

// Builders. Requests and responses get their Length from the data.
Bytes BuildRequest(uint8_t identifier, uint8_t type, ByteSpan type_data);
Bytes BuildResponse(uint8_t identifier, uint8_t type, ByteSpan type_data);
Bytes BuildSuccess(uint8_t identifier);
Bytes BuildFailure(uint8_t identifier);
Bytes BuildIdentityRequest(uint8_t identifier);

// ---- EAP-MSCHAPv2 -----------------------------------------------------------
// Type-Data layout: OpCode, MS-CHAPv2-ID, MS-Length (2, = EAP Length - 5),
// then the OpCode's data. The peer's Success and Failure responses are the
// OpCode alone.

// Challenge request: Value-Size 16, the challenge, the server name.
struct Challenge {
  uint8_t ms_chapv2_id = 0;
  ByteSpan challenge;  // 16 bytes
  absl::string_view server_name;
};

// Response: Value-Size 49 = Peer-Challenge 16, Reserved 8, NT-Response 24,
// Flags 1; then the user name (possibly "DOMAIN\user").
struct Response {
  uint8_t ms_chapv2_id = 0;
  ByteSpan peer_challenge;  // 16 bytes
  ByteSpan nt_response;     // 24 bytes
  uint8_t flags = 0;
  absl::string_view name;
};

// Success or Failure request: a text message ("S=... M=...", "E=... R=...").
struct StatusRequest {
  uint8_t opcode = 0;
  uint8_t ms_chapv2_id = 0;
  absl::string_view message;
};

// A peer's EAP-MSCHAPv2 response packet, by OpCode.
struct PeerMessage {
  uint8_t opcode = 0;
  Response response;  // opcode == kResponse only
};

// Parses the Type-Data of an EAP-Response of type 26 (server side).
absl::StatusOr<PeerMessage> ParsePeerMessage(const Packet& packet);
// Parses the Type-Data of an EAP-Request of type 26 (peer side, tests).
absl::StatusOr<Challenge> ParseChallenge(const Packet& packet);
absl::StatusOr<StatusRequest> ParseStatusRequest(const Packet& packet);

Bytes BuildChallengeRequest(uint8_t identifier, uint8_t ms_chapv2_id,
                            ByteSpan challenge, absl::string_view server_name);
// opcode is kSuccess or kFailure.
Bytes BuildStatusRequest(uint8_t identifier, uint8_t opcode,
                         uint8_t ms_chapv2_id, absl::string_view message);
Bytes BuildResponsePacket(uint8_t identifier, uint8_t ms_chapv2_id,
                          ByteSpan peer_challenge, ByteSpan nt_response,
                          absl::string_view name);
// The peer's one-octet Success or Failure response.
Bytes BuildPeerStatus(uint8_t identifier, uint8_t opcode);

}  // namespace vpn::auth::eap
