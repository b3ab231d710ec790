// Many IKEv2 initiators (initiator.h) in one process: one non-blocking UDP
// socket per initiator (the kernel demultiplexes; a second one to port 4500
// after a NAT-T float), epoll, retransmits with exponential back-off, and
// the statistics of the run.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/net/ip_endpoint.h"
#include "tools/ike_loadgen/initiator.h"

namespace vpn::loadgen {

struct LoadOptions {
  net::IpEndpoint remote;  // the responder, port 500
  uint16_t natt_port = 4500;
  std::string bind_address;  // local address; empty: the kernel's choice
  int parallel = 32;         // initiators in flight
  int threads = 1;           // event loops; initiators are split among them
  int64_t handshakes = 100;  // attempts; 0: run for `duration`
  std::chrono::milliseconds duration{10000};
  std::chrono::milliseconds timeout{1000};  // first retransmit; doubles each time
  int retransmits = 4;                      // then the attempt fails as a timeout
  bool keep = false;                        // do not delete the IKE SAs
};

struct LoadReport {
  int64_t attempted = 0;
  int64_t established = 0;  // final IKE_AUTH response checked
  int64_t deleted = 0;      // and the delete answered (unless keep)
  int64_t failed = 0;
  std::map<std::string, int64_t> failures;  // by reason
  std::vector<double> latency_ms;           // per established handshake, sorted
  double elapsed_s = 0;
  double loadgen_cpu_s = 0;  // this process, user + system
  int64_t retransmits = 0;
  int64_t ke_retries = 0;
  int64_t cookie_retries = 0;
  int64_t udp_encapsulated = 0;                            // handshakes that moved to port 4500
  std::string ike_transforms, esp_transforms, virtual_ip;  // of one success

  double handshakes_per_second() const { return elapsed_s > 0 ? established / elapsed_s : 0; }
  double LatencyPercentile(double p) const;  // ms, 0 when empty
  void Merge(LoadReport other);
};

LoadReport RunLoad(const LoadOptions& options, const InitiatorConfig& config);

std::string ReportText(const LoadReport& report);
std::string ReportJson(const LoadReport& report);

}  // namespace vpn::loadgen
