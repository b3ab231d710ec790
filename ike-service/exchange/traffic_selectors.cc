#include "ike-service/exchange/traffic_selectors.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/net/ip_endpoint.h"

namespace vpn::ike {

absl::StatusOr<codec::TrafficSelector> SelectorFromCidr(absl::string_view cidr) {
  const size_t slash = cidr.find('/');
  absl::StatusOr<net::IpEndpoint> address =
      net::IpEndpoint::Parse(cidr.substr(0, slash));
  if (!address.ok()) return address.status();
  const int bits = address->is_v6() ? 128 : 32;
  int prefix = bits;
  if (slash != absl::string_view::npos &&
      (!absl::SimpleAtoi(cidr.substr(slash + 1), &prefix) || prefix < 0 ||
       prefix > bits)) {
    return absl::InvalidArgumentError(absl::StrCat("'", cidr, "': bad prefix length"));
  }
  codec::TrafficSelector selector;
  selector.type =
      address->is_v6() ? codec::TsType::kIpv6AddrRange : codec::TsType::kIpv4AddrRange;
  selector.starting_address.assign(address->address_bytes().begin(),
                                   address->address_bytes().end());
  selector.ending_address = selector.starting_address;
  for (int bit = prefix; bit < bits; ++bit) {
    const uint8_t mask = static_cast<uint8_t>(0x80 >> (bit % 8));
    if (selector.starting_address[bit / 8] & mask) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", cidr, "': host bits are set"));
    }
    selector.ending_address[bit / 8] |= mask;
  }
  return selector;
}

codec::TrafficSelector HostSelector(absl::string_view address) {
  codec::TrafficSelector selector;
  selector.type = address.size() == 16 ? codec::TsType::kIpv6AddrRange
                                       : codec::TsType::kIpv4AddrRange;
  selector.starting_address.assign(address.begin(), address.end());
  selector.ending_address = selector.starting_address;
  return selector;
}

bool Intersect(const codec::TrafficSelector& a, const codec::TrafficSelector& b,
               codec::TrafficSelector* out) {
  if (a.type != b.type || a.starting_address.size() != b.starting_address.size()) {
    return false;
  }
  if (a.ip_protocol_id != 0 && b.ip_protocol_id != 0 &&
      a.ip_protocol_id != b.ip_protocol_id) {
    return false;
  }
  codec::TrafficSelector result;
  result.type = a.type;
  result.ip_protocol_id = a.ip_protocol_id != 0 ? a.ip_protocol_id : b.ip_protocol_id;
  result.start_port = std::max(a.start_port, b.start_port);
  result.end_port = std::min(a.end_port, b.end_port);
  if (result.start_port > result.end_port) return false;
  // Big-endian byte strings of equal length compare as numbers.
  result.starting_address = std::max(a.starting_address, b.starting_address);
  result.ending_address = std::min(a.ending_address, b.ending_address);
  if (result.starting_address > result.ending_address) return false;
  *out = std::move(result);
  return true;
}

std::vector<codec::TrafficSelector> Narrow(
    const std::vector<codec::TrafficSelector>& offered,
    const std::vector<codec::TrafficSelector>& allowed) {
  std::vector<codec::TrafficSelector> result;
  for (const codec::TrafficSelector& o : offered) {
    for (const codec::TrafficSelector& a : allowed) {
      codec::TrafficSelector overlap;
      if (Intersect(o, a, &overlap) &&
          std::find_if(result.begin(), result.end(), [&](const auto& r) {
            return r.type == overlap.type && r.ip_protocol_id == overlap.ip_protocol_id &&
                   r.start_port == overlap.start_port && r.end_port == overlap.end_port &&
                   r.starting_address == overlap.starting_address &&
                   r.ending_address == overlap.ending_address;
          }) == result.end()) {
        result.push_back(std::move(overlap));
      }
    }
  }
  return result;
}

std::string SelectorToString(const codec::TrafficSelector& selector) {
  auto text = [](const codec::Bytes& bytes) {
    auto address = net::IpEndpoint::FromBytes(bytes, 0);
    return address.ok() ? address->AddressString() : std::string("?");
  };
  std::string result = absl::StrCat(text(selector.starting_address), "-",
                                    text(selector.ending_address));
  if (selector.ip_protocol_id != 0) {
    absl::StrAppend(&result, " proto ", selector.ip_protocol_id);
  }
  if (selector.start_port != 0 || selector.end_port != 0xffff) {
    absl::StrAppend(&result, " ports ", selector.start_port, "-", selector.end_port);
  }
  return result;
}

}  // namespace vpn::ike
