#include "common/ipsec/transform_records.h"

#include <gtest/gtest.h>

namespace vpn::ipsec {
namespace {

TEST(TransformRecordsTest, RoundTripsIkeAndChildSets) {
  const TransformSet ike = {12, 256, 2, 2, 2, 0};     // aes256-sha1-prfsha1-modp1024
  const TransformSet child = {20, 128, 0, 0, 0, 1};  // aes128gcm16-esn
  v1::Proposal ike_proposal, child_proposal;
  AddToProposal(ike, /*ike=*/true, &ike_proposal);
  AddToProposal(child, /*ike=*/false, &child_proposal);
  EXPECT_EQ(ike_proposal.transforms_size(), 4);    // ENCR PRF INTEG KE
  EXPECT_EQ(child_proposal.transforms_size(), 2);  // ENCR ESN
  EXPECT_EQ(FromProposal(ike_proposal).ToString(), ike.ToString());
  EXPECT_EQ(FromProposal(child_proposal).ToString(), child.ToString());
  EXPECT_EQ(FromProposal(child_proposal).encryption_key_bits, 128);
}

}  // namespace
}  // namespace vpn::ipsec
