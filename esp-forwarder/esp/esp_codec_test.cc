#include "esp-forwarder/esp/esp_codec.h"

#include <cstring>

#include "common/crypto/crypto.h"
#include "esp-forwarder/esp/esp_testing.h"
#include "esp-forwarder/esp/suites.h"
#include "gtest/gtest.h"

namespace vpn::forwarder::esp {
namespace {

using testing::Frame;
using testing::Ipv4Packet;
using testing::Ipv6Packet;
using testing::kClientVip;
using testing::kClientVip6;
using testing::kLanHost;
using testing::kLanHost6;
using testing::MakeSaPair;
using testing::Protect;

std::vector<uint8_t> Be32(uint32_t v) {
  return {uint8_t(v >> 24), uint8_t(v >> 16), uint8_t(v >> 8), uint8_t(v)};
}

void Append(std::vector<uint8_t>& out, const std::vector<uint8_t>& more) {
  out.insert(out.end(), more.begin(), more.end());
}

// payload || 1, 2, ... || pad length || next header, aligned to `align`.
std::vector<uint8_t> PaddedBody(const std::vector<uint8_t>& inner, size_t align,
                                uint8_t next_header) {
  std::vector<uint8_t> body = inner;
  const size_t padded = (inner.size() + 2 + align - 1) / align * align;
  const size_t pad = padded - inner.size() - 2;
  for (size_t i = 0; i < pad; ++i) body.push_back(uint8_t(i + 1));
  body.push_back(uint8_t(pad));
  body.push_back(next_header);
  return body;
}

DropReason DecapStatus(EspSa& sa, std::vector<uint8_t> packet) {
  Decapsulated out;
  return Decapsulate(sa, packet.data(), packet.size(), &out);
}

Decapsulated MustDecap(EspSa& sa, std::vector<uint8_t> packet) {
  static std::vector<uint8_t> keep;
  keep = std::move(packet);
  Decapsulated out;
  EXPECT_EQ(Decapsulate(sa, keep.data(), keep.size(), &out), DropReason::kNone);
  return out;
}


// The client's ESP packet is built here byte by byte from RFC 4303 §2 and
// RFC 4106 §3-5 (nonce = salt | IV, AAD = SPI | [seq high |] seq low, IV =
// the 64-bit sequence number) with the crypto interface's one-shot Seal,
// and must equal what Encapsulate() produces.
TEST(EspCodecTest, GcmPacketMatchesRfc4106Layout) {
  for (const char* name : {"aes128gcm16", "aes256gcm16", "aes256gcm16-esn"}) {
    SCOPED_TRACE(name);
    const Suite suite = *SuiteByName(name);
    auto pair = MakeSaPair(suite.algorithms);
    const uint64_t seq = suite.algorithms.esn ? 0x00000001fffffffeull : 7;
    pair.client->SetNextSequence(seq);
    const std::vector<uint8_t> inner = Ipv4Packet(kClientVip, kLanHost, 85);

    // Client -> gateway uses the gateway's inbound keys.
    const std::vector<uint8_t>& key_salt = pair.keys.in_enc;
    const size_t key_len = key_salt.size() - 4;
    auto aead = crypto::GetProvider().NewAead(
        key_len == 16 ? crypto::AeadAlgorithm::kAes128Gcm16 : crypto::AeadAlgorithm::kAes256Gcm16,
        crypto::ByteSpan(key_salt.data(), key_len));
    ASSERT_TRUE(aead.ok());
    std::vector<uint8_t> iv = Be32(uint32_t(seq >> 32));
    Append(iv, Be32(uint32_t(seq)));
    std::vector<uint8_t> nonce(key_salt.end() - 4, key_salt.end());
    Append(nonce, iv);
    std::vector<uint8_t> aad = Be32(pair.params.inbound_spi);
    if (suite.algorithms.esn) Append(aad, Be32(uint32_t(seq >> 32)));
    Append(aad, Be32(uint32_t(seq)));
    const std::vector<uint8_t> body = PaddedBody(inner, 4, 4);
    ASSERT_EQ(body.size() % 4, 0u);
    EXPECT_EQ(body.size(), 88u);  // 85 + 1 pad + 2
    auto sealed = (*aead)->Seal(nonce, body, aad);
    ASSERT_TRUE(sealed.ok());
    std::vector<uint8_t> expected = Be32(pair.params.inbound_spi);
    Append(expected, Be32(uint32_t(seq)));
    Append(expected, iv);
    Append(expected, *sealed);

    EXPECT_EQ(Protect(*pair.client, inner), expected);
    if (suite.algorithms.esn) {
      // A fresh receiver infers high bits 0, so the AAD differs: rejected.
      EXPECT_EQ(DecapStatus(*pair.gateway, expected), DropReason::kAuthFailed);
      continue;
    }
    const Decapsulated out = MustDecap(*pair.gateway, expected);
    EXPECT_EQ(std::vector<uint8_t>(out.inner, out.inner + out.inner_size), inner);
    EXPECT_EQ(out.sequence, seq);
  }
}

// A CBC + HMAC packet built by hand (RFC 4303 §2, RFC 3602, RFC 2404/4868;
// with ESN the high bits follow the payload in the ICV input only).
std::vector<uint8_t> HandCbcPacket(const Suite& suite, const testing::SaPair& pair,
                                   uint64_t seq, const std::vector<uint8_t>& body) {
  const crypto::Provider& provider = crypto::GetProvider();
  const bool des = suite.algorithms.encryption == crypto::transform::kEncr3Des;
  crypto::CbcAlgorithm algorithm =
      des ? crypto::CbcAlgorithm::k3DesCbc
          : (suite.algorithms.encryption_key_bits == 128 ? crypto::CbcAlgorithm::kAes128Cbc
                                                         : crypto::CbcAlgorithm::kAes256Cbc);
  auto cbc = provider.NewCbcCipher(algorithm, pair.keys.in_enc);
  auto mac = provider.NewMac(static_cast<crypto::IntegrityAlgorithm>(suite.algorithms.integrity),
                             pair.keys.in_int);
  EXPECT_TRUE(cbc.ok() && mac.ok());
  std::vector<uint8_t> iv((*cbc)->block_size());
  for (size_t i = 0; i < iv.size(); ++i) iv[i] = uint8_t(0xa0 + i);
  auto ciphertext = (*cbc)->Encrypt(iv, body);
  EXPECT_TRUE(ciphertext.ok());
  std::vector<uint8_t> packet = Be32(pair.params.inbound_spi);
  Append(packet, Be32(uint32_t(seq)));
  Append(packet, iv);
  Append(packet, *ciphertext);
  std::vector<uint8_t> icv_input = packet;
  if (suite.algorithms.esn) Append(icv_input, Be32(uint32_t(seq >> 32)));
  Append(packet, (*mac)->Compute(icv_input));
  return packet;
}

TEST(EspCodecTest, CbcPacketBuiltByHandDecapsulates) {
  for (const char* name : {"aes128-sha1", "aes256-sha256", "aes256-sha512", "3des-sha1",
                           "aes256-sha256-esn", "3des-sha1-esn"}) {
    SCOPED_TRACE(name);
    const Suite suite = *SuiteByName(name);
    auto pair = MakeSaPair(suite.algorithms);
    const std::vector<uint8_t> inner = Ipv4Packet(kClientVip, kLanHost, 100);
    const size_t block = suite.algorithms.encryption == crypto::transform::kEncr3Des ? 8 : 16;
    const std::vector<uint8_t> packet =
        HandCbcPacket(suite, pair, 1, PaddedBody(inner, block, 4));
    const Decapsulated out = MustDecap(*pair.gateway, packet);
    EXPECT_EQ(std::vector<uint8_t>(out.inner, out.inner + out.inner_size), inner);
    // And what Encapsulate() makes opens by hand: MAC first, then CBC.
    const std::vector<uint8_t> ours = Protect(*pair.client, inner);
    ASSERT_FALSE(ours.empty());
    auto mac = crypto::GetProvider().NewMac(
        static_cast<crypto::IntegrityAlgorithm>(suite.algorithms.integrity), pair.keys.in_int);
    const size_t icv = (*mac)->tag_size();
    std::vector<uint8_t> icv_input(ours.begin(), ours.end() - icv);
    if (suite.algorithms.esn) Append(icv_input, Be32(0));
    EXPECT_TRUE((*mac)->Verify(icv_input, crypto::ByteSpan(ours.data() + ours.size() - icv, icv)));
    EXPECT_EQ((ours.size() - 8 - block - icv) % block, 0u);
  }
}

TEST(EspCodecTest, RoundTripEverySuiteIpv4AndIpv6) {
  for (const Suite& suite : AllSuites()) {
    SCOPED_TRACE(suite.name);
    auto pair = MakeSaPair(suite.algorithms);
    uint64_t packets = 0, bytes = 0;
    for (size_t size : {28, 29, 30, 31, 64, 512, 1399, 1400, 9000}) {
      const std::vector<uint8_t> v4 = Ipv4Packet(kClientVip, kLanHost, size);
      const std::vector<uint8_t> v6 = Ipv6Packet(kClientVip6, kLanHost6, size + 20);
      for (const auto* inner : {&v4, &v6}) {
        const std::vector<uint8_t> esp = Protect(*pair.client, *inner);
        ASSERT_FALSE(esp.empty());
        EXPECT_EQ(esp.size(), EspSize(pair.client->outbound_cipher(), inner->size()));
        const Decapsulated out = MustDecap(*pair.gateway, esp);
        ASSERT_EQ(std::vector<uint8_t>(out.inner, out.inner + out.inner_size), *inner);
        EXPECT_EQ(out.inner_v6, inner == &v6);
        ++packets;
        bytes += inner->size();
        // The other direction.
        const uint8_t* src = inner == &v4 ? kLanHost : kLanHost6;
        const std::vector<uint8_t> back =
            inner == &v4 ? Ipv4Packet(src, kClientVip, size) : Ipv6Packet(src, kClientVip6, size + 20);
        const Decapsulated reply = MustDecap(*pair.client, Protect(*pair.gateway, back));
        ASSERT_EQ(std::vector<uint8_t>(reply.inner, reply.inner + reply.inner_size), back);
      }
    }
    EXPECT_EQ(pair.gateway->counters().packets_in, packets);
    EXPECT_EQ(pair.gateway->counters().bytes_in, bytes);
    EXPECT_EQ(pair.gateway->counters().packets_out, packets);
  }
}

TEST(EspCodecTest, EveryTruncationAndBitFlipIsRejected) {
  for (const char* name : {"aes128gcm16", "aes256-sha1", "3des-sha1", "aes256gcm16-esn"}) {
    SCOPED_TRACE(name);
    auto pair = MakeSaPair(SuiteByName(name)->algorithms);
    const std::vector<uint8_t> good = Protect(*pair.client, Ipv4Packet(kClientVip, kLanHost, 120));
    for (size_t n = 0; n < good.size(); ++n) {
      const DropReason r = DecapStatus(*pair.gateway, {good.begin(), good.begin() + n});
      EXPECT_TRUE(r == DropReason::kTruncated || r == DropReason::kAuthFailed) << n;
    }
    std::vector<uint8_t> longer = good;
    longer.push_back(0);
    EXPECT_NE(DecapStatus(*pair.gateway, longer), DropReason::kNone);
    for (size_t bit = 0; bit < good.size() * 8; ++bit) {
      std::vector<uint8_t> bad = good;
      bad[bit / 8] ^= uint8_t(1 << (bit % 8));
      const DropReason r = DecapStatus(*pair.gateway, bad);
      ASSERT_TRUE(r == DropReason::kAuthFailed || r == DropReason::kTooOld) << bit;
    }
    // Nothing above moved the replay window: the real packet still passes.
    EXPECT_EQ(DecapStatus(*pair.gateway, good), DropReason::kNone);
    EXPECT_EQ(DecapStatus(*pair.gateway, good), DropReason::kReplay);
    EXPECT_GE(pair.gateway->counters().auth_failures, good.size() * 8 - 64);
    EXPECT_EQ(pair.gateway->counters().packets_in, 1u);
  }
}

TEST(EspCodecTest, ReplayAndWindow) {
  auto pair = MakeSaPair(SuiteByName("aes128gcm16")->algorithms, /*window=*/32);
  std::vector<std::vector<uint8_t>> sent;
  for (int i = 0; i < 40; ++i) sent.push_back(Protect(*pair.client, Ipv4Packet(kClientVip, kLanHost, 60)));
  EXPECT_EQ(DecapStatus(*pair.gateway, sent[39]), DropReason::kNone);   // seq 40
  EXPECT_EQ(DecapStatus(*pair.gateway, sent[39]), DropReason::kReplay);
  EXPECT_EQ(DecapStatus(*pair.gateway, sent[8]), DropReason::kNone);    // seq 9: in window
  EXPECT_EQ(DecapStatus(*pair.gateway, sent[7]), DropReason::kTooOld);  // seq 8: below
  EXPECT_EQ(pair.gateway->counters().replay_drops, 2u);
}

// Packets sealed with valid ICVs but bad contents.
class HandSealed : public ::testing::Test {
 protected:
  std::vector<uint8_t> Seal(const std::vector<uint8_t>& body, uint32_t seq) {
    const EspCipher& cipher = pair_.client->outbound_cipher();
    std::vector<uint8_t> packet(8 + cipher.iv_size() + body.size() + cipher.icv_size());
    const std::vector<uint8_t> spi = Be32(pair_.params.inbound_spi), s = Be32(seq);
    std::memcpy(packet.data(), spi.data(), 4);
    std::memcpy(packet.data() + 4, s.data(), 4);
    std::memset(packet.data() + 8, 0, cipher.iv_size());
    packet[8 + cipher.iv_size() - 1] = uint8_t(seq);
    std::memcpy(packet.data() + 8 + cipher.iv_size(), body.data(), body.size());
    EXPECT_TRUE(cipher.Seal(packet.data(), body.size(), 0).ok());
    return packet;
  }
  testing::SaPair pair_ = MakeSaPair(SuiteByName("aes256gcm16")->algorithms);
  std::vector<uint8_t> inner_ = Ipv4Packet(kClientVip, kLanHost, 62);
};

TEST_F(HandSealed, PaddingAndNextHeaderChecks) {
  std::vector<uint8_t> body = PaddedBody(inner_, 4, 4);  // 62 + 0 pad + 2 = 64
  body.insert(body.end() - 2, {1, 2, 3, 4});
  body[body.size() - 2] = 4;
  EXPECT_EQ(DecapStatus(*pair_.gateway, Seal(body, 1)), DropReason::kNone);
  std::vector<uint8_t> bad = body;
  bad[bad.size() - 4] = 9;  // padding byte 3 is not 3
  EXPECT_EQ(DecapStatus(*pair_.gateway, Seal(bad, 2)), DropReason::kBadPadding);
  bad = body;
  bad[bad.size() - 2] = 200;  // pad length longer than the payload
  EXPECT_EQ(DecapStatus(*pair_.gateway, Seal(bad, 3)), DropReason::kBadPadding);
  EXPECT_EQ(DecapStatus(*pair_.gateway, Seal(PaddedBody(inner_, 4, 59), 4)), DropReason::kDummy);
  EXPECT_EQ(DecapStatus(*pair_.gateway, Seal(PaddedBody(inner_, 4, 17), 5)),
            DropReason::kBadNextHeader);
  // Next header says IPv6 but the packet is IPv4.
  EXPECT_EQ(DecapStatus(*pair_.gateway, Seal(PaddedBody(inner_, 4, 41), 6)), DropReason::kBadInner);
  // Inner total length larger than what was sent.
  std::vector<uint8_t> lying = inner_;
  lying[3] += 10;
  EXPECT_EQ(DecapStatus(*pair_.gateway, Seal(PaddedBody(lying, 4, 4), 7)), DropReason::kBadInner);
}

TEST_F(HandSealed, TfcPaddingAfterTheInnerPacketIsDiscarded) {
  std::vector<uint8_t> padded = inner_;
  padded.resize(inner_.size() + 30, 0xee);
  std::vector<uint8_t> packet = Seal(PaddedBody(padded, 4, 4), 1);
  Decapsulated out;
  ASSERT_EQ(Decapsulate(*pair_.gateway, packet.data(), packet.size(), &out), DropReason::kNone);
  EXPECT_EQ(out.inner_size, inner_.size());
}

TEST_F(HandSealed, InnerAddressesOutsideTheSelectorsAreDropped) {
  const uint8_t other[4] = {10, 10, 0, 99};  // another client's VIP
  EXPECT_EQ(DecapStatus(*pair_.gateway, Seal(PaddedBody(Ipv4Packet(other, kLanHost, 62), 4, 4), 1)),
            DropReason::kPolicy);
  // And the gateway will not send a packet to an address the SA does not cover.
  testing::Frame frame(Ipv4Packet(kLanHost, other, 62));
  Encapsulated out;
  EXPECT_EQ(Encapsulate(*pair_.gateway, frame.inner(), 62, &out), DropReason::kPolicy);
}

TEST(EspCodecTest, EsnCarriesTrafficAcrossThe32BitWrap) {
  for (const char* name : {"aes128gcm16-esn", "aes256-sha256-esn"}) {
    SCOPED_TRACE(name);
    auto pair = MakeSaPair(SuiteByName(name)->algorithms);
    pair.client->SetNextSequence(0xfffffff0ull);
    for (int i = 0; i < 40; ++i) {
      const auto esp = Protect(*pair.client, Ipv4Packet(kClientVip, kLanHost, 80));
      ASSERT_EQ(DecapStatus(*pair.gateway, esp), DropReason::kNone) << i;
    }
    EXPECT_EQ(pair.gateway->replay_top(), 0x100000017ull);
    // A sender two subspaces ahead: the receiver infers high bits 1, the
    // ICV was computed with 2, so it fails: the high bits are authenticated.
    pair.client->SetNextSequence(0x200000030ull);
    EXPECT_EQ(DecapStatus(*pair.gateway, Protect(*pair.client, Ipv4Packet(kClientVip, kLanHost, 80))),
              DropReason::kAuthFailed);
  }
}

TEST(EspCodecTest, WithoutEsnTheSenderStopsAt32Bits) {
  auto pair = MakeSaPair(SuiteByName("aes128gcm16")->algorithms);
  pair.client->SetNextSequence(0xffffffffull);
  testing::Frame a(Ipv4Packet(kClientVip, kLanHost, 60)), b(Ipv4Packet(kClientVip, kLanHost, 60));
  Encapsulated out;
  EXPECT_EQ(Encapsulate(*pair.client, a.inner(), 60, &out), DropReason::kNone);
  EXPECT_EQ(Encapsulate(*pair.client, b.inner(), 60, &out), DropReason::kSeqExhausted);
}

namespace {
struct CountingWaker : CheckpointWaker {
  void Wake() override { ++wakes; }
  int wakes = 0;
};
}  // namespace

// With a lease only granted numbers go out; past the grant the packet is
// dropped (never sent with a number that may not be persisted), and the
// writer is woken once per checkpoint.
TEST(EspCodecTest, SequenceLeaseGatesOutboundNumbers) {
  auto pair = MakeSaPair(SuiteByName("aes128gcm16")->algorithms);
  auto waker = std::make_shared<CountingWaker>();
  pair.gateway->AttachLease(waker, 100);
  auto encap = [&] {
    testing::Frame f(Ipv4Packet(kLanHost, kClientVip, 60));
    Encapsulated out;
    return Encapsulate(*pair.gateway, f.inner(), 60, &out);
  };
  EXPECT_EQ(encap(), DropReason::kSeqUnreserved);  // nothing granted yet
  EXPECT_EQ(waker->wakes, 1);
  EXPECT_TRUE(pair.gateway->TakeSequenceRequest());
  pair.gateway->GrantSequences(/*floor=*/0, /*limit=*/105, /*request_at=*/103);
  EXPECT_EQ(pair.gateway->next_sequence(), 101u);  // 100 was burnt
  uint64_t seqs[4];
  for (uint64_t& seq : seqs) {
    testing::Frame f(Ipv4Packet(kLanHost, kClientVip, 60));
    Encapsulated out;
    ASSERT_EQ(Encapsulate(*pair.gateway, f.inner(), 60, &out), DropReason::kNone);
    seq = ReadBe32(out.esp + 4);
  }
  EXPECT_EQ(seqs[0], 101u);
  EXPECT_EQ(seqs[3], 104u);
  EXPECT_EQ(waker->wakes, 2);  // asked at 103, once
  EXPECT_EQ(encap(), DropReason::kSeqUnreserved);
  EXPECT_EQ(waker->wakes, 2);
  // Another writer reserved up to 200: the next grant skips there.
  EXPECT_TRUE(pair.gateway->TakeSequenceRequest());
  pair.gateway->GrantSequences(/*floor=*/200, /*limit=*/300, /*request_at=*/250);
  testing::Frame f(Ipv4Packet(kLanHost, kClientVip, 60));
  Encapsulated out;
  ASSERT_EQ(Encapsulate(*pair.gateway, f.inner(), 60, &out), DropReason::kNone);
  EXPECT_EQ(ReadBe32(out.esp + 4), 200u);
  // The client accepts them all (gaps are fine).
  EXPECT_EQ(DecapStatus(*pair.client, std::vector<uint8_t>(out.esp, out.esp + out.size)),
            DropReason::kNone);
}

// Authenticated inbound marks the SA as installed by the peer
// (make-before-break) and a restored mark refuses older numbers.
TEST(EspCodecTest, InboundSeenAndRestoredReplayMark) {
  auto pair = MakeSaPair(SuiteByName("aes256gcm16")->algorithms, 64);
  EXPECT_FALSE(pair.gateway->inbound_seen());
  auto forged = Protect(*pair.client, Ipv4Packet(kClientVip, kLanHost, 60));
  forged[forged.size() - 1] ^= 1;
  EXPECT_EQ(DecapStatus(*pair.gateway, forged), DropReason::kAuthFailed);
  EXPECT_FALSE(pair.gateway->inbound_seen());
  EXPECT_EQ(DecapStatus(*pair.gateway, Protect(*pair.client, Ipv4Packet(kClientVip, kLanHost, 60))),
            DropReason::kNone);
  EXPECT_TRUE(pair.gateway->inbound_seen());
  EXPECT_EQ(pair.gateway->inbound_highest(), 2u);

  auto fresh = MakeSaPair(SuiteByName("aes256gcm16")->algorithms, 64);
  fresh.gateway->RestoreReplay(40);
  EXPECT_TRUE(fresh.gateway->inbound_seen());
  EXPECT_EQ(fresh.gateway->inbound_highest(), 40u);
  fresh.client->SetNextSequence(40);
  EXPECT_EQ(DecapStatus(*fresh.gateway, Protect(*fresh.client, Ipv4Packet(kClientVip, kLanHost, 60))),
            DropReason::kReplay);
  fresh.client->SetNextSequence(3);
  EXPECT_EQ(DecapStatus(*fresh.gateway, Protect(*fresh.client, Ipv4Packet(kClientVip, kLanHost, 60))),
            DropReason::kReplay);
  fresh.client->SetNextSequence(41);
  EXPECT_EQ(DecapStatus(*fresh.gateway, Protect(*fresh.client, Ipv4Packet(kClientVip, kLanHost, 60))),
            DropReason::kNone);
}

TEST(EspCodecTest, ByteLifetimes) {
  Lifetime life;
  life.soft_bytes = 500;
  life.hard_bytes = 1000;
  auto pair = MakeSaPair(SuiteByName("aes128gcm16")->algorithms, 64, 7, life);
  const absl::Time now = absl::Now();
  EXPECT_FALSE(pair.gateway->TakeSoftExpiry(now));
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(DecapStatus(*pair.gateway, Protect(*pair.client, Ipv4Packet(kClientVip, kLanHost, 300))),
              DropReason::kNone);
  }
  EXPECT_TRUE(pair.gateway->TakeSoftExpiry(now));
  EXPECT_FALSE(pair.gateway->TakeSoftExpiry(now));  // once
  EXPECT_FALSE(pair.gateway->hard_expired());
  EXPECT_EQ(DecapStatus(*pair.gateway, Protect(*pair.client, Ipv4Packet(kClientVip, kLanHost, 300))),
            DropReason::kNone);  // 1200 >= 1000: the hard limit is reached here
  EXPECT_TRUE(pair.gateway->hard_expired());
  EXPECT_EQ(DecapStatus(*pair.gateway, Protect(*pair.client, Ipv4Packet(kClientVip, kLanHost, 300))),
            DropReason::kHardExpired);
  EXPECT_TRUE(pair.gateway->TakeHardExpiry(now));
}

TEST(EspCodecTest, TimeLifetimes) {
  Lifetime life;
  life.soft_time = absl::Seconds(10);
  life.hard_time = absl::Seconds(20);
  auto pair = MakeSaPair(SuiteByName("aes128gcm16")->algorithms, 64, 7, life);
  const absl::Time created = pair.params.created;
  EXPECT_FALSE(pair.gateway->TakeSoftExpiry(created + absl::Seconds(9)));
  EXPECT_TRUE(pair.gateway->TakeSoftExpiry(created + absl::Seconds(10)));
  EXPECT_FALSE(pair.gateway->TakeHardExpiry(created + absl::Seconds(19)));
  EXPECT_TRUE(pair.gateway->TakeHardExpiry(created + absl::Seconds(21)));
  testing::Frame frame(Ipv4Packet(kLanHost, kClientVip, 60));
  Encapsulated out;
  EXPECT_EQ(Encapsulate(*pair.gateway, frame.inner(), 60, &out), DropReason::kHardExpired);
}

}  // namespace
}  // namespace vpn::forwarder::esp
