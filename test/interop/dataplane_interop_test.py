#!/usr/bin/env python3
"""Issue 6 acceptance, "real traffic": a strongSwan road warrior (EAP-MSCHAPv2)
through OUR gateway's ESP data plane, with the Windows 7 ESP set
(aes256-sha1) and with AES-GCM-256.

Reuses the harness (netns.sh topologies, swan.py, interop_test.Run, which
starts our gateway through --gateway-cmd). Scenarios run in two phases, each
with its own topology and gateway:

  combined  `gateway` (one process, embedded store, /metrics on 127.0.0.1:9100)
  split     etcd + two ike-service replicas, auth-service, mobility-service,
            esp-forwarder as separate processes (our_gateway.sh with
            OUR_GATEWAY_SPLIT=1 OUR_GATEWAY_IKE_REPLICAS=2; the forwarder's
            /metrics on 127.0.0.1:9104)

| scenario | phase | must |
|---|---|---|
| iperf-windows, iperf-modern | combined | iperf3 TCP and UDP, client VIP <-> 203.0.113.2 (lan), both directions: TCP completes (Mbit/s reported), UDP loss below --max-udp-loss |
| rekey-windows, rekey-modern | combined | `swanctl --rekey --child rw` during an iperf3 TCP run (both directions at once): iperf3 exits 0, every interval carries data, the new CHILD SA carries traffic |
| rekey-lost-response | combined | the same, with the CREATE_CHILD_SA response dropped once in the client namespace: iperf3 exits 0; empty intervals are reported (WARNING) and fail with --strict-rekey |
| inject-windows, inject-modern | combined | ESP captured in the client namespace (and kept from the gateway) is sent again at UDP 4500: with a flipped byte -> drops{reason="auth_failed"}, the original -> accepted, again -> drops{reason="replay"} |
| trust | split | each internal API called as the wrong role (PERMISSION_DENIED), with no certificate and with another CA's (handshake refused), and as the granted role (past the table); the relay takeover of a live replica refused (ALREADY_EXISTS, or PERMISSION_DENIED for another role); meanwhile the client's ping never stalls, the forwarder keeps both replicas, and a CHILD rekey completes |
| forwarder-restart | split | kill -9 esp-forwarder under a running ping, its supervisor restarts it: traffic resumes from the store, same IKE and CHILD SPIs, no new EAP, then a CHILD rekey crosses the restarted forwarder |
| terminate-elsewhere | split | two ike-service replicas; `vpnctl terminate` sent to the replica that does not own the client's IKE SA: it takes the SA over and deletes it; the client's SA is gone (it got the DELETE) and so are the records |
| ike-takeover | split | two ike-service replicas; the owner of the client's IKE SA answers a CHILD rekey whose response an nft rule drops, then is killed (-9): ESP keeps flowing, the client's retransmit reaches the other replica, which takes the SA over from its record and resends the stored response (the client gets the CHILD SA the dead replica created, which carries ping); a second CHILD rekey is then answered by the new owner; same IKE SPIs, no new EAP, `vpnctl sas` names the new owner; the client's DELETE removes the records |

  dataplane_interop_test.py --gateway-cmd 'exec our_gateway.sh GATEWAY VPNCTL' \\
      --split-gateway-cmd 'exec env OUR_GATEWAY_SPLIT=1 OUR_GATEWAY_IKE_REPLICAS=2 our_gateway.sh GATEWAY VPNCTL' \\
      --vpnctl VPNCTL [--scenarios a,b] [--seconds 5] [--udp-rate 100M] [--json out.json]

(dataplane_interop_test.sh builds these command lines from Bazel's runfiles.)
Exit 0: passed, or SKIP when not root. Measurements are printed as JSON.
"""

import argparse
import calendar
import collections
import json
import os
import re
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import types

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import interop_test as it  # noqa: E402
import swan  # noqa: E402

from interop_test import Failure, Timeout, say  # noqa: E402

SCENARIOS = {
    # name: (phase, ESP proposal set)
    "iperf-windows": ("combined", "windows"),
    "iperf-modern": ("combined", "modern"),
    "iperf-split": ("split", "modern"),
    "rekey-windows": ("combined", "windows"),
    "rekey-modern": ("combined", "modern"),
    "rekey-lost-response": ("combined", "modern"),
    "inject-windows": ("combined", "windows"),
    "inject-modern": ("combined", "modern"),
    "trust": ("split", "modern"),
    "forwarder-restart": ("split", "modern"),
    "terminate-elsewhere": ("split", "modern"),
    "relay-stall": ("split", "modern"),
    "ike-takeover": ("split", "windows"),
}
EXPECTED_ESP = {"windows": ("AES_CBC", "256"), "modern": ("AES_GCM_16", "256")}
METRICS_URL = {"combined": "http://127.0.0.1:9100/metrics", "split": "http://127.0.0.1:9104/metrics"}
IPERF_PORT = 5201


class Phase(it.Run):
    """One topology and one gateway (interop_test.Run), plus an iperf3 server
    in the lan namespace and helpers for traffic and metrics."""

    def __init__(self, args, name, gateway_cmd):
        run_args = types.SimpleNamespace(
            two_paths=False, nat=False, remote=None, gateway_cmd=gateway_cmd, wait_ready=True,
            gateway_timeout=args.gateway_timeout,
            responder="none", debug=args.debug, keep=args.keep, vpnctl=args.vpnctl)
        super().__init__(run_args)
        self.opts = args
        self.name = name
        self.log_label = f"dataplane-{name}"
        self.log_ignore = ("member-data", "store")
        self.metrics_url = METRICS_URL[name]
        self.iperf_server = None

    def up(self):
        super().up()
        t = self.topo
        log = open(os.path.join(self.workdir, "iperf3-server.log"), "w")
        self.iperf_server = subprocess.Popen(
            ["ip", "netns", "exec", t.lan_ns, "iperf3", "-s", "-B", t.lan_host, "-p", str(IPERF_PORT)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            p = t.exec("lan", ["ss", "-H", "-tln", "sport", "=", f":{IPERF_PORT}"], check=False)
            if p.stdout.strip():
                return
            time.sleep(0.05)
        raise Failure("iperf3 server did not listen in the lan namespace")

    def down(self):
        if self.iperf_server and self.iperf_server.poll() is None:
            os.killpg(self.iperf_server.pid, signal.SIGTERM)
            try:
                self.iperf_server.wait(3)
            except subprocess.TimeoutExpired:
                os.killpg(self.iperf_server.pid, signal.SIGKILL)
        super().down()

    def gateway_log_tail(self, lines):
        text = super().gateway_log_tail(lines)
        our = os.path.join(self.workdir, "our-gateway")
        for name in ("ike-service.log", "ike-service-1.log", "esp-forwarder.log"):
            path = os.path.join(our, name)
            if os.path.exists(path):
                with open(path, errors="replace") as f:
                    tail = f.read().splitlines()[-lines // 2:]
                text += f"\n--- {name} (last lines) ---\n" + "\n".join(tail)
        return text

    # ---- the client
    def connect(self, scenario, proposals):
        """A fresh client charon; returns (client, IKE SA dict, CHILD SA dict, vip)."""
        t = self.topo
        client, ike, child = self.connect_client(
            scenario, proposals,
            levels=swan.DEBUG_LEVELS if self.opts.debug else swan.DEFAULT_LEVELS)
        alg, size = EXPECTED_ESP[proposals]
        if child.get("encr-alg") != alg or child.get("encr-keysize") != size:
            raise Failure(f"{scenario}: ESP {child.get('encr-alg')}-{child.get('encr-keysize')}, "
                          f"want {alg}-{size}")
        vip = (ike.get("local-vips") or [None])[0]
        if not vip:
            raise Failure(f"{scenario}: no virtual IP")
        received, _, out = it.ping(t, "cli", t.lan_host, count=2, interval=0.1)
        if received < 2:
            raise Failure(f"{scenario}: ping through the tunnel: {received}/2\n{out}")
        esp = f"{child.get('encr-alg')}-{child.get('encr-keysize')}/{child.get('integ-alg', 'AEAD')}"
        say(f"{scenario}: connected, IKE {ike['spi_i']}_i {ike['spi_r']}_r, CHILD "
            f"{child['spi_in']}_in {child['spi_out']}_out {esp}, vip {vip}")
        return client, ike, child, vip, esp

    # ---- iperf3
    def iperf(self, args, seconds, timeout_extra=15):
        """Runs iperf3 -J in the client namespace against the lan host."""
        cmd = ["ip", "netns", "exec", self.topo.cli_ns, "iperf3", "-c", self.topo.lan_host,
               "-p", str(IPERF_PORT), "-t", str(seconds), "-J", "--connect-timeout", "3000", *args]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + timeout_extra)
        try:
            result = json.loads(p.stdout)
        except ValueError:
            result = {"error": f"no JSON from iperf3: {p.stdout[-500:]} {p.stderr[-500:]}"}
        return p.returncode, result

    # ---- metrics
    def scrape(self):
        return super().scrape(self.metrics_url)

    def scrape_url(self, url):
        return super().scrape(url)


LOSS_PROBES = (
    # (role, what, shell command printing one integer)
    ("gw", "udp_rcvbuf_errors", "awk '/^Udp:/ && n++ {print $6}' /proc/net/snmp"),
    ("gw", "vpn0_tx_dropped", "cat /sys/class/net/vpn0/statistics/tx_dropped"),
    ("cli", "udp_rcvbuf_errors", "awk '/^Udp:/ && n++ {print $6}' /proc/net/snmp"),
    ("cli", "ipsec0_tx_dropped", "cat /sys/class/net/ipsec0/statistics/tx_dropped"),
)


def loss_counters(topo):
    """Kernel counters where packets of a transfer can be lost outside our
    forwarder's own drop reasons: UDP receive buffer overflows (forwarder and
    charon sockets) and TUN queue drops, per namespace."""
    out = {}
    for role, what, cmd in LOSS_PROBES:
        p = topo.exec(role, ["sh", "-c", cmd], check=False, timeout=5)
        try:
            out[f"{role}.{what}"] = int(p.stdout.split()[0])
        except (IndexError, ValueError):
            pass
    return out


def counters_since(before, after):
    return {k: after[k] - before.get(k, 0) for k in after if after[k] - before.get(k, 0)}


def mbps(bits):
    return round(bits / 1e6, 1)


# --------------------------------------------------------------------------
# Scenarios

def scenario_iperf(ph, name, proposals, results):
    client, ike, child, vip, esp = ph.connect(name, proposals)
    a = ph.opts
    r = {"esp": esp}
    sent = {"up": 0, "down": 0}  # iperf3 payload bytes per direction

    def drops_since(base):
        ms = ph.scrape()
        return {dict(lab)["reason"]: int(v - base.get((n, lab), 0.0)) for (n, lab), v in ms.items()
                if n == "forwarder_esp_drops_total" and v - base.get((n, lab), 0.0) > 0}

    for label, extra in (("tcp_up", []), ("tcp_down", ["-R"])):
        base, kbase = ph.scrape(), loss_counters(ph.topo)
        rc, j = ph.iperf(extra, a.seconds)
        if rc != 0 or "error" in j:
            raise Failure(f"{name}: iperf3 TCP {label} failed (exit {rc}): {j.get('error')}")
        local = j["start"]["connected"][0]["local_host"]
        if local != vip:
            raise Failure(f"{name}: iperf3 TCP ran from {local}, not the virtual IP {vip}")
        recv = j["end"]["sum_received"]
        if recv["bytes"] <= 0:
            raise Failure(f"{name}: iperf3 TCP {label} transferred nothing")
        sent["up" if label == "tcp_up" else "down"] += recv["bytes"]
        r[label] = {"mbit_s": mbps(recv["bits_per_second"]), "bytes": recv["bytes"],
                    "retransmits": j["end"]["sum_sent"].get("retransmits"),
                    "gateway_drops": drops_since(base),
                    "kernel_drops": counters_since(kbase, loss_counters(ph.topo))}
        say(f"{name}: TCP {'client -> lan' if label == 'tcp_up' else 'lan -> client'}: "
            f"{r[label]['mbit_s']} Mbit/s over {a.seconds} s, {r[label]['retransmits']} retransmits; "
            f"our ESP drops {r[label]['gateway_drops']}, kernel drops {r[label]['kernel_drops']}")
    for label, extra in (("udp_up", []), ("udp_down", ["-R"])):
        base, kbase = ph.scrape(), loss_counters(ph.topo)
        rc, j = ph.iperf(["-u", "-b", a.udp_rate, "-l", str(a.udp_len), *extra], a.seconds)
        if rc != 0 or "error" in j:
            raise Failure(f"{name}: iperf3 UDP {label} failed (exit {rc}): {j.get('error')}")
        s = j["end"]["sum"]
        loss = float(s.get("lost_percent", 100.0))
        r[label] = {"mbit_s": mbps(s["bits_per_second"]), "lost_percent": round(loss, 3),
                    "packets": s.get("packets"), "lost": s.get("lost_packets"),
                    "jitter_ms": round(s.get("jitter_ms", 0.0), 3), "gateway_drops": drops_since(base),
                    "kernel_drops": counters_since(kbase, loss_counters(ph.topo))}
        sent["up" if label == "udp_up" else "down"] += int(s.get("bytes", 0))
        say(f"{name}: UDP {'client -> lan' if label == 'udp_up' else 'lan -> client'} at "
            f"{a.udp_rate}bit/s, {a.udp_len} B: {r[label]['mbit_s']} Mbit/s, loss "
            f"{r[label]['lost']}/{r[label]['packets']} = {loss:.2f}%, jitter {r[label]['jitter_ms']} ms; "
            f"our ESP drops {r[label]['gateway_drops']}, kernel drops {r[label]['kernel_drops']}")
        if loss > a.max_udp_loss:
            raise Failure(f"{name}: UDP {label} loss {loss:.2f}% > {a.max_udp_loss}%")
    after = client.list_sas()[0]
    if after["spi_r"] != ike["spi_r"]:
        raise Failure(f"{name}: the IKE SA changed during the transfers")
    # The bytes crossed this CHILD SA (libipsec's counters: inner bytes, so
    # at least the iperf3 payload of each direction).
    cur = next((c for c in after["children"] if c["spi_in"] == child["spi_in"]), {})
    b_out, b_in = int(cur.get("bytes-out", 0)), int(cur.get("bytes-in", 0))
    if b_out < sent["up"] or b_in < sent["down"]:
        raise Failure(f"{name}: the CHILD SA carried {b_out} B out / {b_in} B in, less than "
                      f"iperf3's {sent['up']} / {sent['down']}")
    r["child_sa_bytes"] = {"out": b_out, "in": b_in}
    results[name] = r
    client.terminate()
    client.stop()


def scenario_rekey(ph, name, proposals, results):
    client, ike, child, vip, esp = ph.connect(name, proposals)
    a = ph.opts
    seconds = a.rekey_seconds
    cmd = ["ip", "netns", "exec", ph.topo.cli_ns, "iperf3", "-c", ph.topo.lan_host, "-p", str(IPERF_PORT),
           "-t", str(seconds), "-i", "0.5", "-J", "--bidir", "--connect-timeout", "3000"]
    lose = name == "rekey-lost-response"
    table = "ivpn_lose"
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(seconds * 0.4)
        if lose:
            # Drop the next IKE message (non-ESP marker: first payload word 0)
            # from the gateway, i.e. the CREATE_CHILD_SA response; charon
            # retransmits its request after 1 s (swan.py's retransmit_timeout).
            rules = (f"table ip {table} {{\n  chain pre {{\n    type filter hook prerouting priority -300; "
                     f"policy accept;\n    ip saddr {ph.topo.gw_addr} udp sport 4500 @th,64,32 0 counter drop\n"
                     "  }\n}\n")
            p = subprocess.run(["ip", "netns", "exec", ph.topo.cli_ns, "nft", "-f", "-"], input=rules,
                               text=True, capture_output=True, timeout=10)
            if p.returncode != 0:
                raise Failure(f"{name}: nft: {p.stderr}")
        rekey_at = time.monotonic() - t0
        client.swanctl("--rekey", "--child", "rw", check=True)
        if lose:
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                listed = ph.topo.exec("cli", ["nft", "list", "table", "ip", table], check=False).stdout
                if re.search(r"packets [1-9]", listed):
                    break
                time.sleep(0.01)
            ph.topo.exec("cli", ["nft", "delete", "table", "ip", table], check=False)
        # strongSwan lists the old CHILD SA (not INSTALLED) for a few seconds more.
        new = ph._wait_for(client, lambda sa: [
            c for c in sa["children"] if c.get("state") == "INSTALLED" and c["spi_in"] != child["spi_in"]
            and not any(o["spi_in"] == child["spi_in"] and o.get("state") == "INSTALLED"
                        for o in sa["children"])], timeout=10)
        rekey_done = time.monotonic() - t0
        out, err = proc.communicate(timeout=seconds + 15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if not new:
        raise Failure(f"{name}: the CHILD SA rekey did not complete: {client.list_sas()}")
    new = new[0]
    say(f"{name}: CHILD SA rekeyed at {rekey_at:.2f} s (done by {rekey_done:.2f} s) of the run: "
        f"{child['spi_in']}_in -> {new['spi_in']}_in")
    try:
        j = json.loads(out)
    except ValueError:
        raise Failure(f"{name}: no JSON from iperf3 (exit {proc.returncode}): {out[-300:]} {err[-300:]}")
    if proc.returncode != 0 or "error" in j:
        raise Failure(f"{name}: iperf3 exited {proc.returncode} across the rekey: {j.get('error')}")
    # Interval times count from the iperf3 connection; the rekey time from
    # the command's start, so it is at most a few ms late.
    rows = []
    for iv in j["intervals"]:
        up, down = iv["sum"], iv.get("sum_bidir_reverse") or {}
        rows.append((up["start"], up["end"], up["bits_per_second"], down.get("bits_per_second", 0.0)))
    empty = [(round(s, 1), round(e, 1), "up" if u <= 0 else "down" if d <= 0 else "") for s, e, u, d in rows
             if u <= 0 or d <= 0]
    retransmits = [line for line in client.log_lines() if re.search(r"retransmit \d+ of request", line)]
    stall = None
    if empty:
        stall = (f"intervals without data: {empty} (s from the start, direction); the rekey started "
                 f"at {rekey_at:.2f} s and completed by {rekey_done:.2f} s; the client retransmitted "
                 f"{len(retransmits)} IKE request(s): {[x[:60] for x in retransmits]}")
        if not retransmits or a.strict_rekey:
            raise Failure(f"{name}: {stall}")
    after = [(u, d) for s, e, u, d in rows if e > rekey_at]
    around = next(((u, d) for s, e, u, d in rows if s <= rekey_at < e), after[0] if after else (0, 0))
    if lose and not retransmits:
        raise Failure(f"{name}: the dropped CREATE_CHILD_SA response was not retransmitted (no loss?)")
    late = None
    if rekey_done > seconds:
        # The CREATE_CHILD_SA response was lost repeatedly under the load
        # (the client charon's UDP receive buffer overflows under iperf3, and
        # in rekey-lost-response one loss is forced) and the rekey completed
        # after iperf3 ended: the old SA carried the traffic meanwhile (no
        # empty interval, checked above). Check the new one with a ping.
        received, _, _ = it.ping(ph.topo, "cli", ph.topo.lan_host, count=3, interval=0.1)
        late = (f"the rekey completed at {rekey_done:.2f} s, after the {seconds} s iperf3 run "
                f"({len(retransmits)} IKE retransmit(s)); ping on the new CHILD SA: {received}/3")
        say(f"{name}: WARNING: {late}")
    sa = client.list_sas()[0]
    cur = next((c for c in sa["children"] if c["spi_in"] == new["spi_in"]), None)
    if not cur or int(cur.get("bytes-in", 0)) == 0 or int(cur.get("bytes-out", 0)) == 0:
        raise Failure(f"{name}: the new CHILD SA carried no traffic: {cur}")
    if sa["spi_r"] != ike["spi_r"]:
        raise Failure(f"{name}: the IKE SA changed")
    up_total, down_total = j["end"]["sum_received"], j["end"].get("sum_received_bidir_reverse", {})
    r = {"esp": esp, "rekey_at_s": round(rekey_at, 2), "rekey_done_s": round(rekey_done, 2),
         "intervals": len(rows),
         "up_mbit_s": mbps(up_total["bits_per_second"]),
         "down_mbit_s": mbps(down_total.get("bits_per_second", 0.0)),
         "rekey_interval_mbit_s": [mbps(around[0]), mbps(around[1])],
         "min_after_rekey_mbit_s": [mbps(min(u for u, _ in after)), mbps(min(d for _, d in after))],
         "retransmits": j["end"]["sum_sent"].get("retransmits"),
         "new_child_bytes": [int(cur.get("bytes-in", 0)), int(cur.get("bytes-out", 0))],
         "ike_retransmits": len(retransmits), "empty_intervals": empty, "late_rekey": late}
    if stall:
        say(f"{name}: WARNING: {stall}. Make-before-break (RFC 7296 2.8) needs the gateway to keep "
            "sending on the old CHILD SA until the client has the new one (its DELETE of the old SA or "
            "traffic on the new inbound SA); an empty interval means it did not")
    say(f"{name}: iperf3 --bidir {seconds} s exited 0; {len(rows)} intervals of 0.5 s"
        f"{'' if not empty else f', {len(empty)} without data in one direction'}; "
        f"whole run up {r['up_mbit_s']} / down {r['down_mbit_s']} Mbit/s; interval with the rekey "
        f"{r['rekey_interval_mbit_s']} Mbit/s; lowest after it {r['min_after_rekey_mbit_s']} Mbit/s; "
        f"new CHILD SA bytes in/out {r['new_child_bytes']}")
    results[name] = r
    client.terminate()
    client.stop()


# Sends ESP-in-UDP payloads (hex) as IPv4/UDP from SRC:4500 to DST:4500 over a
# raw socket: the client's own address and NAT-T port, as an on-path
# attacker replaying them would, so the gateway sees nothing but the ESP
# (no new source port that could look like a NAT rebinding).
SEND_ESP = """
import socket, struct, sys
src, dst = socket.inet_aton(sys.argv[1]), socket.inet_aton(sys.argv[2])
def csum(b):
    b += b"\\0" * (len(b) % 2)
    t = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while t >> 16:
        t = (t & 0xffff) + (t >> 16)
    return ~t & 0xffff
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
for h in sys.argv[3:]:
    p = bytes.fromhex(h)
    n = 8 + len(p)
    c = csum(src + dst + struct.pack("!BBH", 0, 17, n) + struct.pack("!HHHH", 4500, 4500, n, 0) + p) or 0xffff
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + n, 0, 0x4000, 64, 17, 0, src, dst)
    s.sendto(ip + struct.pack("!HHHH", 4500, 4500, n, c) + p, (sys.argv[2], 0))
"""


def send_esp(topo, *payloads):
    """ESP-in-UDP payloads from the client's address and port 4500 to the gateway."""
    topo.exec("cli", ["python3", "-c", SEND_ESP, topo.cli_addr_a, topo.gw_addr, *(x.hex() for x in payloads)])


def scenario_inject(ph, name, proposals, results):
    """ESP from the client, kept from the gateway by a drop rule in the
    gateway namespace (so their sequence numbers are fresh), then sent again
    from the client namespace at UDP 4500: flipped byte, original, original."""
    client, ike, child, vip, esp = ph.connect(name, proposals)
    t = ph.topo
    spi_out = int(child["spi_out"], 16)
    table = "ivpn_inject"
    cap = swan.Capture(t.cli_ns, "a0", os.path.join(ph.workdir, f"cli-{name}-esp.pcap"),
                       bpf="udp dst port 4500 and udp[8:4] != 0")
    rules = (f"table ip {table} {{\n  chain pre {{\n    type filter hook prerouting priority -300; policy accept;\n"
             f"    ip saddr {t.cli_addr_a} udp dport 4500 drop\n  }}\n}}\n")
    p = subprocess.run(["ip", "netns", "exec", t.gw_ns, "nft", "-f", "-"], input=rules, text=True,
                       capture_output=True, timeout=10)
    if p.returncode != 0:
        cap.stop()
        raise Failure(f"{name}: nft: {p.stderr}")
    try:
        it.ping(t, "cli", t.lan_host, count=3, interval=0.05)
    finally:
        cap.stop()
        t.exec("gw", ["nft", "delete", "table", "ip", table], check=False)
    packets = [payload for _, src, sport, dst, dport, payload in swan.read_pcap_udp(cap.path)
               if dst == t.gw_addr and len(payload) > 8 and int.from_bytes(payload[:4], "big") == spi_out]
    if len(packets) < 2:
        raise Failure(f"{name}: captured {len(packets)} ESP packets with SPI {child['spi_out']}, want 2")
    seqs = [int.from_bytes(p[4:8], "big") for p in packets[:2]]
    # Flip one byte: in the ciphertext of the first, in the ICV (last byte) of the second.
    flipped = []
    for p, at in ((packets[0], len(packets[0]) // 2), (packets[1], len(packets[1]) - 1)):
        b = bytearray(p)
        b[at] ^= 0x01
        flipped.append(bytes(b))

    def wait_delta(base, want_counts, timeout=3.0):
        """Counter deltas since `base`, once `want_counts` are reached (or at the timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            ms = ph.scrape()
            got = {k: it.metric(ms, n, **lab) - it.metric(base, n, **lab) for k, (n, lab) in keys.items()}
            if all(got[k] >= v for k, v in want_counts.items()) or time.monotonic() > deadline:
                # A moment more, so that a stray extra count shows up too.
                time.sleep(0.2)
                ms = ph.scrape()
                return {k: it.metric(ms, n, **lab) - it.metric(base, n, **lab) for k, (n, lab) in keys.items()}
            time.sleep(0.05)

    keys = {"auth_failed": ("forwarder_esp_drops_total", {"reason": "auth_failed"}),
            "replay": ("forwarder_esp_drops_total", {"reason": "replay"}),
            "in": ("forwarder_esp_packets_total", {"direction": "in"})}

    def sa_counters():
        """This CHILD SA's row of `vpnctl esp-counters` (vpn.v1.Forwarder)."""
        p = t.exec("gw", [*it.vpnctl_argv(ph.args.vpnctl, ph.workdir, "forwarder"), "esp-counters",
                          child["spi_out"]],
                   check=False)
        rows = [line.split() for line in p.stdout.splitlines()[1:]]
        if p.returncode != 0 or len(rows) != 1:
            raise Failure(f"{name}: vpnctl esp-counters {child['spi_out']}: {p.stdout}")
        return dict(zip(("bytes_in", "packets_in", "bytes_out", "packets_out", "replay", "auth"),
                        map(int, rows[0][2:])))

    steps = []
    base0 = ph.scrape()
    sa0 = sa_counters()
    for i in range(2):
        for what, pkt, want_counts in (
                ("flipped byte", flipped[i], {"auth_failed": 1}),
                ("original", packets[i], {"in": 1}),
                ("original again", packets[i], {"replay": 1})):
            base = ph.scrape()
            send_esp(t, pkt)
            got = wait_delta(base, want_counts)
            steps.append((i, what, got))
            others = {k: v for k, v in got.items() if k not in want_counts and v}
            if any(got[k] != v for k, v in want_counts.items()) or others:
                raise Failure(f"{name}: packet {i} (seq {seqs[i]}), {what}: counter deltas {got}, "
                              f"want exactly {want_counts}")
    total = {k: it.metric(ph.scrape(), n, **lab) - it.metric(base0, n, **lab) for k, (n, lab) in keys.items()}
    sa1 = sa_counters()
    per_sa = {k: sa1[k] - sa0[k] for k in ("replay", "auth")}
    if per_sa != {"replay": 2, "auth": 2}:
        raise Failure(f"{name}: the CHILD SA's own counters (vpnctl esp-counters) moved {per_sa}, "
                      "want 2 replays and 2 integrity failures")
    total["sa_counters"] = per_sa
    received, _, out = it.ping(t, "cli", t.lan_host, count=2, interval=0.1)
    if received < 2:
        raise Failure(f"{name}: the tunnel does not work after the injection: {out}")
    say(f"{name}: captured ESP seq {seqs} (SPI {child['spi_out']}), kept from the gateway; sent "
        "again from the client's address and port: flipped byte (ciphertext, ICV) -> auth_failed, "
        "original -> accepted, original again -> replay; "
        f"deltas in /metrics ({ph.metrics_url}): {total}")
    results[name] = {"esp": esp, "seqs": seqs, "deltas": total}
    client.terminate()
    client.stop()


def parse_ping_times(text):
    """[(epoch, icmp_seq)] of the replies in `ping -D` output."""
    return [(float(m.group(1)), int(m.group(2)))
            for m in re.finditer(r"^\[(\d+\.\d+)\] \d+ bytes from .*icmp_seq=(\d+)", text, re.M)]


def pcap_times(path):
    """Epoch timestamps of every packet in a (microsecond) pcap file."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        return []
    endian = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    nano = data[:4] in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    out, off = [], 24
    while off + 16 <= len(data):
        sec, frac, incl, _ = struct.unpack(endian + "IIII", data[off:off + 16])
        out.append(sec + frac / (1e9 if nano else 1e6))
        off += 16 + incl
    return out


def log_epoch(line):
    """The "ts" of one of our services' JSON log lines, as epoch seconds."""
    ts = json.loads(line)["ts"]
    return calendar.timegm(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")) + float("0" + ts[19:-1])


def scenario_restart(ph, name, proposals, results):
    """kill -9 of the esp-forwarder under a ping (20/s) from the client to the
    lan host; our_gateway.sh's supervisor restarts it at once. Measured: when
    the new forwarder has the CHILD SA again (its log), when echo requests
    reach the lan host again (client -> gateway ESP, capture in lan), when
    replies reach the client again (gateway -> client ESP). Then: a captured
    pre-restart ESP packet is sent again (is it refused as a replay?), and a
    CHILD rekey must cross the restarted forwarder's IKE relay."""
    client, ike, child, vip, esp = ph.connect(name, proposals)
    t = ph.topo
    a = ph.opts
    our = os.path.join(ph.workdir, "our-gateway")
    pidfile = os.path.join(our, "esp-forwarder.pid")
    with open(pidfile) as f:
        old_pid = int(f.read())
    eap_before = sum("EAP method EAP_MSCHAPV2 succeeded" in line for line in client.log_lines())
    relay_before = open(os.path.join(our, "ike-service.log")).read().count("relay stream open")
    if a.restart_preload:
        # Gateway -> client ESP before the restart (raises its outbound sequence numbers).
        rc, j = ph.iperf(["-u", "-b", "50M", "-l", "1200", "-R"], a.restart_preload)
        say(f"{name}: preload: {j.get('end', {}).get('sum', {}).get('packets')} UDP datagrams lan -> client")
    interval = 0.05
    count = int(a.restart_ping_seconds / interval)
    esp_cap = swan.Capture(t.cli_ns, "a0", os.path.join(ph.workdir, f"cli-{name}-esp.pcap"),
                           bpf="udp dst port 4500 and udp[8:4] != 0")
    lan_cap = swan.Capture(t.lan_ns, "lan0", os.path.join(ph.workdir, f"lan-{name}-echo.pcap"),
                           bpf="icmp[icmptype] == icmp-echo")
    ping_log = os.path.join(ph.workdir, f"cli-{name}-ping.txt")
    pingp = subprocess.Popen(["ip", "netns", "exec", t.cli_ns, "ping", "-D", "-n", "-i", str(interval),
                              "-W", "1", "-c", str(count), t.lan_host],
                             stdout=open(ping_log, "w"), stderr=subprocess.STDOUT)
    try:
        time.sleep(a.restart_ping_seconds * 0.3)
        esp_cap.stop()  # pre-restart ESP only
        kill_at = time.time()
        os.kill(old_pid, signal.SIGKILL)
        new_pid, deadline = None, time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with open(pidfile) as f:
                    pid = int(f.read() or 0)
                if pid and pid != old_pid:
                    new_pid = pid
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.02)
        if not new_pid:
            raise Failure(f"{name}: esp-forwarder was not restarted by our_gateway.sh")
        say(f"{name}: kill -9 esp-forwarder (pid {old_pid}); restarted as pid {new_pid}")
        pingp.wait(timeout=a.restart_ping_seconds + 10)
    finally:
        if pingp.poll() is None:
            pingp.kill()
            pingp.wait()
        lan_cap.stop()
    with open(ping_log) as f:
        text = f.read()
    replies = parse_ping_times(text)
    before = [r for r in replies if r[0] < kill_at]
    after = [r for r in replies if r[0] >= kill_at]
    echo_after = [x for x in pcap_times(lan_cap.path) if x >= kill_at]
    installed = []
    with open(os.path.join(our, "esp-forwarder.log")) as f:
        for line in f:
            if '"CHILD SA installed"' in line and f'"spi_in":"{child["spi_out"]}"' in line:
                installed.append(log_epoch(line))
    installed = [x for x in installed if x >= kill_at]
    # ESP from the restarted forwarder that the client's libipsec refused as replays.
    client_seq_fail = sum("ESP sequence number verification failed" in line for line in client.log_lines())
    r = {"esp": esp, "ping_interval_s": interval, "replies_before": len(before),
         "replies_after": len(after), "preload_s": a.restart_preload,
         "sa_reinstalled_s": round(installed[0] - kill_at, 3) if installed else None,
         "client_to_lan_resumed_s": round(echo_after[0] - kill_at, 3) if echo_after else None,
         "round_trip_resumed_s": round(after[0][0] - kill_at, 3) if after else None,
         "client_replay_drops_after_restart": client_seq_fail}
    results[name] = r
    say(f"{name}: after the kill: CHILD SA back in the new forwarder at +{r['sa_reinstalled_s']} s "
        f"(its log), echo requests reach the lan host at +{r['client_to_lan_resumed_s']} s, replies reach "
        f"the client at +{r['round_trip_resumed_s']} s; the client refused {client_seq_fail} ESP packets "
        f"from the restarted forwarder as replays ({len(before)} replies before the kill)")
    if not before:
        raise Failure(f"{name}: no ping replies before the kill:\n{text[-500:]}")
    if not installed:
        raise Failure(f"{name}: the restarted forwarder did not reinstall CHILD SA {child['spi_out']} "
                      "from the store")
    if not echo_after:
        raise Failure(f"{name}: no echo request reached the lan host after the restart")
    if not after:
        raise Failure(f"{name}: no ping reply reached the client within "
                      f"{a.restart_ping_seconds * 0.7:.1f} s of the restart (client refused "
                      f"{client_seq_fail} ESP packets as replays)")
    sa = client.list_sas()
    if len(sa) != 1 or sa[0]["spi_i"] != ike["spi_i"] or sa[0]["spi_r"] != ike["spi_r"]:
        raise Failure(f"{name}: the IKE SA changed across the restart: {sa}")
    kids = [c for c in sa[0]["children"] if c.get("state") == "INSTALLED"]
    if [c["spi_in"] for c in kids] != [child["spi_in"]]:
        raise Failure(f"{name}: the CHILD SA changed across the restart: {kids}")
    if sum("EAP method EAP_MSCHAPV2 succeeded" in line for line in client.log_lines()) != eap_before:
        raise Failure(f"{name}: the client authenticated again")
    if ike["spi_r"] not in ph.gateway_sas():
        raise Failure(f"{name}: the management API no longer lists the IKE SA")

    # A pre-restart ESP packet (already accepted by the old forwarder) again.
    old = [payload for _, src, sport, dst, dport, payload in swan.read_pcap_udp(esp_cap.path)
           if dst == t.gw_addr and int.from_bytes(payload[:4], "big") == int(child["spi_out"], 16)]
    replay = {}
    if old:
        pkt = old[len(old) // 2]
        keys = {"replay": ("forwarder_esp_drops_total", {"reason": "replay"}),
                "too_old": ("forwarder_esp_drops_total", {"reason": "too_old"}),
                "in": ("forwarder_esp_packets_total", {"direction": "in"})}
        base = ph.scrape()
        send_esp(t, pkt)
        time.sleep(0.5)
        ms = ph.scrape()
        replay = {k: it.metric(ms, n, **lab) - it.metric(base, n, **lab) for k, (n, lab) in keys.items()}
        replay["seq"] = int.from_bytes(pkt[4:8], "big")
        r["pre_restart_replay"] = replay
    refused = replay.get("replay", 0) + replay.get("too_old", 0) >= 1

    # IKE through the restarted forwarder: ike-service's relay stream reconnected.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if open(os.path.join(our, "ike-service.log")).read().count("relay stream open") > relay_before:
            break
        time.sleep(0.1)
    else:
        raise Failure(f"{name}: ike-service's relay stream did not reconnect")
    client.swanctl("--rekey", "--child", "rw", check=True)
    new = ph._wait_for(client, lambda s: [
        c for c in s["children"] if c.get("state") == "INSTALLED" and c["spi_in"] != child["spi_in"]
        and not any(o["spi_in"] == child["spi_in"] and o.get("state") == "INSTALLED" for o in s["children"])],
        timeout=10)
    if not new:
        raise Failure(f"{name}: a CHILD rekey after the restart did not complete: {client.list_sas()}")
    received, _, out = it.ping(t, "cli", t.lan_host, count=3, interval=0.1)
    if received < 3:
        raise Failure(f"{name}: ping on the CHILD SA rekeyed after the restart: {received}/3\n{out}")
    say(f"{name}: same IKE SPIs {ike['spi_i']}_i {ike['spi_r']}_r and CHILD {child['spi_in']}_in, "
        f"no new EAP; relay stream reconnected; a CHILD rekey then crossed the new forwarder "
        f"({new[0]['spi_in']}_in) and carries ping")
    problems = []
    if client_seq_fail:
        problems.append(
            f"the client's libipsec refused {client_seq_fail} ESP packets from the restarted forwarder "
            "as replays: the forwarder's outbound sequence numbers restarted at 1 on the same SA "
            "(RFC 4303 3.3.3), so gateway -> client traffic resumes only once they pass what was sent "
            "before the restart")
    if replay and not refused:
        problems.append(
            f"a pre-restart ESP packet (seq {replay['seq']}) sent again was accepted by the restarted "
            f"forwarder (deltas {replay}): its replay window starts empty")
    for p in problems:
        say(f"{name}: WARNING: {p}")
    if problems and a.strict_restart:
        raise Failure(f"{name}: " + "; ".join(problems))
    client.terminate()
    client.stop()


# ike-service replicas of the split phase: name -> (pid file, gRPC port, metrics port).
# ike-service replicas of the split phase (our_gateway.sh): their files in
# our-gateway/ are ike-service<suffix>.{pid,log}.
IkeReplica = collections.namedtuple("IkeReplica", "suffix grpc_port metrics_port")
IKE_REPLICAS = {"ike-0": IkeReplica("", 50051, 9101), "ike-1": IkeReplica("-1", 50055, 9105)}


def replica_metrics_url(ph, replica):
    """A replica's /metrics: where the gateway command wrote it
    (our-gateway/ike-service[-1].metrics), else our_gateway.sh's port."""
    path = replica_file(ph, replica, "metrics")
    if os.path.exists(path):
        with open(path) as f:
            return f.read().strip()
    return f"http://127.0.0.1:{IKE_REPLICAS[replica].metrics_port}/metrics"


def replica_file(ph, replica, ext):
    return os.path.join(ph.workdir, "our-gateway", f"ike-service{IKE_REPLICAS[replica].suffix}.{ext}")


def sa_owner(ph, ike, replica):
    """The OWNER column of `vpnctl sas` for this IKE SA, asking `replica`."""
    p = ph.topo.exec("gw", [*it.vpnctl_argv(ph.opts.vpnctl, ph.workdir, replica), "sas"], check=False,
                     timeout=10)
    for line in p.stdout.splitlines()[1:]:
        cols = line.split()
        if len(cols) >= 7 and cols[1] == ike["spi_r"]:
            return replica_name(ph, cols[-1])
    return None


def replica_name(ph, owner):
    """ike-0/ike-1 for the ID `vpnctl sas` shows as an SA's owner: a gateway
    command whose replicas have IDs of their own (pod names) writes each
    one's ID to our-gateway/ike-service[-1].replica."""
    for replica in IKE_REPLICAS:
        path = replica_file(ph, replica, "replica")
        if os.path.exists(path):
            with open(path) as f:
                if f.read().strip() == owner:
                    return replica
    return owner


def record_gone(ph, ike, replica, timeout=5):
    """Waits until `vpnctl sas` (asking `replica`) no longer lists the SA."""
    deadline = time.monotonic() + timeout
    while sa_owner(ph, ike, replica) is not None:
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def owner_and_other(ph, name, ike):
    """(the replica `vpnctl sas` names as the IKE SA's owner, the other one)."""
    owner = sa_owner(ph, ike, "ike-0")
    if owner not in IKE_REPLICAS:
        raise Failure(f"{name}: `vpnctl sas` names no known owner for the SA: {owner}")
    return owner, "ike-1" if owner == "ike-0" else "ike-0"


def scenario_terminate_elsewhere(ph, name, proposals, results):
    """`vpnctl terminate` on the replica that does not own the SA: it takes
    the SA over (the owner, still running, forgets it) and sends the client
    an INFORMATIONAL DELETE; the records go."""
    client, ike, child, vip, esp = ph.connect(name, proposals)
    owner, other = owner_and_other(ph, name, ike)
    p = ph.topo.exec("gw", [*it.vpnctl_argv(ph.opts.vpnctl, ph.workdir, other),
                            "terminate", ike["spi_i"], ike["spi_r"]], check=False, timeout=10)
    if p.returncode != 0:
        raise Failure(f"{name}: vpnctl terminate on {other} failed: {p.stdout} {p.stderr}")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and client.list_sas():
        time.sleep(0.1)
    if client.list_sas():
        raise Failure(f"{name}: the client still has its IKE SA after {other} terminated it: "
                      f"{client.list_sas()}")
    if not record_gone(ph, ike, other):
        raise Failure(f"{name}: the SA's record is still in the store after the terminate")
    results[name] = {"owner": owner, "terminated_by": other}
    say(f"{name}: {other} terminated {owner}'s IKE SA {ike['spi_r']}_r: the client got the DELETE, "
        f"the records are gone")
    client.stop()


def owner_logged_child(ph, replica, spi_r, note):
    """child_in of the first `note` line (e.g. "CHILD SA rekeyed") that
    `replica` logged for IKE SA spi_r, or None."""
    with open(replica_file(ph, replica, "log"), errors="replace") as f:
        for line in f:
            if f'"msg":"{note}"' in line and f'"spi_r":"{spi_r}"' in line:
                m = re.search(r'"child_in":"([0-9a-f]+)"', line)
                if m:
                    return m.group(1)
    return None


def rekeyed_child(ph, client, old_spi_in, timeout):
    """The client's CHILD SA that replaced `old_spi_in` (INSTALLED, the old
    one gone), or None."""
    new = ph._wait_for(client, lambda s: [
        c for c in s["children"] if c.get("state") == "INSTALLED" and c["spi_in"] != old_spi_in
        and not any(o["spi_in"] == old_spi_in and o.get("state") == "INSTALLED" for o in s["children"])],
        timeout=timeout)
    return new[0] if new else None


def scenario_takeover(ph, name, proposals, results):
    """kill -9 of the ike-service replica that owns the client's IKE SA, right
    after it answered a CHILD rekey whose response the client never got (an
    nft rule drops it). The forwarder's relay loses that replica's stream and
    routes the client's retransmitted request to the other replica, which
    must take the SA over from its record and answer with the stored
    response: the client gets the CHILD SA the dead replica created. Then a
    second CHILD rekey is handled by the new owner. No new EAP, same IKE
    SPIs; ESP needs no ike-service and must keep flowing."""
    client, ike, child, vip, esp = ph.connect(name, proposals)
    t = ph.topo
    if not os.path.exists(replica_file(ph, "ike-1", "pid")):
        raise Failure(f"{name}: needs two ike-service replicas (OUR_GATEWAY_IKE_REPLICAS=2)")
    owner, survivor = owner_and_other(ph, name, ike)
    with open(replica_file(ph, owner, "pid")) as f:
        pid = int(f.read())
    eap_before = sum("EAP method EAP_MSCHAPV2 succeeded" in line for line in client.log_lines())
    metrics_url = replica_metrics_url(ph, survivor)
    taken = ("ike_sa_takeovers_total", {"result": "taken"})
    base = it.metric(ph.scrape_url(metrics_url), taken[0], **taken[1])

    # The owner answers a CHILD rekey; the client never gets the answer.
    table = "ivpn_takeover"
    rules = (f"table ip {table} {{\n  chain pre {{\n    type filter hook prerouting priority -300; "
             f"policy accept;\n    ip saddr {t.gw_addr} udp sport 4500 @th,64,32 0 counter drop\n"
             "  }\n}\n")
    p = subprocess.run(["ip", "netns", "exec", t.cli_ns, "nft", "-f", "-"], input=rules,
                       text=True, capture_output=True, timeout=10)
    if p.returncode != 0:
        raise Failure(f"{name}: nft: {p.stderr}")
    try:
        client.swanctl("--rekey", "--child", "rw", check=True)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            if re.search(r"packets [1-9]", t.exec("cli", ["nft", "list", "table", "ip", table],
                                                   check=False).stdout):
                break
            time.sleep(0.01)
        else:
            raise Failure(f"{name}: the owner's CREATE_CHILD_SA response never came")
    finally:
        t.exec("cli", ["nft", "delete", "table", "ip", table], check=False)
    time.sleep(0.3)  # the owner's records, with the response, reach the store
    kill_at = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    say(f"{name}: {owner} answered a CHILD rekey (answer dropped), then kill -9 {owner} (pid {pid}); "
        f"{survivor} remains")
    received, _, out = it.ping(t, "cli", t.lan_host, count=3, interval=0.1)
    if received < 3:
        raise Failure(f"{name}: ESP stopped with the IKE replica: ping {received}/3\n{out}")
    first = rekeyed_child(ph, client, child["spi_in"], timeout=15)
    if not first:
        raise Failure(f"{name}: the retransmitted CHILD rekey was not answered: {client.list_sas()}")
    answered_s = time.monotonic() - kill_at
    created_by_owner = owner_logged_child(ph, owner, ike["spi_r"], "CHILD SA rekeyed")
    if created_by_owner != first["spi_out"]:
        raise Failure(f"{name}: the client's new CHILD SA {first['spi_out']}_out is not the one {owner} "
                      f"created ({created_by_owner}): {survivor} did not answer with the stored response")
    received, _, out = it.ping(t, "cli", t.lan_host, count=3, interval=0.1)
    if received < 3:
        raise Failure(f"{name}: ping on the CHILD SA from the stored response: {received}/3\n{out}")

    # The new owner handles the next exchange itself.
    client.swanctl("--rekey", "--child", "rw", check=True)
    second = rekeyed_child(ph, client, first["spi_in"], timeout=10)
    if not second:
        raise Failure(f"{name}: a CHILD rekey by {survivor} did not complete: {client.list_sas()}")
    if owner_logged_child(ph, survivor, ike["spi_r"], "CHILD SA rekeyed") != second["spi_out"]:
        raise Failure(f"{name}: {survivor} did not log the CHILD rekey it answered")
    received, _, out = it.ping(t, "cli", t.lan_host, count=3, interval=0.1)
    if received < 3:
        raise Failure(f"{name}: ping on the CHILD SA rekeyed by {survivor}: {received}/3\n{out}")
    sa = client.list_sas()
    if len(sa) != 1 or sa[0]["spi_i"] != ike["spi_i"] or sa[0]["spi_r"] != ike["spi_r"]:
        raise Failure(f"{name}: the IKE SA changed: {sa}")
    if sum("EAP method EAP_MSCHAPV2 succeeded" in line for line in client.log_lines()) != eap_before:
        raise Failure(f"{name}: the client authenticated again")
    owner_after = sa_owner(ph, ike, survivor)
    if owner_after != survivor:
        raise Failure(f"{name}: `vpnctl sas` names {owner_after} as the owner, want {survivor}")
    takeovers = it.metric(ph.scrape_url(metrics_url), taken[0], **taken[1]) - base
    if takeovers != 1:
        raise Failure(f"{name}: {survivor}'s ike_sa_takeovers_total{{result=\"taken\"}} moved by {takeovers}")
    results[name] = {"esp": esp, "from": owner, "to": survivor,
                     "stored_response_answered_after_kill_s": round(answered_s, 3)}
    say(f"{name}: {survivor} took the SA over and answered the retransmit with {owner}'s stored "
        f"response {answered_s:.2f} s after the kill (CHILD {first['spi_in']}_in, carries ping); then "
        f"rekeyed it itself ({second['spi_in']}_in); same IKE SPIs, no new EAP")
    client.terminate()
    if not record_gone(ph, ike, survivor):
        raise Failure(f"{name}: the SA's record is still in the store after the client's DELETE")
    client.stop()


# IKE on UDP 4500 (non-ESP marker, RFC 3948 2.2) at a fixed rate, sent raw
# from the client's own address and port 4500. The forwarder steers all IKE
# on 4500 to its first worker, which also carries the ESP of the SAs whose
# SPI lands there (SPI % workers): a relay write that waits stalls those.
# Fresh SPIs, IKEv1 headers, which ike-service drops at once, so the
# replicas spend almost nothing on them.
IKE_FLOOD = """
import socket, struct, sys, time
src, dst, rate, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
body = bytes(1000)
end, i, t = time.monotonic() + seconds, 0, time.monotonic()
while time.monotonic() < end:
    for _ in range(rate // 100):
        i += 1
        ike = struct.pack("!QQBBBBII", i * 0x9E3779B97F4A7C15 % 2**64, 0, 0, 0x10, 34, 8, 0, 28 + len(body))
        p = bytes(4) + ike + body
        n = 8 + len(p)
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + n, 0, 0x4000, 64, 17, 0,
                         socket.inet_aton(src), socket.inet_aton(dst))
        s.sendto(ip + struct.pack("!HHHH", 4500, 4500, n, 0) + p, (dst, 0))
    t += 0.01
    time.sleep(max(0.0, t - time.monotonic()))
print(i)
"""


def scenario_relay_stall(ph, name, proposals, results):
    """One ike-service replica stops reading its relay stream (SIGSTOP)
    while IKE arrives for it on UDP 4500 and iperf3 runs through the tunnel:
    the forwarder's data-plane threads, which relay that IKE, must not wait
    for it. iperf3 TCP with the same IKE flood, replica running then
    stopped: the second must keep at least 70% of the first's rate, and the
    forwarder must count the datagrams it dropped for the stopped replica."""
    client, ike, child, vip, esp = ph.connect(name, proposals)
    t = ph.topo
    owner, other = owner_and_other(ph, name, ike)
    with open(replica_file(ph, other, "pid")) as f:
        pid = int(f.read())
    seconds = 4
    # Datagrams/s, half for each replica: ~10 MB/s for the stopped one, more
    # than TCP and HTTP/2 flow control buffer towards a process that stopped.
    rate = 20000

    def run(stopped):
        flood = subprocess.Popen(["ip", "netns", "exec", t.cli_ns, "python3", "-c", IKE_FLOOD,
                                  t.cli_addr_a, t.gw_addr, str(rate), str(seconds + 1)],
                                 stdout=subprocess.PIPE, text=True)
        if stopped:
            os.kill(pid, signal.SIGSTOP)
        try:
            rc, j = ph.iperf([], seconds)
        finally:
            if stopped:
                os.kill(pid, signal.SIGCONT)
            flood.wait(seconds + 10)
        if rc != 0 or "error" in j:
            raise Failure(f"{name}: iperf3 TCP failed (exit {rc}): {j.get('error')}")
        return mbps(j["end"]["sum_received"]["bits_per_second"])

    # Alternating, three runs each, compared by median: one 4 s run on
    # these shared machines varies by a third.
    base = ph.scrape()
    rates = {False: [], True: []}
    for stop in (False, True, True, False, False, True):
        rates[stop].append(run(stopped=stop))
    running, stopped = statistics.median(rates[False]), statistics.median(rates[True])
    dropped = it.metric(ph.scrape(), "forwarder_ike_datagrams_total", direction="dropped_queue_full") - \
        it.metric(base, "forwarder_ike_datagrams_total", direction="dropped_queue_full")
    results[name] = {"esp": esp, "mbit_s_replica_running": rates[False],
                     "mbit_s_replica_stopped": rates[True], "ike_dropped_for_stopped_replica": dropped}
    say(f"{name}: iperf3 TCP with {rate}/s IKE on UDP 4500, median of 3: {running} Mbit/s with {other} "
        f"running {rates[False]}, {stopped} Mbit/s with {other} stopped (SIGSTOP) {rates[True]}; "
        f"{dropped:.0f} IKE datagrams dropped for it")
    if stopped < 0.7 * running:
        raise Failure(f"{name}: ESP fell from {running} to {stopped} Mbit/s while {other} did not read")
    if dropped <= 0:
        raise Failure(f"{name}: no forwarder_ike_datagrams_total{{direction=\"dropped_queue_full\"}}: "
                      "the flood never filled the stopped replica's queue")
    client.stop()


# The split's APIs and the service answering each: (port, role).
APIS = {"ike": (50051, "ike-service"), "auth": (50052, "auth-service"),
        "mobility": (50053, "mobility-service"), "forwarder": (50054, "esp-forwarder")}


def probe(ph, api, caller, call, *args):
    """rpc_probe's status code for `call` on `api` as `caller`: a role's
    certificate, "none" (plaintext) or "other-ca" (ike-service's name under
    an unrelated CA)."""
    port, role = APIS[api]
    pki = os.path.join(ph.workdir, "our-gateway", "pki")
    argv = [ph.opts.rpc_probe, f"--target=127.0.0.1:{port}", f"--server_name={role}"]
    if caller != "none":
        stem = "other-ca-ike-service" if caller == "other-ca" else caller
        argv += [f"--cert={pki}/{stem}.crt", f"--key={pki}/{stem}.key", f"--ca={pki}/ca.crt"]
    p = ph.topo.exec("gw", argv + [call, *args], check=False, timeout=15)
    if p.returncode != 0 or not p.stdout.split():
        raise Failure(f"rpc_probe {call} as {caller}: exit {p.returncode}: {p.stdout} {p.stderr}")
    return p.stdout.split()[0]


def scenario_trust(ph, name, proposals, results):
    """Every internal API refuses callers of the wrong role, without a
    certificate, or with another CA's, against the real split (mTLS between
    four processes, etcd); the relay takeover of a live replica is refused
    while a strongSwan client's ping runs and its IKE SA keeps working."""
    client, ike, child, vip, esp = ph.connect(name, proposals)
    pinger = it.Pinger(ph, os.path.join(ph.workdir, f"ping-{name}.txt"), 0.05)
    started = time.time()
    try:
        # (api, call, args, the one role the table grants, roles it refuses)
        matrix = [
            ("auth", "sign", [], "ike-service", ["esp-forwarder", "mobility-service", "operator"]),
            ("auth", "eap-start", [], "ike-service", ["esp-forwarder", "operator"]),
            ("auth", "put-user", ["mallory"], "operator", ["esp-forwarder", "ike-service"]),
            ("mobility", "update-endpoint", [], "ike-service", ["operator", "auth-service"]),
            ("forwarder", "install-sa", [], "ike-service", ["esp-forwarder", "operator"]),
            ("forwarder", "relay-hello", ["ike-0"], "ike-service", ["esp-forwarder", "operator"]),
            ("ike", "list-sas", [], "operator", ["esp-forwarder", "ike-service"]),
        ]
        denials = 0
        for api, call, args, granted, refused in matrix:
            for caller in refused:
                code = probe(ph, api, caller, call, *args)
                if code != "PERMISSION_DENIED":
                    raise Failure(f"{name}: {call} as {caller}: {code}, want PERMISSION_DENIED")
                denials += 1
            for caller in ("none", "other-ca"):
                code = probe(ph, api, caller, call, *args)
                if code != "UNAVAILABLE":
                    raise Failure(f"{name}: {call} as {caller}: {code}, want the TLS handshake refused")
            # The granted role gets past the table: Sign refuses chosen octets
            # on its own, a second hello for a live replica is refused, the
            # made-up SA and SPIs are not found or invalid.
            code = probe(ph, api, granted, call, *args)
            want = {"sign": {"INVALID_ARGUMENT"}, "relay-hello": {"ALREADY_EXISTS"},
                    "eap-start": {"INVALID_ARGUMENT", "OK"}, "put-user": {"OK"},
                    "update-endpoint": {"NOT_FOUND", "FAILED_PRECONDITION", "INVALID_ARGUMENT"},
                    "install-sa": {"INVALID_ARGUMENT"}, "list-sas": {"OK"}}[call]
            if code not in want:
                raise Failure(f"{name}: {call} as {granted}: {code}, want one of {sorted(want)}")
        p = ph.topo.exec("gw", [*it.vpnctl_argv(ph.opts.vpnctl, ph.workdir, "auth"), "user-del",
                                "mallory"], check=False, timeout=10)
        # The store: etcd refuses a service outside its prefixes, and anyone
        # without a certificate from the services' CA.
        pki = os.path.join(ph.workdir, "our-gateway", "pki")
        for who, key in (("mobility-service", "users/mallory"), ("esp-forwarder", "ike/forged"),
                         ("esp-forwarder", "child/forged"), ("none", "seq/forged"),
                         ("other-ca-ike-service", "ike/forged")):
            argv = ["env", "ETCDCTL_API=3", "etcdctl", "--endpoints=https://127.0.0.1:2379",
                    "--dial-timeout=2s",
                    f"--cacert={pki}/ca.crt"]
            if who != "none":
                argv += [f"--cert={pki}/{who}.crt", f"--key={pki}/{who}.key"]
            p = ph.topo.exec("gw", argv + ["put", key, "x"], check=False, timeout=15)
            if p.returncode == 0:
                raise Failure(f"{name}: etcd let {who} write {key}")
        denied = it.metric(ph.scrape_url("http://127.0.0.1:9102/metrics"), "grpc_server_denied_total",
                           method="/vpn.v1.Auth/Sign", caller="esp-forwarder")
        if denied < 1:
            raise Failure(f"{name}: auth-service's grpc_server_denied_total does not count the refused Sign")
        replicas = it.metric(ph.scrape(), "forwarder_ike_replicas")
        if replicas != 2:
            raise Failure(f"{name}: the forwarder sees {replicas} ike-service replicas after the "
                          "takeover attempts, want 2")
        # IKE still works for the client: a CHILD rekey through the relay.
        client.swanctl("--rekey", "--child", "rw", check=True)
        if not rekeyed_child(ph, client, child["spi_in"], timeout=10):
            raise Failure(f"{name}: a CHILD rekey after the takeover attempts did not complete")
        received, _, out = it.ping(ph.topo, "cli", ph.topo.lan_host, count=3, interval=0.1)
        if received < 3:
            raise Failure(f"{name}: ping after the rekey: {received}/3\n{out}")
    finally:
        pinger.stop()
    replies = [ts for ts, _ in pinger.replies() if ts >= started]
    gaps = [b - a for a, b in zip(replies, replies[1:])]
    worst = max(gaps) if gaps else None
    if not replies or worst > 1.0:
        raise Failure(f"{name}: the ping stalled during the attacks (longest gap {worst} s)")
    results[name] = {"denials": denials, "ping_replies": len(replies),
                     "longest_ping_gap_s": round(worst, 3)}
    say(f"{name}: {denials} wrong-role calls refused (PERMISSION_DENIED), no-certificate and "
        f"foreign-CA calls refused at the handshake; relay takeover refused; ping kept going "
        f"(longest gap {worst:.2f} s) and a CHILD rekey completed")
    client.stop()


RUNNERS = {"iperf": scenario_iperf, "rekey": scenario_rekey, "inject": scenario_inject,
           "forwarder": scenario_restart, "ike": scenario_takeover,
           "terminate": scenario_terminate_elsewhere, "trust": scenario_trust,
           "relay": scenario_relay_stall}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma list of " + ", ".join(SCENARIOS))
    ap.add_argument("--gateway-cmd", help="our gateway, one process (combined phase)")
    ap.add_argument("--split-gateway-cmd", help="our gateway as four processes and etcd (split phase)")
    ap.add_argument("--vpnctl", required=True)
    ap.add_argument("--rpc-probe", help="test/trust/rpc_probe, for the trust scenario")
    ap.add_argument("--seconds", type=int, default=5, help="iperf3 run length")
    ap.add_argument("--udp-rate", default="100M", help="iperf3 UDP target rate (-b)")
    ap.add_argument("--udp-len", type=int, default=1200, help="iperf3 UDP datagram size (-l)")
    ap.add_argument("--max-udp-loss", type=float, default=5.0, help="percent")
    ap.add_argument("--rekey-seconds", type=int, default=6)
    ap.add_argument("--restart-ping-seconds", type=float, default=6.0)
    ap.add_argument("--strict-rekey", action="store_true",
                    help="fail when an interval of the rekey run is empty because the gateway sent on "
                         "the new CHILD SA before the client had it (a lost CREATE_CHILD_SA response)")
    ap.add_argument("--restart-preload", type=int, default=0,
                    help="seconds of iperf3 UDP lan -> client before the forwarder restart")
    ap.add_argument("--strict-restart", action="store_true",
                    help="fail when the restarted forwarder reuses outbound sequence numbers (the "
                         "client refuses them) or accepts a replayed pre-restart packet")
    ap.add_argument("--deadline", type=int, default=170, help="whole-run limit in seconds")
    ap.add_argument("--gateway-timeout", type=int, default=20,
                    help="seconds for a gateway command to bind UDP 500, and again to become ready")
    ap.add_argument("--debug", action="store_true")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--json", help="write the measurements here")
    args = ap.parse_args()
    junit = os.environ.get("XML_OUTPUT_FILE")
    names = [s for s in args.scenarios.split(",") if s]
    for s in names:
        if s not in SCENARIOS:
            ap.error(f"unknown scenario {s}")
    if any(SCENARIOS[s][0] == "split" for s in names) and not args.split_gateway_cmd:
        ap.error("the split-phase scenarios need --split-gateway-cmd")
    if any(SCENARIOS[s][0] == "combined" for s in names) and not args.gateway_cmd:
        ap.error("the combined-phase scenarios need --gateway-cmd")
    if os.geteuid() != 0:
        msg = "SKIP: the interop test needs root (network namespaces, TUN devices)"
        print(msg, flush=True)
        it.write_junit(junit, [(s, True, 0.0, "") for s in names], skipped_msg=msg)
        return 0
    missing = [x for x in ("swanctl", "ip", "ping", "openssl", "ss", "iperf3", "tcpdump", "nft")
               if not shutil.which(x)]
    if args.split_gateway_cmd and any(SCENARIOS[s][0] == "split" for s in names):
        missing += [x for x in ("/usr/bin/etcd", "/usr/bin/etcdctl") if not os.path.exists(x)]
    if missing:
        print(f"FAIL: missing {', '.join(missing)} (run tools/setup.sh)", flush=True)
        return 1

    it.arm_deadline(args.deadline)

    results, measurements, failed = [], {}, False
    t_start = time.monotonic()
    try:
        for phase, cmd in (("combined", args.gateway_cmd), ("split", args.split_gateway_cmd)):
            # In SCENARIOS' order, whatever --scenarios says: ike-takeover
            # kills a replica and must come last.
            todo = [s for s in SCENARIOS if s in names and SCENARIOS[s][0] == phase]
            if not todo:
                continue
            ph = Phase(args, phase, cmd)
            phase_failed = False
            try:
                t0 = time.monotonic()
                ph.up()
                say(f"{phase}: gateway up in {time.monotonic() - t0:.1f} s")
                for s in todo:
                    t0 = time.monotonic()
                    try:
                        RUNNERS[s.split("-")[0]](ph, s, SCENARIOS[s][1], measurements)
                        results.append((s, True, time.monotonic() - t0, ""))
                        say(f"PASS {s} ({time.monotonic() - t0:.1f} s)")
                    except Timeout:
                        raise
                    except Exception as e:  # noqa: BLE001 - any fault fails this scenario only
                        phase_failed = True
                        msg = f"{type(e).__name__}: {e}"
                        for c in ph.clients[-1:]:
                            msg += "\n" + c.diagnostics(40)
                        msg += ph.gateway_log_tail(40)
                        results.append((s, False, time.monotonic() - t0, msg))
                        say(f"FAIL {s}: {msg}")
                        if ph.clients:
                            ph.clients[-1].stop()
            except (Failure, swan.HarnessError, Timeout, subprocess.TimeoutExpired) as e:
                phase_failed = True
                msg = str(e) + ph.gateway_log_tail(40)
                done = {x[0] for x in results}
                results += [(s, False, 0.0, msg) for s in todo if s not in done]
                say(f"FAIL {phase}: {msg}")
            finally:
                ph.down()
                ph.save_logs(phase_failed)
                failed |= phase_failed
            if isinstance(sys.exc_info()[1], Timeout):
                break
    except Timeout as e:
        failed = True
        done = {x[0] for x in results}
        results += [(s, False, 0.0, str(e)) for s in names if s not in done]
        say(f"FAIL: {e}")
    finally:
        signal.alarm(0)
    it.write_junit(junit, results)
    print(json.dumps(measurements, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(measurements, f, indent=2)
    npass = sum(1 for x in results if x[1])
    print(f"{npass} passed, {len(results) - npass} failed in {time.monotonic() - t_start:.0f} s", flush=True)
    return 1 if failed or npass != len(names) else 0


if __name__ == "__main__":
    sys.exit(main())
