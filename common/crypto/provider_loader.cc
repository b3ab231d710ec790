// Finds, loads and hands out the crypto provider object.
//
// Why a dlopen()ed object instead of linking BoringSSL like any library:
// Debian's gRPC links OpenSSL 3, and Debian's BoringSSL
// (android-libboringssl-dev) exports the same, unversioned, symbol names
// (EVP_*, HMAC_*, X509_*, ...). Linked into one process the ordinary way,
// calls meant for one library bind to the other's functions (and structs of
// different layouts get passed between them), which corrupts memory or
// computes wrong results. So BoringSSL is linked only into
// libvpn_crypto_boringssl.so, which this loader opens with
//   RTLD_NOW      - resolve everything up front, fail here and not mid-IKE;
//   RTLD_LOCAL    - keep its symbols out of the global namespace, so gRPC's
//                   OpenSSL never binds to BoringSSL;
//   RTLD_DEEPBIND - make the object (and its libcrypto.so.0 dependency)
//                   prefer its own symbols to the ones already in the
//                   process, so BoringSSL never binds to gRPC's OpenSSL.
// The object exports a single extern "C" entry point returning the Provider.
// This was verified on this machine: the object computes correctly in the
// same process as a live gRPC channel using OpenSSL TLS
// (grpc_coexistence_test).
//
// The sanitizers refuse RTLD_DEEPBIND (their interceptors would be
// bypassed). A sanitizer build (--config=fuzz defines VPN_SANITIZER_BUILD)
// loads without it, which is safe only while no OpenSSL is in the process:
// the loader checks, and fuzz targets link without gRPC's libraries.
#include <dlfcn.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/crypto/crypto.h"

namespace vpn::crypto {
namespace {

constexpr char kObjectName[] = "libvpn_crypto_boringssl.so";
constexpr char kRunfilesPath[] = "vpn_gateway/common/crypto/";
constexpr char kEntryPoint[] = "vpn_crypto_provider_v1";
constexpr char kPathVariable[] = "VPN_CRYPTO_PROVIDER";

using EntryPoint = Provider* (*)(int abi_version);

std::string ExecutablePath() {
  char buf[PATH_MAX];
  const ssize_t len = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  return len > 0 ? std::string(buf, len) : std::string();
}

std::string DirName(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

bool Exists(const std::string& path) { return access(path.c_str(), R_OK) == 0; }

// Where to look, in order. An explicit VPN_CRYPTO_PROVIDER is the only
// candidate: a wrong setting should fail rather than silently fall back.
std::vector<std::string> CandidatePaths() {
  if (const char* explicit_path = std::getenv(kPathVariable)) {
    return {explicit_path};
  }
  std::vector<std::string> paths;
  const std::string exe = ExecutablePath();
  if (!exe.empty())
    paths.push_back(absl::StrCat(DirName(exe), "/", kObjectName));
  for (const char* variable : {"RUNFILES_DIR", "TEST_SRCDIR"}) {
    if (const char* dir = std::getenv(variable)) {
      paths.push_back(absl::StrCat(dir, "/", kRunfilesPath, kObjectName));
    }
  }
  if (!exe.empty()) {
    paths.push_back(
        absl::StrCat(exe, ".runfiles/", kRunfilesPath, kObjectName));
  }
  return paths;
}

[[noreturn]] void Fail(const std::string& message) {
  std::fprintf(stderr, "FATAL: crypto provider: %s\n", message.c_str());
  std::fflush(stderr);
  std::_Exit(EXIT_FAILURE);
}

#ifdef VPN_SANITIZER_BUILD
constexpr int kOpenFlags = RTLD_NOW | RTLD_LOCAL;
#else
constexpr int kOpenFlags = RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND;
#endif

const Provider* Load() {
  if ((kOpenFlags & RTLD_DEEPBIND) == 0 &&
      dlsym(RTLD_DEFAULT, "OPENSSL_version_major") != nullptr) {
    Fail("OpenSSL is loaded (through gRPC?) and this sanitizer build cannot "
         "keep BoringSSL apart from it without RTLD_DEEPBIND; link the "
         "target without gRPC's libraries");
  }
  const std::vector<std::string> paths = CandidatePaths();
  for (const std::string& path : paths) {
    if (!Exists(path)) continue;
    void* handle = dlopen(path.c_str(), kOpenFlags);
    if (handle == nullptr) {
      Fail(absl::StrCat("cannot load ", path, ": ", dlerror()));
    }
    auto entry = reinterpret_cast<EntryPoint>(dlsym(handle, kEntryPoint));
    if (entry == nullptr) {
      Fail(absl::StrCat(path, " has no ", kEntryPoint, " entry point"));
    }
    const Provider* provider = entry(kProviderAbiVersion);
    if (provider == nullptr) {
      Fail(absl::StrCat(path, " was built for another interface version (want ",
                        kProviderAbiVersion, "); rebuild it"));
    }
    return provider;  // the object stays loaded for the process's lifetime
  }
  Fail(absl::StrCat(kObjectName,
                    " not found; looked in: ", absl::StrJoin(paths, ", "),
                    ". Put it next to the executable, add "
                    "//common/crypto:crypto to the target's deps (it carries "
                    "the object in runfiles), or set ",
                    kPathVariable, "."));
}

}  // namespace

const Provider& GetProvider() {
  static const Provider* const provider = Load();
  return *provider;
}

}  // namespace vpn::crypto
