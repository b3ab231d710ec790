#!/usr/bin/env python3
"""SIGTERM while IKE traffic arrives and half-open SAs are held: the gateway
must exit 0 (no crash in a component called after it stopped) within 1 s,
ten times in a row. Prints each stop's time and the median. The load also
fills half_open_limit (1000) from 16 addresses: never more.

  stop_under_load_test.py PATH-TO-gateway
"""

import os
import signal
import socket
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gateway_process  # noqa: E402
import ikemsg as m  # noqa: E402

RUNS = 10


def load(gw, stop):
    """IKE_SA_INITs under fresh SPIs from 16 addresses, until `stop`."""
    socks = []
    for i in range(16):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((f"127.0.0.{10 + i}", 0))
        s.setblocking(False)
        socks.append(s)
    spi = 0x5000000000000000
    while not stop.is_set():
        for s in socks:
            spi += 1
            try:
                s.sendto(m.ike_sa_init(spi, bytes(range(0x61, 0x81)), b"\x66" * 32), ("127.0.0.1", gw.ike_port))
            except OSError:
                pass
        time.sleep(0.001)
    for s in socks:
        s.close()


def main():
    failures, times = [], []
    for run in range(RUNS):
        # No cookies: the half-open SAs pile up as from clients echoing them,
        # up to the global limit (16 addresses could hold 2048), which two
        # workers must not overshoot.
        gw = gateway_process.Gateway(
            sys.argv[1], extra_yaml="ike_service: {cookie_threshold: 100000, half_open_limit: 1000}\n")
        stop = threading.Event()
        loader = threading.Thread(target=load, args=(gw, stop), daemon=True)
        loader.start()
        time.sleep(1.0)
        half_open = gateway_process.metric(gw.metrics(), "ike_sas_half_open")
        t0 = time.monotonic()
        gw.proc.send_signal(signal.SIGTERM)
        try:
            code = gw.proc.wait(10)
        except Exception:  # noqa: BLE001 - a hang is a failure too
            gw.proc.kill()
            code = "hung"
        elapsed = time.monotonic() - t0
        stop.set()
        loader.join()
        times.append(elapsed)
        print(f"run {run + 1}: {half_open:.0f} half-open SAs; SIGTERM to exit {elapsed * 1000:.0f} ms, exit {code}")
        if code != 0:
            failures.append(f"run {run + 1}: exit {code}; log {gw.log_path}")
        if elapsed > 1.0:
            failures.append(f"run {run + 1}: stopping took {elapsed:.2f} s (limit 1 s)")
        if half_open < 500:
            failures.append(f"run {run + 1}: only {half_open:.0f} half-open SAs: no load")
        if half_open > 1000:
            failures.append(f"run {run + 1}: {half_open:.0f} half-open SAs past half_open_limit 1000")
    print(f"stop time: median {statistics.median(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms")
    for f in failures:
        print(f"FAIL {f}")
    print("PASS" if not failures else f"{len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
