#include "common/store/etcd_launcher.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include <fstream>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/rpc/credentials.h"
#include "proto/etcd/etcdserverpb/rpc.grpc.pb.h"

namespace vpn::store {
namespace {

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

std::string ReadTail(const std::string& path, size_t max) {
  std::ifstream in(path);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return all.size() > max ? all.substr(all.size() - max) : all;
}

}  // namespace

absl::StatusOr<std::unique_ptr<EtcdLauncher>> EtcdLauncher::Start(Options options) {
  if (access("/usr/bin/etcd", X_OK) != 0) {
    return absl::FailedPreconditionError(
        "/usr/bin/etcd not found: install Debian's etcd-server package");
  }
  mkdir(options.data_dir.c_str(), 0700);
  const bool production = !options.pki_dir.empty();
  if (production) {
    if (options.rbac_script.empty()) {
      return absl::InvalidArgumentError("etcd launcher: pki_dir needs rbac_script");
    }
    options.cert_file = options.pki_dir + "/etcd.crt";
    options.key_file = options.pki_dir + "/etcd.key";
    options.ca_file = options.pki_dir + "/ca.crt";
  }
  std::unique_ptr<EtcdLauncher> etcd(new EtcdLauncher(std::move(options)));
  etcd->client_port_ = FreePort();
  etcd->peer_port_ = FreePort();
  absl::Status st = etcd->Spawn();
  if (!st.ok()) return st;
  if (production) {
    // Roles and auth are kept in etcd's data: a Restart() keeps them.
    const std::string log = etcd->options_.data_dir + "/rbac.log";
    std::string cmd = absl::StrCat("'", etcd->options_.rbac_script, "' ", etcd->endpoint(),
                                   " '", etcd->options_.pki_dir, "' >'", log, "' 2>&1");
    if (system(cmd.c_str()) != 0) {
      return absl::InternalError(absl::StrCat(
          etcd->options_.rbac_script, " failed; its output:\n", ReadTail(log, 2000)));
    }
  }
  return etcd;
}

EtcdLauncher::~EtcdLauncher() { Kill(); }

std::string EtcdLauncher::endpoint() const {
  return absl::StrCat("127.0.0.1:", client_port_);
}

absl::Status EtcdLauncher::Spawn() {
  const bool tls = !options_.cert_file.empty();
  std::string client_url =
      absl::StrCat(tls ? "https" : "http", "://127.0.0.1:", client_port_);
  std::string peer_url = absl::StrCat("http://127.0.0.1:", peer_port_);
  std::vector<std::string> args = {
      "/usr/bin/etcd",
      "--name=default",
      "--data-dir=" + options_.data_dir + "/member-data",
      "--listen-client-urls=" + client_url,
      "--advertise-client-urls=" + client_url,
      "--listen-peer-urls=" + peer_url,
      "--initial-advertise-peer-urls=" + peer_url,
      "--initial-cluster=default=" + peer_url,
      "--logger=zap",
      "--log-outputs=" + options_.data_dir + "/etcd.log",
  };
  if (tls) {
    args.push_back("--cert-file=" + options_.cert_file);
    args.push_back("--key-file=" + options_.key_file);
  }
  if (!options_.pki_dir.empty()) {
    args.push_back("--client-cert-auth");
    args.push_back("--trusted-ca-file=" + options_.ca_file);
  }
  for (const std::string& a : options_.extra_args) args.push_back(a);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t parent = getpid();
  pid_ = fork();
  if (pid_ < 0) return absl::InternalError("fork failed");
  if (pid_ == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the test
    if (getppid() != parent) _exit(1);
    int devnull = open("/dev/null", O_RDWR);
    dup2(devnull, 0);
    dup2(devnull, 1);
    dup2(devnull, 2);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return WaitHealthy();
}

absl::Status EtcdLauncher::WaitHealthy() {
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (!options_.pki_dir.empty()) {
    // Client certificates are required: present the admin's.
    auto root = rpc::MakeChannelCredentials(rpc::TlsFiles{
        options_.pki_dir + "/root.crt", options_.pki_dir + "/root.key", options_.ca_file});
    if (!root.ok()) return root.status();
    creds = *root;
  } else if (options_.cert_file.empty()) {
    creds = grpc::InsecureChannelCredentials();
  } else {
    std::ifstream in(options_.ca_file);
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs.assign((std::istreambuf_iterator<char>(in)),
                              std::istreambuf_iterator<char>());
    creds = grpc::SslCredentials(ssl);
  }
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline) {
    int status;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return absl::InternalError(absl::StrCat(
          "etcd exited during start-up; log tail:\n",
          ReadTail(options_.data_dir + "/etcd.log", 2000)));
    }
    // A fresh channel per attempt: no reconnect backoff carried over.
    auto channel = grpc::CreateChannel(endpoint(), creds);
    auto kv = etcdserverpb::KV::NewStub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
    ctx.set_wait_for_ready(true);
    etcdserverpb::RangeRequest req;
    req.set_key("health");
    etcdserverpb::RangeResponse resp;
    grpc::Status gs = kv->Range(&ctx, req, &resp);
    // Any answer from the server (even an auth error) means it is serving.
    if (gs.ok() || (gs.error_code() != grpc::StatusCode::UNAVAILABLE &&
                    gs.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED)) {
      return absl::OkStatus();
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  return absl::DeadlineExceededError(absl::StrCat(
      "etcd did not become healthy within 30s; log tail:\n",
      ReadTail(options_.data_dir + "/etcd.log", 2000)));
}

void EtcdLauncher::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  int status;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

absl::Status EtcdLauncher::Restart() {
  Kill();
  return Spawn();
}

EtcdLauncher& SharedTestEtcd() {
  static EtcdLauncher* etcd = [] {
    EtcdLauncher::Options options;
    const char* tmp = getenv("TEST_TMPDIR");
    options.data_dir = std::string(tmp != nullptr ? tmp : "/tmp") + "/etcd";
    std::error_code ignored;
    std::filesystem::remove_all(options.data_dir, ignored);  // a run before this one's
    auto launched = EtcdLauncher::Start(options);
    if (!launched.ok()) {
      fprintf(stderr, "cannot start etcd: %s\n", launched.status().ToString().c_str());
      abort();
    }
    return launched->release();
  }();
  return *etcd;
}

std::string TestRunfile(const std::string& relative) {
  const char* srcdir = getenv("TEST_SRCDIR");
  const char* workspace = getenv("TEST_WORKSPACE");
  if (srcdir == nullptr || workspace == nullptr) return relative;
  return absl::StrCat(srcdir, "/", workspace, "/", relative);
}

absl::StatusOr<std::unique_ptr<EtcdLauncher>> StartProductionTestEtcd(
    const std::string& dir) {
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);  // a run before this one's
  std::filesystem::create_directories(dir, ignored);
  const std::string pki = dir + "/pki";
  std::string cmd = absl::StrCat("'", TestRunfile("tools/service-pki.sh"), "' '", pki,
                                 "' >/dev/null 2>&1");
  if (system(cmd.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("tools/service-pki.sh ", pki, " failed"));
  }
  EtcdLauncher::Options options;
  options.data_dir = dir + "/etcd";
  options.pki_dir = pki;
  options.rbac_script = TestRunfile("tools/etcd-rbac.sh");
  return EtcdLauncher::Start(options);
}

EtcdLauncher& SharedProductionTestEtcd() {
  static EtcdLauncher* etcd = [] {
    const char* tmp = getenv("TEST_TMPDIR");
    auto launched =
        StartProductionTestEtcd(std::string(tmp != nullptr ? tmp : "/tmp") + "/etcd-rbac");
    if (!launched.ok()) {
      fprintf(stderr, "cannot start etcd: %s\n", launched.status().ToString().c_str());
      abort();
    }
    return launched->release();
  }();
  return *etcd;
}

}  // namespace vpn::store
