// Checks key derivation against an independent implementation: Python's
// hmac module, run as a separate program.
#include "ike-service/sa/keymat.h"

#include <cstdio>

#include <gtest/gtest.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace vpn::ike {
namespace {

std::string Hex(crypto::ByteSpan bytes) {
  return absl::BytesToHexString(absl::string_view(
      reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

crypto::Bytes Pattern(size_t size, uint8_t seed) {
  crypto::Bytes out(size);
  for (size_t i = 0; i < size; ++i) out[i] = static_cast<uint8_t>(seed + 7 * i);
  return out;
}

// RFC 7296 §2.13/2.14 written out in Python.
constexpr char kReference[] = R"PY(
import hashlib, hmac, sys
h = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha384": hashlib.sha384,
     "sha512": hashlib.sha512}[sys.argv[1]]
ni, nr, gir = (bytes.fromhex(a) for a in sys.argv[2:5])
spis = bytes.fromhex(sys.argv[5])
total = int(sys.argv[6])
prf = lambda k, d: hmac.new(k, d, h).digest()
skeyseed = prf(ni + nr, gir)
out, t, i = b"", b"", 1
while len(out) < total:
    t = prf(skeyseed, t + ni + nr + spis + bytes([i]))
    out += t
    i += 1
print(out[:total].hex())
)PY";

std::string RunReference(const std::string& hash, crypto::ByteSpan ni,
                         crypto::ByteSpan nr, crypto::ByteSpan gir,
                         const std::string& spis, size_t total) {
  const std::string command = absl::StrCat(
      "python3 -c '", kReference, "' ", hash, " ", Hex(ni), " ", Hex(nr), " ",
      Hex(gir), " ", spis, " ", total);
  FILE* pipe = popen(command.c_str(), "r");
  std::string output;
  char buffer[4096];
  while (fgets(buffer, sizeof(buffer), pipe) != nullptr) output += buffer;
  pclose(pipe);
  while (!output.empty() && output.back() == '\n') output.pop_back();
  return output;
}

std::string Concat(const IkeSaKeys& k) {
  return absl::StrCat(Hex(k.sk_d.span()), Hex(k.sk_ai.span()), Hex(k.sk_ar.span()),
                      Hex(k.sk_ei.span()), Hex(k.sk_er.span()), Hex(k.sk_pi.span()),
                      Hex(k.sk_pr.span()));
}

TEST(KeymatTest, IkeSaKeysMatchAnIndependentImplementation) {
  const crypto::Bytes ni = Pattern(32, 1), nr = Pattern(32, 2), gir = Pattern(128, 3);
  struct Case {
    ipsec::TransformSet transforms;
    const char* hash;
    size_t total;
  };
  const Case cases[] = {
      // aes256-sha1-prfsha1: 3*20 + 2*20 + 2*32
      {{12, 256, 2, 2, 2, 0}, "sha1", 164},
      // aes128gcm16-prfsha256: 3*32 + 2*(16+4)
      {{20, 128, 5, 0, 19, 0}, "sha256", 136},
      // aes256gcm16-prfsha384
      {{20, 256, 6, 0, 20, 0}, "sha384", 216},
      // 3des-sha512-prfsha512: 3*64 + 2*64 + 2*24
      {{3, 0, 7, 14, 14, 0}, "sha512", 368},
  };
  for (const Case& c : cases) {
    absl::StatusOr<IkeSaKeys> keys = DeriveIkeSaKeys(
        c.transforms, ni, nr, gir, 0x0102030405060708ull, 0x1112131415161718ull);
    ASSERT_TRUE(keys.ok()) << keys.status();
    EXPECT_EQ(Concat(*keys), RunReference(c.hash, ni, nr, gir,
                                          "01020304050607081112131415161718",
                                          c.total))
        << c.transforms.ToString();
  }
}

TEST(KeymatTest, AeadKeysCarryTheSaltAndNoIntegrityKey) {
  const crypto::Bytes ni = Pattern(32, 1), nr = Pattern(32, 2), gir = Pattern(32, 3);
  auto keys = DeriveIkeSaKeys({20, 256, 5, 0, 31, 0}, ni, nr, gir, 1, 2);
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(keys->sk_ei.size(), 36u);
  EXPECT_TRUE(keys->sk_ai.empty());
  EXPECT_EQ(keys->sk_pi.size(), 32u);
}

TEST(KeymatTest, ChildKeysSplitInRfcOrder) {
  const crypto::Bytes sk_d = Pattern(20, 9), ni = Pattern(32, 1), nr = Pattern(32, 2);
  auto keys = DeriveChildSaKeys(2, sk_d, {12, 128, 0, 2, 0, 0}, {}, ni, nr);
  ASSERT_TRUE(keys.ok()) << keys.status();
  // The same prf+ stream as KEYMAT = prf+(SK_d, Ni | Nr).
  auto prf = crypto::GetProvider().NewPrf(crypto::PrfAlgorithm::kHmacSha1, sk_d);
  ASSERT_TRUE(prf.ok());
  crypto::Bytes seed(ni);
  seed.insert(seed.end(), nr.begin(), nr.end());
  auto stream = (*prf)->PrfPlus(seed, 2 * (16 + 20));
  ASSERT_TRUE(stream.ok());
  EXPECT_EQ(Hex(keys->encryption_i.span()), Hex(stream->span().subspan(0, 16)));
  EXPECT_EQ(Hex(keys->integrity_i.span()), Hex(stream->span().subspan(16, 20)));
  EXPECT_EQ(Hex(keys->encryption_r.span()), Hex(stream->span().subspan(36, 16)));
  EXPECT_EQ(Hex(keys->integrity_r.span()), Hex(stream->span().subspan(52, 20)));
}

TEST(KeymatTest, RejectsUnsupportedTransforms) {
  const crypto::Bytes n = Pattern(16, 1);
  EXPECT_FALSE(DeriveIkeSaKeys({12, 256, 1, 2, 2, 0}, n, n, n, 1, 2).ok());
  EXPECT_FALSE(DeriveChildSaKeys(2, n, {99, 0, 0, 2, 0, 0}, {}, n, n).ok());
}

}  // namespace
}  // namespace vpn::ike
