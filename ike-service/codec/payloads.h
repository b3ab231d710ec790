#pragma once

// One typed struct per IKEv2 payload (RFC 7296 section 3, RFC 7383 2.5).
// Each has
//   static DecodeResult<X> Parse(absl::Span<const uint8_t> body);
//   void Serialize(Writer* writer) const;
// where `body` is the payload without its 4-byte generic header. Parse checks
// every length and the RFC's syntax rules; Serialize writes the fields as they
// are (the generic header, lengths and next-payload chain are written by
// EncodeMessage / EncodePayloadChain in message.h).

#include <cstdint>
#include <tuple>
#include <vector>

#include "absl/types/optional.h"
#include "absl/types/span.h"
#include "absl/types/variant.h"
#include "common/wire/reader.h"
#include "ike-service/codec/constants.h"
#include "ike-service/codec/decode_result.h"

namespace vpn::ike::codec {

using Bytes = std::vector<uint8_t>;
using wire::Reader;
using wire::Writer;

// RFC 7296 3.3.5. TV format (AF=1) carries a two-byte `value`; TLV format
// (AF=0) carries `data`.
struct TransformAttribute {
  uint16_t type = 0;  // without the AF bit
  bool tv_format = true;
  uint16_t value = 0;
  Bytes data;

  static TransformAttribute KeyLength(uint16_t bits) {
    return {kAttributeKeyLength, true, bits, {}};
  }
};

// RFC 7296 3.3.2.
struct Transform {
  TransformType type = TransformType::kEncr;
  uint16_t id = 0;  // EncrId, PrfId, IntegId, DhGroup or EsnId by `type`
  std::vector<TransformAttribute> attributes;

  static Transform Encr(EncrId id, absl::optional<uint16_t> key_bits = {});
  static Transform Prf(PrfId id);
  static Transform Integ(IntegId id);
  static Transform Dh(DhGroup group);
  static Transform Esn(EsnId id);

  // The Key Length attribute, if present.
  absl::optional<uint16_t> key_length() const;
};

// RFC 7296 3.3.1. `spi` is empty (IKE_SA_INIT), 8 bytes (IKE rekey) or
// 4 bytes (AH, ESP).
struct Proposal {
  uint8_t number = 1;
  ProtocolId protocol_id = ProtocolId::kIke;
  Bytes spi;
  std::vector<Transform> transforms;
};

// RFC 7296 3.3. Parse requires 1..kMaxProposals proposals numbered
// consecutively, each with 1..kMaxTransformsPerProposal transforms.
struct SaPayload {
  static constexpr PayloadType kType = PayloadType::kSa;
  std::vector<Proposal> proposals;

  static DecodeResult<SaPayload> Parse(absl::Span<const uint8_t> body);
  void Serialize(Writer* writer) const;
};

// RFC 7296 3.4. Parse checks the data size for the groups constants.h knows.
struct KePayload {
  static constexpr PayloadType kType = PayloadType::kKe;
  DhGroup group = DhGroup::kNone;
  Bytes data;

  static DecodeResult<KePayload> Parse(absl::Span<const uint8_t> body);
  void Serialize(Writer* writer) const;
};

// RFC 7296 3.5: IDi and IDr share one layout.
template <PayloadType kPayloadType>
struct IdentificationPayload {
  static constexpr PayloadType kType = kPayloadType;
  IdType id_type = IdType::kFqdn;
  Bytes data;

  static DecodeResult<IdentificationPayload> Parse(absl::Span<const uint8_t> body);
  void Serialize(Writer* writer) const;
};
using IdiPayload = IdentificationPayload<PayloadType::kIdi>;
using IdrPayload = IdentificationPayload<PayloadType::kIdr>;

// RFC 7296 3.6.
struct CertPayload {
  static constexpr PayloadType kType = PayloadType::kCert;
  CertEncoding encoding = CertEncoding::kX509Signature;
  Bytes data;

  static DecodeResult<CertPayload> Parse(absl::Span<const uint8_t> body);
  void Serialize(Writer* writer) const;
};

// RFC 7296 3.7. For X.509, `authorities` is a concatenation of 20-byte SHA-1
// hashes of trusted CA public keys (possibly empty).
struct CertReqPayload {
  static constexpr PayloadType kType = PayloadType::kCertReq;
  CertEncoding encoding = CertEncoding::kX509Signature;
  Bytes authorities;

  static DecodeResult<CertReqPayload> Parse(absl::Span<const uint8_t> body);
  void Serialize(Writer* writer) const;
};

// RFC 7296 3.8.
struct AuthPayload {
  static constexpr PayloadType kType = PayloadType::kAuth;
  AuthMethod method = AuthMethod::kRsaSignature;
  Bytes data;

  static DecodeResult<AuthPayload> Parse(absl::Span<const uint8_t> body);
  void Serialize(Writer* writer) const;
};

// RFC 7296 3.9: kMinNonceSize..kMaxNonceSize bytes.
struct NoncePayload {
  static constexpr PayloadType kType = PayloadType::kNonce;
  Bytes data;

  static DecodeResult<NoncePayload> Parse(absl::Span<const uint8_t> body);
  void Serialize(Writer* writer) const;
};

// RFC 7296 3.10. `spi` is empty unless the notify concerns a CHILD SA.
struct NotifyPayload {
  static constexpr PayloadType kType = PayloadType::kNotify;
  ProtocolId protocol_id = ProtocolId::kNone;
  Bytes spi;
  NotifyType type = NotifyType::kInvalidSyntax;
  Bytes data;

  bool is_error() const {
    return static_cast<uint16_t>(type) < kFirstStatusNotifyType;
  }

  static DecodeResult<NotifyPayload> Parse(absl::Span<const uint8_t> body);
  void Serialize(Writer* writer) const;
};

// RFC 7296 3.11. For IKE the SPI list is empty (SPI size 0); for AH and ESP
// each SPI is 4 bytes.
struct DeletePayload {
  static constexpr PayloadType kType = PayloadType::kDelete;
  ProtocolId protocol_id = ProtocolId::kIke;
  std::vector<uint32_t> spis;

  static DecodeResult<DeletePayload> Parse(absl::Span<const uint8_t> body);
  void Serialize(Writer* writer) const;
};

// RFC 7296 3.12.
struct VendorIdPayload {
  static constexpr PayloadType kType = PayloadType::kVendorId;
  Bytes data;

  static DecodeResult<VendorIdPayload> Parse(absl::Span<const uint8_t> body);
  void Serialize(Writer* writer) const;
};

// RFC 7296 3.13.1. Addresses are 4 bytes (TS_IPV4_ADDR_RANGE) or 16 bytes
// (TS_IPV6_ADDR_RANGE). Ports are not ordered-checked: start > end is
// OPAQUE (RFC 7296 3.13.1).
struct TrafficSelector {
  TsType type = TsType::kIpv4AddrRange;
  uint8_t ip_protocol_id = 0;  // 0 = any
  uint16_t start_port = 0;
  uint16_t end_port = 0xffff;
  Bytes starting_address;
  Bytes ending_address;
};

// RFC 7296 3.13: TSi and TSr share one layout.
template <PayloadType kPayloadType>
struct TrafficSelectorPayload {
  static constexpr PayloadType kType = kPayloadType;
  std::vector<TrafficSelector> selectors;

  static DecodeResult<TrafficSelectorPayload> Parse(absl::Span<const uint8_t> body);
  void Serialize(Writer* writer) const;
};
using TsiPayload = TrafficSelectorPayload<PayloadType::kTsi>;
using TsrPayload = TrafficSelectorPayload<PayloadType::kTsr>;

// RFC 7296 3.14. Kept encrypted: IV || ciphertext || ICV. The SK payload's
// generic Next Payload field is the type of the first inner payload. It must
// be the last payload of a message; in a decoded datagram its body starts at
// datagram.size() - encrypted.size(), and everything before that is the
// AEAD associated data (RFC 5282) / the start of the integrity-checked data.
struct SkPayload {
  static constexpr PayloadType kType = PayloadType::kSk;
  PayloadType inner_first_payload = PayloadType::kNone;
  Bytes encrypted;

  static DecodeResult<SkPayload> Parse(absl::Span<const uint8_t> body);
  void Serialize(Writer* writer) const;
};

// RFC 7296 3.15.1. `value` is empty in requests; Parse checks its size for
// the standard types.
struct ConfigAttribute {
  ConfigAttributeType type = ConfigAttributeType::kInternalIp4Address;
  Bytes value;
};

// RFC 7296 3.15.
struct ConfigPayload {
  static constexpr PayloadType kType = PayloadType::kConfig;
  CfgType cfg_type = CfgType::kRequest;
  std::vector<ConfigAttribute> attributes;

  static DecodeResult<ConfigPayload> Parse(absl::Span<const uint8_t> body);
  void Serialize(Writer* writer) const;
};

// RFC 7296 3.16: a whole EAP packet (RFC 3748 4), kept as bytes. Parse checks
// that the EAP Length field equals the payload body size.
struct EapPayload {
  static constexpr PayloadType kType = PayloadType::kEap;
  Bytes message;

  EapCode code() const { return static_cast<EapCode>(message.empty() ? 0 : message[0]); }
  uint8_t identifier() const { return message.size() > 1 ? message[1] : 0; }
  // The EAP method type of a Request or Response.
  absl::optional<uint8_t> method_type() const;

  static DecodeResult<EapPayload> Parse(absl::Span<const uint8_t> body);
  void Serialize(Writer* writer) const;
};

// RFC 7383 2.5. `inner_first_payload` is the first inner payload type in
// fragment 1 and kNone in the others.
struct SkfPayload {
  static constexpr PayloadType kType = PayloadType::kSkf;
  PayloadType inner_first_payload = PayloadType::kNone;
  uint16_t fragment_number = 1;
  uint16_t total_fragments = 1;
  Bytes encrypted;  // IV || ciphertext || ICV

  static DecodeResult<SkfPayload> Parse(absl::Span<const uint8_t> body);
  void Serialize(Writer* writer) const;
};

// A payload type this codec does not know, received without the critical
// bit: kept as raw bytes so it can be logged or relayed.
struct UnknownPayload {
  PayloadType type = PayloadType::kNone;
  Bytes body;
};

using PayloadBody =
    absl::variant<SaPayload, KePayload, IdiPayload, IdrPayload, CertPayload,
                  CertReqPayload, AuthPayload, NoncePayload, NotifyPayload,
                  DeletePayload, VendorIdPayload, TsiPayload, TsrPayload,
                  SkPayload, ConfigPayload, EapPayload, SkfPayload,
                  UnknownPayload>;

struct Payload {
  PayloadBody body;
  // The C bit (RFC 7296 3.2). Recipients ignore it for known types.
  bool critical = false;

  PayloadType type() const;

  template <typename T>
  const T* As() const { return absl::get_if<T>(&body); }
  template <typename T>
  T* As() { return absl::get_if<T>(&body); }
};

// The first payload of type T in `payloads`, or null.
template <typename T>
const T* FindPayload(absl::Span<const Payload> payloads) {
  for (const Payload& payload : payloads) {
    if (const T* body = payload.As<T>()) return body;
  }
  return nullptr;
}

// The first Notify payload of `type` in `payloads`, or null.
inline const NotifyPayload* FindNotify(absl::Span<const Payload> payloads, NotifyType type) {
  for (const Payload& payload : payloads) {
    const auto* notify = payload.As<NotifyPayload>();
    if (notify != nullptr && notify->type == type) return notify;
  }
  return nullptr;
}

// A Notify payload without an SPI (RFC 7296 §3.10).
inline Payload MakeNotify(NotifyType type, Bytes data = {}) {
  NotifyPayload notify;
  notify.type = type;
  notify.data = std::move(data);
  return Payload{std::move(notify)};
}

// The body of an IDi/IDr payload (type, RESERVED, data): what AUTH's
// MACedIDFor{I,R} covers (RFC 7296 §2.15).
inline Bytes IdPayloadBody(IdType type, const Bytes& data) {
  Bytes body = {static_cast<uint8_t>(type), 0, 0, 0};
  body.insert(body.end(), data.begin(), data.end());
  return body;
}

// Parses the body of a payload of wire type `type`. Unknown types give an
// UnknownPayload if !critical and kUnsupportedCriticalPayload otherwise.
// For SK and SKF, `next_payload` (the generic header's Next Payload) becomes
// inner_first_payload.
DecodeResult<Payload> ParsePayload(PayloadType type, PayloadType next_payload,
                                   bool critical, absl::Span<const uint8_t> body);
// Writes the body of `payload` (no generic header).
void SerializePayloadBody(const Payload& payload, Writer* writer);

// Field-by-field equality, for tests and the fuzzer.
bool operator==(const TransformAttribute& a, const TransformAttribute& b);
bool operator==(const Transform& a, const Transform& b);
bool operator==(const Proposal& a, const Proposal& b);
bool operator==(const SaPayload& a, const SaPayload& b);
bool operator==(const KePayload& a, const KePayload& b);
bool operator==(const CertPayload& a, const CertPayload& b);
bool operator==(const CertReqPayload& a, const CertReqPayload& b);
bool operator==(const AuthPayload& a, const AuthPayload& b);
bool operator==(const NoncePayload& a, const NoncePayload& b);
bool operator==(const NotifyPayload& a, const NotifyPayload& b);
bool operator==(const DeletePayload& a, const DeletePayload& b);
bool operator==(const VendorIdPayload& a, const VendorIdPayload& b);
bool operator==(const TrafficSelector& a, const TrafficSelector& b);
bool operator==(const SkPayload& a, const SkPayload& b);
bool operator==(const ConfigAttribute& a, const ConfigAttribute& b);
bool operator==(const ConfigPayload& a, const ConfigPayload& b);
bool operator==(const EapPayload& a, const EapPayload& b);
bool operator==(const SkfPayload& a, const SkfPayload& b);
bool operator==(const UnknownPayload& a, const UnknownPayload& b);
bool operator==(const Payload& a, const Payload& b);

template <PayloadType kT>
bool operator==(const IdentificationPayload<kT>& a, const IdentificationPayload<kT>& b) {
  return a.id_type == b.id_type && a.data == b.data;
}
template <PayloadType kT>
bool operator==(const TrafficSelectorPayload<kT>& a,
                const TrafficSelectorPayload<kT>& b) {
  return a.selectors == b.selectors;
}

extern template struct IdentificationPayload<PayloadType::kIdi>;
extern template struct IdentificationPayload<PayloadType::kIdr>;
extern template struct TrafficSelectorPayload<PayloadType::kTsi>;
extern template struct TrafficSelectorPayload<PayloadType::kTsr>;

}  // namespace vpn::ike::codec
