#pragma once

// IKEv2 protocol numbers: RFC 7296 and the IANA "Internet Key Exchange
// Version 2 (IKEv2) Parameters" registry. Every enum is an enum class over the
// wire width, so values this file does not name still round-trip.

#include <cstddef>
#include <cstdint>

namespace vpn::ike::codec {

// Fixed sizes on the wire.
inline constexpr size_t kHeaderSize = 28;               // RFC 7296 3.1
inline constexpr size_t kGenericPayloadHeaderSize = 4;  // RFC 7296 3.2
inline constexpr size_t kSkfFragmentHeaderSize = 4;     // RFC 7383 2.5
inline constexpr uint8_t kMajorVersion = 2;
inline constexpr uint8_t kMinorVersion = 0;

// Decoder limits, against memory amplification from hostile input.
inline constexpr size_t kMaxPayloads = 64;
inline constexpr size_t kMaxProposals = 64;
inline constexpr size_t kMaxTransformsPerProposal = 64;
inline constexpr size_t kMaxAttributesPerTransform = 16;
inline constexpr size_t kMaxTrafficSelectors = 64;
inline constexpr size_t kMaxConfigAttributes = 64;
inline constexpr size_t kMinNonceSize = 16;   // RFC 7296 3.9
inline constexpr size_t kMaxNonceSize = 256;  // RFC 7296 3.9

// RFC 7296 3.1. Values 240-255 are private use.
enum class ExchangeType : uint8_t {
  kIkeSaInit = 34,
  kIkeAuth = 35,
  kCreateChildSa = 36,
  kInformational = 37,
  kIkeSessionResume = 38,  // RFC 5723
  kIkeIntermediate = 43,   // RFC 9242
};

// Header flags (RFC 7296 3.1). Other bits are reserved: cleared when sending,
// ignored when receiving.
inline constexpr uint8_t kFlagInitiator = 0x08;
inline constexpr uint8_t kFlagVersion = 0x10;
inline constexpr uint8_t kFlagResponse = 0x20;

// RFC 7296 3.2; 53 from RFC 7383.
enum class PayloadType : uint8_t {
  kNone = 0,
  kSa = 33,
  kKe = 34,
  kIdi = 35,
  kIdr = 36,
  kCert = 37,
  kCertReq = 38,
  kAuth = 39,
  kNonce = 40,
  kNotify = 41,
  kDelete = 42,
  kVendorId = 43,
  kTsi = 44,
  kTsr = 45,
  kSk = 46,
  kConfig = 47,
  kEap = 48,
  kSkf = 53,
};

// Whether this codec has a typed struct for `type` (all others are unknown:
// skipped if non-critical, rejected if critical).
constexpr bool IsKnownPayloadType(PayloadType type) {
  const auto value = static_cast<uint8_t>(type);
  return (value >= 33 && value <= 48) || value == 53;
}

// Security protocol identifiers (RFC 7296 3.3.1).
enum class ProtocolId : uint8_t {
  kNone = 0,  // Notify payloads without an SPI
  kIke = 1,
  kAh = 2,
  kEsp = 3,
};

// RFC 7296 3.3.2.
enum class TransformType : uint8_t {
  kEncr = 1,
  kPrf = 2,
  kInteg = 3,
  kDh = 4,
  kEsn = 5,
};

// Transform type 1.
enum class EncrId : uint16_t {
  kDes = 2,
  k3des = 3,
  kNull = 11,
  kAesCbc = 12,
  kAesCtr = 13,
  kAesCcm8 = 14,
  kAesCcm12 = 15,
  kAesCcm16 = 16,
  kAesGcm8 = 18,
  kAesGcm12 = 19,
  kAesGcm16 = 20,
  kNullAuthAesGmac = 21,
  kCamelliaCbc = 23,
  kChacha20Poly1305 = 28,
};

// Transform type 2.
enum class PrfId : uint16_t {
  kHmacMd5 = 1,
  kHmacSha1 = 2,
  kAes128Xcbc = 4,
  kHmacSha2_256 = 5,
  kHmacSha2_384 = 6,
  kHmacSha2_512 = 7,
  kAes128Cmac = 8,
};

// Transform type 3.
enum class IntegId : uint16_t {
  kNone = 0,
  kHmacMd5_96 = 1,
  kHmacSha1_96 = 2,
  kAesXcbc96 = 5,
  kHmacMd5_128 = 6,
  kHmacSha1_160 = 7,
  kAesCmac96 = 8,
  kAes128Gmac = 9,
  kAes192Gmac = 10,
  kAes256Gmac = 11,
  kHmacSha2_256_128 = 12,
  kHmacSha2_384_192 = 13,
  kHmacSha2_512_256 = 14,
};

// Transform type 4: Diffie-Hellman groups.
enum class DhGroup : uint16_t {
  kNone = 0,
  kModp768 = 1,
  kModp1024 = 2,
  kModp1536 = 5,
  kModp2048 = 14,
  kModp3072 = 15,
  kModp4096 = 16,
  kModp6144 = 17,
  kModp8192 = 18,
  kEcp256 = 19,
  kEcp384 = 20,
  kEcp521 = 21,
  kCurve25519 = 31,
  kCurve448 = 32,
};

// Size of the KE payload's Key Exchange Data for `group` (RFC 7296 3.4:
// MODP values are zero-padded to the prime size; RFC 5903: ECP is x || y;
// RFC 8031: X25519/X448), or 0 if this codec does not know the group.
constexpr size_t KeyExchangeDataSize(DhGroup group) {
  switch (group) {
    case DhGroup::kModp768: return 96;
    case DhGroup::kModp1024: return 128;
    case DhGroup::kModp1536: return 192;
    case DhGroup::kModp2048: return 256;
    case DhGroup::kModp3072: return 384;
    case DhGroup::kModp4096: return 512;
    case DhGroup::kModp6144: return 768;
    case DhGroup::kModp8192: return 1024;
    case DhGroup::kEcp256: return 64;
    case DhGroup::kEcp384: return 96;
    case DhGroup::kEcp521: return 132;
    case DhGroup::kCurve25519: return 32;
    case DhGroup::kCurve448: return 56;
    default: return 0;
  }
}

// Transform type 5.
enum class EsnId : uint16_t {
  kNoEsn = 0,
  kEsn = 1,
};

// Transform attribute types (RFC 7296 3.3.5).
inline constexpr uint16_t kAttributeKeyLength = 14;  // always TV format

// RFC 7296 3.5; 12 from RFC 4595, 13 from RFC 7619.
enum class IdType : uint8_t {
  kIpv4Addr = 1,
  kFqdn = 2,
  kRfc822Addr = 3,
  kIpv6Addr = 5,
  kDerAsn1Dn = 9,
  kDerAsn1Gn = 10,
  kKeyId = 11,
  kFcName = 12,
  kNull = 13,
};

// RFC 7296 3.6; 15 from RFC 7670.
enum class CertEncoding : uint8_t {
  kPkcs7WrappedX509 = 1,
  kPgp = 2,
  kDnsSignedKey = 3,
  kX509Signature = 4,
  kKerberosToken = 6,
  kCrl = 7,
  kArl = 8,
  kSpki = 9,
  kX509Attribute = 10,
  kRawRsaKey = 11,
  kHashUrlX509 = 12,
  kHashUrlX509Bundle = 13,
  kOcspContent = 14,
  kRawPublicKey = 15,
};

// RFC 7296 3.8; 9-11 from RFC 4754, 12 from RFC 6467, 13 from RFC 7619,
// 14 from RFC 7427.
enum class AuthMethod : uint8_t {
  kRsaSignature = 1,
  kSharedKeyMic = 2,
  kDssSignature = 3,
  kEcdsaSha256P256 = 9,
  kEcdsaSha384P384 = 10,
  kEcdsaSha512P521 = 11,
  kGenericSecurePassword = 12,
  kNull = 13,
  kDigitalSignature = 14,
};

// Notify message types (RFC 7296 3.10.1 and the IANA registry). 1-16383 are
// errors, 16384 and up are status types.
enum class NotifyType : uint16_t {
  // Errors.
  kUnsupportedCriticalPayload = 1,
  kInvalidIkeSpi = 4,
  kInvalidMajorVersion = 5,
  kInvalidSyntax = 7,
  kInvalidMessageId = 9,
  kInvalidSpi = 11,
  kNoProposalChosen = 14,
  kInvalidKePayload = 17,
  kAuthenticationFailed = 24,
  kSinglePairRequired = 34,
  kNoAdditionalSas = 35,
  kInternalAddressFailure = 36,
  kFailedCpRequired = 37,
  kTsUnacceptable = 38,
  kInvalidSelectors = 39,
  kUnacceptableAddresses = 40,   // RFC 4555
  kUnexpectedNatDetected = 41,   // RFC 4555
  kUseAssignedHoa = 42,          // RFC 5026
  kTemporaryFailure = 43,
  kChildSaNotFound = 44,
  // Status.
  kInitialContact = 16384,
  kSetWindowSize = 16385,
  kAdditionalTsPossible = 16386,
  kIpcompSupported = 16387,
  kNatDetectionSourceIp = 16388,
  kNatDetectionDestinationIp = 16389,
  kCookie = 16390,
  kUseTransportMode = 16391,
  kHttpCertLookupSupported = 16392,
  kRekeySa = 16393,
  kEspTfcPaddingNotSupported = 16394,
  kNonFirstFragmentsAlso = 16395,
  kMobikeSupported = 16396,        // RFC 4555
  kAdditionalIp4Address = 16397,   // RFC 4555
  kAdditionalIp6Address = 16398,   // RFC 4555
  kNoAdditionalAddresses = 16399,  // RFC 4555
  kUpdateSaAddresses = 16400,      // RFC 4555
  kCookie2 = 16401,                // RFC 4555
  kNoNatsAllowed = 16402,          // RFC 4555
  kAuthLifetime = 16403,           // RFC 4478
  kMultipleAuthSupported = 16404,  // RFC 4739
  kAnotherAuthFollows = 16405,     // RFC 4739
  kRedirectSupported = 16406,      // RFC 5685
  kRedirect = 16407,               // RFC 5685
  kRedirectedFrom = 16408,         // RFC 5685
  kEapOnlyAuthentication = 16417,  // RFC 5998
  kChildlessIkev2Supported = 16418,      // RFC 6023
  kIkev2FragmentationSupported = 16430,  // RFC 7383
  kSignatureHashAlgorithms = 16431,      // RFC 7427
  kIntermediateExchangeSupported = 16438,  // RFC 9242
};

inline constexpr uint16_t kFirstStatusNotifyType = 16384;

// Configuration payload types (RFC 7296 3.15).
enum class CfgType : uint8_t {
  kRequest = 1,
  kReply = 2,
  kSet = 3,
  kAck = 4,
};

// Configuration attribute types (RFC 7296 3.15.1; 23456/23457 are what
// Windows sends, see [MS-IKEE]).
enum class ConfigAttributeType : uint16_t {
  kInternalIp4Address = 1,
  kInternalIp4Netmask = 2,
  kInternalIp4Dns = 3,
  kInternalIp4Nbns = 4,
  kInternalIp4Dhcp = 6,
  kApplicationVersion = 7,
  kInternalIp6Address = 8,
  kInternalIp6Dns = 10,
  kInternalIp6Dhcp = 12,
  kInternalIp4Subnet = 13,
  kSupportedAttributes = 14,
  kInternalIp6Subnet = 15,
  kMsInternalIp4Server = 23456,
  kMsInternalIp6Server = 23457,
};

// Traffic selector types (RFC 7296 3.13.1).
enum class TsType : uint8_t {
  kIpv4AddrRange = 7,
  kIpv6AddrRange = 8,
};

// EAP codes (RFC 3748 4).
enum class EapCode : uint8_t {
  kRequest = 1,
  kResponse = 2,
  kSuccess = 3,
  kFailure = 4,
};

}  // namespace vpn::ike::codec
