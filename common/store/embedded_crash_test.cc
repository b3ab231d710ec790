// kill -9 durability: a child process writes and reports every acknowledged
// write on a pipe; it is SIGKILLed mid-stream and restarted, three times.
// Every acknowledged write must be present with the revision it was acked
// at, and revisions must keep growing across restarts.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <string>

#include <gtest/gtest.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/store/embedded_store.h"

namespace vpn::store {
namespace {

struct Acks {
  std::map<std::string, int64_t> revision_by_key;
  int64_t min_revision = INT64_MAX;
  int64_t max_revision = 0;
};

// Runs the child until it has acked at least `kill_after` writes, kills it
// with SIGKILL and collects every ack it printed.
Acks RunAndKill(const std::string& dir, int round, int kill_after) {
  std::string child = absl::StrCat(getenv("TEST_SRCDIR"),
                                   "/vpn_gateway/common/store/wal_writer_child");
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    std::string r = absl::StrCat(round);
    execl(child.c_str(), child.c_str(), dir.c_str(), r.c_str(), nullptr);
    _exit(127);
  }
  close(fds[1]);
  FILE* in = fdopen(fds[0], "r");
  Acks acks;
  char line[512];
  int count = 0;
  bool killed = false;
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (fgets(line, sizeof(line), in) != nullptr) {
    std::vector<std::string> parts = absl::StrSplit(absl::StripAsciiWhitespace(line), ' ');
    if (parts.size() == 3 && parts[0] == "ack") {
      int64_t rev;
      EXPECT_TRUE(absl::SimpleAtoi(parts[2], &rev));
      acks.revision_by_key[parts[1]] = rev;
      acks.min_revision = std::min(acks.min_revision, rev);
      acks.max_revision = std::max(acks.max_revision, rev);
      ++count;
    }
    if (!killed && (count >= kill_after || absl::Now() > deadline)) {
      kill(pid, SIGKILL);  // mid-stream: writers are in flight
      killed = true;
    }
  }
  fclose(in);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      << "child did not die by SIGKILL, status " << status;
  return acks;
}

TEST(EmbeddedCrash, AcknowledgedWritesSurviveKill9) {
  std::string dir = absl::StrCat(getenv("TEST_TMPDIR"), "/crash");
  std::vector<Acks> rounds;
  const int kRounds = 3;
  for (int round = 0; round < kRounds; ++round) {
    rounds.push_back(RunAndKill(dir, round, 400 + 300 * round));
    ASSERT_GT(rounds.back().revision_by_key.size(), 100u) << "round " << round;
    if (round > 0) {
      // Revisions stay monotonic across a crash and restart.
      EXPECT_GT(rounds[round].min_revision, rounds[round - 1].max_revision);
    }
  }
  EmbeddedOptions options;
  options.dir = dir;
  auto store = EmbeddedStore::Open(options);
  ASSERT_TRUE(store.ok()) << store.status();
  for (const std::string& note : (*store)->recovery_notes()) {
    std::printf("recovery note: %s\n", note.c_str());
  }
  size_t checked = 0;
  for (const Acks& acks : rounds) {
    for (const auto& [key, revision] : acks.revision_by_key) {
      auto kv = (*store)->Get(key);
      ASSERT_TRUE(kv.ok()) << "acknowledged write lost: " << key << " @" << revision;
      EXPECT_EQ(kv->mod_revision, revision) << key;
      EXPECT_EQ(kv->value.size(), 600u);
      ++checked;
    }
  }
  EXPECT_GE((*store)->revision(), rounds.back().max_revision);
  // Unacknowledged writes may or may not be there, but nothing else is.
  auto all = (*store)->List("crash/");
  ASSERT_TRUE(all.ok());
  EXPECT_GE(all->kvs.size(), checked);
  std::printf("checked %zu acknowledged writes over %d kill -9 rounds; %zu keys "
              "present\n", checked, kRounds, all->kvs.size());
}

}  // namespace
}  // namespace vpn::store
