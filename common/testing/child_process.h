// Starts a real program for an integration test and watches its output.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace vpn::testing {

class ChildProcess {
 public:
  // Runs argv[0] with the arguments; stdout and stderr are captured together.
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Start(
      const std::vector<std::string>& argv);

  // Kills the process (SIGKILL) if it still runs.
  ~ChildProcess();

  // Waits for an output line that contains `needle` and returns it.
  absl::StatusOr<std::string> WaitForLine(absl::string_view needle,
                                          absl::Duration timeout);

  // All output so far.
  std::string output() const;

  pid_t pid() const { return pid_; }
  void Signal(int signal_number);

  // Waits for the exit; returns the exit code, or 128 + signal number.
  absl::StatusOr<int> Wait(absl::Duration timeout);

 private:
  ChildProcess(pid_t pid, int output_fd);
  void ReadOutput();

  const pid_t pid_;
  const int output_fd_;
  bool reaped_ = false;
  int exit_code_ = -1;
  mutable absl::Mutex mu_;
  std::string output_ ABSL_GUARDED_BY(mu_);
  bool output_closed_ ABSL_GUARDED_BY(mu_) = false;
  std::thread reader_;
};

// Absolute path of a file in the test's runfiles, from its workspace-relative
// path (e.g. "auth-service/auth-service").
std::string RunfilePath(absl::string_view path);

// A fresh directory under TEST_TMPDIR (or /tmp).
std::string MakeTempDir(absl::string_view name);

// Runs a shell command; returns its exit code. For test set-up (openssl, ...).
int RunCommand(const std::string& command);

}  // namespace vpn::testing
