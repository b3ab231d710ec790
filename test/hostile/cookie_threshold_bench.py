#!/usr/bin/env python3
"""How the COOKIE threshold bounds the work a burst of spoofed IKE_SA_INITs
costs, and what a real client feels meanwhile (a benchmark: it prints
numbers and passes no judgement).

For each threshold, a fresh gateway gets a burst of requests from 64
loopback addresses (a spoofing attacker: it never echoes a cookie) choosing
the costliest group the default proposals accept (MODP-3072), while a
client on 127.0.0.2 sends an IKE_SA_INIT (Curve25519) every 10 ms. Printed
per threshold: half-open SAs created, the client's answer time (median,
95th percentile, max) and how long the gateway took to get through the
burst.

  cookie_threshold_bench.py PATH-TO-gateway [--burst N] [--thresholds 30,100,300,1000]
"""

import argparse
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

MODP3072 = 15


def modp3072_init(spi):
    proposal = m.proposal(1, [m.transform(m.ENCR, m.ENCR_AES_GCM_16, m.key_length(256)),
                              m.transform(m.PRF, m.PRF_HMAC_SHA2_384),
                              m.transform(m.DH, MODP3072, last=True)])
    ke = struct.pack("!HH", MODP3072, 0) + bytes([0x5A]) * 384
    return m.message(spi, 0, m.IKE_SA_INIT, m.FLAG_INITIATOR, 0,
                     [(m.SA, proposal), (m.KE, ke), (m.NONCE, b"\x77" * 32)])


def run(binary, threshold, burst):
    gw = gateway_process.Gateway(binary, extra_yaml=f"ike_service: {{cookie_threshold: {threshold}}}\n")
    times, stop = [], threading.Event()

    def client():
        # One request, retransmitted: each answer waits its turn in the
        # queues like a new client would, without adding half-open SAs.
        request = m.ike_sa_init(0x7000000000000001, bytes(range(0x21, 0x41)), b"\x88" * 32)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.2", 0))
            while not stop.is_set():
                t0 = time.monotonic()
                got = gw.exchange(s, request, timeout=1)
                times.append((t0, (time.monotonic() - t0) * 1000 if got else None))
                time.sleep(0.01)
    try:
        c = threading.Thread(target=client, daemon=True)
        c.start()
        time.sleep(0.3)
        socks = []
        for i in range(64):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((f"127.0.1.{i + 1}", 0))
            socks.append(s)
        t0 = time.monotonic()
        for i in range(burst):
            socks[i % 64].sendto(modp3072_init(0x6000000000000000 + i), ("127.0.0.1", gw.ike_port))
        # Until the burst's half-open SAs and cookie refusals stop moving.
        last, settled = -1, 0
        while settled < 3 and time.monotonic() - t0 < 60:
            metrics = gw.metrics()
            done = gateway_process.metric(metrics, "ike_sas_half_open") + \
                gateway_process.metric(metrics, "ike_sa_init_refused_total", reason="cookie_required")
            settled = settled + 1 if done == last else 0
            last = done
            time.sleep(0.1)
        busy = time.monotonic() - t0 - 0.3
        stop.set()
        c.join()
        window = [ms for at, ms in times if t0 <= at <= t0 + max(busy, 0.5)]
        lost = sum(ms is None for ms in window)
        during = sorted(ms for ms in window if ms is not None) or [0.0]
        half_open = gateway_process.metric(gw.metrics(), "ike_sas_half_open")
        for s in socks:
            s.close()
        p95 = during[min(len(during) - 1, int(len(during) * 0.95))]
        print(f"threshold {threshold:>5}: {half_open:>5.0f} half-open; client answer median "
              f"{statistics.median(during):6.1f} ms, p95 {p95:6.1f} ms, max {during[-1]:6.1f} ms "
              f"({len(window)} asks, {lost} unanswered in 1 s); burst handled in {busy:.2f} s", flush=True)
    finally:
        gw.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("gateway")
    ap.add_argument("--burst", type=int, default=3000)
    ap.add_argument("--thresholds", default="30,100,300,1000")
    a = ap.parse_args()
    print(f"burst of {a.burst} MODP-3072 IKE_SA_INITs from 64 addresses; nproc {os.cpu_count()}")
    for t in a.thresholds.split(","):
        run(a.gateway, int(t), a.burst)
    return 0


if __name__ == "__main__":
    sys.exit(main())
