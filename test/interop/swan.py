#!/usr/bin/env python3
"""strongSwan (charon + swanctl) driver for the interop harness.

Standard library only. One `Charon` is one charon daemon in one network
namespace, with its own mount namespace (its own /run, so several charons
on one machine do not fight over /run/charon.pid), its own strongswan.conf
(STRONGSWAN_CONF), its own swanctl directory (SWANCTL_DIR), VICI socket and
log file, all under one instance directory. Nothing under /etc is read or
written, except the system plugin files charon itself loads.

Used as a module (see interop_test.py) or from the shell:

  swan.py pki DIR [--gw-addr 192.0.2.1] [--gw-dns gw.vpn.example]
  swan.py start DIR --ns NS --role client|responder --pki PKIDIR
               [--auth eap-mschapv2|cert] [--proposals windows|modern|modern-ecp384|all]
               [--remote 192.0.2.1] [--levels ike=4,enc=4]
  swan.py initiate DIR [--timeout 20]
  swan.py list-sas DIR            (JSON)
  swan.py swanctl DIR ARGS...     (any swanctl command against this instance)
  swan.py log DIR [--lines 60]
  swan.py stop DIR
"""

import argparse
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import time

CHARON = "/usr/lib/ipsec/charon"
SWANCTL = "swanctl"
HERE = os.path.dirname(os.path.abspath(__file__))

# Proposal sets. "windows" is the Windows 7/10 built-in client's default set
# (no PFS for the first CHILD SA anyway; no PFS on rekey either).
PROPOSALS = {
    "windows": {
        "ike": "aes256-sha1-modp1024,aes128-sha1-modp1024,3des-sha1-modp1024",
        "esp": "aes256-sha1,aes128-sha1,3des-sha1",
    },
    # X25519 first, so the KE payload carries X25519; ECP-384 is offered too.
    "modern": {
        "ike": "aes256gcm16-prfsha384-x25519,aes256gcm16-prfsha384-ecp384",
        "esp": "aes256gcm16",
    },
    "modern-ecp384": {
        "ike": "aes256gcm16-prfsha384-ecp384,aes256gcm16-prfsha384-x25519",
        "esp": "aes256gcm16",
    },
}
# What the reference responder accepts: everything above, then strongSwan's defaults.
PROPOSALS["all"] = {
    "ike": ",".join([PROPOSALS["modern"]["ike"], PROPOSALS["windows"]["ike"], "default"]),
    "esp": ",".join(["aes256gcm16,aes128gcm16", PROPOSALS["windows"]["esp"], "default"]),
}

PLUGINS = (
    # kernel-libipsec before kernel-netlink: the first kernel-ipsec backend wins,
    # so libipsec carries the SAs (this kernel has no ESP) while kernel-netlink
    # still does addresses, routes and roam events.
    "random nonce openssl pem pkcs1 pkcs8 x509 revocation constraints pubkey "
    "curve25519 aes sha1 sha2 hmac gcm kdf "
    "kernel-libipsec kernel-netlink socket-default vici eap-identity eap-mschapv2"
)

DEFAULT_LEVELS = {"default": 1, "ike": 2, "cfg": 2, "enc": 1, "knl": 1, "net": 1}
DEBUG_LEVELS = {"default": 1, "ike": 4, "cfg": 2, "enc": 4, "knl": 2, "net": 2}

DEFAULT_USER = "alice"
DEFAULT_PASSWORD = "interop-Pa55word"
CLIENT_CERT_ID = "client1.vpn.example"


class HarnessError(RuntimeError):
    pass


def run(cmd, check=True, timeout=60, env=None, input=None):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=timeout, env=env, input=input)
    if check and p.returncode != 0:
        raise HarnessError("command failed (%d): %s\n%s" % (p.returncode, " ".join(cmd), p.stdout))
    return p


# --------------------------------------------------------------------------
# Topology (wraps netns.sh)

class Topology:
    """A running netns.sh topology. Attributes mirror netns.sh's facts."""

    def __init__(self, run_id, facts):
        self.run_id = run_id
        self.facts = facts
        for k, v in facts.items():
            setattr(self, k.lower(), v)

    @classmethod
    def up(cls, run_id, two_paths=False, nat=False, two_nodes=False):
        cmd = [os.path.join(HERE, "netns.sh"), "up", run_id]
        if two_nodes:
            cmd.append("--two-nodes")
        elif two_paths:
            cmd.append("--two-paths")
        if nat:
            cmd.append("--nat")
        out = run(cmd).stdout
        facts = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        return cls(run_id, facts)

    def down(self):
        run([os.path.join(HERE, "netns.sh"), "down", self.run_id], check=False)

    def ns(self, role):
        return {"cli": self.cli_ns, "gw": self.gw_ns, "lan": self.lan_ns, "nat": self.nat_ns,
                "gw2": self.gw2_ns, "lan2": self.lan2_ns}[role]

    def exec(self, role, cmd, check=True, timeout=60):
        return run(["ip", "netns", "exec", self.ns(role)] + list(cmd), check=check, timeout=timeout)


# --------------------------------------------------------------------------
# Throw-away PKI (openssl CLI)

class Pki:
    """CA, gateway certificate (RSA-2048) and client certificates (ECDSA P-256).

    Files in `dir`: ca.crt ca.key ca.crl gw.crt gw.key, and client.crt/.key
    (valid), client-revoked.crt/.key (listed in ca.crl) and
    client-expired.crt/.key (expired in 2020).
    """

    def __init__(self, dir):
        self.dir = dir
        self.ca_crt = os.path.join(dir, "ca.crt")
        self.gw_crt = os.path.join(dir, "gw.crt")
        self.gw_key = os.path.join(dir, "gw.key")
        self.client_crt = os.path.join(dir, "client.crt")
        self.client_key = os.path.join(dir, "client.key")
        self.ca_crl = os.path.join(dir, "ca.crl")
        self.client_id = CLIENT_CERT_ID
        self.gw_dns = None

    def generate(self, gw_addr="192.0.2.1", gw_dns="gw.vpn.example", days=2):
        os.makedirs(self.dir, exist_ok=True)
        self.gw_dns = gw_dns
        d = self.dir
        ossl = ["openssl"]
        run(ossl + ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256",
                    "-keyout", f"{d}/ca.key", "-out", self.ca_crt, "-days", str(days),
                    "-subj", "/C=XX/O=vpn-gateway interop/CN=Interop Test CA",
                    "-addext", "basicConstraints=critical,CA:TRUE",
                    "-addext", "keyUsage=critical,keyCertSign,cRLSign"])

        def issue(name, keyargs, subj, ext, serial):
            run(ossl + ["req", "-new", "-nodes", *keyargs, "-keyout", f"{d}/{name}.key",
                        "-out", f"{d}/{name}.csr", "-subj", subj])
            with open(f"{d}/{name}.ext", "w") as f:
                f.write(ext)
            run(ossl + ["x509", "-req", "-sha256", "-in", f"{d}/{name}.csr", "-CA", self.ca_crt,
                        "-CAkey", f"{d}/ca.key", "-set_serial", str(serial), "-days", str(days),
                        "-extfile", f"{d}/{name}.ext", "-out", f"{d}/{name}.crt"])

        issue("gw", ["-newkey", "rsa:2048"], f"/C=XX/O=vpn-gateway interop/CN={gw_dns}",
              "basicConstraints=CA:FALSE\n"
              "keyUsage=critical,digitalSignature,keyEncipherment\n"
              # serverAuth plus IKE intermediate (1.3.6.1.5.5.8.2.2), as Windows wants.
              "extendedKeyUsage=serverAuth,1.3.6.1.5.5.8.2.2\n"
              f"subjectAltName=DNS:{gw_dns},IP:{gw_addr}\n", 2)
        issue("client", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
              f"/C=XX/O=vpn-gateway interop/CN={self.client_id}",
              "basicConstraints=CA:FALSE\n"
              "keyUsage=critical,digitalSignature\n"
              "extendedKeyUsage=clientAuth\n"
              f"subjectAltName=DNS:{self.client_id}\n", 3)

        # A revoked and an expired client certificate need `openssl ca`: it
        # keeps the database a CRL is made from, and takes a start date.
        os.makedirs(f"{d}/newcerts", exist_ok=True)
        open(f"{d}/index.txt", "w").close()
        with open(f"{d}/serial", "w") as f:
            f.write("10\n")
        with open(f"{d}/crlnumber", "w") as f:
            f.write("01\n")
        with open(f"{d}/ca.cnf", "w") as f:
            f.write(f"""[ ca ]
default_ca = test_ca
[ test_ca ]
database = {d}/index.txt
new_certs_dir = {d}/newcerts
certificate = {self.ca_crt}
private_key = {d}/ca.key
serial = {d}/serial
crlnumber = {d}/crlnumber
default_md = sha256
default_crl_days = {days}
policy = policy_any
unique_subject = no
[ policy_any ]
commonName = supplied
organizationName = optional
countryName = optional
""")
        ca = ossl + ["ca", "-batch", "-config", f"{d}/ca.cnf"]
        for name, dates in (("client-revoked", ["-days", str(days)]),
                            ("client-expired", ["-startdate", "20200101000000Z",
                                                "-enddate", "20200102000000Z"])):
            cid = f"{name}.vpn.example"
            run(ossl + ["req", "-new", "-nodes", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-keyout", f"{d}/{name}.key",
                        "-out", f"{d}/{name}.csr", "-subj", f"/C=XX/O=vpn-gateway interop/CN={cid}"])
            with open(f"{d}/{name}.ext", "w") as f:
                f.write("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                        f"extendedKeyUsage=clientAuth\nsubjectAltName=DNS:{cid}\n")
            run(ca + ["-in", f"{d}/{name}.csr", "-out", f"{d}/{name}.crt", "-notext",
                      "-extfile", f"{d}/{name}.ext", *dates])
        run(ca + ["-revoke", f"{d}/client-revoked.crt"])
        run(ca + ["-gencrl", "-out", self.ca_crl])
        return self


# --------------------------------------------------------------------------
# Configuration text

def _levels_block(levels):
    return "\n".join(f"            {k} = {v}" for k, v in levels.items())


def strongswan_conf(inst_dir, levels):
    """strongswan.conf for one instance; charon reads it via STRONGSWAN_CONF."""
    vici = os.path.join(inst_dir, "charon.vici")
    log = os.path.join(inst_dir, "charon.log")
    return f"""# generated by test/interop/swan.py
charon {{
    load_modular = no
    load = {PLUGINS}
    # Bounded failure: about 7 s until a dead peer gives up.
    retransmit_timeout = 1.0
    retransmit_base = 1.4
    retransmit_tries = 3
    # IKE fragmentation for large IKE_AUTH (certificates).
    fragment_size = 1280
    install_routes = yes
    install_virtual_ip = yes
    make_before_break = yes
    filelog {{
        charon_log {{
            path = {log}
            time_format = %H:%M:%S
            time_add_ms = yes
            ike_name = yes
            flush_line = yes
            append = no
{_levels_block(levels)}
        }}
    }}
    syslog {{
        # no syslog from test daemons
        daemon {{
            default = -1
        }}
    }}
    plugins {{
        vici {{
            socket = unix://{vici}
        }}
        openssl {{
            # MD4 and DES for EAP-MSCHAPv2 live in OpenSSL 3's legacy provider.
            load_legacy = yes
        }}
        kernel-libipsec {{
            allow_peer_ts = no
        }}
    }}
}}
swanctl {{
    socket = unix://{vici}
}}
"""


def client_swanctl_conf(remote, auth, proposals="windows", user=DEFAULT_USER,
                        password=DEFAULT_PASSWORD, remote_id="gw.vpn.example",
                        remote_ts="0.0.0.0/0,::/0", vips="0.0.0.0,::", local_id=None,
                        cert_id=CLIENT_CERT_ID, name="rw", local_addrs=None):
    """A road-warrior client connection `name` (IKE and CHILD) to `remote`.

    auth: "eap-mschapv2" (IDi = own IP address like Windows, EAP identity = user)
          or "cert" (machine certificate client.crt, IDi = its DNS SAN).
    """
    p = PROPOSALS[proposals] if proposals in PROPOSALS else {"ike": proposals, "esp": "default"}
    if auth == "eap-mschapv2":
        local = f"""        local {{
            auth = eap-mschapv2
            eap_id = {user}
{f'            id = {local_id}' if local_id else '            # id: defaults to our IP address (as Windows does)'}
        }}"""
        secrets = f"""secrets {{
    eap-{user} {{
        id = {user}
        secret = "{password}"
    }}
}}"""
    elif auth == "cert":
        local = f"""        local {{
            auth = pubkey
            certs = client.crt
            id = {local_id or cert_id}
        }}"""
        secrets = "secrets {\n}"
    else:
        raise ValueError("auth must be eap-mschapv2 or cert")
    return f"""# generated by test/interop/swan.py (client, auth={auth}, proposals={proposals})
connections {{
    {name} {{
        version = 2
        remote_addrs = {remote}
{f'        local_addrs = {local_addrs}' if local_addrs else ''}
        vips = {vips}
        proposals = {p['ike']}
        fragmentation = yes
        mobike = yes
        send_certreq = yes
        rekey_time = 4h
        over_time = 10m
        rand_time = 0s
        unique = replace
{local}
        remote {{
            auth = pubkey
            id = {remote_id}
        }}
        children {{
            {name} {{
                remote_ts = {remote_ts}
                esp_proposals = {p['esp']}
                rekey_time = 50m
                life_time = 60m
                rand_time = 0s
                start_action = none
                close_action = none
                dpd_action = clear
            }}
        }}
    }}
}}
{secrets}
"""


def responder_swanctl_conf(gw_id="gw.vpn.example", pool="10.10.0.0/24", local_ts="203.0.113.0/24",
                           users=None, proposals="all", dns=None):
    """The reference strongSwan gateway: one EAP-MSCHAPv2 and one certificate connection."""
    users = users or {DEFAULT_USER: DEFAULT_PASSWORD}
    p = PROPOSALS[proposals] if proposals in PROPOSALS else {"ike": proposals, "esp": "default"}
    child = f"""        children {{
            rw {{
                local_ts = {local_ts}
                esp_proposals = {p['esp']}
                rekey_time = 50m
                life_time = 60m
                rand_time = 0s
                dpd_action = clear
            }}
        }}"""
    common = f"""        version = 2
        pools = pool4
        proposals = {p['ike']}
        fragmentation = yes
        mobike = yes
        send_cert = always
        rekey_time = 4h
        over_time = 10m
        rand_time = 0s
        unique = never
        local {{
            auth = pubkey
            certs = gw.crt
            id = {gw_id}
        }}"""
    secrets = "\n".join(f"""    eap-{u} {{
        id = {u}
        secret = "{pw}"
    }}""" for u, pw in users.items())
    attrs = f"\n        dns = {dns}" if dns else ""
    return f"""# generated by test/interop/swan.py (responder)
connections {{
    rw-eap {{
{common}
        remote {{
            auth = eap-mschapv2
            eap_id = %any
        }}
{child}
    }}
    rw-cert {{
{common}
        remote {{
            auth = pubkey
            cacerts = ca.crt
        }}
{child}
    }}
}}
pools {{
    pool4 {{
        addrs = {pool}{attrs}
    }}
}}
secrets {{
{secrets}
}}
"""


# --------------------------------------------------------------------------
# One charon daemon

class Charon:
    def __init__(self, inst_dir, netns=None):
        self.dir = os.path.abspath(inst_dir)
        self.netns = netns
        self.vici = os.path.join(self.dir, "charon.vici")
        self.log = os.path.join(self.dir, "charon.log")
        self.conf = os.path.join(self.dir, "strongswan.conf")
        self.swanctl_dir = os.path.join(self.dir, "swanctl")
        self.rundir = os.path.join(self.dir, "run")
        self.proc = None
        self.pid = None
        meta = os.path.join(self.dir, "instance.json")
        if netns is None and os.path.exists(meta):
            with open(meta) as f:
                m = json.load(f)
            self.netns, self.pid = m["netns"], m.get("pid")
        if len(self.vici) > 100:
            raise HarnessError(f"instance dir too long for a unix socket path: {self.dir}")

    # ---- configuration
    def configure(self, swanctl_conf, pki=None, role="client", levels=None,
                  client_cert="client"):
        """Writes strongswan.conf, swanctl.conf and the credentials.

        client_cert: which client certificate of the PKI the client presents
        ("client", "client-revoked" or "client-expired"), as client.crt.
        """
        os.makedirs(self.rundir, exist_ok=True)
        for sub in ("x509", "x509ca", "x509crl", "private"):
            os.makedirs(os.path.join(self.swanctl_dir, sub), exist_ok=True)
        with open(self.conf, "w") as f:
            f.write(strongswan_conf(self.dir, levels or DEFAULT_LEVELS))
        with open(os.path.join(self.swanctl_dir, "swanctl.conf"), "w") as f:
            f.write(swanctl_conf)
        os.chmod(os.path.join(self.swanctl_dir, "swanctl.conf"), 0o600)
        if pki:
            shutil.copy(pki.ca_crt, os.path.join(self.swanctl_dir, "x509ca", "ca.crt"))
            if role == "responder":
                shutil.copy(pki.gw_crt, os.path.join(self.swanctl_dir, "x509", "gw.crt"))
                shutil.copy(pki.gw_key, os.path.join(self.swanctl_dir, "private", "gw.key"))
                if os.path.exists(pki.ca_crl):
                    shutil.copy(pki.ca_crl, os.path.join(self.swanctl_dir, "x509crl", "ca.crl"))
            else:
                shutil.copy(os.path.join(pki.dir, f"{client_cert}.crt"),
                            os.path.join(self.swanctl_dir, "x509", "client.crt"))
                shutil.copy(os.path.join(pki.dir, f"{client_cert}.key"),
                            os.path.join(self.swanctl_dir, "private", "client.key"))

    def env(self):
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "STRONGSWAN_CONF": self.conf,
               "SWANCTL_DIR": self.swanctl_dir, "LANG": "C"}
        return env

    # ---- life cycle
    def start(self, timeout=10.0):
        """Starts charon in self.netns with a private /run; waits for VICI."""
        if not self.netns:
            raise HarnessError("no network namespace given")
        for stale in (self.vici, os.path.join(self.rundir, "charon.pid")):
            if os.path.exists(stale):
                os.unlink(stale)
        out = open(os.path.join(self.dir, "charon.out"), "w")
        # ip netns exec already gives a fresh mount namespace; unshare -m makes
        # that explicit. /run is replaced by this instance's own run dir.
        cmd = ["ip", "netns", "exec", self.netns, "unshare", "--mount", "--propagation", "private",
               "sh", "-c", 'mount --bind "$1" /run && exec "$2"', "sh", self.rundir, CHARON]
        self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=self.env(),
                                     start_new_session=True)
        self.pid = self.proc.pid
        with open(os.path.join(self.dir, "instance.json"), "w") as f:
            json.dump({"netns": self.netns, "pid": self.pid}, f)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise HarnessError(f"charon exited with {self.proc.returncode}\n" + self.diagnostics())
            if os.path.exists(self.vici):
                p = self.swanctl("--stats", check=False, timeout=5)
                if p.returncode == 0:
                    return self
            time.sleep(0.05)
        raise HarnessError("charon's VICI socket did not come up\n" + self.diagnostics())

    def stop(self, timeout=5.0):
        pid = self.pid
        if not pid:
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            self.pid = None
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None:
                if self.proc.poll() is not None:
                    break
            elif not os.path.exists(f"/proc/{pid}"):
                break
            time.sleep(0.05)
        else:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            if self.proc is not None:
                self.proc.wait(5)
        self.pid = None

    # ---- swanctl
    def swanctl(self, *args, check=True, timeout=30):
        cmd = [SWANCTL, *args, "--uri", "unix://" + self.vici]
        return run(cmd, check=check, timeout=timeout, env=self.env())

    def load_all(self):
        return self.swanctl("--load-all", "--noprompt")

    def initiate(self, ike="rw", child="rw", timeout=20):
        """Initiates; returns (ok, wall seconds, swanctl output)."""
        t0 = time.monotonic()
        try:
            p = self.swanctl("--initiate", "--ike", ike, "--child", child, "--timeout", str(timeout),
                             "--loglevel", "0", check=False, timeout=timeout + 5)
            ok, out = p.returncode == 0, p.stdout
        except subprocess.TimeoutExpired as e:
            ok, out = False, f"swanctl --initiate timed out: {e}"
        return ok, time.monotonic() - t0, out

    def terminate(self, ike="rw", timeout=10):
        return self.swanctl("--terminate", "--ike", ike, "--timeout", str(timeout),
                            check=False, timeout=timeout + 5)

    def list_sas(self):
        return parse_pretty(self.swanctl("--list-sas", "--pretty").stdout)

    # ---- logs
    def log_lines(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def diagnostics(self, lines=60):
        parts = [f"--- {self.log} (last {lines} lines)"] + self.log_lines()[-lines:]
        out = os.path.join(self.dir, "charon.out")
        if os.path.exists(out):
            with open(out, errors="replace") as f:
                parts += [f"--- {out}", f.read()[-3000:]]
        return "\n".join(parts)


# --------------------------------------------------------------------------
# Parsing

def parse_pretty(text):
    """Parses `swanctl --list-sas --pretty` into a list of IKE SA dicts.

    Each IKE SA: {"name", "state", "spi_i", "spi_r", "local_vips", "remote_vips", ...
    all other keys as printed, "children": [ {"name", "state", "spi_in", "spi_out",
    "protocol", "encap", "local_ts", "remote_ts", ...} ]}.
    """
    stack = [{}]
    names = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        m = re.match(r"^(.+?) \{$", line)
        if m:
            node = {}
            stack[-1][m.group(1)] = node
            stack.append(node)
            names.append(m.group(1))
            continue
        m = re.match(r"^(.+?)(?: =)? \[$", line)
        if m:
            lst = []
            stack[-1][m.group(1)] = lst
            stack.append(lst)
            names.append(m.group(1))
            continue
        if line in ("}", "]"):
            stack.pop()
            names.pop()
            continue
        if isinstance(stack[-1], list):
            stack[-1].append(line)
            continue
        m = re.match(r"^(\S+) = (.*)$", line)
        if m:
            stack[-1][m.group(1)] = m.group(2)
    root = stack[0]
    # Either {"list-sa event": {...}} wrappers or the IKE SAs directly.
    sas = []

    def collect(d):
        for k, v in d.items():
            if isinstance(v, dict) and "state" in v and "uniqueid" in v:
                ike = dict(v)
                ike["name"] = k
                ike["spi_i"] = v.get("initiator-spi")
                ike["spi_r"] = v.get("responder-spi")
                children = []
                for cname, c in (v.get("child-sas") or {}).items():
                    c = dict(c)
                    c.setdefault("name", cname)
                    c["id"] = cname
                    c["spi_in"] = c.get("spi-in")
                    c["spi_out"] = c.get("spi-out")
                    children.append(c)
                ike["children"] = children
                ike.pop("child-sas", None)
                sas.append(ike)
            elif isinstance(v, dict):
                collect(v)

    collect(root)
    return sas


LOG_TIME = re.compile(r"^(\d\d):(\d\d):(\d\d)\.(\d\d\d) ")


def log_time(line):
    m = LOG_TIME.match(line)
    if not m:
        return None
    h, mi, s, ms = map(int, m.groups())
    return h * 3600 + mi * 60 + s + ms / 1000.0


def setup_times_from_log(lines):
    """{IKE SA number: seconds} from "generating IKE_SA_INIT request 0" to the
    first "CHILD_SA ... established" of that IKE SA, from an initiator's
    charon.log (ike_name = yes; ms resolution)."""
    starts, out = {}, {}
    for line in lines:
        m = re.search(r"<[^|>]+\|(\d+)> generating IKE_SA_INIT request 0", line)
        if m:
            starts.setdefault(m.group(1), log_time(line))
            continue
        m = re.search(r"<[^|>]+\|(\d+)> (?:outbound )?CHILD_SA \S+ established", line)
        if m and m.group(1) in starts and m.group(1) not in out:
            d = log_time(line) - starts[m.group(1)]
            out[m.group(1)] = d + 86400 if d < 0 else d
    return out


# --------------------------------------------------------------------------
# Packet capture (tcpdump) and pcap reading

class Capture:
    def __init__(self, netns, iface, path, bpf="udp port 500 or udp port 4500"):
        self.path = path
        # --immediate-mode: otherwise packets wait in tcpdump's ring-buffer block
        # and those still there at SIGINT are lost (short captures came out empty).
        self.err = path + ".err"
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", netns, "tcpdump", "-Z", "root", "--immediate-mode", "-i", iface, "-U", "-s", "0",
             "-w", path, bpf],
            stdout=subprocess.DEVNULL, stderr=open(self.err, "w"), start_new_session=True)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with open(self.err) as f:
                if "listening on" in f.read():
                    break
            if self.proc.poll() is not None:
                raise HarnessError("tcpdump exited: " + open(self.err).read())
            time.sleep(0.05)
        time.sleep(0.1)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def read_pcap_udp(path):
    """Yields (time, src, sport, dst, dport, payload) for IPv4/UDP in an Ethernet pcap."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        return
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    off = 24
    while off + 16 <= len(data):
        sec, frac, incl, _ = struct.unpack(endian + "IIII", data[off:off + 16])
        pkt = data[off + 16:off + 16 + incl]
        off += 16 + incl
        if linktype == 1:
            if len(pkt) < 14 or pkt[12:14] != b"\x08\x00":
                continue
            ip = pkt[14:]
        elif linktype == 113:  # Linux cooked
            ip = pkt[16:]
        else:
            ip = pkt
        if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 17:
            continue
        ihl = (ip[0] & 15) * 4
        src = ".".join(map(str, ip[12:16]))
        dst = ".".join(map(str, ip[16:20]))
        sport, dport, ulen = struct.unpack("!HHH", ip[ihl:ihl + 6])
        yield sec + frac / 1e6, src, sport, dst, dport, ip[ihl + 8:ihl + ulen]


def ike_datagrams(pcap):
    """IKE messages in a pcap: dicts with time, src, sport, dst, dport, spi_i, spi_r
    (hex), exchange (34 IKE_SA_INIT, 35 IKE_AUTH, 36 CREATE_CHILD_SA, 37
    INFORMATIONAL), flags, msgid, length and data (the IKE message, without
    the non-ESP marker on port 4500). ESP-in-UDP and keepalives are skipped."""
    for t, src, sport, dst, dport, payload in read_pcap_udp(pcap):
        data = payload
        if 4500 in (sport, dport):
            if len(data) < 4 or data[:4] != b"\0\0\0\0":
                continue  # ESP (non-zero SPI) or a NAT keepalive (1 byte)
            data = data[4:]
        elif 500 not in (sport, dport):
            continue
        if len(data) < 28:
            continue
        yield {"time": t, "src": src, "sport": sport, "dst": dst, "dport": dport,
               "spi_i": data[:8].hex(), "spi_r": data[8:16].hex(), "exchange": data[18],
               "flags": data[19], "msgid": struct.unpack("!I", data[20:24])[0],
               "length": len(data), "data": data}


def handshake_times(pcap):
    """Per IKE SA (initiator SPI): seconds from the IKE_SA_INIT request leaving
    the client to the last IKE_AUTH response reaching it, from the client's
    own capture (microsecond timestamps; independent of the gateway)."""
    start, end = {}, {}
    for m in ike_datagrams(pcap):
        response = bool(m["flags"] & 0x20)
        if m["exchange"] == 34 and not response:
            start.setdefault(m["spi_i"], m["time"])
        elif m["exchange"] == 35 and response and m["spi_i"] in start:
            end[m["spi_i"]] = m["time"]
    return {spi: end[spi] - start[spi] for spi in start if spi in end}


# --------------------------------------------------------------------------
# Command line

def _levels(spec):
    levels = dict(DEFAULT_LEVELS)
    for item in filter(None, (spec or "").split(",")):
        k, v = item.split("=")
        levels[k] = int(v)
    return levels


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("pki")
    s.add_argument("dir")
    s.add_argument("--gw-addr", default="192.0.2.1")
    s.add_argument("--gw-dns", default="gw.vpn.example")
    s = sub.add_parser("start")
    s.add_argument("dir")
    s.add_argument("--ns", required=True)
    s.add_argument("--role", choices=["client", "responder"], required=True)
    s.add_argument("--pki", required=True)
    s.add_argument("--auth", choices=["eap-mschapv2", "cert"], default="eap-mschapv2")
    s.add_argument("--proposals", default="windows")
    s.add_argument("--remote", default="192.0.2.1")
    s.add_argument("--remote-id", default="gw.vpn.example")
    s.add_argument("--remote-ts", default="0.0.0.0/0,::/0")
    s.add_argument("--user", default=DEFAULT_USER)
    s.add_argument("--password", default=DEFAULT_PASSWORD)
    s.add_argument("--levels", default="", help="e.g. ike=4,enc=4")
    s = sub.add_parser("initiate")
    s.add_argument("dir")
    s.add_argument("--timeout", type=int, default=20)
    s = sub.add_parser("list-sas")
    s.add_argument("dir")
    s = sub.add_parser("swanctl")
    s.add_argument("dir")
    s.add_argument("args", nargs=argparse.REMAINDER)
    s = sub.add_parser("log")
    s.add_argument("dir")
    s.add_argument("--lines", type=int, default=60)
    s = sub.add_parser("stop")
    s.add_argument("dir")
    a = ap.parse_args(argv)

    if a.cmd == "pki":
        Pki(a.dir).generate(a.gw_addr, a.gw_dns)
        print(a.dir)
    elif a.cmd == "start":
        pki = Pki(a.pki)
        c = Charon(a.dir, a.ns)
        if a.role == "client":
            conf = client_swanctl_conf(a.remote, a.auth, a.proposals, user=a.user, password=a.password,
                                       remote_id=a.remote_id, remote_ts=a.remote_ts)
        else:
            conf = responder_swanctl_conf(users={a.user: a.password},
                                          proposals=a.proposals if a.proposals != "windows" else "all")
        c.configure(conf, pki, a.role, _levels(a.levels))
        c.start()
        c.load_all()
        print(f"charon pid {c.pid} in {a.ns}; vici unix://{c.vici}; log {c.log}")
        # Detach: the daemon keeps running after this command exits.
        c.proc = None
    elif a.cmd == "initiate":
        c = Charon(a.dir)
        ok, secs, out = c.initiate(timeout=a.timeout)
        print(out)
        print(f"{'established' if ok else 'FAILED'} in {secs * 1000:.1f} ms")
        return 0 if ok else 1
    elif a.cmd == "list-sas":
        print(json.dumps(Charon(a.dir).list_sas(), indent=2))
    elif a.cmd == "swanctl":
        p = Charon(a.dir).swanctl(*a.args, check=False)
        print(p.stdout, end="")
        return p.returncode
    elif a.cmd == "log":
        print("\n".join(Charon(a.dir).log_lines()[-a.lines:]))
    elif a.cmd == "stop":
        Charon(a.dir).stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
