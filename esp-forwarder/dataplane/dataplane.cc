#include "esp-forwarder/dataplane/dataplane.h"

#include <errno.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/log/log.h"
#include "esp-forwarder/dataplane/inner_packet.h"
#include "esp-forwarder/esp/esp_codec.h"

namespace vpn::forwarder {
namespace {

using esp::DropReason;

constexpr int kRxBatch = 32;          // datagrams per recvmmsg
constexpr size_t kRxBuffer = 65536;   // one GRO super-datagram
constexpr size_t kRxSmallBuffer = 2048;
constexpr int kTxSlots = 128;         // outbound ESP packets per flush
constexpr size_t kSlotSize = esp::kEspHeadroom + 9216 + esp::kEspTailroom;
constexpr int kTunBudget = 64;        // TUN reads per wake-up
constexpr size_t kGsoMaxBytes = 65000;
constexpr int kGsoMaxSegments = 64;
#ifndef SO_ATTACH_REUSEPORT_CBPF
#define SO_ATTACH_REUSEPORT_CBPF 51
#endif

const log::Logger& Log() {
  static const log::Logger* logger = new log::Logger("esp-forwarder");
  return *logger;
}

inline uint32_t Be32(const uint8_t* p) { return esp::ReadBe32(p); }

// Steers datagrams of a reuseport group: SPI % n; IKE (marker 0) and
// anything shorter than 4 bytes (keepalives) to socket 0.
absl::Status AttachReuseportSteering(int fd, int n) {
  sock_filter code[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_LEN, 0),
      BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 4, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, 0),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0),
      BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, static_cast<uint32_t>(n)),
      BPF_STMT(BPF_RET | BPF_A, 0),
  };
  sock_fprog program = {static_cast<unsigned short>(sizeof(code) / sizeof(code[0])), code};
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &program, sizeof(program)) != 0) {
    return absl::UnavailableError(absl::StrCat("SO_ATTACH_REUSEPORT_CBPF: ", strerror(errno)));
  }
  return absl::OkStatus();
}

// Raw ESP socket keeping only SPI % n == index.
int OpenRawEsp(bool v6, int index, int n) {
  const int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC,
                        IPPROTO_ESP);
  if (fd < 0) return -1;
  const int on = 1;
  if (v6) {
    setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &on, sizeof(on));
  } else {
    setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &on, sizeof(on));
  }
  if (n > 1) {
    // IPv4 raw sockets see the IP header, IPv6 ones start at ESP.
    sock_filter v4[] = {
        BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, 0),
        BPF_STMT(BPF_LD | BPF_W | BPF_IND, 0),
        BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, static_cast<uint32_t>(n)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(index), 0, 1),
        BPF_STMT(BPF_RET | BPF_K, 0xffff),
        BPF_STMT(BPF_RET | BPF_K, 0),
    };
    sock_filter v6code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0),
        BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, static_cast<uint32_t>(n)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(index), 0, 1),
        BPF_STMT(BPF_RET | BPF_K, 0xffff),
        BPF_STMT(BPF_RET | BPF_K, 0),
    };
    sock_fprog program = v6 ? sock_fprog{5, v6code} : sock_fprog{6, v4};
    setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &program, sizeof(program));
  }
  return fd;
}


}  // namespace

// ---------------------------------------------------------------------------
class Dataplane::Worker : public SegmentSink, public TunSink {
 public:
  Worker(Dataplane* plane, int index)
      : plane_(plane),
        index_(index),
        udp_fd_(plane->natt_sockets_[index]->fd()),
        v6_socket_(plane->natt_sockets_[index]->bound().is_v6()),
        raw4_(plane->raw4_.empty() ? -1 : plane->raw4_[index]),
        raw6_(plane->raw6_.empty() ? -1 : plane->raw6_[index]),
        tun_fd_(plane->tun_ ? plane->tun_->fd(index % plane->tun_->queues()) : -1),
        vnet_(plane->tun_ && plane->tun_->vnet_hdr()),
        rx_size_(plane->gro_ ? kRxBuffer : kRxSmallBuffer),
        rx_(new uint8_t[kRxBatch * rx_size_]),
        tun_rx_(new uint8_t[kRxBuffer + 64]),
        slots_(new uint8_t[kTxSlots * kSlotSize]),
        coalescer_(*this, vnet_ && plane->options_.coalesce,
                   vnet_ && plane->options_.coalesce && plane->tun_->uso()) {
    const int mtu = plane->tun_ ? plane->tun_->mtu() : 1400;
    mss_v4_ = static_cast<uint16_t>(mtu - 40);
    mss_v6_ = static_cast<uint16_t>(mtu - 60);
  }

  void Run(int stop_fd);
  pid_t tid() const { return tid_.load(); }
  DataplaneStats totals() const {
    absl::MutexLock lock(&stats_mu_);
    return totals_;
  }

  // SegmentSink: TSO segments go straight into TX slots.
  uint8_t* Buffer() override {
    if (tx_count_ == kTxSlots) FlushTx();
    return Slot(tx_count_) + esp::kEspHeadroom;
  }
  size_t buffer_size() const override {
    return kSlotSize - esp::kEspHeadroom - esp::kEspTailroom;
  }
  void Emit(uint8_t* segment, size_t size) override { Outbound(segment, size); }

  // TunSink: one (GSO) write of decrypted packets.
  int WriteTun(const iovec* iov, int iovcnt, int packets) override {
    const ssize_t n = writev(tun_fd_, iov, iovcnt);
    if (n >= 0) {
      if (iovcnt > 1) stats_.coalesced_in += packets;
      return 0;
    }
    const int error = errno;
    // A refused GSO write is retried packet by packet (InnerCoalescer).
    if (iovcnt == 1 || error != EINVAL) {
      for (int i = 0; i < packets; ++i) Drop(DropReason::kIoError);
    }
    return error;
  }

 private:
  struct Tx {
    const SaEntry* entry;
    uint8_t* esp;
    size_t size;
  };

  uint8_t* Slot(int i) { return slots_.get() + static_cast<size_t>(i) * kSlotSize; }
  void Drop(DropReason reason) { stats_.drops.Add(reason); }

  void ReceiveUdp();
  void ReceiveRaw(int fd, bool v6);
  void HandleUdpPayload(uint8_t* data, size_t size, const msghdr& message);
  // `message`: the datagram's header for ESP in UDP (its source), null for raw.
  void HandleEsp(uint8_t* esp, size_t size, const msghdr* message);
  // One inner packet to the TUN as it is.
  void WriteTunPacket(uint8_t* packet, size_t size);
  void ReadTun();
  void Outbound(uint8_t* inner, size_t size);
  void FlushTx();
  void Publish();

  Dataplane* const plane_;
  const int index_;
  const int udp_fd_;
  const bool v6_socket_;
  const int raw4_;
  const int raw6_;
  const int tun_fd_;
  const bool vnet_;
  const size_t rx_size_;
  std::unique_ptr<uint8_t[]> rx_;
  std::unique_ptr<uint8_t[]> tun_rx_;
  std::unique_ptr<uint8_t[]> slots_;
  // Decrypted packets on their way to a vnet-header TUN; they point into
  // rx_, so it is flushed before rx_ is read into again.
  InnerCoalescer coalescer_;
  uint16_t mss_v4_ = 1360, mss_v6_ = 1340;
  bool gso_ = true;
  int64_t now_ns_ = 0;  // CLOCK_MONOTONIC of this batch (observer reports)

  std::shared_ptr<const SaSnapshot> snapshot_;
  Tx tx_[kTxSlots];
  int tx_count_ = 0;
  // Send-side scratch, reused per flush.
  mmsghdr tx_msgs_[kTxSlots];
  iovec tx_iov_[kTxSlots];
  sockaddr_storage tx_addr_[kTxSlots];
  alignas(cmsghdr) char tx_control_[kTxSlots][CMSG_SPACE(sizeof(in6_pktinfo)) +
                                              CMSG_SPACE(sizeof(uint16_t))];

  alignas(8) uint8_t icmp_room_[esp::kEspHeadroom + 1280];

  std::atomic<pid_t> tid_{0};
  DataplaneStats stats_;  // this batch
  mutable absl::Mutex stats_mu_;
  DataplaneStats totals_ ABSL_GUARDED_BY(stats_mu_);
};

void Dataplane::Worker::Run(int stop_fd) {
  tid_ = static_cast<pid_t>(syscall(SYS_gettid));
  pollfd fds[5];
  int n = 0;
  fds[n++] = {stop_fd, POLLIN, 0};
  fds[n++] = {udp_fd_, POLLIN, 0};
  const int raw4_at = raw4_ >= 0 ? n : -1;
  if (raw4_ >= 0) fds[n++] = {raw4_, POLLIN, 0};
  const int raw6_at = raw6_ >= 0 ? n : -1;
  if (raw6_ >= 0) fds[n++] = {raw6_, POLLIN, 0};
  const int tun_at = tun_fd_ >= 0 ? n : -1;
  if (tun_fd_ >= 0) fds[n++] = {tun_fd_, POLLIN, 0};
  while (true) {
    if (poll(fds, n, 1000) < 0 && errno != EINTR) break;
    if (fds[0].revents != 0) break;
    snapshot_ = plane_->table_->Current();
    if (plane_->options_.observer != nullptr) now_ns_ = esp::MonotonicNanos();
    if (fds[1].revents & POLLIN) ReceiveUdp();
    if (raw4_at >= 0 && (fds[raw4_at].revents & POLLIN)) ReceiveRaw(raw4_, false);
    if (raw6_at >= 0 && (fds[raw6_at].revents & POLLIN)) ReceiveRaw(raw6_, true);
    if (tun_at >= 0 && (fds[tun_at].revents & POLLIN)) ReadTun();
    FlushTx();
    snapshot_.reset();
    Publish();
  }
}

// Adds this batch's counts to /metrics and the worker's totals.
void Dataplane::Worker::Publish() {
  if (stats_.packets_in != 0) {
    plane_->packets_in_.Increment(static_cast<double>(stats_.packets_in));
    plane_->bytes_in_.Increment(static_cast<double>(stats_.bytes_in));
    if (stats_.coalesced_in != 0) {
      plane_->coalesced_in_.Increment(static_cast<double>(stats_.coalesced_in));
    }
  }
  if (stats_.packets_out != 0) {
    plane_->packets_out_.Increment(static_cast<double>(stats_.packets_out));
    plane_->bytes_out_.Increment(static_cast<double>(stats_.bytes_out));
  }
  for (size_t i = 1; i < stats_.drops.counts.size(); ++i) {
    if (stats_.drops.counts[i] != 0) {
      plane_->drop_counters_[i - 1]->Increment(static_cast<double>(stats_.drops.counts[i]));
    }
  }
  absl::MutexLock lock(&stats_mu_);
  totals_.packets_in += stats_.packets_in;
  totals_.bytes_in += stats_.bytes_in;
  totals_.coalesced_in += stats_.coalesced_in;
  totals_.packets_out += stats_.packets_out;
  totals_.bytes_out += stats_.bytes_out;
  for (size_t i = 0; i < stats_.drops.counts.size(); ++i) {
    totals_.drops.counts[i] += stats_.drops.counts[i];
  }
  stats_ = DataplaneStats();
}

void Dataplane::Worker::ReceiveUdp() {
  mmsghdr msgs[kRxBatch];
  iovec iov[kRxBatch];
  sockaddr_storage from[kRxBatch];
  alignas(cmsghdr) char control[kRxBatch][CMSG_SPACE(sizeof(in6_pktinfo)) + CMSG_SPACE(sizeof(int))];
  for (int budget = 0; budget < 8; ++budget) {
    for (int i = 0; i < kRxBatch; ++i) {
      iov[i] = {rx_.get() + i * rx_size_, rx_size_};
      msgs[i].msg_hdr = {};
      msgs[i].msg_hdr.msg_name = &from[i];
      msgs[i].msg_hdr.msg_namelen = sizeof(from[i]);
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_control = control[i];
      msgs[i].msg_hdr.msg_controllen = sizeof(control[i]);
    }
    const int n = recvmmsg(udp_fd_, msgs, kRxBatch, MSG_DONTWAIT, nullptr);
    if (n <= 0) return;
    for (int i = 0; i < n; ++i) {
      const msghdr& m = msgs[i].msg_hdr;
      size_t size = msgs[i].msg_len;
      if (m.msg_flags & MSG_TRUNC) {
        Drop(DropReason::kOversized);
        continue;
      }
      size_t segment = size;
      for (cmsghdr* c = CMSG_FIRSTHDR(&m); c != nullptr;
           c = CMSG_NXTHDR(const_cast<msghdr*>(&m), c)) {
        if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
          int gso = 0;
          std::memcpy(&gso, CMSG_DATA(c), sizeof(gso));
          if (gso > 0) segment = static_cast<size_t>(gso);
        }
      }
      uint8_t* data = static_cast<uint8_t*>(iov[i].iov_base);
      for (size_t off = 0; off < size; off += segment) {
        HandleUdpPayload(data + off, std::min(segment, size - off), m);
      }
    }
    coalescer_.Flush();
    if (n < kRxBatch) return;
  }
}

void Dataplane::Worker::HandleUdpPayload(uint8_t* data, size_t size, const msghdr& message) {
  if (size == 1 && data[0] == 0xff) {  // RFC 3948 §2.3 NAT keepalive
    plane_->keepalives_.Increment();
    return;
  }
  if (size < 4) {
    Drop(DropReason::kTruncated);
    return;
  }
  if (Be32(data) != 0) {
    HandleEsp(data, size, &message);
    return;
  }
  // IKE behind the non-ESP marker (RFC 3948 §2.2).
  auto remote = net::IpEndpoint::FromSockaddr(static_cast<const sockaddr*>(message.msg_name),
                                              message.msg_namelen);
  if (!remote.ok()) return;
  net::IpEndpoint local = plane_->natt_sockets_[index_]->bound();
  for (cmsghdr* c = CMSG_FIRSTHDR(&message); c != nullptr;
       c = CMSG_NXTHDR(const_cast<msghdr*>(&message), c)) {
    if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
      in_pktinfo info;
      std::memcpy(&info, CMSG_DATA(c), sizeof(info));
      auto l = net::IpEndpoint::FromBytes(
          absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(&info.ipi_addr), 4), local.port());
      if (l.ok()) local = *l;
    } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
      in6_pktinfo info;
      std::memcpy(&info, CMSG_DATA(c), sizeof(info));
      auto l = net::IpEndpoint::FromBytes(
          absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(&info.ipi6_addr), 16),
          local.port());
      if (l.ok()) local = *l;
    }
  }
  if (plane_->ike_handler_) plane_->ike_handler_(absl::MakeConstSpan(data + 4, size - 4), local, *remote);
}

void Dataplane::Worker::ReceiveRaw(int fd, bool v6) {
  mmsghdr msgs[kRxBatch];
  iovec iov[kRxBatch];
  for (int budget = 0; budget < 8; ++budget) {
    for (int i = 0; i < kRxBatch; ++i) {
      iov[i] = {rx_.get() + i * rx_size_, std::min(rx_size_, kRxBuffer)};
      msgs[i].msg_hdr = {};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    const int n = recvmmsg(fd, msgs, kRxBatch, MSG_DONTWAIT, nullptr);
    if (n <= 0) return;
    for (int i = 0; i < n; ++i) {
      uint8_t* data = static_cast<uint8_t*>(iov[i].iov_base);
      size_t size = msgs[i].msg_len;
      if (!v6) {
        const size_t ihl = size >= 20 ? size_t{data[0] & 0x0fu} * 4 : 0;
        if (ihl < 20 || size < ihl) {
          Drop(DropReason::kTruncated);
          continue;
        }
        data += ihl;
        size -= ihl;
      }
      HandleEsp(data, size, nullptr);
    }
    coalescer_.Flush();
    if (n < kRxBatch) return;
  }
}

void Dataplane::Worker::HandleEsp(uint8_t* esp_packet, size_t size, const msghdr* message) {
  if (size < esp::kEspHeaderSize) {
    Drop(DropReason::kTruncated);
    return;
  }
  const SaEntry* entry = snapshot_->Inbound(Be32(esp_packet));
  if (entry == nullptr) {
    Drop(DropReason::kUnknownSpi);
    return;
  }
  esp::Decapsulated out;
  const DropReason reason = esp::Decapsulate(*entry->sa, esp_packet, size, &out);
  if (reason != DropReason::kNone) {
    Drop(reason);
    return;
  }
  if (InboundObserver* observer = plane_->options_.observer; observer != nullptr) {
    // Authenticated and not a replay: liveness, and (ESP in UDP from a new
    // source with a new highest sequence number) NAT rebinding.
    net::IpEndpoint source;
    const net::IpEndpoint* from = nullptr;
    if (message != nullptr && entry->encap == Encap::kUdp) {
      auto parsed = net::IpEndpoint::FromSockaddr(
          static_cast<const sockaddr*>(message->msg_name), message->msg_namelen);
      if (parsed.ok()) {
        source = *parsed;
        from = &source;
      }
    }
    observer->OnAuthenticated(*entry, from, out.highest, now_ns_);
  }
  ++stats_.packets_in;
  stats_.bytes_in += out.inner_size;
  if (ClampTcpMss(out.inner, out.inner_size, mss_v4_, mss_v6_)) plane_->mss_clamped_.Increment();
  if (vnet_) {
    coalescer_.Add(entry->sa.get(), out.inner, out.inner_size);
  } else {
    WriteTunPacket(out.inner, out.inner_size);
  }
}

void Dataplane::Worker::WriteTunPacket(uint8_t* packet, size_t size) {
  if (tun_fd_ < 0) {
    Drop(DropReason::kNoTun);
    return;
  }
  uint8_t* start = packet;
  size_t length = size;
  if (vnet_) {
    // There is always an ESP header (>= 16 bytes) before the inner packet.
    start = packet - sizeof(VnetHeader);
    VnetHeader header = {};
    header.flags = kVnetDataValid;  // the ESP ICV covered it end to end
    std::memcpy(start, &header, sizeof(header));
    length += sizeof(header);
  }
  if (write(tun_fd_, start, length) != static_cast<ssize_t>(length)) Drop(DropReason::kIoError);
}

void Dataplane::Worker::ReadTun() {
  uint8_t* buffer = tun_rx_.get();
  for (int budget = 0; budget < kTunBudget; ++budget) {
    const ssize_t n = read(tun_fd_, buffer, kRxBuffer);
    if (n <= 0) return;
    uint8_t* packet = buffer;
    size_t size = static_cast<size_t>(n);
    VnetHeader header = {};
    if (vnet_) {
      if (size < sizeof(VnetHeader)) continue;
      std::memcpy(&header, buffer, sizeof(header));
      packet += sizeof(header);
      size -= sizeof(header);
    }
    if ((header.gso_type & 0x7f) == kGsoTcpV4 || (header.gso_type & 0x7f) == kGsoTcpV6) {
      if (SegmentTcp(packet, size, header.gso_size, *this) == 0) Drop(DropReason::kBadInner);
      continue;
    }
    if (header.gso_type == kGsoUdpL4) {
      if (SegmentUdp(packet, size, header.gso_size, *this) == 0) Drop(DropReason::kBadInner);
      continue;
    }
    if ((header.flags & kVnetNeedsCsum) &&
        !CompleteChecksum(packet, size, header.csum_start, header.csum_offset)) {
      Drop(DropReason::kBadInner);
      continue;
    }
    if (size + esp::kEspHeadroom + esp::kEspTailroom > kSlotSize) {
      Drop(DropReason::kOversized);
      continue;
    }
    uint8_t* slot = Buffer();
    std::memcpy(slot, packet, size);
    Outbound(slot, size);
  }
}

void Dataplane::Worker::Outbound(uint8_t* inner, size_t size) {
  if (size < 20) {
    Drop(DropReason::kBadInner);
    return;
  }
  const bool v6 = (inner[0] >> 4) == 6;
  if (v6 && size < 40) {
    Drop(DropReason::kBadInner);
    return;
  }
  const SaEntry* entry = snapshot_->Outbound(inner + (v6 ? 24 : 16), v6);
  if (entry == nullptr) {
    Drop(DropReason::kNoSa);
    return;
  }
  // PMTU: the ESP packet must fit the outer path.
  const size_t outer = (entry->remote.is_v6() ? 40 : 20) + (entry->encap == Encap::kUdp ? 8 : 0) +
                       esp::EspSize(entry->sa->outbound_cipher(), size);
  if (outer > plane_->options_.path_mtu) {
    const size_t overhead = outer - size;
    const std::string& source = v6 ? plane_->pmtu_source6_ : plane_->pmtu_source4_;
    if (!source.empty()) {
      uint8_t* icmp = icmp_room_ + esp::kEspHeadroom;
      const size_t n = BuildPacketTooBig(inner, size, reinterpret_cast<const uint8_t*>(source.data()),
                                         static_cast<uint32_t>(plane_->options_.path_mtu - overhead),
                                         icmp);
      if (n > 0) {
        plane_->pmtu_sent_.Increment();
        WriteTunPacket(icmp, n);
      }
    }
    Drop(DropReason::kOversized);
    return;
  }
  ClampTcpMss(inner, size, mss_v4_, mss_v6_);
  esp::Encapsulated out;
  const DropReason reason = esp::Encapsulate(*entry->sa, inner, size, &out);
  if (reason != DropReason::kNone) {
    Drop(reason);
    return;
  }
  ++stats_.packets_out;
  stats_.bytes_out += size;
  tx_[tx_count_++] = {entry, out.esp, out.size};
  if (tx_count_ == kTxSlots) FlushTx();
}

void Dataplane::Worker::FlushTx() {
  if (tx_count_ == 0) return;
  // UDP: runs of packets to one client, all of one size but the last, go as
  // one UDP GSO send; everything else one message each. Raw: one each.
  int udp = 0;
  int i = 0;
  auto fill_message = [&](int m, const SaEntry* entry, iovec* iov, size_t iovlen,
                          uint16_t gso_size) {
    msghdr& h = tx_msgs_[m].msg_hdr;
    h = {};
    const socklen_t len = entry->remote.ToSockaddr(&tx_addr_[m]);
    if (entry->encap == Encap::kRaw) {
      reinterpret_cast<sockaddr_in*>(&tx_addr_[m])->sin_port = 0;
    }
    h.msg_name = &tx_addr_[m];
    h.msg_namelen = len;
    h.msg_iov = iov;
    h.msg_iovlen = iovlen;
    size_t control = PutSourceAddress(entry->local, entry->remote.is_v6(), tx_control_[m]);
    if (gso_size != 0) {
      cmsghdr* c = reinterpret_cast<cmsghdr*>(tx_control_[m] + control);
      c->cmsg_level = SOL_UDP;
      c->cmsg_type = UDP_SEGMENT;
      c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
      std::memcpy(CMSG_DATA(c), &gso_size, sizeof(gso_size));
      control += CMSG_SPACE(sizeof(uint16_t));
    }
    if (control > 0) {
      h.msg_control = tx_control_[m];
      h.msg_controllen = control;
    }
  };
  int iov_used = 0;
  // UDP first.
  while (i < tx_count_) {
    const Tx& first = tx_[i];
    if (first.entry->encap != Encap::kUdp || first.entry->remote.is_v6() != v6_socket_) {
      ++i;
      continue;
    }
    int run = 1;
    size_t bytes = first.size;
    if (gso_) {
      while (i + run < tx_count_ && run < kGsoMaxSegments) {
        const Tx& next = tx_[i + run];
        if (next.entry->encap != Encap::kUdp || next.entry->remote != first.entry->remote ||
            next.entry->local != first.entry->local || next.size > first.size ||
            bytes + next.size > kGsoMaxBytes) {
          break;
        }
        bytes += next.size;
        ++run;
        if (next.size < first.size) break;  // a shorter one ends the run
      }
    }
    for (int k = 0; k < run; ++k) tx_iov_[iov_used + k] = {tx_[i + k].esp, tx_[i + k].size};
    fill_message(udp, first.entry, &tx_iov_[iov_used], run,
                 run > 1 ? static_cast<uint16_t>(first.size) : 0);
    iov_used += run;
    ++udp;
    i += run;
  }
  int sent = 0;
  while (sent < udp) {
    const int n = sendmmsg(udp_fd_, tx_msgs_ + sent, udp - sent, MSG_DONTWAIT);
    if (n <= 0) {
      if (errno == EIO || errno == EINVAL) gso_ = false;  // no GSO on this path
      for (int k = sent; k < udp; ++k) {
        for (size_t s = 0; s < tx_msgs_[k].msg_hdr.msg_iovlen; ++s) Drop(DropReason::kIoError);
      }
      break;
    }
    sent += n;
  }
  // Raw ESP (and UDP SAs of the other address family: not reachable from
  // this socket).
  int raw = 0;
  iov_used = 0;
  for (i = 0; i < tx_count_; ++i) {
    const Tx& t = tx_[i];
    if (t.entry->encap == Encap::kUdp && t.entry->remote.is_v6() == v6_socket_) continue;
    const int fd = t.entry->encap == Encap::kUdp ? -1 : (t.entry->remote.is_v6() ? raw6_ : raw4_);
    if (fd < 0) {
      Drop(DropReason::kIoError);
      continue;
    }
    tx_iov_[raw] = {t.esp, t.size};
    fill_message(raw, t.entry, &tx_iov_[raw], 1, 0);
    const int n = sendmmsg(fd, tx_msgs_ + raw, 1, MSG_DONTWAIT);
    if (n != 1) Drop(DropReason::kIoError);
  }
  tx_count_ = 0;
}

// ---------------------------------------------------------------------------
Dataplane::Dataplane(const DataplaneOptions& options, SaTable* table,
                     prometheus::Registry& registry, IkeHandler ike_handler)
    : options_(options),
      table_(table),
      ike_handler_(std::move(ike_handler)),
      drops_family_(prometheus::BuildCounter()
                        .Name("forwarder_esp_drops_total")
                        .Help("ESP packets dropped by the data plane, by reason.")
                        .Register(registry)),
      packets_family_(prometheus::BuildCounter()
                          .Name("forwarder_esp_packets_total")
                          .Help("Packets through the ESP data plane (in: decrypted to the TUN; "
                                "out: encrypted towards clients).")
                          .Register(registry)),
      bytes_family_(prometheus::BuildCounter()
                        .Name("forwarder_esp_bytes_total")
                        .Help("Inner bytes through the ESP data plane.")
                        .Register(registry)),
      packets_in_(packets_family_.Add({{"direction", "in"}})),
      packets_out_(packets_family_.Add({{"direction", "out"}})),
      bytes_in_(bytes_family_.Add({{"direction", "in"}})),
      bytes_out_(bytes_family_.Add({{"direction", "out"}})),
      keepalives_(prometheus::BuildCounter()
                      .Name("forwarder_esp_nat_keepalives_total")
                      .Help("NAT-T keepalives (RFC 3948 §2.3) received.")
                      .Register(registry)
                      .Add({})),
      pmtu_sent_(prometheus::BuildCounter()
                     .Name("forwarder_esp_pmtu_icmp_total")
                     .Help("ICMP fragmentation-needed / packet-too-big sent for oversized "
                           "inner packets.")
                     .Register(registry)
                     .Add({})),
      mss_clamped_(prometheus::BuildCounter()
                       .Name("forwarder_esp_mss_clamped_total")
                       .Help("TCP SYNs whose MSS option was lowered.")
                       .Register(registry)
                       .Add({})),
      coalesced_in_(prometheus::BuildCounter()
                        .Name("forwarder_esp_coalesced_packets_total")
                        .Help("Decrypted packets written to the TUN inside GSO super-packets "
                              "(of forwarder_esp_packets_total{direction=\"in\"}).")
                        .Register(registry)
                        .Add({})) {
  for (size_t i = 1; i < esp::kDropReasonNames.size(); ++i) {
    drop_counters_.push_back(&drops_family_.Add({{"reason", esp::kDropReasonNames[i]}}));
  }
}

absl::StatusOr<std::unique_ptr<Dataplane>> Dataplane::Create(const DataplaneOptions& options,
                                                             SaTable* table,
                                                             prometheus::Registry& registry,
                                                             IkeHandler ike_handler) {
  absl::StatusOr<net::IpEndpoint> natt = net::IpEndpoint::Parse(options.natt_listen);
  if (!natt.ok()) return natt.status();
  std::unique_ptr<Dataplane> plane(new Dataplane(options, table, registry, std::move(ike_handler)));
  int workers = options.workers > 0 ? options.workers
                                    : static_cast<int>(std::thread::hardware_concurrency());
  workers = std::max(1, std::min(workers, 64));
  for (int i = 0; i < workers; ++i) {
    // Later sockets join the port the first one got (port 0 in tests).
    net::IpEndpoint address = i == 0 ? *natt : plane->natt_sockets_[0]->bound();
    auto socket = UdpSocket::Bind(address, /*reuse_port=*/workers > 1);
    if (!socket.ok()) return socket.status();
    plane->natt_sockets_.push_back(std::move(*socket));
  }
  if (workers > 1) {
    if (absl::Status s = AttachReuseportSteering(plane->natt_sockets_[0]->fd(), workers); !s.ok()) {
      Log().Warning("cannot steer ESP by SPI; the kernel spreads by address instead",
                    {{"error", s.ToString()}});
    }
  }
  if (options.udp_gro) {
    bool all = true;
    const int on = 1;
    for (const auto& socket : plane->natt_sockets_) {
      all &= setsockopt(socket->fd(), SOL_UDP, UDP_GRO, &on, sizeof(on)) == 0;
    }
    plane->gro_ = all;
  }
  if (options.raw_esp) {
    for (int i = 0; i < workers; ++i) {
      plane->raw4_.push_back(OpenRawEsp(false, i, workers));
      plane->raw6_.push_back(OpenRawEsp(true, i, workers));
    }
    if (plane->raw4_[0] < 0) {
      Log().Warning("no raw ESP socket (IP protocol 50); only ESP in UDP works",
                    {{"error", strerror(errno)}});
      for (int fd : plane->raw4_) if (fd >= 0) close(fd);
      for (int fd : plane->raw6_) if (fd >= 0) close(fd);
      plane->raw4_.clear();
      plane->raw6_.clear();
    }
  }
  if (!options.tun.name.empty()) {
    TunOptions tun = options.tun;
    tun.queues = workers;
    auto device = TunDevice::Open(tun);
    if (!device.ok() && tun.offload) {
      Log().Warning("TUN offloads unavailable; opening without them",
                    {{"error", device.status().ToString()}});
      tun.offload = false;
      device = TunDevice::Open(tun);
    }
    if (!device.ok()) return device.status();
    plane->tun_ = std::move(*device);
    int prefix = 0;
    if (!tun.address.empty()) (void)ParseCidr(tun.address, &plane->pmtu_source4_, &prefix);
    if (!tun.address6.empty()) (void)ParseCidr(tun.address6, &plane->pmtu_source6_, &prefix);
  }
  plane->stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  for (int i = 0; i < workers; ++i) {
    plane->workers_.push_back(std::make_unique<Worker>(plane.get(), i));
  }
  Log().Info("ESP data plane ready",
             {{"natt", plane->natt_sockets_[0]->bound().ToString()},
              {"workers", workers},
              {"tun", plane->tun_ ? plane->tun_->name() : std::string("none")},
              {"tun_offload", plane->tun_ != nullptr && plane->tun_->vnet_hdr()},
              {"tun_uso", plane->tun_ != nullptr && plane->tun_->uso()},
              {"udp_gro", plane->gro_},
              {"raw_esp", plane->raw_esp()}});
  return plane;
}

void Dataplane::Start() {
  for (auto& worker : workers_) {
    threads_.emplace_back([this, w = worker.get(), i = threads_.size()] {
      log::SetThreadName(absl::StrCat("esp-worker-", i));
      w->Run(stop_fd_);
    });
  }
}

void Dataplane::Stop() {
  if (threads_.empty()) return;
  const uint64_t one = 1;
  ssize_t ignored = write(stop_fd_, &one, sizeof(one));
  (void)ignored;
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

Dataplane::~Dataplane() {
  Stop();
  workers_.clear();
  for (int fd : raw4_) if (fd >= 0) close(fd);
  for (int fd : raw6_) if (fd >= 0) close(fd);
  if (stop_fd_ >= 0) close(stop_fd_);
}

double Dataplane::WorkerCpuSeconds() const {
  double total = 0;
  for (const auto& worker : workers_) {
    if (worker->tid() == 0) continue;
    std::ifstream f(absl::StrCat("/proc/self/task/", worker->tid(), "/schedstat"));
    uint64_t ns = 0;
    f >> ns;
    total += static_cast<double>(ns) / 1e9;
  }
  return total;
}

DataplaneStats Dataplane::stats() const {
  DataplaneStats sum;
  for (const auto& worker : workers_) {
    const DataplaneStats s = worker->totals();
    sum.packets_in += s.packets_in;
    sum.bytes_in += s.bytes_in;
    sum.coalesced_in += s.coalesced_in;
    sum.packets_out += s.packets_out;
    sum.bytes_out += s.bytes_out;
    for (size_t i = 0; i < s.drops.counts.size(); ++i) sum.drops.counts[i] += s.drops.counts[i];
  }
  return sum;
}

}  // namespace vpn::forwarder
