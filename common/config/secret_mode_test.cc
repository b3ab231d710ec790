#include "common/config/secret_mode.h"

#include <unistd.h>

#include <algorithm>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace vpn::config {
namespace {

using ::testing::HasSubstr;

struct stat Mode(mode_t mode, gid_t gid) {
  struct stat st = {};
  st.st_mode = S_IFREG | mode;
  st.st_uid = 0;
  st.st_gid = gid;
  return st;
}

// A gid that is none of this process's groups.
gid_t ForeignGid() {
  std::vector<gid_t> mine(64);
  const int n = ::getgroups(64, mine.data());
  mine.resize(n < 0 ? 0 : n);
  mine.push_back(::getegid());
  for (gid_t g = 54321;; ++g) {
    if (std::find(mine.begin(), mine.end(), g) == mine.end()) return g;
  }
}

TEST(SecretModeTest, OwnerOnlyIsFine) {
  EXPECT_TRUE(CheckSecretMode(Mode(0600, ForeignGid())).ok());
  EXPECT_TRUE(CheckSecretMode(Mode(0400, ForeignGid())).ok());
}

// Kubernetes with fsGroup: root-owned, group = the pod's fsGroup, 0440.
TEST(SecretModeTest, GroupMayReadWhenItIsOurs) {
  EXPECT_TRUE(CheckSecretMode(Mode(0440, ::getegid())).ok());
  EXPECT_TRUE(CheckSecretMode(Mode(0640, ::getegid())).ok());
}

TEST(SecretModeTest, RefusesAForeignGroupAGroupWriterAndOthers) {
  absl::Status foreign = CheckSecretMode(Mode(0440, ForeignGid()));
  EXPECT_EQ(foreign.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(foreign.message(), HasSubstr("mode 0440 is looser than 0600"));
  EXPECT_FALSE(CheckSecretMode(Mode(0660, ::getegid())).ok());
  EXPECT_FALSE(CheckSecretMode(Mode(0444, ::getegid())).ok());
  absl::Status world = CheckSecretMode(Mode(0604, ::getegid()));
  EXPECT_THAT(world.message(), HasSubstr("others have access"));
}

}  // namespace
}  // namespace vpn::config
