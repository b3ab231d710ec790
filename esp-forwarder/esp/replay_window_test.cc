#include "esp-forwarder/esp/replay_window.h"

#include "gtest/gtest.h"

namespace vpn::forwarder::esp {
namespace {

using V = ReplayWindow::Verdict;

bool Accept(ReplayWindow& w, uint32_t low) {
  const uint64_t seq = w.Infer(low);
  return w.Check(seq) == V::kOk && w.Update(seq);
}

TEST(ReplayWindowTest, InOrderOutOfOrderAndDuplicates) {
  ReplayWindow w(64, false);
  EXPECT_EQ(w.Check(0), V::kTooOld);  // 0 is never sent
  EXPECT_TRUE(Accept(w, 1));
  EXPECT_FALSE(Accept(w, 1));
  EXPECT_EQ(w.Check(1), V::kReplayed);
  EXPECT_TRUE(Accept(w, 5));
  EXPECT_TRUE(Accept(w, 3));
  EXPECT_TRUE(Accept(w, 2));
  EXPECT_FALSE(Accept(w, 3));
  EXPECT_TRUE(Accept(w, 4));
  EXPECT_EQ(w.top(), 5u);
}

TEST(ReplayWindowTest, WindowEdges) {
  for (uint32_t size : {32u, 64u, 100u, 1024u, 4096u}) {
    ReplayWindow w(size, false);
    ASSERT_TRUE(Accept(w, 10000));
    // The oldest number inside the window, and the first one below it.
    EXPECT_EQ(w.Check(10000 - size + 1), V::kOk) << size;
    EXPECT_EQ(w.Check(10000 - size), V::kTooOld) << size;
    EXPECT_TRUE(Accept(w, 10000 - size + 1));
    EXPECT_EQ(w.Check(10000 - size + 1), V::kReplayed);
    // A jump of exactly the window size forgets everything below.
    ASSERT_TRUE(Accept(w, 10000 + size));
    EXPECT_EQ(w.Check(10000), V::kTooOld);
    EXPECT_EQ(w.Check(10001), V::kOk);
  }
}

TEST(ReplayWindowTest, SizeIsClamped) {
  EXPECT_EQ(ReplayWindow(0, false).window(), 32u);
  EXPECT_EQ(ReplayWindow(100000, false).window(), ReplayWindow::kMaxWindow);
}

TEST(ReplayWindowTest, BitsAreClearedWhenTheWindowSlides) {
  ReplayWindow w(64, false);
  for (uint32_t s = 1; s <= 64; ++s) ASSERT_TRUE(Accept(w, s));
  // Slide by less than the bitmap: numbers above the old top are fresh.
  ASSERT_TRUE(Accept(w, 100));
  for (uint32_t s = 65; s < 100; ++s) EXPECT_EQ(w.Check(s), V::kOk) << s;
  for (uint32_t s = 37; s <= 64; ++s) EXPECT_EQ(w.Check(s), V::kReplayed) << s;
}

TEST(ReplayWindowTest, NoEsnStopsAt32Bits) {
  ReplayWindow w(64, false);
  ASSERT_TRUE(Accept(w, 0xffffffffu));
  EXPECT_EQ(w.Infer(1), 1u);  // no wrap without ESN
  EXPECT_EQ(w.Check(1), V::kTooOld);
}

TEST(ReplayWindowTest, EsnInfersHighBitsAcrossTheWrap) {
  ReplayWindow w(64, true);
  ASSERT_TRUE(Accept(w, 0xfffffff0u));
  // Case A: low numbers now belong to the next subspace.
  EXPECT_EQ(w.Infer(5), (uint64_t{1} << 32) | 5);
  EXPECT_EQ(w.Infer(0xffffffe0u), 0xffffffe0u);  // inside the window
  ASSERT_TRUE(Accept(w, 3));
  EXPECT_EQ(w.top(), (uint64_t{1} << 32) | 3);
  // Case B: the window spans the wrap; late packets of subspace 0 still pass.
  EXPECT_EQ(w.Infer(0xfffffff8u), 0xfffffff8u);
  EXPECT_TRUE(Accept(w, 0xfffffff8u));
  EXPECT_FALSE(Accept(w, 0xfffffff8u));
  EXPECT_FALSE(Accept(w, 0xfffffff0u));  // seen before the wrap
  // Below the window it reads as a jump ahead (RFC 4303 A2.2); only the
  // ICV, computed with the inferred high bits, can reject it.
  EXPECT_EQ(w.Infer(0xffffffc0u), (uint64_t{1} << 32) | 0xffffffc0u);
  EXPECT_TRUE(Accept(w, 1));
  EXPECT_TRUE(Accept(w, 2));
  EXPECT_FALSE(Accept(w, 3));
}

TEST(ReplayWindowTest, EsnEarlyInTheSaHasNoSubspaceBelow) {
  ReplayWindow w(1024, true);
  ASSERT_TRUE(Accept(w, 10));
  EXPECT_EQ(w.Infer(0xfffffff0u), 0xfffffff0u);
}

TEST(ReplayWindowTest, LargestWindowTracksEveryBit) {
  ReplayWindow w(4096, true);
  for (uint32_t s = 4096; s >= 1; --s) ASSERT_TRUE(Accept(w, s)) << s;
  for (uint32_t s = 1; s <= 4096; ++s) ASSERT_FALSE(Accept(w, s)) << s;
  ASSERT_TRUE(Accept(w, 4097));
  EXPECT_EQ(w.Check(1), V::kTooOld);
  EXPECT_EQ(w.Check(2), V::kReplayed);
}

// After a forwarder restart the window is seeded from the checkpointed mark:
// everything at or below it is refused, everything above is accepted.
TEST(ReplayWindowTest, MarkSeenThroughRefusesEverythingAtOrBelow) {
  for (uint32_t size : {32u, 100u, 1024u}) {
    ReplayWindow w(size, false);
    w.MarkSeenThrough(5000);
    EXPECT_EQ(w.top(), 5000u);
    EXPECT_EQ(w.Check(5000), V::kReplayed);
    EXPECT_EQ(w.Check(4999), V::kReplayed);
    EXPECT_EQ(w.Check(5000 - size + 1), V::kReplayed);
    EXPECT_EQ(w.Check(5000 - size), V::kTooOld);
    EXPECT_EQ(w.Check(1), V::kTooOld);
    // Above the mark: accepted, out of order too, and then tracked as usual.
    EXPECT_TRUE(Accept(w, 5003));
    EXPECT_TRUE(Accept(w, 5001));
    EXPECT_FALSE(Accept(w, 5001));
    EXPECT_FALSE(Accept(w, 5000));
    EXPECT_TRUE(Accept(w, 5002));
    EXPECT_TRUE(Accept(w, 5000 + 3 * size));
    EXPECT_FALSE(Accept(w, 5000 + 3 * size - 1 - size));
    // A lower mark changes nothing.
    w.MarkSeenThrough(10);
    EXPECT_EQ(w.top(), 5000u + 3 * size);
    EXPECT_TRUE(Accept(w, 5000 + 3 * size - 1));
  }
  // ESN: the mark's high-order bits carry over into inference.
  ReplayWindow esn(64, true);
  esn.MarkSeenThrough((uint64_t{3} << 32) | 10);
  EXPECT_EQ(esn.Infer(11), (uint64_t{3} << 32) | 11);
  EXPECT_FALSE(Accept(esn, 10));
  EXPECT_TRUE(Accept(esn, 11));
}

}  // namespace
}  // namespace vpn::forwarder::esp
