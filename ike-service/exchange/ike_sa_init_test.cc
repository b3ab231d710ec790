// IKE_SA_INIT against requests captured from strongSwan 5.9.8.
#include "ike-service/exchange/ike_sa_init.h"

#include <gtest/gtest.h>

#include <functional>
#include <vector>

#include "ike-service/codec/test_vectors.h"
#include "ike-service/exchange/nat_detection.h"

namespace vpn::ike {
namespace {

using codec::NotifyType;

class IkeSaInitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const std::string& text : DefaultIkeProposals()) {
      policy_.ike_proposals.push_back(*ParseProposalPolicy(text, ProposalKind::kIke));
    }
    local_ = *net::IpEndpoint::Parse("192.0.2.1:500");
    remote_ = *net::IpEndpoint::Parse("192.0.2.2:500");
  }

  codec::Message Decode(const std::vector<uint8_t>& bytes) {
    auto decoded = codec::DecodeMessage(bytes);
    EXPECT_TRUE(decoded.ok());
    return *decoded;
  }

  const codec::NotifyPayload* FindNotify(const codec::Message& message, NotifyType type) {
    return codec::FindNotify(message.payloads, type);
  }

  ResponderPolicy policy_;
  net::IpEndpoint local_, remote_;
};

TEST_F(IkeSaInitTest, AnswersWindowsProposalsWithModp1024) {
  const std::vector<uint8_t> raw =
      codec::test_vectors::FromHex(codec::test_vectors::kStrongswanWindowsIkeSaInit);
  const codec::Message request = Decode(raw);
  IkeSaInitResult result = HandleIkeSaInit(request, raw, local_, remote_, policy_, nullptr);
  ASSERT_NE(result.sa, nullptr) << result.error;
  const IkeSa& sa = *result.sa;
  EXPECT_EQ(sa.transforms.key_exchange, 2);
  EXPECT_EQ(sa.transforms.prf, 2);  // PRF-HMAC-SHA1, as offered
  EXPECT_NE(sa.spi_r, 0u);
  EXPECT_EQ(sa.nonce_r.size(), 32u);
  EXPECT_EQ(sa.init_request, raw);
  EXPECT_FALSE(sa.keys.sk_d.empty());
  EXPECT_NE(sa.from_initiator, nullptr);

  const codec::Message& response = result.response;
  EXPECT_TRUE(response.header.response);
  EXPECT_FALSE(response.header.initiator);
  EXPECT_EQ(response.header.responder_spi, sa.spi_r);
  const auto* sa_payload = response.Find<codec::SaPayload>();
  ASSERT_NE(sa_payload, nullptr);
  ASSERT_EQ(sa_payload->proposals.size(), 1u);
  const auto* ke = response.Find<codec::KePayload>();
  ASSERT_NE(ke, nullptr);
  EXPECT_EQ(ke->data.size(), 128u);
  // Our NAT detection hashes use the final SPIs and the addresses we see.
  const auto* source = FindNotify(response, NotifyType::kNatDetectionSourceIp);
  ASSERT_NE(source, nullptr);
  EXPECT_EQ(source->data, NatDetectionHash(sa.spi_i, sa.spi_r, local_));
  const auto* destination = FindNotify(response, NotifyType::kNatDetectionDestinationIp);
  ASSERT_NE(destination, nullptr);
  EXPECT_EQ(destination->data, NatDetectionHash(sa.spi_i, sa.spi_r, remote_));
  // The capture came from another address, so its hashes do not match ours:
  // the initiator looks as if it were behind a NAT.
  EXPECT_TRUE(sa.initiator_behind_nat);
  EXPECT_TRUE(sa.peer_supports_fragmentation);
  EXPECT_NE(FindNotify(response, NotifyType::kIkev2FragmentationSupported), nullptr);
  EXPECT_NE(FindNotify(response, NotifyType::kSignatureHashAlgorithms), nullptr);
  EXPECT_FALSE(codec::EncodeMessage(response).empty());
}

TEST_F(IkeSaInitTest, ModernRequestGetsCurve25519) {
  const std::vector<uint8_t> raw =
      codec::test_vectors::FromHex(codec::test_vectors::kStrongswanDefaultIkeSaInit);
  IkeSaInitResult result = HandleIkeSaInit(Decode(raw), raw, local_, remote_, policy_, nullptr);
  ASSERT_NE(result.sa, nullptr) << result.error;
  EXPECT_EQ(result.sa->transforms.key_exchange, 31);
  EXPECT_TRUE(result.sa->transforms.is_aead() || result.sa->transforms.integrity != 0);
}

TEST_F(IkeSaInitTest, AsksForAnotherGroupWithInvalidKePayload) {
  policy_.ike_proposals = {*ParseProposalPolicy("aes256-sha1-modp2048", ProposalKind::kIke)};
  codec::Message request = Decode(
      codec::test_vectors::FromHex(codec::test_vectors::kStrongswanWindowsIkeSaInit));
  // Offer MODP2048 too, but send a MODP1024 KE payload.
  for (codec::Payload& payload : request.payloads) {
    if (auto* sa = payload.As<codec::SaPayload>()) {
      for (codec::Proposal& proposal : sa->proposals) {
        proposal.transforms.push_back(codec::Transform::Dh(codec::DhGroup::kModp2048));
      }
    }
  }
  const std::vector<uint8_t> raw = codec::EncodeMessage(request);
  IkeSaInitResult result = HandleIkeSaInit(Decode(raw), raw, local_, remote_, policy_, nullptr);
  EXPECT_EQ(result.sa, nullptr);
  const auto* notify = FindNotify(result.response, NotifyType::kInvalidKePayload);
  ASSERT_NE(notify, nullptr) << result.error;
  EXPECT_EQ(notify->data, (codec::Bytes{0, 14}));
}

TEST_F(IkeSaInitTest, NoProposalChosen) {
  policy_.ike_proposals = {
      *ParseProposalPolicy("aes256gcm16-prfsha384-ecp384", ProposalKind::kIke)};
  const std::vector<uint8_t> raw =
      codec::test_vectors::FromHex(codec::test_vectors::kStrongswanWindowsIkeSaInit);
  IkeSaInitResult result = HandleIkeSaInit(Decode(raw), raw, local_, remote_, policy_, nullptr);
  EXPECT_EQ(result.sa, nullptr);
  EXPECT_NE(FindNotify(result.response, NotifyType::kNoProposalChosen), nullptr);
}

TEST_F(IkeSaInitTest, CookieRoundTrip) {
  CookieJar cookies;
  codec::Message request = Decode(
      codec::test_vectors::FromHex(codec::test_vectors::kStrongswanWindowsIkeSaInit));
  std::vector<uint8_t> raw = codec::EncodeMessage(request);
  IkeSaInitResult first = HandleIkeSaInit(request, raw, local_, remote_, policy_, &cookies);
  EXPECT_EQ(first.sa, nullptr);
  const auto* cookie = FindNotify(first.response, NotifyType::kCookie);
  ASSERT_NE(cookie, nullptr);
  // The client repeats its request with the cookie first (§2.6).
  codec::NotifyPayload echo;
  echo.type = NotifyType::kCookie;
  echo.data = cookie->data;
  request.payloads.insert(request.payloads.begin(), codec::Payload{echo});
  raw = codec::EncodeMessage(request);
  IkeSaInitResult second =
      HandleIkeSaInit(Decode(raw), raw, local_, remote_, policy_, &cookies);
  EXPECT_NE(second.sa, nullptr) << second.error;
  // The same cookie from another address is refused.
  const net::IpEndpoint elsewhere = *net::IpEndpoint::Parse("198.51.100.9:500");
  IkeSaInitResult forged =
      HandleIkeSaInit(Decode(raw), raw, local_, elsewhere, policy_, &cookies);
  EXPECT_EQ(forged.sa, nullptr);
}

// RFC 7296 3.1/1.2/3.10.1: malformed requests get no unprotected answer.
TEST_F(IkeSaInitTest, DropsMalformedRequestsWithoutAnswer) {
  const std::vector<uint8_t> raw =
      codec::test_vectors::FromHex(codec::test_vectors::kStrongswanWindowsIkeSaInit);
  const codec::Message good = Decode(raw);
  ASSERT_FALSE(MalformedIkeSaInit(good).has_value());

  struct Case {
    const char* label;
    std::function<void(codec::Message&)> change;
  };
  const std::vector<Case> cases = {
      {"zero_spi", [](codec::Message& m) { m.header.initiator_spi = 0; }},
      {"not_initiator", [](codec::Message& m) { m.header.initiator = false; }},
      {"message_id", [](codec::Message& m) { m.header.message_id = 1; }},
      {"payload_count", [](codec::Message& m) { m.payloads.push_back(m.payloads.front()); }},
      {"payload_count",
       [](codec::Message& m) {
         m.payloads.erase(m.payloads.begin() + 1);  // the KE
       }},
      {"unexpected_payload",
       [](codec::Message& m) {
         codec::AuthPayload auth;
         auth.data = {1, 2, 3};
         m.payloads.push_back(codec::Payload{auth});
       }},
  };
  for (const Case& c : cases) {
    codec::Message bad = good;
    c.change(bad);
    auto malformed = MalformedIkeSaInit(bad);
    ASSERT_TRUE(malformed.has_value()) << c.label;
    EXPECT_EQ(malformed->first, c.label);
    IkeSaInitResult result = HandleIkeSaInit(bad, raw, local_, remote_, policy_, nullptr);
    EXPECT_TRUE(result.drop) << c.label;
    EXPECT_EQ(result.refusal, c.label);
    EXPECT_EQ(result.sa, nullptr);
  }
}

}  // namespace
}  // namespace vpn::ike
