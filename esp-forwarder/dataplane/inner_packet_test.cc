#include "esp-forwarder/dataplane/inner_packet.h"

#include <errno.h>

#include <cstring>
#include <deque>
#include <random>
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
  explicit Collect(size_t room = 2000) : room(room) {}
  uint8_t* Buffer() override {
    buffers.emplace_back(room);
    return buffers.back().data();
  }
  size_t buffer_size() const override { return room; }
  void Emit(uint8_t* segment, size_t size) override { sizes.push_back(size); (void)segment; }
  size_t room;
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
  big[0] = 0x05;  // neither IPv4 nor IPv6: not read as either
  EXPECT_EQ(BuildPacketTooBig(big.data(), big.size(), gw, 1400, out), 0u);
  big[0] = 0x44;  // IHL below 20 bytes
  big[6] = 0x40;
  EXPECT_EQ(BuildPacketTooBig(big.data(), big.size(), gw, 1400, out), 0u);
}


TEST(InnerPacketTest, ChecksumAddMatchesWordByWordSum) {
  std::mt19937 random(7);
  std::vector<uint8_t> data(3000);
  for (uint8_t& b : data) b = static_cast<uint8_t>(random());
  for (size_t offset : {0, 1, 3}) {
    for (size_t size : {0, 1, 2, 3, 7, 15, 16, 17, 31, 64, 1399, 1400, 2999 - 3}) {
      uint64_t expected = 0x1234;
      for (size_t i = 0; i + 1 < size; i += 2) {
        expected += (data[offset + i] << 8) | data[offset + i + 1];
      }
      if (size % 2) expected += data[offset + size - 1] << 8;
      EXPECT_EQ(ChecksumFold(ChecksumAdd(data.data() + offset, size, 0x1234)),
                ChecksumFold(static_cast<uint32_t>((expected & 0xffffffff) + (expected >> 32))))
          << offset << " " << size;
    }
  }
}

// ---------------------------------------------------------------------------
// Segmentation of UDP super-packets and coalescing of decrypted packets.

struct Flow {
  bool v6 = false;
  uint8_t protocol = 6;
  uint16_t source_port = 1000;
  uint16_t destination_port = 80;
};

void Put16(uint8_t* p, uint16_t v) {
  p[0] = v >> 8;
  p[1] = v & 0xff;
}
uint16_t Get16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

uint32_t Pseudo(const uint8_t* ip, bool v6, uint8_t protocol, size_t length) {
  return ChecksumAdd(ip + (v6 ? 8 : 12), v6 ? 32 : 8, 0) + protocol + static_cast<uint32_t>(length);
}

// Checksums of an IPv4/IPv6 TCP/UDP packet as a sender computes them.
void FillChecksums(std::vector<uint8_t>& p, bool v6, uint8_t protocol) {
  const size_t ip_len = v6 ? 40 : (p[0] & 0xf) * 4;
  if (!v6) {
    p[10] = p[11] = 0;
    Put16(&p[10], ChecksumFold(ChecksumAdd(p.data(), ip_len, 0)));
  }
  const size_t field = ip_len + (protocol == 6 ? 16 : 6);
  p[field] = p[field + 1] = 0;
  uint16_t sum = ChecksumFold(ChecksumAdd(&p[ip_len], p.size() - ip_len,
                                          Pseudo(p.data(), v6, protocol, p.size() - ip_len)));
  if (sum == 0 && protocol == 17) sum = 0xffff;
  Put16(&p[field], sum);
}

// A packet of `flow` with `payload` bytes (contents depend on `seq`): IPv4
// 10.10.0.2 -> 203.0.113.2 or IPv6 fd00::2 -> fd01::2, DF, TCP with a
// timestamp option and ACK set, valid checksums.
std::vector<uint8_t> Packet(const Flow& flow, uint16_t id, uint32_t seq, size_t payload,
                            uint8_t tcp_flags = 0x10) {
  const size_t ip_len = flow.v6 ? 40 : 20;
  const size_t l4_len = flow.protocol == 6 ? 32 : 8;
  std::vector<uint8_t> p(ip_len + l4_len + payload, 0);
  if (flow.v6) {
    p[0] = 0x60;
    p[1] = 0x01;
    p[2] = 0x23;
    p[3] = 0x45;  // flow label
    Put16(&p[4], static_cast<uint16_t>(l4_len + payload));
    p[6] = flow.protocol;
    p[7] = 64;
    p[8] = 0xfd;
    p[23] = 2;
    p[24] = 0xfd;
    p[25] = 0x01;
    p[39] = 2;
  } else {
    p[0] = 0x45;
    Put16(&p[2], static_cast<uint16_t>(p.size()));
    Put16(&p[4], id);
    p[6] = 0x40;  // DF
    p[8] = 64;
    p[9] = flow.protocol;
    const uint8_t src[4] = {10, 10, 0, 2}, dst[4] = {203, 0, 113, 2};
    std::memcpy(&p[12], src, 4);
    std::memcpy(&p[16], dst, 4);
  }
  uint8_t* l4 = &p[ip_len];
  Put16(l4, flow.source_port);
  Put16(l4 + 2, flow.destination_port);
  if (flow.protocol == 6) {
    l4[4] = seq >> 24;
    l4[5] = seq >> 16;
    l4[6] = seq >> 8;
    l4[7] = seq & 0xff;
    l4[8] = 1, l4[9] = 2, l4[10] = 3, l4[11] = 4;  // ACK number
    l4[12] = 8 << 4;
    l4[13] = tcp_flags;
    Put16(l4 + 14, 0x1000);
    l4[20] = 1, l4[21] = 1, l4[22] = 8, l4[23] = 10;  // NOP NOP timestamps
    l4[27] = 42, l4[31] = 7;
  } else {
    Put16(l4 + 4, static_cast<uint16_t>(8 + payload));
  }
  for (size_t i = 0; i < payload; ++i) l4[l4_len + i] = static_cast<uint8_t>(seq + i * 7);
  FillChecksums(p, flow.v6, flow.protocol);
  return p;
}

// Consecutive packets of one flow: `sizes` payload bytes each.
std::vector<std::vector<uint8_t>> FlowRun(const Flow& flow, std::vector<size_t> sizes,
                                      uint16_t id = 100, uint32_t seq = 0x10203040) {
  std::vector<std::vector<uint8_t>> packets;
  for (size_t size : sizes) {
    packets.push_back(Packet(flow, id++, seq, size));
    seq += static_cast<uint32_t>(size);
  }
  return packets;
}

TEST(InnerPacketTest, SegmentsUsoSuperPackets) {
  for (bool v6 : {false, true}) {
    Flow udp{v6, 17, 5000, 9000};
    const std::vector<uint8_t> super = Packet(udp, 7, 0, 3000);
    Collect sink;
    ASSERT_EQ(SegmentUdp(super.data(), super.size(), 1300, sink), 3u);
    for (size_t i = 0; i < 3; ++i) {
      const size_t payload = i < 2 ? 1300 : 400;
      const size_t ip_len = v6 ? 40 : 20;
      std::vector<uint8_t> s(sink.buffers[i].begin(), sink.buffers[i].begin() + sink.sizes[i]);
      ASSERT_EQ(s.size(), ip_len + 8 + payload);
      EXPECT_EQ(std::memcmp(&s[ip_len + 8], &super[ip_len + 8 + i * 1300], payload), 0);
      EXPECT_EQ(Get16(&s[ip_len + 4]), 8 + payload);
      if (!v6) {
        EXPECT_EQ(Get16(&s[2]), s.size());
        EXPECT_EQ(Get16(&s[4]), 7 + i) << "IDs count up as the kernel's";
        EXPECT_EQ(ChecksumFold(ChecksumAdd(s.data(), 20, 0)), 0);
      } else {
        EXPECT_EQ(Get16(&s[4]), s.size() - 40);
      }
      EXPECT_EQ(ChecksumFold(ChecksumAdd(&s[ip_len], s.size() - ip_len,
                                         Pseudo(s.data(), v6, 17, s.size() - ip_len))),
                0);
    }
  }
  const std::vector<uint8_t> tcp = Packet(Flow{}, 1, 0, 100);
  Collect sink;
  EXPECT_EQ(SegmentUdp(tcp.data(), tcp.size(), 50, sink), 0u);
  EXPECT_EQ(SegmentUdp(tcp.data(), 27, 50, sink), 0u);
}

// gso_size comes from the kernel's packet: a segment that would not fit the
// slot it is written to shrinks (TCP) or drops the packet (UDP datagrams).
TEST(InnerPacketTest, SegmentsNeverOutgrowTheSinksBuffer) {
  auto super = Tcp4(4000, 0x10, 1460);
  Collect small(44 + 1000);
  ASSERT_EQ(SegmentTcp(super.data(), super.size(), 60000, small), 4u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(small.sizes[i], 44 + 1000u) << i;
    EXPECT_TRUE(TcpChecksumOk(small.buffers[i].data(), small.sizes[i])) << i;
  }
  Collect headers_only(44);
  EXPECT_EQ(SegmentTcp(super.data(), super.size(), 1400, headers_only), 0u);

  const std::vector<uint8_t> udp = Packet(Flow{false, 17, 5000, 9000}, 7, 0, 3000);
  Collect fits(28 + 1300), too_small(28 + 1299);
  EXPECT_EQ(SegmentUdp(udp.data(), udp.size(), 1300, fits), 3u);
  EXPECT_EQ(SegmentUdp(udp.data(), udp.size(), 1300, too_small), 0u);
}

// Records TUN writes; with `refuse_gso`, fails GSO writes like a kernel
// without that GSO type.
class Recorder : public TunSink {
 public:
  int WriteTun(const iovec* iov, int iovcnt, int packets) override {
    std::vector<uint8_t> bytes;
    for (int i = 0; i < iovcnt; ++i) {
      const uint8_t* base = static_cast<const uint8_t*>(iov[i].iov_base);
      bytes.insert(bytes.end(), base, base + iov[i].iov_len);
    }
    if (refuse_gso && bytes.size() > 1 && bytes[1] != kGsoNone) return EINVAL;
    writes.push_back(bytes);
    counts.push_back(packets);
    return 0;
  }
  bool refuse_gso = false;
  std::vector<std::vector<uint8_t>> writes;
  std::vector<int> counts;
};

// What the kernel makes of one TUN write: the packet, or the segments of a
// GSO super-packet (after checking its header and partial checksum).
std::vector<std::vector<uint8_t>> KernelView(const std::vector<uint8_t>& write) {
  VnetHeader h;
  EXPECT_GE(write.size(), sizeof(h));
  if (write.size() < sizeof(h)) return {};
  std::memcpy(&h, write.data(), sizeof(h));
  std::vector<uint8_t> packet(write.begin() + sizeof(h), write.end());
  if (h.gso_type == kGsoNone) {
    EXPECT_EQ(h.flags, kVnetDataValid);
    return {packet};
  }
  const bool v6 = (packet[0] >> 4) == 6;
  const uint8_t protocol = v6 ? packet[6] : packet[9];
  const size_t ip_len = v6 ? 40 : 20;
  EXPECT_EQ(h.flags, kVnetNeedsCsum);
  EXPECT_EQ(h.gso_type, protocol == 17 ? kGsoUdpL4 : v6 ? kGsoTcpV6 : kGsoTcpV4);
  EXPECT_EQ(h.csum_start, ip_len);
  EXPECT_EQ(h.csum_offset, protocol == 17 ? 6 : 16);
  EXPECT_EQ(h.hdr_len, ip_len + (protocol == 17 ? 8 : (packet[ip_len + 12] >> 4) * 4));
  EXPECT_EQ(Get16(&packet[v6 ? 4 : 2]), packet.size() - (v6 ? 40 : 0));
  if (!v6) {
    EXPECT_EQ(ChecksumFold(ChecksumAdd(packet.data(), 20, 0)), 0);
  }
  if (protocol == 17) {
    EXPECT_EQ(Get16(&packet[ip_len + 4]), packet.size() - ip_len);
  }
  // NEEDS_CSUM: completing the partial sum checksums the whole super-packet.
  std::vector<uint8_t> completed = packet;
  EXPECT_TRUE(CompleteChecksum(completed.data(), completed.size(), h.csum_start, h.csum_offset));
  EXPECT_EQ(ChecksumFold(ChecksumAdd(&completed[ip_len], completed.size() - ip_len,
                                     Pseudo(completed.data(), v6, protocol,
                                            completed.size() - ip_len))),
            0);
  Collect sink;
  const size_t n = protocol == 6 ? SegmentTcp(packet.data(), packet.size(), h.gso_size, sink)
                                 : SegmentUdp(packet.data(), packet.size(), h.gso_size, sink);
  std::vector<std::vector<uint8_t>> segments;
  for (size_t i = 0; i < n; ++i) {
    segments.emplace_back(sink.buffers[i].begin(), sink.buffers[i].begin() + sink.sizes[i]);
  }
  return segments;
}

// Feeds `packets` (owner i's for owners[i], 0 if absent) through a
// coalescer and checks that the kernel would see exactly them, in order.
// Returns the packets per TUN write.
std::vector<int> Coalesce(const std::vector<std::vector<uint8_t>>& packets,
                          std::vector<int> owners = {}, bool udp = true,
                          Recorder* recorder = nullptr) {
  Recorder local;
  Recorder& sink = recorder ? *recorder : local;
  InnerCoalescer coalescer(sink, /*tcp=*/true, udp);
  std::deque<std::vector<uint8_t>> buffers;  // with headroom, as in the data plane
  owners.resize(packets.size(), 0);
  for (size_t i = 0; i < packets.size(); ++i) {
    buffers.emplace_back(16, 0xee);
    buffers.back().insert(buffers.back().end(), packets[i].begin(), packets[i].end());
    coalescer.Add(&owners[0] + owners[i], buffers.back().data() + 16, packets[i].size());
  }
  coalescer.Flush();
  std::vector<std::vector<uint8_t>> seen;
  for (const auto& write : sink.writes) {
    for (auto& packet : KernelView(write)) seen.push_back(packet);
  }
  EXPECT_EQ(seen.size(), packets.size());
  for (size_t i = 0; i < std::min(seen.size(), packets.size()); ++i) {
    EXPECT_EQ(seen[i], packets[i]) << "packet " << i << " changed";
  }
  return sink.counts;
}

TEST(InnerCoalescerTest, MergesTcpRunsTheKernelSegmentsBackByteForByte) {
  for (bool v6 : {false, true}) {
    auto packets = FlowRun(Flow{v6, 6}, {1400, 1400, 1400, 1400, 600});
    packets.back() = Packet(Flow{v6, 6}, 104, 0x10203040 + 4 * 1400, 600, 0x18);  // PSH last
    Recorder recorder;
    EXPECT_EQ(Coalesce(packets, {}, true, &recorder), std::vector<int>({5})) << v6;
    VnetHeader h;
    std::memcpy(&h, recorder.writes[0].data(), sizeof(h));
    EXPECT_EQ(h.gso_size, 1400);
    EXPECT_EQ(recorder.writes[0].size(), sizeof(h) + (v6 ? 40 : 20) + 32 + 4 * 1400 + 600);
  }
}

TEST(InnerCoalescerTest, MergesUdpRunsTheKernelSegmentsBackByteForByte) {
  for (bool v6 : {false, true}) {
    Recorder recorder;
    EXPECT_EQ(Coalesce(FlowRun(Flow{v6, 17, 5000, 9000}, {1372, 1372, 1372, 100}), {}, true, &recorder),
              std::vector<int>({4}));
    VnetHeader h;
    std::memcpy(&h, recorder.writes[0].data(), sizeof(h));
    EXPECT_EQ(h.gso_type, kGsoUdpL4);
    EXPECT_EQ(h.gso_size, 1372);
  }
}

TEST(InnerCoalescerTest, NeverMergesAcrossOwnersFlowsOrSizes) {
  const Flow tcp, udp{false, 17, 5000, 9000};
  auto two = FlowRun(tcp, {1000, 1000});
  EXPECT_EQ(Coalesce(two, {0, 1}), std::vector<int>({1, 1})) << "two SAs";
  auto other_port = two;
  other_port[1] = Packet(Flow{false, 6, 1001, 80}, 101, 0x10203040 + 1000, 1000);
  EXPECT_EQ(Coalesce(other_port), std::vector<int>({1, 1})) << "another flow";
  auto gap = two;
  gap[1] = Packet(tcp, 101, 0x10203040 + 1001, 1000);
  EXPECT_EQ(Coalesce(gap), std::vector<int>({1, 1})) << "sequence gap";
  EXPECT_EQ(Coalesce(FlowRun(tcp, {1000, 1400})), std::vector<int>({1, 1})) << "bigger after";
  EXPECT_EQ(Coalesce(FlowRun(tcp, {1400, 1000, 1000})), std::vector<int>({2, 1})) << "shorter ends";
  EXPECT_EQ(Coalesce(FlowRun(udp, {1000, 1000, 1400})), std::vector<int>({2, 1}));
  auto fixed_id = FlowRun(udp, {1000, 1000});
  fixed_id[1] = Packet(udp, 100, 0, 1000);
  EXPECT_EQ(Coalesce(fixed_id), std::vector<int>({1, 1})) << "IPv4 IDs must count up";
  auto no_checksum = FlowRun(udp, {1000, 1000});
  for (auto& p : no_checksum) p[26] = p[27] = 0;
  EXPECT_EQ(Coalesce(no_checksum), std::vector<int>({1, 1})) << "UDP without checksum";
  EXPECT_EQ(Coalesce(FlowRun(udp, {1000, 1000}), {}, /*udp=*/false), std::vector<int>({1, 1}));
  auto v4_then_v6 = FlowRun(udp, {1000});
  v4_then_v6.push_back(Packet(Flow{true, 17, 5000, 9000}, 0, 0, 1000));
  EXPECT_EQ(Coalesce(v4_then_v6), std::vector<int>({1, 1}));
  auto options = FlowRun(tcp, {1000, 1000});
  options[1][31 + 20] ^= 1;  // another timestamp
  FillChecksums(options[1], false, 6);
  EXPECT_EQ(Coalesce(options), std::vector<int>({1, 1})) << "TCP options differ";
}

TEST(InnerCoalescerTest, FlagsAndChecksumsDecide) {
  const Flow tcp;
  auto psh = FlowRun(tcp, {1000, 1000, 1000});
  psh[1] = Packet(tcp, 101, 0x10203040 + 1000, 1000, 0x18);
  EXPECT_EQ(Coalesce(psh), std::vector<int>({2, 1})) << "PSH ends a run";
  for (uint8_t flags : {0x11, 0x12, 0x14, 0x30, 0x90}) {  // FIN SYN RST URG CWR
    auto run = FlowRun(tcp, {1000, 1000, 1000});
    run[1] = Packet(tcp, 101, 0x10203040 + 1000, 1000, flags);
    EXPECT_EQ(Coalesce(run), std::vector<int>({1, 1, 1})) << int(flags);
  }
  auto pure_acks = FlowRun(tcp, {0, 0});
  EXPECT_EQ(Coalesce(pure_acks), std::vector<int>({1, 1}));
  // A corrupt checksum is never merged (segmentation would repair it) and
  // goes through unchanged; so does its neighbour that has no company.
  auto corrupt = FlowRun(tcp, {1000, 1000, 1000, 1000});
  corrupt[1][100] ^= 0x01;
  EXPECT_EQ(Coalesce(corrupt), std::vector<int>({1, 1, 2}));
  auto corrupt_first = FlowRun(tcp, {1000, 1000, 1000});
  corrupt_first[0][100] ^= 0x01;
  EXPECT_EQ(Coalesce(corrupt_first), std::vector<int>({1, 2}));
  auto bad_header = FlowRun(Flow{false, 17, 5000, 9000}, {1000, 1000});
  bad_header[1][8] = 63;  // TTL differs
  FillChecksums(bad_header[1], false, 17);
  EXPECT_EQ(Coalesce(bad_header), std::vector<int>({1, 1}));
  auto ip_options = FlowRun(tcp, {1000});
  ip_options[0].insert(ip_options[0].begin() + 20, {1, 1, 1, 0});
  ip_options[0][0] = 0x46;
  Put16(&ip_options[0][2], static_cast<uint16_t>(ip_options[0].size()));
  FillChecksums(ip_options[0], false, 6);
  ip_options.push_back(ip_options[0]);
  EXPECT_EQ(Coalesce(ip_options), std::vector<int>({1, 1}));
}

TEST(InnerCoalescerTest, RunsStopAtTheGsoLimits) {
  EXPECT_EQ(Coalesce(FlowRun(Flow{}, std::vector<size_t>(50, 1400))), std::vector<int>({46, 4}))
      << "64 KiB";
  EXPECT_EQ(Coalesce(FlowRun(Flow{false, 17, 5000, 9000}, std::vector<size_t>(70, 100))),
            std::vector<int>({InnerCoalescer::kMaxSegments, 6}));
  // The IPv4 ID wraps like the kernel's.
  EXPECT_EQ(Coalesce(FlowRun(Flow{}, {1000, 1000, 1000}, 0xffff)), std::vector<int>({3}));
}

TEST(InnerCoalescerTest, RefusedGsoWritesGoAloneUnchanged) {
  Recorder recorder;
  recorder.refuse_gso = true;
  EXPECT_EQ(Coalesce(FlowRun(Flow{false, 17, 5000, 9000}, {1000, 1000, 1000}), {}, true, &recorder),
            std::vector<int>({1, 1, 1}));
  Recorder later;
  later.refuse_gso = true;
  InnerCoalescer coalescer(later, true, true);
  auto packets = FlowRun(Flow{false, 17, 5000, 9000}, {1000, 1000});
  std::vector<uint8_t> a(16), b(16);
  a.insert(a.end(), packets[0].begin(), packets[0].end());
  b.insert(b.end(), packets[1].begin(), packets[1].end());
  coalescer.Add(nullptr, a.data() + 16, packets[0].size());
  coalescer.Add(nullptr, b.data() + 16, packets[1].size());
  coalescer.Flush();
  EXPECT_FALSE(coalescer.udp());
  EXPECT_TRUE(coalescer.tcp());
}

}  // namespace
}  // namespace vpn::forwarder
