#include "common/net/ip_endpoint.h"

#include <arpa/inet.h>

#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace vpn::net {

absl::StatusOr<IpEndpoint> IpEndpoint::Parse(absl::string_view text) {
  std::string host(text);
  uint32_t port = 0;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("'", text, "': missing ]"));
    }
    host = std::string(text.substr(1, close - 1));
    absl::string_view rest = text.substr(close + 1);
    if (!rest.empty() && (rest.front() != ':' ||
                          !absl::SimpleAtoi(rest.substr(1), &port) || port > 65535)) {
      return absl::InvalidArgumentError(absl::StrCat("'", text, "': bad port"));
    }
  } else if (std::count(text.begin(), text.end(), ':') == 1) {
    const size_t colon = text.find(':');
    host = std::string(text.substr(0, colon));
    if (!absl::SimpleAtoi(text.substr(colon + 1), &port) || port > 65535) {
      return absl::InvalidArgumentError(absl::StrCat("'", text, "': bad port"));
    }
  }
  IpEndpoint endpoint;
  endpoint.port_ = static_cast<uint16_t>(port);
  if (inet_pton(AF_INET, host.c_str(), endpoint.address_.data()) == 1) {
    return endpoint;
  }
  if (inet_pton(AF_INET6, host.c_str(), endpoint.address_.data()) == 1) {
    endpoint.v6_ = true;
    return endpoint;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("'", text, "' is not an IPv4 or IPv6 address"));
}

absl::StatusOr<IpEndpoint> IpEndpoint::FromSockaddr(const sockaddr* address,
                                                    socklen_t length) {
  IpEndpoint endpoint;
  if (address->sa_family == AF_INET && length >= sizeof(sockaddr_in)) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(address);
    std::memcpy(endpoint.address_.data(), &v4->sin_addr, 4);
    endpoint.port_ = ntohs(v4->sin_port);
    return endpoint;
  }
  if (address->sa_family == AF_INET6 && length >= sizeof(sockaddr_in6)) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(address);
    std::memcpy(endpoint.address_.data(), &v6->sin6_addr, 16);
    endpoint.port_ = ntohs(v6->sin6_port);
    endpoint.v6_ = true;
    return endpoint;
  }
  return absl::InvalidArgumentError("not an IPv4 or IPv6 socket address");
}

absl::StatusOr<IpEndpoint> IpEndpoint::FromBytes(absl::Span<const uint8_t> ip,
                                                 uint16_t port) {
  if (ip.size() != 4 && ip.size() != 16) {
    return absl::InvalidArgumentError(
        absl::StrCat("an IP address has 4 or 16 bytes, not ", ip.size()));
  }
  IpEndpoint endpoint;
  std::memcpy(endpoint.address_.data(), ip.data(), ip.size());
  endpoint.v6_ = ip.size() == 16;
  endpoint.port_ = port;
  return endpoint;
}

absl::StatusOr<IpEndpoint> IpEndpoint::FromProto(const v1::Endpoint& endpoint) {
  if (endpoint.port() > 65535) {
    return absl::InvalidArgumentError("endpoint port above 65535");
  }
  const std::string& ip = endpoint.ip();
  return FromBytes(absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(ip.data()),
                                       ip.size()),
                   static_cast<uint16_t>(endpoint.port()));
}

bool IpEndpoint::is_unspecified() const {
  for (uint8_t byte : address_bytes()) {
    if (byte != 0) return false;
  }
  return true;
}

socklen_t IpEndpoint::ToSockaddr(sockaddr_storage* out) const {
  std::memset(out, 0, sizeof(*out));
  if (v6_) {
    auto* v6 = reinterpret_cast<sockaddr_in6*>(out);
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port_);
    std::memcpy(&v6->sin6_addr, address_.data(), 16);
    return sizeof(sockaddr_in6);
  }
  auto* v4 = reinterpret_cast<sockaddr_in*>(out);
  v4->sin_family = AF_INET;
  v4->sin_port = htons(port_);
  std::memcpy(&v4->sin_addr, address_.data(), 4);
  return sizeof(sockaddr_in);
}

v1::Endpoint IpEndpoint::ToProto() const {
  v1::Endpoint endpoint;
  endpoint.set_ip(reinterpret_cast<const char*>(address_.data()), v6_ ? 16 : 4);
  endpoint.set_port(port_);
  return endpoint;
}

std::string IpEndpoint::AddressString() const {
  char text[INET6_ADDRSTRLEN] = {};
  inet_ntop(v6_ ? AF_INET6 : AF_INET, address_.data(), text, sizeof(text));
  return text;
}

std::string IpEndpoint::ToString() const {
  return v6_ ? absl::StrCat("[", AddressString(), "]:", port_)
             : absl::StrCat(AddressString(), ":", port_);
}

}  // namespace vpn::net
