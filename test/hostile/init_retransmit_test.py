#!/usr/bin/env python3
"""RFC 7296 2.1: a retransmitted IKE_SA_INIT request gets the same response.
The request is full of bytes >= 0x80 (SPI, nonce, key share), the case a
signed-char comparison of the stored request got wrong: the retransmit was
dropped as init_spi_in_use and the client refused until the half-open SA
expired.

  init_retransmit_test.py PATH-TO-gateway
"""

import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gateway_process  # noqa: E402
import ikemsg  # noqa: E402


def checks(gw, failures):
    request = ikemsg.ike_sa_init(0xF1E2D3C4B5A69788, bytes(range(0xA0, 0xC0)), b"\xff" * 32)
    assert sum(b >= 0x80 for b in request) > 64
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        first = gw.exchange(sock, request)
        if first is None:
            failures.append("no answer to the IKE_SA_INIT request")
        else:
            hdr, payloads = ikemsg.parse(first)
            types = [t for t, _ in payloads]
            if hdr["spi_i"] != 0xF1E2D3C4B5A69788 or hdr["spi_r"] == 0 or \
                    not {ikemsg.SA, ikemsg.KE, ikemsg.NONCE} <= set(types):
                failures.append(f"not an IKE_SA_INIT response: {hdr} {types}")
            for attempt in (1, 2):
                again = gw.exchange(sock, request)
                if again != first:
                    failures.append(f"retransmit {attempt}: " +
                                    ("no answer" if again is None else "a different answer"))
            # Another request under the same SPI is not a retransmit.
            other = ikemsg.ike_sa_init(0xF1E2D3C4B5A69788, bytes(range(0xA0, 0xC0)), b"\xfe" * 32)
            if gw.exchange(sock, other, timeout=0.5) is not None:
                failures.append("a different request under the SPI in use was answered")


if __name__ == "__main__":
    sys.exit(gateway_process.run(sys.argv[1], checks))
