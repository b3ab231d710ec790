#include "ike-service/codec/payloads.h"

#include <initializer_list>
#include <vector>

#include "gtest/gtest.h"

namespace vpn::ike::codec {
namespace {

Bytes Concat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& part : parts) out.insert(out.end(), part.begin(), part.end());
  return out;
}

Bytes Repeat(size_t count, uint8_t byte) { return Bytes(count, byte); }

template <typename T>
Bytes SerializeBody(const T& payload) {
  Bytes out;
  Writer writer(&out);
  payload.Serialize(&writer);
  EXPECT_TRUE(writer.ok());
  return out;
}

// Serialize, Parse, and compare; also checks that serializing the parsed
// value gives the same bytes.
template <typename T>
void ExpectRoundTrip(const T& payload) {
  const Bytes body = SerializeBody(payload);
  auto parsed = T::Parse(body);
  ASSERT_TRUE(parsed.ok()) << parsed.failure().detail;
  EXPECT_EQ(*parsed, payload);
  EXPECT_EQ(SerializeBody(*parsed), body);
}

template <typename T>
DecodeError ParseError(const Bytes& body) {
  auto parsed = T::Parse(body);
  EXPECT_FALSE(parsed.ok());
  return parsed.ok() ? DecodeError::kInvalidSyntax : parsed.failure().error;
}

// --- Round trips ---------------------------------------------------------

TEST(PayloadRoundTripTest, Sa) {
  SaPayload sa;
  sa.proposals.push_back(
      {1, ProtocolId::kIke, {}, {Transform::Encr(EncrId::kAesCbc, 256),
                                 Transform::Prf(PrfId::kHmacSha2_256),
                                 Transform::Integ(IntegId::kHmacSha2_256_128),
                                 Transform::Dh(DhGroup::kEcp256)}});
  sa.proposals.push_back({2, ProtocolId::kIke, Bytes(8, 0x5a),
                          {Transform::Encr(EncrId::kChacha20Poly1305),
                           Transform::Prf(PrfId::kHmacSha1), Transform::Dh(DhGroup::kCurve25519)}});
  Transform with_tlv = Transform::Encr(EncrId::k3des);
  with_tlv.attributes.push_back({0x1234, false, 0, {1, 2, 3}});
  sa.proposals.push_back({3, ProtocolId::kEsp, {0xc0, 0, 0, 1},
                          {with_tlv, Transform::Integ(IntegId::kHmacSha1_96),
                           Transform::Esn(EsnId::kNoEsn)}});
  ExpectRoundTrip(sa);
}

TEST(PayloadRoundTripTest, SimplePayloads) {
  ExpectRoundTrip(KePayload{DhGroup::kModp2048, Repeat(256, 0x42)});
  ExpectRoundTrip(KePayload{static_cast<DhGroup>(1234), Repeat(3, 0x42)});
  ExpectRoundTrip(IdiPayload{IdType::kIpv4Addr, {192, 0, 2, 1}});
  ExpectRoundTrip(IdrPayload{IdType::kFqdn, Bytes{'v', 'p', 'n'}});
  ExpectRoundTrip(CertPayload{CertEncoding::kX509Signature, Repeat(300, 0x30)});
  ExpectRoundTrip(CertReqPayload{CertEncoding::kX509Signature, Repeat(40, 0x01)});
  ExpectRoundTrip(CertReqPayload{CertEncoding::kX509Signature, {}});
  ExpectRoundTrip(AuthPayload{AuthMethod::kDigitalSignature, Repeat(64, 0x07)});
  ExpectRoundTrip(NoncePayload{Repeat(16, 0x01)});
  ExpectRoundTrip(NoncePayload{Repeat(256, 0x01)});
  ExpectRoundTrip(NotifyPayload{ProtocolId::kNone, {}, NotifyType::kMobikeSupported, {}});
  ExpectRoundTrip(NotifyPayload{ProtocolId::kEsp, {1, 2, 3, 4}, NotifyType::kRekeySa, {}});
  ExpectRoundTrip(
      NotifyPayload{ProtocolId::kNone, {}, NotifyType::kSignatureHashAlgorithms, {0, 2, 0, 3}});
  ExpectRoundTrip(DeletePayload{ProtocolId::kIke, {}});
  ExpectRoundTrip(DeletePayload{ProtocolId::kEsp, {0xc0000001, 0xc0000002}});
  ExpectRoundTrip(VendorIdPayload{Bytes{'M', 'S', 'F', 'T'}});
  ExpectRoundTrip(SkPayload{PayloadType::kNone, Repeat(60, 0x99)});
  ExpectRoundTrip(EapPayload{{2, 1, 0, 9, 1, 'u', 's', 'e', 'r'}});
  ExpectRoundTrip(EapPayload{{3, 9, 0, 4}});
  ExpectRoundTrip(SkfPayload{PayloadType::kNone, 2, 5, Repeat(40, 0x77)});
}

TEST(PayloadRoundTripTest, TrafficSelectors) {
  TsiPayload tsi;
  tsi.selectors.push_back({TsType::kIpv4AddrRange, 0, 0, 65535, {0, 0, 0, 0}, {255, 255, 255, 255}});
  tsi.selectors.push_back({TsType::kIpv6AddrRange, 17, 500, 4500, Repeat(16, 0), Repeat(16, 0xff)});
  ExpectRoundTrip(tsi);
  ExpectRoundTrip(TsrPayload{});
}

TEST(PayloadRoundTripTest, Config) {
  ConfigPayload request{CfgType::kRequest,
                        {{ConfigAttributeType::kInternalIp4Address, {}},
                         {ConfigAttributeType::kInternalIp4Dns, {}},
                         {ConfigAttributeType::kInternalIp6Address, {}},
                         {ConfigAttributeType::kMsInternalIp4Server, {}},
                         {ConfigAttributeType::kMsInternalIp6Server, {}}}};
  ExpectRoundTrip(request);
  ConfigPayload reply{CfgType::kReply,
                      {{ConfigAttributeType::kInternalIp4Address, {10, 9, 0, 2}},
                       {ConfigAttributeType::kInternalIp4Netmask, {255, 255, 255, 0}},
                       {ConfigAttributeType::kInternalIp6Address, Concat({Repeat(16, 0xfd), {64}})},
                       {ConfigAttributeType::kInternalIp4Subnet, {10, 0, 0, 0, 255, 0, 0, 0}},
                       {ConfigAttributeType::kApplicationVersion, Bytes{'g', 'w'}},
                       {ConfigAttributeType::kSupportedAttributes, {0, 1, 0, 3}}}};
  ExpectRoundTrip(reply);
}

// --- Byte-exact decoding of RFC layouts ----------------------------------

TEST(PayloadDecodeTest, SaProposalTransformAttribute) {
  const Bytes body = {
      // Proposal (RFC 7296 3.3.1)
      0x00,              // Last Substruc: last proposal
      0x00,              // RESERVED
      0x00, 0x28,        // Proposal Length: 40
      0x01,              // Proposal Num
      0x03,              // Protocol ID: ESP
      0x04,              // SPI Size
      0x03,              // Num Transforms
      0xc0, 0x01, 0x02, 0x03,  // SPI
      // Transform (3.3.2)
      0x03, 0x00, 0x00, 0x0c,  // more transforms, RESERVED, Transform Length 12
      0x01, 0x00, 0x00, 0x14,  // Type ENCR, RESERVED, ID ENCR_AES_GCM_16
      0x80, 0x0e, 0x01, 0x00,  // Attribute (3.3.5): AF=1 Key Length, 256
      // Transform
      0x03, 0x00, 0x00, 0x08,  // more, Length 8
      0x05, 0x00, 0x00, 0x00,  // Type ESN, ID 0 (no ESN)
      // Transform
      0x00, 0x00, 0x00, 0x08,  // last, Length 8
      0x05, 0x00, 0x00, 0x01,  // Type ESN, ID 1 (ESN)
  };
  auto sa = SaPayload::Parse(body);
  ASSERT_TRUE(sa.ok()) << sa.failure().detail;
  ASSERT_EQ(sa->proposals.size(), 1u);
  const Proposal& proposal = sa->proposals[0];
  EXPECT_EQ(proposal.number, 1);
  EXPECT_EQ(proposal.protocol_id, ProtocolId::kEsp);
  EXPECT_EQ(proposal.spi, (Bytes{0xc0, 0x01, 0x02, 0x03}));
  ASSERT_EQ(proposal.transforms.size(), 3u);
  EXPECT_EQ(proposal.transforms[0].type, TransformType::kEncr);
  EXPECT_EQ(proposal.transforms[0].id, static_cast<uint16_t>(EncrId::kAesGcm16));
  EXPECT_EQ(proposal.transforms[0].key_length(), 256);
  EXPECT_EQ(proposal.transforms[1], Transform::Esn(EsnId::kNoEsn));
  EXPECT_EQ(proposal.transforms[2], Transform::Esn(EsnId::kEsn));
  EXPECT_EQ(SerializeBody(*sa), body);
}

TEST(PayloadDecodeTest, Ke) {
  const Bytes body = Concat({{0x00, 0x1f,   // DH Group Num: 31 (Curve25519)
                              0x00, 0x00},  // RESERVED
                             Repeat(32, 0xab)});
  auto ke = KePayload::Parse(body);
  ASSERT_TRUE(ke.ok());
  EXPECT_EQ(ke->group, DhGroup::kCurve25519);
  EXPECT_EQ(ke->data, Repeat(32, 0xab));
}

TEST(PayloadDecodeTest, Identification) {
  const Bytes body = {0x01,              // ID Type: ID_IPV4_ADDR
                      0x00, 0x00, 0x00,  // RESERVED
                      192, 168, 1, 20};  // Identification Data
  auto id = IdiPayload::Parse(body);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(id->id_type, IdType::kIpv4Addr);
  EXPECT_EQ(id->data, (Bytes{192, 168, 1, 20}));
}

TEST(PayloadDecodeTest, CertCertReqAuth) {
  auto cert = CertPayload::Parse({0x04, 0x30, 0x82});  // X.509 Signature, DER
  ASSERT_TRUE(cert.ok());
  EXPECT_EQ(cert->encoding, CertEncoding::kX509Signature);
  EXPECT_EQ(cert->data, (Bytes{0x30, 0x82}));

  auto request = CertReqPayload::Parse(Concat({{0x04}, Repeat(20, 0xcc)}));
  ASSERT_TRUE(request.ok());
  EXPECT_EQ(request->authorities.size(), 20u);

  auto auth = AuthPayload::Parse({0x09,              // Auth Method: ECDSA P-256
                                  0x00, 0x00, 0x00,  // RESERVED
                                  0x01, 0x02});      // Authentication Data
  ASSERT_TRUE(auth.ok());
  EXPECT_EQ(auth->method, AuthMethod::kEcdsaSha256P256);
  EXPECT_EQ(auth->data, (Bytes{0x01, 0x02}));
}

TEST(PayloadDecodeTest, Notify) {
  const Bytes body = {0x03,                    // Protocol ID: ESP
                      0x04,                    // SPI Size
                      0x40, 0x09,              // Notify Message Type: REKEY_SA (16393)
                      0xde, 0xad, 0xbe, 0xef,  // SPI
                      0x01};                   // Notification Data
  auto notify = NotifyPayload::Parse(body);
  ASSERT_TRUE(notify.ok());
  EXPECT_EQ(notify->protocol_id, ProtocolId::kEsp);
  EXPECT_EQ(notify->type, NotifyType::kRekeySa);
  EXPECT_EQ(notify->spi, (Bytes{0xde, 0xad, 0xbe, 0xef}));
  EXPECT_EQ(notify->data, (Bytes{0x01}));
  EXPECT_FALSE(notify->is_error());
}

TEST(PayloadDecodeTest, Delete) {
  const Bytes body = {0x03,                    // Protocol ID: ESP
                      0x04,                    // SPI Size
                      0x00, 0x02,              // Num of SPIs
                      0xc0, 0x00, 0x00, 0x01,  // SPI 1
                      0xc0, 0x00, 0x00, 0x02};  // SPI 2
  auto deletion = DeletePayload::Parse(body);
  ASSERT_TRUE(deletion.ok());
  EXPECT_EQ(deletion->spis, (std::vector<uint32_t>{0xc0000001, 0xc0000002}));
}

TEST(PayloadDecodeTest, TrafficSelector) {
  const Bytes body = {
      0x01,              // Number of TSs
      0x00, 0x00, 0x00,  // RESERVED
      0x07,              // TS Type: TS_IPV4_ADDR_RANGE
      0x06,              // IP Protocol ID: TCP
      0x00, 0x10,        // Selector Length: 16
      0x00, 0x50,        // Start Port: 80
      0x01, 0xbb,        // End Port: 443
      10, 0, 0, 0,       // Starting Address
      10, 0, 0, 255,     // Ending Address
  };
  auto ts = TsiPayload::Parse(body);
  ASSERT_TRUE(ts.ok()) << ts.failure().detail;
  ASSERT_EQ(ts->selectors.size(), 1u);
  const TrafficSelector& selector = ts->selectors[0];
  EXPECT_EQ(selector.type, TsType::kIpv4AddrRange);
  EXPECT_EQ(selector.ip_protocol_id, 6);
  EXPECT_EQ(selector.start_port, 80);
  EXPECT_EQ(selector.end_port, 443);
  EXPECT_EQ(selector.ending_address, (Bytes{10, 0, 0, 255}));
}

TEST(PayloadDecodeTest, ConfigRequestFromWindows) {
  const Bytes body = {
      0x01,              // CFG Type: CFG_REQUEST
      0x00, 0x00, 0x00,  // RESERVED
      0x00, 0x01, 0x00, 0x00,  // INTERNAL_IP4_ADDRESS, Length 0
      0x00, 0x03, 0x00, 0x00,  // INTERNAL_IP4_DNS, Length 0
      0x5b, 0xa0, 0x00, 0x00,  // INTERNAL_IP4_SERVER (23456), Length 0
      0x5b, 0xa1, 0x00, 0x00,  // INTERNAL_IP6_SERVER (23457), Length 0
      0x80, 0x08, 0x00, 0x00,  // R bit set (ignored), INTERNAL_IP6_ADDRESS
  };
  auto config = ConfigPayload::Parse(body);
  ASSERT_TRUE(config.ok()) << config.failure().detail;
  EXPECT_EQ(config->cfg_type, CfgType::kRequest);
  ASSERT_EQ(config->attributes.size(), 5u);
  EXPECT_EQ(config->attributes[2].type, ConfigAttributeType::kMsInternalIp4Server);
  EXPECT_EQ(config->attributes[3].type, ConfigAttributeType::kMsInternalIp6Server);
  EXPECT_EQ(config->attributes[4].type, ConfigAttributeType::kInternalIp6Address);
  EXPECT_TRUE(config->attributes[0].value.empty());
}

TEST(PayloadDecodeTest, EapAndSkf) {
  auto eap = EapPayload::Parse({0x02,        // Code: Response
                                0x05,        // Identifier
                                0x00, 0x06,  // Length: 6
                                0x01,        // Type: Identity
                                'a'});
  ASSERT_TRUE(eap.ok());
  EXPECT_EQ(eap->code(), EapCode::kResponse);
  EXPECT_EQ(eap->identifier(), 5);
  EXPECT_EQ(eap->method_type(), 1);

  auto fragment = SkfPayload::Parse({0x00, 0x02,    // Fragment Number
                                     0x00, 0x03,    // Total Fragments
                                     0xaa, 0xbb});  // IV, ciphertext, ICV
  ASSERT_TRUE(fragment.ok());
  EXPECT_EQ(fragment->fragment_number, 2);
  EXPECT_EQ(fragment->total_fragments, 3);
  EXPECT_EQ(fragment->encrypted, (Bytes{0xaa, 0xbb}));
}

// --- Errors --------------------------------------------------------------

TEST(PayloadErrorTest, SaStructure) {
  const Bytes transform = {0x00, 0x00, 0x00, 0x08, 0x01, 0x00, 0x00, 0x0c};
  auto proposal = [&](uint8_t last, uint8_t number, uint8_t count, const Bytes& transforms) {
    const auto length = static_cast<uint8_t>(8 + transforms.size());
    return Concat({{last, 0, 0, length, number, 0x01, 0x00, count}, transforms});
  };
  // Valid baseline.
  ASSERT_TRUE(SaPayload::Parse(proposal(0, 1, 1, transform)).ok());
  // No proposals at all.
  EXPECT_EQ(ParseError<SaPayload>({}), DecodeError::kInvalidSyntax);
  // Last Substruc says "more" but nothing follows.
  EXPECT_EQ(ParseError<SaPayload>(proposal(2, 1, 1, transform)), DecodeError::kInvalidSyntax);
  // Last Substruc says "last" but another proposal follows.
  EXPECT_EQ(ParseError<SaPayload>(Concat({proposal(0, 1, 1, transform),
                                          proposal(0, 2, 1, transform)})),
            DecodeError::kInvalidSyntax);
  // Proposal numbers must go up by one, starting at 1.
  EXPECT_EQ(ParseError<SaPayload>(Concat({proposal(2, 1, 1, transform),
                                          proposal(0, 3, 1, transform)})),
            DecodeError::kInvalidSyntax);
  EXPECT_EQ(ParseError<SaPayload>(Concat({proposal(2, 2, 1, transform),
                                          proposal(0, 3, 1, transform)})),
            DecodeError::kInvalidSyntax);
  EXPECT_EQ(ParseError<SaPayload>(proposal(0, 0, 1, transform)), DecodeError::kInvalidSyntax);
  // Num Transforms disagrees with the transforms present.
  EXPECT_EQ(ParseError<SaPayload>(proposal(0, 1, 2, transform)), DecodeError::kInvalidSyntax);
  EXPECT_EQ(ParseError<SaPayload>(proposal(0, 1, 0, {})), DecodeError::kInvalidSyntax);
  // Proposal length below its header, and beyond the payload.
  EXPECT_EQ(ParseError<SaPayload>({0, 0, 0, 7, 1, 1, 0, 1}), DecodeError::kBadLength);
  EXPECT_EQ(ParseError<SaPayload>({0, 0, 0, 9, 1, 1, 0, 1}), DecodeError::kBadLength);
  // Transform length below 8.
  EXPECT_EQ(ParseError<SaPayload>(proposal(0, 1, 1, {0, 0, 0, 4, 1, 0, 0, 12})),
            DecodeError::kBadLength);
  // Transform Last Substruc 2 (that is the proposal value).
  EXPECT_EQ(ParseError<SaPayload>(proposal(0, 1, 1, {2, 0, 0, 8, 1, 0, 0, 12})),
            DecodeError::kInvalidSyntax);
  // Key Length in TLV format, and a TLV attribute running past the transform.
  EXPECT_EQ(ParseError<SaPayload>(
                proposal(0, 1, 1, {0, 0, 0, 12, 1, 0, 0, 12, 0x00, 0x0e, 0x00, 0x00})),
            DecodeError::kInvalidSyntax);
  EXPECT_EQ(ParseError<SaPayload>(
                proposal(0, 1, 1, {0, 0, 0, 12, 1, 0, 0, 12, 0x00, 0x01, 0x00, 0x05})),
            DecodeError::kBadLength);
  // SPI sizes: IKE 0 or 8, ESP 4.
  EXPECT_EQ(ParseError<SaPayload>(Concat({{0, 0, 0, 20, 1, 0x01, 4, 1, 1, 2, 3, 4}, transform})),
            DecodeError::kInvalidSyntax);
  EXPECT_EQ(ParseError<SaPayload>(Concat({{0, 0, 0, 16, 1, 0x03, 0, 1}, transform})),
            DecodeError::kInvalidSyntax);
}

TEST(PayloadErrorTest, SaLimits) {
  Proposal many_transforms{1, ProtocolId::kIke, {}, {}};
  for (size_t i = 0; i <= kMaxTransformsPerProposal; ++i) {
    many_transforms.transforms.push_back(Transform::Dh(DhGroup::kModp2048));
  }
  EXPECT_EQ(ParseError<SaPayload>(SerializeBody(SaPayload{{many_transforms}})),
            DecodeError::kTooManySubstructures);

  SaPayload many_proposals;
  for (size_t i = 0; i <= kMaxProposals; ++i) {
    many_proposals.proposals.push_back(
        {static_cast<uint8_t>(i + 1), ProtocolId::kIke, {}, {Transform::Dh(DhGroup::kEcp256)}});
  }
  EXPECT_EQ(ParseError<SaPayload>(SerializeBody(many_proposals)),
            DecodeError::kTooManySubstructures);

  Transform many_attributes = Transform::Encr(EncrId::kAesCbc);
  for (size_t i = 0; i <= kMaxAttributesPerTransform; ++i) {
    many_attributes.attributes.push_back(TransformAttribute::KeyLength(128));
  }
  EXPECT_EQ(ParseError<SaPayload>(
                SerializeBody(SaPayload{{{1, ProtocolId::kIke, {}, {many_attributes}}}})),
            DecodeError::kTooManySubstructures);
}

TEST(PayloadErrorTest, FixedPartsTooShort) {
  EXPECT_EQ(ParseError<KePayload>({0x00, 0x13, 0x00}), DecodeError::kBadLength);
  EXPECT_EQ(ParseError<IdiPayload>({0x02, 0x00}), DecodeError::kBadLength);
  EXPECT_EQ(ParseError<CertPayload>({}), DecodeError::kBadLength);
  EXPECT_EQ(ParseError<CertReqPayload>({}), DecodeError::kBadLength);
  EXPECT_EQ(ParseError<AuthPayload>({0x01, 0x00, 0x00}), DecodeError::kBadLength);
  EXPECT_EQ(ParseError<NotifyPayload>({0x00, 0x00, 0x40}), DecodeError::kBadLength);
  EXPECT_EQ(ParseError<DeletePayload>({0x01, 0x00, 0x00}), DecodeError::kBadLength);
  EXPECT_EQ(ParseError<TsrPayload>({0x01, 0x00, 0x00}), DecodeError::kBadLength);
  EXPECT_EQ(ParseError<ConfigPayload>({0x01, 0x00, 0x00}), DecodeError::kBadLength);
  EXPECT_EQ(ParseError<EapPayload>({0x03, 0x00, 0x00}), DecodeError::kBadLength);
  EXPECT_EQ(ParseError<SkfPayload>({0x00, 0x01, 0x00}), DecodeError::kBadLength);
}

TEST(PayloadErrorTest, ValuesOutOfRange) {
  // KE data size must match a known group.
  EXPECT_EQ(ParseError<KePayload>(Concat({{0x00, 0x13, 0x00, 0x00}, Repeat(63, 1)})),
            DecodeError::kInvalidSyntax);
  // IPv4/IPv6 IDs have fixed sizes.
  EXPECT_EQ(ParseError<IdiPayload>({0x01, 0, 0, 0, 1, 2, 3}), DecodeError::kInvalidSyntax);
  EXPECT_EQ(ParseError<IdrPayload>(Concat({{0x05, 0, 0, 0}, Repeat(4, 1)})),
            DecodeError::kInvalidSyntax);
  // Nonce 16..256 bytes.
  EXPECT_EQ(ParseError<NoncePayload>(Repeat(15, 1)), DecodeError::kInvalidSyntax);
  EXPECT_EQ(ParseError<NoncePayload>(Repeat(257, 1)), DecodeError::kInvalidSyntax);
  // Notify SPI beyond the payload.
  EXPECT_EQ(ParseError<NotifyPayload>({0x03, 0x04, 0x40, 0x09, 1, 2}), DecodeError::kBadLength);
  // Delete: IKE carries no SPIs; ESP SPIs are 4 bytes and must fill the payload.
  EXPECT_EQ(ParseError<DeletePayload>({0x01, 0x08, 0x00, 0x01, 1, 2, 3, 4, 5, 6, 7, 8}),
            DecodeError::kInvalidSyntax);
  EXPECT_EQ(ParseError<DeletePayload>({0x03, 0x04, 0xff, 0xff, 1, 2, 3, 4}),
            DecodeError::kBadLength);
  EXPECT_EQ(ParseError<DeletePayload>({0x03, 0x08, 0x00, 0x01, 1, 2, 3, 4, 5, 6, 7, 8}),
            DecodeError::kInvalidSyntax);
  // Traffic selectors: count, type and length.
  const Bytes ts4 = {7, 0, 0, 16, 0, 0, 0xff, 0xff, 10, 0, 0, 0, 10, 0, 0, 255};
  EXPECT_EQ(ParseError<TsiPayload>(Concat({{2, 0, 0, 0}, ts4})), DecodeError::kBadLength);
  EXPECT_EQ(ParseError<TsiPayload>(Concat({{1, 0, 0, 0}, ts4, ts4})), DecodeError::kBadLength);
  EXPECT_EQ(ParseError<TsiPayload>({1, 0, 0, 0, 9, 0, 0, 16, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8}),
            DecodeError::kInvalidSyntax);
  EXPECT_EQ(ParseError<TsiPayload>({1, 0, 0, 0, 8, 0, 0, 16, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8}),
            DecodeError::kBadLength);
  // CP: type 1..4, attribute lengths.
  EXPECT_EQ(ParseError<ConfigPayload>({0x05, 0, 0, 0}), DecodeError::kInvalidSyntax);
  EXPECT_EQ(ParseError<ConfigPayload>({0x02, 0, 0, 0, 0x00, 0x01, 0x00, 0x03, 10, 0, 0}),
            DecodeError::kInvalidSyntax);
  EXPECT_EQ(ParseError<ConfigPayload>({0x02, 0, 0, 0, 0x00, 0x01, 0x00, 0x04, 10, 0}),
            DecodeError::kBadLength);
  // EAP Length must equal the payload body.
  EXPECT_EQ(ParseError<EapPayload>({0x02, 0x01, 0x00, 0x07, 0x01, 'a'}), DecodeError::kBadLength);
  EXPECT_EQ(ParseError<EapPayload>({0x02, 0x01, 0x00, 0x04}), DecodeError::kInvalidSyntax);
  // SKF: 1 <= number <= total.
  EXPECT_EQ(ParseError<SkfPayload>({0, 0, 0, 1, 0xaa}), DecodeError::kInvalidSyntax);
  EXPECT_EQ(ParseError<SkfPayload>({0, 3, 0, 2, 0xaa}), DecodeError::kInvalidSyntax);
  // X.509 CERTREQ is a list of 20-byte hashes.
  EXPECT_EQ(ParseError<CertReqPayload>(Concat({{0x04}, Repeat(21, 1)})), DecodeError::kBadLength);
}

TEST(PayloadErrorTest, UnknownPayloadTypes) {
  auto skipped = ParsePayload(static_cast<PayloadType>(200), PayloadType::kNone, false, {1, 2});
  ASSERT_TRUE(skipped.ok());
  ASSERT_NE(skipped->As<UnknownPayload>(), nullptr);
  EXPECT_EQ(skipped->type(), static_cast<PayloadType>(200));
  EXPECT_EQ(skipped->As<UnknownPayload>()->body, (Bytes{1, 2}));

  auto rejected = ParsePayload(static_cast<PayloadType>(200), PayloadType::kNone, true, {});
  ASSERT_FALSE(rejected.ok());
  EXPECT_EQ(rejected.failure().error, DecodeError::kUnsupportedCriticalPayload);
  EXPECT_EQ(rejected.failure().notify, NotifyType::kUnsupportedCriticalPayload);
  EXPECT_EQ(rejected.failure().notify_data, (Bytes{200}));

  // The critical bit is ignored for known types.
  auto known = ParsePayload(PayloadType::kVendorId, PayloadType::kNone, true, {1});
  ASSERT_TRUE(known.ok());
  EXPECT_TRUE(known->critical);
}

}  // namespace
}  // namespace vpn::ike::codec
