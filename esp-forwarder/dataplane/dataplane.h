// The ESP data plane: one worker thread per core. Worker i owns
//  - a UDP socket on the NAT-T address (SO_REUSEPORT group; a classic BPF
//    program steers each datagram to worker SPI % N, and IKE (SPI 0) and
//    keepalives to worker 0, so an SA's inbound path stays on one core),
//  - raw ESP sockets (IP protocol 50, IPv4 and IPv6) filtered to SPI % N,
//  - queue i of the multi-queue TUN device.
// Inbound: recvmmsg (+ UDP GRO) -> SPI lookup -> decap -> MSS clamp -> TUN
// (runs of one flow coalesced into virtio-net GSO writes: InnerCoalescer).
// Outbound: TUN read (+ virtio-net TSO/USO super-packets, segmented here) ->
// lookup by inner destination -> PMTU check -> MSS clamp -> encap ->
// sendmmsg (+ UDP GSO for runs of equal-size packets to one client).
// Buffers are allocated once per worker; nothing is allocated per packet.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/net/ip_endpoint.h"
#include "esp-forwarder/esp/drop_reason.h"
#include "esp-forwarder/io/tun_device.h"
#include "esp-forwarder/io/udp_socket.h"
#include "esp-forwarder/sa_table/sa_table.h"
#include "prometheus/counter.h"
#include "prometheus/registry.h"

namespace vpn::forwarder {

// Told of every inbound ESP packet that passed its integrity and replay
// checks, on the worker thread that decrypted it: must not block or
// allocate (esp-forwarder/path_reports/ hands what it needs to its own thread).
class InboundObserver {
 public:
  virtual ~InboundObserver() = default;
  // `source`: the packet's outer source for ESP in UDP, nullptr for raw
  // ESP. `highest`: its sequence number is the SA's new highest. `now_ns`:
  // CLOCK_MONOTONIC of the worker's current batch.
  virtual void OnAuthenticated(const SaEntry& entry, const net::IpEndpoint* source,
                               bool highest, int64_t now_ns) = 0;
};

struct DataplaneOptions {
  std::string natt_listen = "0.0.0.0:4500";
  int workers = 0;              // 0: one per core
  TunOptions tun;               // tun.name empty: no TUN (ESP is dropped as no_tun)
  bool raw_esp = true;          // receive and send IP protocol 50
  bool udp_gro = true;          // UDP_GRO on receive
  bool udp_gso = true;          // UDP_SEGMENT on send
  bool coalesce = true;         // GSO writes of decrypted runs (vnet-header TUN)
  uint32_t path_mtu = 1500;     // outer MTU towards clients (PMTU check)
  InboundObserver* observer = nullptr;  // must outlive the data plane; may be null
};

struct DataplaneStats {
  uint64_t packets_in = 0, bytes_in = 0, packets_out = 0, bytes_out = 0;
  uint64_t coalesced_in = 0;  // of packets_in: written in GSO super-packets
  esp::DropCounts drops;
};

class Dataplane {
 public:
  // Receives IKE that arrived on the NAT-T port (non-ESP marker removed).
  using IkeHandler = std::function<void(absl::Span<const uint8_t> ike,
                                        const net::IpEndpoint& local,
                                        const net::IpEndpoint& remote)>;

  static absl::StatusOr<std::unique_ptr<Dataplane>> Create(const DataplaneOptions& options,
                                                           SaTable* table,
                                                           prometheus::Registry& registry,
                                                           IkeHandler ike_handler);
  ~Dataplane();

  void Start();
  void Stop();

  // Worker 0's NAT-T socket: IKE responses leave through it.
  UdpSocket& natt_socket() { return *natt_sockets_.front(); }
  const TunDevice* tun() const { return tun_.get(); }
  int workers() const { return static_cast<int>(natt_sockets_.size()); }
  bool raw_esp() const { return !raw4_.empty() || !raw6_.empty(); }
  // Totals over every worker since start (flushed once per batch).
  DataplaneStats stats() const;
  // CPU seconds the worker threads have used (benchmarks: cores = delta / wall).
  double WorkerCpuSeconds() const;

 private:
  class Worker;
  Dataplane(const DataplaneOptions& options, SaTable* table, prometheus::Registry& registry,
            IkeHandler ike_handler);

  const DataplaneOptions options_;
  SaTable* const table_;
  const IkeHandler ike_handler_;
  std::vector<std::unique_ptr<UdpSocket>> natt_sockets_;
  std::vector<int> raw4_, raw6_;  // per worker, -1 if none
  std::unique_ptr<TunDevice> tun_;
  std::string pmtu_source4_, pmtu_source6_;  // ICMP sources (TUN addresses)
  bool gro_ = false;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::thread> threads_;
  int stop_fd_ = -1;

  prometheus::Family<prometheus::Counter>& drops_family_;
  std::vector<prometheus::Counter*> drop_counters_;
  prometheus::Family<prometheus::Counter>& packets_family_;
  prometheus::Family<prometheus::Counter>& bytes_family_;
  prometheus::Counter& packets_in_;
  prometheus::Counter& packets_out_;
  prometheus::Counter& bytes_in_;
  prometheus::Counter& bytes_out_;
  prometheus::Counter& keepalives_;
  prometheus::Counter& pmtu_sent_;
  prometheus::Counter& mss_clamped_;
  prometheus::Counter& coalesced_in_;
};

}  // namespace vpn::forwarder
