#!/usr/bin/env python3
"""Issue 14, item 3: a CHILD SA's outbound ESP sequence numbers (with AES-GCM
also its nonces) stay unique when the client moves from one forwarder node to
another.

Topology `netns.sh up --two-nodes`: the client's path A ends at node gw, path
B at node gw2; both nodes hold the gateway's public address. Our gateway
split (our_gateway.sh, OUR_GATEWAY_SPLIT=1, OUR_GATEWAY_SECOND_NODE=1): etcd,
auth-service, mobility-service, ike-service and forwarder A on gw, forwarder
B on gw2 across a control link; each node has its own protected network with
the same addresses.

A strongSwan client (EAP-MSCHAPv2, MOBIKE, AES-256-GCM) connects over path A
(node A). Both nodes then send on its CHILD SA at once, as when inner routes
reach several nodes: the client pings node A's protected network, and node
B's protected network pings the client's virtual IP, node B reaching the
client's path-A address over path B. Then path A goes down and MOBIKE moves
the IKE SA to node B. Every ESP packet the gateway sends to the client is
captured on both client links.

Must:
  - both nodes sent ESP on the client's first inbound SA, at least
    MIN_PACKETS each;
  - no (SPI, sequence number) pair appears twice across both captures;
  - the client's pings are answered through node B after the move, the IKE
    SA keeps its SPIs and the client does not authenticate again.

strongSwan's kernel-libipsec cannot update an SA's addresses, so the client
rekeys its CHILD SA right after the move; the new SA is checked the same way.

  two_forwarders_test.py --gateway-cmd 'exec env OUR_GATEWAY_SPLIT=1 ... our_gateway.sh ...' --vpnctl VPNCTL
Exit 0: passed, or SKIP when not root.
"""

import argparse
import collections
import os
import shutil
import subprocess
import sys
import time
import types

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import interop_test as it  # noqa: E402
import swan  # noqa: E402

from interop_test import Failure, say  # noqa: E402

MIN_PACKETS = 50
PING_INTERVAL_S = 0.01
NETNS = os.path.join(swan.HERE, "netns.sh")
# ESP in UDP (RFC 3948): a non-zero SPI where IKE has its non-ESP marker.
ESP_FROM = "src host {} and udp src port 4500 and udp[8:4] != 0"


def esp_packets(pcap):
    """[(time, SPI, sequence number)] of the captured ESP packets."""
    out = []
    for ts, _src, _sport, _dst, _dport, payload in swan.read_pcap_udp(pcap):
        if len(payload) >= 8:
            out.append((ts, int.from_bytes(payload[:4], "big"), int.from_bytes(payload[4:8], "big")))
    return out


def wait_for(predicate, timeout, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return None


def run_test(run):
    t = run.topo
    workdir = run.workdir
    caps = {path: swan.Capture(t.cli_ns, dev, os.path.join(workdir, f"cli-{dev}-esp.pcap"),
                               bpf=ESP_FROM.format(t.gw_addr))
            for path, dev in (("a", "a0"), ("b", "b0"))}
    pinger = lan2_pinger = None
    try:
        client, before, child = run.connect_client(
            "two-forwarders", "modern",
            levels=swan.DEBUG_LEVELS if run.args.debug else swan.DEFAULT_LEVELS)
        eap_rounds = sum("EAP" in line and "succeeded" in line for line in client.log_lines())
        vip = (before.get("local-vips") or [None])[0]
        say(f"connected over path A: IKE {before['spi_i']}_i {before['spi_r']}_r, "
            f"CHILD {child['spi_in']}_in {child['spi_out']}_out, vip {vip}")
        pinger = it.Pinger(run, os.path.join(workdir, "ping.txt"), PING_INTERVAL_S)
        if not pinger.wait_reply_after(time.time(), 10):
            raise Failure("no ping reply through node A")
        # Node B sends on the same SA meanwhile.
        t.exec("gw2", ["ip", "route", "replace", f"{t.cli_addr_a}/32", "via", t.cli_addr_b, "dev", "b1"])
        lan2_pinger = subprocess.Popen(
            ["ip", "netns", "exec", t.lan2_ns, "ping", "-n", "-q", "-i", str(PING_INTERVAL_S), vip],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(1.5)
        swan.run([NETNS, "path-down", t.run_id, "a"])
        moved_at = time.time()
        after = wait_for(lambda: next((sa for sa in client.list_sas()
                                       if sa["spi_r"] == before["spi_r"] and
                                       sa.get("local-host") == t.cli_addr_b and
                                       sa["state"] == "ESTABLISHED"), None), 15)
        if not after:
            raise Failure(f"the IKE SA did not move to path B: {client.list_sas()}")
        if not pinger.wait_reply_after(moved_at, 10):
            raise Failure("no ping reply through node B after the move")
        time.sleep(1.5)
    finally:
        if pinger:
            pinger.stop()
        if lan2_pinger:
            lan2_pinger.terminate()
            lan2_pinger.wait(5)
        for cap in caps.values():
            cap.stop()
        swan.run([NETNS, "path-up", t.run_id, "a"], check=False)

    if sum("EAP" in line and "succeeded" in line for line in client.log_lines()) != eap_rounds:
        raise Failure("the client authenticated again")
    spi = int(child["spi_in"], 16)
    packets = {path: esp_packets(cap.path) for path, cap in caps.items()}
    on_sa = {path: [seq for _, s, seq in p if s == spi] for path, p in packets.items()}
    counts = {path: len(seqs) for path, seqs in on_sa.items()}
    say(f"ESP to the client under SPI {child['spi_in']}: {counts['a']} from node A (path A), "
        f"{counts['b']} from node B (path B)")
    for path, node in (("a", "A"), ("b", "B")):
        if counts[path] < MIN_PACKETS:
            raise Failure(f"node {node} sent {counts[path]} ESP packets on the SA, want >= {MIN_PACKETS}")
    pairs = collections.Counter((s, seq) for p in packets.values() for _, s, seq in p)
    repeated = {pair: n for pair, n in pairs.items() if n > 1}
    if repeated:
        sample = sorted(repeated.items())[:10]
        raise Failure(f"{len(repeated)} (SPI, sequence number) pairs repeated, e.g. {sample}")
    spis = sorted({s for s, _ in pairs})
    ranges = {path: (min(seqs), max(seqs)) for path, seqs in on_sa.items()}
    say(f"{sum(pairs.values())} ESP packets under {len(spis)} SPIs, every (SPI, sequence number) "
        f"once; on the first SA node A used {ranges['a'][0]}..{ranges['a'][1]}, node B "
        f"{ranges['b'][0]}..{ranges['b'][1]}; same IKE SA after the move, no new EAP")
    client.terminate()
    client.stop()
    return {"packets": sum(pairs.values()), "spis": len(spis), "first_sa_packets": counts,
            "first_sa_ranges": ranges}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gateway-cmd", required=True, help="our gateway, split, two nodes")
    ap.add_argument("--vpnctl", required=True)
    ap.add_argument("--deadline", type=int, default=150, help="whole-run limit in seconds")
    ap.add_argument("--debug", action="store_true")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("SKIP: needs root (network namespaces)")
        return 0
    missing = [x for x in ("swanctl", "ip", "ping", "tcpdump", "etcd") if not shutil.which(x)]
    if missing:
        raise SystemExit(f"missing tools: {', '.join(missing)} (run tools/setup.sh)")
    it.arm_deadline(args.deadline)
    run = it.Run(types.SimpleNamespace(
        two_paths=True, two_nodes=True, nat=False, remote=None, gateway_cmd=args.gateway_cmd,
        wait_ready=True, responder="none", debug=args.debug, keep=args.keep, vpnctl=args.vpnctl,
        gateway_timeout=40))
    run.log_label = "two-forwarders"
    failed = True
    try:
        run.up()
        result = run_test(run)
        print(result)
        failed = False
    except (Failure, it.Timeout) as e:
        say(f"FAILED: {e}")
    finally:
        run.save_logs(failed)
        run.down()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
