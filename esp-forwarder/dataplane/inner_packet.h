// Inner-packet helpers for the TUN side: checksum completion and TCP/UDP
// segmentation of virtio-net offload packets, GRO-style coalescing of
// decrypted packets into virtio-net GSO writes, TCP MSS clamping and ICMP
// "fragmentation needed" / "packet too big" generation (PMTU).
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>

namespace vpn::forwarder {

// struct virtio_net_hdr (10 bytes), as TUN reads and writes it.
struct VnetHeader {
  uint8_t flags;        // 1: NEEDS_CSUM, 2: DATA_VALID
  uint8_t gso_type;     // 0 none, 1 TCPv4, 4 TCPv6, 5 UDP (USO), 0x80 ECN
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
inline constexpr uint8_t kGsoUdpL4 = 5;

// One's-complement sum helpers.
uint32_t ChecksumAdd(const uint8_t* data, size_t size, uint32_t sum);
uint16_t ChecksumFold(uint32_t sum);

// Completes a NEEDS_CSUM packet: sums [csum_start, size) and stores it at
// csum_start + csum_offset. False if the offsets do not fit.
bool CompleteChecksum(uint8_t* packet, size_t size, uint16_t csum_start, uint16_t csum_offset);

// Where SegmentTcp/SegmentUdp put segments: Buffer() gives room for the next
// one (buffer_size() bytes; nullptr stops), Emit() takes it once written.
class SegmentSink {
 public:
  virtual ~SegmentSink() = default;
  virtual uint8_t* Buffer() = 0;
  virtual size_t buffer_size() const = 0;
  virtual void Emit(uint8_t* segment, size_t size) = 0;
};

// Splits a TCP super-packet (IPv4 or IPv6, no extension headers) into
// segments of at most `mss` payload bytes with correct IP and TCP headers
// and checksums; smaller when a segment would not fit the sink's buffer.
// Returns the number of segments, 0 if malformed.
size_t SegmentTcp(const uint8_t* packet, size_t size, uint16_t mss, SegmentSink& sink);

// The same for a UDP super-packet (USO): datagrams of `mss` payload bytes
// (the last may be shorter), IPv4 IDs counting up from the super-packet's,
// checksums computed. Datagram boundaries are the sender's, so a datagram
// larger than the sink's buffer makes the packet malformed (0).
size_t SegmentUdp(const uint8_t* packet, size_t size, uint16_t mss, SegmentSink& sink);

// Where InnerCoalescer writes: one TUN write of `iov` (iov[0] starts with a
// VnetHeader) carrying `packets` inner packets. Returns 0 or an errno; after
// EINVAL for a GSO write (iovcnt > 1) the coalescer writes its packets alone.
class TunSink {
 public:
  virtual ~TunSink() = default;
  virtual int WriteTun(const iovec* iov, int iovcnt, int packets) = 0;
};

// GRO for writes to a vnet-header TUN. Consecutive inner packets of one flow
// and one owner (SA) become one virtio-net GSO packet that the kernel's
// segmentation turns back into the same bytes: TCP (sequence numbers
// contiguous, flags ACK/ECE, PSH only on the last) or UDP (needs USO on the
// TUN); IPv4 without options or fragments, IDs counting up by one, or IPv6
// without extension headers; headers equal but for lengths, IDs, sequence
// numbers and checksums; payloads of one size but a shorter last; valid
// checksums. Anything else is written alone, unchanged (DATA_VALID). If the
// kernel refuses a GSO write (EINVAL), its packets go alone and that kind
// is no longer coalesced.
class InnerCoalescer {
 public:
  static constexpr int kMaxSegments = 64;

  InnerCoalescer(TunSink& sink, bool tcp, bool udp) : sink_(sink), tcp_(tcp), udp_(udp) {}

  // `packet` must have sizeof(VnetHeader) writable bytes before it and stay
  // valid until Flush(), which may rewrite its headers.
  void Add(const void* owner, uint8_t* packet, size_t size);
  // Writes what is pending.
  void Flush();

  bool tcp() const { return tcp_; }
  bool udp() const { return udp_; }

 private:
  // What Add() needs of a packet that may be coalesced.
  struct Parsed {
    bool v6 = false;
    uint8_t protocol = 0;  // 6 or 17
    uint16_t l3 = 0;       // IP header bytes
    uint16_t headers = 0;  // IP + TCP/UDP header bytes
    uint8_t tcp_flags = 0;
  };
  bool Parse(const uint8_t* packet, size_t size, Parsed* out) const;
  bool Extends(const void* owner, const uint8_t* packet, size_t size, const Parsed& p) const;
  void WriteAlone(uint8_t* packet, size_t size);
  void WriteRun();

  TunSink& sink_;
  bool tcp_;
  bool udp_;
  // The pending run: iov_[0] = {first packet}, iov_[k] = {payload of packet k}.
  const void* owner_ = nullptr;
  Parsed first_;
  uint8_t* first_packet_ = nullptr;
  size_t first_size_ = 0;
  size_t gso_size_ = 0;      // payload bytes of the first packet
  size_t total_ = 0;         // bytes of the super-packet
  uint32_t next_seq_ = 0;    // TCP: sequence number the next packet must have
  bool first_checked_ = false;
  bool closed_ = false;      // a shorter or PSH packet ended the run
  bool pushed_ = false;      // TCP: the last packet has PSH
  int count_ = 0;
  iovec iov_[kMaxSegments];
};

// If `packet` is a TCP SYN whose MSS option exceeds `mss`, lowers it and
// updates the TCP checksum. Returns true when it changed the packet.
bool ClampTcpMss(uint8_t* packet, size_t size, uint16_t mss_v4, uint16_t mss_v6);

// Builds an ICMPv4 "fragmentation needed" (type 3 code 4) or ICMPv6 "packet
// too big" for `packet` into `out` (>= 1280 bytes), from `source` (4 or 16
// bytes), advertising `mtu`. Returns its size, or 0 when none is due (IPv4
// without DF, an ICMP error itself, or not IPv4 or IPv6).
size_t BuildPacketTooBig(const uint8_t* packet, size_t size, const uint8_t* source,
                         uint32_t mtu, uint8_t* out);

}  // namespace vpn::forwarder
