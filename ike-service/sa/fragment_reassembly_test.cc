#include "ike-service/sa/fragment_reassembly.h"

#include "gtest/gtest.h"

namespace vpn::ike {
namespace {

using codec::PayloadType;
using Outcome = FragmentReassembly::Outcome;

crypto::Bytes Part(const char* text) { return crypto::Bytes(text, text + strlen(text)); }

TEST(FragmentReassemblyTest, JoinsFragmentsInNumberOrder) {
  FragmentReassembly r;
  EXPECT_EQ(r.Add(1, 3, 3, PayloadType::kNone, Part("ccc")), Outcome::kStored);
  EXPECT_EQ(r.Add(1, 1, 3, PayloadType::kIdi, Part("a")), Outcome::kStored);
  EXPECT_EQ(r.Add(1, 1, 3, PayloadType::kIdi, Part("x")), Outcome::kIgnored);  // duplicate
  EXPECT_EQ(r.Add(1, 2, 3, PayloadType::kNone, Part("bb")), Outcome::kComplete);
  PayloadType first = PayloadType::kNone;
  EXPECT_EQ(r.Take(&first), Part("abbccc"));
  EXPECT_EQ(first, PayloadType::kIdi);
  EXPECT_EQ(r.bytes(), 0u);
}

// RFC 7383 §2.6.1: a retransmit split into more fragments (smaller PMTU)
// replaces what was collected; fragments of the older split are ignored.
TEST(FragmentReassemblyTest, MoreFragmentsStartOverFewerAreIgnored) {
  FragmentReassembly r;
  EXPECT_EQ(r.Add(4, 1, 2, PayloadType::kSk, Part("old")), Outcome::kStored);
  EXPECT_EQ(r.Add(4, 1, 3, PayloadType::kIdi, Part("n1")), Outcome::kStored);
  EXPECT_EQ(r.Add(4, 2, 2, PayloadType::kNone, Part("old2")), Outcome::kIgnored);
  EXPECT_EQ(r.Add(4, 2, 3, PayloadType::kNone, Part("n2")), Outcome::kStored);
  EXPECT_EQ(r.Add(4, 3, 3, PayloadType::kNone, Part("n3")), Outcome::kComplete);
  PayloadType first;
  EXPECT_EQ(r.Take(&first), Part("n1n2n3"));
  // Another message ID starts over, too.
  EXPECT_EQ(r.Add(5, 2, 2, PayloadType::kNone, Part("b")), Outcome::kStored);
  EXPECT_EQ(r.Add(6, 1, 1, PayloadType::kAuth, Part("z")), Outcome::kComplete);
  EXPECT_EQ(r.Take(&first), Part("z"));
  EXPECT_EQ(first, PayloadType::kAuth);
}

TEST(FragmentReassemblyTest, RefusesBadNumberingEmptyAndOversized) {
  FragmentReassembly r;
  EXPECT_FALSE(r.ValidNumbering(0, 2));
  EXPECT_FALSE(r.ValidNumbering(3, 2));
  EXPECT_FALSE(r.ValidNumbering(1, 0));
  EXPECT_FALSE(r.ValidNumbering(1, FragmentReassembly::kMaxFragments + 1));
  EXPECT_TRUE(r.ValidNumbering(32, 32));
  EXPECT_TRUE(FragmentReassembly(64).ValidNumbering(64, 64));
  EXPECT_EQ(r.Add(1, 1, 2, PayloadType::kIdi, {}), Outcome::kIgnored);
  const crypto::Bytes half(FragmentReassembly::kMaxBytes / 2 + 1, 0x55);
  EXPECT_EQ(r.Add(1, 1, 3, PayloadType::kIdi, half), Outcome::kStored);
  EXPECT_EQ(r.Add(1, 2, 3, PayloadType::kNone, half), Outcome::kTooLarge);
  EXPECT_EQ(r.bytes(), 0u);
  PayloadType first;
  EXPECT_TRUE(r.Take(&first).empty());  // nothing complete
}

}  // namespace
}  // namespace vpn::ike
