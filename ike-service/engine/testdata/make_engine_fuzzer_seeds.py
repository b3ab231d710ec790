#!/usr/bin/env python3
"""Writes the seeds of engine_fuzzer_corpus/: inner payload chains of the
requests a client sends on an established IKE SA (layouts: RFC 7296 3,
RFC 4555 4, RFC 7383), prefixed as engine_fuzzer.cc reads its input.
Run from this directory."""
import struct

IKE_AUTH, CREATE_CHILD_SA, INFORMATIONAL = 0, 1, 2
FRAGMENTS = 0x01
RESPONSE = 0x02
RETRANSMIT = 0x04
CORRUPT = 0x08
NEW_PORT = 0x10

SA, KE, IDI, AUTH, NONCE, NOTIFY, DELETE, TSI, TSR, CP = 33, 34, 35, 39, 40, 41, 42, 44, 45, 47


def chain(payloads):
    """[(type, body)] -> (first type, bytes) with each next-payload set."""
    out = b""
    for i, (ptype, body) in enumerate(payloads):
        following = payloads[i + 1][0] if i + 1 < len(payloads) else 0
        out += struct.pack("!BBH", following, 0, 4 + len(body)) + body
    return (payloads[0][0] if payloads else 0), out


def notify(ntype, data=b"", protocol=0, spi=b""):
    return NOTIFY, struct.pack("!BBH", protocol, len(spi), ntype) + spi + data


def transform(ttype, tid, attributes=b"", last=False):
    return struct.pack("!BBHBBH", 0 if last else 3, 0, 8 + len(attributes), ttype, 0, tid) + attributes


def key_bits(bits):
    return struct.pack("!HH", 0x800E, bits)


def proposal(protocol, spi, transforms):
    body = b"".join(transforms)
    return SA, struct.pack("!BBHBBBB", 0, 0, 8 + len(spi) + len(body), 1, protocol, len(spi),
                           len(transforms)) + spi + body


def esp_gcm(spi=b"\xc0\x00\x10\x01"):
    return proposal(3, spi, [transform(1, 20, key_bits(256)), transform(5, 0, last=True)])


def ike_rekey(spi=b"\x11" * 8):
    return proposal(1, spi, [transform(1, 20, key_bits(256)), transform(2, 6),
                             transform(4, 31, last=True)])


def ts(payload_type):
    selector = struct.pack("!BBHHH", 7, 0, 16, 0, 65535) + bytes(4) + b"\xff" * 4
    return payload_type, struct.pack("!B3x", 1) + selector


def nonce(fill=0x4E):
    return NONCE, bytes([fill]) * 32


def write(name, exchange, flags, payloads):
    first, body = chain(payloads)
    with open("engine_fuzzer_corpus/" + name, "wb") as f:
        f.write(bytes([exchange, flags, first]) + body)


write("liveness", INFORMATIONAL, 0, [])
write("liveness_answer", INFORMATIONAL, RESPONSE, [])
write("delete_ike_sa", INFORMATIONAL, 0, [(DELETE, struct.pack("!BBH", 1, 0, 0))])
write("delete_child_sa", INFORMATIONAL, 0, [(DELETE, struct.pack("!BBH", 3, 4, 2) + b"\xc0\x00\x10\x01\xde\xad\xbe\xef")])
write("update_sa_addresses", INFORMATIONAL, NEW_PORT, [
    notify(16400), notify(16388, b"\x01" * 20), notify(16389, b"\x02" * 20), notify(16391, b"cookie2-" * 2)])
write("update_sa_addresses_fragments", INFORMATIONAL, NEW_PORT | FRAGMENTS | (1 << 5), [
    notify(16400), notify(16391, b"\x07" * 16)])
write("cookie2_retransmit", INFORMATIONAL, RETRANSMIT, [notify(16391, b"\x08" * 32)])
write("additional_addresses", INFORMATIONAL, 0, [notify(16385, b"\xc6\x33\x64\x02"), notify(16386, b"\x20\x01\x0d\xb8" + bytes(12))])
write("create_child", CREATE_CHILD_SA, 0, [esp_gcm(), nonce(), ts(TSI), ts(TSR)])
write("create_child_fragments", CREATE_CHILD_SA, FRAGMENTS | (2 << 5), [esp_gcm(), nonce(), ts(TSI), ts(TSR)])
write("rekey_child", CREATE_CHILD_SA, 0, [notify(16393, protocol=3, spi=b"\xc0\x00\x10\x01"), esp_gcm(b"\xc0\x00\x10\x02"), nonce(0x4F), ts(TSI), ts(TSR)])
write("rekey_child_pfs", CREATE_CHILD_SA, 0, [notify(16393, protocol=3, spi=b"\xc0\x00\x10\x01"),
    proposal(3, b"\xc0\x00\x10\x03", [transform(1, 20, key_bits(256)), transform(4, 31), transform(5, 0, last=True)]),
    nonce(0x50), (KE, struct.pack("!HH", 31, 0) + b"\x09" * 32), ts(TSI), ts(TSR)])
write("rekey_ike_sa", CREATE_CHILD_SA, 0, [ike_rekey(), nonce(0x51), (KE, struct.pack("!HH", 31, 0) + b"\x09" * 32)])
write("ike_auth_again", IKE_AUTH, 0, [(IDI, struct.pack("!B3x", 1) + b"\xc0\x00\x02\x02"), (AUTH, struct.pack("!B3x", 2) + b"\x00" * 20)])
write("config_request", INFORMATIONAL, 0, [(CP, struct.pack("!B3x", 1) + struct.pack("!HH", 1, 0))])
write("corrupted", INFORMATIONAL, CORRUPT, [])
