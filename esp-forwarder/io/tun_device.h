// A Linux TUN device (IFF_TUN | IFF_NO_PI, one queue per worker with
// IFF_MULTI_QUEUE), optionally with a virtio-net header and segmentation
// offloads (IFF_VNET_HDR + TUNSETOFFLOAD: the kernel hands over TCP and,
// with USO, UDP super-packets of up to 64 KiB and takes such super-packets
// and packets with partial checksums).
// Open() also sets the MTU, the address and the routes, and brings it up.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace vpn::forwarder {

struct TunOptions {
  std::string name;                 // e.g. "vpn0"
  int queues = 1;
  int mtu = 1400;
  std::string address;              // "10.10.0.1/24"; empty: none
  std::string address6;             // "fd00::1/64"; empty: none
  std::vector<std::string> routes;  // CIDRs routed into the device
  bool offload = true;              // IFF_VNET_HDR + TSO/USO/CSUM offloads
  bool uso = true;                  // with offload: also UDP (if the kernel has it)
};

class TunDevice {
 public:
  static absl::StatusOr<std::unique_ptr<TunDevice>> Open(const TunOptions& options);
  ~TunDevice();

  const std::string& name() const { return name_; }
  int queues() const { return static_cast<int>(fds_.size()); }
  int fd(int queue) const { return fds_[queue]; }
  int mtu() const { return mtu_; }
  // Every read and write starts with a struct virtio_net_hdr.
  bool vnet_hdr() const { return vnet_hdr_; }
  // The kernel took TUN_F_USO4/6: UDP super-packets in both directions.
  bool uso() const { return uso_; }

 private:
  TunDevice() = default;
  std::string name_;
  std::vector<int> fds_;
  int mtu_ = 0;
  bool vnet_hdr_ = false;
  bool uso_ = false;
};

// "10.0.0.0/24" -> address bytes (4 or 16) and prefix length.
absl::Status ParseCidr(const std::string& cidr, std::string* address, int* prefix);

}  // namespace vpn::forwarder
