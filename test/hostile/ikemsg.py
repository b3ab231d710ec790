"""IKEv2 messages built byte by byte from RFC 7296 section 3, independent of
the gateway's codec, for tests that play a client (or an attacker).
Standard library only."""

import struct

# Payload types (RFC 7296 3.2) and exchange types (3.1).
SA, KE, IDI, AUTH, NONCE, NOTIFY, SK = 33, 34, 35, 39, 40, 41, 46
IKE_SA_INIT = 34
FLAG_INITIATOR = 0x08
# Transform types and IDs (IANA "IKEv2 Parameters").
ENCR, PRF, INTEG, DH = 1, 2, 3, 4
ENCR_AES_GCM_16, PRF_HMAC_SHA2_384, DH_CURVE25519 = 20, 6, 31
ATTR_KEY_LENGTH = 14


def header(spi_i, spi_r, next_payload, exchange, flags, message_id, length, version=0x20):
    return struct.pack("!QQBBBBII", spi_i, spi_r, next_payload, version, exchange, flags,
                       message_id, length)


def transform(ttype, tid, attributes=b"", last=False):
    body = struct.pack("!BBH", ttype, 0, tid) + attributes
    return struct.pack("!BBH", 0 if last else 3, 0, 4 + len(body)) + body


def key_length(bits):
    return struct.pack("!HH", 0x8000 | ATTR_KEY_LENGTH, bits)


def proposal(number, transforms, protocol=1, last=True):
    body = struct.pack("!BBBB", number, protocol, 0, len(transforms)) + b"".join(transforms)
    return struct.pack("!BBH", 0 if last else 2, 0, 4 + len(body)) + body


def modern_proposal(number=1, last=True, encr_attributes=None):
    """AES-GCM-16 256, HMAC-SHA2-384 PRF, Curve25519."""
    attrs = key_length(256) if encr_attributes is None else encr_attributes
    return proposal(number, [transform(ENCR, ENCR_AES_GCM_16, attrs),
                             transform(PRF, PRF_HMAC_SHA2_384),
                             transform(DH, DH_CURVE25519, last=True)], last=last)


def message(spi_i, spi_r, exchange, flags, message_id, payloads, version=0x20):
    """payloads: [(type, body)]; generic payload headers are added here."""
    out = b""
    for i, (_, body) in enumerate(payloads):
        nxt = payloads[i + 1][0] if i + 1 < len(payloads) else 0
        out += struct.pack("!BBH", nxt, 0, 4 + len(body)) + body
    first = payloads[0][0] if payloads else 0
    return header(spi_i, spi_r, first, exchange, flags, message_id, 28 + len(out), version) + out


def ike_sa_init(spi_i, ke_public, nonce, proposals=None, extra=()):
    """An IKE_SA_INIT request offering `proposals` (the modern set by default)."""
    sa = proposals if proposals is not None else modern_proposal()
    payloads = [(SA, sa), (KE, struct.pack("!HH", DH_CURVE25519, 0) + ke_public), (NONCE, nonce),
                *extra]
    return message(spi_i, 0, IKE_SA_INIT, FLAG_INITIATOR, 0, payloads)


def parse(data):
    """(header fields, [(payload type, body)]) of a message, unencrypted payloads only."""
    spi_i, spi_r, nxt, version, exchange, flags, mid, length = struct.unpack("!QQBBBBII", data[:28])
    payloads, off = [], 28
    while nxt and off + 4 <= len(data):
        following, _, plen = struct.unpack("!BBH", data[off:off + 4])
        payloads.append((nxt, data[off + 4:off + plen]))
        if nxt == SK:
            break
        nxt, off = following, off + plen
    return {"spi_i": spi_i, "spi_r": spi_r, "exchange": exchange, "flags": flags,
            "message_id": mid, "length": length}, payloads
