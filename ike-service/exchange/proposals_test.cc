#include "ike-service/exchange/proposals.h"

#include <gtest/gtest.h>

namespace vpn::ike {
namespace {

using codec::DhGroup;
using codec::EncrId;
using codec::IntegId;
using codec::PrfId;
using codec::Transform;

ProposalPolicy Policy(const char* text, ProposalKind kind = ProposalKind::kIke) {
  auto policy = ParseProposalPolicy(text, kind);
  EXPECT_TRUE(policy.ok()) << policy.status();
  return *policy;
}

// What Windows 7 offers first: 3DES/SHA1/MODP1024, then AES-CBC.
std::vector<codec::Proposal> WindowsIkeOffer() {
  codec::Proposal p1, p2;
  p1.number = 1;
  p1.transforms = {Transform::Encr(EncrId::k3des), Transform::Integ(IntegId::kHmacSha1_96),
                   Transform::Prf(PrfId::kHmacSha1), Transform::Dh(DhGroup::kModp1024)};
  p2.number = 2;
  p2.transforms = {Transform::Encr(EncrId::kAesCbc, 256),
                   Transform::Integ(IntegId::kHmacSha1_96),
                   Transform::Prf(PrfId::kHmacSha1), Transform::Dh(DhGroup::kModp1024)};
  return {p1, p2};
}

TEST(ProposalsTest, ParsesStrongSwanSyntax) {
  ProposalPolicy p = Policy("aes256-aes128-sha256-sha1-modp2048-modp1024");
  EXPECT_EQ(p.encryption.size(), 2u);
  EXPECT_EQ(p.integrity, (std::vector<uint16_t>{12, 2}));
  EXPECT_EQ(p.prf, (std::vector<uint16_t>{5, 2}));  // follows integrity
  EXPECT_EQ(p.key_exchange, (std::vector<uint16_t>{14, 2}));
  ProposalPolicy esp = Policy("aes256gcm16", ProposalKind::kEsp);
  EXPECT_EQ(esp.esn, (std::vector<uint16_t>{0}));
}

TEST(ProposalsTest, RejectsBadPolicies) {
  EXPECT_FALSE(ParseProposalPolicy("aes256-sha1", ProposalKind::kIke).ok());  // no group
  EXPECT_FALSE(ParseProposalPolicy("aes256gcm16-modp2048", ProposalKind::kIke).ok());
  EXPECT_FALSE(ParseProposalPolicy("aes256gcm16-sha1", ProposalKind::kEsp).ok());
  EXPECT_FALSE(ParseProposalPolicy("rot13-sha1-modp2048", ProposalKind::kIke).ok());
  EXPECT_TRUE(ParseProposalPolicy("aes256-sha1", ProposalKind::kEsp).ok());
  for (const std::string& text : DefaultIkeProposals()) {
    EXPECT_TRUE(ParseProposalPolicy(text, ProposalKind::kIke).ok()) << text;
  }
  for (const std::string& text : DefaultEspProposals()) {
    EXPECT_TRUE(ParseProposalPolicy(text, ProposalKind::kEsp).ok()) << text;
  }
}

TEST(ProposalsTest, PicksTheGatewaysPreferenceAcrossThePeersProposals) {
  std::vector<ProposalPolicy> policies = {Policy("aes256-sha1-modp1024"),
                                          Policy("3des-sha1-modp1024")};
  auto selected = SelectProposal(WindowsIkeOffer(), policies, codec::ProtocolId::kIke,
                                 /*preferred_group=*/2);
  ASSERT_TRUE(selected.has_value());
  EXPECT_EQ(selected->number, 2);
  EXPECT_EQ(selected->transforms.ToString(), "aes256-sha1-prfsha1-modp1024");
}

TEST(ProposalsTest, PrefersTheGroupOfTheKePayload) {
  codec::Proposal offer;
  offer.transforms = {Transform::Encr(EncrId::kAesGcm16, 256),
                      Transform::Prf(PrfId::kHmacSha2_384), Transform::Dh(DhGroup::kEcp384),
                      Transform::Dh(DhGroup::kCurve25519)};
  std::vector<ProposalPolicy> policies = {Policy("aes256gcm16-prfsha384-curve25519-ecp384")};
  auto with_ke = SelectProposal({offer}, policies, codec::ProtocolId::kIke, 20);
  ASSERT_TRUE(with_ke.has_value());
  EXPECT_EQ(with_ke->transforms.key_exchange, 20);
  auto without = SelectProposal({offer}, policies, codec::ProtocolId::kIke, 0);
  ASSERT_TRUE(without.has_value());
  EXPECT_EQ(without->transforms.key_exchange, 31);
}

TEST(ProposalsTest, NoProposalChosenWhenNothingFits) {
  std::vector<ProposalPolicy> policies = {Policy("aes256gcm16-prfsha256-curve25519")};
  EXPECT_FALSE(SelectProposal(WindowsIkeOffer(), policies, codec::ProtocolId::kIke, 2));
  // An ESP offer is never taken for IKE.
  auto esp_offer = WindowsIkeOffer();
  esp_offer[0].protocol_id = codec::ProtocolId::kEsp;
  esp_offer[1].protocol_id = codec::ProtocolId::kEsp;
  EXPECT_FALSE(SelectProposal(esp_offer, {Policy("3des-sha1-modp1024")},
                              codec::ProtocolId::kIke, 2));
}

TEST(ProposalsTest, EspWithoutPfsAndEsn) {
  codec::Proposal offer;
  offer.protocol_id = codec::ProtocolId::kEsp;
  offer.spi = {0xc1, 0xa2, 0x03, 0x04};
  offer.transforms = {Transform::Encr(EncrId::kAesCbc, 128),
                      Transform::Integ(IntegId::kHmacSha1_96),
                      Transform::Esn(codec::EsnId::kNoEsn)};
  auto selected = SelectProposal({offer}, {Policy("aes256-aes128-sha1", ProposalKind::kEsp)},
                                 codec::ProtocolId::kEsp);
  ASSERT_TRUE(selected.has_value());
  EXPECT_EQ(selected->spi, offer.spi);
  codec::Proposal response =
      ToResponseProposal(*selected, codec::ProtocolId::kEsp, {9, 9, 9, 9});
  EXPECT_EQ(response.spi, (codec::Bytes{9, 9, 9, 9}));
  ASSERT_EQ(response.transforms.size(), 3u);
  EXPECT_EQ(response.transforms[0].key_length(), 128);
  // A peer that insists on PFS is refused when no KE payload came with it.
  offer.transforms.push_back(Transform::Dh(DhGroup::kModp2048));
  EXPECT_FALSE(SelectProposal({offer},
                              {Policy("aes128-sha1-modp2048", ProposalKind::kEsp)},
                              codec::ProtocolId::kEsp));
}

// RFC 7296 3.3.6: a transform carrying an attribute we do not understand is
// unacceptable; another transform of its type still is.
TEST(ProposalsTest, SkipsTransformsWithUnknownAttributes) {
  Transform odd = Transform::Encr(EncrId::kAesGcm16, 256);
  odd.attributes.push_back({/*type=*/17, /*tv_format=*/true, /*value=*/1, {}});
  Transform prf_with_key_length = Transform::Prf(PrfId::kHmacSha2_384);
  prf_with_key_length.attributes.push_back(codec::TransformAttribute::KeyLength(256));
  std::vector<ProposalPolicy> policies = {Policy("aes256gcm16-aes128gcm16-prfsha384-curve25519")};

  codec::Proposal only_odd;
  only_odd.transforms = {odd, Transform::Prf(PrfId::kHmacSha2_384),
                         Transform::Dh(DhGroup::kCurve25519)};
  EXPECT_FALSE(SelectProposal({only_odd}, policies, codec::ProtocolId::kIke, 31).has_value());

  codec::Proposal with_alternative = only_odd;
  with_alternative.transforms.push_back(Transform::Encr(EncrId::kAesGcm16, 128));
  auto selected = SelectProposal({with_alternative}, policies, codec::ProtocolId::kIke, 31);
  ASSERT_TRUE(selected.has_value());
  EXPECT_EQ(selected->transforms.encryption_key_bits, 128);

  codec::Proposal odd_prf;
  odd_prf.transforms = {Transform::Encr(EncrId::kAesGcm16, 256), prf_with_key_length,
                        Transform::Dh(DhGroup::kCurve25519)};
  EXPECT_FALSE(SelectProposal({odd_prf}, policies, codec::ProtocolId::kIke, 31).has_value());
}

}  // namespace
}  // namespace vpn::ike
