// The load generator against a real strongSwan responder (test/interop's
// harness: network namespaces, swan.py): real handshakes, both proposal sets,
// IKE fragmentation, INVALID_KE_PAYLOAD, the delete, and --keep. Root only;
// otherwise it skips.
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "tools/ike_loadgen/load_generator.h"

namespace vpn::loadgen {
namespace {

std::string Runfile(const std::string& path) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  if (srcdir == nullptr || workspace == nullptr) return path;  // from the source tree
  return absl::StrCat(srcdir, "/", workspace, "/", path);
}

// Runs `command` with sh; returns its exit status and output.
int Shell(const std::string& command, std::string* output = nullptr) {
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return -1;
  std::string text;
  char buffer[4096];
  size_t got;
  while ((got = fread(buffer, 1, sizeof(buffer), pipe)) > 0) text.append(buffer, got);
  const int status = pclose(pipe);
  if (output != nullptr) *output = text;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int Count(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

InitiatorConfig Config(absl::string_view proposals) {
  InitiatorConfig config;
  const NamedProposals names = *ProposalsByName(proposals);
  config.ike = *ParseProposalSet(names.ike, ike::ProposalKind::kIke);
  config.esp = *ParseProposalSet(names.esp, ike::ProposalKind::kEsp);
  config.password = "interop-Pa55word";  // swan.DEFAULT_PASSWORD
  config.verify_signature = true;
  return config;
}

class StrongSwanLoadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) {
      GTEST_SKIP() << "SKIP: needs root (network namespaces and a strongSwan responder)";
    }
    setenv("PATH", "/usr/sbin:/sbin:/usr/bin:/bin", 1);
    char dir[] = "/tmp/ivpn-lgt-XXXXXX";  // short: swan.py's VICI socket path must fit
    ASSERT_NE(mkdtemp(dir), nullptr);
    work_ = dir;
    run_ = absl::StrFormat("lgt%x", getpid());
    netns_ = Runfile("test/interop/netns.sh");
    swan_ = "python3 " + Runfile("test/interop/swan.py");
    std::string out;
    ASSERT_EQ(Shell(absl::StrCat(netns_, " up ", run_), &out), 0) << out;
    up_ = true;
    ASSERT_EQ(Shell(absl::StrCat(swan_, " pki ", work_, "/pki"), &out), 0) << out;
    ASSERT_EQ(Shell(absl::StrCat(swan_, " start ", work_, "/gw --ns ivpn-", run_,
                                 "-gw --role responder --pki ", work_, "/pki --proposals all"),
                    &out),
              0)
        << out;
    started_ = true;
  }

  void TearDown() override {
    if (started_) {
      std::string log;
      Shell(absl::StrCat(swan_, " log ", work_, "/gw --lines 40"), &log);
      if (HasFailure()) std::fprintf(stderr, "--- responder log\n%s\n", log.c_str());
      Shell(absl::StrCat(swan_, " stop ", work_, "/gw"));
    }
    if (up_) Shell(absl::StrCat(netns_, " down ", run_));
    if (!work_.empty()) Shell("rm -rf " + work_);
  }

  // Runs the load from the client namespace (this thread enters it).
  LoadReport Load(const InitiatorConfig& config, int handshakes, bool keep = false) {
    LoadOptions options;
    options.remote = *net::IpEndpoint::Parse("192.0.2.1:500");
    options.parallel = 3;
    options.handshakes = handshakes;
    options.timeout = std::chrono::milliseconds(500);
    options.keep = keep;
    const int home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    const int client =
        open(absl::StrCat("/run/netns/ivpn-", run_, "-cli").c_str(), O_RDONLY | O_CLOEXEC);
    EXPECT_EQ(setns(client, CLONE_NEWNET), 0);
    LoadReport report = RunLoad(options, config);
    EXPECT_EQ(setns(home, CLONE_NEWNET), 0);
    close(client);
    close(home);
    std::fprintf(stderr, "%s", ReportText(report).c_str());
    return report;
  }

  std::string ResponderSas() {
    std::string out;
    // Raw swanctl output: one "rw-eap: #N, ESTABLISHED, ..." line per IKE SA.
    Shell(absl::StrCat(swan_, " swanctl ", work_, "/gw --list-sas"), &out);
    return out;
  }

  std::string work_, run_, netns_, swan_;
  bool up_ = false, started_ = false;
};

TEST_F(StrongSwanLoadTest, RealHandshakes) {
  InitiatorConfig windows = Config("windows");
  LoadReport report = Load(windows, 6);
  EXPECT_EQ(report.failed, 0) << ReportText(report);
  EXPECT_EQ(report.established, 6);
  EXPECT_EQ(report.deleted, 6);
  EXPECT_EQ(report.ike_transforms, "aes256-sha1-prfsha1-modp1024");
  EXPECT_EQ(report.esp_transforms, "aes256-sha1");
  EXPECT_EQ(report.virtual_ip.rfind("10.10.0.", 0), 0u) << report.virtual_ip;
  EXPECT_EQ(report.udp_encapsulated, 6);  // strongSwan with libipsec fakes a NAT

  // Modern, announcing fragmentation (strongSwan then splits the ~1300-byte
  // IKE_AUTH response with the certificate) and starting with a group the
  // responder does not take for this proposal (INVALID_KE_PAYLOAD → X25519).
  InitiatorConfig modern = Config("modern");
  modern.fragmentation = true;
  modern.ike = *ParseProposalSet("aes256gcm16-prfsha384-modp1024-x25519", ike::ProposalKind::kIke);
  report = Load(modern, 6);
  EXPECT_EQ(report.failed, 0) << ReportText(report);
  EXPECT_EQ(report.deleted, 6);
  EXPECT_EQ(report.ike_transforms, "aes256gcm16-prfsha384-x25519");
  EXPECT_EQ(report.esp_transforms, "aes256gcm16");
  EXPECT_EQ(report.ke_retries, 6);
  EXPECT_EQ(Count(ResponderSas(), "ESTABLISHED"), 0) << "deleted SAs left on the responder";

  report = Load(Config("modern"), 2, /*keep=*/true);
  EXPECT_EQ(report.established, 2);
  EXPECT_EQ(report.deleted, 0);
  EXPECT_EQ(Count(ResponderSas(), "ESTABLISHED"), 2);

  InitiatorConfig wrong = Config("windows");
  wrong.password = "wrong";
  report = Load(wrong, 1);
  EXPECT_EQ(report.failed, 1);
  ASSERT_EQ(report.failures.size(), 1u);
  EXPECT_NE(report.failures.begin()->first.find("IKE_AUTH"), std::string::npos)
      << report.failures.begin()->first;
}

}  // namespace
}  // namespace vpn::loadgen
