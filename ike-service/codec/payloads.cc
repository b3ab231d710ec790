#include "ike-service/codec/payloads.h"

#include <string>
#include <type_traits>
#include <utility>

#include "absl/strings/str_cat.h"

namespace vpn::ike::codec {

namespace {

constexpr uint8_t kLastSubstructure = 0;
constexpr uint8_t kMoreProposals = 2;   // RFC 7296 3.3.1
constexpr uint8_t kMoreTransforms = 3;  // RFC 7296 3.3.2
constexpr uint16_t kAttributeFormatTv = 0x8000;
constexpr uint16_t kConfigAttributeTypeMask = 0x7fff;
constexpr size_t kProposalHeaderSize = 8;
constexpr size_t kTransformHeaderSize = 8;
constexpr size_t kSelectorHeaderSize = 8;
constexpr size_t kSha1Size = 20;

DecodeFailure BadLength(std::string detail) {
  return MakeDecodeFailure(DecodeError::kBadLength, std::move(detail));
}
DecodeFailure InvalidSyntax(std::string detail) {
  return MakeDecodeFailure(DecodeError::kInvalidSyntax, std::move(detail));
}
DecodeFailure TooMany(absl::string_view what, size_t limit) {
  return MakeDecodeFailure(DecodeError::kTooManySubstructures,
                           absl::StrCat("more than ", limit, " ", what));
}

// Checks the Last Substruc field of a proposal or transform against whether
// more data follows it.
bool LastSubstructureMatches(uint8_t value, uint8_t more_value, bool is_last) {
  return is_last ? value == kLastSubstructure : value == more_value;
}

DecodeResult<TransformAttribute> ParseAttribute(Reader* reader) {
  TransformAttribute attribute;
  uint16_t format_and_type = 0;
  uint16_t length_or_value = 0;
  if (!reader->ReadU16(&format_and_type) || !reader->ReadU16(&length_or_value)) {
    return BadLength("attribute header exceeds the transform");
  }
  attribute.type = format_and_type & ~kAttributeFormatTv;
  attribute.tv_format = (format_and_type & kAttributeFormatTv) != 0;
  if (attribute.tv_format) {
    attribute.value = length_or_value;
  } else {
    if (attribute.type == kAttributeKeyLength) {
      return InvalidSyntax("Key Length attribute in TLV format");
    }
    if (!reader->ReadBytes(length_or_value, &attribute.data)) {
      return BadLength(absl::StrCat("attribute length ", length_or_value,
                                    " exceeds the transform"));
    }
  }
  return attribute;
}

DecodeResult<Transform> ParseTransformBody(absl::Span<const uint8_t> body) {
  Reader reader(body);
  Transform transform;
  uint8_t type = 0;
  uint16_t id = 0;
  if (!reader.ReadU8(&type) || !reader.Skip(1) || !reader.ReadU16(&id)) {
    return BadLength("transform shorter than its header");
  }
  transform.type = static_cast<TransformType>(type);
  transform.id = id;
  while (!reader.empty()) {
    if (transform.attributes.size() == kMaxAttributesPerTransform) {
      return TooMany("attributes", kMaxAttributesPerTransform);
    }
    auto attribute = ParseAttribute(&reader);
    if (!attribute.ok()) return std::move(attribute).failure();
    transform.attributes.push_back(std::move(attribute).value());
  }
  return transform;
}

bool SpiSizeValid(ProtocolId protocol, size_t spi_size) {
  switch (protocol) {
    case ProtocolId::kIke: return spi_size == 0 || spi_size == 8;
    case ProtocolId::kAh:
    case ProtocolId::kEsp: return spi_size == 4;
    default: return spi_size == 0 || spi_size == 4 || spi_size == 8;
  }
}

DecodeResult<Proposal> ParseProposalBody(absl::Span<const uint8_t> body) {
  Reader reader(body);
  Proposal proposal;
  uint8_t protocol = 0;
  uint8_t spi_size = 0;
  uint8_t transform_count = 0;
  if (!reader.ReadU8(&proposal.number) || !reader.ReadU8(&protocol) ||
      !reader.ReadU8(&spi_size) || !reader.ReadU8(&transform_count)) {
    return BadLength("proposal shorter than its header");
  }
  proposal.protocol_id = static_cast<ProtocolId>(protocol);
  if (!SpiSizeValid(proposal.protocol_id, spi_size)) {
    return InvalidSyntax(absl::StrCat("SPI size ", spi_size, " for protocol ", protocol));
  }
  if (!reader.ReadBytes(spi_size, &proposal.spi)) {
    return BadLength("SPI exceeds the proposal");
  }
  if (transform_count == 0) return InvalidSyntax("proposal without transforms");
  if (transform_count > kMaxTransformsPerProposal) {
    return TooMany("transforms", kMaxTransformsPerProposal);
  }
  while (!reader.empty()) {
    const size_t index = proposal.transforms.size() + 1;
    if (proposal.transforms.size() == transform_count) {
      return InvalidSyntax(absl::StrCat("more transforms than Num Transforms (",
                                        transform_count, ")"));
    }
    uint8_t last = 0;
    uint16_t length = 0;
    if (!reader.ReadU8(&last) || !reader.Skip(1) || !reader.ReadU16(&length)) {
      return BadLength(absl::StrCat("transform ", index, " header exceeds the proposal"));
    }
    absl::Span<const uint8_t> transform_body;
    if (length < kTransformHeaderSize ||
        !reader.ReadSpan(length - 4, &transform_body)) {
      return BadLength(absl::StrCat("transform ", index, " length ", length));
    }
    if (!LastSubstructureMatches(last, kMoreTransforms, reader.empty())) {
      return InvalidSyntax(absl::StrCat("transform ", index, " Last Substruc ", last));
    }
    auto transform = ParseTransformBody(transform_body);
    if (!transform.ok()) {
      return AddContext(std::move(transform).failure(), absl::StrCat("transform ", index));
    }
    proposal.transforms.push_back(std::move(transform).value());
  }
  if (proposal.transforms.size() != transform_count) {
    return InvalidSyntax(absl::StrCat("Num Transforms ", transform_count, " but ",
                                      proposal.transforms.size(), " present"));
  }
  return proposal;
}

void SerializeTransform(const Transform& transform, bool is_last, Writer* writer) {
  const size_t start = writer->size();
  writer->WriteU8(is_last ? kLastSubstructure : kMoreTransforms);
  writer->WriteU8(0);
  writer->WriteU16(0);  // length, patched below
  writer->WriteU8(static_cast<uint8_t>(transform.type));
  writer->WriteU8(0);
  writer->WriteU16(transform.id);
  for (const TransformAttribute& attribute : transform.attributes) {
    if (attribute.type & kAttributeFormatTv) writer->Fail();
    if (attribute.tv_format) {
      writer->WriteU16(attribute.type | kAttributeFormatTv);
      writer->WriteU16(attribute.value);
    } else {
      writer->WriteU16(attribute.type);
      writer->WriteCountU16(attribute.data.size());
      writer->WriteBytes(attribute.data);
    }
  }
  writer->PatchU16(start + 2, writer->size() - start);
}

void SerializeProposal(const Proposal& proposal, bool is_last, Writer* writer) {
  const size_t start = writer->size();
  writer->WriteU8(is_last ? kLastSubstructure : kMoreProposals);
  writer->WriteU8(0);
  writer->WriteU16(0);  // length, patched below
  writer->WriteU8(proposal.number);
  writer->WriteU8(static_cast<uint8_t>(proposal.protocol_id));
  writer->WriteCountU8(proposal.spi.size());
  writer->WriteCountU8(proposal.transforms.size());
  writer->WriteBytes(proposal.spi);
  for (size_t i = 0; i < proposal.transforms.size(); ++i) {
    SerializeTransform(proposal.transforms[i], i + 1 == proposal.transforms.size(),
                       writer);
  }
  writer->PatchU16(start + 2, writer->size() - start);
}

// Allowed value sizes of the configuration attributes RFC 7296 3.15.1
// defines; other types (including Microsoft's) accept any size.
bool ConfigValueSizeValid(ConfigAttributeType type, size_t size) {
  switch (type) {
    case ConfigAttributeType::kInternalIp4Address:
    case ConfigAttributeType::kInternalIp4Netmask:
    case ConfigAttributeType::kInternalIp4Dns:
    case ConfigAttributeType::kInternalIp4Nbns:
    case ConfigAttributeType::kInternalIp4Dhcp:
      return size == 0 || size == 4;
    case ConfigAttributeType::kInternalIp6Address:
    case ConfigAttributeType::kInternalIp6Subnet:
      return size == 0 || size == 17;  // address/prefix || prefix length
    case ConfigAttributeType::kInternalIp6Dns:
    case ConfigAttributeType::kInternalIp6Dhcp:
      return size == 0 || size == 16;
    case ConfigAttributeType::kInternalIp4Subnet:
      return size == 0 || size == 8;  // address || netmask
    case ConfigAttributeType::kSupportedAttributes:
      return size % 2 == 0;
    default:
      return true;
  }
}

size_t SelectorAddressSize(TsType type) {
  switch (type) {
    case TsType::kIpv4AddrRange: return 4;
    case TsType::kIpv6AddrRange: return 16;
    default: return 0;
  }
}

DecodeResult<std::vector<TrafficSelector>> ParseSelectors(
    absl::Span<const uint8_t> body) {
  Reader reader(body);
  uint8_t count = 0;
  if (!reader.ReadU8(&count) || !reader.Skip(3)) {
    return BadLength("traffic selector payload shorter than 4 bytes");
  }
  if (count > kMaxTrafficSelectors) return TooMany("traffic selectors", kMaxTrafficSelectors);
  std::vector<TrafficSelector> selectors;
  for (size_t i = 0; i < count; ++i) {
    TrafficSelector selector;
    uint8_t type = 0;
    uint16_t length = 0;
    if (!reader.ReadU8(&type) || !reader.ReadU8(&selector.ip_protocol_id) ||
        !reader.ReadU16(&length) || !reader.ReadU16(&selector.start_port) ||
        !reader.ReadU16(&selector.end_port)) {
      return BadLength(absl::StrCat("selector ", i + 1, " header exceeds the payload"));
    }
    selector.type = static_cast<TsType>(type);
    const size_t address_size = SelectorAddressSize(selector.type);
    if (address_size == 0) {
      return InvalidSyntax(absl::StrCat("selector ", i + 1, " has unknown TS type ", type));
    }
    if (length != kSelectorHeaderSize + 2 * address_size) {
      return BadLength(absl::StrCat("selector ", i + 1, " length ", length));
    }
    if (!reader.ReadBytes(address_size, &selector.starting_address) ||
        !reader.ReadBytes(address_size, &selector.ending_address)) {
      return BadLength(absl::StrCat("selector ", i + 1, " exceeds the payload"));
    }
    selectors.push_back(std::move(selector));
  }
  if (!reader.empty()) {
    return BadLength(absl::StrCat(reader.remaining(), " bytes after ", count, " selectors"));
  }
  return selectors;
}

void SerializeSelectors(const std::vector<TrafficSelector>& selectors, Writer* writer) {
  writer->WriteCountU8(selectors.size());
  writer->WriteZeros(3);
  for (const TrafficSelector& selector : selectors) {
    writer->WriteU8(static_cast<uint8_t>(selector.type));
    writer->WriteU8(selector.ip_protocol_id);
    writer->WriteCountU16(kSelectorHeaderSize + selector.starting_address.size() +
                          selector.ending_address.size());
    writer->WriteU16(selector.start_port);
    writer->WriteU16(selector.end_port);
    writer->WriteBytes(selector.starting_address);
    writer->WriteBytes(selector.ending_address);
  }
}

// The layout shared by IDi/IDr (3.5) and AUTH (3.8): a one-byte type, three
// reserved bytes, then data.
bool ReadTypeAndReserved(Reader* reader, uint8_t* type) {
  return reader->ReadU8(type) && reader->Skip(3);
}

}  // namespace

// --- Transform helpers ---------------------------------------------------

Transform Transform::Encr(EncrId id, absl::optional<uint16_t> key_bits) {
  Transform transform{TransformType::kEncr, static_cast<uint16_t>(id), {}};
  if (key_bits) transform.attributes.push_back(TransformAttribute::KeyLength(*key_bits));
  return transform;
}
Transform Transform::Prf(PrfId id) {
  return {TransformType::kPrf, static_cast<uint16_t>(id), {}};
}
Transform Transform::Integ(IntegId id) {
  return {TransformType::kInteg, static_cast<uint16_t>(id), {}};
}
Transform Transform::Dh(DhGroup group) {
  return {TransformType::kDh, static_cast<uint16_t>(group), {}};
}
Transform Transform::Esn(EsnId id) {
  return {TransformType::kEsn, static_cast<uint16_t>(id), {}};
}

absl::optional<uint16_t> Transform::key_length() const {
  for (const TransformAttribute& attribute : attributes) {
    if (attribute.type == kAttributeKeyLength && attribute.tv_format) return attribute.value;
  }
  return absl::nullopt;
}

// --- SA ------------------------------------------------------------------

DecodeResult<SaPayload> SaPayload::Parse(absl::Span<const uint8_t> body) {
  Reader reader(body);
  SaPayload sa;
  while (!reader.empty()) {
    const size_t index = sa.proposals.size() + 1;
    if (sa.proposals.size() == kMaxProposals) return TooMany("proposals", kMaxProposals);
    uint8_t last = 0;
    uint16_t length = 0;
    if (!reader.ReadU8(&last) || !reader.Skip(1) || !reader.ReadU16(&length)) {
      return BadLength(absl::StrCat("proposal ", index, " header exceeds the SA payload"));
    }
    absl::Span<const uint8_t> proposal_body;
    if (length < kProposalHeaderSize || !reader.ReadSpan(length - 4, &proposal_body)) {
      return BadLength(absl::StrCat("proposal ", index, " length ", length));
    }
    if (!LastSubstructureMatches(last, kMoreProposals, reader.empty())) {
      return InvalidSyntax(absl::StrCat("proposal ", index, " Last Substruc ", last));
    }
    auto proposal = ParseProposalBody(proposal_body);
    if (!proposal.ok()) {
      return AddContext(std::move(proposal).failure(), absl::StrCat("proposal ", index));
    }
    // RFC 7296 3.3.1: numbers start at 1 in a request and increase by one; a
    // response carries the single accepted proposal with its own number.
    const uint8_t number = proposal->number;
    const bool numbered_in_sequence =
        sa.proposals.empty() ? number != 0 : number == sa.proposals.back().number + 1;
    if (!numbered_in_sequence) {
      return InvalidSyntax(absl::StrCat("proposal ", index, " has number ", number));
    }
    sa.proposals.push_back(std::move(proposal).value());
  }
  if (sa.proposals.empty()) return InvalidSyntax("SA payload without proposals");
  if (sa.proposals.size() > 1 && sa.proposals.front().number != 1) {
    return InvalidSyntax("proposals must be numbered from 1");
  }
  return sa;
}

void SaPayload::Serialize(Writer* writer) const {
  for (size_t i = 0; i < proposals.size(); ++i) {
    SerializeProposal(proposals[i], i + 1 == proposals.size(), writer);
  }
}

// --- KE ------------------------------------------------------------------

DecodeResult<KePayload> KePayload::Parse(absl::Span<const uint8_t> body) {
  Reader reader(body);
  KePayload ke;
  uint16_t group = 0;
  if (!reader.ReadU16(&group) || !reader.Skip(2)) {
    return BadLength("KE payload shorter than 4 bytes");
  }
  ke.group = static_cast<DhGroup>(group);
  reader.ReadBytes(reader.remaining(), &ke.data);
  const size_t expected = KeyExchangeDataSize(ke.group);
  if (expected != 0 && ke.data.size() != expected) {
    return InvalidSyntax(absl::StrCat("KE data of ", ke.data.size(), " bytes for group ",
                                      group, " (expected ", expected, ")"));
  }
  if (ke.data.empty()) return InvalidSyntax("KE payload without data");
  return ke;
}

void KePayload::Serialize(Writer* writer) const {
  writer->WriteU16(static_cast<uint16_t>(group));
  writer->WriteU16(0);
  writer->WriteBytes(data);
}

// --- IDi / IDr -----------------------------------------------------------

template <PayloadType kPayloadType>
DecodeResult<IdentificationPayload<kPayloadType>>
IdentificationPayload<kPayloadType>::Parse(absl::Span<const uint8_t> body) {
  Reader reader(body);
  IdentificationPayload id;
  uint8_t type = 0;
  if (!ReadTypeAndReserved(&reader, &type)) {
    return BadLength("ID payload shorter than 4 bytes");
  }
  id.id_type = static_cast<IdType>(type);
  reader.ReadBytes(reader.remaining(), &id.data);
  if ((id.id_type == IdType::kIpv4Addr && id.data.size() != 4) ||
      (id.id_type == IdType::kIpv6Addr && id.data.size() != 16)) {
    return InvalidSyntax(absl::StrCat("ID type ", type, " with ", id.data.size(), " bytes"));
  }
  return id;
}

template <PayloadType kPayloadType>
void IdentificationPayload<kPayloadType>::Serialize(Writer* writer) const {
  writer->WriteU8(static_cast<uint8_t>(id_type));
  writer->WriteZeros(3);
  writer->WriteBytes(data);
}

template struct IdentificationPayload<PayloadType::kIdi>;
template struct IdentificationPayload<PayloadType::kIdr>;

// --- CERT / CERTREQ ------------------------------------------------------

DecodeResult<CertPayload> CertPayload::Parse(absl::Span<const uint8_t> body) {
  Reader reader(body);
  CertPayload cert;
  uint8_t encoding = 0;
  if (!reader.ReadU8(&encoding)) return BadLength("CERT payload without encoding");
  cert.encoding = static_cast<CertEncoding>(encoding);
  reader.ReadBytes(reader.remaining(), &cert.data);
  return cert;
}

void CertPayload::Serialize(Writer* writer) const {
  writer->WriteU8(static_cast<uint8_t>(encoding));
  writer->WriteBytes(data);
}

DecodeResult<CertReqPayload> CertReqPayload::Parse(absl::Span<const uint8_t> body) {
  Reader reader(body);
  CertReqPayload request;
  uint8_t encoding = 0;
  if (!reader.ReadU8(&encoding)) return BadLength("CERTREQ payload without encoding");
  request.encoding = static_cast<CertEncoding>(encoding);
  reader.ReadBytes(reader.remaining(), &request.authorities);
  if (request.encoding == CertEncoding::kX509Signature &&
      request.authorities.size() % kSha1Size != 0) {
    return BadLength(absl::StrCat("X.509 CERTREQ of ", request.authorities.size(),
                                  " bytes is not a list of SHA-1 hashes"));
  }
  return request;
}

void CertReqPayload::Serialize(Writer* writer) const {
  writer->WriteU8(static_cast<uint8_t>(encoding));
  writer->WriteBytes(authorities);
}

// --- AUTH ----------------------------------------------------------------

DecodeResult<AuthPayload> AuthPayload::Parse(absl::Span<const uint8_t> body) {
  Reader reader(body);
  AuthPayload auth;
  uint8_t method = 0;
  if (!ReadTypeAndReserved(&reader, &method)) {
    return BadLength("AUTH payload shorter than 4 bytes");
  }
  auth.method = static_cast<AuthMethod>(method);
  reader.ReadBytes(reader.remaining(), &auth.data);
  if (auth.data.empty()) return InvalidSyntax("AUTH payload without data");
  return auth;
}

void AuthPayload::Serialize(Writer* writer) const {
  writer->WriteU8(static_cast<uint8_t>(method));
  writer->WriteZeros(3);
  writer->WriteBytes(data);
}

// --- Nonce ---------------------------------------------------------------

DecodeResult<NoncePayload> NoncePayload::Parse(absl::Span<const uint8_t> body) {
  if (body.size() < kMinNonceSize || body.size() > kMaxNonceSize) {
    return InvalidSyntax(absl::StrCat("nonce of ", body.size(), " bytes"));
  }
  return NoncePayload{Bytes(body.begin(), body.end())};
}

void NoncePayload::Serialize(Writer* writer) const { writer->WriteBytes(data); }

// --- Notify --------------------------------------------------------------

DecodeResult<NotifyPayload> NotifyPayload::Parse(absl::Span<const uint8_t> body) {
  Reader reader(body);
  NotifyPayload notify;
  uint8_t protocol = 0;
  uint8_t spi_size = 0;
  uint16_t type = 0;
  if (!reader.ReadU8(&protocol) || !reader.ReadU8(&spi_size) || !reader.ReadU16(&type)) {
    return BadLength("Notify payload shorter than 4 bytes");
  }
  notify.protocol_id = static_cast<ProtocolId>(protocol);
  notify.type = static_cast<NotifyType>(type);
  if (!reader.ReadBytes(spi_size, &notify.spi)) {
    return BadLength(absl::StrCat("Notify SPI size ", spi_size, " exceeds the payload"));
  }
  reader.ReadBytes(reader.remaining(), &notify.data);
  return notify;
}

void NotifyPayload::Serialize(Writer* writer) const {
  writer->WriteU8(static_cast<uint8_t>(protocol_id));
  writer->WriteCountU8(spi.size());
  writer->WriteU16(static_cast<uint16_t>(type));
  writer->WriteBytes(spi);
  writer->WriteBytes(data);
}

// --- Delete --------------------------------------------------------------

DecodeResult<DeletePayload> DeletePayload::Parse(absl::Span<const uint8_t> body) {
  Reader reader(body);
  DeletePayload deletion;
  uint8_t protocol = 0;
  uint8_t spi_size = 0;
  uint16_t spi_count = 0;
  if (!reader.ReadU8(&protocol) || !reader.ReadU8(&spi_size) ||
      !reader.ReadU16(&spi_count)) {
    return BadLength("Delete payload shorter than 4 bytes");
  }
  deletion.protocol_id = static_cast<ProtocolId>(protocol);
  switch (deletion.protocol_id) {
    case ProtocolId::kIke:
      if (spi_size != 0 || spi_count != 0 || !reader.empty()) {
        return InvalidSyntax("IKE SA Delete must carry no SPIs");
      }
      return deletion;
    case ProtocolId::kAh:
    case ProtocolId::kEsp:
      if (spi_size != 4) {
        return InvalidSyntax(absl::StrCat("Delete SPI size ", spi_size));
      }
      // Checked before reserving, so a forged count allocates nothing.
      if (reader.remaining() != size_t{spi_count} * 4) {
        return BadLength(absl::StrCat("Delete of ", spi_count, " SPIs with ",
                                      reader.remaining(), " bytes"));
      }
      deletion.spis.reserve(spi_count);
      for (uint16_t i = 0; i < spi_count; ++i) {
        uint32_t spi = 0;
        reader.ReadU32(&spi);
        deletion.spis.push_back(spi);
      }
      return deletion;
    default:
      return InvalidSyntax(absl::StrCat("Delete for protocol ", protocol));
  }
}

void DeletePayload::Serialize(Writer* writer) const {
  writer->WriteU8(static_cast<uint8_t>(protocol_id));
  writer->WriteU8(protocol_id == ProtocolId::kIke ? 0 : 4);
  writer->WriteCountU16(spis.size());
  for (uint32_t spi : spis) writer->WriteU32(spi);
}

// --- Vendor ID -----------------------------------------------------------

DecodeResult<VendorIdPayload> VendorIdPayload::Parse(absl::Span<const uint8_t> body) {
  return VendorIdPayload{Bytes(body.begin(), body.end())};
}

void VendorIdPayload::Serialize(Writer* writer) const { writer->WriteBytes(data); }

// --- TSi / TSr -----------------------------------------------------------

template <PayloadType kPayloadType>
DecodeResult<TrafficSelectorPayload<kPayloadType>>
TrafficSelectorPayload<kPayloadType>::Parse(absl::Span<const uint8_t> body) {
  auto selectors = ParseSelectors(body);
  if (!selectors.ok()) return std::move(selectors).failure();
  return TrafficSelectorPayload{std::move(selectors).value()};
}

template <PayloadType kPayloadType>
void TrafficSelectorPayload<kPayloadType>::Serialize(Writer* writer) const {
  SerializeSelectors(selectors, writer);
}

template struct TrafficSelectorPayload<PayloadType::kTsi>;
template struct TrafficSelectorPayload<PayloadType::kTsr>;

// --- SK ------------------------------------------------------------------

DecodeResult<SkPayload> SkPayload::Parse(absl::Span<const uint8_t> body) {
  if (body.empty()) return InvalidSyntax("empty SK payload");
  return SkPayload{PayloadType::kNone, Bytes(body.begin(), body.end())};
}

void SkPayload::Serialize(Writer* writer) const { writer->WriteBytes(encrypted); }

// --- CP ------------------------------------------------------------------

DecodeResult<ConfigPayload> ConfigPayload::Parse(absl::Span<const uint8_t> body) {
  Reader reader(body);
  ConfigPayload config;
  uint8_t cfg_type = 0;
  if (!ReadTypeAndReserved(&reader, &cfg_type)) {
    return BadLength("CP payload shorter than 4 bytes");
  }
  config.cfg_type = static_cast<CfgType>(cfg_type);
  if (cfg_type < static_cast<uint8_t>(CfgType::kRequest) ||
      cfg_type > static_cast<uint8_t>(CfgType::kAck)) {
    return InvalidSyntax(absl::StrCat("CFG type ", cfg_type));
  }
  while (!reader.empty()) {
    const size_t index = config.attributes.size() + 1;
    if (config.attributes.size() == kMaxConfigAttributes) {
      return TooMany("configuration attributes", kMaxConfigAttributes);
    }
    uint16_t type = 0;
    uint16_t length = 0;
    if (!reader.ReadU16(&type) || !reader.ReadU16(&length)) {
      return BadLength(absl::StrCat("attribute ", index, " header exceeds the CP payload"));
    }
    ConfigAttribute attribute;
    attribute.type = static_cast<ConfigAttributeType>(type & kConfigAttributeTypeMask);
    if (!reader.ReadBytes(length, &attribute.value)) {
      return BadLength(absl::StrCat("attribute ", index, " length ", length,
                                    " exceeds the CP payload"));
    }
    if (!ConfigValueSizeValid(attribute.type, length)) {
      return InvalidSyntax(absl::StrCat("attribute ", index, " of type ",
                                        type & kConfigAttributeTypeMask, " with ",
                                        length, " bytes"));
    }
    config.attributes.push_back(std::move(attribute));
  }
  return config;
}

void ConfigPayload::Serialize(Writer* writer) const {
  writer->WriteU8(static_cast<uint8_t>(cfg_type));
  writer->WriteZeros(3);
  for (const ConfigAttribute& attribute : attributes) {
    const auto type = static_cast<uint16_t>(attribute.type);
    if (type & ~kConfigAttributeTypeMask) writer->Fail();
    writer->WriteU16(type);
    writer->WriteCountU16(attribute.value.size());
    writer->WriteBytes(attribute.value);
  }
}

// --- EAP -----------------------------------------------------------------

absl::optional<uint8_t> EapPayload::method_type() const {
  const EapCode eap_code = code();
  if ((eap_code == EapCode::kRequest || eap_code == EapCode::kResponse) &&
      message.size() > 4) {
    return message[4];
  }
  return absl::nullopt;
}

DecodeResult<EapPayload> EapPayload::Parse(absl::Span<const uint8_t> body) {
  Reader reader(body);
  uint8_t code = 0;
  uint16_t length = 0;
  if (!reader.ReadU8(&code) || !reader.Skip(1) || !reader.ReadU16(&length)) {
    return BadLength("EAP packet shorter than 4 bytes");
  }
  if (length != body.size()) {
    return BadLength(absl::StrCat("EAP Length ", length, " in a payload of ",
                                  body.size(), " bytes"));
  }
  const auto eap_code = static_cast<EapCode>(code);
  if ((eap_code == EapCode::kRequest || eap_code == EapCode::kResponse) &&
      length < 5) {
    return InvalidSyntax("EAP Request/Response without a Type");
  }
  return EapPayload{Bytes(body.begin(), body.end())};
}

void EapPayload::Serialize(Writer* writer) const { writer->WriteBytes(message); }

// --- SKF -----------------------------------------------------------------

DecodeResult<SkfPayload> SkfPayload::Parse(absl::Span<const uint8_t> body) {
  Reader reader(body);
  SkfPayload fragment;
  if (!reader.ReadU16(&fragment.fragment_number) ||
      !reader.ReadU16(&fragment.total_fragments)) {
    return BadLength("SKF payload shorter than 4 bytes");
  }
  // RFC 7383 2.5: numbers start at 1 and never exceed the total.
  if (fragment.fragment_number == 0 || fragment.total_fragments == 0 ||
      fragment.fragment_number > fragment.total_fragments) {
    return InvalidSyntax(absl::StrCat("fragment ", fragment.fragment_number, " of ",
                                      fragment.total_fragments));
  }
  if (reader.empty()) return InvalidSyntax("SKF payload without encrypted data");
  reader.ReadBytes(reader.remaining(), &fragment.encrypted);
  return fragment;
}

void SkfPayload::Serialize(Writer* writer) const {
  writer->WriteU16(fragment_number);
  writer->WriteU16(total_fragments);
  writer->WriteBytes(encrypted);
}

// --- Any payload ---------------------------------------------------------

PayloadType Payload::type() const {
  return absl::visit(
      [](const auto& typed) -> PayloadType {
        using T = std::decay_t<decltype(typed)>;
        if constexpr (std::is_same_v<T, UnknownPayload>) {
          return typed.type;
        } else {
          return T::kType;
        }
      },
      body);
}

namespace {

template <typename T>
DecodeResult<Payload> ParseAs(absl::Span<const uint8_t> body, bool critical) {
  auto parsed = T::Parse(body);
  if (!parsed.ok()) return std::move(parsed).failure();
  return Payload{std::move(parsed).value(), critical};
}

}  // namespace

DecodeResult<Payload> ParsePayload(PayloadType type, PayloadType next_payload,
                                   bool critical, absl::Span<const uint8_t> body) {
  switch (type) {
    case PayloadType::kSa: return ParseAs<SaPayload>(body, critical);
    case PayloadType::kKe: return ParseAs<KePayload>(body, critical);
    case PayloadType::kIdi: return ParseAs<IdiPayload>(body, critical);
    case PayloadType::kIdr: return ParseAs<IdrPayload>(body, critical);
    case PayloadType::kCert: return ParseAs<CertPayload>(body, critical);
    case PayloadType::kCertReq: return ParseAs<CertReqPayload>(body, critical);
    case PayloadType::kAuth: return ParseAs<AuthPayload>(body, critical);
    case PayloadType::kNonce: return ParseAs<NoncePayload>(body, critical);
    case PayloadType::kNotify: return ParseAs<NotifyPayload>(body, critical);
    case PayloadType::kDelete: return ParseAs<DeletePayload>(body, critical);
    case PayloadType::kVendorId: return ParseAs<VendorIdPayload>(body, critical);
    case PayloadType::kTsi: return ParseAs<TsiPayload>(body, critical);
    case PayloadType::kTsr: return ParseAs<TsrPayload>(body, critical);
    case PayloadType::kConfig: return ParseAs<ConfigPayload>(body, critical);
    case PayloadType::kEap: return ParseAs<EapPayload>(body, critical);
    case PayloadType::kSk: {
      auto payload = ParseAs<SkPayload>(body, critical);
      if (payload.ok()) payload->As<SkPayload>()->inner_first_payload = next_payload;
      return payload;
    }
    case PayloadType::kSkf: {
      auto payload = ParseAs<SkfPayload>(body, critical);
      if (payload.ok()) payload->As<SkfPayload>()->inner_first_payload = next_payload;
      return payload;
    }
    default:
      break;
  }
  if (critical) return MakeUnsupportedCriticalPayload(static_cast<uint8_t>(type));
  return Payload{UnknownPayload{type, Bytes(body.begin(), body.end())}, critical};
}

void SerializePayloadBody(const Payload& payload, Writer* writer) {
  absl::visit(
      [writer](const auto& typed) {
        using T = std::decay_t<decltype(typed)>;
        if constexpr (std::is_same_v<T, UnknownPayload>) {
          writer->WriteBytes(typed.body);
        } else {
          typed.Serialize(writer);
        }
      },
      payload.body);
}

// --- Equality ------------------------------------------------------------

bool operator==(const TransformAttribute& a, const TransformAttribute& b) {
  return std::tie(a.type, a.tv_format, a.value, a.data) ==
         std::tie(b.type, b.tv_format, b.value, b.data);
}
bool operator==(const Transform& a, const Transform& b) {
  return std::tie(a.type, a.id, a.attributes) == std::tie(b.type, b.id, b.attributes);
}
bool operator==(const Proposal& a, const Proposal& b) {
  return std::tie(a.number, a.protocol_id, a.spi, a.transforms) ==
         std::tie(b.number, b.protocol_id, b.spi, b.transforms);
}
bool operator==(const SaPayload& a, const SaPayload& b) { return a.proposals == b.proposals; }
bool operator==(const KePayload& a, const KePayload& b) {
  return a.group == b.group && a.data == b.data;
}
bool operator==(const CertPayload& a, const CertPayload& b) {
  return a.encoding == b.encoding && a.data == b.data;
}
bool operator==(const CertReqPayload& a, const CertReqPayload& b) {
  return a.encoding == b.encoding && a.authorities == b.authorities;
}
bool operator==(const AuthPayload& a, const AuthPayload& b) {
  return a.method == b.method && a.data == b.data;
}
bool operator==(const NoncePayload& a, const NoncePayload& b) { return a.data == b.data; }
bool operator==(const NotifyPayload& a, const NotifyPayload& b) {
  return std::tie(a.protocol_id, a.spi, a.type, a.data) ==
         std::tie(b.protocol_id, b.spi, b.type, b.data);
}
bool operator==(const DeletePayload& a, const DeletePayload& b) {
  return a.protocol_id == b.protocol_id && a.spis == b.spis;
}
bool operator==(const VendorIdPayload& a, const VendorIdPayload& b) {
  return a.data == b.data;
}
bool operator==(const TrafficSelector& a, const TrafficSelector& b) {
  return std::tie(a.type, a.ip_protocol_id, a.start_port, a.end_port,
                  a.starting_address, a.ending_address) ==
         std::tie(b.type, b.ip_protocol_id, b.start_port, b.end_port,
                  b.starting_address, b.ending_address);
}
bool operator==(const SkPayload& a, const SkPayload& b) {
  return a.inner_first_payload == b.inner_first_payload && a.encrypted == b.encrypted;
}
bool operator==(const ConfigAttribute& a, const ConfigAttribute& b) {
  return a.type == b.type && a.value == b.value;
}
bool operator==(const ConfigPayload& a, const ConfigPayload& b) {
  return a.cfg_type == b.cfg_type && a.attributes == b.attributes;
}
bool operator==(const EapPayload& a, const EapPayload& b) { return a.message == b.message; }
bool operator==(const SkfPayload& a, const SkfPayload& b) {
  return std::tie(a.inner_first_payload, a.fragment_number, a.total_fragments,
                  a.encrypted) == std::tie(b.inner_first_payload, b.fragment_number,
                                           b.total_fragments, b.encrypted);
}
bool operator==(const UnknownPayload& a, const UnknownPayload& b) {
  return a.type == b.type && a.body == b.body;
}
bool operator==(const Payload& a, const Payload& b) {
  return a.critical == b.critical && a.body == b.body;
}

}  // namespace vpn::ike::codec
