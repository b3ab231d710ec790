// users_file: parsing and its errors (field and line, never a plaintext
// password), the mode check, a file user authenticating through a whole
// EAP-MSCHAPv2 conversation beside stored users, and reloads.
#include "auth-service/users/users_file.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "auth-service/eap/eap_session.h"
#include "auth-service/eap/mschapv2_server.h"
#include "auth-service/eap/test_peer.h"
#include "auth-service/users/user_store.h"
#include "common/crypto/mschapv2.h"
#include "common/store/embedded_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vpn::auth {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// RFC 2759 §9.2: the NT hash of "clientPass".
constexpr char kClientPassHash[] = "44EBBA8D5312B8D611474411F56989AE";

std::string NtHashHex(const std::string& password) {
  auto unicode = crypto::mschapv2::PasswordToUnicode(password);
  const crypto::SecretBytes hash =
      crypto::mschapv2::NtPasswordHash(crypto::GetProvider(), unicode->span());
  return absl::BytesToHexString(absl::string_view(
      reinterpret_cast<const char*>(hash.data()), hash.size()));
}

std::string TempDir() {
  std::string dir = std::string(std::getenv("TEST_TMPDIR")) + "/usersXXXXXX";
  EXPECT_NE(mkdtemp(dir.data()), nullptr);
  return dir;
}

// Writes a users file with mode 0600 and the given mtime (seconds).
void WriteUsers(const std::string& path, const std::string& yaml,
                int64_t mtime = 1700000000) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << yaml;
  chmod(path.c_str(), 0600);
  const struct timespec times[2] = {{mtime, 0}, {mtime, 0}};
  utimensat(AT_FDCWD, path.c_str(), times, 0);
}

std::string ParseError(const std::string& yaml) {
  auto users = FileUsers::Parse(yaml);
  EXPECT_FALSE(users.ok()) << yaml;
  return users.ok() ? "" : std::string(users.status().message());
}

TEST(FileUsersTest, ParsesNamesAndNtHashes) {
  auto users = FileUsers::Parse(absl::StrCat(
      "users:\n"
      "  - name: User\n"
      "    nt_hash: ", kClientPassHash, "\n"
      "  - {name: alice, nt_hash: ", NtHashHex("correct horse"), "}\n"));
  ASSERT_TRUE(users.ok()) << users.status();
  EXPECT_EQ((*users)->size(), 2u);
  EXPECT_EQ((*users)->Names(), (std::vector<std::string>{"User", "alice"}));
  const crypto::SecretBytes* hash = (*users)->Find("User");
  ASSERT_NE(hash, nullptr);
  EXPECT_EQ(absl::BytesToHexString(absl::string_view(
                reinterpret_cast<const char*>(hash->data()), hash->size())),
            "44ebba8d5312b8d611474411f56989ae");
  EXPECT_EQ((*users)->Find("user"), nullptr);  // names are case-sensitive
  EXPECT_TRUE(FileUsers::Parse("users: []\n").ok());
}

TEST(FileUsersTest, RefusesPlaintextPasswordsNamingTheFieldAndLine) {
  const std::string error = ParseError(absl::StrCat(
      "users:\n"
      "  - name: bob\n"
      "    nt_hash: ", kClientPassHash, "\n"
      "  - name: alice\n"
      "    password: hunter2\n"));
  EXPECT_THAT(error, HasSubstr("line 5: users[1].password: plaintext "
                               "passwords are not accepted"));
  EXPECT_THAT(error, HasSubstr("nt_hash"));
  EXPECT_THAT(error, Not(HasSubstr("hunter2")));
}

TEST(FileUsersTest, ErrorsNameTheFieldAndLine) {
  EXPECT_THAT(ParseError("users:\n  - name: a\n    nt_hash: 1234\n"),
              HasSubstr("line 3: users[0].nt_hash: must be 32 hex digits"));
  EXPECT_THAT(ParseError(absl::StrCat("users:\n  - name: a\n    nt_hash: ",
                                      std::string(31, 'a'), "z\n")),
              HasSubstr("users[0].nt_hash"));
  EXPECT_THAT(ParseError("users:\n  - name: a\n"),
              HasSubstr("users[0].nt_hash: required"));
  EXPECT_THAT(ParseError(absl::StrCat("users:\n  - nt_hash: ", kClientPassHash,
                                      "\n")),
              HasSubstr("users[0].name: required"));
  EXPECT_THAT(ParseError(absl::StrCat("users:\n  - name: a/b\n    nt_hash: ",
                                      kClientPassHash, "\n")),
              HasSubstr("line 2: users[0].name: user name must not contain"));
  EXPECT_THAT(
      ParseError(absl::StrCat("users:\n  - {name: a, nt_hash: ", kClientPassHash,
                              "}\n  - {name: a, nt_hash: ", kClientPassHash,
                              "}\n")),
      HasSubstr("line 3: users[1].name: 'a' is already on line 2"));
  EXPECT_THAT(ParseError(absl::StrCat("users:\n  - {name: a, nt_hash: ",
                                      kClientPassHash, ", admin: true}\n")),
              HasSubstr("users[0].admin: unknown field"));
  EXPECT_THAT(ParseError("user: []\n"), HasSubstr("line 1: user: unknown field"));
  EXPECT_THAT(ParseError("users: {}\n"), HasSubstr("users: must be a list"));
  EXPECT_THAT(ParseError("users:\n  - alice\n"),
              HasSubstr("line 2: users[0]: must be a mapping"));
  EXPECT_THAT(ParseError("users: [\n"), HasSubstr("line "));
  // An empty file is an error, not "no users".
  EXPECT_THAT(ParseError(""), HasSubstr("'users'"));
  // The hash is never echoed.
  EXPECT_THAT(ParseError(absl::StrCat("users:\n  - name: a\n    nt_hash: ",
                                      kClientPassHash, "00\n")),
              Not(HasSubstr(kClientPassHash)));
}

TEST(FileUsersTest, LoadWantsMode0600OrTighter) {
  const std::string path = TempDir() + "/users.yaml";
  WriteUsers(path, absl::StrCat("users: [{name: a, nt_hash: ", kClientPassHash,
                                "}]\n"));
  EXPECT_TRUE(FileUsers::Load(path).ok());
  chmod(path.c_str(), 0400);
  EXPECT_TRUE(FileUsers::Load(path).ok());
  chmod(path.c_str(), 0440);  // group read by one of our groups: a pod's fsGroup
  EXPECT_TRUE(FileUsers::Load(path).ok());
  chmod(path.c_str(), 0660);  // a group that may write
  auto loose = FileUsers::Load(path);
  EXPECT_THAT(std::string(loose.status().message()),
              HasSubstr("looser than 0600"));
  chmod(path.c_str(), 0600);
  WriteUsers(path, "users:\n  - name: a\n    password: x\n");
  auto bad = FileUsers::Load(path);
  EXPECT_THAT(std::string(bad.status().message()),
              HasSubstr(path + ": line 3: users[0].password"));
  EXPECT_TRUE(absl::IsNotFound(FileUsers::Load(path + ".missing").status()));
}

class FileUsersInStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store::EmbeddedOptions options;
    options.dir = TempDir();
    auto opened = store::EmbeddedStore::Open(options);
    ASSERT_TRUE(opened.ok()) << opened.status();
    store_ = std::move(*opened);
    users_ = std::make_unique<UserStore>(
        *store_, *store::Sealer::FromKey(crypto::Bytes(32, 7)));
    sessions_ = std::make_unique<eap::SessionManager>(
        crypto::GetProvider(),
        [this](const eap::PeerInfo&) {
          return std::make_unique<eap::MsChapV2Server>(
              crypto::GetProvider(), *users_, eap::MsChapV2Options());
        },
        eap::SessionOptions());
  }

  void SetFile(const std::string& yaml) {
    auto users = FileUsers::Parse(yaml);
    ASSERT_TRUE(users.ok()) << users.status();
    users_->SetFileUsers(*users);
  }

  eap::Result Converse(eap::testing::TestPeer& peer) {
    absl::StatusOr<eap::Result> result = sessions_->Start({});
    EXPECT_TRUE(result.ok());
    eap::Result last = std::move(*result);
    for (int i = 0; i < 8 && last.outcome == eap::Result::Outcome::kContinue;
         ++i) {
      absl::StatusOr<crypto::Bytes> answer = peer.Answer(last.message);
      EXPECT_TRUE(answer.ok()) << answer.status();
      if (!answer.ok()) break;
      last = sessions_->Round(last.session, *answer);
    }
    return last;
  }

  std::unique_ptr<store::EmbeddedStore> store_;
  std::unique_ptr<UserStore> users_;
  std::unique_ptr<eap::SessionManager> sessions_;
};

TEST_F(FileUsersInStoreTest, FileUserAuthenticatesThroughAWholeConversation) {
  SetFile(absl::StrCat("users:\n  - name: User\n    nt_hash: ", kClientPassHash,
                       "\n"));
  eap::testing::TestPeer peer("User", "CORP\\User", "clientPass");
  eap::Result done = Converse(peer);
  ASSERT_EQ(done.outcome, eap::Result::Outcome::kSuccess);
  EXPECT_EQ(done.identity, "User");
  EXPECT_TRUE(peer.server_authenticated());
  ASSERT_EQ(done.msk.size(), 64u);

  eap::testing::TestPeer wrong("User", "User", "clientPasss");
  EXPECT_EQ(Converse(wrong).outcome, eap::Result::Outcome::kFailure);
}

TEST_F(FileUsersInStoreTest, FileAndApiUsersLiveSideBySide) {
  ASSERT_TRUE(users_->Put("api", "api-pw").ok());
  ASSERT_TRUE(users_->Put("both", "stored-pw").ok());
  SetFile(absl::StrCat("users:\n"
                       "  - {name: both, nt_hash: ", NtHashHex("file-pw"), "}\n"
                       "  - {name: filed, nt_hash: ", NtHashHex("f-pw"), "}\n"));

  // The file user shadows the stored one of the same name.
  eap::testing::TestPeer file_pw("both", "both", "file-pw");
  EXPECT_EQ(Converse(file_pw).outcome, eap::Result::Outcome::kSuccess);
  eap::testing::TestPeer stored_pw("both", "both", "stored-pw");
  EXPECT_EQ(Converse(stored_pw).outcome, eap::Result::Outcome::kFailure);
  eap::testing::TestPeer api("api", "api", "api-pw");
  EXPECT_EQ(Converse(api).outcome, eap::Result::Outcome::kSuccess);

  auto listed = users_->List();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 3u);
  EXPECT_EQ((*listed)[0].name, "api");
  EXPECT_FALSE((*listed)[0].from_file);
  EXPECT_EQ((*listed)[1].name, "both");
  EXPECT_TRUE((*listed)[1].from_file);
  EXPECT_EQ((*listed)[2].name, "filed");
  EXPECT_TRUE((*listed)[2].from_file);

  // The API cannot change file users.
  EXPECT_EQ(users_->Put("filed", "x").code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(users_->Delete("filed").message()),
              HasSubstr("managed by users_file"));
  EXPECT_EQ(users_->PutNtHash("both", crypto::Bytes(16)).code(),
            absl::StatusCode::kFailedPrecondition);

  // Without the file, the stored users are as they were.
  users_->SetFileUsers(nullptr);
  eap::testing::TestPeer stored_again("both", "both", "stored-pw");
  EXPECT_EQ(Converse(stored_again).outcome, eap::Result::Outcome::kSuccess);
  EXPECT_EQ(users_->List()->size(), 2u);
}

class UsersFileWatcherTest : public FileUsersInStoreTest {
 protected:
  void MakeWatcher() {
    path_ = TempDir() + "/users.yaml";
    UsersFileWatcher::Observer observer;
    observer.on_reload = [this](bool ok) { ++(ok ? reloads_ : errors_); };
    observer.on_users = [this](size_t n) { count_ = n; };
    watcher_ = std::make_unique<UsersFileWatcher>(
        path_,
        [this](std::shared_ptr<const FileUsers> users) {
          users_->SetFileUsers(std::move(users));
        },
        observer, [this] { return now_; });
  }

  bool Authenticates(const std::string& user, const std::string& password) {
    eap::testing::TestPeer peer(user, user, password);
    return Converse(peer).outcome == eap::Result::Outcome::kSuccess;
  }

  std::string path_;
  absl::Time now_ = absl::FromUnixSeconds(1800000000);  // files are older
  std::unique_ptr<UsersFileWatcher> watcher_;
  int reloads_ = 0;
  int errors_ = 0;
  size_t count_ = 0;
};

TEST_F(UsersFileWatcherTest, ReloadsAddUpdateAndRemoveFileUsersOnly) {
  MakeWatcher();
  ASSERT_TRUE(users_->Put("api", "api-pw").ok());
  WriteUsers(path_, absl::StrCat("users:\n  - {name: alice, nt_hash: ",
                                 NtHashHex("a1"), "}\n"),
             1700000000);
  ASSERT_TRUE(watcher_->Load().ok());
  EXPECT_EQ(count_, 1u);
  EXPECT_TRUE(Authenticates("alice", "a1"));

  watcher_->Poll();  // unchanged
  EXPECT_EQ(reloads_, 0);

  // alice's password changes and bob arrives.
  WriteUsers(path_, absl::StrCat("users:\n  - {name: alice, nt_hash: ",
                                 NtHashHex("a2"), "}\n  - {name: bob, nt_hash: ",
                                 NtHashHex("b1"), "}\n"),
             1700000001);
  watcher_->Poll();
  EXPECT_EQ(reloads_, 1);
  EXPECT_EQ(count_, 2u);
  EXPECT_FALSE(Authenticates("alice", "a1"));
  EXPECT_TRUE(Authenticates("alice", "a2"));
  EXPECT_TRUE(Authenticates("bob", "b1"));

  // Touched with the same content: nothing to apply.
  WriteUsers(path_, absl::StrCat("users:\n  - {name: alice, nt_hash: ",
                                 NtHashHex("a2"), "}\n  - {name: bob, nt_hash: ",
                                 NtHashHex("b1"), "}\n"),
             1700000002);
  watcher_->Poll();
  EXPECT_EQ(reloads_, 1);

  // alice leaves; the API user is untouched throughout.
  WriteUsers(path_, absl::StrCat("users:\n  - {name: bob, nt_hash: ",
                                 NtHashHex("b1"), "}\n"),
             1700000003);
  watcher_->Poll();
  EXPECT_EQ(reloads_, 2);
  EXPECT_FALSE(Authenticates("alice", "a2"));
  EXPECT_TRUE(Authenticates("bob", "b1"));
  EXPECT_TRUE(Authenticates("api", "api-pw"));
  EXPECT_EQ(users_->List()->size(), 2u);
}

TEST_F(UsersFileWatcherTest, BadFileKeepsThePreviousUsersAndIsReportedOnce) {
  MakeWatcher();
  const std::string good = absl::StrCat("users:\n  - {name: alice, nt_hash: ",
                                        NtHashHex("a1"), "}\n");
  WriteUsers(path_, good, 1700000000);
  ASSERT_TRUE(watcher_->Load().ok());

  WriteUsers(path_, "users:\n  - {name: alice, password: a1}\n", 1700000001);
  watcher_->Poll();
  watcher_->Poll();
  EXPECT_EQ(errors_, 1);
  EXPECT_TRUE(Authenticates("alice", "a1"));

  chmod(path_.c_str(), 0644);  // a looser mode is refused too
  WriteUsers(path_, good, 1700000002);
  chmod(path_.c_str(), 0644);
  watcher_->Poll();
  EXPECT_EQ(errors_, 2);
  EXPECT_TRUE(Authenticates("alice", "a1"));

  std::remove(path_.c_str());  // gone: keep the users
  watcher_->Poll();
  EXPECT_EQ(errors_, 3);
  EXPECT_TRUE(Authenticates("alice", "a1"));

  WriteUsers(path_, absl::StrCat("users:\n  - {name: alice, nt_hash: ",
                                 NtHashHex("a3"), "}\n"),
             1700000003);
  watcher_->Poll();
  EXPECT_EQ(reloads_, 1);
  EXPECT_TRUE(Authenticates("alice", "a3"));
}

// The stamp (inode, size, mtime) decides whether to read the file again,
// except that a file modified within the last 2 s is read again at the next
// poll: a write in progress may have been read half-way.
TEST_F(UsersFileWatcherTest, RecentlyModifiedFilesAreReadAgain) {
  MakeWatcher();
  const std::string one = absl::StrCat("users: [{name: a, nt_hash: ",
                                       kClientPassHash, "}]\n");
  std::string none = "users: [] #";
  none += std::string(one.size() - none.size() - 1, 'x') + "\n";
  ASSERT_EQ(none.size(), one.size());
  const int64_t mtime = 1700000000;
  now_ = absl::FromUnixSeconds(mtime) + absl::Milliseconds(500);
  WriteUsers(path_, none, mtime);
  ASSERT_TRUE(watcher_->Load().ok());
  EXPECT_EQ(count_, 0u);
  // Same inode, size and mtime, other content: read again while recent.
  WriteUsers(path_, one, mtime);
  watcher_->Poll();
  EXPECT_EQ(count_, 1u);
  now_ += absl::Seconds(10);
  WriteUsers(path_, none, mtime);
  watcher_->Poll();  // the last read was recent: once more
  EXPECT_EQ(count_, 0u);
  WriteUsers(path_, one, mtime);
  watcher_->Poll();  // settled and unchanged stamp: not read
  EXPECT_EQ(count_, 0u);
}

}  // namespace
}  // namespace vpn::auth
