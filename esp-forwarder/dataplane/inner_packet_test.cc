#include "esp-forwarder/dataplane/inner_packet.h"

#include <cstring>
#include <vector>

#include "gtest/gtest.h"

namespace vpn::forwarder {
namespace {

// IPv4 TCP packet 10.10.0.2:1000 -> 203.0.113.2:80 with `payload` bytes and
// an MSS option; checksums valid.
std::vector<uint8_t> Tcp4(size_t payload, uint8_t flags, uint16_t mss) {
  std::vector<uint8_t> p(20 + 24 + payload, 0x5a);
  const size_t total = p.size();
  std::memset(p.data(), 0, 44);
  p[0] = 0x45;
  p[2] = total >> 8;
  p[3] = total & 0xff;
  p[6] = 0x40;  // DF
  p[8] = 64;
  p[9] = 6;
  const uint8_t src[4] = {10, 10, 0, 2}, dst[4] = {203, 0, 113, 2};
  std::memcpy(&p[12], src, 4);
  std::memcpy(&p[16], dst, 4);
  uint16_t c = ChecksumFold(ChecksumAdd(p.data(), 20, 0));
  p[10] = c >> 8;
  p[11] = c & 0xff;
  uint8_t* t = &p[20];
  t[0] = 0x03; t[1] = 0xe8; t[2] = 0; t[3] = 80;
  t[4] = 0x10; t[5] = 0x20; t[6] = 0x30; t[7] = 0x40;
  t[12] = 6 << 4;
  t[13] = flags;
  t[14] = 0xff; t[15] = 0xff;
  t[20] = 2; t[21] = 4; t[22] = mss >> 8; t[23] = mss & 0xff;
  uint32_t sum = ChecksumAdd(&p[12], 8, 0) + 6 + (total - 20);
  c = ChecksumFold(ChecksumAdd(t, total - 20, sum));
  t[16] = c >> 8;
  t[17] = c & 0xff;
  return p;
}

bool TcpChecksumOk(const uint8_t* p, size_t size) {
  const size_t ihl = (p[0] & 0xf) * 4;
  uint32_t sum = ChecksumAdd(p + 12, 8, 0) + 6 + (size - ihl);
  return ChecksumFold(ChecksumAdd(p + ihl, size - ihl, sum)) == 0 &&
         ChecksumFold(ChecksumAdd(p, ihl, 0)) == 0;
}

TEST(InnerPacketTest, ClampsMssOnSynOnly) {
  auto syn = Tcp4(0, 0x02, 1460);
  ASSERT_TRUE(TcpChecksumOk(syn.data(), syn.size()));
  EXPECT_TRUE(ClampTcpMss(syn.data(), syn.size(), 1360, 1340));
  EXPECT_EQ((syn[42] << 8) | syn[43], 1360);
  EXPECT_TRUE(TcpChecksumOk(syn.data(), syn.size()));
  EXPECT_FALSE(ClampTcpMss(syn.data(), syn.size(), 1360, 1340));  // already low
  auto ack = Tcp4(10, 0x10, 1460);
  EXPECT_FALSE(ClampTcpMss(ack.data(), ack.size(), 1360, 1340));
  auto truncated = Tcp4(0, 0x02, 1460);
  EXPECT_FALSE(ClampTcpMss(truncated.data(), 30, 1360, 1340));
}

class Collect : public SegmentSink {
 public:
  uint8_t* Buffer() override {
    buffers.emplace_back(2000);
    return buffers.back().data();
  }
  void Emit(uint8_t* segment, size_t size) override { sizes.push_back(size); (void)segment; }
  std::vector<std::vector<uint8_t>> buffers;
  std::vector<size_t> sizes;
};

TEST(InnerPacketTest, SegmentsTsoSuperPackets) {
  auto super = Tcp4(4000, 0x18, 1460);  // ACK | PSH
  Collect sink;
  ASSERT_EQ(SegmentTcp(super.data(), super.size(), 1400, sink), 3u);
  uint32_t expected_seq = 0x10203040;
  for (size_t i = 0; i < 3; ++i) {
    const uint8_t* s = sink.buffers[i].data();
    const size_t payload = i < 2 ? 1400 : 1200;
    EXPECT_EQ(sink.sizes[i], 44 + payload);
    EXPECT_EQ(size_t((s[2] << 8) | s[3]), 44 + payload);
    EXPECT_TRUE(TcpChecksumOk(s, sink.sizes[i])) << i;
    EXPECT_EQ(uint32_t(s[24]) << 24 | s[25] << 16 | s[26] << 8 | s[27], expected_seq);
    expected_seq += payload;
    EXPECT_EQ(s[33] & 0x08, i == 2 ? 0x08 : 0) << "PSH only on the last";
  }
}

TEST(InnerPacketTest, CompletesPartialChecksums) {
  auto p = Tcp4(100, 0x10, 1460);
  // What the kernel hands over with NEEDS_CSUM: the pseudo-header sum only.
  uint32_t pseudo = ChecksumAdd(&p[12], 8, 0) + 6 + (p.size() - 20);
  const uint16_t partial = static_cast<uint16_t>(~ChecksumFold(pseudo));
  p[36] = partial >> 8;
  p[37] = partial & 0xff;
  ASSERT_TRUE(CompleteChecksum(p.data(), p.size(), 20, 16));
  EXPECT_TRUE(TcpChecksumOk(p.data(), p.size()));
  EXPECT_FALSE(CompleteChecksum(p.data(), p.size(), 200, 16));
}

TEST(InnerPacketTest, PacketTooBigForDfAndIpv6Only) {
  auto big = Tcp4(1400, 0x10, 1460);
  const uint8_t gw[4] = {10, 10, 0, 1};
  uint8_t out[1280];
  const size_t n = BuildPacketTooBig(big.data(), big.size(), gw, 1400, out);
  ASSERT_EQ(n, 20u + 8 + 28);
  EXPECT_EQ(out[20], 3);
  EXPECT_EQ(out[21], 4);
  EXPECT_EQ((out[26] << 8) | out[27], 1400);
  EXPECT_EQ(ChecksumFold(ChecksumAdd(out, 20, 0)), 0);
  EXPECT_EQ(ChecksumFold(ChecksumAdd(out + 20, n - 20, 0)), 0);
  EXPECT_EQ(std::memcmp(out + 16, big.data() + 12, 4), 0);  // back to the sender
  big[6] = 0;  // DF clear
  EXPECT_EQ(BuildPacketTooBig(big.data(), big.size(), gw, 1400, out), 0u);
}

}  // namespace
}  // namespace vpn::forwarder
