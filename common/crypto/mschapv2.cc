#include "common/crypto/mschapv2.h"

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"

namespace vpn::crypto::mschapv2 {
namespace {

// RFC 2759 §8.7 Magic1/Magic2 and RFC 3079 §3.4 Magic1..3 and pads.
constexpr std::string_view kAuthMagic1 =
    "Magic server to client signing constant";
constexpr std::string_view kAuthMagic2 =
    "Pad to make it do more than one iteration";
constexpr std::string_view kMasterKeyMagic = "This is the MPPE Master Key";
constexpr std::string_view kClientSendMagic =  // Magic2
    "On the client side, this is the send key; "
    "on the server side, it is the receive key.";
constexpr std::string_view kClientReceiveMagic =  // Magic3
    "On the client side, this is the receive key; "
    "on the server side, it is the send key.";

}  // namespace

absl::StatusOr<SecretBytes> PasswordToUnicode(std::string_view utf8) {
  std::vector<uint16_t> units;
  for (size_t i = 0; i < utf8.size();) {
    const uint8_t lead = utf8[i];
    uint32_t code = 0;
    size_t extra = 0;
    if (lead < 0x80) {
      code = lead;
    } else if ((lead & 0xE0) == 0xC0) {
      code = lead & 0x1F;
      extra = 1;
    } else if ((lead & 0xF0) == 0xE0) {
      code = lead & 0x0F;
      extra = 2;
    } else if ((lead & 0xF8) == 0xF0) {
      code = lead & 0x07;
      extra = 3;
    } else {
      return absl::InvalidArgumentError("password is not valid UTF-8");
    }
    if (i + extra >= utf8.size()) {
      return absl::InvalidArgumentError("password is not valid UTF-8");
    }
    for (size_t k = 1; k <= extra; ++k) {
      const uint8_t next = utf8[i + k];
      if ((next & 0xC0) != 0x80) {
        return absl::InvalidArgumentError("password is not valid UTF-8");
      }
      code = (code << 6) | (next & 0x3F);
    }
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (code < kMin[extra] || code > 0x10FFFF ||
        (code >= 0xD800 && code <= 0xDFFF)) {
      return absl::InvalidArgumentError("password is not valid UTF-8");
    }
    if (code >= 0x10000) {
      code -= 0x10000;
      units.push_back(static_cast<uint16_t>(0xD800 | (code >> 10)));
      units.push_back(static_cast<uint16_t>(0xDC00 | (code & 0x3FF)));
    } else {
      units.push_back(static_cast<uint16_t>(code));
    }
    i += extra + 1;
  }
  if (units.size() > 256) {
    SecureZero(units.data(), units.size() * sizeof(uint16_t));
    return absl::InvalidArgumentError("password longer than 256 characters");
  }
  SecretBytes out(units.size() * 2);
  for (size_t i = 0; i < units.size(); ++i) {
    out.data()[2 * i] = static_cast<uint8_t>(units[i] & 0xFF);
    out.data()[2 * i + 1] = static_cast<uint8_t>(units[i] >> 8);
  }
  SecureZero(units.data(), units.size() * sizeof(uint16_t));
  return out;
}

SecretBytes NtPasswordHash(const Provider& provider,
                           ByteSpan unicode_password) {
  Bytes hash = provider.Md4(unicode_password);
  SecretBytes out(hash);
  SecureZero(hash.data(), hash.size());
  return out;
}

SecretBytes HashNtPasswordHash(const Provider& provider,
                               ByteSpan password_hash) {
  return NtPasswordHash(provider, password_hash);
}

absl::StatusOr<Bytes> ChallengeHash(const Provider& provider,
                                    ByteSpan peer_challenge,
                                    ByteSpan authenticator_challenge,
                                    std::string_view user_name) {
  if (peer_challenge.size() != 16 || authenticator_challenge.size() != 16) {
    return absl::InvalidArgumentError("MSCHAPv2 challenges are 16 bytes");
  }
  Bytes digest = provider.Hash(
      HashAlgorithm::kSha1,
      {peer_challenge, authenticator_challenge, AsBytes(user_name)});
  digest.resize(8);
  return digest;
}

absl::StatusOr<Bytes> ChallengeResponse(const Provider& provider,
                                        ByteSpan challenge,
                                        ByteSpan password_hash) {
  if (challenge.size() != 8 || password_hash.size() != 16) {
    return absl::InvalidArgumentError(
        "ChallengeResponse needs an 8-byte challenge and a 16-byte hash");
  }
  SecretBytes z_password_hash(21);  // zero-padded to 21 bytes
  std::memcpy(z_password_hash.data(), password_hash.data(), 16);
  Bytes response;
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<Bytes> block = provider.DesEncryptBlock(
        z_password_hash.span().subspan(7 * i, 7), challenge);
    if (!block.ok()) return block.status();
    response.insert(response.end(), block->begin(), block->end());
  }
  return response;
}

absl::StatusOr<Bytes> GenerateNtResponse(const Provider& provider,
                                         ByteSpan authenticator_challenge,
                                         ByteSpan peer_challenge,
                                         std::string_view user_name,
                                         ByteSpan password_hash) {
  absl::StatusOr<Bytes> challenge = ChallengeHash(
      provider, peer_challenge, authenticator_challenge, user_name);
  if (!challenge.ok()) return challenge.status();
  return ChallengeResponse(provider, *challenge, password_hash);
}

bool VerifyNtResponse(const Provider& provider,
                      ByteSpan authenticator_challenge, ByteSpan peer_challenge,
                      std::string_view user_name, ByteSpan password_hash,
                      ByteSpan nt_response) {
  absl::StatusOr<Bytes> expected =
      GenerateNtResponse(provider, authenticator_challenge, peer_challenge,
                         user_name, password_hash);
  return expected.ok() && ConstantTimeEquals(*expected, nt_response);
}

absl::StatusOr<std::string> GenerateAuthenticatorResponse(
    const Provider& provider, ByteSpan password_hash, ByteSpan nt_response,
    ByteSpan peer_challenge, ByteSpan authenticator_challenge,
    std::string_view user_name) {
  if (password_hash.size() != 16 || nt_response.size() != 24) {
    return absl::InvalidArgumentError(
        "needs a 16-byte password hash and a 24-byte NT-Response");
  }
  SecretBytes hash_hash = HashNtPasswordHash(provider, password_hash);
  Bytes digest =
      provider.Hash(HashAlgorithm::kSha1,
                    {hash_hash.span(), nt_response, AsBytes(kAuthMagic1)});
  absl::StatusOr<Bytes> challenge = ChallengeHash(
      provider, peer_challenge, authenticator_challenge, user_name);
  if (!challenge.ok()) return challenge.status();
  digest = provider.Hash(HashAlgorithm::kSha1,
                         {digest, *challenge, AsBytes(kAuthMagic2)});
  return "S=" +
         absl::AsciiStrToUpper(absl::BytesToHexString(absl::string_view(
             reinterpret_cast<const char*>(digest.data()), digest.size())));
}

absl::StatusOr<SecretBytes> GetMasterKey(const Provider& provider,
                                         ByteSpan password_hash_hash,
                                         ByteSpan nt_response) {
  if (password_hash_hash.size() != 16 || nt_response.size() != 24) {
    return absl::InvalidArgumentError(
        "GetMasterKey needs a 16-byte hash and a 24-byte NT-Response");
  }
  Bytes digest = provider.Hash(
      HashAlgorithm::kSha1,
      {password_hash_hash, nt_response, AsBytes(kMasterKeyMagic)});
  SecretBytes key(ByteSpan(digest).first(16));
  SecureZero(digest.data(), digest.size());
  return key;
}

absl::StatusOr<SecretBytes> GetAsymmetricStartKey(const Provider& provider,
                                                  ByteSpan master_key,
                                                  size_t length, bool is_send,
                                                  bool is_server) {
  if (master_key.size() != 16 || (length != 8 && length != 16)) {
    return absl::InvalidArgumentError(
        "GetAsymmetricStartKey needs a 16-byte master key and length 8 or 16");
  }
  const std::string_view magic =
      is_send == is_server ? kClientReceiveMagic : kClientSendMagic;
  static constexpr uint8_t kPad1[40] = {};  // SHSpad1: 40 x 0x00
  uint8_t pad2[40];                         // SHSpad2: 40 x 0xF2
  std::memset(pad2, 0xF2, sizeof(pad2));
  Bytes digest = provider.Hash(
      HashAlgorithm::kSha1,
      {master_key, ByteSpan(kPad1), AsBytes(magic), ByteSpan(pad2)});
  SecretBytes key(ByteSpan(digest).first(length));
  SecureZero(digest.data(), digest.size());
  return key;
}

absl::StatusOr<SecretBytes> DeriveMsk(const Provider& provider,
                                      ByteSpan password_hash,
                                      ByteSpan nt_response) {
  if (password_hash.size() != 16) {
    return absl::InvalidArgumentError("password hash must be 16 bytes");
  }
  SecretBytes hash_hash = HashNtPasswordHash(provider, password_hash);
  absl::StatusOr<SecretBytes> master =
      GetMasterKey(provider, hash_hash.span(), nt_response);
  if (!master.ok()) return master.status();
  absl::StatusOr<SecretBytes> receive = GetAsymmetricStartKey(
      provider, master->span(), 16, /*is_send=*/false, /*is_server=*/true);
  absl::StatusOr<SecretBytes> send = GetAsymmetricStartKey(
      provider, master->span(), 16, /*is_send=*/true, /*is_server=*/true);
  if (!receive.ok()) return receive.status();
  if (!send.ok()) return send.status();
  SecretBytes msk(64);  // the last 32 bytes stay zero
  std::memcpy(msk.data(), receive->data(), 16);
  std::memcpy(msk.data() + 16, send->data(), 16);
  return msk;
}

}  // namespace vpn::crypto::mschapv2
