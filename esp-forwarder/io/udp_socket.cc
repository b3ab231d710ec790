#include "esp-forwarder/io/udp_socket.h"

#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_cat.h"

namespace vpn::forwarder {

absl::StatusOr<std::unique_ptr<UdpSocket>> UdpSocket::Bind(
    const net::IpEndpoint& local, bool reuse_port) {
  const int family = local.is_v6() ? AF_INET6 : AF_INET;
  const int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", strerror(errno)));
  const int on = 1;
  if (reuse_port) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on));
  if (local.is_v6()) {
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
    setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &on, sizeof(on));
  } else {
    setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &on, sizeof(on));
  }
  sockaddr_storage address;
  const socklen_t length = local.ToSockaddr(&address);
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), length) != 0) {
    const int error = errno;
    close(fd);
    return absl::UnavailableError(
        absl::StrCat("cannot bind UDP ", local.ToString(), ": ", strerror(error)));
  }
  sockaddr_storage bound_address;
  socklen_t bound_length = sizeof(bound_address);
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound_address), &bound_length);
  absl::StatusOr<net::IpEndpoint> bound = net::IpEndpoint::FromSockaddr(
      reinterpret_cast<sockaddr*>(&bound_address), bound_length);
  if (!bound.ok()) {
    close(fd);
    return bound.status();
  }
  return std::unique_ptr<UdpSocket>(new UdpSocket(fd, *bound));
}

UdpSocket::~UdpSocket() { close(fd_); }

absl::StatusOr<UdpSocket::Received> UdpSocket::Receive(absl::Span<uint8_t> buffer) {
  sockaddr_storage source;
  iovec iov{buffer.data(), buffer.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(in6_pktinfo))];
  msghdr message = {};
  message.msg_name = &source;
  message.msg_namelen = sizeof(source);
  message.msg_iov = &iov;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof(control);
  const ssize_t n = recvmsg(fd_, &message, 0);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
      return absl::UnavailableError("no datagram");
    }
    return absl::InternalError(absl::StrCat("recvmsg: ", strerror(errno)));
  }
  if (message.msg_flags & MSG_TRUNC) {
    return absl::OutOfRangeError("datagram larger than the receive buffer");
  }
  Received received;
  received.size = static_cast<size_t>(n);
  absl::StatusOr<net::IpEndpoint> remote = net::IpEndpoint::FromSockaddr(
      reinterpret_cast<sockaddr*>(&source), message.msg_namelen);
  if (!remote.ok()) return remote.status();
  received.remote = *remote;
  received.local = bound_;
  for (cmsghdr* c = CMSG_FIRSTHDR(&message); c != nullptr;
       c = CMSG_NXTHDR(&message, c)) {
    if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
      in_pktinfo info;
      std::memcpy(&info, CMSG_DATA(c), sizeof(info));
      auto local = net::IpEndpoint::FromBytes(
          absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(&info.ipi_addr), 4),
          bound_.port());
      if (local.ok()) received.local = *local;
    } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
      in6_pktinfo info;
      std::memcpy(&info, CMSG_DATA(c), sizeof(info));
      auto local = net::IpEndpoint::FromBytes(
          absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(&info.ipi6_addr), 16),
          bound_.port());
      if (local.ok()) received.local = *local;
    }
  }
  return received;
}

absl::Status UdpSocket::Send(absl::Span<const uint8_t> data,
                             const net::IpEndpoint& local,
                             const net::IpEndpoint& remote) {
  if (remote.is_v6() != bound_.is_v6()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot send to ", remote.ToString(), " from ", bound_.ToString()));
  }
  sockaddr_storage destination;
  const socklen_t destination_length = remote.ToSockaddr(&destination);
  iovec iov{const_cast<uint8_t*>(data.data()), data.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(in6_pktinfo))] = {};
  msghdr message = {};
  message.msg_name = &destination;
  message.msg_namelen = destination_length;
  message.msg_iov = &iov;
  message.msg_iovlen = 1;
  message.msg_controllen = PutSourceAddress(local, remote.is_v6(), control);
  if (message.msg_controllen > 0) message.msg_control = control;
  if (sendmsg(fd_, &message, 0) != static_cast<ssize_t>(data.size())) {
    return absl::UnavailableError(
        absl::StrCat("sendmsg to ", remote.ToString(), ": ", strerror(errno)));
  }
  return absl::OkStatus();
}

size_t PutSourceAddress(const net::IpEndpoint& local, bool v6, char* control) {
  if (local.is_unspecified() || local.is_v6() != v6) return 0;
  cmsghdr* c = reinterpret_cast<cmsghdr*>(control);
  if (v6) {
    in6_pktinfo info = {};
    std::memcpy(&info.ipi6_addr, local.address_bytes().data(), 16);
    c->cmsg_level = IPPROTO_IPV6;
    c->cmsg_type = IPV6_PKTINFO;
    c->cmsg_len = CMSG_LEN(sizeof(info));
    std::memcpy(CMSG_DATA(c), &info, sizeof(info));
    return CMSG_SPACE(sizeof(info));
  }
  in_pktinfo info = {};
  std::memcpy(&info.ipi_spec_dst, local.address_bytes().data(), 4);
  c->cmsg_level = IPPROTO_IP;
  c->cmsg_type = IP_PKTINFO;
  c->cmsg_len = CMSG_LEN(sizeof(info));
  std::memcpy(CMSG_DATA(c), &info, sizeof(info));
  return CMSG_SPACE(sizeof(info));
}

}  // namespace vpn::forwarder
