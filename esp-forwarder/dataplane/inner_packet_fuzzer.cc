// Fuzz target for the TUN side's packet code, which reads what the kernel
// hands over (virtio-net headers, GSO super-packets) and rewrites headers in
// place. The first byte picks the function:
//   0 SegmentTcp, 1 SegmentUdp: mss (2 bytes), buffer room (2), packet;
//   2 ClampTcpMss: mss_v4 (2), mss_v6 (2), packet;
//   3 CompleteChecksum: csum_start (2), csum_offset (2), packet;
//   4 BuildPacketTooBig: mtu (2), packet;
//   5 InnerCoalescer: flags (1: TCP, 2: UDP, 4: kernel refuses GSO), then
//     packets as [length (2)][owner (1)][bytes].
// Every packet sits in a buffer of exactly its size, so ASan sees any read
// or write past it.
#include <errno.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "esp-forwarder/dataplane/inner_packet.h"

namespace {

using namespace vpn::forwarder;  // NOLINT

void Check(bool condition) {
  if (!condition) std::abort();
}

class Input {
 public:
  Input(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  uint16_t Take16() {
    uint16_t value = 0;
    for (int i = 0; i < 2 && size_ > 0; ++i, ++data_, --size_) value = (value << 8) | *data_;
    return value;
  }
  uint8_t Take8() { return size_ > 0 ? (--size_, *data_++) : 0; }
  std::vector<uint8_t> TakeRest() { return Take(size_); }
  std::vector<uint8_t> Take(size_t n) {
    n = n < size_ ? n : size_;
    std::vector<uint8_t> out(data_, data_ + n);
    data_ += n;
    size_ -= n;
    return out;
  }
  bool empty() const { return size_ == 0; }

 private:
  const uint8_t* data_;
  size_t size_;
};

// Segments land in buffers of exactly `room` bytes.
class ExactSink : public SegmentSink {
 public:
  explicit ExactSink(size_t room) : room_(room) {}
  uint8_t* Buffer() override {
    if (buffers_.size() >= 256) return nullptr;
    buffers_.push_back(std::make_unique<uint8_t[]>(room_));
    return buffers_.back().get();
  }
  size_t buffer_size() const override { return room_; }
  void Emit(uint8_t* segment, size_t size) override {
    Check(!buffers_.empty() && segment == buffers_.back().get() && size <= room_);
    ++emitted_;
  }
  size_t emitted() const { return emitted_; }

 private:
  const size_t room_;
  std::vector<std::unique_ptr<uint8_t[]>> buffers_;
  size_t emitted_ = 0;
};

// Reads every byte written; counts packets; optionally refuses GSO writes.
class CountingTun : public TunSink {
 public:
  explicit CountingTun(bool refuse_gso) : refuse_gso_(refuse_gso) {}
  int WriteTun(const iovec* iov, int iovcnt, int packets) override {
    Check(iovcnt >= 1 && iovcnt <= InnerCoalescer::kMaxSegments && packets >= 1);
    size_t bytes = 0;
    uint8_t sum = 0;
    for (int i = 0; i < iovcnt; ++i) {
      const uint8_t* base = static_cast<const uint8_t*>(iov[i].iov_base);
      for (size_t j = 0; j < iov[i].iov_len; ++j) sum ^= base[j];
      bytes += iov[i].iov_len;
    }
    Check(bytes >= sizeof(VnetHeader));
    sink_ ^= sum;
    if (refuse_gso_ && iovcnt > 1) return EINVAL;
    written_ += packets;
    return 0;
  }
  size_t written() const { return written_; }

 private:
  const bool refuse_gso_;
  size_t written_ = 0;
  volatile uint8_t sink_ = 0;
};

// A packet in a buffer of exactly its size, `headroom` bytes after the
// buffer's start.
struct Packet {
  Packet(const std::vector<uint8_t>& bytes, size_t headroom)
      : storage(std::make_unique<uint8_t[]>(headroom + bytes.size())),
        data(storage.get() + headroom),
        size(bytes.size()) {
    std::copy(bytes.begin(), bytes.end(), data);
  }
  std::unique_ptr<uint8_t[]> storage;
  uint8_t* data;
  size_t size;
};

void FuzzCoalescer(Input& in) {
  const uint8_t flags = in.Take8();
  CountingTun tun(flags & 4);
  InnerCoalescer coalescer(tun, flags & 1, flags & 2);
  std::vector<Packet> packets;
  static const int kOwners[4] = {};
  while (!in.empty() && packets.size() < 128) {
    const size_t length = in.Take16() % 2048;
    const uint8_t owner = in.Take8();
    packets.emplace_back(in.Take(length), sizeof(VnetHeader));
    Packet& p = packets.back();
    coalescer.Add(&kOwners[owner % 4], p.data, p.size);
  }
  coalescer.Flush();
  Check(tun.written() == packets.size());  // each packet written once
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in(data, size);
  switch (in.Take8() % 6) {
    case 0:
    case 1: {
      const bool tcp = size > 0 && data[0] % 6 == 0;
      const uint16_t mss = in.Take16();
      ExactSink sink(in.Take16() % 9217);
      Packet packet(in.TakeRest(), 0);
      const size_t count = tcp ? SegmentTcp(packet.data, packet.size, mss, sink)
                               : SegmentUdp(packet.data, packet.size, mss, sink);
      Check(count == sink.emitted());
      break;
    }
    case 2: {
      const uint16_t mss_v4 = in.Take16();
      const uint16_t mss_v6 = in.Take16();
      Packet packet(in.TakeRest(), 0);
      ClampTcpMss(packet.data, packet.size, mss_v4, mss_v6);
      break;
    }
    case 3: {
      const uint16_t start = in.Take16();
      const uint16_t offset = in.Take16();
      Packet packet(in.TakeRest(), 0);
      CompleteChecksum(packet.data, packet.size, start, offset);
      break;
    }
    case 4: {
      const uint32_t mtu = in.Take16();
      Packet packet(in.TakeRest(), 0);
      // The gateway's address in the packet's family, in a buffer of its size.
      const bool v6 = packet.size > 0 && (packet.data[0] >> 4) == 6;
      const std::vector<uint8_t> address =
          v6 ? std::vector<uint8_t>{0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}
             : std::vector<uint8_t>{10, 10, 0, 1};
      Packet source(address, 0);
      auto out = std::make_unique<uint8_t[]>(1280);
      Check(BuildPacketTooBig(packet.data, packet.size, source.data, mtu, out.get()) <= 1280);
      break;
    }
    case 5:
      FuzzCoalescer(in);
      break;
  }
  return 0;
}
