#include "common/store/sealer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/store/test_record.pb.h"

namespace vpn::store {
namespace {

std::string WriteKeyFile(absl::string_view name, absl::string_view bytes, mode_t mode) {
  std::string path = absl::StrCat(getenv("TEST_TMPDIR"), "/", name);
  unlink(path.c_str());
  { std::ofstream(path, std::ios::binary) << bytes; }
  chmod(path.c_str(), mode);
  return path;
}

std::string Key() { return std::string(32, '\x07'); }

TEST(Sealer, SealOpenRoundTripAndFormat) {
  auto sealer = Sealer::FromKeyFile(WriteKeyFile("k1", Key(), 0600), 0x01020304);
  ASSERT_TRUE(sealer.ok()) << sealer.status();
  auto blob = (*sealer)->Seal("/sa/1", "secret keying material");
  ASSERT_TRUE(blob.ok()) << blob.status();
  EXPECT_EQ(blob->size(), Sealer::kHeaderSize + 22 + Sealer::kTagSize);
  EXPECT_EQ((*blob)[0], 2);
  EXPECT_EQ(blob->substr(1, 4), std::string("\x01\x02\x03\x04", 4));
  EXPECT_FALSE(absl::StrContains(*blob, "secret"));
  auto plain = (*sealer)->Open("/sa/1", *blob);
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(*plain, "secret keying material");
  // Fresh nonce each time.
  EXPECT_NE(*(*sealer)->Seal("/sa/1", "x"), *(*sealer)->Seal("/sa/1", "x"));
}

TEST(Sealer, BlobIsBoundToItsRecordAndTamperEvident) {
  auto sealer = Sealer::FromKey(crypto::ByteSpan(
      reinterpret_cast<const uint8_t*>(Key().data()), 32));
  ASSERT_TRUE(sealer.ok());
  std::string blob = *(*sealer)->Seal("/sa/1", "k");
  EXPECT_EQ((*sealer)->Open("/sa/2", blob).status().code(), absl::StatusCode::kDataLoss);
  for (size_t i = 5; i < blob.size(); ++i) {
    std::string bad = blob;
    bad[i] ^= 1;
    EXPECT_EQ((*sealer)->Open("/sa/1", bad).status().code(), absl::StatusCode::kDataLoss) << i;
  }
  EXPECT_EQ((*sealer)->Open("/sa/1", blob.substr(0, 20)).status().code(),
            absl::StatusCode::kDataLoss);
  std::string other_version = blob;
  other_version[0] = 1;  // key-only AAD: no longer opens
  EXPECT_EQ((*sealer)->Open("/sa/1", other_version).status().code(),
            absl::StatusCode::kFailedPrecondition);
  std::string other_key_id = blob;
  other_key_id[4] = 9;
  EXPECT_EQ((*sealer)->Open("/sa/1", other_key_id).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // Another key cannot open it.
  auto other = Sealer::FromKey(crypto::ByteSpan(
      reinterpret_cast<const uint8_t*>(std::string(32, 'z').data()), 32));
  EXPECT_EQ((*other)->Open("/sa/1", blob).status().code(), absl::StatusCode::kDataLoss);
}

TEST(Sealer, KeyFileChecks) {
  auto loose = Sealer::FromKeyFile(WriteKeyFile("loose", Key(), 0644));
  ASSERT_FALSE(loose.ok());
  EXPECT_TRUE(absl::StrContains(loose.status().message(), "mode 0644")) << loose.status();
  EXPECT_TRUE(absl::StrContains(loose.status().message(), "loose")) << loose.status();
  // A group that may write is refused; one of our groups may read (a pod's
  // fsGroup: the Secret is root-owned, mode 0440).
  auto group_write = Sealer::FromKeyFile(WriteKeyFile("group-write", Key(), 0660));
  EXPECT_FALSE(group_write.ok());
  auto fs_group = Sealer::FromKeyFile(WriteKeyFile("fs-group", Key(), 0440));
  EXPECT_TRUE(fs_group.ok()) << fs_group.status();
  auto short_key = Sealer::FromKeyFile(WriteKeyFile("short", "0123456789", 0600));
  ASSERT_FALSE(short_key.ok());
  EXPECT_TRUE(absl::StrContains(short_key.status().message(), "holds 10 bytes"))
      << short_key.status();
  auto long_key = Sealer::FromKeyFile(WriteKeyFile("long", std::string(33, 'x'), 0400));
  EXPECT_FALSE(long_key.ok());
  auto missing = Sealer::FromKeyFile("/nonexistent/key");
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(absl::StrContains(missing.status().message(), "/nonexistent/key"));
  EXPECT_TRUE(Sealer::FromKeyFile(WriteKeyFile("ok", Key(), 0400)).ok());
  // Messages never carry key bytes.
  EXPECT_FALSE(absl::StrContains(short_key.status().message(), "0123456789"));
}

TEST(Sealer, RecordHelpers) {
  auto sealer = Sealer::FromKey(crypto::ByteSpan(
      reinterpret_cast<const uint8_t*>(Key().data()), 32));
  testing::TestSaKeys keys;
  keys.set_sk_ei("ei-key");
  keys.set_sk_er("er-key");
  testing::TestSa sa;
  sa.set_name("sa");
  ASSERT_TRUE(SealInto(**sealer, "/sa/9", keys, &sa).ok());
  EXPECT_FALSE(absl::StrContains(sa.SerializeAsString(), "ei-key"));
  auto back = OpenFrom<testing::TestSaKeys>(**sealer, "/sa/9", sa);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->sk_er(), "er-key");
  EXPECT_EQ(OpenFrom<testing::TestSaKeys>(**sealer, "/sa/8", sa).status().code(),
            absl::StatusCode::kDataLoss);
  // The whole record is bound: a field edited around the blob breaks it.
  testing::TestSa renamed = sa;
  renamed.set_name("other");
  EXPECT_EQ(OpenFrom<testing::TestSaKeys>(**sealer, "/sa/9", renamed).status().code(),
            absl::StatusCode::kDataLoss);
}

TEST(Sealer, BoundDataIsAuthenticatedAndKeptApartFromTheKey) {
  auto sealer = Sealer::FromKey(crypto::ByteSpan(
      reinterpret_cast<const uint8_t*>(Key().data()), 32));
  std::string blob = *(*sealer)->Seal("/sa/1", "k", "fields");
  EXPECT_TRUE((*sealer)->Open("/sa/1", blob, "fields").ok());
  EXPECT_EQ((*sealer)->Open("/sa/1", blob, "fieldz").status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ((*sealer)->Open("/sa/1", blob).status().code(), absl::StatusCode::kDataLoss);
  // The key's length is in the AAD: "/sa/1" + "fields" is not "/sa/1f" + "ields".
  EXPECT_EQ((*sealer)->Open("/sa/1f", blob, "ields").status().code(),
            absl::StatusCode::kDataLoss);
}

TEST(Sealer, PathTagsVerifyInConstantTimeAndDependOnTheKey) {
  auto sealer = Sealer::FromKey(crypto::ByteSpan(
      reinterpret_cast<const uint8_t*>(Key().data()), 32));
  auto other = Sealer::FromKey(crypto::ByteSpan(
      reinterpret_cast<const uint8_t*>(std::string(32, 'z').data()), 32));
  const std::string message = "path";
  const crypto::ByteSpan parts[] = {
      crypto::ByteSpan(reinterpret_cast<const uint8_t*>(message.data()), message.size())};
  uint8_t tag[Sealer::kPathTagSize];
  ASSERT_TRUE((*sealer)->PathTag(parts, absl::MakeSpan(tag)).ok());
  EXPECT_TRUE((*sealer)->VerifyPathTag(parts, crypto::ByteSpan(tag, sizeof(tag))));
  EXPECT_FALSE((*other)->VerifyPathTag(parts, crypto::ByteSpan(tag, sizeof(tag))));
  EXPECT_FALSE((*sealer)->VerifyPathTag(parts, crypto::ByteSpan(tag, sizeof(tag) - 1)));
  tag[0] ^= 1;
  EXPECT_FALSE((*sealer)->VerifyPathTag(parts, crypto::ByteSpan(tag, sizeof(tag))));
  uint8_t wrong_size[8];
  EXPECT_FALSE((*sealer)->PathTag(parts, absl::MakeSpan(wrong_size)).ok());
}

}  // namespace
}  // namespace vpn::store
