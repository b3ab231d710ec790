#!/usr/bin/env python3
"""IKE_SA_INIT as strictly as RFC 7296 asks, against the real gateway:
- dropped without an answer (3.10.1 allows INVALID_SYNTAX only protected):
  SPIi zero (3.1), no Initiator flag or a message ID other than 0, major
  version 1 (IKEv1; 1.5), two SA, KE or Nonce payloads, an SK, IDi or AUTH
  payload (1.2);
- answered INVALID_MAJOR_VERSION: major version 3 (1.5);
- a transform with an attribute the gateway does not understand is not
  chosen, another transform of its type still is (3.3.6);
- refusals are counted per reason, and logged as a summary line per
  interval, not a line per packet.

  init_strictness_test.py PATH-TO-gateway
"""

import os
import socket
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gateway_process  # noqa: E402
import ikemsg as m  # noqa: E402

KE_PUBLIC = bytes(range(0x41, 0x61))
INVALID_MAJOR_VERSION, NO_PROPOSAL_CHOSEN = 5, 14


def base_payloads(proposals=None):
    return [(m.SA, proposals or m.modern_proposal()),
            (m.KE, struct.pack("!HH", m.DH_CURVE25519, 0) + KE_PUBLIC), (m.NONCE, b"\x11" * 32)]


def init(spi, payloads=None, flags=m.FLAG_INITIATOR, message_id=0, version=0x20):
    return m.message(spi, 0, m.IKE_SA_INIT, flags, message_id, payloads or base_payloads(),
                     version=version)


def notify_types(payloads):
    return [struct.unpack("!H", body[2:4])[0] for t, body in payloads if t == m.NOTIFY]



def checks(gw, failures):
    spi = iter(range(0x8000000000000001, 0x8000000000001000))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        answer = gw.exchange(sock, init(next(spi)))
        if answer is None or m.NONCE not in [t for t, _ in m.parse(answer)[1]]:
            failures.append("a well-formed request was not answered")

        sa, ke, nonce = base_payloads()
        dropped = {
            "SPIi zero": (init(0), "zero_spi"),
            "no Initiator flag": (init(next(spi), flags=0), "not_initiator"),
            "message ID 1": (init(next(spi), message_id=1), "message_id"),
            "two SA payloads": (init(next(spi), [sa, sa, ke, nonce]), "payload_count"),
            "two KE payloads": (init(next(spi), [sa, ke, ke, nonce]), "payload_count"),
            "two Nonce payloads": (init(next(spi), [sa, ke, nonce, nonce]), "payload_count"),
            "IDi": (init(next(spi), [sa, ke, nonce, (m.IDI, b"\x02\x00\x00\x00x")]),
                    "unexpected_payload"),
            "AUTH": (init(next(spi), [sa, ke, nonce, (m.AUTH, b"\x01\x00\x00\x00" + b"\x00" * 20)]),
                     "unexpected_payload"),
            "SK": (init(next(spi), [sa, ke, nonce, (m.SK, b"\x00" * 40)]), "unexpected_payload"),
        }
        before = gw.metrics()
        for what, (request, reason) in dropped.items():
            got = gw.exchange(sock, request, timeout=0.4)
            if got is not None:
                failures.append(f"{what}: answered {notify_types(m.parse(got)[1])}, want no answer")
        after = gw.metrics()
        for reason in {r for _, r in dropped.values()}:
            want = sum(1 for _, r in dropped.values() if r == reason)
            moved = gateway_process.metric(after, "ike_datagrams_dropped_total", reason=reason) - \
                gateway_process.metric(before, "ike_datagrams_dropped_total", reason=reason)
            if moved != want:
                failures.append(f"ike_datagrams_dropped_total{{reason={reason}}} moved {moved}, want {want}")

        if gw.exchange(sock, init(next(spi), version=0x10), timeout=0.4) is not None:
            failures.append("IKEv1 (major version 1) was answered")
        got = gw.exchange(sock, init(next(spi), version=0x30))
        if got is None or notify_types(m.parse(got)[1]) != [INVALID_MAJOR_VERSION]:
            failures.append(f"major version 3: want INVALID_MAJOR_VERSION, got "
                            f"{None if got is None else notify_types(m.parse(got)[1])}")

        unknown_attr = m.key_length(256) + struct.pack("!HH", 0x8000 | 17, 1)
        only_odd = m.modern_proposal(encr_attributes=unknown_attr)
        got = gw.exchange(sock, init(next(spi), base_payloads(only_odd)))
        if got is None or notify_types(m.parse(got)[1]) != [NO_PROPOSAL_CHOSEN]:
            failures.append("a proposal whose only ENCR carries an unknown attribute: want "
                            "NO_PROPOSAL_CHOSEN")
        with_alternative = m.proposal(1, [
            m.transform(m.ENCR, m.ENCR_AES_GCM_16, unknown_attr),
            m.transform(m.ENCR, m.ENCR_AES_GCM_16, m.key_length(128)),
            m.transform(m.PRF, m.PRF_HMAC_SHA2_384),
            m.transform(m.DH, m.DH_CURVE25519, last=True)])
        got = gw.exchange(sock, init(next(spi), base_payloads(with_alternative)))
        chosen = got and dict(m.parse(got)[1]).get(m.SA, b"")
        if not chosen or m.key_length(128) not in chosen or unknown_attr in chosen:
            failures.append("the ENCR transform without the unknown attribute was not chosen")

        # 300 refusals: counted each, logged as a summary, not per packet.
        base = gateway_process.metric(gw.metrics(), "ike_sa_init_refused_total", reason="no_proposal_chosen")
        nothing_we_take = m.proposal(1, [m.transform(m.ENCR, 12, m.key_length(256)),  # AES-CBC
                                         m.transform(m.PRF, 1),  # HMAC-MD5
                                         m.transform(m.DH, 1, last=True)])  # MODP-768
        unanswered = sum(gw.exchange(sock, init(next(spi), base_payloads(nothing_we_take))) is None
                         for _ in range(300))
        if unanswered:
            failures.append(f"{unanswered} of 300 unacceptable proposals got no NO_PROPOSAL_CHOSEN")
        moved = gateway_process.metric(gw.metrics(), "ike_sa_init_refused_total", reason="no_proposal_chosen") - base
        if moved != 300:
            failures.append(f"ike_sa_init_refused_total{{reason=no_proposal_chosen}} moved {moved}, want 300")
        per_packet = [line for line in gw.lines() if '"IKE_SA_INIT refused"' in line]
        summaries = [line for line in gw.lines() if '"IKE_SA_INIT refusals"' in line]
        if per_packet or len(summaries) > 2:
            failures.append(f"{len(per_packet)} per-packet refusal lines and {len(summaries)} "
                            "summary lines for 300 refusals")


if __name__ == "__main__":
    sys.exit(gateway_process.run(sys.argv[1], checks))
