// Inner-packet helpers for the TUN side: checksum completion and TCP
// segmentation of virtio-net offload packets, TCP MSS clamping and ICMP
// "fragmentation needed" / "packet too big" generation (PMTU).
#pragma once

#include <cstddef>
#include <cstdint>

namespace vpn::forwarder {

// struct virtio_net_hdr (10 bytes), as TUN reads and writes it.
struct VnetHeader {
  uint8_t flags;        // 1: NEEDS_CSUM, 2: DATA_VALID
  uint8_t gso_type;     // 0 none, 1 TCPv4, 4 TCPv6, 0x80 ECN
  uint16_t hdr_len;
  uint16_t gso_size;
  uint16_t csum_start;
  uint16_t csum_offset;
};
static_assert(sizeof(VnetHeader) == 10);
inline constexpr uint8_t kVnetNeedsCsum = 1;
inline constexpr uint8_t kVnetDataValid = 2;
inline constexpr uint8_t kGsoNone = 0;
inline constexpr uint8_t kGsoTcpV4 = 1;
inline constexpr uint8_t kGsoTcpV6 = 4;

// One's-complement sum helpers.
uint32_t ChecksumAdd(const uint8_t* data, size_t size, uint32_t sum);
uint16_t ChecksumFold(uint32_t sum);

// Completes a NEEDS_CSUM packet: sums [csum_start, size) and stores it at
// csum_start + csum_offset. False if the offsets do not fit.
bool CompleteChecksum(uint8_t* packet, size_t size, uint16_t csum_start, uint16_t csum_offset);

// Where SegmentTcp puts segments: Buffer() gives room for the next one
// (headers + mss bytes; nullptr stops), Emit() takes it once written.
class SegmentSink {
 public:
  virtual ~SegmentSink() = default;
  virtual uint8_t* Buffer() = 0;
  virtual void Emit(uint8_t* segment, size_t size) = 0;
};

// Splits a TCP super-packet (IPv4 or IPv6, no extension headers) into
// segments of at most `mss` payload bytes with correct IP and TCP headers
// and checksums. Returns the number of segments, 0 if malformed.
size_t SegmentTcp(const uint8_t* packet, size_t size, uint16_t mss, SegmentSink& sink);

// If `packet` is a TCP SYN whose MSS option exceeds `mss`, lowers it and
// updates the TCP checksum. Returns true when it changed the packet.
bool ClampTcpMss(uint8_t* packet, size_t size, uint16_t mss_v4, uint16_t mss_v6);

// Builds an ICMPv4 "fragmentation needed" (type 3 code 4) or ICMPv6 "packet
// too big" for `packet` into `out` (>= 1280 bytes), from `source` (4 or 16
// bytes), advertising `mtu`. Returns its size, or 0 when none is due (IPv4
// without DF, or an ICMP error itself).
size_t BuildPacketTooBig(const uint8_t* packet, size_t size, const uint8_t* source,
                         uint32_t mtu, uint8_t* out);

}  // namespace vpn::forwarder
