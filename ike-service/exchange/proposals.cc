#include "ike-service/exchange/proposals.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace vpn::ike {
namespace {

using codec::TransformType;

struct EncryptionName {
  const char* name;
  uint16_t id;
  uint16_t bits;
};
constexpr EncryptionName kEncryption[] = {
    {"aes128", 12, 128},        {"aes192", 12, 192},
    {"aes256", 12, 256},        {"3des", 3, 0},
    {"aes128gcm16", 20, 128},   {"aes256gcm16", 20, 256},
    {"aes128gcm", 20, 128},     {"aes256gcm", 20, 256},
    {"chacha20poly1305", 28, 0},
};

struct IdName {
  const char* name;
  uint16_t id;
};
constexpr IdName kIntegrity[] = {
    {"sha1", 2}, {"sha256", 12}, {"sha384", 13}, {"sha512", 14},
};
constexpr IdName kPrf[] = {
    {"prfsha1", 2}, {"prfsha256", 5}, {"prfsha384", 6}, {"prfsha512", 7},
};
constexpr IdName kGroups[] = {
    {"modp1024", 2}, {"modp2048", 14}, {"modp3072", 15}, {"ecp256", 19},
    {"ecp384", 20},  {"curve25519", 31}, {"x25519", 31},
};

template <typename Table>
const auto* Find(const Table& table, absl::string_view name) {
  for (const auto& entry : table) {
    if (name == entry.name) return &entry;
  }
  return static_cast<decltype(&table[0])>(nullptr);
}

uint16_t PrfForIntegrity(uint16_t integrity) {
  switch (integrity) {
    case 2:
      return 2;
    case 12:
      return 5;
    case 13:
      return 6;
    case 14:
      return 7;
  }
  return 0;
}

template <typename T>
void AddOnce(std::vector<T>* list, const T& value) {
  if (std::find(list->begin(), list->end(), value) == list->end()) {
    list->push_back(value);
  }
}

bool IsAead(uint16_t encryption_id) { return encryption_id == 20 || encryption_id == 28; }

// The only transform attribute IKEv2 defines: Key Length (TV), on ENCR.
bool AttributesUnderstood(const codec::Transform& t) {
  for (const codec::TransformAttribute& a : t.attributes) {
    if (a.type != codec::kAttributeKeyLength || !a.tv_format || t.type != TransformType::kEncr) {
      return false;
    }
  }
  return true;
}

}  // namespace

absl::StatusOr<ProposalPolicy> ParseProposalPolicy(absl::string_view text,
                                                   ProposalKind kind) {
  ProposalPolicy policy;
  bool esn_given = false;
  for (absl::string_view token : absl::StrSplit(text, '-')) {
    if (const auto* e = Find(kEncryption, token)) {
      AddOnce(&policy.encryption, {e->id, e->bits});
    } else if (const auto* i = Find(kIntegrity, token)) {
      AddOnce(&policy.integrity, i->id);
    } else if (const auto* p = Find(kPrf, token); p != nullptr && kind == ProposalKind::kIke) {
      AddOnce(&policy.prf, p->id);
    } else if (const auto* g = Find(kGroups, token)) {
      AddOnce(&policy.key_exchange, g->id);
    } else if ((token == "esn" || token == "noesn") && kind == ProposalKind::kEsp) {
      AddOnce<uint16_t>(&policy.esn, token == "esn" ? 1 : 0);
      esn_given = true;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("'", text, "': unknown algorithm '", token, "'"));
    }
  }
  if (policy.encryption.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("'", text, "': no encryption algorithm"));
  }
  const bool aead = IsAead(policy.encryption.front().first);
  for (const auto& [id, bits] : policy.encryption) {
    if (IsAead(id) != aead) {
      return absl::InvalidArgumentError(absl::StrCat(
          "'", text, "': AEAD and non-AEAD ciphers cannot share a proposal"));
    }
  }
  if (aead && !policy.integrity.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", text, "': an AEAD cipher takes no integrity algorithm"));
  }
  if (!aead && policy.integrity.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("'", text, "': no integrity algorithm"));
  }
  if (kind == ProposalKind::kIke) {
    if (policy.prf.empty()) {
      for (uint16_t integrity : policy.integrity) {
        AddOnce(&policy.prf, PrfForIntegrity(integrity));
      }
    }
    if (policy.prf.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", text, "': an AEAD IKE proposal needs a PRF (e.g. prfsha256)"));
    }
    if (policy.key_exchange.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", text, "': no key exchange group"));
    }
  } else if (!esn_given) {
    policy.esn.push_back(0);
  }
  return policy;
}

std::vector<std::string> DefaultIkeProposals() {
  return {
      "aes256gcm16-aes128gcm16-prfsha384-prfsha256-curve25519-ecp384-ecp256-modp3072-modp2048",
      "aes256-aes128-sha384-sha256-sha1-curve25519-ecp384-ecp256-modp3072-modp2048",
      // Windows 7-10 default: 3DES/AES-CBC with SHA1/SHA2 and MODP1024.
      "aes256-aes128-3des-sha256-sha1-modp2048-modp1024",
  };
}

std::vector<std::string> DefaultEspProposals() {
  return {
      "aes256gcm16-aes128gcm16",
      "aes256-aes128-sha256-sha1",
      // Windows: aes256/aes128/3des with sha1, no PFS.
      "aes256-aes128-3des-sha1",
  };
}

absl::optional<SelectedProposal> SelectProposal(
    const std::vector<codec::Proposal>& offered,
    const std::vector<ProposalPolicy>& policies, codec::ProtocolId protocol,
    uint16_t preferred_group) {
  for (const ProposalPolicy& policy : policies) {
    for (const codec::Proposal& proposal : offered) {
      if (proposal.protocol_id != protocol) continue;
      std::vector<std::pair<uint16_t, uint16_t>> encryption;
      std::vector<uint16_t> integrity, prf, groups, esn;
      bool unknown_mandatory = false;
      for (const codec::Transform& t : proposal.transforms) {
        // RFC 7296 3.3.6: a transform with an attribute we do not understand
        // is unacceptable; the others of its type are still considered.
        if (!AttributesUnderstood(t)) continue;
        switch (t.type) {
          case TransformType::kEncr:
            encryption.emplace_back(t.id, t.key_length().value_or(0));
            break;
          case TransformType::kInteg:
            integrity.push_back(t.id);
            break;
          case TransformType::kPrf:
            prf.push_back(t.id);
            break;
          case TransformType::kDh:
            groups.push_back(t.id);
            break;
          case TransformType::kEsn:
            esn.push_back(t.id);
            break;
          default:
            unknown_mandatory = true;
        }
      }
      if (unknown_mandatory) continue;
      auto pick = [](const std::vector<uint16_t>& ours,
                     const std::vector<uint16_t>& theirs) -> absl::optional<uint16_t> {
        for (uint16_t id : ours) {
          if (std::find(theirs.begin(), theirs.end(), id) != theirs.end()) return id;
        }
        return absl::nullopt;
      };
      SelectedProposal selected;
      selected.number = proposal.number;
      selected.spi = proposal.spi;
      bool ok = false;
      for (const auto& wanted : policy.encryption) {
        if (std::find(encryption.begin(), encryption.end(), wanted) != encryption.end()) {
          selected.transforms.encryption = wanted.first;
          selected.transforms.encryption_key_bits = wanted.second;
          ok = true;
          break;
        }
      }
      if (!ok) continue;
      // Integrity: an AEAD proposal has none (or NONE); others need one.
      if (IsAead(selected.transforms.encryption)) {
        if (!integrity.empty() &&
            !(integrity.size() == 1 && integrity.front() == 0)) {
          continue;
        }
      } else {
        absl::optional<uint16_t> chosen = pick(policy.integrity, integrity);
        if (!chosen) continue;
        selected.transforms.integrity = *chosen;
      }
      if (protocol == codec::ProtocolId::kIke) {
        absl::optional<uint16_t> chosen_prf = pick(policy.prf, prf);
        if (!chosen_prf) continue;
        selected.transforms.prf = *chosen_prf;
        if (preferred_group != 0 &&
            std::find(groups.begin(), groups.end(), preferred_group) != groups.end() &&
            std::find(policy.key_exchange.begin(), policy.key_exchange.end(),
                      preferred_group) != policy.key_exchange.end()) {
          selected.transforms.key_exchange = preferred_group;
        } else {
          absl::optional<uint16_t> group = pick(policy.key_exchange, groups);
          if (!group) continue;
          selected.transforms.key_exchange = *group;
        }
      } else {
        // ESP: a group is PFS. Without a KE payload the peer must allow NONE.
        const bool peer_wants_pfs =
            !groups.empty() &&
            std::find(groups.begin(), groups.end(), 0) == groups.end();
        if (preferred_group != 0) {
          if (std::find(groups.begin(), groups.end(), preferred_group) == groups.end() ||
              std::find(policy.key_exchange.begin(), policy.key_exchange.end(),
                        preferred_group) == policy.key_exchange.end()) {
            continue;
          }
          selected.transforms.key_exchange = preferred_group;
        } else if (peer_wants_pfs) {
          continue;
        }
        std::vector<uint16_t> peer_esn = esn.empty() ? std::vector<uint16_t>{0} : esn;
        absl::optional<uint16_t> chosen_esn = pick(policy.esn, peer_esn);
        if (!chosen_esn) continue;
        selected.transforms.esn = *chosen_esn;
      }
      return selected;
    }
  }
  return absl::nullopt;
}

codec::Proposal ToResponseProposal(const SelectedProposal& selected,
                                   codec::ProtocolId protocol, codec::Bytes spi) {
  codec::Proposal proposal;
  proposal.number = selected.number;
  proposal.protocol_id = protocol;
  proposal.spi = std::move(spi);
  const ipsec::TransformSet& t = selected.transforms;
  codec::Transform encryption;
  encryption.type = TransformType::kEncr;
  encryption.id = t.encryption;
  if (t.encryption_key_bits != 0) {
    encryption.attributes.push_back(
        codec::TransformAttribute::KeyLength(t.encryption_key_bits));
  }
  proposal.transforms.push_back(encryption);
  if (protocol == codec::ProtocolId::kIke) {
    proposal.transforms.push_back({TransformType::kPrf, t.prf, {}});
  }
  if (t.integrity != 0) {
    proposal.transforms.push_back({TransformType::kInteg, t.integrity, {}});
  }
  if (t.key_exchange != 0) {
    proposal.transforms.push_back({TransformType::kDh, t.key_exchange, {}});
  }
  if (protocol != codec::ProtocolId::kIke) {
    proposal.transforms.push_back({TransformType::kEsn, t.esn, {}});
  }
  return proposal;
}

}  // namespace vpn::ike
