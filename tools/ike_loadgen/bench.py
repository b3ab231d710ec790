#!/usr/bin/env python3
"""Side-by-side IKE handshake benchmark: strongSwan vs our gateway (root only).

One run: builds a test/interop topology and PKI, measures the crypto-only
floor, then for each responder (a strongSwan responder, then our `gateway`
started by test/interop/our_gateway.sh) and each proposal set runs
`ike_loadgen` from the client namespace, several repetitions, and measures
the responder's CPU time: utime+stime of every process in the gateway
namespace, from /proc/<pid>/stat before and after each repetition.
Repetitions alternate between the responders (restarted each time); each
starts with an unmeasured warm-up run.

  tools/ike_loadgen/bench.py                       # build -c opt, 5 reps, windows+modern
  tools/ike_loadgen/bench.py --reps 3 --handshakes 1000 --responders strongswan
  tools/ike_loadgen/bench.py --no-build --bin-dir bazel-bin   # use what is built

Prints a Markdown table (docs/benchmarks.md "IKE handshakes") and, with
--json FILE, every repetition's numbers. Standard library only.
"""

import argparse
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "test", "interop"))
import swan  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
TARGETS = ["//tools/ike_loadgen:ike_loadgen", "//gateway:gateway", "//tools/vpnctl:vpnctl"]


def say(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# CPU accounting

def netns_inode(ns):
    return os.stat(f"/run/netns/{ns}").st_ino


def pids_in_netns(ns):
    inode = netns_inode(ns)
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.stat(f"/proc/{entry}/ns/net").st_ino == inode:
                out.append(int(entry))
        except OSError:
            pass
    return out


def cpu_seconds(pids):
    """utime+stime of `pids` (all threads), in seconds; vanished pids count 0."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
        except (OSError, IndexError, ValueError):
            pass
    return total / CLK_TCK


# --------------------------------------------------------------------------
# Responders

class StrongSwan:
    name = "strongSwan 5.9.8"

    def __init__(self, workdir, topo, pki, args):
        self.charon = swan.Charon(os.path.join(workdir, "gw"), topo.gw_ns)
        self.topo, self.pki, self.args = topo, pki, args

    def start(self):
        levels = dict(item.split("=") for item in self.args.swan_levels.split(",") if item)
        self.charon.configure(
            swan.responder_swanctl_conf(gw_id=self.topo.gw_dns, pool=self.args.pool,
                                        local_ts=self.topo.lan_net),
            self.pki, role="responder", levels={k: int(v) for k, v in levels.items()})
        # Every initiator comes from one address: lift strongSwan's per-IP
        # half-open limits (block_threshold 5, cookie_threshold_ip 3) and
        # cookies, as ours are lifted (OUR_GATEWAY_IKE_LIMITS below).
        with open(self.charon.conf) as f:
            conf = f.read()
        conf = conf.replace("charon {\n", "charon {\n    cookie_threshold = 1000000\n"
                            "    cookie_threshold_ip = 1000000\n    block_threshold = 1000000\n", 1)
        with open(self.charon.conf, "w") as f:
            f.write(conf)
        self.charon.start()
        self.charon.load_all()

    def stop(self):
        self.charon.stop()

    def log_tail(self):
        return self.charon.diagnostics(30)


class OurGateway:
    name = "our gateway"
    root = ROOT  # the tree whose test/interop/our_gateway.sh starts it

    def __init__(self, workdir, topo, pki, args):
        self.workdir = os.path.join(workdir, "ours")
        os.makedirs(self.workdir, exist_ok=True)
        self.topo, self.pki, self.args = topo, pki, args
        self.proc = None
        self.log = os.path.join(self.workdir, "gateway.log")
        self.bins = args.bin_dir

    def start(self):
        bins = self.bins
        ready = os.path.join(self.workdir, "gateway.ready")
        if os.path.exists(ready):
            os.unlink(ready)
        env = dict(os.environ)
        env.update(self.topo.facts)
        env.update(IVPN_WORKDIR=self.workdir, IVPN_PKI_DIR=self.pki.dir, POOL4=self.args.pool)
        if self.args.ike_workers:
            env["OUR_GATEWAY_IKE_WORKERS"] = str(self.args.ike_workers)
        # Every initiator comes from one address: lift the per-source
        # half-open limit and cookies, as strongSwan's are lifted above.
        env["OUR_GATEWAY_IKE_LIMITS"] = "cookie_threshold: 1000000, half_open_per_source_limit: 1000000"
        if self.args.split:
            env.update(OUR_GATEWAY_SPLIT="1", OUR_GATEWAY_BIN_ROOT=bins)
        cmd = (f"exec {self.root}/test/interop/our_gateway.sh {bins}/gateway/gateway "
               f"{bins}/tools/vpnctl/vpnctl")
        self.proc = subprocess.Popen(["ip", "netns", "exec", self.topo.gw_ns, "sh", "-c", cmd],
                                     stdout=open(self.log, "w"), stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
        deadline = time.monotonic() + 40
        while not os.path.exists(ready):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise swan.HarnessError("our gateway did not become ready\n" + self.log_tail())
            time.sleep(0.05)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def log_tail(self):
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-30:])
        except OSError:
            return ""


class Baseline(OurGateway):
    """Our gateway from another tree (--baseline-root: a checkout with its
    own `bazel build -c opt`), to measure a change side by side."""
    name = "baseline"

    def __init__(self, workdir, topo, pki, args):
        super().__init__(workdir, topo, pki, args)
        self.workdir = os.path.join(workdir, "baseline")
        os.makedirs(self.workdir, exist_ok=True)
        self.log = os.path.join(self.workdir, "gateway.log")
        self.root = os.path.abspath(args.baseline_root)
        self.bins = os.path.join(self.root, "bazel-bin")


# --------------------------------------------------------------------------
# Running the load generator

def loadgen_cmd(args, topo, proposals, handshakes):
    return ["ip", "netns", "exec", topo.cli_ns, f"{args.bin_dir}/tools/ike_loadgen/ike_loadgen",
            f"--remote={topo.gw_addr}", f"--proposals={proposals}", f"--parallel={args.parallel}",
            f"--handshakes={handshakes}", f"--threads={args.threads}", "--json",
            f"--fake_nat={'true' if args.fake_nat else 'false'}"] + args.loadgen_arg


def run_load(args, topo, proposals, handshakes):
    p = subprocess.run(loadgen_cmd(args, topo, proposals, handshakes), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=600)
    try:
        return json.loads(p.stdout.strip().splitlines()[-1]), p.stderr
    except (IndexError, json.JSONDecodeError):
        raise swan.HarnessError(f"ike_loadgen gave no JSON (exit {p.returncode}):\n{p.stderr}")


def measure(responder, args, topo, proposals, rep):
    """One repetition: a warm-up run, then the measured run."""
    run_load(args, topo, proposals, args.warmup)  # caches, pools, threads
    pids = pids_in_netns(topo.gw_ns)
    before = cpu_seconds(pids)
    report, _ = run_load(args, topo, proposals, args.handshakes)
    cpu = cpu_seconds(pids) - before
    ok = report["established"]
    report["responder_cpu_s"] = cpu
    report["responder_cpu_ms_per_handshake"] = 1000 * cpu / ok if ok else None
    report["responder_pids"] = len(pids)
    say(f"  {responder.name} {proposals} rep {rep + 1}: {ok}/{report['attempted']} established, "
        f"{report['handshakes_per_s']:.0f}/s, p50 {report['latency_ms']['p50']:.1f} ms, "
        f"p99 {report['latency_ms']['p99']:.1f} ms, responder CPU "
        + (f"{report['responder_cpu_ms_per_handshake']:.3f} ms/handshake" if ok else "n/a")
        + (f", failures {report['failures']}" if report["failed"] else ""))
    return report


def measure_floor(args, pki, floors, raw):
    for proposals in args.proposals:
        p = subprocess.run([f"{args.bin_dir}/tools/ike_loadgen/ike_loadgen", "--floor", "--json",
                            f"--proposals={proposals}", f"--floor_key={pki.gw_key}",
                            f"--floor_repetitions={args.floor_reps}"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=True)
        floor = json.loads(p.stdout)
        raw["floor"].setdefault(proposals, []).append(floor)
        if proposals not in floors or floor["handshake_us"] < floors[proposals]["handshake_us"]:
            floors[proposals] = floor
        say(f"floor {proposals}: {p.stderr.strip()}")


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarize(reps):
    return {
        "cpu_ms": median([r["responder_cpu_ms_per_handshake"] for r in reps]),
        "rate": median([r["handshakes_per_s"] for r in reps]),
        "p50": median([r["latency_ms"]["p50"] for r in reps]),
        "p99": median([r["latency_ms"]["p99"] for r in reps]),
        "loadgen_ms": median([1000 * r["loadgen_cpu_s"] / r["established"]
                              for r in reps if r["established"]]),
        "attempted": sum(r["attempted"] for r in reps),
        "established": sum(r["established"] for r in reps),
        "failures": {k: v for r in reps for k, v in r["failures"].items()},
        "ike": next((r["ike"] for r in reps if r["ike"]), ""),
        "esp": next((r["esp"] for r in reps if r["esp"]), ""),
    }


def fmt(value, pattern="{:.2f}"):
    return "n/a" if value is None else pattern.format(value)


def ratio(a, b):
    return None if a is None or not b else a / b


def markdown(results, floors, args):
    names = [n for n in ("strongswan", "ours", "baseline") if n in args.responders]
    lines = []
    for proposals in args.proposals:
        s = results.get(("strongswan", proposals))
        o = results.get(("ours", proposals))
        f = floors.get(proposals)
        floor_ms = f["handshake_us"] / 1000 if f else None
        ike = (s or o or {}).get("ike", "")
        esp = (s or o or {}).get("esp", "")
        lines.append(f"**{proposals}** (IKE {ike}, ESP {esp}; RSA-2048 gateway certificate, "
                     f"EAP-MSCHAPv2, CP, one CHILD SA, then delete)\n")
        header = "| metric | " + " | ".join(
            {"strongswan": "strongSwan 5.9.8", "ours": "our gateway",
             "baseline": "baseline"}[n] for n in names) + " |"
        lines.append(header)
        lines.append("|---|" + "---:|" * len(names))

        def row(label, key, pattern="{:.2f}"):
            lines.append(f"| {label} | " + " | ".join(
                fmt(results[(n, proposals)][key], pattern) if (n, proposals) in results else "n/a"
                for n in names) + " |")
        row("responder CPU ms / handshake (median)", "cpu_ms", "{:.3f}")
        row("handshakes/s", "rate", "{:.0f}")
        row("latency p50 ms", "p50", "{:.1f}")
        row("latency p99 ms", "p99", "{:.1f}")
        row("load generator CPU ms / handshake", "loadgen_ms", "{:.3f}")
        lines.append("| established / attempted | " + " | ".join(
            f"{results[(n, proposals)]['established']}/{results[(n, proposals)]['attempted']}"
            if (n, proposals) in results else "n/a" for n in names) + " |")
        lines.append("")
        if f:
            lines.append(f"Crypto floor: {floor_ms:.3f} ms per handshake (key exchange "
                         f"{f['key_exchange_us']:.0f} us + RSA-2048 signature {f['signature_us']:.0f} us "
                         f"+ IKE/CHILD key derivation {f['derivation_us']:.0f} us).")
        parts = []
        b = results.get(("baseline", proposals))
        if b and o:
            parts.append(f"ours / baseline CPU = {fmt(ratio(o['cpu_ms'], b['cpu_ms']))}x")
        if s and o:
            parts.append(f"ours / strongSwan CPU = {fmt(ratio(o['cpu_ms'], s['cpu_ms']))}x "
                         f"(goal <= 0.33x)")
        if o and f:
            parts.append(f"ours / floor = {fmt(ratio(o['cpu_ms'], floor_ms))}x (goal <= 1.3x)")
        if s and f:
            parts.append(f"strongSwan / floor = {fmt(ratio(s['cpu_ms'], floor_ms))}x")
        if parts:
            lines.append("Ratios: " + "; ".join(parts) + ".")
        for n in names:
            r = results.get((n, proposals))
            if r and r["failures"]:
                lines.append(f"Failures ({n}): " + ", ".join(f"{k} x{v}" for k, v in r["failures"].items()))
        lines.append("")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--proposals", default="windows,modern")
    ap.add_argument("--responders", default="strongswan,ours")
    ap.add_argument("--handshakes", type=int, default=2000, help="per repetition")
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--parallel", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--pool", default="10.10.0.0/24")
    ap.add_argument("--fake-nat", action=argparse.BooleanOptionalAction, default=True,
                    help="initiators claim a NAT, so both responders move IKE to 4500 "
                         "(strongSwan with kernel-libipsec always does)")
    ap.add_argument("--swan-levels", default="default=0",
                    help="strongSwan responder log levels (the harness default is ike=2,...)")
    ap.add_argument("--ike-workers", type=int,
                    help="our gateway's ike_service.workers (default: the config default)")
    ap.add_argument("--floor-reps", type=int, default=7)
    ap.add_argument("--loadgen-arg", action="append", default=[], help="extra ike_loadgen flag")
    ap.add_argument("--split", action="store_true",
                    help="our gateway as four processes on etcd (our_gateway.sh OUR_GATEWAY_SPLIT=1); "
                         "CPU counts every process in the gateway namespace, etcd included")
    ap.add_argument("--baseline-root",
                    help="responder 'baseline': our gateway from this checkout (built -c opt there)")
    ap.add_argument("--no-build", dest="build", action="store_false")
    ap.add_argument("--bin-dir", help="bazel-bin to use (default: `bazel info -c opt bazel-bin`)")
    ap.add_argument("--json", help="write every repetition here")
    ap.add_argument("--keep", action="store_true", help="keep the work dir")
    args = ap.parse_args()
    args.proposals = [p for p in args.proposals.split(",") if p]
    args.responders = [r for r in args.responders.split(",") if r]
    if os.geteuid() != 0:
        print("bench.py: needs root (network namespaces)", file=sys.stderr)
        return 2

    os.chdir(ROOT)
    if args.build:
        say("bazel build -c opt " + " ".join(TARGETS))
        subprocess.run(["bazel", "build", "-c", "opt"] + TARGETS, check=True)
    if not args.bin_dir:
        args.bin_dir = subprocess.run(["bazel", "info", "-c", "opt", "bazel-bin"], check=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                      text=True).stdout.strip()
    args.bin_dir = os.path.abspath(args.bin_dir)
    say(f"binaries from {args.bin_dir}")

    workdir = tempfile.mkdtemp(prefix="ivpn-bench-", dir="/tmp")
    run_id = "lgb" + secrets.token_hex(3)
    topo = None
    responder = None
    results, floors, raw = {}, {}, {"reps": {}, "floor": {}}
    try:
        topo = swan.Topology.up(run_id)
        pki = swan.Pki(os.path.join(workdir, "pki")).generate(topo.gw_addr, topo.gw_dns)
        measure_floor(args, pki, floors, raw)
        # Repetitions alternate between the responders (each restarted), so
        # a burst of other load on this shared machine hits both alike.
        for rep in range(args.reps):
            for name in args.responders:
                cls = {"strongswan": StrongSwan, "ours": OurGateway, "baseline": Baseline}[name]
                responder = cls(workdir, topo, pki, args)
                say(f"rep {rep + 1}/{args.reps}: starting {responder.name}")
                responder.start()
                try:
                    for proposals in args.proposals:
                        report = measure(responder, args, topo, proposals, rep)
                        raw["reps"].setdefault(f"{name}/{proposals}", []).append(report)
                except Exception:
                    say(f"{responder.name} log tail:\n{responder.log_tail()}")
                    raise
                finally:
                    responder.stop()
                    responder = None
        for key, reps in raw["reps"].items():
            name, proposals = key.split("/")
            results[(name, proposals)] = summarize(reps)
        # Again at the end: a busy machine only inflates it, so the lower wins.
        measure_floor(args, pki, floors, raw)
    finally:
        if responder:
            responder.stop()
        if topo:
            topo.down()
        if args.keep:
            say(f"work dir kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    cmd = " ".join(loadgen_cmd(args, topo, "<set>", args.handshakes)[4:])
    print(f"<!-- bench.py: {args.reps} reps x {args.handshakes} handshakes, {cmd} -->\n")
    print(markdown(results, floors, args))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(raw, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
