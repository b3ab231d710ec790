#include "common/wire/reader.h"

#include <vector>

#include "gtest/gtest.h"

namespace vpn::wire {
namespace {

TEST(ReaderTest, ReadsBigEndianAndStopsAtTheEnd) {
  const std::vector<uint8_t> data = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
                                     0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f};
  Reader reader(data);
  uint8_t u8 = 0;
  uint16_t u16 = 0;
  uint32_t u32 = 0;
  uint64_t u64 = 0;
  ASSERT_TRUE(reader.ReadU8(&u8));
  ASSERT_TRUE(reader.ReadU16(&u16));
  ASSERT_TRUE(reader.ReadU32(&u32));
  ASSERT_TRUE(reader.ReadU64(&u64));
  EXPECT_EQ(u8, 0x01);
  EXPECT_EQ(u16, 0x0203);
  EXPECT_EQ(u32, 0x04050607u);
  EXPECT_EQ(u64, 0x08090a0b0c0d0e0full);
  EXPECT_TRUE(reader.empty());
  EXPECT_FALSE(reader.ReadU8(&u8));
}

TEST(ReaderTest, FailedReadLeavesPositionUnchanged) {
  const std::vector<uint8_t> data = {0xaa, 0xbb, 0xcc};
  Reader reader(data);
  uint32_t u32 = 0;
  EXPECT_FALSE(reader.ReadU32(&u32));
  EXPECT_EQ(reader.offset(), 0u);
  std::vector<uint8_t> bytes;
  EXPECT_FALSE(reader.ReadBytes(4, &bytes));
  EXPECT_FALSE(reader.Skip(4));
  ASSERT_TRUE(reader.ReadBytes(2, &bytes));
  EXPECT_EQ(bytes, (std::vector<uint8_t>{0xaa, 0xbb}));
  EXPECT_EQ(reader.ReadRest().size(), 1u);
  EXPECT_TRUE(reader.empty());
}

TEST(ReaderTest, HugeSizesDoNotOverflow) {
  const std::vector<uint8_t> data = {1, 2};
  Reader reader(data);
  absl::Span<const uint8_t> span;
  EXPECT_FALSE(reader.ReadSpan(static_cast<size_t>(-1), &span));
  EXPECT_FALSE(reader.Skip(static_cast<size_t>(-1)));
}

TEST(WriterTest, WritesAndPatches) {
  std::vector<uint8_t> out;
  Writer writer(&out);
  writer.WriteU8(0x01);
  writer.WriteU16(0);
  writer.WriteU32(0x02030405);
  writer.WriteZeros(2);
  writer.PatchU16(1, 0xbeef);
  EXPECT_TRUE(writer.ok());
  EXPECT_EQ(out, (std::vector<uint8_t>{0x01, 0xbe, 0xef, 0x02, 0x03, 0x04, 0x05, 0, 0}));
}

TEST(WriterTest, OverflowFailsInsteadOfTruncating) {
  std::vector<uint8_t> out;
  Writer writer(&out);
  writer.WriteU16(0);
  writer.PatchU16(0, 0x10000);
  EXPECT_FALSE(writer.ok());

  Writer count_writer(&out);
  count_writer.WriteCountU8(256);
  EXPECT_FALSE(count_writer.ok());
}

}  // namespace
}  // namespace vpn::wire
