// One IKEv2 initiator, without I/O: builds the requests of a full
// IKE_SA_INIT + EAP-MSCHAPv2 IKE_AUTH handshake (Windows style: IDi is the
// client's IP address, no AUTH in the first IKE_AUTH, a CP request and one
// CHILD SA), checks the responses, and deletes the IKE SA again. The event
// loop (load_generator.h) owns the sockets, timers and retransmits.
//
// Codec, key derivation, SK protection, NAT detection, proposal parsing and
// the AUTH octets are ike-service's own (no second implementation here).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/crypto/crypto.h"
#include "common/ipsec/transforms.h"
#include "common/net/ip_endpoint.h"
#include "ike-service/codec/message.h"
#include "ike-service/exchange/proposals.h"
#include "ike-service/sa/fragment_reassembly.h"
#include "ike-service/sa/keymat.h"
#include "ike-service/sa/sk_protector.h"
#include "tools/ike_loadgen/eap_peer.h"

namespace vpn::loadgen {

// Proposals in strongSwan syntax, comma-separated ("aes256-sha1-modp1024,
// aes128-sha1-modp1024"): what we send and what we accept back.
struct ProposalSet {
  std::vector<ike::codec::Proposal> proposals;
  std::vector<ike::ProposalPolicy> policies;
};
absl::StatusOr<ProposalSet> ParseProposalSet(absl::string_view text, ike::ProposalKind kind);

// The two named sets: "windows" (aes256-sha1-prfsha1-modp1024 / ESP
// aes256-sha1) and "modern" (aes256gcm16-prfsha384-x25519 / ESP aes256gcm16).
struct NamedProposals {
  std::string ike;
  std::string esp;
};
absl::StatusOr<NamedProposals> ProposalsByName(absl::string_view name);

struct InitiatorConfig {
  ProposalSet ike;
  ProposalSet esp;
  std::string eap_identity = "alice";
  std::string password;
  std::string idr_fqdn;                       // IDr to send; empty: none (Windows)
  bool signature_hash_algorithms = true;      // N(SIGNATURE_HASH_ALGORITHMS), RFC 7427
  bool fragmentation = false;                 // announce RFC 7383 and reassemble
  bool mobike = true;                         // N(MOBIKE_SUPPORTED)
  bool fake_nat = false;                      // a wrong NAT_DETECTION_SOURCE_IP hash
  bool verify_signature = false;              // check the responder's AUTH signature
  const crypto::TrustStore* trust = nullptr;  // and its CERT chain, if set
};

class Initiator {
 public:
  enum class State {
    kIdle,
    kInit,         // IKE_SA_INIT sent
    kAuth,         // IKE_AUTH sent (first, EAP rounds, final AUTH)
    kEstablished,  // final IKE_AUTH response checked
    kDeleting,     // INFORMATIONAL delete sent
    kDone,         // delete answered
    kFailed,
  };

  explicit Initiator(const InitiatorConfig* config) : config_(config) {}

  // Starts a new handshake and returns the IKE_SA_INIT request. `local` is
  // our address and port as the socket sees it (NAT detection, IDi).
  absl::StatusOr<crypto::Bytes> Start(uint64_t spi_i, const net::IpEndpoint& local,
                                      const net::IpEndpoint& remote);

  // Processes one received IKE message (no non-ESP marker). Returns the
  // datagram to send next: a new request, or the answer to a request from
  // the responder; empty when there is nothing to send (ignored message,
  // established, done, failed). Check state() afterwards.
  crypto::Bytes Receive(crypto::ByteSpan datagram);

  // Established → kDeleting: the INFORMATIONAL request deleting the IKE SA.
  crypto::Bytes BeginDelete();

  // Gives up (timeout): kFailed with `reason`.
  void Fail(std::string reason);

  State state() const { return state_; }
  const std::string& failure() const { return failure_; }
  // The request in flight, for retransmits.
  const crypto::Bytes& last_request() const { return last_request_; }
  // Bumped by every new request (not by answers to the responder's requests).
  uint64_t request_count() const { return request_count_; }
  // After IKE_SA_INIT: move to UDP 4500 with the non-ESP marker.
  bool udp_encapsulation() const { return udp_encapsulation_; }
  // What is in flight, for failure reasons ("IKE_SA_INIT", "IKE_AUTH#3", ...).
  std::string phase() const;
  uint64_t spi_i() const { return spi_i_; }
  uint64_t spi_r() const { return spi_r_; }
  const ipsec::TransformSet& ike_transforms() const { return transforms_; }
  const ipsec::TransformSet& esp_transforms() const { return esp_transforms_; }
  const std::string& virtual_ip() const { return virtual_ip_; }  // dotted quad
  int ke_retries() const { return ke_retries_; }
  // The IKE SA's keys and the message ID of our next request, for a harness
  // that seals requests of its own on an established SA (engine_fuzzer).
  const ike::IkeSaKeys& keys() const { return keys_; }
  uint32_t next_request_id() const { return next_message_id_; }
  int cookie_retries() const { return cookie_retries_; }

 private:
  crypto::Bytes BuildInitRequest();
  crypto::Bytes HandleInitResponse(const ike::codec::Message& message, crypto::ByteSpan datagram);
  crypto::Bytes HandleAuthResponse(const std::vector<ike::codec::Payload>& payloads);
  crypto::Bytes HandlePeerRequest(const ike::codec::Message& message,
                                  const std::vector<ike::codec::Payload>& payloads);
  absl::Status CheckResponderSignature(const std::vector<ike::codec::Payload>& payloads);
  absl::Status CheckFinalResponse(const std::vector<ike::codec::Payload>& payloads);
  // Encrypts `payloads` into one SK message; sets last_request_ for requests.
  crypto::Bytes Protect(ike::codec::ExchangeType exchange, bool response, uint32_t message_id,
                        const std::vector<ike::codec::Payload>& payloads);
  // Decrypts the SK payload (or reassembles SKF fragments). OK with no
  // value: a fragment was stored and more are missing.
  absl::StatusOr<absl::optional<std::vector<ike::codec::Payload>>> Unprotect(
      const ike::codec::Message& message, crypto::ByteSpan datagram);
  crypto::Bytes SendRequest(ike::codec::ExchangeType exchange,
                            const std::vector<ike::codec::Payload>& payloads);
  crypto::Bytes FailWith(std::string reason);

  const InitiatorConfig* config_;
  State state_ = State::kIdle;
  std::string failure_;
  net::IpEndpoint local_, remote_;
  uint64_t spi_i_ = 0, spi_r_ = 0;
  uint16_t group_ = 0;
  std::unique_ptr<crypto::KeyExchange> kex_;
  crypto::Bytes nonce_i_, nonce_r_, cookie_;
  crypto::Bytes init_request_, init_response_;
  int ke_retries_ = 0, cookie_retries_ = 0;
  ipsec::TransformSet transforms_, esp_transforms_;
  ike::IkeSaKeys keys_;
  std::unique_ptr<ike::SkProtector> outbound_, inbound_;
  bool udp_encapsulation_ = false;
  uint32_t next_message_id_ = 0;  // of our next request
  uint32_t awaiting_id_ = 0;      // of the request in flight
  int auth_round_ = 0;
  crypto::Bytes last_request_;
  uint64_t request_count_ = 0;
  crypto::Bytes idi_body_, idr_body_;
  crypto::Bytes esp_spi_;
  std::unique_ptr<EapMsChapV2Peer> eap_;
  bool sent_final_auth_ = false;
  std::string virtual_ip_;
  // RFC 7383 reassembly of responses (the gateway's fragment_size may be
  // small: up to 64 fragments).
  ike::FragmentReassembly reassembly_{64};
};

// "AUTHENTICATION_FAILED" etc. for the notifies a responder sends back.
std::string NotifyName(ike::codec::NotifyType type);

}  // namespace vpn::loadgen
