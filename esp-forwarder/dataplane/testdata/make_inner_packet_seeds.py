#!/usr/bin/env python3
"""Writes the seeds of inner_packet_fuzzer_corpus/ (layouts: RFC 791, 793,
768, 8200; inputs as inner_packet_fuzzer.cc reads them). Run from here."""
import struct


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4(proto, l4, ident=7, df=True):
    total = 20 + len(l4)
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, ident, 0x4000 if df else 0, 64,
                    proto, 0, bytes([10, 10, 0, 2]), bytes([203, 0, 113, 2]))
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    pseudo = h[12:20] + struct.pack("!BBH", 0, proto, len(l4))
    return h, pseudo


def ipv6(proto, l4):
    src = bytes.fromhex("fd000000000000000000000000000002")
    dst = bytes.fromhex("20010db8000000000000000000000002")
    h = struct.pack("!IHBB16s16s", 0x60000000, len(l4), proto, 64, src, dst)
    pseudo = src + dst + struct.pack("!IxxxB", len(l4), proto)
    return h, pseudo


def tcp(ip, payload, flags=0x10, seq=0x10203040, mss=None, ident=7):
    opts = struct.pack("!BBH", 2, 4, mss) if mss else b""
    off = (20 + len(opts)) // 4
    t = struct.pack("!HHIIBBHHH", 1000, 80, seq, 0, off << 4, flags, 0xFFFF, 0, 0) + opts + payload
    h, pseudo = ip(6, t) if ip is ipv6 else ip(6, t, ident)
    t = t[:16] + struct.pack("!H", csum(pseudo + t)) + t[18:]
    return h + t


def udp(ip, payload):
    u = struct.pack("!HHHH", 5000, 9000, 8 + len(payload), 0) + payload
    h, pseudo = ip(17, u)
    u = u[:6] + struct.pack("!H", csum(pseudo + u) or 0xFFFF) + u[8:]
    return h + u


def write(name, data):
    open("inner_packet_fuzzer_corpus/" + name, "wb").write(data)


be16 = lambda v: struct.pack("!H", v)
write("segment_tcp4", b"\0" + be16(1400) + be16(1500) + tcp(ipv4, b"x" * 4000, 0x18))
write("segment_tcp6", b"\0" + be16(1000) + be16(1100) + tcp(ipv6, b"y" * 2500))
write("segment_udp4", b"\1" + be16(1300) + be16(1400) + udp(ipv4, b"u" * 3000))
write("segment_udp6", b"\1" + be16(500) + be16(600) + udp(ipv6, b"v" * 1200))
write("clamp_syn4", b"\2" + be16(1360) + be16(1340) + tcp(ipv4, b"", 0x02, mss=1460))
write("clamp_syn6", b"\2" + be16(1360) + be16(1340) + tcp(ipv6, b"", 0x02, mss=1440))
write("checksum_tcp4", b"\3" + be16(20) + be16(16) + tcp(ipv4, b"z" * 100))
write("checksum_udp6", b"\3" + be16(40) + be16(6) + udp(ipv6, b"w" * 99))
write("too_big4", b"\4" + be16(1400) + tcp(ipv4, b"b" * 1400))
write("too_big6", b"\4" + be16(1280) + udp(ipv6, b"c" * 1400))
run = b""
for i in range(4):
    p = tcp(ipv4, b"d" * 1000, 0x18 if i == 3 else 0x10, 0x1000 + 1000 * i, ident=7 + i)
    run += be16(len(p)) + b"\0" + p
write("coalesce_tcp4_run", b"\5\3" + run)
run = b""
for i in range(3):
    p = udp(ipv6, b"e" * (800 if i < 2 else 300))
    run += be16(len(p)) + bytes([i % 2]) + p
write("coalesce_udp6_two_owners", b"\5\7" + run)
