// A UDP socket that learns the local address of each datagram it receives
// (IP_PKTINFO) and can choose the source address of each one it sends, so a
// multi-homed gateway answers from the address the client used.
#pragma once

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/net/ip_endpoint.h"

namespace vpn::forwarder {

class UdpSocket {
 public:
  // Binds `local` (port 0 picks one). The socket is non-blocking. With
  // `reuse_port`, more sockets may bind the same address (SO_REUSEPORT), so
  // each data-plane worker has its own.
  static absl::StatusOr<std::unique_ptr<UdpSocket>> Bind(const net::IpEndpoint& local,
                                                         bool reuse_port = false);
  ~UdpSocket();

  int fd() const { return fd_; }
  const net::IpEndpoint& bound() const { return bound_; }

  struct Received {
    size_t size = 0;
    net::IpEndpoint local;   // destination address of the datagram
    net::IpEndpoint remote;  // its source
  };
  // kUnavailable when nothing is waiting. A datagram larger than `buffer`
  // is reported as kOutOfRange and dropped.
  absl::StatusOr<Received> Receive(absl::Span<uint8_t> buffer);

  // Sends from `local`'s address (unless unspecified) to `remote`.
  absl::Status Send(absl::Span<const uint8_t> data, const net::IpEndpoint& local,
                    const net::IpEndpoint& remote);

 private:
  UdpSocket(int fd, net::IpEndpoint bound) : fd_(fd), bound_(bound) {}

  const int fd_;
  const net::IpEndpoint bound_;
};

// Fills a pktinfo control message choosing `local` as the source of a
// datagram to an IPv6 (`v6`) or IPv4 destination; returns its space (0:
// none, `local` unspecified or of the other family). `control` holds
// CMSG_SPACE(sizeof(in6_pktinfo)) bytes, cmsghdr-aligned.
size_t PutSourceAddress(const net::IpEndpoint& local, bool v6, char* control);

}  // namespace vpn::forwarder
