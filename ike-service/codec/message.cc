#include "ike-service/codec/message.h"

#include <string>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/wire/reader.h"

namespace vpn::ike::codec {

namespace {

constexpr uint8_t kCriticalBit = 0x80;
constexpr size_t kLengthOffset = 24;  // of the Length field in the IKE header

bool IsEncryptedPayload(PayloadType type) {
  return type == PayloadType::kSk || type == PayloadType::kSkf;
}

std::string PayloadContext(size_t index, PayloadType type) {
  return absl::StrCat("payload ", index, " (type ", static_cast<int>(type), ")");
}

// Reads the fixed header fields. Returns false if fewer than kHeaderSize
// bytes are available.
bool ReadHeader(Reader* reader, Header* header, uint8_t* major_version) {
  uint8_t next_payload = 0;
  uint8_t version = 0;
  uint8_t exchange_type = 0;
  uint8_t flags = 0;
  if (!reader->ReadU64(&header->initiator_spi) || !reader->ReadU64(&header->responder_spi) ||
      !reader->ReadU8(&next_payload) || !reader->ReadU8(&version) ||
      !reader->ReadU8(&exchange_type) || !reader->ReadU8(&flags) ||
      !reader->ReadU32(&header->message_id) || !reader->ReadU32(&header->length)) {
    return false;
  }
  header->next_payload = static_cast<PayloadType>(next_payload);
  header->exchange_type = static_cast<ExchangeType>(exchange_type);
  header->initiator = (flags & kFlagInitiator) != 0;
  header->response = (flags & kFlagResponse) != 0;
  *major_version = version >> 4;
  return true;
}

// Writes the header with a placeholder Length; returns its offset.
size_t WriteHeader(const Header& header, PayloadType next_payload, Writer* writer) {
  const size_t start = writer->size();
  writer->WriteU64(header.initiator_spi);
  writer->WriteU64(header.responder_spi);
  writer->WriteU8(static_cast<uint8_t>(next_payload));
  writer->WriteU8((kMajorVersion << 4) | kMinorVersion);
  writer->WriteU8(static_cast<uint8_t>(header.exchange_type));
  writer->WriteU8((header.initiator ? kFlagInitiator : 0) |
                  (header.response ? kFlagResponse : 0));
  writer->WriteU32(header.message_id);
  writer->WriteU32(0);  // length, patched by the caller
  return start;
}

// The Next Payload value written in `payload`'s own generic header.
PayloadType NextPayloadField(const Payload& payload, const Payload* following) {
  if (const auto* sk = payload.As<SkPayload>()) return sk->inner_first_payload;
  if (const auto* skf = payload.As<SkfPayload>()) return skf->inner_first_payload;
  return following ? following->type() : PayloadType::kNone;
}

void WritePayloadChain(absl::Span<const Payload> payloads, Writer* writer) {
  for (size_t i = 0; i < payloads.size(); ++i) {
    const Payload& payload = payloads[i];
    const Payload* following = i + 1 < payloads.size() ? &payloads[i + 1] : nullptr;
    const size_t start = writer->size();
    writer->WriteU8(static_cast<uint8_t>(NextPayloadField(payload, following)));
    writer->WriteU8(payload.critical ? kCriticalBit : 0);
    writer->WriteU16(0);  // length, patched below
    SerializePayloadBody(payload, writer);
    writer->PatchU16(start + 2, writer->size() - start);
  }
}

DecodeResult<std::vector<Payload>> DecodeChain(PayloadType first_type,
                                               absl::Span<const uint8_t> bytes,
                                               bool encrypted_allowed) {
  Reader reader(bytes);
  std::vector<Payload> payloads;
  PayloadType type = first_type;
  while (type != PayloadType::kNone) {
    const size_t index = payloads.size() + 1;
    if (payloads.size() == kMaxPayloads) {
      return MakeDecodeFailure(DecodeError::kTooManyPayloads,
                               absl::StrCat("more than ", kMaxPayloads, " payloads"));
    }
    uint8_t next_payload = 0;
    uint8_t flags = 0;
    uint16_t length = 0;
    if (!reader.ReadU8(&next_payload) || !reader.ReadU8(&flags) ||
        !reader.ReadU16(&length)) {
      return MakeDecodeFailure(DecodeError::kTruncated,
                               PayloadContext(index, type) + ": generic header cut off");
    }
    if (length < kGenericPayloadHeaderSize) {
      return MakeDecodeFailure(DecodeError::kBadLength,
                               absl::StrCat(PayloadContext(index, type), ": length ", length));
    }
    absl::Span<const uint8_t> body;
    if (!reader.ReadSpan(length - kGenericPayloadHeaderSize, &body)) {
      return MakeDecodeFailure(
          DecodeError::kTruncated,
          absl::StrCat(PayloadContext(index, type), ": length ", length, " exceeds the ",
                       reader.remaining() + kGenericPayloadHeaderSize, " bytes left"));
    }
    const bool encrypted = IsEncryptedPayload(type);
    if (encrypted && !encrypted_allowed) {
      return MakeDecodeFailure(DecodeError::kInvalidSyntax,
                               PayloadContext(index, type) + ": encrypted payload nested");
    }
    if (encrypted && !reader.empty()) {
      return MakeDecodeFailure(DecodeError::kInvalidSyntax,
                               PayloadContext(index, type) + ": must be the last payload");
    }
    auto payload = ParsePayload(type, static_cast<PayloadType>(next_payload),
                                (flags & kCriticalBit) != 0, body);
    if (!payload.ok()) {
      return AddContext(std::move(payload).failure(), PayloadContext(index, type));
    }
    payloads.push_back(std::move(payload).value());
    // SK/SKF's Next Payload names the first inner payload, not a successor.
    type = encrypted ? PayloadType::kNone : static_cast<PayloadType>(next_payload);
  }
  if (!reader.empty()) {
    return MakeDecodeFailure(DecodeError::kBadLength,
                             absl::StrCat(reader.remaining(), " bytes after the last payload"));
  }
  return payloads;
}

// Shared by EncodeSkPrefix and EncodeSkfPrefix.
std::vector<uint8_t> EncodeEncryptedPrefix(const Header& header, PayloadType type,
                                           PayloadType inner_first_payload,
                                           absl::optional<std::pair<uint16_t, uint16_t>> fragment,
                                           const EncryptedSizes& sizes) {
  std::vector<uint8_t> out;
  Writer writer(&out);
  const size_t header_start = WriteHeader(header, type, &writer);
  const size_t body_size = (fragment ? kSkfFragmentHeaderSize : 0) + sizes.iv_size +
                           sizes.ciphertext_size + sizes.icv_size;
  writer.WriteU8(static_cast<uint8_t>(inner_first_payload));
  writer.WriteU8(0);
  writer.WriteCountU16(kGenericPayloadHeaderSize + body_size);
  if (fragment) {
    writer.WriteU16(fragment->first);
    writer.WriteU16(fragment->second);
  }
  writer.PatchU32(header_start + kLengthOffset,
                  kHeaderSize + kGenericPayloadHeaderSize + body_size);
  if (!writer.ok()) out.clear();
  return out;
}

}  // namespace

bool operator==(const Header& a, const Header& b) {
  return std::tie(a.initiator_spi, a.responder_spi, a.exchange_type, a.initiator,
                  a.response, a.message_id, a.next_payload, a.length) ==
         std::tie(b.initiator_spi, b.responder_spi, b.exchange_type, b.initiator,
                  b.response, b.message_id, b.next_payload, b.length);
}

bool operator==(const Message& a, const Message& b) {
  return a.header == b.header && a.payloads == b.payloads;
}

absl::optional<Header> PeekHeader(absl::Span<const uint8_t> datagram,
                                  uint8_t* major_version) {
  Reader reader(datagram);
  Header header;
  uint8_t version = 0;
  if (!ReadHeader(&reader, &header, &version)) return absl::nullopt;
  if (major_version != nullptr) *major_version = version;
  return header;
}

DecodeResult<Message> DecodeMessage(absl::Span<const uint8_t> datagram) {
  Reader reader(datagram);
  Message message;
  uint8_t major_version = 0;
  if (!ReadHeader(&reader, &message.header, &major_version)) {
    return MakeDecodeFailure(DecodeError::kTruncated,
                             absl::StrCat("datagram of ", datagram.size(),
                                          " bytes is shorter than the IKE header"));
  }
  if (major_version != kMajorVersion) {
    return MakeDecodeFailure(DecodeError::kBadVersion,
                             absl::StrCat("major version ", major_version));
  }
  const uint32_t length = message.header.length;
  if (length > datagram.size()) {
    return MakeDecodeFailure(DecodeError::kTruncated,
                             absl::StrCat("header length ", length, " but datagram of ",
                                          datagram.size(), " bytes"));
  }
  if (length < kHeaderSize || length < datagram.size()) {
    return MakeDecodeFailure(DecodeError::kBadLength,
                             absl::StrCat("header length ", length, " but datagram of ",
                                          datagram.size(), " bytes"));
  }
  auto payloads = DecodeChain(message.header.next_payload, reader.ReadRest(),
                              /*encrypted_allowed=*/true);
  if (!payloads.ok()) return std::move(payloads).failure();
  message.payloads = std::move(payloads).value();
  return message;
}

DecodeResult<std::vector<Payload>> DecodePayloadChain(PayloadType first_type,
                                                      absl::Span<const uint8_t> bytes) {
  return DecodeChain(first_type, bytes, /*encrypted_allowed=*/false);
}

std::vector<uint8_t> EncodeMessage(const Message& message) {
  std::vector<uint8_t> out;
  Writer writer(&out);
  const PayloadType first =
      message.payloads.empty() ? PayloadType::kNone : message.payloads.front().type();
  const size_t header_start = WriteHeader(message.header, first, &writer);
  WritePayloadChain(message.payloads, &writer);
  writer.PatchU32(header_start + kLengthOffset, writer.size() - header_start);
  if (!writer.ok()) out.clear();
  return out;
}

std::vector<uint8_t> EncodePayloadChain(absl::Span<const Payload> payloads) {
  std::vector<uint8_t> out;
  Writer writer(&out);
  WritePayloadChain(payloads, &writer);
  if (!writer.ok()) out.clear();
  return out;
}

std::vector<uint8_t> EncodeSkPrefix(const Header& header, PayloadType inner_first_payload,
                                    const EncryptedSizes& sizes) {
  return EncodeEncryptedPrefix(header, PayloadType::kSk, inner_first_payload,
                               absl::nullopt, sizes);
}

std::vector<uint8_t> EncodeSkfPrefix(const Header& header, PayloadType inner_first_payload,
                                     uint16_t fragment_number, uint16_t total_fragments,
                                     const EncryptedSizes& sizes) {
  return EncodeEncryptedPrefix(header, PayloadType::kSkf, inner_first_payload,
                               std::make_pair(fragment_number, total_fragments), sizes);
}

}  // namespace vpn::ike::codec
