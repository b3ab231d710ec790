// Fuzz target for users_file: any bytes as the file's YAML. It may be
// refused, with an error naming the line and field, but never crash; what is
// accepted holds one 16-byte NT hash per distinct name.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "absl/strings/string_view.h"
#include "auth-service/users/users_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view yaml(reinterpret_cast<const char*>(data), size);
  auto users = vpn::auth::FileUsers::Parse(yaml);
  if (!users.ok()) {
    if (users.status().message().empty()) std::abort();
    return 0;
  }
  const std::vector<std::string> names = (*users)->Names();
  if (names.size() != (*users)->size()) std::abort();
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0 && !(names[i - 1] < names[i])) std::abort();  // sorted, distinct
    const auto* hash = (*users)->Find(names[i]);
    if (hash == nullptr || hash->size() != 16) std::abort();
  }
  return 0;
}
