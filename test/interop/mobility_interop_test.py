#!/usr/bin/env python3
"""Issue 7 acceptance, "VPN Reconnect": a strongSwan road warrior (EAP-MSCHAPv2,
MOBIKE) keeps its tunnel through OUR gateway across a NAT rebinding, an
outage and a path switch, and forged updates move nothing.

Reuses the harness (netns.sh topologies, swan.py, interop_test.Run, which
starts our gateway through --gateway-cmd or the strongSwan responder).
Phases, each with its own topology and gateway:

  mobility     our `gateway`, topology --nat --two-paths (path A through the
               NAT, path B direct), short outage timers (liveness_timeout 3s,
               outage_window 12s, forwarder liveness reports every 1s) and a
               /30 pool: exactly one virtual IP (10.10.0.2)
  switch-ours  our `gateway`, --two-paths: ping -i 0.01 through the tunnel,
               path A down, the largest gap in the replies (--switch-runs times)
  switch-swan  the same against the strongSwan responder

| scenario | phase | must |
|---|---|---|
| nat-rebind | mobility | ping running; `netns.sh nat-rebind` gives the NAT a new external port: replies resume through the new mapping; same IKE and ESP SPIs; no new EAP; the store record (vpnctl sa) shows the new port; forwarder_nat_rebindings_total{result="moved"} and mobility_endpoint_updates_total{cause="nat_rebinding"} counted |
| forged-update | mobility | a captured UPDATE_SA_ADDRESSES (the client's INFORMATIONAL request on path B after path A went down), given the next message ID and a flipped ICV byte, sent from a spoofed source (raw socket); a captured ESP packet with a raised sequence number and a flipped ICV byte, and one replayed as is, from the same spoofed source: the record does not change, ike_datagrams_dropped_total{reason="integrity_or_syntax"}, forwarder_esp_drops_total{reason="auth_failed"} and {reason="replay"} count them, no MOBIKE or NAT-rebinding update is counted, ping still works |
| outage | mobility | path B down, then path A down (no path at all) for longer than liveness_timeout: the gateway marks the SA DORMANT (vpnctl sa state, mobility_sas_dormant); path B up: the client comes back from its new address with MOBIKE, same SPIs, no new EAP; ping works; the record is ESTABLISHED at the new address |
| cleanup | mobility | the outage client is cut off (both paths down) and killed: after outage_window its SA is gone from `vpnctl sas` (mobility_sas_expired_total), and the next client gets the one virtual IP of the /30 pool |
| switch | switch-ours, switch-swan | the ping gap of a MOBIKE path switch with our gateway and with strongSwan's, same client, same run; both and the ratio are printed; an iperf3 TCP connection across each switch must survive (exit 0, data in its last interval); with ours, the gateway's own share (update in -> check out, answer in -> forwarder moved) from a path-B capture and the log, and the forwarder must have heard of the move from ike-service |

  mobility_interop_test.py --gateway-cmd 'exec our_gateway.sh GATEWAY VPNCTL' --vpnctl VPNCTL
      [--scenarios nat-rebind,forged-update,outage,cleanup,switch] [--switch-runs 3] [--json out.json]

Exit 0: passed, or SKIP when not root. Measurements are printed as JSON.
"""

import argparse
import base64
import datetime
import ipaddress
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
import types

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import interop_test as it  # noqa: E402
import swan  # noqa: E402

from interop_test import Failure, Timeout, say  # noqa: E402

MOBILITY_SCENARIOS = ["nat-rebind", "forged-update", "outage", "cleanup"]
ALL_SCENARIOS = MOBILITY_SCENARIOS + ["switch"]
LIVENESS_TIMEOUT_S = 3
OUTAGE_WINDOW_S = 12
MOBILITY_ENV = {
    "OUR_GATEWAY_LIVENESS_REPORT_INTERVAL": "1s",
    "OUR_GATEWAY_MOBILITY_YAML": (f"{{outage_window: {OUTAGE_WINDOW_S}s, liveness_timeout: "
                                  f"{LIVENESS_TIMEOUT_S}s, liveness_persist_interval: 1s}}"),
}
SPOOFED_SOURCE = "198.51.100.66"
NETNS = os.path.join(swan.HERE, "netns.sh")

# Sends one IPv4/UDP datagram with any source address (raw socket, IP_HDRINCL)
# out of one interface: argv = device src sport dst dport payload-hex.
SEND_SPOOFED = r"""
import socket, struct, sys
dev, src, sport, dst, dport, payload = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), bytes.fromhex(sys.argv[6])
udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0,
                 socket.inet_aton(src), socket.inet_aton(dst))
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, dev.encode())
s.sendto(ip + udp, (dst, 0))
"""


class Phase(it.Run):
    """One topology and one gateway (interop_test.Run) plus helpers."""

    def __init__(self, opts, name, gateway_cmd, two_paths=True, nat=False, extra_env=None,
                 pool4=None):
        run_args = types.SimpleNamespace(
            two_paths=two_paths, nat=nat, remote=None, gateway_cmd=gateway_cmd,
            wait_ready=bool(gateway_cmd), responder="none" if gateway_cmd else "strongswan",
            debug=opts.debug, keep=opts.keep, vpnctl=opts.vpnctl if gateway_cmd else None)
        super().__init__(run_args)
        self.opts = opts
        self.name = name
        self.log_label = f"mobility-{name}"
        self.log_ignore = ("store",)
        self.extra_env = extra_env or {}
        self.pool4 = pool4

    def start_gateway(self):
        if self.pool4:
            self.topo.facts["POOL4"] = self.pool4
            self.topo.pool4 = self.pool4
        saved = {k: os.environ.get(k) for k in self.extra_env}
        os.environ.update(self.extra_env)
        try:
            super().start_gateway()
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    # ---- the client
    def connect(self, scenario):
        """A fresh client charon; returns (client, IKE SA dict, CHILD SA dict, vip)."""
        t = self.topo
        client, ike, child = self.connect_client(
            scenario, "modern",
            levels=swan.DEBUG_LEVELS if self.opts.debug else swan.DEFAULT_LEVELS)
        vip = (ike.get("local-vips") or [None])[0]
        received, _, out = it.ping(t, "cli", t.lan_host, count=2, interval=0.1)
        if received < 2:
            raise Failure(f"{scenario}: ping through the tunnel: {received}/2\n{out}")
        say(f"{scenario}: connected from {ike.get('local-host')}, IKE {ike['spi_i']}_i "
            f"{ike['spi_r']}_r, CHILD {child['spi_in']}_in {child['spi_out']}_out, vip {vip}")
        return client, ike, child, vip

    def netns(self, *args, check=True):
        return swan.run([NETNS, args[0], self.topo.run_id, *args[1:]], check=check)

    # ---- the gateway's view
    def vpnctl(self, *args):
        return subprocess.run(["ip", "netns", "exec", self.topo.gw_ns,
                               *it.vpnctl_argv(self.opts.vpnctl, self.workdir, "ike-0"), *args],
                              capture_output=True, text=True, timeout=10)

    def record(self, ike):
        """The gateway's store record of an IKE SA (vpnctl sa), or None."""
        p = self.vpnctl("sa", ike["spi_i"], ike["spi_r"])
        if p.returncode != 0:
            return None
        return json.loads(p.stdout)


    def send_spoofed(self, device, payload, sport=4500):
        self.topo.exec("cli", ["python3", "-c", SEND_SPOOFED, device, SPOOFED_SOURCE, str(sport),
                               self.topo.gw_addr, "4500", payload.hex()])


def endpoint(ep):
    """(ip, port) of a JSON vpn.v1.Endpoint."""
    if not ep or "ip" not in ep:
        return None, None
    return str(ipaddress.ip_address(base64.b64decode(ep["ip"]))), int(ep.get("port", 0))


def eap_count(client):
    return sum("EAP" in line and "succeeded" in line for line in client.log_lines())


class TcpFlow:
    """An iperf3 TCP run (20 Mbit/s) from the client's virtual IP to the lan
    host across a switch: a one-off server, the client in the background."""

    PORT = 5202

    def __init__(self, ph, seconds):
        t = ph.topo
        self.server = subprocess.Popen(
            ["ip", "netns", "exec", t.lan_ns, "iperf3", "-s", "-1", "-B", t.lan_host, "-p", str(self.PORT)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 5
        while not t.exec("lan", ["ss", "-H", "-tln", "sport", "=", f":{self.PORT}"], check=False).stdout.strip():
            if time.monotonic() > deadline:
                raise Failure("iperf3 server did not listen")
            time.sleep(0.05)
        self.client = subprocess.Popen(
            ["ip", "netns", "exec", t.cli_ns, "iperf3", "-c", t.lan_host, "-p", str(self.PORT), "-t", str(seconds),
             "-b", "20M", "-i", "0.5", "-J", "--connect-timeout", "3000"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        self.seconds = seconds

    def finish(self):
        """{"error", "mbit_s", "last_mbit_s"}: error is None when iperf3 exited 0
        and the last interval carried data (the connection outlived the switch)."""
        try:
            out, err = self.client.communicate(timeout=self.seconds + 15)
        except subprocess.TimeoutExpired:
            return {"error": "iperf3 did not finish", "mbit_s": 0, "last_mbit_s": 0}
        try:
            j = json.loads(out)
        except ValueError:
            return {"error": f"no JSON from iperf3 (exit {self.client.returncode}): {err[-200:]}",
                    "mbit_s": 0, "last_mbit_s": 0}
        intervals = j.get("intervals") or [{}]
        last = intervals[-1].get("sum", {}).get("bits_per_second", 0.0)
        total = j.get("end", {}).get("sum_received", {}).get("bits_per_second", 0.0)
        error = j.get("error") or (f"iperf3 exited {self.client.returncode}" if self.client.returncode else None)
        if not error and last <= 0:
            error = "the last interval carried nothing"
        return {"error": error, "mbit_s": round(total / 1e6, 1), "last_mbit_s": round(last / 1e6, 1)}

    def stop(self):
        for p in (self.client, self.server):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def child_fate(client, sa, child):
    """After a MOBIKE move: whether the CHILD SA kept its SPIs, or the client
    rekeyed it itself (strongSwan's userspace ESP cannot move an SA in place)."""
    spis = [(c["spi_in"], c["spi_out"]) for c in sa["children"] if c.get("state") == "INSTALLED"]
    if (child["spi_in"], child["spi_out"]) in spis:
        return f"CHILD SA {child['spi_in']}_in kept"
    own = any("CREATE_CHILD_SA request" in line and "REKEY_SA" in line and "generating" in line
              for line in client.log_lines())
    return (f"CHILD SA {child['spi_in']}_in -> {spis[0][0] if spis else '?'}_in, rekeyed by "
            f"{'the client (CREATE_CHILD_SA with REKEY_SA in its log)' if own else 'someone'}")


def gap_around(replies, epoch):
    """(largest gap between consecutive replies in ms, replies missing by
    icmp_seq) of a ping run in which something happened at `epoch`; the gap
    must end after `epoch` (None otherwise)."""
    if len(replies) < 2:
        return None, None
    gaps = [(b[0] - a[0], b[0]) for a, b in zip(replies, replies[1:])]
    largest, ends = max(gaps)
    if ends <= epoch:
        return None, None
    seqs = [q for _, q in replies]
    lost = (max(seqs) - min(seqs) + 1) - len(set(seqs))
    return round(largest * 1000, 1), lost


def same_sa(client, ike, child):
    """The client's one IKE SA, if it is `ike` (same SPIs, same IKE SA
    number) and, when `child` is given, still has that CHILD SA."""
    sas = client.list_sas()
    if len(sas) != 1:
        return None, f"{len(sas)} IKE SAs on the client"
    sa = sas[0]
    if (sa["spi_i"], sa["spi_r"]) != (ike["spi_i"], ike["spi_r"]):
        return None, f"IKE SPIs changed: {sa['spi_i']}_i {sa['spi_r']}_r"
    if sa.get("uniqueid") != ike.get("uniqueid"):
        return None, f"a new IKE SA on the client (uniqueid {sa.get('uniqueid')})"
    if child is None:
        return sa, None
    spis = [(c["spi_in"], c["spi_out"]) for c in sa["children"] if c.get("state") == "INSTALLED"]
    if (child["spi_in"], child["spi_out"]) not in spis:
        return None, f"CHILD SPIs changed: {spis}"
    return sa, None


# --------------------------------------------------------------------------
# Scenarios (mobility phase)

def restore_paths(ph):
    """Both client paths up (a failed scenario may have left one down)."""
    ph.netns("path-up", "a", check=False)
    if ph.topo.cli_addr_b:
        ph.netns("path-up", "b", check=False)


def scenario_nat_rebind(ph, results):
    name = "nat-rebind"
    t = ph.topo
    restore_paths(ph)
    client, ike, child, vip = ph.connect(name)
    eap0 = eap_count(client)
    rec = ph.record(ike)
    ip0, port0 = endpoint(rec["ike_sa"]["remote"])
    say(f"{name}: the store has the client at {ip0}:{port0} (the NAT's mapping)")
    base = ph.scrape()
    pinger = it.Pinger(ph, os.path.join(ph.workdir, f"ping-{name}.txt"), 0.02)
    try:
        time.sleep(1.0)
        t0 = time.time()
        ph.netns("nat-rebind")
        resumed = pinger.wait_reply_after(time.time() + 0.01, timeout=10)
        time.sleep(0.5)
    finally:
        pinger.stop()
    if not resumed:
        raise Failure(f"{name}: no ping reply through the tunnel after the NAT rebinding")
    gap_ms, lost = gap_around(pinger.replies(), t0)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        rec = ph.record(ike)
        ip1, port1 = endpoint(rec["ike_sa"]["remote"])
        if port1 != port0:
            break
        time.sleep(0.1)
    if (ip1, port1) == (ip0, port0):
        raise Failure(f"{name}: the store record still shows {ip0}:{port0}")
    nat = t.exec("nat", ["conntrack", "-L", "-p", "udp", "--orig-port-dst", "4500"], check=False).stdout
    mapped = sorted({int(p) for p in re.findall(r"dst=" + re.escape(t.cli_public_a) + r" sport=4500 dport=(\d+)", nat)})
    if port1 not in mapped:
        raise Failure(f"{name}: the record shows port {port1}, the NAT maps to {mapped}:\n{nat}")
    children = {c.get("inbound_spi"): endpoint(c.get("remote")) for c in rec.get("child_sas", [])}
    if any(ep != (ip1, port1) for ep in children.values()):
        raise Failure(f"{name}: the CHILD records did not follow: {children}")
    sa, why = same_sa(client, ike, child)
    if not sa:
        raise Failure(f"{name}: {why}")
    if eap_count(client) != eap0:
        raise Failure(f"{name}: the client authenticated again")
    ms = ph.scrape()
    moved = it.metric(ms, "forwarder_nat_rebindings_total", result="moved") - \
        it.metric(base, "forwarder_nat_rebindings_total", result="moved")
    committed = it.metric(ms, "mobility_endpoint_updates_total", cause="nat_rebinding") - \
        it.metric(base, "mobility_endpoint_updates_total", cause="nat_rebinding")
    if moved < 1 or committed < 1:
        raise Failure(f"{name}: metrics: forwarder moved {moved}, mobility committed {committed}")
    received, _, out = it.ping(t, "cli", t.lan_host, count=3, interval=0.1)
    if received < 3:
        raise Failure(f"{name}: ping after the rebinding: {received}/3\n{out}")
    say(f"{name}: NAT mapping {ip0}:{port0} -> {ip1}:{port1} (conntrack {mapped}); ping -i 0.02 "
        f"resumed: largest reply gap {gap_ms} ms, {lost} replies missing; same IKE "
        f"and CHILD SPIs, no new EAP; store IKE and {len(children)} CHILD record(s) at the new "
        f"port; forwarder_nat_rebindings_total{{moved}} +{moved:.0f}, "
        f"mobility_endpoint_updates_total{{nat_rebinding}} +{committed:.0f}")
    results[name] = {"from": f"{ip0}:{port0}", "to": f"{ip1}:{port1}", "largest_gap_ms": gap_ms,
                     "lost": lost}
    client.terminate()
    client.stop()


def scenario_forged(ph, results):
    name = "forged-update"
    t = ph.topo
    restore_paths(ph)
    client, ike, child, vip = ph.connect(name)
    eap0 = eap_count(client)
    # 1. A real UPDATE_SA_ADDRESSES to capture: path A goes down, the client
    # moves to path B (MOBIKE) and sends it there.
    cap = swan.Capture(t.cli_ns, "b0", os.path.join(ph.workdir, f"cli-{name}-b0.pcap"),
                       bpf="udp port 4500")
    # Path A stays down until the end: with both links up this topology
    # routes the client's packets from its path-B address out of path A
    # (through the NAT, which cannot route the answers back).
    try:
        ph.netns("path-down", "a")
        moved = ph._wait_for(client, lambda sa: sa if sa.get("local-host") == t.cli_addr_b and
                             sa["state"] == "ESTABLISHED" else None, timeout=15)
        time.sleep(0.5)
    finally:
        cap.stop()
    if not moved:
        raise Failure(f"{name}: the client did not move to path B: {client.list_sas()}")
    requests = [m for m in swan.ike_datagrams(cap.path)
                if m["exchange"] == 37 and m["dst"] == t.gw_addr and not m["flags"] & 0x20
                and m["spi_i"] == ike["spi_i"]]
    if not requests:
        raise Failure(f"{name}: no INFORMATIONAL request from the client on path B was captured")
    update = requests[0]
    # strongSwan's userspace ESP rekeys the CHILD SA after a move; go on with the new one.
    time.sleep(1.0)
    sa = client.list_sas()[0]
    child = next((c for c in sa["children"] if c.get("state") == "INSTALLED"), child)
    received, _, out = it.ping(t, "cli", t.lan_host, count=2, interval=0.1)
    if received < 2:
        raise Failure(f"{name}: ping after the real move: {received}/2\n{out}")
    before = ph.record(ike)
    # The message ID the gateway expects next: one past the client's last
    # request (the record's next_message_id_in may lag behind).
    sent = [int(m.group(1)) for m in (re.search(r"generating \S+ request (\d+)", line)
                                      for line in client.log_lines()) if m]
    next_id = max([int(before["ike_sa"].get("next_message_id_in", 0))] + [x + 1 for x in sent])
    forged = bytearray(update["data"])
    forged[20:24] = next_id.to_bytes(4, "big")  # passes the message ID check ...
    forged[-1] ^= 0x01                           # ... and fails the integrity check
    base = ph.scrape()
    ph.send_spoofed("b0", b"\0\0\0\0" + bytes(forged))

    # 2. ESP from the same spoofed source: captured on path A, one with a
    # raised sequence number (fresh) and a flipped ICV byte, one replayed.
    dev = "b0"
    cap = swan.Capture(t.cli_ns, dev, os.path.join(ph.workdir, f"cli-{name}-esp.pcap"),
                       bpf="udp dst port 4500 and udp[8:4] != 0")
    try:
        it.ping(t, "cli", t.lan_host, count=3, interval=0.05)
    finally:
        cap.stop()
    # While the rekey's old SA is still being deleted both are INSTALLED:
    # take the one the pings went out under.
    installed = {int(c["spi_out"], 16): c for c in client.list_sas()[0]["children"]
                 if c.get("state") == "INSTALLED"}
    esp = [p for _, src, sport, dst, dport, p in swan.read_pcap_udp(cap.path)
           if dst == t.gw_addr and len(p) > 8 and int.from_bytes(p[:4], "big") in installed]
    if not esp:
        raise Failure(f"{name}: no ESP of an installed CHILD SA "
                      f"({', '.join(c['spi_out'] for c in installed.values())}) captured on {dev}")
    child = installed[int.from_bytes(esp[-1][:4], "big")]
    fresh = bytearray(esp[-1])
    fresh[4:8] = (int.from_bytes(fresh[4:8], "big") + 100000).to_bytes(4, "big")
    fresh[-1] ^= 0x01
    ph.send_spoofed("b0", bytes(fresh))
    ph.send_spoofed("b0", esp[-1])
    time.sleep(1.0)
    ms = ph.scrape()
    after = ph.record(ike)

    def delta(n, **lab):
        return it.metric(ms, n, **lab) - it.metric(base, n, **lab)
    deltas = {"ike_integrity": delta("ike_datagrams_dropped_total", reason="integrity_or_syntax"),
              "esp_auth_failed": delta("forwarder_esp_drops_total", reason="auth_failed"),
              "esp_replay": delta("forwarder_esp_drops_total", reason="replay"),
              "mobike_updates": delta("mobility_endpoint_updates_total", cause="mobike"),
              "nat_rebinding_updates": delta("mobility_endpoint_updates_total", cause="nat_rebinding"),
              "forwarder_moves": sum(delta("forwarder_nat_rebindings_total", result=r)
                                     for r in ("moved", "refused", "failed", "superseded"))}
    ike_drops = {dict(lab).get("reason"): v - base.get((n, lab), 0.0) for (n, lab), v in ms.items()
                 if n == "ike_datagrams_dropped_total" and v - base.get((n, lab), 0.0)}
    say(f"{name}: counter deltas after the forgeries: {deltas}; IKE drops by reason {ike_drops}; "
        f"forged msgid {next_id} (captured {update['msgid']}, {len(update['data'])} bytes)")
    problems = []
    if deltas["ike_integrity"] < 1:
        problems.append("the forged UPDATE_SA_ADDRESSES was not counted as an integrity failure")
    if deltas["esp_auth_failed"] < 1 or deltas["esp_replay"] < 1:
        problems.append("the spoofed ESP packets were not counted (auth_failed, replay)")
    if deltas["mobike_updates"] or deltas["nat_rebinding_updates"] or deltas["forwarder_moves"]:
        problems.append("something moved")
    b_ep = endpoint(before["ike_sa"]["remote"])
    a_ep = endpoint(after["ike_sa"]["remote"])
    b_children = sorted(json.dumps(c.get("remote")) for c in before.get("child_sas", []))
    a_children = sorted(json.dumps(c.get("remote")) for c in after.get("child_sas", []))
    if a_ep != b_ep or a_children != b_children or \
            after["ike_sa"].get("next_message_id_in") != before["ike_sa"].get("next_message_id_in"):
        problems.append(f"the record changed: {b_ep} -> {a_ep}, CHILD {b_children} -> {a_children}")
    if problems:
        raise Failure(f"{name}: " + "; ".join(problems))
    sa, why = same_sa(client, ike, child)
    if not sa:
        raise Failure(f"{name}: {why}")
    received, _, out = it.ping(t, "cli", t.lan_host, count=3, interval=0.1)
    if received < 3 or eap_count(client) != eap0:
        raise Failure(f"{name}: after the forgeries ping {received}/3, EAP rounds "
                      f"{eap_count(client) - eap0} new\n{out}")
    ph.netns("path-up", "a", check=False)
    say(f"{name}: forged UPDATE_SA_ADDRESSES (captured msgid {update['msgid']} -> {next_id}, ICV "
        f"flipped) and spoofed ESP (seq +100000 with ICV flipped; a replay) from {SPOOFED_SOURCE}: "
        f"record unchanged at {a_ep[0]}:{a_ep[1]}, nothing moved, drops counted; tunnel fine")
    results[name] = {"deltas": deltas, "record_remote": f"{a_ep[0]}:{a_ep[1]}"}
    client.terminate()
    client.stop()
    ph.netns("path-up", "a", check=False)


def scenario_outage(ph, results):
    """Returns (client, ike, child, vip) for the cleanup scenario."""
    name = "outage"
    t = ph.topo
    restore_paths(ph)
    ph.netns("path-down", "b")  # path B stays down: the client's later "new network"
    client, ike, child, vip = ph.connect(name)
    eap0 = eap_count(client)
    ip0, port0 = endpoint(ph.record(ike)["ike_sa"]["remote"])
    it.ping(t, "cli", t.lan_host, count=3, interval=0.2)  # liveness reports flow
    state = ph.record(ike)["ike_sa"].get("state")
    if state != "IKE_SA_STATE_ESTABLISHED":
        raise Failure(f"{name}: with traffic flowing the SA is {state}")
    ph.netns("path-down", "a")
    cut = time.monotonic()
    dormant_after = None
    deadline = time.monotonic() + LIVENESS_TIMEOUT_S + 8
    while time.monotonic() < deadline:
        rec = ph.record(ike)
        if rec and rec["ike_sa"].get("state") == "IKE_SA_STATE_DORMANT":
            dormant_after = time.monotonic() - cut
            break
        time.sleep(0.2)
    if dormant_after is None:
        raise Failure(f"{name}: the gateway did not mark the silent SA DORMANT: {ph.record(ike)}")
    gauge = it.metric(ph.scrape(), "mobility_sas_dormant")
    say(f"{name}: client cut off; the gateway marked the SA DORMANT after {dormant_after:.1f} s "
        f"(liveness_timeout {LIVENESS_TIMEOUT_S}s); mobility_sas_dormant {gauge:.0f}")
    # Cut off for clearly longer than liveness_timeout (and well inside the window).
    time.sleep(max(0.5, LIVENESS_TIMEOUT_S + 2 - (time.monotonic() - cut)))
    ph.netns("path-up", "b")
    outage = time.monotonic() - cut
    back = ph._wait_for(client, lambda sa: sa if sa.get("local-host") == t.cli_addr_b and
                        sa["state"] == "ESTABLISHED" else None, timeout=20)
    if not back:
        raise Failure(f"{name}: the client did not come back on path B: {client.list_sas()}")
    resumed = time.monotonic() - cut
    received, _, out = it.ping(t, "cli", t.lan_host, count=3, interval=0.2)
    if received < 3:
        raise Failure(f"{name}: ping after the return: {received}/3\n{out}")
    sa, why = same_sa(client, ike, None)
    if not sa:
        raise Failure(f"{name}: {why}")
    child_note = child_fate(client, sa, child)
    if eap_count(client) != eap0:
        raise Failure(f"{name}: the client authenticated again")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        rec = ph.record(ike)
        ip1, port1 = endpoint(rec["ike_sa"]["remote"])
        st = rec["ike_sa"].get("state")
        if ip1 == t.cli_addr_b and st == "IKE_SA_STATE_ESTABLISHED":
            break
        time.sleep(0.1)
    else:
        raise Failure(f"{name}: the record shows {ip1}:{port1} {st}")
    say(f"{name}: no path for {outage:.1f} s (> liveness_timeout {LIVENESS_TIMEOUT_S}s, < "
        f"outage_window {OUTAGE_WINDOW_S}s), back from {ip1}:{port1} (was {ip0}:{port0}) "
        f"{resumed:.1f} s after the cut: same IKE SA and SPIs, no new EAP, {child_note}; "
        "record ESTABLISHED")
    results[name] = {"dormant_after_s": round(dormant_after, 1), "no_path_s": round(outage, 1),
                     "from": f"{ip0}:{port0}", "to": f"{ip1}:{port1}", "child": child_note}
    return client, ike, child, vip


def scenario_cleanup(ph, results, previous):
    name = "cleanup"
    t = ph.topo
    if previous is None:
        client, ike, child, vip = ph.connect(name)
    else:
        client, ike, child, vip = previous
    base = ph.scrape()
    ph.netns("path-down", "a", check=False)
    ph.netns("path-down", "b", check=False)
    # Gone for good: no DELETE when the paths come back.
    os.kill(client.pid, signal.SIGKILL)
    client.stop()
    cut = time.monotonic()
    deadline = cut + OUTAGE_WINDOW_S + 15
    gone = None
    while time.monotonic() < deadline:
        p = ph.vpnctl("sas")
        if p.returncode == 0 and ike["spi_r"] not in p.stdout:
            gone = time.monotonic() - cut
            break
        time.sleep(0.5)
    if gone is None:
        raise Failure(f"{name}: the SA is still listed {OUTAGE_WINDOW_S + 15} s after the client "
                      f"vanished:\n{ph.vpnctl('sas').stdout}")
    expired = it.metric(ph.scrape(), "mobility_sas_expired_total") - it.metric(base, "mobility_sas_expired_total")
    if expired < 1:
        raise Failure(f"{name}: the SA disappeared but mobility_sas_expired_total did not count it")
    if ph.record(ike) is not None:
        raise Failure(f"{name}: the store still has the record")
    say(f"{name}: the client vanished; its SA left `vpnctl sas` after {gone:.1f} s "
        f"(outage_window {OUTAGE_WINDOW_S}s); mobility_sas_expired_total +{expired:.0f}")
    ph.netns("path-up", "a")
    ph.netns("path-up", "b")
    nxt, nike, nchild, nvip = ph.connect(f"{name}-next")
    if nvip != vip:
        raise Failure(f"{name}: the next client got {nvip}, not the released {vip}")
    say(f"{name}: the next client got the one virtual IP of the /30 pool, {nvip}, again")
    results[name] = {"gone_after_s": round(gone, 1), "vip_reused": nvip}
    nxt.terminate()
    nxt.stop()


# --------------------------------------------------------------------------
# Path switch timing (our gateway and strongSwan's)

def switch_runs(ph, runs, results_key, results):
    t = ph.topo
    out = []
    for i in range(runs):
        name = f"switch-{ph.name}-{i}"
        client, ike, child, vip = ph.connect(name)
        eap0 = eap_count(client)
        ours = bool(ph.gateway_proc)
        pcap = os.path.join(ph.workdir, f"gw-b-{name}.pcap")
        # IKE only (non-ESP marker): the ESP of the TCP flow would crowd it out.
        capture = swan.Capture(t.gw_ns, "b1", pcap, bpf="udp port 4500 and udp[8:4] = 0") if ours else None
        tcp = TcpFlow(ph, seconds=4)
        pinger = it.Pinger(ph, os.path.join(ph.workdir, f"ping-{name}.txt"), 0.01)
        try:
            time.sleep(1.0)
            t0 = time.time()
            ph.netns("path-down", "a")
            ok = pinger.wait_reply_after(time.time() + 0.01, timeout=15)
            time.sleep(0.3)
            tcp_result = tcp.finish()
        finally:
            pinger.stop()
            tcp.stop()
            if capture:
                capture.stop()
            ph.netns("path-up", "a", check=False)
        if not ok:
            raise Failure(f"{name}: no ping reply after path A went down")
        if tcp_result["error"]:
            raise Failure(f"{name}: the TCP connection did not survive the switch: {tcp_result['error']}")
        gap_ms, lost = gap_around(pinger.replies(), t0)
        if gap_ms is None:
            raise Failure(f"{name}: no gap in the replies after path A went down")
        sa = client.list_sas()[0]
        if sa["spi_r"] != ike["spi_r"] or eap_count(client) != eap0:
            raise Failure(f"{name}: new IKE SA or new EAP after the switch")
        same_child = any(c["spi_in"] == child["spi_in"] and c.get("state") == "INSTALLED"
                         for c in sa["children"])
        share = gateway_share(ph, pcap, ike["spi_r"], t0) if ours else None
        say(f"{name}: path A down -> largest reply gap {gap_ms} ms (ping -i 0.01, {lost} missing); same IKE "
            f"SA, CHILD SA {'kept' if same_child else 'rekeyed'}; iperf3 TCP across it exited 0, "
            f"{tcp_result['mbit_s']} Mbit/s, last interval {tcp_result['last_mbit_s']} Mbit/s"
            + (f"; gateway's own share {share['total_ms']} ms (update in -> check out "
               f"{share['update_to_check_ms']} ms, check answer in -> forwarder on the new path "
               f"{share['answer_to_forwarder_ms']} ms)" if share else ""))
        out.append({"largest_gap_ms": gap_ms, "lost": lost, "child_kept": same_child, "tcp": tcp_result,
                    "gateway_share": share})
        client.terminate()
        client.stop()
        time.sleep(1.0)  # the client's route back to path A settles
    gaps = [r["largest_gap_ms"] for r in out]
    results[results_key] = {"runs": out, "median_gap_ms": statistics.median(gaps),
                            "min_gap_ms": min(gaps), "max_gap_ms": max(gaps)}
    if ph.gateway_proc:
        ms = ph.scrape()
        count = it.metric(ms, "ike_mobike_switch_seconds_count")
        if count < runs:
            raise Failure(f"ike_mobike_switch_seconds counted {count} switches, not {runs}")
        results[results_key]["metric_mean_switch_ms"] = round(
            it.metric(ms, "ike_mobike_switch_seconds_sum") / count * 1e3, 3)
    shares = [r["gateway_share"]["total_ms"] for r in out if r["gateway_share"]]
    if shares:
        results[results_key].update(median_gateway_share_ms=statistics.median(shares),
                                    max_gateway_share_ms=max(shares))


def log_time(ts):
    """Seconds since the epoch of a JSON log line's "ts" (UTC, microseconds)."""
    return datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def gateway_share(ph, pcap, spi_r, t0):
    """The gateway's own share of a MOBIKE move (the issue's 1 ms goal), on
    the wire of path B and in the gateway's log: from the client's
    UPDATE_SA_ADDRESSES arriving to the gateway's return-routability request
    (COOKIE2) leaving, plus from the client's answer arriving to the
    forwarder pointing the CHILD SAs at the new path. The client's round
    trip in between is not ours. Fails when the forwarder never heard of
    the move from ike-service."""
    t = ph.topo
    followed = None
    with open(os.path.join(ph.workdir, "gateway.log"), errors="replace") as f:
        for line in f:
            if "new path" not in line:
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if (entry.get("msg") == "CHILD SAs follow their IKE SA's new path"
                    and entry.get("spi_r") == spi_r and log_time(entry["ts"]) >= t0):
                followed = log_time(entry["ts"])
                break
    if followed is None:
        raise Failure(f"the forwarder did not hear of the move of {spi_r} from ike-service")
    msgs = [m for m in swan.ike_datagrams(pcap)
            if m["spi_r"] == spi_r and m["exchange"] == 37 and t0 <= m["time"] <= followed]
    requests = [m for m in msgs if m["src"] == t.cli_addr_b and m["flags"] & 0x28 == 0x08]
    # The gateway's return-routability check, answered before the move.
    checks = [m for m in msgs if m["src"] == t.gw_addr and m["flags"] & 0x28 == 0]
    check = checks[-1] if checks else None
    answer = None if check is None else next(
        (m for m in msgs if m["src"] == t.cli_addr_b and m["flags"] & 0x20 and m["msgid"] == check["msgid"]
         and m["time"] >= check["time"]), None)
    # The client probes path B with an empty INFORMATIONAL first; the update
    # is its last request before the check (or before the move, without one).
    before = check["time"] if answer is not None else followed
    update = ([m for m in requests if m["time"] <= before] or [None])[-1]
    if update is None or (check is not None and answer is None):
        say(f"WARNING: the capture ({pcap}) lacks the client's UPDATE_SA_ADDRESSES or its answer "
            "to the return-routability check; no share measured for this switch")
        return None
    if answer is None:  # moved at once (a request of ours was outstanding)
        first, second = 0.0, followed - update["time"]
    else:
        first, second = check["time"] - update["time"], followed - answer["time"]
    return {"update_to_check_ms": round(first * 1e3, 3), "answer_to_forwarder_ms": round(second * 1e3, 3),
            "total_ms": round((first + second) * 1e3, 3)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenarios", default=",".join(ALL_SCENARIOS),
                    help="comma list of " + ", ".join(ALL_SCENARIOS))
    ap.add_argument("--gateway-cmd", required=True, help="our gateway (one process)")
    ap.add_argument("--vpnctl", required=True)
    ap.add_argument("--switch-runs", type=int, default=3)
    ap.add_argument("--deadline", type=int, default=270, help="whole-run limit in seconds")
    ap.add_argument("--debug", action="store_true")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--json", help="write the measurements here")
    args = ap.parse_args()
    names = [s for s in args.scenarios.split(",") if s]
    for s in names:
        if s not in ALL_SCENARIOS:
            ap.error(f"unknown scenario {s}")
    junit = os.environ.get("XML_OUTPUT_FILE")
    if os.geteuid() != 0:
        msg = "SKIP: the mobility interop test needs root (network namespaces, TUN devices)"
        print(msg, flush=True)
        it.write_junit(junit, [(s, True, 0.0, "") for s in names], skipped_msg=msg)
        return 0
    missing = [x for x in ("swanctl", "ip", "ping", "tcpdump", "conntrack", "nft") if not shutil.which(x)]
    if missing:
        print(f"FAIL: missing {', '.join(missing)} (run tools/setup.sh)", flush=True)
        return 1

    it.arm_deadline(args.deadline)

    results, measurements = [], {}
    failed = False
    phases = []
    mob = [s for s in MOBILITY_SCENARIOS if s in names]
    if mob:
        phases.append(("mobility", dict(gateway_cmd=args.gateway_cmd, nat=True, extra_env=MOBILITY_ENV,
                                        pool4="10.10.0.0/30"), mob))
    if "switch" in names:
        phases.append(("ours", dict(gateway_cmd=args.gateway_cmd), ["switch"]))
        phases.append(("strongswan", dict(gateway_cmd=None), ["switch"]))
    try:
        for phase_name, kw, scenarios in phases:
            ph = Phase(args, phase_name, kw.pop("gateway_cmd"), **kw)
            phase_failed = False
            try:
                ph.up()
                previous = None
                for s in scenarios:
                    label = s if phase_name == "mobility" else f"switch-{phase_name}"
                    t0 = time.monotonic()
                    try:
                        if s == "nat-rebind":
                            scenario_nat_rebind(ph, measurements)
                        elif s == "forged-update":
                            scenario_forged(ph, measurements)
                        elif s == "outage":
                            previous = scenario_outage(ph, measurements)
                        elif s == "cleanup":
                            scenario_cleanup(ph, measurements, previous)
                        elif s == "switch":
                            switch_runs(ph, args.switch_runs, f"switch_{phase_name}", measurements)
                        results.append((label, True, time.monotonic() - t0, ""))
                        say(f"PASS {label}")
                    except (Failure, swan.HarnessError, subprocess.TimeoutExpired, KeyError,
                            TypeError) as e:
                        failed = phase_failed = True
                        msg = f"{type(e).__name__}: {e}"
                        for c in ph.clients[-1:]:
                            msg += "\n" + c.diagnostics(40)
                        msg += ph.gateway_log_tail(40)
                        results.append((label, False, time.monotonic() - t0, msg))
                        say(f"FAIL {label}: {msg}")
                        # Give the virtual IP back (the /30 pool has one).
                        for c in ph.clients:
                            if c.pid:
                                c.terminate(timeout=3)
                            c.stop()
                        previous = None
            except (Failure, swan.HarnessError, subprocess.TimeoutExpired) as e:
                failed = phase_failed = True
                msg = str(e) + ph.gateway_log_tail(40)
                done = {x[0] for x in results}
                results += [(s, False, 0.0, msg) for s in scenarios if s not in done]
                say(f"FAIL phase {phase_name}: {msg}")
            finally:
                ph.down()
                ph.save_logs(phase_failed)
    except Timeout as e:
        failed = True
        results.append(("deadline", False, 0.0, str(e)))
        say(f"FAIL: {e}")
    finally:
        signal.alarm(0)
    ours, theirs = measurements.get("switch_ours"), measurements.get("switch_strongswan")
    if ours and theirs:
        measurements["switch_ratio_ours_to_strongswan"] = round(
            ours["median_gap_ms"] / theirs["median_gap_ms"], 2) if theirs["median_gap_ms"] else None
        say(f"path switch, median largest ping gap: ours {ours['median_gap_ms']} ms "
            f"({ours['min_gap_ms']}-{ours['max_gap_ms']}), strongSwan {theirs['median_gap_ms']} ms "
            f"({theirs['min_gap_ms']}-{theirs['max_gap_ms']}); ratio "
            f"{measurements['switch_ratio_ours_to_strongswan']}")
    if ours and "median_gateway_share_ms" in ours:
        say(f"path switch, the gateway's own share (update in -> check out, plus check answer in -> "
            f"forwarder on the new path): median {ours['median_gateway_share_ms']} ms, "
            f"max {ours['max_gateway_share_ms']} ms")
    it.write_junit(junit, results)
    print(json.dumps(measurements, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(measurements, f, indent=2)
    npass = sum(1 for x in results if x[1])
    print(f"{npass} passed, {len(results) - npass} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
