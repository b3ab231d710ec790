// An IPv4 or IPv6 address with a UDP port, convertible to and from sockaddr
// and the vpn.v1.Endpoint proto.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "proto/vpn/v1/sa.pb.h"

namespace vpn::net {

class IpEndpoint {
 public:
  IpEndpoint() = default;

  // "192.0.2.1:500", "[2001:db8::1]:4500"; port may be omitted (0).
  static absl::StatusOr<IpEndpoint> Parse(absl::string_view text);
  static absl::StatusOr<IpEndpoint> FromSockaddr(const sockaddr* address,
                                                 socklen_t length);
  // ip must be 4 or 16 bytes.
  static absl::StatusOr<IpEndpoint> FromBytes(absl::Span<const uint8_t> ip,
                                              uint16_t port);
  static absl::StatusOr<IpEndpoint> FromProto(const v1::Endpoint& endpoint);

  bool is_v6() const { return v6_; }
  uint16_t port() const { return port_; }
  void set_port(uint16_t port) { port_ = port; }
  bool is_unspecified() const;
  // 4 or 16 bytes in network order.
  absl::Span<const uint8_t> address_bytes() const {
    return absl::MakeConstSpan(address_.data(), v6_ ? 16 : 4);
  }

  socklen_t ToSockaddr(sockaddr_storage* out) const;
  v1::Endpoint ToProto() const;
  std::string ToString() const;        // with port
  std::string AddressString() const;   // without port

  friend bool operator==(const IpEndpoint& a, const IpEndpoint& b) {
    return a.v6_ == b.v6_ && a.port_ == b.port_ && a.address_ == b.address_;
  }
  friend bool operator!=(const IpEndpoint& a, const IpEndpoint& b) {
    return !(a == b);
  }
  template <typename H>
  friend H AbslHashValue(H h, const IpEndpoint& e) {
    return H::combine(std::move(h), e.v6_, e.port_, e.address_);
  }

 private:
  std::array<uint8_t, 16> address_{};
  bool v6_ = false;
  uint16_t port_ = 0;
};

}  // namespace vpn::net
