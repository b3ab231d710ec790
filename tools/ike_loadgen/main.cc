// ike_loadgen: an IKEv2 initiator load generator (EAP-MSCHAPv2, Windows
// style), and the crypto-only floor of a responder handshake.
//
//   ike_loadgen --remote=192.0.2.1 --proposals=windows --parallel=32 --handshakes=2000
//   ike_loadgen --floor --proposals=modern --floor_key=gw.key
//
// Prints a summary on stderr; --json prints one JSON object on stdout.
// Exit code 0 when every attempt established (and was deleted), 1 otherwise,
// 2 for bad flags.

#include <cstdio>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "common/fs/read_file.h"
#include "tools/ike_loadgen/crypto_floor.h"
#include "tools/ike_loadgen/load_generator.h"

ABSL_FLAG(std::string, remote, "192.0.2.1", "responder address (port 500 unless given)");
ABSL_FLAG(int, natt_port, 4500, "responder's NAT-T port");
ABSL_FLAG(std::string, bind, "", "local address to send from");
ABSL_FLAG(std::string, proposals, "windows",
          "windows (aes256-sha1-prfsha1-modp1024, ESP aes256-sha1) or modern "
          "(aes256gcm16-prfsha384-x25519, ESP aes256gcm16)");
ABSL_FLAG(std::string, ike, "", "IKE proposals, strongSwan syntax, comma-separated; overrides");
ABSL_FLAG(std::string, esp, "", "ESP proposals; overrides --proposals");
ABSL_FLAG(std::string, user, "alice", "EAP identity");
ABSL_FLAG(std::string, password, "interop-Pa55word", "EAP-MSCHAPv2 password");
ABSL_FLAG(std::string, idr, "", "IDr (FQDN) to send; empty: none, as Windows");
ABSL_FLAG(int, parallel, 32, "initiators in flight");
ABSL_FLAG(int, threads, 1, "event-loop threads");
ABSL_FLAG(int64_t, handshakes, 100, "attempts; 0: run for --duration");
ABSL_FLAG(double, duration, 10, "seconds, with --handshakes=0");
ABSL_FLAG(int, timeout_ms, 1000, "first retransmit timeout (doubles)");
ABSL_FLAG(int, retransmits, 4, "retransmits before an attempt fails");
ABSL_FLAG(bool, keep, false, "keep the IKE SAs (no INFORMATIONAL delete)");
ABSL_FLAG(bool, fragmentation, false, "announce IKEv2 fragmentation (RFC 7383)");
ABSL_FLAG(bool, signature_hash_algorithms, true, "send N(SIGNATURE_HASH_ALGORITHMS)");
ABSL_FLAG(bool, mobike, true, "send N(MOBIKE_SUPPORTED)");
ABSL_FLAG(bool, fake_nat, false, "claim to be behind a NAT (moves IKE to port 4500)");
ABSL_FLAG(bool, verify_signature, false, "verify the responder's AUTH signature");
ABSL_FLAG(std::string, ca, "", "with --verify_signature: also check the CERT chain to this CA");
ABSL_FLAG(bool, json, false, "print the result as JSON on stdout");
ABSL_FLAG(bool, floor, false, "measure the crypto-only floor instead of sending anything");
ABSL_FLAG(std::string, floor_key, "", "PEM private key for the floor (default: new RSA-2048)");
ABSL_FLAG(int, floor_repetitions, 5, "floor repetitions (median)");
ABSL_FLAG(double, floor_seconds, 0.3, "floor: seconds per repetition and operation");

namespace vpn::loadgen {
namespace {

int Usage(const std::string& message) {
  std::fprintf(stderr, "ike_loadgen: %s\n", message.c_str());
  return 2;
}

ipsec::TransformSet FirstTransforms(const ike::ProposalPolicy& policy) {
  ipsec::TransformSet t;
  if (!policy.encryption.empty()) {
    t.encryption = policy.encryption[0].first;
    t.encryption_key_bits = policy.encryption[0].second;
  }
  if (!policy.prf.empty()) t.prf = policy.prf[0];
  if (!policy.integrity.empty()) t.integrity = policy.integrity[0];
  if (!policy.key_exchange.empty()) t.key_exchange = policy.key_exchange[0];
  if (!policy.esn.empty()) t.esn = policy.esn[0];
  return t;
}

int Floor(const InitiatorConfig& config) {
  const crypto::Provider& provider = crypto::GetProvider();
  std::unique_ptr<crypto::PrivateKey> key;
  if (const std::string path = absl::GetFlag(FLAGS_floor_key); !path.empty()) {
    absl::StatusOr<std::string> pem = fs::ReadFile(path);
    if (!pem.ok()) return Usage(std::string(pem.status().message()));
    absl::StatusOr<std::unique_ptr<crypto::PrivateKey>> loaded = provider.LoadPrivateKeyPem(*pem);
    if (!loaded.ok()) return Usage(absl::StrCat("--floor_key: ", loaded.status().message()));
    key = *std::move(loaded);
  } else {
    key = *provider.GeneratePrivateKey(crypto::KeyType::kRsa, 2048);
  }
  FloorOptions options;
  options.ike = FirstTransforms(config.ike.policies.front());
  options.esp = FirstTransforms(config.esp.policies.front());
  options.key = key.get();
  options.scheme = key->type() == crypto::KeyType::kRsa ? crypto::SignatureScheme::kRsaPkcs1Sha256
                                                        : crypto::SignatureScheme::kEcdsaSha256;
  options.repetitions = absl::GetFlag(FLAGS_floor_repetitions);
  options.min_seconds = absl::GetFlag(FLAGS_floor_seconds);
  absl::StatusOr<FloorResult> result = MeasureFloor(options);
  if (!result.ok()) return Usage(absl::StrCat("floor: ", result.status().message()));
  std::fprintf(stderr,
               "crypto floor (IKE %s, ESP %s): key exchange %.1f us + signature %.1f us + "
               "derivation %.1f us; together %.1f us per handshake\n",
               options.ike.ToString().c_str(), options.esp.ToString().c_str(),
               result->key_exchange_us, result->signature_us, result->derivation_us,
               result->handshake_us);
  if (absl::GetFlag(FLAGS_json)) std::printf("%s\n", FloorJson(*result).c_str());
  return 0;
}

int Main() {
  NamedProposals names;
  if (absl::StatusOr<NamedProposals> named = ProposalsByName(absl::GetFlag(FLAGS_proposals));
      named.ok()) {
    names = *named;
  } else {
    return Usage(std::string(named.status().message()));
  }
  if (!absl::GetFlag(FLAGS_ike).empty()) names.ike = absl::GetFlag(FLAGS_ike);
  if (!absl::GetFlag(FLAGS_esp).empty()) names.esp = absl::GetFlag(FLAGS_esp);
  InitiatorConfig config;
  absl::StatusOr<ProposalSet> ike = ParseProposalSet(names.ike, ike::ProposalKind::kIke);
  if (!ike.ok()) return Usage(absl::StrCat("--ike: ", ike.status().message()));
  absl::StatusOr<ProposalSet> esp = ParseProposalSet(names.esp, ike::ProposalKind::kEsp);
  if (!esp.ok()) return Usage(absl::StrCat("--esp: ", esp.status().message()));
  config.ike = *std::move(ike);
  config.esp = *std::move(esp);
  if (absl::GetFlag(FLAGS_floor)) return Floor(config);

  config.eap_identity = absl::GetFlag(FLAGS_user);
  config.password = absl::GetFlag(FLAGS_password);
  config.idr_fqdn = absl::GetFlag(FLAGS_idr);
  config.signature_hash_algorithms = absl::GetFlag(FLAGS_signature_hash_algorithms);
  config.fragmentation = absl::GetFlag(FLAGS_fragmentation);
  config.mobike = absl::GetFlag(FLAGS_mobike);
  config.fake_nat = absl::GetFlag(FLAGS_fake_nat);
  config.verify_signature = absl::GetFlag(FLAGS_verify_signature);
  std::unique_ptr<crypto::TrustStore> trust;
  if (const std::string ca = absl::GetFlag(FLAGS_ca); !ca.empty()) {
    absl::StatusOr<std::string> pem = fs::ReadFile(ca);
    if (!pem.ok()) return Usage(std::string(pem.status().message()));
    absl::StatusOr<std::unique_ptr<crypto::TrustStore>> store =
        crypto::GetProvider().NewTrustStore(*pem, "");
    if (!store.ok()) return Usage(absl::StrCat("--ca: ", store.status().message()));
    trust = *std::move(store);
    config.trust = trust.get();
  }

  LoadOptions options;
  std::string remote = absl::GetFlag(FLAGS_remote);
  absl::StatusOr<net::IpEndpoint> endpoint = net::IpEndpoint::Parse(remote);
  if (!endpoint.ok()) return Usage(absl::StrCat("--remote: ", endpoint.status().message()));
  options.remote = *endpoint;
  if (options.remote.port() == 0) options.remote.set_port(500);
  options.natt_port = static_cast<uint16_t>(absl::GetFlag(FLAGS_natt_port));
  options.bind_address = absl::GetFlag(FLAGS_bind);
  options.parallel = absl::GetFlag(FLAGS_parallel);
  options.threads = absl::GetFlag(FLAGS_threads);
  options.handshakes = absl::GetFlag(FLAGS_handshakes);
  options.duration =
      std::chrono::milliseconds(static_cast<int64_t>(1000 * absl::GetFlag(FLAGS_duration)));
  options.timeout = std::chrono::milliseconds(absl::GetFlag(FLAGS_timeout_ms));
  options.retransmits = absl::GetFlag(FLAGS_retransmits);
  options.keep = absl::GetFlag(FLAGS_keep);
  if (options.parallel < 1 || options.threads < 1 || options.handshakes < 0 ||
      options.timeout.count() < 1 || options.retransmits < 0) {
    return Usage("--parallel, --threads and --timeout_ms must be positive");
  }

  const LoadReport report = RunLoad(options, config);
  std::fprintf(stderr, "%s", ReportText(report).c_str());
  if (absl::GetFlag(FLAGS_json)) std::printf("%s\n", ReportJson(report).c_str());
  const int64_t wanted = options.keep ? report.established : report.deleted;
  return report.failed == 0 && wanted == report.attempted ? 0 : 1;
}

}  // namespace
}  // namespace vpn::loadgen

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("IKEv2 EAP-MSCHAPv2 initiator load generator");
  absl::ParseCommandLine(argc, argv);
  return vpn::loadgen::Main();
}
