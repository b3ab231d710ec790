#include "ike-service/codec/message.h"

#include <initializer_list>
#include <vector>

#include "gtest/gtest.h"
#include "ike-service/codec/test_vectors.h"

namespace vpn::ike::codec {
namespace {

using test_vectors::FromHex;

Bytes Concat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& part : parts) out.insert(out.end(), part.begin(), part.end());
  return out;
}

Bytes Repeat(size_t count, uint8_t byte) { return Bytes(count, byte); }

// An IKE header (RFC 7296 3.1) with the given first payload and total length.
Bytes IkeHeader(uint8_t next_payload, uint8_t exchange, uint8_t flags, uint32_t length,
                uint8_t version = 0x20) {
  return {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,  // IKE SA Initiator's SPI
          0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // IKE SA Responder's SPI
          next_payload,                                    // Next Payload
          version,                                         // MjVer | MnVer
          exchange,                                        // Exchange Type
          flags,                                           // Flags
          0x00, 0x00, 0x00, 0x00,                          // Message ID
          static_cast<uint8_t>(length >> 24), static_cast<uint8_t>(length >> 16),
          static_cast<uint8_t>(length >> 8), static_cast<uint8_t>(length)};  // Length
}

// A generic payload header (RFC 7296 3.2).
Bytes PayloadHeader(uint8_t next_payload, uint16_t length, bool critical = false) {
  return {next_payload, static_cast<uint8_t>(critical ? 0x80 : 0x00),
          static_cast<uint8_t>(length >> 8), static_cast<uint8_t>(length)};
}

// HDR, SAi1, KEi, Ni, N(NAT_DETECTION_SOURCE_IP), assembled from the RFC
// layouts: 212 bytes.
Bytes HandBuiltIkeSaInit() {
  return Concat({
      IkeHeader(33 /*SA*/, 34 /*IKE_SA_INIT*/, 0x08 /*I*/, 212),
      PayloadHeader(34 /*KE*/, 48),
      {0x00, 0x00, 0x00, 0x2c,  // last proposal, RESERVED, Proposal Length 44
       0x01, 0x01, 0x00, 0x04},  // Proposal Num 1, IKE, SPI Size 0, 4 transforms
      {0x03, 0x00, 0x00, 0x0c, 0x01, 0x00, 0x00, 0x0c,  // ENCR_AES_CBC
       0x80, 0x0e, 0x00, 0x80},                          //   Key Length 128
      {0x03, 0x00, 0x00, 0x08, 0x02, 0x00, 0x00, 0x05},  // PRF_HMAC_SHA2_256
      {0x03, 0x00, 0x00, 0x08, 0x03, 0x00, 0x00, 0x0c},  // AUTH_HMAC_SHA2_256_128
      {0x00, 0x00, 0x00, 0x08, 0x04, 0x00, 0x00, 0x13},  // last: DH group 19
      PayloadHeader(40 /*Nonce*/, 72),
      {0x00, 0x13, 0x00, 0x00},  // DH Group Num 19, RESERVED
      Repeat(64, 0x11),          // Key Exchange Data
      PayloadHeader(41 /*N*/, 36),
      Repeat(32, 0x22),  // Nonce Data
      PayloadHeader(0, 28),
      {0x00, 0x00, 0x40, 0x04},  // Protocol ID 0, SPI Size 0, NAT_DETECTION_SOURCE_IP
      Repeat(20, 0x33),          // SHA-1 hash
  });
}

DecodeFailure DecodeFailureOf(const Bytes& datagram) {
  auto decoded = DecodeMessage(datagram);
  EXPECT_FALSE(decoded.ok());
  return decoded.ok() ? DecodeFailure{} : decoded.failure();
}

void SetHeaderLength(Bytes* datagram) {
  const auto size = static_cast<uint32_t>(datagram->size());
  for (int i = 0; i < 4; ++i) (*datagram)[24 + i] = static_cast<uint8_t>(size >> (8 * (3 - i)));
}

TEST(DecodeMessageTest, HandBuiltIkeSaInit) {
  const Bytes datagram = HandBuiltIkeSaInit();
  ASSERT_EQ(datagram.size(), 212u);
  auto message = DecodeMessage(datagram);
  ASSERT_TRUE(message.ok()) << message.failure().detail;

  const Header& header = message->header;
  EXPECT_EQ(header.initiator_spi, 0x0102030405060708u);
  EXPECT_EQ(header.responder_spi, 0u);
  EXPECT_EQ(header.exchange_type, ExchangeType::kIkeSaInit);
  EXPECT_TRUE(header.initiator);
  EXPECT_FALSE(header.response);
  EXPECT_EQ(header.message_id, 0u);
  EXPECT_EQ(header.length, 212u);

  ASSERT_EQ(message->payloads.size(), 4u);
  const auto* sa = message->Find<SaPayload>();
  ASSERT_NE(sa, nullptr);
  ASSERT_EQ(sa->proposals.size(), 1u);
  EXPECT_EQ(sa->proposals[0].transforms,
            (std::vector<Transform>{Transform::Encr(EncrId::kAesCbc, 128),
                                    Transform::Prf(PrfId::kHmacSha2_256),
                                    Transform::Integ(IntegId::kHmacSha2_256_128),
                                    Transform::Dh(DhGroup::kEcp256)}));
  const auto* ke = message->Find<KePayload>();
  ASSERT_NE(ke, nullptr);
  EXPECT_EQ(ke->group, DhGroup::kEcp256);
  EXPECT_EQ(ke->data, Repeat(64, 0x11));
  ASSERT_NE(message->Find<NoncePayload>(), nullptr);
  EXPECT_EQ(message->Find<NoncePayload>()->data, Repeat(32, 0x22));
  const auto* notify = message->Find<NotifyPayload>();
  ASSERT_NE(notify, nullptr);
  EXPECT_EQ(notify->type, NotifyType::kNatDetectionSourceIp);
  EXPECT_EQ(notify->data, Repeat(20, 0x33));

  EXPECT_EQ(EncodeMessage(*message), datagram);
}

TEST(EncodeMessageTest, BuildsTheSameBytesFromStructs) {
  Message message;
  message.header.initiator_spi = 0x0102030405060708;
  message.header.exchange_type = ExchangeType::kIkeSaInit;
  message.header.initiator = true;
  message.payloads = {
      {SaPayload{{{1, ProtocolId::kIke, {}, {Transform::Encr(EncrId::kAesCbc, 128),
                                             Transform::Prf(PrfId::kHmacSha2_256),
                                             Transform::Integ(IntegId::kHmacSha2_256_128),
                                             Transform::Dh(DhGroup::kEcp256)}}}}},
      {KePayload{DhGroup::kEcp256, Repeat(64, 0x11)}},
      {NoncePayload{Repeat(32, 0x22)}},
      {NotifyPayload{ProtocolId::kNone, {}, NotifyType::kNatDetectionSourceIp, Repeat(20, 0x33)}},
  };
  EXPECT_EQ(EncodeMessage(message), HandBuiltIkeSaInit());
}

TEST(DecodeMessageTest, StrongswanWindowsProposals) {
  const Bytes datagram = FromHex(test_vectors::kStrongswanWindowsIkeSaInit);
  ASSERT_EQ(datagram.size(), 376u);
  auto message = DecodeMessage(datagram);
  ASSERT_TRUE(message.ok()) << message.failure().detail;
  EXPECT_EQ(message->header.exchange_type, ExchangeType::kIkeSaInit);
  EXPECT_TRUE(message->header.initiator);
  EXPECT_EQ(message->header.message_id, 0u);

  // 3des-sha1-modp1024, aes256-sha1-modp1024.
  const auto* sa = message->Find<SaPayload>();
  ASSERT_NE(sa, nullptr);
  ASSERT_EQ(sa->proposals.size(), 2u);
  EXPECT_EQ(sa->proposals[0].transforms,
            (std::vector<Transform>{Transform::Encr(EncrId::k3des),
                                    Transform::Integ(IntegId::kHmacSha1_96),
                                    Transform::Prf(PrfId::kHmacSha1),
                                    Transform::Dh(DhGroup::kModp1024)}));
  EXPECT_EQ(sa->proposals[1].number, 2);
  EXPECT_EQ(sa->proposals[1].transforms[0], Transform::Encr(EncrId::kAesCbc, 256));

  const auto* ke = message->Find<KePayload>();
  ASSERT_NE(ke, nullptr);
  EXPECT_EQ(ke->group, DhGroup::kModp1024);
  EXPECT_EQ(ke->data.size(), 128u);

  std::vector<NotifyType> notifies;
  for (const Payload& payload : message->payloads) {
    if (const auto* notify = payload.As<NotifyPayload>()) notifies.push_back(notify->type);
  }
  EXPECT_EQ(notifies, (std::vector<NotifyType>{NotifyType::kNatDetectionSourceIp,
                                               NotifyType::kNatDetectionDestinationIp,
                                               NotifyType::kIkev2FragmentationSupported,
                                               NotifyType::kSignatureHashAlgorithms,
                                               NotifyType::kRedirectSupported}));
  EXPECT_EQ(EncodeMessage(*message), datagram);
}

TEST(DecodeMessageTest, StrongswanDefaultProposals) {
  const Bytes datagram = FromHex(test_vectors::kStrongswanDefaultIkeSaInit);
  ASSERT_EQ(datagram.size(), 1048u);
  auto message = DecodeMessage(datagram);
  ASSERT_TRUE(message.ok()) << message.failure().detail;
  const auto* sa = message->Find<SaPayload>();
  ASSERT_NE(sa, nullptr);
  ASSERT_GE(sa->proposals.size(), 2u);
  EXPECT_EQ(sa->proposals[0].transforms.size(), 38u);
  const auto* ke = message->Find<KePayload>();
  ASSERT_NE(ke, nullptr);
  EXPECT_EQ(ke->group, DhGroup::kCurve25519);
  EXPECT_EQ(EncodeMessage(*message), datagram);
}

// Every strict prefix of a valid datagram is rejected, both as is and with
// the header Length rewritten to match the prefix (so the cut falls inside
// the payloads).
TEST(DecodeMessageTest, EveryTruncationIsAnError) {
  const std::vector<Bytes> datagrams = {
      HandBuiltIkeSaInit(), FromHex(test_vectors::kStrongswanWindowsIkeSaInit),
      FromHex(test_vectors::kStrongswanDefaultIkeSaInit)};
  for (const Bytes& datagram : datagrams) {
    for (size_t size = 0; size < datagram.size(); ++size) {
      Bytes prefix(datagram.begin(), datagram.begin() + size);
      auto decoded = DecodeMessage(prefix);
      ASSERT_FALSE(decoded.ok()) << "prefix of " << size;
      EXPECT_EQ(decoded.failure().error, DecodeError::kTruncated) << "prefix of " << size;
      if (size < kHeaderSize) continue;
      SetHeaderLength(&prefix);
      decoded = DecodeMessage(prefix);
      ASSERT_FALSE(decoded.ok()) << "prefix of " << size << " with its length";
      EXPECT_EQ(decoded.failure().notify, NotifyType::kInvalidSyntax);
    }
  }
}

TEST(DecodeMessageTest, HeaderErrors) {
  // Wrong major version: INVALID_MAJOR_VERSION, and the header is still
  // readable for the reply.
  Bytes datagram = HandBuiltIkeSaInit();
  datagram[17] = 0x30;
  DecodeFailure failure = DecodeFailureOf(datagram);
  EXPECT_EQ(failure.error, DecodeError::kBadVersion);
  EXPECT_EQ(failure.notify, NotifyType::kInvalidMajorVersion);
  const auto peeked = PeekHeader(datagram);
  ASSERT_TRUE(peeked.has_value());
  EXPECT_EQ(peeked->initiator_spi, 0x0102030405060708u);
  EXPECT_EQ(DecodeFailureOf(Concat({IkeHeader(0, 34, 0x08, 28, 0x10)})).error,
            DecodeError::kBadVersion);  // IKEv1
  EXPECT_FALSE(PeekHeader(Repeat(27, 0)).has_value());

  // A higher minor version is accepted; reserved flags and V are dropped.
  datagram = HandBuiltIkeSaInit();
  datagram[17] = 0x21;
  datagram[19] = 0x08 | 0x10 | 0x01;
  auto message = DecodeMessage(datagram);
  ASSERT_TRUE(message.ok());
  EXPECT_TRUE(message->header.initiator);
  EXPECT_EQ(EncodeMessage(*message), HandBuiltIkeSaInit());

  // Length field vs datagram size.
  datagram = HandBuiltIkeSaInit();
  datagram.push_back(0);
  EXPECT_EQ(DecodeFailureOf(datagram).error, DecodeError::kBadLength);
  datagram = HandBuiltIkeSaInit();
  datagram[27] += 1;
  EXPECT_EQ(DecodeFailureOf(datagram).error, DecodeError::kTruncated);
  EXPECT_EQ(DecodeFailureOf(IkeHeader(0, 34, 0x08, 27)).error, DecodeError::kBadLength);
  EXPECT_EQ(DecodeFailureOf(IkeHeader(0, 34, 0x08, 0)).error, DecodeError::kBadLength);
  EXPECT_EQ(DecodeFailureOf(Repeat(27, 0)).error, DecodeError::kTruncated);

  // A header alone is a valid (empty) message.
  EXPECT_TRUE(DecodeMessage(IkeHeader(0, 37, 0x20, 28)).ok());
}

TEST(DecodeMessageTest, PayloadLengthErrors) {
  for (uint16_t length : {0, 1, 2, 3}) {
    const Bytes datagram = Concat({IkeHeader(43, 37, 0, 32), PayloadHeader(0, length)});
    const DecodeFailure failure = DecodeFailureOf(datagram);
    EXPECT_EQ(failure.error, DecodeError::kBadLength) << length;
    EXPECT_EQ(failure.notify, NotifyType::kInvalidSyntax);
  }
  // Payload length beyond the message.
  EXPECT_EQ(DecodeFailureOf(Concat({IkeHeader(43, 37, 0, 33), PayloadHeader(0, 6), {1}})).error,
            DecodeError::kTruncated);
  // Bytes after the payload whose Next Payload is none.
  EXPECT_EQ(DecodeFailureOf(Concat({IkeHeader(43, 37, 0, 34), PayloadHeader(0, 5), {1, 2}})).error,
            DecodeError::kBadLength);
  // Next Payload promises one more, but the message ends.
  EXPECT_EQ(DecodeFailureOf(Concat({IkeHeader(43, 37, 0, 33), PayloadHeader(43, 5), {1}})).error,
            DecodeError::kTruncated);
  // A known payload shorter than its fixed part (KE with 2 bytes).
  EXPECT_EQ(DecodeFailureOf(Concat({IkeHeader(34, 37, 0, 34), PayloadHeader(0, 6), {0, 19}})).error,
            DecodeError::kBadLength);
}

TEST(DecodeMessageTest, UnknownPayloads) {
  // Critical: UNSUPPORTED_CRITICAL_PAYLOAD with the type as data.
  const Bytes critical = Concat({IkeHeader(43, 37, 0, 41), PayloadHeader(99, 5), {0x01},
                                 PayloadHeader(0, 8, /*critical=*/true), {1, 2, 3, 4}});
  const DecodeFailure failure = DecodeFailureOf(critical);
  EXPECT_EQ(failure.error, DecodeError::kUnsupportedCriticalPayload);
  EXPECT_EQ(failure.notify, NotifyType::kUnsupportedCriticalPayload);
  EXPECT_EQ(failure.notify_data, (Bytes{99}));

  // Not critical: skipped, kept raw, and re-encoded as it was.
  const Bytes skipped = Concat({IkeHeader(43, 37, 0, 41), PayloadHeader(99, 5), {0x01},
                                PayloadHeader(0, 8), {1, 2, 3, 4}});
  auto message = DecodeMessage(skipped);
  ASSERT_TRUE(message.ok()) << message.failure().detail;
  ASSERT_EQ(message->payloads.size(), 2u);
  const auto* unknown = message->payloads[1].As<UnknownPayload>();
  ASSERT_NE(unknown, nullptr);
  EXPECT_EQ(unknown->type, static_cast<PayloadType>(99));
  EXPECT_EQ(unknown->body, (Bytes{1, 2, 3, 4}));
  EXPECT_EQ(EncodeMessage(*message), skipped);
}

TEST(DecodeMessageTest, TooManyPayloads) {
  Message message;
  for (size_t i = 0; i < kMaxPayloads; ++i) message.payloads.push_back({VendorIdPayload{{1}}});
  ASSERT_TRUE(DecodeMessage(EncodeMessage(message)).ok());
  message.payloads.push_back({VendorIdPayload{{1}}});
  const DecodeFailure failure = DecodeFailureOf(EncodeMessage(message));
  EXPECT_EQ(failure.error, DecodeError::kTooManyPayloads);
  EXPECT_EQ(failure.notify, NotifyType::kInvalidSyntax);
}

TEST(DecodeMessageTest, ErrorsInsidePayloadsCarryContext) {
  Message message;
  message.payloads = {{VendorIdPayload{{1}}}, {NoncePayload{Repeat(8, 1)}}};
  const DecodeFailure failure = DecodeFailureOf(EncodeMessage(message));
  EXPECT_EQ(failure.error, DecodeError::kInvalidSyntax);
  EXPECT_NE(failure.detail.find("payload 2 (type 40)"), std::string::npos) << failure.detail;
}

Header ProtectedHeader() {
  Header header;
  header.initiator_spi = 0x0102030405060708;
  header.responder_spi = 0x1112131415161718;
  header.exchange_type = ExchangeType::kIkeAuth;
  header.initiator = true;
  header.message_id = 1;
  return header;
}

TEST(EncryptedPayloadTest, SkDecodesKeepsCiphertextAndIsLast) {
  const Bytes encrypted = Concat({Repeat(16, 0x01), Repeat(32, 0x02), Repeat(12, 0x03)});
  const Bytes datagram = Concat({
      {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,   // SPIi
       0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,   // SPIr
       46, 0x20, 35, 0x08,                               // SK, 2.0, IKE_AUTH, I
       0x00, 0x00, 0x00, 0x01,                           // Message ID 1
       0x00, 0x00, 0x00, 0x5c},                          // Length 92
      PayloadHeader(35 /*IDi: first inner payload*/, 64),
      encrypted,
  });
  auto message = DecodeMessage(datagram);
  ASSERT_TRUE(message.ok()) << message.failure().detail;
  ASSERT_EQ(message->payloads.size(), 1u);
  const auto* sk = message->Find<SkPayload>();
  ASSERT_NE(sk, nullptr);
  EXPECT_EQ(sk->inner_first_payload, PayloadType::kIdi);
  EXPECT_EQ(sk->encrypted, encrypted);
  EXPECT_EQ(EncodeMessage(*message), datagram);

  // The prefix for encryption is exactly the bytes before the IV.
  const Bytes prefix = EncodeSkPrefix(ProtectedHeader(), PayloadType::kIdi, {16, 32, 12});
  EXPECT_EQ(prefix, Bytes(datagram.begin(), datagram.end() - encrypted.size()));

  // Anything after SK is an error.
  Bytes trailing = Concat({datagram, PayloadHeader(0, 4)});
  SetHeaderLength(&trailing);
  EXPECT_EQ(DecodeFailureOf(trailing).error, DecodeError::kInvalidSyntax);
}

TEST(EncryptedPayloadTest, SkfPrefixMatchesEncodeMessage) {
  Message message;
  message.header = ProtectedHeader();
  message.payloads = {{SkfPayload{PayloadType::kNone, 2, 3, Repeat(40, 0x44)}}};
  const Bytes datagram = EncodeMessage(message);
  const Bytes prefix = EncodeSkfPrefix(ProtectedHeader(), PayloadType::kNone, 2, 3, {8, 20, 12});
  ASSERT_EQ(prefix.size(), kHeaderSize + kGenericPayloadHeaderSize + kSkfFragmentHeaderSize);
  EXPECT_EQ(prefix, Bytes(datagram.begin(), datagram.begin() + prefix.size()));

  auto decoded = DecodeMessage(datagram);
  ASSERT_TRUE(decoded.ok()) << decoded.failure().detail;
  EXPECT_EQ(decoded->payloads, message.payloads);
}

TEST(EncryptedPayloadTest, SkPrefixRejectsOversizedMessages) {
  EXPECT_TRUE(EncodeSkPrefix(ProtectedHeader(), PayloadType::kIdi, {16, 70000, 16}).empty());
}

TEST(PayloadChainTest, InnerIkeAuthRoundTrip) {
  ConfigPayload config{CfgType::kRequest,
                       {{ConfigAttributeType::kInternalIp4Address, {}},
                        {ConfigAttributeType::kMsInternalIp4Server, {}}}};
  TsiPayload tsi{{{TsType::kIpv4AddrRange, 0, 0, 65535, {0, 0, 0, 0}, {255, 255, 255, 255}}}};
  const std::vector<Payload> inner = {
      {IdiPayload{IdType::kIpv4Addr, {192, 0, 2, 10}}},
      {CertReqPayload{CertEncoding::kX509Signature, Repeat(20, 0xee)}},
      {NotifyPayload{ProtocolId::kNone, {}, NotifyType::kMobikeSupported, {}}},
      {IdrPayload{IdType::kFqdn, Bytes{'g', 'w'}}},
      {config},
      {SaPayload{{{1, ProtocolId::kEsp, {0xc0, 0, 0, 1},
                   {Transform::Encr(EncrId::kAesCbc, 256), Transform::Integ(IntegId::kHmacSha1_96),
                    Transform::Esn(EsnId::kNoEsn)}}}}},
      {tsi},
      {TsrPayload{tsi.selectors}},
      {EapPayload{{2, 0, 0, 6, 1, 'a'}}},
  };
  const Bytes plaintext = EncodePayloadChain(inner);
  ASSERT_FALSE(plaintext.empty());
  EXPECT_EQ(plaintext[0], 38);  // IDi's Next Payload: CERTREQ
  auto decoded = DecodePayloadChain(PayloadType::kIdi, plaintext);
  ASSERT_TRUE(decoded.ok()) << decoded.failure().detail;
  EXPECT_EQ(*decoded, inner);

  // The first type must be right, and SK may not nest.
  EXPECT_FALSE(DecodePayloadChain(PayloadType::kNonce, plaintext).ok());
  const Bytes nested = EncodePayloadChain({{SkPayload{PayloadType::kIdi, Repeat(8, 1)}}});
  EXPECT_EQ(DecodePayloadChain(PayloadType::kSk, nested).failure().error,
            DecodeError::kInvalidSyntax);
  EXPECT_TRUE(DecodePayloadChain(PayloadType::kNone, {}).ok());
}

TEST(EncodeMessageTest, OverflowGivesEmptyResult) {
  Message message;
  message.payloads = {{VendorIdPayload{Repeat(65532, 1)}}};
  EXPECT_TRUE(EncodeMessage(message).empty());
  message.payloads = {{VendorIdPayload{Repeat(65531, 1)}}};
  EXPECT_EQ(EncodeMessage(message).size(), kHeaderSize + 65535);
}

}  // namespace
}  // namespace vpn::ike::codec
