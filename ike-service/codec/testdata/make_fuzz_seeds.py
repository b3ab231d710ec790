#!/usr/bin/env python3
"""Writes the hand-built seeds of message_fuzzer_corpus/ (RFC 7296 layouts).

The strongSwan seeds (strongswan_*.bin) were captured from charon 5.9.8; see
test_vectors.cc. Run from this directory: python3 make_fuzz_seeds.py
"""
import struct


def payload(next_type, body, critical=False):
    return struct.pack(">BBH", next_type, 0x80 if critical else 0, 4 + len(body)) + body


def chain(items):
    """items: [(type, body, critical)], chained; returns (first type, bytes)."""
    out = b""
    for i, (_, body, critical) in enumerate(items):
        nxt = items[i + 1][0] if i + 1 < len(items) else 0
        out += payload(nxt, body, critical)
    return (items[0][0] if items else 0), out


def header(first, exchange, flags, message_id, body_len, spi_r=0):
    return struct.pack(">QQBBBBII", 0x0102030405060708, spi_r, first, 0x20, exchange,
                       flags, message_id, 28 + body_len)


def transform(last, ttype, tid, attrs=b""):
    return struct.pack(">BBHBBH", 0 if last else 3, 0, 8 + len(attrs), ttype, 0, tid) + attrs


def proposal(last, number, protocol, spi, transforms):
    body = b"".join(transform(i + 1 == len(transforms), *t) for i, t in enumerate(transforms))
    return struct.pack(">BBHBBBB", 0 if last else 2, 0, 8 + len(spi) + len(body), number,
                       protocol, len(spi), len(transforms)) + spi + body


KEY_128 = struct.pack(">HH", 0x800E, 128)
ts4 = struct.pack(">BBHHH", 7, 0, 16, 0, 65535) + bytes([10, 0, 0, 0, 10, 255, 255, 255])
ts6 = struct.pack(">BBHHH", 8, 17, 40, 500, 500) + bytes(16) + b"\xff" * 16
esp_sa = proposal(False, 1, 3, b"\xc0\x01\x02\x03", [(1, 12, KEY_128), (3, 12), (5, 0)]) + \
    proposal(True, 2, 3, b"\xc0\x01\x02\x03", [(1, 20, KEY_128), (5, 0), (5, 1)])
cp_request = bytes([1, 0, 0, 0]) + b"".join(struct.pack(">HH", t, 0) for t in (1, 3, 8, 10, 23456, 23457))
inner = [
    (35, bytes([1, 0, 0, 0, 192, 0, 2, 10]), False),                 # IDi ID_IPV4_ADDR
    (38, bytes([4]) + bytes(range(20)), False),                       # CERTREQ, one SHA-1
    (41, struct.pack(">BBH", 0, 0, 16396), False),                    # N(MOBIKE_SUPPORTED)
    (47, cp_request, False),                                          # CP(CFG_REQUEST)
    (33, esp_sa, False),                                              # SA, two ESP proposals
    (44, bytes([2, 0, 0, 0]) + ts4 + ts6, False),                     # TSi
    (45, bytes([1, 0, 0, 0]) + ts4, False),                           # TSr
]
first, body = chain(inner)
open("message_fuzzer_corpus/inner_ike_auth_request.bin", "wb").write(bytes([first]) + body)

inner2 = [
    (36, bytes([2, 0, 0, 0]) + b"vpn.example.com", False),            # IDr FQDN
    (37, bytes([4]) + b"\x30\x82\x01\x00" + bytes(32), False),        # CERT
    (39, bytes([14, 0, 0, 0]) + bytes(40), False),                    # AUTH digital signature
    (48, bytes([1, 7, 0, 10, 26, 1, 7, 0, 0, 0]), False),             # EAP Request, MSCHAPv2
    (47, bytes([2, 0, 0, 0]) + struct.pack(">HH", 1, 4) + bytes([10, 9, 0, 2]) +
     struct.pack(">HH", 8, 17) + bytes(16) + bytes([64]), False),     # CP(CFG_REPLY)
    (42, struct.pack(">BBH", 3, 4, 2) + b"\xc0\x01\x02\x03\xc0\x01\x02\x04", False),
    (43, b"strongSwan", False),                                       # V
    (200, b"opaque", False),                                          # unknown, skipped
]
first, body = chain(inner2)
open("message_fuzzer_corpus/inner_mixed_reply.bin", "wb").write(bytes([first]) + body)

# IKE_AUTH request: HDR, SK{IDi...} with 16-byte IV, 32-byte ciphertext, 12-byte ICV.
sk_body = bytes(range(16)) + bytes(32) + b"\xaa" * 12
sk = struct.pack(">BBH", 35, 0, 4 + len(sk_body)) + sk_body
open("message_fuzzer_corpus/ike_auth_sk.bin", "wb").write(
    header(46, 35, 0x08, 1, len(sk), spi_r=0x1112131415161718) + sk)

# RFC 7383 fragment 1 of 3.
skf_body = struct.pack(">HH", 1, 3) + bytes(8) + bytes(24) + b"\xbb" * 12
skf = struct.pack(">BBH", 35, 0, 4 + len(skf_body)) + skf_body
open("message_fuzzer_corpus/ike_auth_skf.bin", "wb").write(
    header(53, 35, 0x08, 1, len(skf), spi_r=0x1112131415161718) + skf)

# INFORMATIONAL response with Delete(IKE) and an unknown non-critical payload, in clear.
first, body = chain([(42, struct.pack(">BBH", 1, 0, 0), False), (128, b"\x01\x02", False)])
open("message_fuzzer_corpus/informational_clear.bin", "wb").write(header(first, 37, 0x20, 2, len(body)) + body)
