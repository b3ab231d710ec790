// Proposal policy: what the gateway accepts, written as strongSwan writes it
// ("aes256-aes128-sha256-sha1-modp2048-modp1024"), and the selection of one
// of the peer's proposals (RFC 7296 §2.7, §3.3).
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"
#include "common/ipsec/transforms.h"
#include "ike-service/codec/payloads.h"

namespace vpn::ike {

// Acceptable transforms per type, in the gateway's order of preference.
struct ProposalPolicy {
  std::vector<std::pair<uint16_t, uint16_t>> encryption;  // (ID, key bits)
  std::vector<uint16_t> integrity;
  std::vector<uint16_t> prf;
  std::vector<uint16_t> key_exchange;  // ESP: the PFS groups; may be empty
  std::vector<uint16_t> esn;           // ESP only
};

enum class ProposalKind { kIke, kEsp };

// Parses "aes256-sha1-modp1024" and the like. For IKE without a PRF, the PRF
// follows the integrity algorithm; ESP without esn/noesn means noesn.
absl::StatusOr<ProposalPolicy> ParseProposalPolicy(absl::string_view text,
                                                   ProposalKind kind);

// The Windows-compatible and modern defaults.
std::vector<std::string> DefaultIkeProposals();
std::vector<std::string> DefaultEspProposals();

struct SelectedProposal {
  uint8_t number = 0;
  codec::Bytes spi;  // the peer's SPI from the chosen proposal
  ipsec::TransformSet transforms;
};

// Chooses the first policy, in the gateway's order, that one of the peer's
// proposals satisfies. Among a proposal's key exchange groups,
// `preferred_group` (the group of the peer's KE payload) wins when allowed,
// so no INVALID_KE_PAYLOAD round trip is needed. For ESP without PFS,
// `require_no_key_exchange` rejects proposals that demand a group... unless
// they also offer NONE.
absl::optional<SelectedProposal> SelectProposal(
    const std::vector<codec::Proposal>& offered,
    const std::vector<ProposalPolicy>& policies, codec::ProtocolId protocol,
    uint16_t preferred_group = 0);

// The proposal to send back: the chosen transforms under the peer's
// proposal number, with `spi` as our SPI.
codec::Proposal ToResponseProposal(const SelectedProposal& selected,
                                   codec::ProtocolId protocol, codec::Bytes spi);

}  // namespace vpn::ike
