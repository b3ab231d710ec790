#!/usr/bin/env python3
"""Interop test: a strongSwan road warrior against a gateway, through real namespaces.

Default: the gateway is a strongSwan responder (reference). Per scenario the
client charon establishes an IKE SA and a CHILD SA, gets a virtual IP, and
ping crosses the tunnel to the protected network in both directions.

  interop_test.py                                  all scenarios against strongSwan
  interop_test.py --scenarios eap-windows --runs 5 timing (median setup time)
  interop_test.py --gateway-cmd 'CMD ...'          start CMD in the gateway namespace
                                                   instead of the strongSwan responder
  interop_test.py --capture testdata/              save the client's IKE_SA_INIT request

Exit 0: passed (or SKIP when not root). Non-zero: failed; the logs are kept
(see --keep and README.md) and the tail of each charon log is printed.
"""

import argparse
import base64
import binascii
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import xml.sax.saxutils as xml

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import swan  # noqa: E402

SCENARIOS = {
    # name: (client auth, client proposal set)
    "eap-windows": ("eap-mschapv2", "windows"),
    "eap-modern": ("eap-mschapv2", "modern"),
    "cert": ("cert", "modern"),
}
# Must fail: client settings, and what the client log must show.
FAILURES = {
    "eap-bad-password": dict(auth="eap-mschapv2", proposals="windows", password="wrong-password",
                             expect=r"EAP_MSCHAPV2 method failed|N\(AUTH_FAILED\)|AUTHENTICATION_FAILED"),
    "eap-unknown-user": dict(auth="eap-mschapv2", proposals="windows", user="mallory",
                             expect=r"EAP_MSCHAPV2 method failed|EAP_FAILURE|N\(AUTH_FAILED\)|AUTHENTICATION_FAILED"),
    "cert-revoked": dict(auth="cert", proposals="modern", client_cert="client-revoked",
                         cert_id="client-revoked.vpn.example",
                         expect=r"N\(AUTH_FAILED\)|AUTHENTICATION_FAILED"),
    "cert-expired": dict(auth="cert", proposals="modern", client_cert="client-expired",
                         cert_id="client-expired.vpn.example",
                         expect=r"N\(AUTH_FAILED\)|AUTHENTICATION_FAILED"),
    "proposal-mismatch": dict(auth="eap-mschapv2", proposals="aes192gcm16-prfsha256-ecp256",
                              expect=r"N\(NO_PROP\)|NO_PROPOSAL_CHOSEN"),
}


# Need --two-paths.
MOBILITY = {"mobike-path-switch"}


class Failure(Exception):
    pass


class Timeout(Exception):
    pass


def say(msg):
    print(f"[interop] {msg}", flush=True)


def cpu_ns(pid):
    """CPU time of every thread of `pid`, in ns (schedstat)."""
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
            except (FileNotFoundError, ProcessLookupError):
                pass
    except FileNotFoundError:
        return None
    return total


def ping(topo, role, dest, count=3, interval=0.2, source=None):
    cmd = ["ping", "-n", "-q", "-c", str(count), "-i", str(interval), "-W", "2"]
    if source:
        cmd += ["-I", source]
    p = topo.exec(role, cmd + [dest], check=False, timeout=count * interval + 10)
    m = re.search(r"(\d+) received", p.stdout)
    received = int(m.group(1)) if m else 0
    m = re.search(r"= ([\d.]+)/([\d.]+)/([\d.]+)/([\d.]+) ms", p.stdout)
    rtt = {"min": float(m.group(1)), "avg": float(m.group(2)), "max": float(m.group(3))} if m else None
    return received, rtt, p.stdout


def wait_udp500(topo, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        p = topo.exec("gw", ["ss", "-H", "-uln", "sport", "=", ":500"], check=False)
        if p.stdout.strip():
            return True
        time.sleep(0.2)
    return False


class Pinger:
    """`ping -D -i INTERVAL` from the client to the lan host, in the background."""

    def __init__(self, phase, path, interval):
        t = phase.topo
        self.path = path
        self.out = open(path, "w")
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", t.cli_ns, "ping", "-D", "-n", "-i", str(interval), "-W", "1",
             t.lan_host], stdout=self.out, stderr=subprocess.STDOUT, start_new_session=True)

    def replies(self):
        with open(self.path, errors="replace") as f:
            text = f.read()
        return [(float(m.group(1)), int(m.group(2))) for m in
                re.finditer(r"^\[(\d+\.\d+)\] \d+ bytes from .*icmp_seq=(\d+)", text, re.M)]

    def wait_reply_after(self, epoch, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(ts > epoch for ts, _ in self.replies()):
                return True
            time.sleep(0.05)
        return False

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.out.close()


def vpnctl_argv(vpnctl, workdir, api):
    """vpnctl pointed at one of our gateway's APIs: our_gateway.sh writes a
    flag file per API (ike-0, ike-1, auth, forwarder) with the target and, in
    split mode, the operator's mTLS certificate."""
    return [vpnctl, f"--flagfile={os.path.join(workdir, f'vpnctl-{api}.flags')}"]


class Run:
    def __init__(self, args):
        self.args = args
        self.workdir = tempfile.mkdtemp(prefix="ivpn-", dir="/tmp")
        self.run_id = "it" + secrets.token_hex(4)
        self.topo = None
        self.responder = None
        self.gateway_proc = None
        self.clients = []
        self.results = []  # (scenario, ok, seconds, message)
        self.metrics = {}

    # ---- set-up / tear-down
    def up(self):
        a = self.args
        say(f"run {self.run_id}, work dir {self.workdir}")
        self.topo = swan.Topology.up(self.run_id, two_paths=a.two_paths, nat=a.nat,
                                     two_nodes=getattr(a, "two_nodes", False))
        self.remote = a.remote or self.topo.gw_addr
        self.pki = swan.Pki(os.path.join(self.workdir, "pki")).generate(self.remote, self.topo.gw_dns)
        # The client has no route to the protected network outside a tunnel.
        received, _, _ = ping(self.topo, "cli", self.topo.lan_host, count=1)
        if received:
            raise Failure("the protected network is reachable without a tunnel: topology is wrong")
        if a.gateway_cmd:
            self.start_gateway()
        elif a.responder == "strongswan":
            self.responder = swan.Charon(os.path.join(self.workdir, "gw"), self.topo.gw_ns)
            self.responder.configure(
                swan.responder_swanctl_conf(gw_id=self.topo.gw_dns, pool=self.topo.pool4,
                                            local_ts=self.topo.lan_net),
                self.pki, role="responder",
                levels=swan.DEBUG_LEVELS if a.debug else swan.DEFAULT_LEVELS)
            self.responder.start()
            self.responder.load_all()
            say(f"strongSwan responder up in {self.topo.gw_ns} (pid {self.responder.pid})")
        else:
            say(f"no responder started; expecting a gateway at {self.remote}")

    def connect_client(self, name, proposals="modern", auth="eap-mschapv2", levels=None):
        """A fresh client charon that establishes; returns (client, IKE SA, CHILD SA)."""
        t = self.topo
        client = swan.Charon(os.path.join(self.workdir, f"cli-{name}"), t.cli_ns)
        self.clients.append(client)
        client.configure(swan.client_swanctl_conf(self.remote, auth, proposals, remote_id=t.gw_dns),
                         self.pki, role="client", levels=levels or swan.DEFAULT_LEVELS)
        client.start()
        client.load_all()
        ok, secs, out = client.initiate(timeout=getattr(self.args, "initiate_timeout", 15))
        if not ok:
            raise Failure(f"{name}: initiate failed after {secs:.1f} s:\n{out}")
        ike = client.list_sas()[0]
        child = next((c for c in ike["children"] if c.get("state") == "INSTALLED"), None)
        if ike["state"] != "ESTABLISHED" or not child:
            raise Failure(f"{name}: not established: {ike}")
        return client, ike, child

    def start_gateway(self):
        a = self.args
        env = dict(os.environ, **{k: v for k, v in self.topo.facts.items()},
                   IVPN_WORKDIR=self.workdir, IVPN_PKI_DIR=self.pki.dir)
        log = open(os.path.join(self.workdir, "gateway.log"), "a")
        say(f"starting gateway in {self.topo.gw_ns}: {a.gateway_cmd}")
        self.gateway_proc = subprocess.Popen(
            ["ip", "netns", "exec", self.topo.gw_ns, "sh", "-c", a.gateway_cmd],
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        limit = getattr(a, "gateway_timeout", 20)
        if not wait_udp500(self.topo, timeout=limit):
            raise Failure(f"the gateway did not bind UDP 500 in {limit} s; see gateway.log")
        # A gateway command that needs set-up after binding (users, ...)
        # says when it is done by creating IVPN_WORKDIR/gateway.ready.
        if a.wait_ready:
            ready = os.path.join(self.workdir, "gateway.ready")
            deadline = time.monotonic() + limit
            while not os.path.exists(ready):
                if time.monotonic() > deadline or self.gateway_proc.poll() is not None:
                    raise Failure("the gateway never became ready; see gateway.log")
                time.sleep(0.05)

    def kill_gateway(self):
        """SIGKILL: what a crash looks like. Nothing gets to clean up."""
        os.killpg(self.gateway_proc.pid, signal.SIGKILL)
        self.gateway_proc.wait(5)
        deadline = time.monotonic() + 10
        while wait_udp500(self.topo, timeout=0.1) and time.monotonic() < deadline:
            time.sleep(0.05)

    def restart_scenario(self, name):
        """The gateway crashes (SIGKILL) and comes back on the same store: the
        client's IKE SA carries on (a CHILD rekey and ping work) without a new
        IKE SA or EAP."""
        t = self.topo
        if not self.gateway_proc:
            raise Failure(f"{name} needs --gateway-cmd")
        client, before, _ = self.connect_client(name)
        self.kill_gateway()
        t0 = time.monotonic()
        self.start_gateway()
        say(f"{name}: gateway killed and restarted in {(time.monotonic() - t0) * 1000:.0f} ms")
        client.swanctl("--rekey", "--child", "rw", check=True)
        old_child = before["children"][0]["spi_in"]
        after = self._wait_for(client, lambda sa: sa if sa["spi_r"] == before["spi_r"] and any(
            c.get("state") == "INSTALLED" and c["spi_in"] != old_child for c in sa["children"])
            else None, timeout=15)
        if not after:
            raise Failure(f"{name}: no CHILD rekey on the restored IKE SA: {client.list_sas()}")
        if int(after.get("uniqueid", 0)) != int(before.get("uniqueid", 0)):
            raise Failure(f"{name}: the client made a new IKE SA")
        say(f"{name}: the restored IKE SA {before['spi_r']}_r rekeyed its CHILD SA")
        if not self.args.no_traffic:
            received, rtt, out = ping(t, "cli", t.lan_host, count=3)
            if received < 3:
                raise Failure(f"{name}: ping after the restart: {received}/3\n{out}")
            say(f"{name}: ping through the restored SA: 3/3")
        client.terminate()
        client.stop()

    def scrape(self, url="http://127.0.0.1:9100/metrics"):
        """{(name, frozenset(labels)): value} from the gateway's /metrics (read in its namespace)."""
        code = ("import sys,urllib.request;"
                "sys.stdout.write(urllib.request.urlopen(sys.argv[1],timeout=3).read().decode())")
        p = self.topo.exec("gw", ["python3", "-c", code, url], check=False, timeout=10)
        if p.returncode != 0:
            raise Failure(f"cannot read {url} in the gateway namespace: {p.stdout[-300:]}")
        out = {}
        for line in p.stdout.splitlines():
            m = re.match(r'^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? ([-+\deE.naNInf]+)$', line)
            if m:
                labels = frozenset(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
                out[(m.group(1), labels)] = float(m.group(3))
        return out

    def gateway_sas(self):
        """Responder SPIs the gateway's management API lists (`vpnctl sas`)."""
        out = subprocess.run(["ip", "netns", "exec", self.topo.gw_ns,
                              *vpnctl_argv(self.args.vpnctl, self.workdir, "ike-0"), "sas"],
                             capture_output=True, text=True, timeout=10)
        if out.returncode != 0:
            raise Failure(f"vpnctl sas failed: {out.stderr.strip()}")
        return [line.split()[1] for line in out.stdout.splitlines()[1:] if line.strip()]

    def gateway_log_tail(self, lines):
        path = os.path.join(self.workdir, "gateway.log")
        if not self.gateway_proc or not os.path.exists(path):
            return ""
        with open(path, errors="replace") as f:
            tail = f.read().splitlines()[-lines:]
        return "\n--- gateway.log (last lines) ---\n" + "\n".join(tail)

    def down(self):
        for c in self.clients:
            c.stop()
        if self.responder:
            self.responder.stop()
        if self.gateway_proc and self.gateway_proc.poll() is None:
            os.killpg(self.gateway_proc.pid, signal.SIGTERM)
            try:
                self.gateway_proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.gateway_proc.pid, signal.SIGKILL)
        if self.topo:
            self.topo.down()

    # Where save_logs puts this run's logs, and what else it leaves out.
    log_label = "interop"
    log_ignore = ()

    def save_logs(self, failed):
        """Logs (no private keys) go to Bazel's undeclared outputs, else stay in the work dir."""
        out = os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR")
        if out:
            dest = os.path.join(out, self.log_label)
            shutil.copytree(self.workdir, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns(
                "*.key", "private", "run", "*.vici", *self.log_ignore))
            say(f"{self.log_label}: logs in {dest} (bazel-testlogs/.../test.outputs/outputs.zip)")
        if self.args.keep or (failed and not out):
            say(f"{self.log_label}: work dir kept: {self.workdir}")
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # ---- one scenario
    def failure_scenario(self, name):
        f = FAILURES[name]
        expect = f["expect"]
        t = self.topo
        client = swan.Charon(os.path.join(self.workdir, f"cli-{name}"), t.cli_ns)
        self.clients.append(client)
        conf = {k: f[k] for k in ("password", "user", "cert_id") if k in f}
        client.configure(swan.client_swanctl_conf(self.remote, f["auth"], f["proposals"],
                                                  remote_id=t.gw_dns, **conf),
                         self.pki, role="client", client_cert=f.get("client_cert", "client"))
        client.start()
        client.load_all()
        ok, secs, out = client.initiate(timeout=self.args.initiate_timeout)
        if ok:
            raise Failure(f"{name}: initiate succeeded but must fail")
        log = "\n".join(client.log_lines())
        m = re.search(expect, log)
        if not m:
            raise Failure(f"{name}: failed, but the client log shows none of /{expect}/")
        if client.list_sas():
            raise Failure(f"{name}: the client still lists an SA")
        if self.responder:
            # strongSwan's responder keeps the failed half-open IKE SA (CONNECTING) until
            # its half-open timeout after the client's N(AUTHENTICATION_FAILED); only an
            # established SA or an installed CHILD SA would be a fault.
            bad = [s for s in self.responder.list_sas()
                   if s["state"] == "ESTABLISHED" or s["children"]]
            if bad:
                raise Failure(f"{name}: the responder has an established SA after the failure: {bad}")
        if self.args.vpnctl:
            listed = self.gateway_sas()
            if listed:
                raise Failure(f"{name}: the gateway's management API still lists SAs: {listed}")
        say(f"{name}: failed as expected after {secs * 1000:.0f} ms ({m.group(0)})")
        client.stop()

    def mobike_scenario(self, name):
        """The client's first path goes down; MOBIKE moves the IKE SA to the
        second one without a new IKE SA or EAP (RFC 4555)."""
        t = self.topo
        if not getattr(t, "cli_addr_b", ""):
            raise Failure(f"{name} needs --two-paths")
        client, before, _ = self.connect_client(name)
        eap_rounds = sum("EAP" in line and "succeeded" in line for line in client.log_lines())
        swan.run([os.path.join(swan.HERE, "netns.sh"), "path-down", t.run_id, "a"])
        t0 = time.monotonic()
        after = self._wait_for(client, lambda sa: sa if sa["spi_r"] == before["spi_r"] and
                               sa.get("local-host") == t.cli_addr_b and
                               sa["state"] == "ESTABLISHED" else None, timeout=15)
        switch = time.monotonic() - t0
        swan.run([os.path.join(swan.HERE, "netns.sh"), "path-up", t.run_id, "a"], check=False)
        if not after:
            raise Failure(f"{name}: the IKE SA did not move to {t.cli_addr_b}: {client.list_sas()}")
        if sum("EAP" in line and "succeeded" in line for line in client.log_lines()) != eap_rounds:
            raise Failure(f"{name}: the client authenticated again")
        say(f"{name}: IKE SA {before['spi_i']}_i {before['spi_r']}_r moved "
            f"{before.get('local-host')} -> {after.get('local-host')} in {switch * 1000:.0f} ms "
            "(client view, includes its roam delay), same SPIs, no new EAP")
        if self.args.vpnctl:
            deadline = time.monotonic() + 5
            remote = None
            while time.monotonic() < deadline:
                shown = subprocess.run(
                    ["ip", "netns", "exec", t.gw_ns,
                     *vpnctl_argv(self.args.vpnctl, self.workdir, "ike-0"),
                     "sa", before["spi_i"], before["spi_r"]], capture_output=True, text=True, timeout=10)
                if shown.returncode == 0:
                    ip = json.loads(shown.stdout)["ike_sa"]["remote"]["ip"]
                    remote = str(ipaddress.ip_address(base64.b64decode(ip)))
                    if remote == t.cli_addr_b:
                        break
                time.sleep(0.1)
            if remote != t.cli_addr_b:
                raise Failure(f"{name}: the gateway's record shows the client at {remote}")
            say(f"{name}: the gateway's store record follows: remote {remote}")
        client.terminate()
        client.stop()

    def scenario(self, name, runs):
        if name in FAILURES:
            return self.failure_scenario(name)
        if name in MOBILITY:
            return self.mobike_scenario(name)
        if name == "gateway-restart":
            return self.restart_scenario(name)
        auth, proposals = SCENARIOS[name]
        t = self.topo
        levels = swan.DEBUG_LEVELS if self.args.debug else swan.DEFAULT_LEVELS
        client = swan.Charon(os.path.join(self.workdir, f"cli-{name}"), t.cli_ns)
        self.clients.append(client)
        client.configure(swan.client_swanctl_conf(self.remote, auth, proposals, remote_id=t.gw_dns),
                         self.pki, role="client", levels=levels)
        capture = None
        if shutil.which("tcpdump") and not self.args.no_capture:
            capture = swan.Capture(t.cli_ns, "a0", os.path.join(self.workdir, f"cli-{name}.pcap"))
        client.start()
        client.load_all()
        cpu0 = cpu_ns(self.responder.pid) if self.responder else None
        wall = []
        for i in range(runs):
            if i:
                client.terminate()
                self._wait_no_sa(client)
            ok, secs, out = client.initiate(timeout=self.args.initiate_timeout)
            if not ok:
                raise Failure(f"{name}: initiate failed after {secs:.1f} s:\n{out}")
            wall.append(secs)
        cpu1 = cpu_ns(self.responder.pid) if self.responder else None
        wire = []
        if capture:
            capture.stop()
            if self.args.capture:
                self._save_ike_sa_init(capture.path, name)
            wire = list(swan.handshake_times(capture.path).values())

        sas = client.list_sas()
        if len(sas) != 1:
            raise Failure(f"{name}: expected 1 IKE SA on the client, got {len(sas)}")
        ike = sas[0]
        if ike["state"] != "ESTABLISHED":
            raise Failure(f"{name}: IKE SA state {ike['state']}")
        children = [c for c in ike["children"] if c.get("state") == "INSTALLED"]
        if not children:
            raise Failure(f"{name}: no INSTALLED CHILD SA: {ike['children']}")
        child = children[0]
        vips = ike.get("local-vips") or []
        pool = ipaddress.ip_network(t.pool4)
        vip = next((v for v in vips if ipaddress.ip_address(v) in pool), None)
        if not vip:
            raise Failure(f"{name}: no virtual IP from {t.pool4}: {vips}")
        say(f"{name}: IKE {ike['spi_i']}_i {ike['spi_r']}_r {ike.get('encr-alg')}-{ike.get('encr-keysize')}/"
            f"{ike.get('integ-alg', ike.get('prf-alg'))}/{ike.get('dh-group')}; CHILD "
            f"{child['spi_in']}_in {child['spi_out']}_out {child.get('encr-alg')} encap={child.get('encap')}; "
            f"vip {vip}; TS {child.get('local-ts')} === {child.get('remote-ts')}")

        if self.args.vpnctl:
            listed = self.gateway_sas()
            if ike["spi_r"] not in listed:
                raise Failure(f"{name}: the gateway's management API does not list SA "
                              f"{ike['spi_i']}_i {ike['spi_r']}_r: {listed}")
            say(f"{name}: the store and the management API show the SA ({ike['spi_r']}_r)")
        if self.args.rekey:
            self._rekey(name, client, ike, child)
        if self.args.no_traffic:
            say(f"{name}: --no-traffic: tunnel traffic not checked")
            client.terminate()
            client.stop()
            return
        # Client -> protected network, and protected network -> client's virtual IP.
        count = self.args.ping_count
        received, rtt, out = ping(t, "cli", t.lan_host, count=count)
        if received < count:
            raise Failure(f"{name}: ping {t.lan_host} through the tunnel: {received}/{count}\n{out}")
        back, _, out = ping(t, "lan", vip, count=2)
        if back < 2:
            raise Failure(f"{name}: ping {vip} from the protected network: {back}/2\n{out}")
        after = client.list_sas()[0]
        # After --rekey the CHILD SA that carried the pings is the new one.
        child_after = next((c for c in after["children"] if c["spi_in"] == child["spi_in"]),
                           None) or next(c for c in after["children"] if c.get("state") == "INSTALLED")
        pkts_out, pkts_in = int(child_after.get("packets-out", 0)), int(child_after.get("packets-in", 0))
        if pkts_out < count + 2 or pkts_in < count + 2:
            raise Failure(f"{name}: CHILD SA counters too low (out {pkts_out}, in {pkts_in}); "
                          "traffic did not cross the tunnel")
        if self.responder:
            rsas = self.responder.list_sas()
            if not any(vip in (s.get("remote-vips") or []) for s in rsas):
                raise Failure(f"{name}: the responder does not list an SA with remote VIP {vip}")

        times = [v for _, v in sorted(swan.setup_times_from_log(client.log_lines()).items(), key=lambda kv: int(kv[0]))]
        m = {"runs": runs, "wall_ms": [round(w * 1000, 1) for w in wall],
             "wire_ms": [round(w * 1000, 2) for w in wire],
             "wire_ms_median": round(statistics.median(wire) * 1000, 2) if wire else None,
             "setup_ms": [round(x * 1000, 1) for x in times],
             "setup_ms_median": round(statistics.median(times) * 1000, 1) if times else None,
             "wall_ms_median": round(statistics.median(wall) * 1000, 1),
             "ping_rtt_ms": rtt, "ike": f"{ike.get('encr-alg')}-{ike.get('encr-keysize')}/{ike.get('dh-group')}",
             "esp": f"{child.get('encr-alg')}-{child.get('encr-keysize')}/{child.get('integ-alg', 'AEAD')}"}
        if cpu0 is not None and cpu1 is not None:
            m["responder_cpu_ms_per_handshake"] = round((cpu1 - cpu0) / 1e6 / runs, 2)
        self.metrics[name] = m
        say(f"{name}: over {runs} set-ups, median: IKE_SA_INIT request -> last IKE_AUTH response "
            f"{m['wire_ms_median']} ms (client capture), IKE_SA_INIT -> CHILD SA established "
            f"{m['setup_ms_median']} ms (client log, 1 ms resolution), swanctl --initiate "
            f"{m['wall_ms_median']} ms; ping rtt {rtt}")
        client.terminate()
        client.stop()

    def _rekey(self, name, client, ike, child):
        """The client rekeys its CHILD SA, then its IKE SA (CREATE_CHILD_SA)."""
        client.swanctl("--rekey", "--child", "rw", check=True)
        new_child = self._wait_for(client, lambda sa: [
            c for c in sa["children"] if c.get("state") == "INSTALLED" and c["spi_in"] != child["spi_in"]
            and not any(o["spi_in"] == child["spi_in"] for o in sa["children"])])
        if not new_child:
            raise Failure(f"{name}: CHILD SA rekey did not complete: {client.list_sas()}")
        say(f"{name}: CHILD SA rekeyed: {child['spi_in']}_in -> {new_child[0]['spi_in']}_in")
        client.swanctl("--rekey", "--ike", "rw", check=True)
        rekeyed = self._wait_for(client, lambda sa: sa if sa["spi_r"] != ike["spi_r"] and
                                 sa["state"] == "ESTABLISHED" and sa["children"] else None)
        if not rekeyed:
            raise Failure(f"{name}: IKE SA rekey did not complete: {client.list_sas()}")
        say(f"{name}: IKE SA rekeyed: {ike['spi_r']}_r -> {rekeyed['spi_r']}_r, "
            f"{len(rekeyed['children'])} CHILD SA(s) kept")
        if self.args.vpnctl:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                listed = self.gateway_sas()
                if rekeyed["spi_r"] in listed and ike["spi_r"] not in listed:
                    break
                time.sleep(0.1)
            else:
                raise Failure(f"{name}: after the IKE rekey the management API lists {listed}")
            say(f"{name}: the management API shows the rekeyed IKE SA only")

    def _wait_for(self, client, predicate, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sas = client.list_sas()
            if len(sas) == 1:
                found = predicate(sas[0])
                if found:
                    return found
            time.sleep(0.1)
        return None

    def _wait_no_sa(self, client, timeout=5):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not client.list_sas():
                return
            time.sleep(0.05)
        raise Failure("SA still listed after terminate")

    def _save_ike_sa_init(self, pcap, name):
        for _, src, sport, dst, dport, payload in swan.read_pcap_udp(pcap):
            if dport == 500 and len(payload) >= 28 and payload[18] == 34 and payload[19] & 0x08:
                # exchange type 34 = IKE_SA_INIT, flags: Initiator.
                path = os.path.join(self.args.capture, f"strongswan_ike_sa_init_request.hex")
                if name != "eap-windows":
                    path = os.path.join(self.args.capture, f"strongswan_ike_sa_init_request_{name}.hex")
                os.makedirs(self.args.capture, exist_ok=True)
                hexs = binascii.hexlify(payload).decode()
                with open(path, "w") as f:
                    f.write("\n".join(hexs[i:i + 64] for i in range(0, len(hexs), 64)) + "\n")
                say(f"{name}: saved IKE_SA_INIT request ({len(payload)} bytes, {src}:{sport} -> "
                    f"{dst}:{dport}) to {path}")
                return
        say(f"{name}: no IKE_SA_INIT request in {pcap}")


def write_junit(path, results, skipped_msg=None):
    if not path:
        return
    cases = []
    fails = 0
    for name, ok, secs, msg in results:
        body = ""
        if skipped_msg:
            body = f"<skipped message={xml.quoteattr(skipped_msg)}/>"
        elif not ok:
            fails += 1
            body = f"<failure message={xml.quoteattr(msg.splitlines()[0] if msg else 'failed')}>{xml.escape(msg)}</failure>"
        cases.append(f'  <testcase classname="interop" name="{name}" time="{secs:.3f}" status="run">{body}</testcase>')
    with open(path, "w") as f:
        f.write('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites>\n'
                f'<testsuite name="interop" tests="{len(results)}" failures="{fails}" errors="0">\n'
                + "\n".join(cases) + "\n</testsuite>\n</testsuites>\n")


def arm_deadline(seconds):
    """Raises Timeout after `seconds`, or at SIGTERM (the test runner's timeout)."""
    def on_signal(signum, frame):
        raise Timeout(f"signal {signum} (deadline {seconds} s or test runner timeout)")
    signal.signal(signal.SIGALRM, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.alarm(seconds)


def metric(ms, name, **labels):
    """One sample of a Run.scrape() result, 0 when absent."""
    return ms.get((name, frozenset(labels.items())), 0.0)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenarios", default=",".join(list(SCENARIOS) + list(FAILURES)),
                    help="comma list of " + ", ".join(list(SCENARIOS) + list(FAILURES) + sorted(MOBILITY)))
    ap.add_argument("--runs", type=int, default=1, help="IKE SA set-ups per scenario (timing)")
    ap.add_argument("--ping-count", type=int, default=3)
    ap.add_argument("--responder", choices=["strongswan", "none"], default="strongswan")
    ap.add_argument("--gateway-cmd", help="start this in the gateway namespace instead of strongSwan")
    ap.add_argument("--remote", help="gateway address for the client (default: the topology's GW_ADDR)")
    ap.add_argument("--nat", action="store_true")
    ap.add_argument("--two-paths", action="store_true")
    ap.add_argument("--capture", help="save the client's IKE_SA_INIT request (hex) into this dir")
    ap.add_argument("--no-capture", action="store_true", help="no tcpdump on the client's path A")
    ap.add_argument("--debug", action="store_true", help="ike 4 / enc 4 logging")
    ap.add_argument("--initiate-timeout", type=int, default=15)
    ap.add_argument("--gateway-timeout", type=int, default=20,
                    help="seconds for --gateway-cmd to bind UDP 500, and again to become ready")
    ap.add_argument("--deadline", type=int, default=110, help="whole-run limit in seconds")
    ap.add_argument("--keep", action="store_true", help="keep the work dir")
    ap.add_argument("--json", help="write the measurements here")
    ap.add_argument("--rekey", action="store_true",
                    help="after set-up, rekey the CHILD SA and then the IKE SA")
    ap.add_argument("--vpnctl", help="check SAs through our gateway's management API with this vpnctl")
    ap.add_argument("--wait-ready", action="store_true",
                    help="after UDP 500 is bound, wait for IVPN_WORKDIR/gateway.ready")
    ap.add_argument("--no-traffic", action="store_true",
                    help="check IKE and CHILD SA set-up only, not ping through the tunnel")
    args = ap.parse_args()
    junit = os.environ.get("XML_OUTPUT_FILE")
    names = [s for s in args.scenarios.split(",") if s]
    for s in names:
        if s not in SCENARIOS and s not in FAILURES and s not in MOBILITY and s != "gateway-restart":
            ap.error(f"unknown scenario {s}")

    if os.geteuid() != 0:
        msg = "SKIP: the interop test needs root (network namespaces, TUN devices)"
        print(msg, flush=True)
        write_junit(junit, [(s, True, 0.0, "") for s in names], skipped_msg=msg)
        return 0
    missing = [t for t in (swan.CHARON, "/usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so",
                           "/usr/lib/ipsec/plugins/libstrongswan-eap-mschapv2.so")
               if not os.path.exists(t)]
    missing += [t for t in ("swanctl", "ip", "ping", "openssl", "ss") if not shutil.which(t)]
    if missing:
        print(f"FAIL: missing {', '.join(missing)} (run tools/setup.sh)", flush=True)
        return 1

    arm_deadline(args.deadline)

    r = Run(args)
    failed = False
    try:
        r.up()
        for s in names:
            t0 = time.monotonic()
            try:
                r.scenario(s, args.runs)
                r.results.append((s, True, time.monotonic() - t0, ""))
                say(f"PASS {s}")
            except (Failure, swan.HarnessError, subprocess.TimeoutExpired) as e:
                failed = True
                msg = str(e)
                for c in r.clients[-1:] + ([r.responder] if r.responder else []):
                    msg += "\n" + c.diagnostics(40)
                msg += r.gateway_log_tail(40)
                r.results.append((s, False, time.monotonic() - t0, msg))
                say(f"FAIL {s}: {msg}")
                if r.clients:
                    r.clients[-1].stop()
    except (Failure, swan.HarnessError, Timeout, subprocess.TimeoutExpired) as e:
        failed = True
        msg = str(e)
        if r.responder:
            msg += "\n" + r.responder.diagnostics(40)
        msg += r.gateway_log_tail(40)
        done = {x[0] for x in r.results}
        r.results += [(s, False, 0.0, msg) for s in names if s not in done]
        say(f"FAIL: {msg}")
    finally:
        signal.alarm(0)
        r.down()
        r.save_logs(failed)
    write_junit(junit, r.results)
    if r.metrics:
        print(json.dumps(r.metrics, indent=2))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(r.metrics, f, indent=2)
    npass = sum(1 for x in r.results if x[1])
    print(f"{npass} passed, {len(r.results) - npass} failed", flush=True)
    return 1 if failed or npass != len(names) else 0


if __name__ == "__main__":
    sys.exit(main())
