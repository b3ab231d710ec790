#include "common/fs/read_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace vpn::fs {
namespace {

absl::Status Failure(const std::string& path, int error) {
  const std::string message = absl::StrCat(path, ": ", std::strerror(error));
  return error == ENOENT ? absl::NotFoundError(message)
         : error == EACCES ? absl::PermissionDeniedError(message)
                           : absl::FailedPreconditionError(message);
}

}  // namespace

absl::StatusOr<std::string> ReadFile(const std::string& path, size_t max_size) {
  if (path.empty()) return absl::InvalidArgumentError("no file name given");
  // O_NONBLOCK: opening a FIFO would otherwise wait for a writer before
  // fstat could refuse it; it changes nothing for a regular file.
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return Failure(path, errno);
  absl::Cleanup close_fd = [fd] { close(fd); };
  struct stat st;
  if (fstat(fd, &st) != 0) return Failure(path, errno);
  if (S_ISDIR(st.st_mode)) return Failure(path, EISDIR);
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(path, ": not a regular file"));
  }
  std::string contents;
  char buffer[1 << 14];
  while (true) {
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Failure(path, errno);
    if (n == 0) return contents;
    if (contents.size() + static_cast<size_t>(n) > max_size) {
      return absl::FailedPreconditionError(
          absl::StrCat(path, ": larger than ", max_size, " bytes"));
    }
    contents.append(buffer, static_cast<size_t>(n));
  }
}

}  // namespace vpn::fs
