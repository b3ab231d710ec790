"""Starts the real `gateway` binary on loopback for hostile-traffic tests:
embedded store, operator socket and IKE ports in a temporary directory and
on free ports. Standard library only."""

import json
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
        import urllib.request
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
