"""Starts the real `gateway` binary on loopback for hostile-traffic tests:
embedded store, operator socket and IKE ports in a temporary directory and
on free ports. Standard library only."""

import json
import urllib.request
import os
import select
import signal
import socket
import subprocess
import tempfile
import time


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gateway:
    def __init__(self, binary, extra_yaml=""):
        self.dir = tempfile.mkdtemp(prefix="vpn-hostile-", dir="/tmp")
        self.ike_port, self.natt_port = free_udp_port(), free_udp_port()
        config = os.path.join(self.dir, "gateway.yaml")
        with open(config, "w") as f:
            f.write(f'metrics_listen: "127.0.0.1:0"\n'
                    f'server: {{grpc_listen: "unix:{self.dir}/gateway.sock"}}\n'
                    f'store: "embedded:{self.dir}/store"\n'
                    f'esp_forwarder: {{ike_listen: "127.0.0.1:{self.ike_port}", '
                    f'natt_listen: "127.0.0.1:{self.natt_port}"}}\n' + extra_yaml)
        self.log_path = os.path.join(self.dir, "gateway.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([binary, f"--config={config}"], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        self.up = self.wait_for('"msg":"gateway up"', 20)

    def lines(self):
        with open(self.log_path, errors="replace") as f:
            return f.read().splitlines()

    def wait_for(self, needle, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines():
                if needle in line:
                    return json.loads(line) if line.startswith("{") else line
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"gateway: no line with {needle}; log:\n" + "\n".join(self.lines()[-20:]))

    def exchange(self, sock, request, timeout=2.0):
        """Sends `request` to the IKE port; the answer, or None."""
        sock.sendto(request, ("127.0.0.1", self.ike_port))
        ready, _, _ = select.select([sock], [], [], timeout)
        return sock.recvfrom(65535)[0] if ready else None

    def metrics(self):
        url = f"http://127.0.0.1:{self.up['metrics_port']}/metrics"
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.read().decode()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                return self.proc.wait()
        return self.proc.returncode


def metric(text, name, **labels):
    """One sample of `name` with exactly `labels` from /metrics text, or 0."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    prefix = f"{name}{{{want}}} " if labels else f"{name} "
    return next((float(line.split()[-1]) for line in text.splitlines() if line.startswith(prefix)), 0.0)


def run(binary, checks, **gateway_args):
    """Starts the gateway, runs checks(gw, failures), stops it (a clean exit
    on SIGTERM is required too), prints the verdict; the test's exit code."""
    gw = Gateway(binary, **gateway_args)
    failures = []
    try:
        checks(gw, failures)
    finally:
        code = gw.stop()
    if code != 0:
        failures.append(f"gateway exited {code} on SIGTERM")
    for f in failures:
        print(f"FAIL {f}")
    print("PASS" if not failures else f"{len(failures)} failures; log: {gw.log_path}")
    return 1 if failures else 0
