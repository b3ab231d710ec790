// The state of one IKE SA on its owning replica. One message at a time is
// processed per SA: the engine holds `mu` for the whole exchange step, as
// strongSwan checks an SA out to one thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/types/optional.h"
#include "absl/time/time.h"
#include "common/crypto/crypto.h"
#include "common/ipsec/transforms.h"
#include "common/net/ip_endpoint.h"
#include "ike-service/codec/payloads.h"
#include "ike-service/sa/fragment_reassembly.h"
#include "ike-service/sa/keymat.h"
#include "ike-service/sa/sk_protector.h"

namespace vpn::ike {

struct ChildSaState {
  uint32_t inbound_spi = 0;   // chosen by the gateway
  uint32_t outbound_spi = 0;  // chosen by the client
  ipsec::TransformSet transforms;
  ChildSaKeys keys;
  std::vector<codec::TrafficSelector> local_ts;   // TSr: behind the gateway
  std::vector<codec::TrafficSelector> remote_ts;  // TSi: the client's side
  absl::Time created;
};

// What the first IKE_AUTH request asked for, kept across the EAP rounds
// until the CHILD SA is created in the last one.
struct PendingChild {
  std::vector<codec::Proposal> proposals;
  std::vector<codec::TrafficSelector> tsi;
  std::vector<codec::TrafficSelector> tsr;
  bool has_config_request = false;
  codec::ConfigPayload config_request;
};

struct IkeSa {
  enum class Phase { kHalfOpen, kAuthenticating, kEstablished, kDeleted };

  absl::Mutex mu;

  uint64_t spi_i = 0;
  uint64_t spi_r = 0;
  Phase phase = Phase::kHalfOpen;
  ipsec::TransformSet transforms;
  crypto::Bytes nonce_i, nonce_r;
  crypto::Bytes init_request, init_response;  // for the AUTH signed octets
  IkeSaKeys keys;
  std::unique_ptr<SkProtector> from_initiator;  // SK_ei/SK_ai
  std::unique_ptr<SkProtector> to_initiator;    // SK_er/SK_ar

  net::IpEndpoint local, remote;
  bool udp_encapsulated = false;
  size_t forwarder = 0;  // the IkeTransport stream the client is reached by
  bool initiator_behind_nat = false;
  bool responder_behind_nat = false;
  // Generation of the path (local, remote, initiator_behind_nat) in the
  // path tags of this SA's records (store/sa_seal.h); raised by each move
  // this replica authorizes, followed from the records otherwise.
  uint64_t path_generation = 0;
  bool peer_supports_fragmentation = false;
  std::vector<uint16_t> peer_hash_algorithms;  // RFC 7427
  bool mobike = false;

  // Requests from the initiator: the next expected ID, and the last answer
  // (one datagram, or several fragments) for retransmits (§2.1).
  uint32_t next_request_id = 0;
  // Restored from the store after a restart: the client's next message ID
  // is taken from its first authenticated request.
  bool message_id_unknown = false;
  // Rebuilt from the store (restart or takeover): exchanges the previous
  // holder did not record (liveness) may have moved the client's message ID
  // on, so a higher one is taken (a replay always carries a lower one).
  bool restored = false;
  uint32_t last_response_id = 0;
  std::vector<crypto::Bytes> last_response;
  // Fragments being received: of the client's request, and of its
  // response to one of the gateway's requests (IDs of either window).
  FragmentReassembly reassembly;
  FragmentReassembly response_reassembly;

  // Requests the gateway sends (liveness, deletes): its own message IDs.
  uint32_t next_own_request_id = 0;
  struct PendingRequest {
    uint32_t message_id = 0;
    std::vector<crypto::Bytes> datagrams;
    absl::Time sent;
    int attempts = 0;
    int give_up_after = 0;  // 0: retransmitted until answered
  };
  absl::optional<PendingRequest> pending_request;
  // COOKIE2 of a return routability check in flight (RFC 4555 §3.5).
  crypto::Bytes return_routability_cookie;

  // IKE_AUTH.
  codec::IdiPayload idi;
  crypto::Bytes idr_body;  // our IDr payload body, as sent
  bool uses_eap = false;
  std::string eap_session;
  std::string eap_identity;
  crypto::SecretBytes msk;
  std::string certificate_subject;
  PendingChild pending_child;

  std::vector<std::string> virtual_ips;  // 4- or 16-byte addresses
  // The store revision each address's pool lease was written at; empty
  // when not known (an SA restored after a restart).
  std::vector<int64_t> virtual_ip_leases;
  std::vector<ChildSaState> children;

  absl::Time created;
  absl::Time last_seen;
  // When this replica last moved the SA itself; records written before it
  // are older news (the store watch may deliver them late).
  absl::Time moved_here = absl::InfinitePast();
  // When an authenticated UPDATE_SA_ADDRESSES came in whose move is not yet
  // announced (the return-routability check is under way).
  absl::Time mobike_update_at = absl::InfinitePast();
  // mobility-service marked the SA DORMANT (its client silent) in the
  // record; our own writes keep the mark until it clears it.
  bool dormant = false;

  // The store key of this SA's record: "ike/<spi_i>-<spi_r>" in hex.
  std::string record_key() const;
};

}  // namespace vpn::ike
