#!/usr/bin/env python3
"""strongSwan userspace ESP (kernel-libipsec) reference for docs/benchmarks.md.

Two strongSwan peers in the interop harness topology (test/interop: client
namespace -> strongSwan responder in the gateway namespace -> protected
network), iperf3 TCP through the tunnel in both directions, per ESP set.
Also reports the CPU the responder's charon used, for a per-core figure.
Root only. Usage: strongswan_reference.py [--seconds 5] [--proposals modern,windows]
"""
import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "test", "interop"))
import swan  # noqa: E402


def cpu_seconds(pid):
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total / 1e9


def charon_pid(ns):
    out = subprocess.run(["ip", "netns", "pids", ns], stdout=subprocess.PIPE, text=True).stdout.split()
    for pid in out:
        try:
            if open(f"/proc/{pid}/comm").read().strip() == "charon":
                return int(pid)
        except FileNotFoundError:
            pass
    return None


def gateway_pid(ns):
    for pid in subprocess.run(["ip", "netns", "pids", ns], stdout=subprocess.PIPE, text=True).stdout.split():
        try:
            if open(f"/proc/{pid}/comm").read().strip() == "gateway":
                return int(pid)
        except FileNotFoundError:
            pass
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--proposals", default="modern,windows")
    ap.add_argument("--gateway-cmd", help="run this (e.g. test/interop/our_gateway.sh ...) in the gateway "
                    "namespace instead of the strongSwan responder; its CPU is measured instead")
    ap.add_argument("--udp", action="store_true", help="also iperf3 UDP at --udp-rate")
    ap.add_argument("--udp-rate", default="500M")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="ssref-")
    run_id = "ss" + secrets.token_hex(3)
    topo = swan.Topology.up(run_id)
    server = None
    try:
        pki = swan.Pki(os.path.join(work, "pki")).generate(topo.gw_addr, topo.gw_dns)
        gw = None
        gw_proc = None
        if a.gateway_cmd:
            env = dict(os.environ, **topo.facts, IVPN_WORKDIR=work, IVPN_PKI_DIR=pki.dir)
            gw_proc = subprocess.Popen(["ip", "netns", "exec", topo.gw_ns, "sh", "-c", a.gateway_cmd], env=env,
                                       stdout=open(os.path.join(work, "gateway.log"), "w"), stderr=subprocess.STDOUT,
                                       start_new_session=True)
            deadline = time.monotonic() + 30
            while not os.path.exists(os.path.join(work, "gateway.ready")) and time.monotonic() < deadline:
                time.sleep(0.1)
        else:
            gw = swan.Charon(os.path.join(work, "gw"), topo.gw_ns)
            gw.configure(swan.responder_swanctl_conf(gw_id=topo.gw_dns, pool=topo.pool4, local_ts=topo.lan_net),
                         pki, role="responder")
            gw.start()
            gw.load_all()
        server = subprocess.Popen(["ip", "netns", "exec", topo.lan_ns, "iperf3", "-s"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)
        print("| ESP set | iperf3 | Mbit/s | gateway CPU (cores) | Mbit/s per gateway core |")
        print("|---|---|---|---|---|")
        for proposals in a.proposals.split(","):
            cli = swan.Charon(os.path.join(work, "cli-" + proposals), topo.cli_ns)
            cli.configure(swan.client_swanctl_conf(topo.gw_addr, "eap-mschapv2", proposals, remote_id=topo.gw_dns),
                          pki, role="client")
            cli.start()
            cli.load_all()
            ok, _, out = cli.initiate(timeout=15)
            if not ok:
                raise SystemExit("initiate failed: " + out)
            esp = swan.PROPOSALS[proposals]["esp"].split(",")[0]
            pid = charon_pid(topo.gw_ns) if gw else gateway_pid(topo.gw_ns)
            for udp in ([False, True] if a.udp else [False]):
                for reverse in (False, True):
                    c0 = cpu_seconds(pid)
                    cmd = ["iperf3", "-c", topo.lan_host, "-t", str(a.seconds), "-J"] + (["-R"] if reverse else [])
                    if udp:
                        cmd += ["-u", "-b", a.udp_rate, "-l", "1300"]
                    p = topo.exec("cli", cmd, timeout=a.seconds + 20)
                    c1 = cpu_seconds(pid)
                    r = json.loads(p.stdout)
                    end = r.get("end", {}).get("sum" if udp else "sum_received")
                    if end is None:
                        print(f"| {esp} | {'UDP' if udp else 'TCP'} | iperf3 failed: {r.get('error')} | | |")
                        continue
                    mbps = end["bits_per_second"] / 1e6
                    extra = f" (loss {end.get('lost_percent', 0):.1f}%)" if udp else ""
                    cores = (c1 - c0) / a.seconds
                    print(f"| {esp} | {'UDP' if udp else 'TCP'} {'LAN->client' if reverse else 'client->LAN'} | "
                          f"{mbps:.0f}{extra} | {cores:.2f} | {mbps / max(cores, 1e-9):.0f} |", flush=True)
            cli.terminate()
            cli.stop()
        if gw:
            gw.stop()
    finally:
        if server:
            server.kill()
        if gw_proc and gw_proc.poll() is None:
            os.killpg(gw_proc.pid, 15)
            gw_proc.wait(10)
        topo.down()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
