#include "auth-service/eap/eap_packet.h"

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"

namespace vpn::auth::eap {
namespace {

Bytes Hex(absl::string_view hex) {
  const std::string bytes = absl::HexStringToBytes(hex);
  return Bytes(bytes.begin(), bytes.end());
}

std::string ToHex(ByteSpan bytes) {
  return absl::BytesToHexString(absl::string_view(
      reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

std::optional<EapError> ErrorOf(const absl::Status& status) {
  return GetEapError(status);
}

TEST(EapPacketTest, BuildsTheFixedPackets) {
  EXPECT_EQ(ToHex(BuildIdentityRequest(0x2a)), "012a000501");
  EXPECT_EQ(ToHex(BuildSuccess(7)), "03070004");
  EXPECT_EQ(ToHex(BuildFailure(7)), "04070004");
  // The peer's Success response: the OpCode alone ([MS-CHAP] §2.2).
  EXPECT_EQ(ToHex(BuildPeerStatus(9, opcode::kSuccess)), "020900061a03");
}

TEST(EapPacketTest, ParsesHeaderAndIgnoresPadding) {
  Bytes bytes = Hex("0205000a01616c6963650000");  // Identity "alice" + pad
  auto packet = ParsePacket(bytes);
  ASSERT_TRUE(packet.ok()) << packet.status();
  EXPECT_EQ(packet->code, Code::kResponse);
  EXPECT_EQ(packet->identifier, 5);
  EXPECT_EQ(packet->type, type::kIdentity);
  EXPECT_EQ(std::string(packet->type_data.begin(), packet->type_data.end()),
            "alice");
  EXPECT_EQ(packet->bytes.size(), 10u);
}

TEST(EapPacketTest, RejectsBadHeadersWithTypedErrors) {
  EXPECT_EQ(ErrorOf(ParsePacket({}).status()), EapError::kTruncated);
  EXPECT_EQ(ErrorOf(ParsePacket(Hex("020100")).status()), EapError::kTruncated);
  EXPECT_EQ(ErrorOf(ParsePacket(Hex("05010004")).status()),
            EapError::kUnknownCode);
  EXPECT_EQ(ErrorOf(ParsePacket(Hex("00010004")).status()),
            EapError::kUnknownCode);
  EXPECT_EQ(ErrorOf(ParsePacket(Hex("02010003")).status()),
            EapError::kBadLength);
  EXPECT_EQ(ErrorOf(ParsePacket(Hex("0201000901")).status()),
            EapError::kTruncated);
  EXPECT_EQ(ErrorOf(ParsePacket(Hex("0201ffff01")).status()),
            EapError::kTruncated);
  EXPECT_EQ(ErrorOf(ParsePacket(Hex("02010004")).status()),
            EapError::kMissingType);
  EXPECT_EQ(ErrorOf(ParsePacket(Hex("0301000500")).status()),
            EapError::kBadLength);
  EXPECT_FALSE(GetEapError(absl::InvalidArgumentError("other")).has_value());
}

TEST(EapPacketTest, ResponseRoundTrip) {
  const Bytes peer_challenge(16, 0x11);
  const Bytes nt_response(24, 0x22);
  const Bytes bytes =
      BuildResponsePacket(3, 9, peer_challenge, nt_response, "CORP\\bob");
  // 4 EAP + 1 type + 4 MS-CHAPv2 header + 1 Value-Size + 49 + name.
  EXPECT_EQ(bytes.size(), 59u + 8);
  auto packet = ParsePacket(bytes);
  ASSERT_TRUE(packet.ok());
  auto message = ParsePeerMessage(*packet);
  ASSERT_TRUE(message.ok()) << message.status();
  EXPECT_EQ(message->opcode, opcode::kResponse);
  EXPECT_EQ(message->response.ms_chapv2_id, 9);
  EXPECT_EQ(ToHex(message->response.peer_challenge), ToHex(peer_challenge));
  EXPECT_EQ(ToHex(message->response.nt_response), ToHex(nt_response));
  EXPECT_EQ(message->response.flags, 0);
  EXPECT_EQ(message->response.name, "CORP\\bob");
}

TEST(EapPacketTest, RejectsBadResponses) {
  const Bytes good =
      BuildResponsePacket(3, 9, Bytes(16, 1), Bytes(24, 2), "bob");
  {
    Bytes bad = good;
    bad[8] ^= 1;  // MS-Length low byte
    EXPECT_EQ(ErrorOf(ParsePeerMessage(*ParsePacket(bad)).status()),
              EapError::kBadMsLength);
  }
  {
    Bytes bad = good;
    bad[9] = 48;  // Value-Size
    EXPECT_EQ(ErrorOf(ParsePeerMessage(*ParsePacket(bad)).status()),
              EapError::kBadValueSize);
  }
  {
    Bytes bad = good;
    bad[5] = opcode::kChangePassword;
    EXPECT_EQ(ErrorOf(ParsePeerMessage(*ParsePacket(bad)).status()),
              EapError::kBadOpCode);
  }
  {
    Bytes bad = good;
    bad[4] = type::kIdentity;
    EXPECT_EQ(ErrorOf(ParsePeerMessage(*ParsePacket(bad)).status()),
              EapError::kUnexpectedType);
  }
  {
    Bytes bad = good;
    bad[0] = static_cast<uint8_t>(Code::kRequest);
    EXPECT_EQ(ErrorOf(ParsePeerMessage(*ParsePacket(bad)).status()),
              EapError::kUnexpectedCode);
  }
  {
    // Shorter than the 49-byte value, with consistent lengths.
    const Bytes short_value = BuildResponse(
        3, type::kMsChapV2, Hex("0209000a31") /* MS-Length 10 */);
    Bytes fixed = short_value;
    fixed[7] = 0;
    fixed[8] = 5;
    EXPECT_EQ(ErrorOf(ParsePeerMessage(*ParsePacket(fixed)).status()),
              EapError::kTruncated);
  }
  {
    // Type 26 with no OpCode.
    const Bytes empty = BuildResponse(3, type::kMsChapV2, {});
    EXPECT_EQ(ErrorOf(ParsePeerMessage(*ParsePacket(empty)).status()),
              EapError::kTruncated);
  }
  {
    const Bytes long_name = BuildResponsePacket(3, 9, Bytes(16), Bytes(24),
                                                std::string(257, 'a'));
    EXPECT_EQ(ErrorOf(ParsePeerMessage(*ParsePacket(long_name)).status()),
              EapError::kNameTooLong);
  }
}

TEST(EapPacketTest, ChallengeAndStatusRequestsRoundTrip) {
  const Bytes challenge(16, 0x5b);
  const Bytes bytes = BuildChallengeRequest(1, 1, challenge, "vpn");
  auto parsed = ParseChallenge(*ParsePacket(bytes));
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(ToHex(parsed->challenge), ToHex(challenge));
  EXPECT_EQ(parsed->server_name, "vpn");

  const Bytes success =
      BuildStatusRequest(2, opcode::kSuccess, 1, "S=00 M=hello");
  auto status = ParseStatusRequest(*ParsePacket(success));
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->opcode, opcode::kSuccess);
  EXPECT_EQ(status->message, "S=00 M=hello");
  EXPECT_EQ(ErrorOf(ParseStatusRequest(*ParsePacket(bytes)).status()),
            EapError::kBadOpCode);
  EXPECT_EQ(ErrorOf(ParseChallenge(*ParsePacket(success)).status()),
            EapError::kBadOpCode);
}

}  // namespace
}  // namespace vpn::auth::eap
