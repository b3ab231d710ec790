// ESP data-plane exerciser and load generator (a program, not a test).
//
// Runs inside the gateway namespace of a test/interop/netns.sh topology and
// plays everything else itself: ike-service (it writes ChildSa records with
// sealed keys it chose into an embedded store), the client (ESP from the
// client namespace, built with the mirror SA) and the protected network (a
// UDP socket on the LAN host). In between runs the real forwarder data plane
// (Dataplane + StoreSync) with a real TUN device.
//
//   --mode=selftest  the data-plane scenarios, PASS/FAIL per line, exit 1 on
//                    any failure (used by dataplane_netns_test.sh)
//   --mode=bench     packets/s and Gbit/s per forwarder core, decrypt
//                    (client -> LAN) and encrypt (LAN -> client), beside the
//                    raw AEAD limit of the crypto interface
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/store/embedded_store.h"
#include "common/store/sa_keys.h"
#include "esp-forwarder/bench/netns_util.h"
#include "esp-forwarder/dataplane/dataplane.h"
#include "esp-forwarder/dataplane/inner_packet.h"
#include "esp-forwarder/esp/esp_codec.h"
#include "esp-forwarder/esp/suites.h"
#include "esp-forwarder/sa_table/child_sa_records.h"
#include "esp-forwarder/sa_table/store_sync.h"
#include "prometheus/registry.h"

ABSL_FLAG(std::string, mode, "selftest", "selftest | bench");
ABSL_FLAG(std::string, cli_ns, "", "client network namespace");
ABSL_FLAG(std::string, lan_ns, "", "protected-network namespace");
ABSL_FLAG(std::string, gw_addr, "192.0.2.1", "gateway address");
ABSL_FLAG(std::string, cli_addr, "192.0.2.2", "client address");
ABSL_FLAG(std::string, lan_host, "203.0.113.2", "host in the protected network");
ABSL_FLAG(std::string, tun, "esptun0", "TUN device the forwarder creates");
ABSL_FLAG(int, workers, 1, "forwarder workers (cores)");
ABSL_FLAG(bool, offload, true, "TUN offloads, UDP GRO/GSO");
ABSL_FLAG(bool, coalesce, true, "with offload: GSO writes of decrypted runs to the TUN");
ABSL_FLAG(bool, uso, true, "with offload: UDP segmentation offload on the TUN");
ABSL_FLAG(double, seconds, 2.0, "bench: seconds per measurement");
ABSL_FLAG(std::string, sizes, "64,512,1400", "bench: inner packet sizes (IP bytes)");
ABSL_FLAG(std::string, suites, "aes128gcm16", "bench: ESP suites");

namespace vpn::forwarder::bench {
namespace {

constexpr uint16_t kLanPort = 9000;
constexpr uint16_t kClientPort = 5000;

uint32_t Ip4(const std::string& s) {
  in_addr a;
  inet_pton(AF_INET, s.c_str(), &a);
  return a.s_addr;
}

// Sets an IPv4 packet's ID and header checksum.
void SetIpId(std::vector<uint8_t>& p, uint16_t id) {
  p[4] = id >> 8;
  p[5] = id & 0xff;
  p[10] = p[11] = 0;
  const uint16_t c = ChecksumFold(ChecksumAdd(p.data(), 20, 0));
  p[10] = c >> 8;
  p[11] = c & 0xff;
}

// IPv4/UDP inner packet of `size` bytes total, checksums valid, as a Linux
// sender makes them.
std::vector<uint8_t> UdpPacket(uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport,
                               size_t size, const std::string& tag, uint16_t id = 0) {
  if (size < 28 + tag.size()) size = 28 + tag.size();
  std::vector<uint8_t> p(size, 0x61);
  p[0] = 0x45;
  p[1] = 0;
  p[2] = size >> 8;
  p[3] = size & 0xff;
  p[4] = p[5] = 0;
  p[6] = 0x40;
  p[7] = 0;
  p[8] = 64;
  p[9] = 17;
  p[10] = p[11] = 0;
  std::memcpy(&p[12], &src, 4);
  std::memcpy(&p[16], &dst, 4);
  const uint16_t c = ChecksumFold(ChecksumAdd(p.data(), 20, 0));
  p[10] = c >> 8;
  p[11] = c & 0xff;
  const size_t udp = size - 20;
  p[20] = sport >> 8; p[21] = sport & 0xff; p[22] = dport >> 8; p[23] = dport & 0xff;
  p[24] = udp >> 8; p[25] = udp & 0xff; p[26] = p[27] = 0;
  std::memcpy(&p[28], tag.data(), tag.size());
  uint16_t sum = ChecksumFold(ChecksumAdd(&p[20], udp, ChecksumAdd(&p[12], 8, 0) + 17 + udp));
  if (sum == 0) sum = 0xffff;
  p[26] = sum >> 8;
  p[27] = sum & 0xff;
  SetIpId(p, id);
  return p;
}

// IPv4/TCP segment (ACK, plus PSH if `push`) of `size` bytes total with
// sequence number `seq`, checksums valid; the payload depends on `seq`.
std::vector<uint8_t> TcpPacket(uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport,
                               size_t size, uint32_t seq, uint16_t id, bool push) {
  std::vector<uint8_t> p(size, 0);
  p[0] = 0x45;
  p[2] = size >> 8;
  p[3] = size & 0xff;
  p[6] = 0x40;
  p[8] = 64;
  p[9] = 6;
  std::memcpy(&p[12], &src, 4);
  std::memcpy(&p[16], &dst, 4);
  uint8_t* t = &p[20];
  t[0] = sport >> 8; t[1] = sport & 0xff; t[2] = dport >> 8; t[3] = dport & 0xff;
  t[4] = seq >> 24; t[5] = seq >> 16; t[6] = seq >> 8; t[7] = seq & 0xff;
  t[11] = 1;  // ACK number
  t[12] = 5 << 4;
  t[13] = push ? 0x18 : 0x10;
  t[14] = 0x20;  // window
  for (size_t i = 40; i < size; ++i) p[i] = static_cast<uint8_t>(seq + i);
  const uint16_t sum = ChecksumFold(ChecksumAdd(t, size - 20, ChecksumAdd(&p[12], 8, 0) + 6 + (size - 20)));
  t[16] = sum >> 8;
  t[17] = sum & 0xff;
  SetIpId(p, id);
  return p;
}

int UdpSocketAt(uint32_t address, uint16_t port) {
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  const int on = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
  int buf = 8 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof(buf));
  setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &buf, sizeof(buf));
  sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = address;
  a.sin_port = htons(port);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    std::perror("bind");
    std::exit(2);
  }
  return fd;
}

void SendTo(int fd, const uint8_t* data, size_t size, uint32_t address, uint16_t port) {
  sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = address;
  a.sin_port = htons(port);
  sendto(fd, data, size, 0, reinterpret_cast<sockaddr*>(&a), sizeof(a));
}

// One UDP GSO send of `size` bytes cut into `segment`-byte datagrams.
bool SendGso(int fd, const uint8_t* data, size_t size, uint16_t segment, uint32_t address,
             uint16_t port) {
  sockaddr_in to = {};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = address;
  to.sin_port = htons(port);
  iovec iov = {const_cast<uint8_t*>(data), size};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(uint16_t))] = {};
  msghdr h = {};
  h.msg_name = &to;
  h.msg_namelen = sizeof(to);
  h.msg_iov = &iov;
  h.msg_iovlen = 1;
  h.msg_control = control;
  h.msg_controllen = sizeof(control);
  cmsghdr* cm = CMSG_FIRSTHDR(&h);
  cm->cmsg_level = SOL_UDP;
  cm->cmsg_type = UDP_SEGMENT;
  cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
  std::memcpy(CMSG_DATA(cm), &segment, sizeof(segment));
  return sendmsg(fd, &h, 0) >= 0;
}

// Sends `datagrams` (all of one size but the last) as one UDP GSO send.
void SendBurst(int fd, const std::vector<std::vector<uint8_t>>& datagrams, uint32_t address,
               uint16_t port) {
  std::vector<uint8_t> batch;
  for (const auto& d : datagrams) batch.insert(batch.end(), d.begin(), d.end());
  if (!SendGso(fd, batch.data(), batch.size(), static_cast<uint16_t>(datagrams.front().size()),
               address, port)) {
    std::perror("sendmsg (GSO burst)");
  }
}

// The IPv4 packets from `source` seen on the LAN host's interface within
// `timeout`, until `count` arrived; partial checksums (CHECKSUM_PARTIAL
// across the veth) completed as a NIC would.
std::vector<std::vector<uint8_t>> Capture(int fd, uint32_t source, size_t count,
                                          absl::Duration timeout) {
  std::vector<std::vector<uint8_t>> packets;
  const absl::Time deadline = absl::Now() + timeout;
  std::vector<uint8_t> buffer(65536);
  while (packets.size() < count && absl::Now() < deadline) {
    pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    iovec iov = {buffer.data(), buffer.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(tpacket_auxdata))];
    msghdr h = {};
    h.msg_iov = &iov;
    h.msg_iovlen = 1;
    h.msg_control = control;
    h.msg_controllen = sizeof(control);
    const ssize_t n = recvmsg(fd, &h, MSG_DONTWAIT);
    if (n < 20 || std::memcmp(&buffer[12], &source, 4) != 0) continue;
    std::vector<uint8_t> packet(buffer.begin(), buffer.begin() + n);
    for (cmsghdr* c = CMSG_FIRSTHDR(&h); c != nullptr; c = CMSG_NXTHDR(&h, c)) {
      tpacket_auxdata aux;
      if (c->cmsg_level != SOL_PACKET || c->cmsg_type != PACKET_AUXDATA) continue;
      std::memcpy(&aux, CMSG_DATA(c), sizeof(aux));
      if (aux.tp_status & TP_STATUS_CSUMNOTREADY) {
        const uint16_t ip_len = (packet[0] & 0xf) * 4;
        CompleteChecksum(packet.data(), packet.size(), ip_len, packet[9] == 6 ? 16 : 6);
      }
    }
    packets.push_back(std::move(packet));
  }
  return packets;
}

// One datagram within `timeout`, or empty.
std::vector<uint8_t> Receive(int fd, absl::Duration timeout) {
  pollfd p = {fd, POLLIN, 0};
  if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout))) <= 0) return {};
  std::vector<uint8_t> buffer(65536);
  const ssize_t n = recv(fd, buffer.data(), buffer.size(), MSG_DONTWAIT);
  if (n <= 0) return {};
  buffer.resize(n);
  return buffer;
}

struct Gateway {
  std::string dir;
  std::shared_ptr<store::Store> store;
  std::shared_ptr<store::Sealer> sealer;
  prometheus::Registry registry;
  SaTable table;
  std::unique_ptr<StoreSync> sync;
  std::unique_ptr<Dataplane> plane;

  bool WaitInstalled(uint32_t spi, bool present = true) {
    const absl::Time deadline = absl::Now() + absl::Seconds(3);
    while (absl::Now() < deadline) {
      if ((table.Current()->Inbound(spi) != nullptr) == present) return true;
      absl::SleepFor(absl::Microseconds(200));
    }
    return false;
  }
  uint64_t Drops(esp::DropReason reason) { return plane->stats().drops.Get(reason); }
};

std::unique_ptr<Gateway> StartGateway() {
  auto gw = std::make_unique<Gateway>();
  char dir[] = "/tmp/esp_loadgen.XXXXXX";
  if (mkdtemp(dir) == nullptr) std::exit(2);
  gw->dir = dir;
  store::EmbeddedOptions options;
  options.dir = dir;
  gw->store = std::shared_ptr<store::Store>(std::move(*store::EmbeddedStore::Open(options)));
  uint8_t key[32];
  crypto::GetProvider().RandomBytes(absl::MakeSpan(key));
  gw->sealer = std::shared_ptr<store::Sealer>(std::move(*store::Sealer::FromKey(key)));
  gw->sync = std::make_unique<StoreSync>(gw->store, gw->sealer, &gw->table, gw->registry);
  gw->sync->Start();
  DataplaneOptions dp;
  dp.natt_listen = absl::GetFlag(FLAGS_gw_addr) + ":4500";
  dp.workers = absl::GetFlag(FLAGS_workers);
  dp.tun.name = absl::GetFlag(FLAGS_tun);
  dp.tun.address = "10.10.0.1/24";
  dp.tun.offload = absl::GetFlag(FLAGS_offload);
  dp.tun.uso = absl::GetFlag(FLAGS_uso);
  dp.coalesce = absl::GetFlag(FLAGS_coalesce);
  dp.udp_gro = dp.udp_gso = absl::GetFlag(FLAGS_offload);
  auto plane = Dataplane::Create(dp, &gw->table, gw->registry, nullptr);
  if (!plane.ok()) {
    std::fprintf(stderr, "data plane: %s\n", plane.status().ToString().c_str());
    std::exit(2);
  }
  gw->plane = std::move(*plane);
  gw->plane->Start();
  return gw;
}

// The client of one SA: its mirror EspSa and its sockets.
struct Client {
  ChildSaSpec spec;
  std::shared_ptr<esp::EspSa> sa;
  uint32_t vip = 0;
  int udp = -1;
  int raw = -1;
  uint16_t port = 4500;

  std::vector<uint8_t> Protect(const std::vector<uint8_t>& inner) {
    std::vector<uint8_t> frame(esp::kEspHeadroom + inner.size() + esp::kEspTailroom);
    std::memcpy(frame.data() + esp::kEspHeadroom, inner.data(), inner.size());
    esp::Encapsulated out;
    if (esp::Encapsulate(*sa, frame.data() + esp::kEspHeadroom, inner.size(), &out) !=
        esp::DropReason::kNone) {
      return {};
    }
    return std::vector<uint8_t>(out.esp, out.esp + out.size);
  }
  void Send(const std::vector<uint8_t>& esp_packet) {
    const uint32_t gw = Ip4(absl::GetFlag(FLAGS_gw_addr));
    if (spec.udp) {
      SendTo(udp, esp_packet.data(), esp_packet.size(), gw, 4500);
    } else {
      SendTo(raw, esp_packet.data(), esp_packet.size(), gw, 0);
    }
  }
  // The next ESP packet for this client, decrypted: the inner packet.
  std::vector<uint8_t> ReceiveInner(absl::Duration timeout, esp::DropReason* reason = nullptr) {
    std::vector<uint8_t> data = Receive(spec.udp ? udp : raw, timeout);
    if (data.empty()) return {};
    size_t skip = 0;
    if (!spec.udp) skip = size_t{data[0] & 0x0fu} * 4;  // raw IPv4 includes the header
    esp::Decapsulated out;
    const esp::DropReason r = esp::Decapsulate(*sa, data.data() + skip, data.size() - skip, &out);
    if (reason) *reason = r;
    if (r != esp::DropReason::kNone) return {};
    return std::vector<uint8_t>(out.inner, out.inner + out.inner_size);
  }
};

Client MakeClient(Gateway& gw, const std::string& suite, uint32_t spi_in, uint32_t vip_last,
                  bool udp, uint16_t port) {
  Client c;
  c.spec.inbound_spi = spi_in;
  c.spec.outbound_spi = spi_in + 0x01000000;
  c.spec.algorithms = esp::SuiteByName(suite)->algorithms;
  c.spec.keys = *esp::MakeTestKeys(c.spec.algorithms, spi_in);
  c.spec.local = *net::IpEndpoint::Parse(absl::GetFlag(FLAGS_gw_addr) + (udp ? ":4500" : ":0"));
  c.spec.remote = *net::IpEndpoint::Parse(absl::StrCat(absl::GetFlag(FLAGS_cli_addr), ":", udp ? port : 0));
  c.spec.udp = udp;
  c.spec.remote_cidrs = {absl::StrCat("10.10.0.", vip_last, "/32")};
  c.spec.replay_window = 64;
  c.vip = Ip4(absl::StrCat("10.10.0.", vip_last));
  c.port = port;
  esp::SaParams params;
  params.inbound_spi = c.spec.outbound_spi;
  params.outbound_spi = c.spec.inbound_spi;
  params.algorithms = c.spec.algorithms;
  uint8_t vip[4];
  std::memcpy(vip, &c.vip, 4);
  const uint8_t zero[4] = {};
  params.local_ts = {esp::AddressRange::Prefix(vip, false, 32)};
  params.remote_ts = {esp::AddressRange::Prefix(zero, false, 0)};
  c.sa = *esp::EspSa::Create(params, c.spec.keys.mirrored());
  (void)InNetns(absl::GetFlag(FLAGS_cli_ns), [&] {
    if (udp) {
      c.udp = UdpSocketAt(Ip4(absl::GetFlag(FLAGS_cli_addr)), port);
    } else {
      c.raw = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ESP);
    }
  });
  return c;
}

int failures = 0;
void Check(bool ok, const std::string& what) {
  std::printf("%s %s\n", ok ? "PASS" : "FAIL", what.c_str());
  std::fflush(stdout);
  if (!ok) ++failures;
}

// Client -> LAN: the LAN socket sees the inner UDP payload.
bool Upstream(Client& c, int lan, const std::string& tag) {
  c.Send(c.Protect(UdpPacket(c.vip, kClientPort, Ip4(absl::GetFlag(FLAGS_lan_host)), kLanPort, 100, tag)));
  std::vector<uint8_t> got = Receive(lan, absl::Seconds(2));
  return got.size() >= tag.size() && std::memcmp(got.data(), tag.data(), tag.size()) == 0;
}

// LAN -> client VIP: the client decrypts the inner packet with the payload.
bool Downstream(Client& c, int lan, const std::string& tag, uint64_t* seq = nullptr) {
  SendTo(lan, reinterpret_cast<const uint8_t*>(tag.data()), tag.size(), c.vip, kClientPort);
  for (int tries = 0; tries < 3; ++tries) {
    std::vector<uint8_t> inner = c.ReceiveInner(absl::Seconds(2));
    if (inner.size() >= 28 + tag.size() && std::memcmp(&inner[28], tag.data(), tag.size()) == 0) {
      if (seq) *seq = c.sa->replay_top();
      return true;
    }
  }
  return false;
}

int SelfTest() {
  auto gw = StartGateway();
  int lan = -1;
  (void)InNetns(absl::GetFlag(FLAGS_lan_ns),
                [&] { lan = UdpSocketAt(Ip4(absl::GetFlag(FLAGS_lan_host)), kLanPort); });

  // 1. An SA over UDP, installed from the store.
  Client a = MakeClient(*gw, "aes256gcm16", 0xc1000001, 2, true, 4500);
  const absl::Time t0 = absl::Now();
  const bool installed =
      PutChildSa(*gw->store, *gw->sealer, a.spec).ok() && gw->WaitInstalled(a.spec.inbound_spi);
  Check(installed, absl::StrCat("SA installed in the data plane ",
                                absl::FormatDuration(absl::Now() - t0),
                                " after the store write began"));
  Check(Upstream(a, lan, "up-1"), "client -> LAN through the tunnel (ESP in UDP)");
  Check(Downstream(a, lan, "down-1"), "LAN -> client VIP through the tunnel (ESP in UDP)");

  // 2. Replayed, flipped, unknown-SPI and truncated packets: dropped, counted.
  std::vector<uint8_t> good = a.Protect(UdpPacket(a.vip, kClientPort, Ip4(absl::GetFlag(FLAGS_lan_host)), kLanPort, 100, "up-2"));
  a.Send(good);
  Check(!Receive(lan, absl::Seconds(1)).empty(), "fresh packet delivered");
  const uint64_t replays = gw->Drops(esp::DropReason::kReplay);
  a.Send(good);
  Check(Receive(lan, absl::Milliseconds(300)).empty(), "replayed packet not delivered");
  absl::SleepFor(absl::Milliseconds(50));
  Check(gw->Drops(esp::DropReason::kReplay) == replays + 1, "replay counted");
  std::vector<uint8_t> flipped = a.Protect(UdpPacket(a.vip, kClientPort, Ip4(absl::GetFlag(FLAGS_lan_host)), kLanPort, 100, "up-3"));
  flipped[flipped.size() / 2] ^= 0x40;
  a.Send(flipped);
  Check(Receive(lan, absl::Milliseconds(300)).empty(), "flipped packet not delivered");
  absl::SleepFor(absl::Milliseconds(50));
  Check(gw->Drops(esp::DropReason::kAuthFailed) == 1, "auth failure counted");
  std::vector<uint8_t> unknown = good;
  unknown[0] ^= 0x55;
  a.Send(unknown);
  std::vector<uint8_t> shortp(good.begin(), good.begin() + 6);
  a.Send(shortp);
  absl::SleepFor(absl::Milliseconds(100));
  Check(gw->Drops(esp::DropReason::kUnknownSpi) == 1, "unknown SPI counted");
  Check(gw->Drops(esp::DropReason::kTruncated) == 1, "truncated counted");
  Check(Upstream(a, lan, "up-4"), "traffic continues after the bad packets");

  // 3. Endpoint change (NAT rebinding): new client port, same SA state.
  uint64_t seq_before = 0;
  Check(Downstream(a, lan, "down-2", &seq_before), "downstream before the move");
  Client moved = a;
  (void)InNetns(absl::GetFlag(FLAGS_cli_ns),
                [&] { moved.udp = UdpSocketAt(Ip4(absl::GetFlag(FLAGS_cli_addr)), 4501); });
  moved.spec.remote.set_port(4501);
  auto* old_sa = gw->table.Current()->Inbound(a.spec.inbound_spi)->sa.get();
  Check(PutChildSa(*gw->store, *gw->sealer, moved.spec).ok(), "record rewritten with port 4501");
  const absl::Time deadline = absl::Now() + absl::Seconds(2);
  while (absl::Now() < deadline &&
         gw->table.Current()->Inbound(a.spec.inbound_spi)->remote.port() != 4501) {
    absl::SleepFor(absl::Microseconds(200));
  }
  Check(gw->table.Current()->Inbound(a.spec.inbound_spi)->sa.get() == old_sa,
        "same SA object after the endpoint change (SPIs, sequence numbers, replay kept)");
  uint64_t seq_after = 0;
  const bool moved_down = Downstream(moved, lan, "down-3", &seq_after);
  Check(moved_down && seq_after == seq_before + 1,
        absl::StrCat("downstream reaches the new port; sequence continues (", seq_before, " -> ",
                     seq_after, ")"));
  Check(Upstream(moved, lan, "up-5"), "upstream from the new port");
  a.Send(good);
  absl::SleepFor(absl::Milliseconds(50));
  Check(gw->Drops(esp::DropReason::kReplay) == replays + 2, "replay window kept across the move");

  // 4. Make-before-break rekey (RFC 7296 §2.8): outbound stays on the old
  // SA until the client sends on the new one; the old one still decrypts
  // until deleted, then stops.
  Client b = MakeClient(*gw, "aes128-sha1", 0xc2000001, 2, true, 4502);
  Check(PutChildSa(*gw->store, *gw->sealer, b.spec).ok() && gw->WaitInstalled(b.spec.inbound_spi),
        "rekeyed SA installed");
  Check(Downstream(moved, lan, "down-4"),
        "outbound stays on the old SA while the new one has carried no inbound");
  Check(Upstream(moved, lan, "up-6"), "old SA still decrypts before its delete");
  Check(Upstream(b, lan, "up-7"), "new SA decrypts");
  Check(Downstream(b, lan, "down-5"), "outbound uses the new SA once the client sent on it");
  Check(gw->store->Delete(store::ChildSaKey(a.spec.inbound_spi)).ok() &&
            gw->WaitInstalled(a.spec.inbound_spi, false),
        "old SA removed from the data plane after its delete");
  const uint64_t unknown_before = gw->Drops(esp::DropReason::kUnknownSpi);
  moved.Send(moved.Protect(UdpPacket(moved.vip, kClientPort, Ip4(absl::GetFlag(FLAGS_lan_host)), kLanPort, 100, "up-8")));
  Check(Receive(lan, absl::Milliseconds(300)).empty(), "deleted SA stops at once");
  Check(gw->Drops(esp::DropReason::kUnknownSpi) == unknown_before + 1, "its packets count as unknown_spi");

  // 5. Raw ESP (IP protocol 50), which strongSwan 5.9.8 cannot send.
  if (gw->plane->raw_esp()) {
    Client raw = MakeClient(*gw, "aes256gcm16", 0xc3000001, 3, false, 0);
    Check(PutChildSa(*gw->store, *gw->sealer, raw.spec).ok() && gw->WaitInstalled(raw.spec.inbound_spi),
          "raw-ESP SA installed");
    Check(Upstream(raw, lan, "raw-up"), "client -> LAN over raw ESP");
    Check(Downstream(raw, lan, "raw-down"), "LAN -> client over raw ESP");
  } else {
    Check(false, "raw ESP socket available");
  }

  // 6. Every algorithm set, both directions.
  uint32_t vip = 10;
  for (const esp::Suite& suite : esp::AllSuites()) {
    Client c = MakeClient(*gw, suite.name, 0xc4000000 + vip, vip, true, static_cast<uint16_t>(4600 + vip));
    const bool ok = PutChildSa(*gw->store, *gw->sealer, c.spec).ok() && gw->WaitInstalled(c.spec.inbound_spi) &&
                    Upstream(c, lan, "s-up-" + suite.name) && Downstream(c, lan, "s-down-" + suite.name);
    Check(ok, "round trip with " + suite.name);
    ++vip;
  }

  // 7. TCP MSS clamping on a SYN from the client.
  {
    std::vector<uint8_t> syn(44, 0);
    const uint32_t src = b.vip, dst = Ip4(absl::GetFlag(FLAGS_lan_host));
    syn[0] = 0x45; syn[3] = 44; syn[6] = 0x40; syn[8] = 64; syn[9] = 6;
    std::memcpy(&syn[12], &src, 4);
    std::memcpy(&syn[16], &dst, 4);
    uint16_t c = ChecksumFold(ChecksumAdd(syn.data(), 20, 0));
    syn[10] = c >> 8; syn[11] = c & 0xff;
    syn[20] = 0x13; syn[21] = 0x88; syn[22] = 0x23; syn[23] = 0x28;
    syn[32] = 6 << 4; syn[33] = 0x02; syn[34] = 0xff; syn[35] = 0xff;
    syn[40] = 2; syn[41] = 4; syn[42] = 0x05; syn[43] = 0xb4;  // MSS 1460
    uint32_t sum = ChecksumAdd(&syn[12], 8, 0) + 6 + 24;
    c = ChecksumFold(ChecksumAdd(&syn[20], 24, sum));
    syn[36] = c >> 8; syn[37] = c & 0xff;
    b.Send(b.Protect(syn));
    // The LAN host answers the clamped SYN with a RST (port 9000 is UDP only):
    // it crossed the tunnel with a valid checksum.
    esp::DropReason reason = esp::DropReason::kNone;
    std::vector<uint8_t> reply = b.ReceiveInner(absl::Seconds(2), &reason);
    Check(reply.size() >= 40 && reply[9] == 6 && (reply[33] & 0x04) != 0,
          "clamped TCP SYN accepted by the LAN host (RST came back through the tunnel)");
  }

  // 8. Coalescing: a burst of one TCP flow and one of one UDP flow, each one
  // UDP GSO send of ESP (one GRO batch at the gateway), become one GSO write
  // to the TUN each; with a gso_max_size below two packets on the LAN link
  // the kernel segments them again, and the LAN host sees the original packets byte
  // for byte (but the TTL the forwarding lowers).
  {
    Client g = MakeClient(*gw, "aes128gcm16", 0xc5000001, 40, true, 4740);
    Check(PutChildSa(*gw->store, *gw->sealer, g.spec).ok() && gw->WaitInstalled(g.spec.inbound_spi),
          "SA for the coalescing bursts installed");
    const bool kernel_segments = std::system("ip link set dev lan1 gso_max_size 2000") == 0;
    int capture = -1;
    (void)InNetns(absl::GetFlag(FLAGS_lan_ns), [&] {
      capture = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(ETH_P_IP));
      sockaddr_ll where = {};
      where.sll_family = AF_PACKET;
      where.sll_protocol = htons(ETH_P_IP);
      where.sll_ifindex = static_cast<int>(if_nametoindex("lan0"));
      bind(capture, reinterpret_cast<sockaddr*>(&where), sizeof(where));
      const int on = 1;
      setsockopt(capture, SOL_PACKET, PACKET_AUXDATA, &on, sizeof(on));
    });
    const uint32_t lan_host = Ip4(absl::GetFlag(FLAGS_lan_host));
    constexpr int kBurst = 8;
    for (const bool tcp : {true, false}) {
      std::vector<std::vector<uint8_t>> inner, esp_packets;
      uint32_t seq = 1000;
      for (int i = 0; i < kBurst; ++i) {
        const size_t size = i + 1 < kBurst ? 1040 : 440;  // a shorter last
        inner.push_back(tcp ? TcpPacket(g.vip, 40000, lan_host, 40001, size, seq,
                                        static_cast<uint16_t>(500 + i), i + 1 == kBurst)
                            : UdpPacket(g.vip, 40000, lan_host, 40002, size,
                                        absl::StrCat("burst-", i), static_cast<uint16_t>(700 + i)));
        seq += static_cast<uint32_t>(size - 40);
        esp_packets.push_back(g.Protect(inner.back()));
      }
      const uint64_t coalesced = gw->plane->stats().coalesced_in;
      SendBurst(g.udp, esp_packets, Ip4(absl::GetFlag(FLAGS_gw_addr)), 4500);
      std::vector<std::vector<uint8_t>> seen = Capture(capture, g.vip, kBurst, absl::Seconds(2));
      bool same = seen.size() == inner.size();
      for (size_t i = 0; same && i < seen.size(); ++i) {
        std::vector<uint8_t> expected = inner[i];
        --expected[8];  // TTL
        SetIpId(expected, static_cast<uint16_t>((expected[4] << 8) | expected[5]));
        same = seen[i] == expected;
      }
      absl::SleepFor(absl::Milliseconds(50));
      const uint64_t merged = gw->plane->stats().coalesced_in - coalesced;
      Check(same && merged == kBurst,
            absl::StrCat(tcp ? "TCP" : "UDP", " burst written as one GSO packet (", merged, " of ",
                         kBurst, " coalesced), the LAN host got the same ", seen.size(),
                         " packets", kernel_segments ? " (segmented by the kernel)" : "",
                         seen.empty() ? "" : absl::StrCat(", first ", seen[0].size(), " bytes")));
    }
    close(capture);
    (void)std::system("ip link set dev lan1 gso_max_size 65536");

    // The other way: one UDP GSO send from the LAN host reaches the TUN as
    // one USO super-packet (if the kernel has USO), is segmented and
    // encrypted here; the client gets every datagram, checksums valid.
    std::vector<std::vector<uint8_t>> payloads;
    for (int i = 0; i < kBurst; ++i) {
      payloads.emplace_back(i + 1 < kBurst ? 1000 : 300, static_cast<uint8_t>('a' + i));
    }
    int lan_tx = -1;
    (void)InNetns(absl::GetFlag(FLAGS_lan_ns), [&] { lan_tx = UdpSocketAt(lan_host, 40003); });
    SendBurst(lan_tx, payloads, g.vip, 40004);
    int good = 0, seen = 0;
    const absl::Time until = absl::Now() + absl::Seconds(2);
    while (seen < kBurst && absl::Now() < until) {
      // Skip the LAN host's answers to the bursts above (RST, ICMP).
      const std::vector<uint8_t> inner = g.ReceiveInner(absl::Milliseconds(500));
      if (inner.size() < 28 || inner[9] != 17 || inner[20] != 40003 >> 8 ||
          inner[21] != (40003 & 0xff)) {
        continue;
      }
      const size_t udp = inner.size() - 20;
      const std::vector<uint8_t>& payload = payloads[seen++];
      if (inner.size() == 28 + payload.size() &&
          std::memcmp(&inner[28], payload.data(), payload.size()) == 0 &&
          ChecksumFold(ChecksumAdd(inner.data(), 20, 0)) == 0 &&
          ChecksumFold(ChecksumAdd(&inner[20], udp, ChecksumAdd(&inner[12], 8, 0) + 17 + udp)) == 0) {
        ++good;
      }
    }
    close(lan_tx);
    Check(good == kBurst, absl::StrCat("UDP GSO burst LAN -> client: ", good, " of ", kBurst,
                                       " datagrams intact, checksums valid (TUN USO: ",
                                       gw->plane->tun()->uso() ? "on" : "off", ")"));
  }

  std::printf("%d failed\n", failures);
  gw->plane->Stop();
  gw->sync->Stop();
  return failures == 0 ? 0 : 1;
}

// ---------------------------------------------------------------------------
// Bench.

uint64_t ProcessCpuNs() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + ts.tv_nsec;
}

struct Rate {
  double pps = 0, gbps = 0, cpu = 0;  // per forwarder core: pps / cores used
};

// Raw AEAD/cipher limit: Seal (encrypt) and Open (decrypt) on one buffer.
std::pair<Rate, Rate> CryptoLimit(const esp::Suite& suite, size_t inner) {
  auto keys = *esp::MakeTestKeys(suite.algorithms, 1);
  auto cipher = *esp::EspCipher::Create(suite.algorithms, keys.in_enc, keys.in_int);
  const size_t body = (inner + 2 + cipher->align() - 1) / cipher->align() * cipher->align();
  std::vector<uint8_t> buf(8 + cipher->iv_size() + body + cipher->icv_size(), 0x11);
  std::pair<Rate, Rate> out;
  for (int dir = 0; dir < 2; ++dir) {
    uint64_t n = 0;
    const absl::Time start = absl::Now();
    const absl::Duration d = absl::Seconds(absl::GetFlag(FLAGS_seconds) / 2);
    if (dir == 0) {
      while (absl::Now() - start < d) {
        for (int i = 0; i < 256; ++i) (void)cipher->Seal(buf.data(), body, 0);
        n += 256;
      }
    } else {
      (void)cipher->Seal(buf.data(), body, 0);
      std::vector<uint8_t> sealed = buf;
      while (absl::Now() - start < d) {
        for (int i = 0; i < 256; ++i) {
          std::memcpy(buf.data(), sealed.data(), sealed.size());
          (void)cipher->Open(buf.data(), body, 0);
        }
        n += 256;
      }
    }
    const double secs = absl::ToDoubleSeconds(absl::Now() - start);
    Rate& r = dir == 0 ? out.first : out.second;
    r.pps = n / secs;
    r.gbps = r.pps * inner * 8 / 1e9;
    r.cpu = 1;
  }
  return out;
}

int Bench() {
  auto gw = StartGateway();
  const uint32_t lan_host = Ip4(absl::GetFlag(FLAGS_lan_host));
  std::printf("| suite | inner bytes | direction | raw crypto limit (pps / Gbit/s, 1 core) | forwarder (pps / Gbit/s per core) | forwarder CPU (cores) | of limit |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  uint32_t spi = 0xb0000001;
  uint32_t vip_last = 100;
  const std::vector<std::string> suite_names = absl::StrSplit(absl::GetFlag(FLAGS_suites), ',');
  for (const std::string& suite_name : suite_names) {
    const esp::Suite suite = *esp::SuiteByName(suite_name);
    const std::vector<std::string> size_texts = absl::StrSplit(absl::GetFlag(FLAGS_sizes), ',');
    for (const std::string& size_text : size_texts) {
      size_t size = 0;
      if (!absl::SimpleAtoi(size_text, &size)) continue;
      const auto limit = CryptoLimit(suite, size);
      Client c = MakeClient(*gw, suite.name, spi++, vip_last, true, static_cast<uint16_t>(5000 + vip_last));
      ++vip_last;
      c.spec.replay_window = 4096;
      if (!PutChildSa(*gw->store, *gw->sealer, c.spec).ok() || !gw->WaitInstalled(c.spec.inbound_spi)) return 2;
      int lan = -1, lan_tx = -1;
      (void)InNetns(absl::GetFlag(FLAGS_lan_ns), [&] {
        lan = UdpSocketAt(lan_host, kLanPort);
        lan_tx = UdpSocketAt(lan_host, 0);
      });
      const int on = 1;
      setsockopt(lan, SOL_UDP, UDP_GRO, &on, sizeof(on));
      setsockopt(c.udp, SOL_UDP, UDP_GRO, &on, sizeof(on));

      for (int direction = 0; direction < 2; ++direction) {
        std::atomic<bool> stop{false};
        std::atomic<uint64_t> received{0};
        // Sink thread.
        const int sink_fd = direction == 0 ? lan : c.udp;
        std::thread sink([&] {
          std::vector<uint8_t> buffer(65536 * 8);
          mmsghdr msgs[8];
          iovec iov[8];
          char control[8][64];
          while (!stop.load()) {
            for (int i = 0; i < 8; ++i) {
              iov[i] = {buffer.data() + i * 65536, 65536};
              msgs[i].msg_hdr = {};
              msgs[i].msg_hdr.msg_iov = &iov[i];
              msgs[i].msg_hdr.msg_iovlen = 1;
              msgs[i].msg_hdr.msg_control = control[i];
              msgs[i].msg_hdr.msg_controllen = sizeof(control[i]);
            }
            pollfd p = {sink_fd, POLLIN, 0};
            if (poll(&p, 1, 50) <= 0) continue;
            const int n = recvmmsg(sink_fd, msgs, 8, MSG_DONTWAIT, nullptr);
            for (int i = 0; i < n; ++i) {
              size_t seg = msgs[i].msg_len;
              for (cmsghdr* cm = CMSG_FIRSTHDR(&msgs[i].msg_hdr); cm; cm = CMSG_NXTHDR(&msgs[i].msg_hdr, cm)) {
                if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO) {
                  int g;
                  std::memcpy(&g, CMSG_DATA(cm), sizeof(g));
                  seg = g;
                }
              }
              received += (msgs[i].msg_len + seg - 1) / seg;
            }
          }
        });
        // Source thread: GSO batches of 32 datagrams.
        std::thread source([&] {
          constexpr int kBatch = 32;
          std::vector<uint8_t> inner = UdpPacket(c.vip, kClientPort, lan_host, kLanPort, size, "x");
          uint16_t id = 0;  // counting up, as from a connected socket or a GSO send
          const size_t payload = size - 28;
          // Allocated once, so the generator keeps up with the forwarder.
          std::vector<uint8_t> frame(esp::kEspHeadroom + size + esp::kEspTailroom);
          std::vector<uint8_t> batch(kBatch * (frame.size() + 64), 0x62);
          while (!stop.load()) {
            size_t seg = 0, used = 0;
            if (direction == 0) {
              for (int i = 0; i < kBatch; ++i) {  // fresh ESP: new sequence numbers
                SetIpId(inner, id++);
                std::memcpy(frame.data() + esp::kEspHeadroom, inner.data(), inner.size());
                esp::Encapsulated e;
                if (esp::Encapsulate(*c.sa, frame.data() + esp::kEspHeadroom, inner.size(), &e) !=
                    esp::DropReason::kNone) {
                  break;
                }
                std::memcpy(batch.data() + used, e.esp, e.size);
                seg = e.size;
                used += e.size;
              }
            } else {
              seg = payload;
              used = payload * kBatch;
            }
            if (!SendGso(direction == 0 ? c.udp : lan_tx, batch.data(), used,
                         static_cast<uint16_t>(seg),
                         direction == 0 ? Ip4(absl::GetFlag(FLAGS_gw_addr)) : c.vip,
                         direction == 0 ? 4500 : kClientPort)) {
              absl::SleepFor(absl::Microseconds(20));
            }
          }
        });
        absl::SleepFor(absl::Milliseconds(200));  // warm up
        const DataplaneStats s0 = gw->plane->stats();
        const uint64_t cpu0 = ProcessCpuNs();
        const uint64_t r0 = received.load();
        const absl::Time t0 = absl::Now();
        const double worker_cpu0 = gw->plane->WorkerCpuSeconds();
        absl::SleepFor(absl::Seconds(absl::GetFlag(FLAGS_seconds)));
        const double secs = absl::ToDoubleSeconds(absl::Now() - t0);
        const DataplaneStats s1 = gw->plane->stats();
        const uint64_t r1 = received.load();
        const uint64_t cpu1 = ProcessCpuNs();
        stop = true;
        source.join();
        sink.join();
        const double forwarded = direction == 0 ? double(s1.packets_in - s0.packets_in)
                                                : double(s1.packets_out - s0.packets_out);
        const double delivered = double(r1 - r0);
        const double cores = (gw->plane->WorkerCpuSeconds() - worker_cpu0) / secs;
        Rate fwd;
        fwd.cpu = cores;
        fwd.pps = cores > 0 ? forwarded / secs / std::max(cores, 1e-9) : 0;
        fwd.gbps = fwd.pps * size * 8 / 1e9;
        const Rate& lim = direction == 0 ? limit.second : limit.first;
        std::printf("| %s | %zu | %s | %.0f / %.2f | %.0f / %.2f | %.2f | %.0f%% |\n", suite.name.c_str(), size,
                    direction == 0 ? "decrypt (client->LAN)" : "encrypt (LAN->client)", lim.pps, lim.gbps,
                    fwd.pps, fwd.gbps, cores, 100.0 * fwd.pps / lim.pps);
        std::fprintf(stderr, "  forwarded %.0f pps total, delivered %.0f pps, process CPU %.2f cores, "
                     "coalesced %.0f%%, drops: %s\n",
                     forwarded / secs, delivered / secs, double(cpu1 - cpu0) / 1e9 / secs,
                     direction == 0 && forwarded > 0
                         ? 100.0 * double(s1.coalesced_in - s0.coalesced_in) / forwarded
                         : 0.0,
                     [&] {
                       std::string d;
                       for (size_t i = 1; i < s1.drops.counts.size(); ++i) {
                         const uint64_t n = s1.drops.counts[i] - s0.drops.counts[i];
                         if (n) absl::StrAppend(&d, esp::kDropReasonNames[i], "=", n, " ");
                       }
                       return d;
                     }().c_str());
        std::fflush(stdout);
      }
      close(lan);
      close(lan_tx);
      close(c.udp);
      (void)gw->store->Delete(store::ChildSaKey(c.spec.inbound_spi));
    }
  }
  gw->plane->Stop();
  gw->sync->Stop();
  return 0;
}

}  // namespace
}  // namespace vpn::forwarder::bench

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string mode = absl::GetFlag(FLAGS_mode);
  if (mode == "selftest") return vpn::forwarder::bench::SelfTest();
  if (mode == "bench") return vpn::forwarder::bench::Bench();
  std::fprintf(stderr, "unknown --mode %s\n", mode.c_str());
  return 2;
}
