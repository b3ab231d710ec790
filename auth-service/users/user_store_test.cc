#include "auth-service/users/user_store.h"

#include <cstdlib>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "auth-service/users/user_record.pb.h"
#include "common/store/embedded_store.h"
#include "gtest/gtest.h"

namespace vpn::auth {
namespace {

std::string ToHex(crypto::ByteSpan bytes) {
  return absl::BytesToHexString(absl::string_view(
      reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

std::unique_ptr<store::Sealer> MakeSealer(uint8_t fill) {
  const crypto::Bytes key(32, fill);
  return *store::Sealer::FromKey(key);
}

class UserStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string dir = std::string(std::getenv("TEST_TMPDIR")) + "/usersXXXXXX";
    ASSERT_NE(mkdtemp(dir.data()), nullptr);
    store::EmbeddedOptions options;
    options.dir = dir;
    auto opened = store::EmbeddedStore::Open(options);
    ASSERT_TRUE(opened.ok()) << opened.status();
    store_ = std::move(*opened);
    users_ = std::make_unique<UserStore>(*store_, MakeSealer(7));
  }

  std::unique_ptr<store::EmbeddedStore> store_;
  std::unique_ptr<UserStore> users_;
};

TEST_F(UserStoreTest, StoresOnlyTheSealedNtHash) {
  ASSERT_TRUE(users_->Put("User", "clientPass").ok());
  auto hash = users_->NtHash("User");
  ASSERT_TRUE(hash.ok()) << hash.status();
  // RFC 2759 §9.2 PasswordHash of "clientPass".
  EXPECT_EQ(ToHex(hash->span()), "44ebba8d5312b8d611474411f56989ae");

  auto raw = store_->Get("users/User");
  ASSERT_TRUE(raw.ok());
  const std::string hash_bytes(hash->span().begin(), hash->span().end());
  EXPECT_FALSE(absl::StrContains(raw->value, hash_bytes));
  EXPECT_FALSE(absl::StrContains(raw->value, "clientPass"));
  UserRecord record;
  ASSERT_TRUE(record.ParseFromString(raw->value));
  EXPECT_EQ(record.name(), "User");
  EXPECT_FALSE(record.sealed_keys().empty());
}

TEST_F(UserStoreTest, ListDeleteAndUnknownUsers) {
  ASSERT_TRUE(users_->Put("bob", "pw-b").ok());
  ASSERT_TRUE(users_->Put("alice", "pw-a").ok());
  ASSERT_TRUE(users_->Put("alice", "pw-a2").ok());  // replace
  auto listed = users_->List();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].name, "alice");
  EXPECT_EQ((*listed)[1].name, "bob");

  EXPECT_TRUE(users_->Delete("bob").ok());
  EXPECT_TRUE(absl::IsNotFound(users_->Delete("bob")));
  EXPECT_TRUE(absl::IsNotFound(users_->NtHash("bob").status()));
  EXPECT_TRUE(absl::IsNotFound(users_->NtHash("nobody").status()));
  EXPECT_TRUE(absl::IsNotFound(users_->NtHash("").status()));
  EXPECT_TRUE(absl::IsNotFound(users_->NtHash("a/b").status()));
  EXPECT_EQ(users_->List()->size(), 1u);
}

TEST_F(UserStoreTest, RejectsBadNamesAndPasswords) {
  for (const std::string& name :
       {std::string(""), std::string(257, 'a'), std::string("a/b"),
        std::string("DOM\\u"), std::string(" lead"), std::string("tab\t"),
        std::string("nul\0x", 5)}) {
    EXPECT_EQ(users_->Put(name, "pw").code(),
              absl::StatusCode::kInvalidArgument)
        << name;
  }
  EXPECT_FALSE(users_->Put("ok", "").ok());
  EXPECT_FALSE(users_->Put("ok", "\xff").ok());
  EXPECT_FALSE(users_->Put("ok", std::string(257, 'p')).ok());
  EXPECT_FALSE(users_->PutNtHash("ok", crypto::Bytes(15)).ok());
  EXPECT_TRUE(users_->Put("j\xc3\xbcrgen@example.com", "pw").ok());
}

TEST_F(UserStoreTest, DisabledUsersHaveNoCredentials) {
  ASSERT_TRUE(users_->Put("carol", "pw").ok());
  auto record = store::GetProto<UserRecord>(*store_, "users/carol");
  ASSERT_TRUE(record.ok());
  record->record.set_disabled(true);
  ASSERT_TRUE(store::PutProto(*store_, "users/carol", record->record).ok());
  EXPECT_TRUE(absl::IsNotFound(users_->NtHash("carol").status()));
  EXPECT_TRUE((*users_->List())[0].disabled);
}

// A sealed hash copied to another user's record, or opened with another
// key, does not open.
TEST_F(UserStoreTest, SealedHashesAreBoundToTheirRecordAndKey) {
  ASSERT_TRUE(users_->Put("dave", "pw-d").ok());
  ASSERT_TRUE(users_->Put("eve", "pw-e").ok());
  auto dave = store_->Get("users/dave");
  ASSERT_TRUE(store_->Put("users/eve", dave->value).ok());
  EXPECT_EQ(users_->NtHash("eve").status().code(), absl::StatusCode::kDataLoss);

  UserStore other_key(*store_, MakeSealer(8));
  EXPECT_EQ(other_key.NtHash("dave").status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_TRUE(users_->NtHash("dave").ok());
}

}  // namespace
}  // namespace vpn::auth
