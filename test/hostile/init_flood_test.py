#!/usr/bin/env python3
"""Floods of IKE_SA_INIT from one address, against the real gateway:
1. 10,500 requests of 60 KB (a huge Notify): dropped before they are queued
   (max_ike_sa_init_size), so memory does not follow the flood;
2. 10,500 well-formed requests under fresh SPIs: at most
   half_open_per_source_limit (128) half-open SAs for that address, however
   many it sends, since cookies cannot stop an address that echoes them
   (cookies are set to engage only past 100,000 half-open SAs here, which
   stands for that).
Throughout, another client address gets its IKE_SA_INIT answered.
Measured: the gateway's resident memory (VmRSS) growth, which must stay
under 64 MiB, and the other client's answer time, which must stay under
100 ms at the median (printed: min / median / max).

  init_flood_test.py PATH-TO-gateway
"""

import os
import socket
import statistics
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gateway_process  # noqa: E402
import ikemsg as m  # noqa: E402

FLOOD = 10_500
KE_PUBLIC = bytes(range(0x41, 0x61))


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0



class Client(threading.Thread):
    """A client on 127.0.0.2 asking every 50 ms, timing each answer."""

    def __init__(self, gw):
        super().__init__(daemon=True)
        self.gw, self.times, self.unanswered, self.stop = gw, [], 0, threading.Event()

    def run(self):
        spi = 0x2000000000000000
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.2", 0))
            while not self.stop.is_set():
                spi += 1
                t0 = time.monotonic()
                if self.gw.exchange(sock, m.ike_sa_init(spi, KE_PUBLIC, b"\x22" * 32), timeout=1.0):
                    self.times.append((time.monotonic() - t0) * 1000)
                else:
                    self.unanswered += 1
                time.sleep(0.05)


def flood(gw, requests):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        for i, request in enumerate(requests):
            try:
                sock.sendto(request, ("127.0.0.1", gw.ike_port))
            except BlockingIOError:
                pass
            if i % 200 == 0:
                time.sleep(0.001)  # let the kernel's queues drain a little


def checks(gw, failures):
    time.sleep(0.5)
    base_rss = rss_kib(gw.proc.pid)
    client = Client(gw)
    client.start()
    huge = m.ike_sa_init(0x3000000000000000, KE_PUBLIC, b"\x33" * 32,
                         extra=[(m.NOTIFY, struct.pack("!BBH", 0, 0, 40000) + b"\x44" * 60_000)])
    assert len(huge) > 60_000
    t0 = time.monotonic()
    flood(gw, (huge[:0] + struct.pack("!Q", 0x3000000000000000 + i) + huge[8:] for i in range(FLOOD)))
    flood(gw, (m.ike_sa_init(0x4000000000000000 + i, KE_PUBLIC, b"\x55" * 32) for i in range(FLOOD)))
    time.sleep(1.0)
    flood_s = time.monotonic() - t0
    client.stop.set()
    client.join()
    rss = rss_kib(gw.proc.pid)
    metrics = gw.metrics()
    half_open = gateway_process.metric(metrics, "ike_sas_half_open")
    too_large = gateway_process.metric(metrics, "ike_datagrams_dropped_total", reason="init_too_large")
    per_source = gateway_process.metric(metrics, "ike_datagrams_dropped_total", reason="source_half_open_limit")
    times = sorted(client.times)
    print(f"flood: {2 * FLOOD} requests in {flood_s:.1f} s; RSS {base_rss // 1024} -> {rss // 1024} MiB "
          f"(+{(rss - base_rss) / 1024:.1f} MiB); half-open SAs {half_open:.0f}; dropped "
          f"init_too_large {too_large:.0f}, source_half_open_limit {per_source:.0f}")
    if times:
        print(f"other client: {len(times)} answers, {client.unanswered} unanswered; answer time "
              f"min {times[0]:.1f} / median {statistics.median(times):.1f} / max {times[-1]:.1f} ms")
    if rss - base_rss > 64 * 1024:
        failures.append(f"RSS grew by {(rss - base_rss) / 1024:.1f} MiB (limit 64)")
    # The other client's SAs stay half-open too: one per answer.
    if half_open > 128 + len(times):
        failures.append(f"{half_open:.0f} half-open SAs; want at most 128 from the flooding "
                        f"address and {len(times)} from the other client")
    if too_large == 0 or per_source == 0:
        failures.append("the size cap or the per-source limit never dropped anything")
    if not times or statistics.median(times) > 100:
        failures.append("the other client's median answer time is over 100 ms (or it got none)")
    if client.unanswered > max(2, len(times) // 10):
        failures.append(f"the other client went unanswered {client.unanswered} times")


if __name__ == "__main__":
    # Cookies only past 100,000 half-open SAs: the flood stands for an
    # address that echoes every cookie, so only the per-source limit and the
    # size cap stand in its way.
    sys.exit(gateway_process.run(sys.argv[1], checks,
                                 extra_yaml="ike_service: {cookie_threshold: 100000}\n"))
