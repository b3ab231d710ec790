#include "esp-forwarder/dataplane/inner_packet.h"

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

// Pseudo-header sum for a transport segment of `length` bytes.
uint32_t PseudoSum(const uint8_t* ip, bool v6, uint8_t protocol, size_t length) {
  uint32_t sum = v6 ? ChecksumAdd(ip + 8, 32, 0) : ChecksumAdd(ip + 12, 8, 0);
  sum += protocol;
  sum += static_cast<uint32_t>(length >> 16) + static_cast<uint32_t>(length & 0xffff);
  return sum;
}

}  // namespace

uint32_t ChecksumAdd(const uint8_t* data, size_t size, uint32_t sum) {
  uint64_t acc = sum;
  size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    acc += Get16(data + i) + Get16(data + i + 2) + Get16(data + i + 4) + Get16(data + i + 6);
  }
  for (; i + 1 < size; i += 2) acc += Get16(data + i);
  if (i < size) acc += uint32_t(data[i]) << 8;
  while (acc >> 32) acc = (acc & 0xffffffff) + (acc >> 32);
  return static_cast<uint32_t>(acc) + 0;  // may carry: folded by ChecksumFold
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

size_t SegmentTcp(const uint8_t* packet, size_t size, uint16_t mss, SegmentSink& sink) {
  if (size < 20 || mss == 0) return 0;
  const bool v6 = (packet[0] >> 4) == 6;
  size_t ip_len;
  if (v6) {
    if (size < 40 || packet[6] != 6) return 0;
    ip_len = 40;
  } else {
    ip_len = size_t{packet[0] & 0x0fu} * 4;
    if (ip_len < 20 || size < ip_len || packet[9] != 6) return 0;
  }
  if (size < ip_len + 20) return 0;
  const size_t tcp_len = size_t{packet[ip_len + 12] >> 4} * 4;
  const size_t headers = ip_len + tcp_len;
  if (tcp_len < 20 || size < headers) return 0;
  const size_t payload = size - headers;
  const uint32_t seq0 = Get32(packet + ip_len + 4);
  const uint16_t id0 = v6 ? 0 : Get16(packet + 4);
  const uint8_t flags = packet[ip_len + 13];
  size_t count = 0;
  for (size_t offset = 0; offset < payload || (payload == 0 && count == 0); offset += mss) {
    const size_t chunk = payload - offset < mss ? payload - offset : mss;
    const bool last = offset + chunk >= payload;
    uint8_t* scratch = sink.Buffer();
    if (scratch == nullptr) break;
    std::memcpy(scratch, packet, headers);
    std::memcpy(scratch + headers, packet + headers + offset, chunk);
    const size_t total = headers + chunk;
    if (v6) {
      Put16(scratch + 4, static_cast<uint16_t>(total - 40));
    } else {
      Put16(scratch + 2, static_cast<uint16_t>(total));
      Put16(scratch + 4, static_cast<uint16_t>(id0 + count));
      scratch[10] = scratch[11] = 0;
      Put16(scratch + 10, ChecksumFold(ChecksumAdd(scratch, ip_len, 0)));
    }
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
  const size_t tcp_len = size_t{tcp[12] >> 4} * 4;
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
  if (size < 40) return 0;
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
