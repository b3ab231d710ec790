#include "esp-forwarder/esp/esp_codec.h"

#include <cstring>

namespace vpn::forwarder::esp {
namespace {

// Validates the inner header; returns the inner packet's own length (TFC
// padding after it is discarded, RFC 4303 §2.7) or 0 when malformed.
size_t InnerLength(const uint8_t* p, size_t size, bool v6) {
  if (!v6) {
    if (size < 20 || (p[0] >> 4) != 4 || (p[0] & 0x0f) < 5) return 0;
    const size_t total = (size_t{p[2]} << 8) | p[3];
    if (total < size_t{(p[0] & 0x0fu)} * 4 || total > size) return 0;
    return total;
  }
  if (size < 40 || (p[0] >> 4) != 6) return 0;
  const size_t total = 40 + ((size_t{p[4]} << 8) | p[5]);
  if (total > size) return 0;
  return total;
}

}  // namespace

size_t EspSize(const EspCipher& cipher, size_t inner_size) {
  const size_t align = cipher.align();
  const size_t body = (inner_size + 2 + align - 1) / align * align;
  return kEspHeaderSize + cipher.iv_size() + body + cipher.icv_size();
}

DropReason Decapsulate(EspSa& sa, uint8_t* esp, size_t size, Decapsulated* out) {
  const EspCipher& cipher = sa.inbound_cipher();
  const size_t overhead = kEspHeaderSize + cipher.iv_size() + cipher.icv_size();
  if (size < overhead + 2) return DropReason::kTruncated;
  const size_t cipher_len = size - overhead;
  if (cipher_len % cipher.align() != 0) return DropReason::kTruncated;

  uint64_t seq = 0;
  switch (sa.CheckReplay(ReadBe32(esp + 4), &seq)) {
    case ReplayWindow::Verdict::kOk:
      break;
    case ReplayWindow::Verdict::kReplayed:
      sa.CountReplayDrop();
      return DropReason::kReplay;
    case ReplayWindow::Verdict::kTooOld:
      sa.CountReplayDrop();
      return DropReason::kTooOld;
  }
  if (!cipher.Open(esp, cipher_len, static_cast<uint32_t>(seq >> 32))) {
    sa.CountAuthFailure();
    return DropReason::kAuthFailed;
  }
  bool highest = false;
  if (!sa.UpdateReplay(seq, &highest)) {
    sa.CountReplayDrop();
    return DropReason::kReplay;
  }
  out->highest = highest;

  uint8_t* body = esp + kEspHeaderSize + cipher.iv_size();
  const uint8_t pad_len = body[cipher_len - 2];
  const uint8_t next_header = body[cipher_len - 1];
  if (size_t{pad_len} + 2 > cipher_len) return DropReason::kBadPadding;
  const size_t payload_len = cipher_len - 2 - pad_len;
  // RFC 4303 §2.4: default padding is 1, 2, 3, ...
  for (size_t i = 0; i < pad_len; ++i) {
    if (body[payload_len + i] != static_cast<uint8_t>(i + 1)) return DropReason::kBadPadding;
  }
  if (next_header == kNextHeaderNone) return DropReason::kDummy;
  if (next_header != kNextHeaderIpv4 && next_header != kNextHeaderIpv6) {
    return DropReason::kBadNextHeader;
  }
  const bool v6 = next_header == kNextHeaderIpv6;
  const size_t inner_len = InnerLength(body, payload_len, v6);
  if (inner_len == 0) return DropReason::kBadInner;
  // RFC 4301 §5.2: the inner addresses must match the SA's selectors.
  const uint8_t* src = body + (v6 ? 8 : 12);
  const uint8_t* dst = body + (v6 ? 24 : 16);
  if (!AnyContains(sa.params().remote_ts, src, v6) ||
      !AnyContains(sa.params().local_ts, dst, v6)) {
    return DropReason::kPolicy;
  }
  if (!sa.AccountInbound(inner_len)) return DropReason::kHardExpired;
  out->inner = body;
  out->inner_size = inner_len;
  out->inner_v6 = v6;
  out->sequence = seq;
  return DropReason::kNone;
}

DropReason Encapsulate(EspSa& sa, uint8_t* inner, size_t inner_size, Encapsulated* out) {
  if (inner_size < 20) return DropReason::kBadInner;
  const uint8_t version = inner[0] >> 4;
  if (version != 4 && version != 6) return DropReason::kBadInner;
  const bool v6 = version == 6;
  if (v6 && inner_size < 40) return DropReason::kBadInner;
  const uint8_t* src = inner + (v6 ? 8 : 12);
  const uint8_t* dst = inner + (v6 ? 24 : 16);
  if (!AnyContains(sa.params().local_ts, src, v6) ||
      !AnyContains(sa.params().remote_ts, dst, v6)) {
    return DropReason::kPolicy;
  }
  if (!sa.AccountOutbound(inner_size)) return DropReason::kHardExpired;
  bool unreserved = false;
  const uint64_t seq = sa.NextSequence(&unreserved);
  if (seq == 0) return unreserved ? DropReason::kSeqUnreserved : DropReason::kSeqExhausted;

  const EspCipher& cipher = sa.outbound_cipher();
  uint8_t* esp = inner - kEspHeaderSize - cipher.iv_size();
  WriteBe32(esp, sa.outbound_spi());
  WriteBe32(esp + 4, static_cast<uint32_t>(seq));
  if (cipher.aead()) {
    // RFC 4106 §3.1: the 8-byte IV must not repeat; the sequence number
    // never does.
    WriteBe32(esp + 8, static_cast<uint32_t>(seq >> 32));
    WriteBe32(esp + 12, static_cast<uint32_t>(seq));
  }
  const size_t align = cipher.align();
  const size_t body = (inner_size + 2 + align - 1) / align * align;
  const size_t pad_len = body - inner_size - 2;
  uint8_t* trailer = inner + inner_size;
  for (size_t i = 0; i < pad_len; ++i) trailer[i] = static_cast<uint8_t>(i + 1);
  trailer[pad_len] = static_cast<uint8_t>(pad_len);
  trailer[pad_len + 1] = v6 ? kNextHeaderIpv6 : kNextHeaderIpv4;
  if (!cipher.Seal(esp, body, static_cast<uint32_t>(seq >> 32)).ok()) {
    return DropReason::kIoError;
  }
  out->esp = esp;
  out->size = kEspHeaderSize + cipher.iv_size() + body + cipher.icv_size();
  return DropReason::kNone;
}

}  // namespace vpn::forwarder::esp
