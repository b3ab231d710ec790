#pragma once

// IKEv2 messages: the header (RFC 7296 3.1) and the payload chain (3.2).
//
// Incoming: DecodeMessage(datagram) checks the header and every payload and
// keeps an SK/SKF payload encrypted. After decrypting SK and removing the
// padding, the SA code calls DecodePayloadChain(sk.inner_first_payload,
// plaintext).
//
// Outgoing: EncodeMessage fills in every length and next-payload field. For a
// protected message the SA code
//   1. encodes the inner payloads with EncodePayloadChain,
//   2. pads and encrypts them,
//   3. takes EncodeSkPrefix(header, inner type, sizes), the IKE header and SK
//      payload header with their final lengths: the AEAD associated data, or
//      the start of the data the integrity checksum covers,
//   4. sends prefix || IV || ciphertext || ICV.
// This is byte-for-byte what EncodeMessage gives for the same header and an
// SkPayload holding IV || ciphertext || ICV.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/types/optional.h"
#include "absl/types/span.h"
#include "ike-service/codec/constants.h"
#include "ike-service/codec/decode_result.h"
#include "ike-service/codec/payloads.h"

namespace vpn::ike::codec {

// RFC 7296 3.1. The version is always 2.0 when sending; received minor
// versions and the V flag are ignored (RFC 7296 2.5, 3.1), and reserved flag
// bits are dropped.
struct Header {
  uint64_t initiator_spi = 0;
  uint64_t responder_spi = 0;
  ExchangeType exchange_type = ExchangeType::kIkeSaInit;
  bool initiator = false;  // I flag: sent by the original initiator
  bool response = false;   // R flag
  uint32_t message_id = 0;
  // As received. EncodeMessage computes both from the payloads.
  PayloadType next_payload = PayloadType::kNone;
  uint32_t length = 0;
};

struct Message {
  Header header;
  std::vector<Payload> payloads;

  // The first payload of type T, or null.
  template <typename T>
  const T* Find() const {
    return FindPayload<T>(payloads);
  }
};

bool operator==(const Header& a, const Header& b);
bool operator==(const Message& a, const Message& b);

// Decodes one IKE datagram (without the non-ESP marker of port 4500). The
// header's Length must equal datagram.size(). An SK or SKF payload must be
// the last one.
DecodeResult<Message> DecodeMessage(absl::Span<const uint8_t> datagram);

// Decodes a chain of payloads that starts with a payload of type
// `first_type` and fills `bytes` exactly: the decrypted, unpadded contents of
// an SK payload. SK and SKF may not appear inside it.
DecodeResult<std::vector<Payload>> DecodePayloadChain(PayloadType first_type,
                                                      absl::Span<const uint8_t> bytes);

// The header fields of a datagram of at least kHeaderSize bytes, without
// checking anything else: enough to address an error reply (e.g.
// INVALID_MAJOR_VERSION) to a message that DecodeMessage rejected, and its
// major version in `major_version` when given.
absl::optional<Header> PeekHeader(absl::Span<const uint8_t> datagram,
                                  uint8_t* major_version = nullptr);

// Encodes `message`. Header.next_payload and Header.length are ignored and
// computed. An SK or SKF payload must be the last one (its Next Payload field
// is its inner_first_payload). Returns an empty vector if a value does not fit its field (a
// payload over 65535 bytes, more than 255 transforms in a proposal, ...).
std::vector<uint8_t> EncodeMessage(const Message& message);

// Encodes payloads with their generic headers, chained; the first payload's
// type is payloads.front().type(). Empty on overflow, as EncodeMessage.
std::vector<uint8_t> EncodePayloadChain(absl::Span<const Payload> payloads);

// Sizes of the parts of an SK or SKF payload body.
struct EncryptedSizes {
  size_t iv_size = 0;
  size_t ciphertext_size = 0;  // inner payloads + Padding + Pad Length, encrypted
  size_t icv_size = 0;
};

// The IKE header followed by the generic header of an SK payload, with the
// final lengths of a message holding only that SK payload. Empty if the
// message would exceed its length fields.
std::vector<uint8_t> EncodeSkPrefix(const Header& header, PayloadType inner_first_payload,
                                    const EncryptedSizes& sizes);

// The same for one RFC 7383 fragment: IKE header, SKF generic header and the
// Fragment Number / Total Fragments fields. `inner_first_payload` is kNone
// for every fragment but the first.
std::vector<uint8_t> EncodeSkfPrefix(const Header& header, PayloadType inner_first_payload,
                                     uint16_t fragment_number, uint16_t total_fragments,
                                     const EncryptedSizes& sizes);

}  // namespace vpn::ike::codec
