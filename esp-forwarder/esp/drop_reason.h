// Why the data plane dropped a packet; each reason is one /metrics label.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace vpn::forwarder::esp {

enum class DropReason : uint8_t {
  kNone = 0,
  kTruncated,      // shorter than the headers, IV, trailer and ICV need
  kUnknownSpi,     // no SA for the SPI
  kReplay,         // already seen inside the replay window
  kTooOld,         // below the replay window
  kAuthFailed,     // ICV / GCM tag mismatch
  kBadPadding,     // pad length too long or padding bytes not 1, 2, 3, ...
  kBadNextHeader,  // neither IPv4 (4) nor IPv6 (41)
  kDummy,          // next header 59: TFC dummy packet (RFC 4303 §2.6)
  kBadInner,       // inner IP header malformed or inconsistent
  kPolicy,         // inner addresses outside the SA's traffic selectors
  kOversized,      // larger than the buffers / path MTU allows
  kHardExpired,    // SA past its hard byte or time lifetime
  kSeqExhausted,   // outbound sequence numbers used up (rekey missed)
  kNoSa,           // outbound: no SA for the inner destination
  kIoError,        // a send or write failed
  kNoTun,          // decrypted, but no TUN device is configured
  kSeqUnreserved,  // outbound: past the persisted sequence-number lease (store slow or down)
  kCount,
};

inline constexpr std::array<const char*, static_cast<size_t>(DropReason::kCount)>
    kDropReasonNames = {"none",       "truncated",   "unknown_spi",     "replay",
                        "too_old",    "auth_failed", "bad_padding",     "bad_next_header",
                        "dummy",      "bad_inner",   "policy",          "oversized",
                        "hard_expired", "seq_exhausted", "no_sa",       "io_error",
                        "no_tun",     "seq_unreserved"};

inline const char* DropReasonName(DropReason reason) {
  return kDropReasonNames[static_cast<size_t>(reason)];
}

// Per-worker drop counts, flushed into /metrics in batches.
struct DropCounts {
  std::array<uint64_t, static_cast<size_t>(DropReason::kCount)> counts{};
  void Add(DropReason reason) { ++counts[static_cast<size_t>(reason)]; }
  uint64_t Get(DropReason reason) const { return counts[static_cast<size_t>(reason)]; }
};

}  // namespace vpn::forwarder::esp
