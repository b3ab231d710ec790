#include "esp-forwarder/dataplane/inner_packet.h"

#include <errno.h>

#include <algorithm>
#include <cstring>

namespace vpn::forwarder {
namespace {

inline uint16_t Get16(const uint8_t* p) { return uint16_t(p[0] << 8 | p[1]); }
inline void Put16(uint8_t* p, uint16_t v) {
  p[0] = v >> 8;
  p[1] = v & 0xff;
}
inline uint32_t Get32(const uint8_t* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3];
}
inline void Put32(uint8_t* p, uint32_t v) {
  p[0] = v >> 24;
  p[1] = v >> 16;
  p[2] = v >> 8;
  p[3] = v;
}

constexpr uint8_t kTcpFin = 0x01, kTcpSyn = 0x02, kTcpRst = 0x04, kTcpPsh = 0x08,
                  kTcpUrg = 0x20, kTcpCwr = 0x80;

// Pseudo-header sum for a transport segment of `length` bytes.
uint32_t PseudoSum(const uint8_t* ip, bool v6, uint8_t protocol, size_t length) {
  uint32_t sum = v6 ? ChecksumAdd(ip + 8, 32, 0) : ChecksumAdd(ip + 12, 8, 0);
  sum += protocol;
  sum += static_cast<uint32_t>(length >> 16) + static_cast<uint32_t>(length & 0xffff);
  return sum;
}

// Length of the IP header before a `protocol` header, 0 if there is none
// (IPv4 with options allowed, IPv6 without extension headers).
size_t IpHeaderBefore(const uint8_t* packet, size_t size, uint8_t protocol) {
  if (size < 20) return 0;
  if ((packet[0] >> 4) == 6) return size >= 40 && packet[6] == protocol ? 40 : 0;
  const size_t ip_len = size_t{packet[0] & 0x0fu} * 4;
  return ip_len >= 20 && size >= ip_len && packet[9] == protocol ? ip_len : 0;
}

// Sets the IP lengths of a `total`-byte segment (IPv4: also its ID and
// header checksum).
void SetIpLength(uint8_t* packet, bool v6, size_t ip_len, size_t total, uint16_t id) {
  if (v6) {
    Put16(packet + 4, static_cast<uint16_t>(total - 40));
    return;
  }
  Put16(packet + 2, static_cast<uint16_t>(total));
  Put16(packet + 4, id);
  packet[10] = packet[11] = 0;
  Put16(packet + 10, ChecksumFold(ChecksumAdd(packet, ip_len, 0)));
}

bool TransportChecksumOk(const uint8_t* packet, size_t size, bool v6, uint8_t protocol,
                         size_t ip_len) {
  const size_t length = size - ip_len;
  return ChecksumFold(ChecksumAdd(packet + ip_len, length,
                                  PseudoSum(packet, v6, protocol, length))) == 0;
}

// Sum of `words` native-order 32-bit words (no overflow below 2^32 words).
// Vectorized, with an AVX2 version where the CPU has it: every inner packet
// is summed once on its way (segmentation, coalescing checks).
__attribute__((target_clones("avx2", "default"), optimize("tree-vectorize")))
uint64_t SumWords(const uint8_t* data, size_t words) {
  uint64_t sum = 0;
  for (size_t i = 0; i < words; ++i) {
    uint32_t w;
    std::memcpy(&w, data + 4 * i, 4);
    sum += w;
  }
  return sum;
}

}  // namespace

uint32_t ChecksumAdd(const uint8_t* data, size_t size, uint32_t sum) {
  // Native-order 32-bit words, folded and byte-swapped once at the end: the
  // one's-complement sum does not depend on byte order (RFC 1071 §2).
  size_t i = size / 4 * 4;
  uint64_t native = SumWords(data, size / 4);
  while (native >> 16) native = (native & 0xffff) + (native >> 16);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  native = ((native & 0xff) << 8) | (native >> 8);
#endif
  uint64_t acc = uint64_t{sum} + native;
  for (; i + 1 < size; i += 2) acc += Get16(data + i);
  if (i < size) acc += uint32_t(data[i]) << 8;
  while (acc >> 32) acc = (acc & 0xffffffff) + (acc >> 32);
  return static_cast<uint32_t>(acc);  // may carry: folded by ChecksumFold
}

uint16_t ChecksumFold(uint32_t sum) {
  uint64_t s = sum;
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(~s & 0xffff);
}

bool CompleteChecksum(uint8_t* packet, size_t size, uint16_t csum_start, uint16_t csum_offset) {
  if (size_t{csum_start} + csum_offset + 2 > size) return false;
  uint8_t* field = packet + csum_start + csum_offset;
  uint16_t sum = ChecksumFold(ChecksumAdd(packet + csum_start, size - csum_start, 0));
  // UDP: a computed 0 is sent as 0xffff (RFC 768); harmless for TCP.
  if (sum == 0 && csum_offset == 6) sum = 0xffff;
  Put16(field, sum);
  return true;
}

namespace {

// One segment of a super-packet in `scratch`: its headers, then `chunk`
// payload bytes from `offset`, with the IP length and ID set. Its size.
size_t CopySegment(const uint8_t* packet, size_t headers, size_t offset, size_t chunk, bool v6,
                   size_t ip_len, uint16_t id, uint8_t* scratch) {
  std::memcpy(scratch, packet, headers);
  std::memcpy(scratch + headers, packet + headers + offset, chunk);
  const size_t total = headers + chunk;
  SetIpLength(scratch, v6, ip_len, total, id);
  return total;
}

}  // namespace

size_t SegmentTcp(const uint8_t* packet, size_t size, uint16_t mss, SegmentSink& sink) {
  const size_t ip_len = IpHeaderBefore(packet, size, 6);
  if (ip_len == 0 || mss == 0 || size < ip_len + 20) return 0;
  const bool v6 = (packet[0] >> 4) == 6;
  const size_t tcp_len = static_cast<size_t>(packet[ip_len + 12] >> 4) * 4;
  const size_t headers = ip_len + tcp_len;
  if (tcp_len < 20 || size < headers || sink.buffer_size() <= headers) return 0;
  // TCP may be cut anywhere: segments shrink to fit the buffer.
  const size_t mss_fits = std::min<size_t>(mss, sink.buffer_size() - headers);
  const size_t payload = size - headers;
  const uint32_t seq0 = Get32(packet + ip_len + 4);
  const uint16_t id0 = v6 ? 0 : Get16(packet + 4);
  const uint8_t flags = packet[ip_len + 13];
  size_t count = 0;
  for (size_t offset = 0; offset < payload || (payload == 0 && count == 0); offset += mss_fits) {
    const size_t chunk = std::min(payload - offset, mss_fits);
    const bool last = offset + chunk >= payload;
    uint8_t* scratch = sink.Buffer();
    if (scratch == nullptr) break;
    const size_t total = CopySegment(packet, headers, offset, chunk, v6, ip_len,
                                     static_cast<uint16_t>(id0 + count), scratch);
    uint8_t* tcp = scratch + ip_len;
    Put32(tcp + 4, seq0 + static_cast<uint32_t>(offset));
    uint8_t f = flags;
    if (!last) f &= static_cast<uint8_t>(~0x09);  // FIN, PSH only on the last
    if (count > 0) f &= static_cast<uint8_t>(~0x80);  // CWR only on the first
    tcp[13] = f;
    tcp[16] = tcp[17] = 0;
    uint32_t sum = PseudoSum(scratch, v6, 6, total - ip_len);
    Put16(tcp + 16, ChecksumFold(ChecksumAdd(tcp, total - ip_len, sum)));
    sink.Emit(scratch, total);
    ++count;
    if (payload == 0) break;
  }
  return count;
}

size_t SegmentUdp(const uint8_t* packet, size_t size, uint16_t mss, SegmentSink& sink) {
  const size_t ip_len = IpHeaderBefore(packet, size, 17);
  const size_t headers = ip_len + 8;
  if (ip_len == 0 || mss == 0 || size < headers ||
      headers + std::min<size_t>(mss, size - headers) > sink.buffer_size()) {
    return 0;
  }
  const bool v6 = (packet[0] >> 4) == 6;
  const size_t payload = size - headers;
  const uint16_t id0 = v6 ? 0 : Get16(packet + 4);
  size_t count = 0;
  for (size_t offset = 0; offset < payload || count == 0; offset += mss) {
    const size_t chunk = std::min<size_t>(payload - offset, mss);
    uint8_t* scratch = sink.Buffer();
    if (scratch == nullptr) break;
    const size_t total = CopySegment(packet, headers, offset, chunk, v6, ip_len,
                                     static_cast<uint16_t>(id0 + count), scratch);
    uint8_t* udp = scratch + ip_len;
    Put16(udp + 4, static_cast<uint16_t>(total - ip_len));
    udp[6] = udp[7] = 0;
    const uint16_t sum =
        ChecksumFold(ChecksumAdd(udp, total - ip_len, PseudoSum(scratch, v6, 17, total - ip_len)));
    Put16(udp + 6, sum == 0 ? 0xffff : sum);
    sink.Emit(scratch, total);
    ++count;
    if (payload == 0) break;
  }
  return count;
}

bool InnerCoalescer::Parse(const uint8_t* p, size_t size, Parsed* out) const {
  if (size < 20) return false;
  if ((p[0] >> 4) == 4) {
    // No options, the whole datagram, not a fragment (MF and offset clear).
    if (p[0] != 0x45 || Get16(p + 2) != size || (Get16(p + 6) & 0x3fff) != 0) return false;
    out->v6 = false;
    out->l3 = 20;
    out->protocol = p[9];
  } else if ((p[0] >> 4) == 6) {
    if (size < 40 || Get16(p + 4) + size_t{40} != size) return false;
    out->v6 = true;
    out->l3 = 40;
    out->protocol = p[6];
  } else {
    return false;
  }
  const uint8_t* l4 = p + out->l3;
  if (out->protocol == 6) {
    if (!tcp_ || size < out->l3 + size_t{20}) return false;
    const size_t tcp_len = static_cast<size_t>(l4[12] >> 4) * 4;
    out->tcp_flags = l4[13];
    // Data segments only; CWR would need the ECN GSO type.
    if (tcp_len < 20 || size <= out->l3 + tcp_len) return false;
    if (out->tcp_flags & (kTcpFin | kTcpSyn | kTcpRst | kTcpUrg | kTcpCwr)) return false;
    // A checksum of 0 and one of 0xffff are the same sum; segmentation may
    // write either.
    const uint16_t check = Get16(l4 + 16);
    if (check == 0 || check == 0xffff) return false;
    out->headers = static_cast<uint16_t>(out->l3 + tcp_len);
    return true;
  }
  if (out->protocol == 17) {
    // Segmentation always computes a checksum: none (0) cannot be kept.
    if (!udp_ || size <= out->l3 + size_t{8}) return false;
    if (Get16(l4 + 4) != size - out->l3 || Get16(l4 + 6) == 0) return false;
    out->headers = static_cast<uint16_t>(out->l3 + 8);
    return true;
  }
  return false;
}

bool InnerCoalescer::Extends(const void* owner, const uint8_t* p, size_t size,
                             const Parsed& parsed) const {
  const Parsed& f = first_;
  if (closed_ || count_ == kMaxSegments || owner != owner_ || parsed.v6 != f.v6 ||
      parsed.protocol != f.protocol || parsed.headers != f.headers) {
    return false;
  }
  const size_t payload = size - parsed.headers;
  if (payload > gso_size_ || total_ + payload > 65535) return false;
  const uint8_t* a = first_packet_;
  if (!f.v6) {
    // Equal but for the length, the ID (one more per packet, as
    // segmentation numbers them) and the header checksum (valid).
    if (std::memcmp(a, p, 2) != 0 || std::memcmp(a + 6, p + 6, 4) != 0 ||
        std::memcmp(a + 12, p + 12, 8) != 0 ||
        Get16(p + 4) != static_cast<uint16_t>(Get16(a + 4) + count_) ||
        ChecksumFold(ChecksumAdd(p, 20, 0)) != 0) {
      return false;
    }
  } else if (std::memcmp(a, p, 4) != 0 || std::memcmp(a + 6, p + 6, 34) != 0) {
    return false;
  }
  const uint8_t* la = a + f.l3;
  const uint8_t* lp = p + f.l3;
  if (std::memcmp(la, lp, 4) != 0) return false;  // ports
  if (f.protocol == 6) {
    // Contiguous; the same ACK, data offset, flags (PSH may end the run),
    // window, urgent pointer and options.
    if (Get32(lp + 4) != next_seq_ || std::memcmp(la + 8, lp + 8, 5) != 0 ||
        (la[13] | kTcpPsh) != (lp[13] | kTcpPsh) || std::memcmp(la + 14, lp + 14, 2) != 0 ||
        std::memcmp(la + 18, lp + 18, f.headers - f.l3 - 18) != 0) {
      return false;
    }
  }
  return TransportChecksumOk(p, size, f.v6, f.protocol, f.l3);
}

void InnerCoalescer::Add(const void* owner, uint8_t* packet, size_t size) {
  Parsed parsed;
  if (!Parse(packet, size, &parsed)) {
    Flush();
    WriteAlone(packet, size);
    return;
  }
  if (count_ > 0 && Extends(owner, packet, size, parsed)) {
    // The first packet's checksums are checked only once it has company.
    if (!first_checked_) {
      first_checked_ = (first_.v6 || ChecksumFold(ChecksumAdd(first_packet_, 20, 0)) == 0) &&
                       TransportChecksumOk(first_packet_, first_size_, first_.v6,
                                           first_.protocol, first_.l3);
    }
    if (first_checked_) {
      const size_t payload = size - parsed.headers;
      iov_[count_++] = {packet + parsed.headers, payload};
      total_ += payload;
      next_seq_ += static_cast<uint32_t>(payload);
      pushed_ = (parsed.tcp_flags & kTcpPsh) != 0;
      closed_ = payload < gso_size_ || pushed_;
      return;
    }
  }
  Flush();
  owner_ = owner;
  first_ = parsed;
  first_packet_ = packet;
  first_size_ = size;
  gso_size_ = size - parsed.headers;
  total_ = size;
  next_seq_ = parsed.protocol == 6 ? Get32(packet + parsed.l3 + 4) + static_cast<uint32_t>(gso_size_)
                                   : 0;
  first_checked_ = false;
  pushed_ = false;
  closed_ = (parsed.tcp_flags & kTcpPsh) != 0;
  iov_[0] = {packet, size};
  count_ = 1;
}

void InnerCoalescer::Flush() {
  if (count_ == 1) WriteAlone(first_packet_, first_size_);
  if (count_ > 1) WriteRun();
  count_ = 0;
}

void InnerCoalescer::WriteAlone(uint8_t* packet, size_t size) {
  VnetHeader header = {};
  header.flags = kVnetDataValid;  // the ESP ICV covered it end to end
  std::memcpy(packet - sizeof(header), &header, sizeof(header));
  const iovec iov = {packet - sizeof(header), size + sizeof(header)};
  sink_.WriteTun(&iov, 1, 1);
}

void InnerCoalescer::WriteRun() {
  uint8_t* p = first_packet_;
  const Parsed& f = first_;
  uint8_t saved[40 + 60];
  std::memcpy(saved, p, f.headers);
  SetIpLength(p, f.v6, f.l3, total_, f.v6 ? 0 : Get16(p + 4));
  const bool tcp = f.protocol == 6;
  uint8_t* l4 = p + f.l3;
  const size_t l4_length = total_ - f.l3;
  if (!tcp) Put16(l4 + 4, static_cast<uint16_t>(l4_length));
  if (pushed_) l4[13] |= kTcpPsh;  // segmentation puts it on the last segment
  // NEEDS_CSUM: the field holds the pseudo-header sum, segmentation and
  // the kernel complete it per segment.
  const uint16_t csum_offset = tcp ? 16 : 6;
  Put16(l4 + csum_offset,
        static_cast<uint16_t>(~ChecksumFold(PseudoSum(p, f.v6, f.protocol, l4_length))));
  VnetHeader header = {};
  header.flags = kVnetNeedsCsum;
  header.gso_type = tcp ? (f.v6 ? kGsoTcpV6 : kGsoTcpV4) : kGsoUdpL4;
  header.hdr_len = f.headers;
  header.gso_size = static_cast<uint16_t>(gso_size_);
  header.csum_start = f.l3;
  header.csum_offset = csum_offset;
  std::memcpy(p - sizeof(header), &header, sizeof(header));
  iov_[0] = {p - sizeof(header), first_size_ + sizeof(header)};
  if (sink_.WriteTun(iov_, count_, count_) != EINVAL) return;
  // The kernel refused this GSO type: the packets go alone from now on.
  (tcp ? tcp_ : udp_) = false;
  std::memcpy(p, saved, f.headers);
  WriteAlone(p, first_size_);
  for (int k = 1; k < count_; ++k) {
    uint8_t* payload = static_cast<uint8_t*>(iov_[k].iov_base);
    WriteAlone(payload - f.headers, f.headers + iov_[k].iov_len);
  }
}

bool ClampTcpMss(uint8_t* packet, size_t size, uint16_t mss_v4, uint16_t mss_v6) {
  if (size < 20) return false;
  const bool v6 = (packet[0] >> 4) == 6;
  size_t ip_len;
  uint16_t limit;
  if (v6) {
    if (size < 60 || packet[6] != 6) return false;
    ip_len = 40;
    limit = mss_v6;
  } else {
    ip_len = size_t{packet[0] & 0x0fu} * 4;
    // Only the first fragment carries the TCP header.
    if (packet[9] != 6 || (Get16(packet + 6) & 0x1fff) != 0 || size < ip_len + 20) return false;
    limit = mss_v4;
  }
  uint8_t* tcp = packet + ip_len;
  if ((tcp[13] & 0x02) == 0) return false;  // not a SYN
  const size_t tcp_len = static_cast<size_t>(tcp[12] >> 4) * 4;
  if (tcp_len < 20 || ip_len + tcp_len > size) return false;
  for (size_t i = 20; i < tcp_len;) {
    const uint8_t kind = tcp[i];
    if (kind == 0) break;
    if (kind == 1) {
      ++i;
      continue;
    }
    if (i + 1 >= tcp_len) break;
    const uint8_t len = tcp[i + 1];
    if (len < 2 || i + len > tcp_len) break;
    if (kind == 2 && len == 4) {
      const uint16_t mss = Get16(tcp + i + 2);
      if (mss <= limit) return false;
      // RFC 1624 incremental update: HC' = ~(~HC + ~m + m').
      uint32_t sum = static_cast<uint16_t>(~Get16(tcp + 16));
      sum += static_cast<uint16_t>(~mss);
      sum += limit;
      Put16(tcp + i + 2, limit);
      Put16(tcp + 16, ChecksumFold(sum));
      return true;
    }
    i += len;
  }
  return false;
}

size_t BuildPacketTooBig(const uint8_t* packet, size_t size, const uint8_t* source,
                         uint32_t mtu, uint8_t* out) {
  if (size < 20) return 0;
  if ((packet[0] >> 4) == 4) {
    const size_t ihl = size_t{packet[0] & 0x0fu} * 4;
    if (ihl < 20) return 0;
    if ((Get16(packet + 6) & 0x4000) == 0) return 0;  // DF clear: the kernel fragments
    if (packet[9] == 1 && size > ihl && packet[ihl] != 0 && packet[ihl] != 8) return 0;
    const size_t quote = std::min(size, ihl + 8);
    const size_t total = 20 + 8 + quote;
    std::memset(out, 0, 28);
    out[0] = 0x45;
    Put16(out + 2, static_cast<uint16_t>(total));
    out[8] = 64;
    out[9] = 1;
    std::memcpy(out + 12, source, 4);
    std::memcpy(out + 16, packet + 12, 4);
    Put16(out + 10, ChecksumFold(ChecksumAdd(out, 20, 0)));
    uint8_t* icmp = out + 20;
    icmp[0] = 3;
    icmp[1] = 4;
    Put16(icmp + 6, static_cast<uint16_t>(mtu));
    std::memcpy(icmp + 8, packet, quote);
    Put16(icmp + 2, ChecksumFold(ChecksumAdd(icmp, 8 + quote, 0)));
    return total;
  }
  if ((packet[0] >> 4) != 6 || size < 40) return 0;
  if (packet[6] == 58 && size > 40 && packet[40] < 128) return 0;  // ICMPv6 error
  const size_t quote = std::min<size_t>(size, 1280 - 48);
  const size_t total = 48 + quote;
  std::memset(out, 0, 48);
  out[0] = 0x60;
  Put16(out + 4, static_cast<uint16_t>(8 + quote));
  out[6] = 58;
  out[7] = 64;
  std::memcpy(out + 8, source, 16);
  std::memcpy(out + 24, packet + 8, 16);
  uint8_t* icmp = out + 40;
  icmp[0] = 2;  // Packet Too Big
  Put32(icmp + 4, mtu);
  std::memcpy(icmp + 8, packet, quote);
  const uint32_t sum = PseudoSum(out, true, 58, 8 + quote);
  Put16(icmp + 2, ChecksumFold(ChecksumAdd(icmp, 8 + quote, sum)));
  return total;
}

}  // namespace vpn::forwarder
