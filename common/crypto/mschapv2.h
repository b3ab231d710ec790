// MS-CHAPv2 (RFC 2759) and the MPPE key derivation (RFC 3079 §3.4) that
// yields the EAP-MSCHAPv2 MSK used as IKEv2 AUTH key ([MS-CHAP] §3.1.5.1).
// Built only on the Provider's MD4, DES and SHA-1 primitives.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/crypto/crypto.h"

namespace vpn::crypto::mschapv2 {

// UTF-8 to the UTF-16LE password bytes RFC 2759 hashes (at most 256 chars).
absl::StatusOr<SecretBytes> PasswordToUnicode(std::string_view utf8_password);

// NtPasswordHash (§8.3): MD4 of the UTF-16LE password, 16 bytes.
SecretBytes NtPasswordHash(const Provider& provider, ByteSpan unicode_password);
// HashNtPasswordHash (§8.4): MD4 of the hash, 16 bytes.
SecretBytes HashNtPasswordHash(const Provider& provider,
                               ByteSpan password_hash);

// ChallengeHash (§8.2): first 8 bytes of SHA1(peer | authenticator | user).
// `user_name` is the name without any domain prefix.
absl::StatusOr<Bytes> ChallengeHash(const Provider& provider,
                                    ByteSpan peer_challenge,
                                    ByteSpan authenticator_challenge,
                                    std::string_view user_name);

// ChallengeResponse (§8.5): three DES encryptions of the 8-byte challenge
// under the zero-padded 21-byte password hash; 24 bytes.
absl::StatusOr<Bytes> ChallengeResponse(const Provider& provider,
                                        ByteSpan challenge,
                                        ByteSpan password_hash);

// GenerateNTResponse (§8.1), 24 bytes.
absl::StatusOr<Bytes> GenerateNtResponse(const Provider& provider,
                                         ByteSpan authenticator_challenge,
                                         ByteSpan peer_challenge,
                                         std::string_view user_name,
                                         ByteSpan password_hash);

// The authenticator's check of a peer's NT-Response, in constant time.
bool VerifyNtResponse(const Provider& provider,
                      ByteSpan authenticator_challenge, ByteSpan peer_challenge,
                      std::string_view user_name, ByteSpan password_hash,
                      ByteSpan nt_response);

// GenerateAuthenticatorResponse (§8.7): "S=" + 40 uppercase hex digits.
absl::StatusOr<std::string> GenerateAuthenticatorResponse(
    const Provider& provider, ByteSpan password_hash, ByteSpan nt_response,
    ByteSpan peer_challenge, ByteSpan authenticator_challenge,
    std::string_view user_name);

// GetMasterKey (RFC 3079 §3.4), 16 bytes.
absl::StatusOr<SecretBytes> GetMasterKey(const Provider& provider,
                                         ByteSpan password_hash_hash,
                                         ByteSpan nt_response);

// GetAsymmetricStartKey (RFC 3079 §3.4); `length` is 8 or 16.
absl::StatusOr<SecretBytes> GetAsymmetricStartKey(const Provider& provider,
                                                  ByteSpan master_key,
                                                  size_t length, bool is_send,
                                                  bool is_server);

// The 64-byte MSK: MasterReceiveKey | MasterSendKey | 32 zero bytes, both
// keys as the server (authenticator) derives them. Both ends get the same.
absl::StatusOr<SecretBytes> DeriveMsk(const Provider& provider,
                                      ByteSpan password_hash,
                                      ByteSpan nt_response);

}  // namespace vpn::crypto::mschapv2
