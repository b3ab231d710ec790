// Traffic selector narrowing (RFC 7296 §2.9): what the client asked for,
// cut down to what the gateway allows.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ike-service/codec/payloads.h"

namespace vpn::ike {

// "10.0.0.0/8" or "2001:db8::/32" as an any-protocol, all-ports selector.
absl::StatusOr<codec::TrafficSelector> SelectorFromCidr(absl::string_view cidr);

// One address (4 or 16 bytes) as a selector.
codec::TrafficSelector HostSelector(absl::string_view address);

// The intersection of one selector with another, if they overlap.
bool Intersect(const codec::TrafficSelector& a, const codec::TrafficSelector& b,
               codec::TrafficSelector* out);

// Every non-empty intersection of an offered selector with an allowed one.
std::vector<codec::TrafficSelector> Narrow(
    const std::vector<codec::TrafficSelector>& offered,
    const std::vector<codec::TrafficSelector>& allowed);

std::string SelectorToString(const codec::TrafficSelector& selector);

}  // namespace vpn::ike
