#include "esp-forwarder/io/tun_device.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <net/route.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace vpn::forwarder {
namespace {

// Not in older headers: UDP segmentation offload (Linux 6.2).
constexpr unsigned kTunUso4 = 0x20;
constexpr unsigned kTunUso6 = 0x40;

struct In6Ifreq {
  in6_addr addr;
  uint32_t prefixlen;
  int ifindex;
};

absl::Status Errno(const std::string& what) {
  return absl::UnavailableError(absl::StrCat(what, ": ", strerror(errno)));
}

}  // namespace

absl::Status ParseCidr(const std::string& cidr, std::string* address, int* prefix) {
  std::vector<std::string> parts = absl::StrSplit(cidr, '/');
  const bool v6 = cidr.find(':') != std::string::npos;
  uint8_t bytes[16];
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[1], prefix) || *prefix < 0 ||
      *prefix > (v6 ? 128 : 32) ||
      inet_pton(v6 ? AF_INET6 : AF_INET, parts[0].c_str(), bytes) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", cidr, "' is not an address/prefix, e.g. 10.10.0.0/24"));
  }
  address->assign(reinterpret_cast<char*>(bytes), v6 ? 16 : 4);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<TunDevice>> TunDevice::Open(const TunOptions& options) {
  if (options.name.empty() || options.name.size() >= IFNAMSIZ) {
    return absl::InvalidArgumentError("TUN device name must be 1-15 characters");
  }
  std::unique_ptr<TunDevice> tun(new TunDevice());
  tun->name_ = options.name;
  tun->mtu_ = options.mtu;
  for (int q = 0; q < std::max(1, options.queues); ++q) {
    const int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return Errno("open /dev/net/tun");
    tun->fds_.push_back(fd);
    ifreq ifr = {};
    std::strncpy(ifr.ifr_name, options.name.c_str(), IFNAMSIZ - 1);
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI | IFF_MULTI_QUEUE;
    if (options.offload) ifr.ifr_flags |= IFF_VNET_HDR;
    if (ioctl(fd, TUNSETIFF, &ifr) != 0) {
      return Errno(absl::StrCat("TUNSETIFF ", options.name));
    }
    if (options.offload) {
      // USO if the kernel has it (the first queue tells), else TCP only.
      const unsigned offloads = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;
      tun->uso_ = options.uso && (q == 0 || tun->uso_) &&
                  ioctl(fd, TUNSETOFFLOAD, offloads | kTunUso4 | kTunUso6) == 0;
      if (!tun->uso_ && ioctl(fd, TUNSETOFFLOAD, offloads) != 0) {
        return Errno("TUNSETOFFLOAD");
      }
      tun->vnet_hdr_ = true;
    }
  }

  const int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) return Errno("socket");
  auto close_sock = [sock] { close(sock); };
  ifreq ifr = {};
  std::strncpy(ifr.ifr_name, options.name.c_str(), IFNAMSIZ - 1);
  ifr.ifr_mtu = options.mtu;
  if (ioctl(sock, SIOCSIFMTU, &ifr) != 0) {
    close_sock();
    return Errno("SIOCSIFMTU");
  }
  if (!options.address.empty()) {
    std::string address;
    int prefix = 0;
    if (absl::Status s = ParseCidr(options.address, &address, &prefix); !s.ok()) {
      close_sock();
      return s;
    }
    sockaddr_in* sin = reinterpret_cast<sockaddr_in*>(&ifr.ifr_addr);
    std::memset(&ifr.ifr_addr, 0, sizeof(ifr.ifr_addr));
    sin->sin_family = AF_INET;
    std::memcpy(&sin->sin_addr, address.data(), 4);
    if (ioctl(sock, SIOCSIFADDR, &ifr) != 0) {
      close_sock();
      return Errno("SIOCSIFADDR");
    }
    sin->sin_addr.s_addr = prefix == 0 ? 0 : htonl(~((1u << (32 - prefix)) - 1) & 0xffffffffu);
    if (prefix == 32) sin->sin_addr.s_addr = 0xffffffffu;
    if (ioctl(sock, SIOCSIFNETMASK, &ifr) != 0) {
      close_sock();
      return Errno("SIOCSIFNETMASK");
    }
  }
  if (ioctl(sock, SIOCGIFFLAGS, &ifr) != 0) {
    close_sock();
    return Errno("SIOCGIFFLAGS");
  }
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (ioctl(sock, SIOCSIFFLAGS, &ifr) != 0) {
    close_sock();
    return Errno("SIOCSIFFLAGS");
  }
  if (ioctl(sock, SIOCGIFINDEX, &ifr) != 0) {
    close_sock();
    return Errno("SIOCGIFINDEX");
  }
  const int ifindex = ifr.ifr_ifindex;
  close_sock();

  const int sock6 = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (!options.address6.empty()) {
    std::string address;
    int prefix = 0;
    if (absl::Status s = ParseCidr(options.address6, &address, &prefix); !s.ok()) {
      if (sock6 >= 0) close(sock6);
      return s;
    }
    In6Ifreq req = {};
    std::memcpy(&req.addr, address.data(), 16);
    req.prefixlen = prefix;
    req.ifindex = ifindex;
    if (sock6 < 0 || ioctl(sock6, SIOCSIFADDR, &req) != 0) {
      if (sock6 >= 0) close(sock6);
      return Errno("SIOCSIFADDR (IPv6)");
    }
  }
  for (const std::string& route : options.routes) {
    std::string address;
    int prefix = 0;
    if (absl::Status s = ParseCidr(route, &address, &prefix); !s.ok()) {
      if (sock6 >= 0) close(sock6);
      return s;
    }
    if (address.size() == 4) {
      const int s4 = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      rtentry rt = {};
      auto* dst = reinterpret_cast<sockaddr_in*>(&rt.rt_dst);
      dst->sin_family = AF_INET;
      std::memcpy(&dst->sin_addr, address.data(), 4);
      auto* mask = reinterpret_cast<sockaddr_in*>(&rt.rt_genmask);
      mask->sin_family = AF_INET;
      mask->sin_addr.s_addr =
          prefix == 0 ? 0 : htonl(static_cast<uint32_t>(~0ull << (32 - prefix)));
      rt.rt_flags = RTF_UP;
      std::string dev = options.name;
      rt.rt_dev = dev.data();
      const int rc = ioctl(s4, SIOCADDRT, &rt);
      const int error = errno;
      close(s4);
      if (rc != 0 && error != EEXIST) {
        errno = error;
        if (sock6 >= 0) close(sock6);
        return Errno(absl::StrCat("route ", route));
      }
    } else {
      in6_rtmsg rt = {};
      std::memcpy(&rt.rtmsg_dst, address.data(), 16);
      rt.rtmsg_dst_len = prefix;
      rt.rtmsg_flags = RTF_UP;
      rt.rtmsg_metric = 1;
      rt.rtmsg_ifindex = ifindex;
      if (sock6 < 0 || (ioctl(sock6, SIOCADDRT, &rt) != 0 && errno != EEXIST)) {
        if (sock6 >= 0) close(sock6);
        return Errno(absl::StrCat("route ", route));
      }
    }
  }
  if (sock6 >= 0) close(sock6);
  return tun;
}

TunDevice::~TunDevice() {
  for (int fd : fds_) close(fd);
}

}  // namespace vpn::forwarder
