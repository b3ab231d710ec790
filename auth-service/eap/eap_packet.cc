#include "auth-service/eap/eap_packet.h"

#include <algorithm>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"

namespace vpn::auth::eap {
namespace {

constexpr char kErrorPayloadUrl[] = "type.vpn/auth.eap.EapError";
constexpr size_t kMsChapHeaderSize = 4;  // OpCode, MS-CHAPv2-ID, MS-Length

absl::string_view AsText(ByteSpan bytes) {
  return absl::string_view(reinterpret_cast<const char*>(bytes.data()),
                           bytes.size());
}

void PutU16(Bytes* out, size_t offset, size_t value) {
  (*out)[offset] = static_cast<uint8_t>(value >> 8);
  (*out)[offset + 1] = static_cast<uint8_t>(value);
}

uint16_t GetU16(ByteSpan bytes, size_t offset) {
  return static_cast<uint16_t>(bytes[offset] << 8 | bytes[offset + 1]);
}

Bytes BuildWithType(Code code, uint8_t identifier, uint8_t type,
                    ByteSpan type_data) {
  Bytes out(kEapHeaderSize + 1);
  out[0] = static_cast<uint8_t>(code);
  out[1] = identifier;
  out[4] = type;
  out.insert(out.end(), type_data.begin(), type_data.end());
  PutU16(&out, 2, out.size());
  return out;
}

// Builds EAP type 26 Type-Data: OpCode, MS-CHAPv2-ID, MS-Length, body.
// MS-Length counts from the OpCode: EAP Length - 5.
Bytes MsChapTypeData(uint8_t op, uint8_t ms_chapv2_id, ByteSpan body) {
  Bytes data(kMsChapHeaderSize);
  data[0] = op;
  data[1] = ms_chapv2_id;
  data.insert(data.end(), body.begin(), body.end());
  PutU16(&data, 2, data.size());
  return data;
}

// Checks the MS-CHAPv2 header of a full (non-short) packet.
absl::Status CheckMsChapHeader(const Packet& packet) {
  if (packet.type_data.size() < kMsChapHeaderSize) {
    return MakeEapError(EapError::kTruncated, "MS-CHAPv2 header");
  }
  const size_t ms_length = GetU16(packet.type_data, 2);
  if (ms_length != packet.type_data.size()) {
    return MakeEapError(
        EapError::kBadMsLength,
        absl::StrCat("MS-Length ", ms_length, ", expected ",
                     packet.type_data.size()));
  }
  return absl::OkStatus();
}

absl::Status RequireMsChap(const Packet& packet, Code code) {
  if (packet.code != code) {
    return MakeEapError(EapError::kUnexpectedCode,
                        absl::StrCat("code ", static_cast<int>(packet.code)));
  }
  if (packet.type != type::kMsChapV2) {
    return MakeEapError(EapError::kUnexpectedType,
                        absl::StrCat("type ", packet.type));
  }
  if (packet.type_data.empty()) {
    return MakeEapError(EapError::kTruncated, "no MS-CHAPv2 OpCode");
  }
  return absl::OkStatus();
}

}  // namespace

absl::string_view EapErrorName(EapError error) {
  switch (error) {
    case EapError::kTruncated:
      return "truncated";
    case EapError::kBadLength:
      return "bad length";
    case EapError::kUnknownCode:
      return "unknown code";
    case EapError::kMissingType:
      return "missing type";
    case EapError::kUnexpectedType:
      return "unexpected type";
    case EapError::kUnexpectedCode:
      return "unexpected code";
    case EapError::kBadOpCode:
      return "bad MS-CHAPv2 opcode";
    case EapError::kBadMsLength:
      return "bad MS-Length";
    case EapError::kBadValueSize:
      return "bad Value-Size";
    case EapError::kNameTooLong:
      return "name too long";
    case EapError::kMessageTooLong:
      return "message too long";
  }
  return "unknown";
}

absl::Status MakeEapError(EapError error, absl::string_view detail) {
  absl::Status status = absl::InvalidArgumentError(
      absl::StrCat("EAP: ", EapErrorName(error), ": ", detail));
  status.SetPayload(kErrorPayloadUrl,
                    absl::Cord(std::string(1, static_cast<char>(error))));
  return status;
}

std::optional<EapError> GetEapError(const absl::Status& status) {
  absl::optional<absl::Cord> payload = status.GetPayload(kErrorPayloadUrl);
  if (!payload.has_value() || payload->size() != 1) return std::nullopt;
  const std::string value(*payload);
  return static_cast<EapError>(static_cast<uint8_t>(value[0]));
}

absl::StatusOr<Packet> ParsePacket(ByteSpan bytes) {
  if (bytes.size() < kEapHeaderSize) {
    return MakeEapError(EapError::kTruncated,
                        absl::StrCat(bytes.size(), " bytes"));
  }
  Packet packet;
  const uint8_t code = bytes[0];
  if (code < 1 || code > 4) {
    return MakeEapError(EapError::kUnknownCode, absl::StrCat("code ", code));
  }
  packet.code = static_cast<Code>(code);
  packet.identifier = bytes[1];
  const size_t length = GetU16(bytes, 2);
  if (length < kEapHeaderSize) {
    return MakeEapError(EapError::kBadLength, absl::StrCat("Length ", length));
  }
  if (length > bytes.size()) {
    return MakeEapError(EapError::kTruncated,
                        absl::StrCat("Length ", length, " but ", bytes.size(),
                                     " bytes"));
  }
  packet.bytes = bytes.first(length);
  if (packet.code == Code::kRequest || packet.code == Code::kResponse) {
    if (length < kEapHeaderSize + 1) {
      return MakeEapError(EapError::kMissingType, "no Type octet");
    }
    packet.type = bytes[4];
    packet.type_data = packet.bytes.subspan(kEapHeaderSize + 1);
  } else if (length != kEapHeaderSize) {
    // RFC 3748 §4.2: Success and Failure are exactly four octets.
    return MakeEapError(EapError::kBadLength,
                        absl::StrCat("Success/Failure with Length ", length));
  }
  return packet;
}

Bytes BuildRequest(uint8_t identifier, uint8_t type, ByteSpan type_data) {
  return BuildWithType(Code::kRequest, identifier, type, type_data);
}

Bytes BuildResponse(uint8_t identifier, uint8_t type, ByteSpan type_data) {
  return BuildWithType(Code::kResponse, identifier, type, type_data);
}

Bytes BuildSuccess(uint8_t identifier) {
  return {static_cast<uint8_t>(Code::kSuccess), identifier, 0, 4};
}

Bytes BuildFailure(uint8_t identifier) {
  return {static_cast<uint8_t>(Code::kFailure), identifier, 0, 4};
}

Bytes BuildIdentityRequest(uint8_t identifier) {
  return BuildRequest(identifier, type::kIdentity, {});
}

absl::StatusOr<PeerMessage> ParsePeerMessage(const Packet& packet) {
  if (absl::Status s = RequireMsChap(packet, Code::kResponse); !s.ok()) {
    return s;
  }
  PeerMessage message;
  message.opcode = packet.type_data[0];
  switch (message.opcode) {
    case opcode::kSuccess:
    case opcode::kFailure:
      // The OpCode alone ([MS-CHAP] §2.2); anything after it is ignored.
      return message;
    case opcode::kResponse:
      break;
    default:
      return MakeEapError(EapError::kBadOpCode,
                          absl::StrCat("opcode ", message.opcode,
                                       " in a response"));
  }
  if (absl::Status s = CheckMsChapHeader(packet); !s.ok()) return s;
  const ByteSpan data = packet.type_data;
  constexpr size_t kValueOffset = kMsChapHeaderSize + 1;
  if (data.size() < kValueOffset + kResponseValueSize) {
    return MakeEapError(EapError::kTruncated, "MS-CHAPv2 Response value");
  }
  if (data[kMsChapHeaderSize] != kResponseValueSize) {
    return MakeEapError(EapError::kBadValueSize,
                        absl::StrCat("Value-Size ", data[kMsChapHeaderSize]));
  }
  Response& response = message.response;
  response.ms_chapv2_id = data[1];
  const ByteSpan value = data.subspan(kValueOffset, kResponseValueSize);
  response.peer_challenge = value.subspan(0, kChallengeSize);
  // 8 reserved octets follow the peer challenge.
  response.nt_response = value.subspan(kChallengeSize + 8, kNtResponseSize);
  response.flags = value[kResponseValueSize - 1];
  const ByteSpan name = data.subspan(kValueOffset + kResponseValueSize);
  if (name.size() > kMaxNameSize) {
    return MakeEapError(EapError::kNameTooLong,
                        absl::StrCat(name.size(), " bytes"));
  }
  response.name = AsText(name);
  return message;
}

absl::StatusOr<Challenge> ParseChallenge(const Packet& packet) {
  if (absl::Status s = RequireMsChap(packet, Code::kRequest); !s.ok()) return s;
  if (packet.type_data[0] != opcode::kChallenge) {
    return MakeEapError(EapError::kBadOpCode,
                        absl::StrCat("opcode ", packet.type_data[0]));
  }
  if (absl::Status s = CheckMsChapHeader(packet); !s.ok()) return s;
  const ByteSpan data = packet.type_data;
  constexpr size_t kValueOffset = kMsChapHeaderSize + 1;
  if (data.size() < kValueOffset + kChallengeSize) {
    return MakeEapError(EapError::kTruncated, "MS-CHAPv2 Challenge value");
  }
  if (data[kMsChapHeaderSize] != kChallengeSize) {
    return MakeEapError(EapError::kBadValueSize,
                        absl::StrCat("Value-Size ", data[kMsChapHeaderSize]));
  }
  const ByteSpan name = data.subspan(kValueOffset + kChallengeSize);
  if (name.size() > kMaxNameSize) {
    return MakeEapError(EapError::kNameTooLong,
                        absl::StrCat(name.size(), " bytes"));
  }
  Challenge challenge;
  challenge.ms_chapv2_id = data[1];
  challenge.challenge = data.subspan(kValueOffset, kChallengeSize);
  challenge.server_name = AsText(name);
  return challenge;
}

absl::StatusOr<StatusRequest> ParseStatusRequest(const Packet& packet) {
  if (absl::Status s = RequireMsChap(packet, Code::kRequest); !s.ok()) return s;
  const uint8_t op = packet.type_data[0];
  if (op != opcode::kSuccess && op != opcode::kFailure) {
    return MakeEapError(EapError::kBadOpCode, absl::StrCat("opcode ", op));
  }
  if (absl::Status s = CheckMsChapHeader(packet); !s.ok()) return s;
  const ByteSpan text = packet.type_data.subspan(kMsChapHeaderSize);
  if (text.size() > kMaxMessageSize) {
    return MakeEapError(EapError::kMessageTooLong,
                        absl::StrCat(text.size(), " bytes"));
  }
  StatusRequest request;
  request.opcode = op;
  request.ms_chapv2_id = packet.type_data[1];
  request.message = AsText(text);
  return request;
}

Bytes BuildChallengeRequest(uint8_t identifier, uint8_t ms_chapv2_id,
                            ByteSpan challenge, absl::string_view server_name) {
  Bytes body;
  body.push_back(static_cast<uint8_t>(challenge.size()));
  body.insert(body.end(), challenge.begin(), challenge.end());
  body.insert(body.end(), server_name.begin(), server_name.end());
  return BuildRequest(identifier, type::kMsChapV2,
                      MsChapTypeData(opcode::kChallenge, ms_chapv2_id, body));
}

Bytes BuildStatusRequest(uint8_t identifier, uint8_t op, uint8_t ms_chapv2_id,
                         absl::string_view message) {
  const ByteSpan text(reinterpret_cast<const uint8_t*>(message.data()),
                      message.size());
  return BuildRequest(identifier, type::kMsChapV2,
                      MsChapTypeData(op, ms_chapv2_id, text));
}

Bytes BuildResponsePacket(uint8_t identifier, uint8_t ms_chapv2_id,
                          ByteSpan peer_challenge, ByteSpan nt_response,
                          absl::string_view name) {
  Bytes body(1 + kResponseValueSize, 0);
  body[0] = kResponseValueSize;
  std::copy_n(peer_challenge.begin(),
              std::min(peer_challenge.size(), kChallengeSize),
              body.begin() + 1);
  std::copy_n(nt_response.begin(), std::min(nt_response.size(), kNtResponseSize),
              body.begin() + 1 + kChallengeSize + 8);
  body.insert(body.end(), name.begin(), name.end());
  return BuildResponse(identifier, type::kMsChapV2,
                       MsChapTypeData(opcode::kResponse, ms_chapv2_id, body));
}

Bytes BuildPeerStatus(uint8_t identifier, uint8_t op) {
  const uint8_t data[] = {op};
  return BuildResponse(identifier, type::kMsChapV2, data);
}

}  // namespace vpn::auth::eap
