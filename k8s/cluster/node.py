#!/usr/bin/python3
"""One Kubernetes node, enough to start rendered manifests the way a real
node would, with podman containers (k8s/README.md, "Cluster test").

  node.py run --manifests FILE... --work DIR --node-netns NS --node-addr IP
              [--node-label K=V]... [--port-forward POD:PORT]... [--ready-timeout S]

It plays four parts:
- the kubelet: a Pod per Deployment replica, StatefulSet ordinal and
  DaemonSet (when the node's labels match), each in its own network
  namespace; containers with their command, args and env exactly as
  rendered ($(VAR) expanded, downward API); ConfigMap and Secret volumes
  written as the kubelet writes them (a ..data symlink into a timestamped
  directory, root-owned, defaultMode, group fsGroup and group-readable
  when fsGroup is set); runAsUser/runAsGroup/runAsNonRoot, fsGroup and
  supplementalGroups, capabilities, readOnlyRootFilesystem,
  allowPrivilegeEscalation and memory/CPU limits; probes (grpc, httpGet,
  tcpSocket, exec) from the node with their periods and thresholds; a
  container that exits or fails its liveness probe is restarted with the
  kubelet's back-off (10 s, doubling, at most 5 min);
- kube-proxy: each ClusterIP Service gets an address; nftables sends its
  connections to a random ready endpoint;
- cluster DNS, as a hosts file per pod: Services (headless ones name their
  pods' addresses) and StatefulSet pods under <pod>.<service>, each with the
  namespace's search suffixes spelled out;
- a network plugin that enforces NetworkPolicy with nftables, as Calico
  does by default: ingress and egress of pod-network pods; host-network
  pods are the node (matched only by ipBlock, their own policies not
  enforced), and the node may always reach its own pods (kubelet probes).

Where this differs from a kubelet with containerd, it errs towards refusing:
a capability added for a non-root user is dropped (without file
capabilities it would not survive execve there; podman would make it
ambient), and an object kind it does not simulate fails the run.

It writes WORK/status.json (pods, addresses, readiness, container pids and
log files) whenever something changes, and "ready" in it once every pod is
Ready. SIGTERM stops every container and removes what it created.
"""

import argparse
import base64
import hashlib
import ipaddress
import json
import os
import random
import re
import signal
import socket
import string
import subprocess
import sys
import threading
import time
import urllib.request

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from label_selector import matches  # noqa: E402  (k8s/label_selector.py)
CLUSTER_DOMAIN = "cluster.local"
SIMULATED = {"Namespace", "ConfigMap", "Secret", "Service", "Deployment", "StatefulSet",
             "DaemonSet", "NetworkPolicy"}
# containerd's default capabilities (what "drop: [X]" takes away from).
RUNTIME_DEFAULT_CAPS = ["CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID",
                        "SETUID", "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL",
                        "AUDIT_WRITE"]
BACKOFF_FIRST_S, BACKOFF_MAX_S = 10, 300
DNS_SERVICE_IP = "10.96.0.10"
NODE_LABEL = "io.vpn-gateway.node"  # on every container this starts
# The cluster's own parts this node provides: kube-system with a kube-dns
# Service whose one pod (labelled as CoreDNS's are) is served by node.py.
CLUSTER_OBJECTS = [
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-system"}},
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kube-dns", "namespace": "kube-system"},
     "spec": {"clusterIP": DNS_SERVICE_IP, "selector": {"k8s-app": "kube-dns"},
              "ports": [{"name": "dns", "port": 53, "protocol": "UDP"},
                        {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]}},
]
DNS_POD = {"metadata": {"labels": {"k8s-app": "kube-dns"}}, "spec": {"containers": []}}
CLONE_NEWNET = 0x40000000


class ClusterError(Exception):
    pass


def log(msg):
    print(f"[node] {time.strftime('%H:%M:%S')} {msg}", flush=True)


def run(argv, check=True, **kw):
    p = subprocess.run(argv, capture_output=True, text=True, **kw)
    if check and p.returncode != 0:
        raise ClusterError(f"{' '.join(argv)}: exit {p.returncode}: {p.stderr.strip()}")
    return p


def host_mount_ns():
    """`ip netns exec` gives its command a mount namespace with a /sys of
    its own, without the cgroup mounts runc needs; podman runs in the
    nearest ancestor's mount namespace that is not that one."""
    own = os.readlink("/proc/self/ns/mnt")
    pid = os.getppid()
    while pid > 1:
        try:
            if os.readlink(f"/proc/{pid}/ns/mnt") != own:
                return f"/proc/{pid}/ns/mnt"
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            break
    return None


# Runs a command in that mount namespace (empty when this is it). Network
# namespaces are made there too: a mount made under `ip netns exec` does not
# propagate back, and podman would find an empty /run/netns/NAME.
IN_HOST_MOUNTS = []
PODMAN = ["podman"]


def podman(*args, check=True):
    return run([*PODMAN, *args], check=check)


def expand_vars(text, env):
    """Kubernetes' $(VAR) expansion: defined names are replaced, $$ escapes,
    anything else stays as written."""
    def sub(m):
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)", sub, text)


class Container:
    def __init__(self, pod, spec):
        self.pod = pod
        self.spec = spec
        self.name = spec["name"]
        self.cid = f"k8s_{pod.name}_{self.name}_{pod.node.run_id}"
        self.ready = False
        self.restarts = 0
        self.next_start = 0.0
        self.started_at = 0.0
        self.pid = 0
        self.log_path = os.path.join(pod.dir, f"{self.name}.log")
        self.probe_state = {}  # kind -> [successes, failures, next time]
        self.last_probe_error = ""

    def security(self):
        psc = self.pod.spec.get("securityContext") or {}
        csc = self.spec.get("securityContext") or {}
        return psc, csc, {**{k: psc[k] for k in ("runAsUser", "runAsGroup", "runAsNonRoot") if k in psc},
                          **{k: csc[k] for k in ("runAsUser", "runAsGroup", "runAsNonRoot") if k in csc}}

    def env(self):
        env = {}
        for e in self.spec.get("env") or []:
            if "value" in e:
                env[e["name"]] = expand_vars(str(e["value"]), env)
            elif "valueFrom" in e:
                env[e["name"]] = self.pod.node.env_from(self.pod, e["valueFrom"], e["name"])
            else:
                env[e["name"]] = ""
        return env

    def podman_args(self, image_user):
        node, pod = self.pod.node, self.pod
        psc, csc, ids = self.security()
        user = ids.get("runAsUser", image_user)
        group = ids.get("runAsGroup")
        if ids.get("runAsNonRoot") and (user is None or int(user) == 0):
            raise ClusterError(f"{pod.name}/{self.name}: runAsNonRoot, but the container would run as "
                               f"root (runAsUser {user!r}): the kubelet refuses to start it")
        argv = ["run", "-d", "--name", self.cid, "--label", f"{NODE_LABEL}={node.run_id}", "--pull=never", "--no-hosts", "--dns=none",
                "--network", f"ns:{pod.netns_path}", "--hostname", pod.hostname,
                "--log-driver", "k8s-file", "--log-opt", f"path={self.log_path}",
                "--stop-timeout", str(pod.spec.get("terminationGracePeriodSeconds", 30)),
                "--read-only-tmpfs=false",
                "-v", f"{pod.hosts_file}:/etc/hosts:ro", "-v", f"{pod.resolv_file}:/etc/resolv.conf:ro"]
        if user is not None:
            argv += ["--user", f"{user}:{group if group is not None else (user if int(user) else 0)}"]
        groups = [psc["fsGroup"]] if "fsGroup" in psc else []
        groups += psc.get("supplementalGroups") or []
        for g in groups:
            argv += ["--group-add", str(g)]
        if csc.get("readOnlyRootFilesystem"):
            argv.append("--read-only")
        if csc.get("allowPrivilegeEscalation") is False:
            argv += ["--security-opt", "no-new-privileges"]
        if csc.get("privileged"):
            raise ClusterError(f"{pod.name}/{self.name}: privileged containers are not simulated")
        caps = self.capabilities(csc, user)
        argv += ["--cap-drop", "all"] + [a for c in caps for a in ("--cap-add", c)]
        limits = (self.spec.get("resources") or {}).get("limits") or {}
        if "memory" in limits:
            argv += ["--memory", quantity_bytes(limits["memory"])]
        if "cpu" in limits:
            argv += ["--cpus", str(quantity_cpu(limits["cpu"]))]
        env = self.env()
        for k, v in env.items():
            argv += ["-e", f"{k}={v}"]
        for m in self.spec.get("volumeMounts") or []:
            src = pod.volume_paths.get(m["name"])
            if src is None:
                raise ClusterError(f"{pod.name}/{self.name}: volumeMount {m['name']!r} names no volume")
            if m.get("subPath"):
                src = os.path.join(src, m["subPath"])
            ro = m.get("readOnly") or pod.volume_readonly[m["name"]]
            argv += ["--mount", f"type=bind,src={src},dst={m['mountPath']}" + (",ro=true" if ro else "")]
        command = [expand_vars(a, env) for a in self.spec.get("command") or []]
        args = [expand_vars(a, env) for a in self.spec.get("args") or []]
        if command:
            argv += ["--entrypoint", json.dumps(command)]
        argv.append(self.spec["image"])
        argv += args
        return argv

    def capabilities(self, csc, user):
        caps = csc.get("capabilities") or {}
        drop = {c.upper() for c in caps.get("drop") or []}
        add = [c.upper() for c in caps.get("add") or []]
        base = [] if "ALL" in drop else [c for c in RUNTIME_DEFAULT_CAPS if c not in drop]
        wanted = sorted(set(base) | set(add))
        if user is not None and int(user) != 0:
            if add:
                log(f"{self.pod.name}/{self.name}: capabilities {add} added for UID {user} have no "
                    "effect without file capabilities; dropped")
            return []
        return wanted

    def start(self):
        node = self.pod.node
        podman("rm", "-f", self.cid, check=False)
        image_user = node.image_user(self.spec["image"])
        podman(*self.podman_args(image_user))
        self.started_at = time.monotonic()
        self.pid = int(podman("inspect", "-f", "{{.State.Pid}}", self.cid).stdout.strip() or 0)
        self.ready = False
        self.probe_state = {}
        log(f"{self.pod.name}/{self.name}: started (pid {self.pid}, restarts {self.restarts})")

    def running(self):
        p = podman("inspect", "-f", "{{.State.Running}} {{.State.ExitCode}}", self.cid, check=False)
        if p.returncode != 0:
            return False, None
        state, code = p.stdout.split()
        return state == "true", int(code)

    def stop(self, grace=None):
        podman("stop", "-t", str(grace if grace is not None else
                                 self.pod.spec.get("terminationGracePeriodSeconds", 30)),
               self.cid, check=False)


def quantity_bytes(q):
    m = re.fullmatch(r"(\d+)(Ki|Mi|Gi|k|M|G)?", str(q))
    if not m:
        raise ClusterError(f"memory quantity {q!r} not understood")
    mult = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "k": 10**3, "M": 10**6, "G": 10**9}
    return str(int(m.group(1)) * mult.get(m.group(2), 1))


def quantity_cpu(q):
    q = str(q)
    return int(q[:-1]) / 1000 if q.endswith("m") else float(q)


class Pod:
    def __init__(self, node, name, namespace, template, owner, ordinal, hostname=None, subdomain=None):
        self.node = node
        self.name = name
        self.namespace = namespace
        self.meta = template.get("metadata") or {}
        self.labels = dict(self.meta.get("labels") or {})
        self.spec = template["spec"]
        self.owner = owner
        self.ordinal = ordinal
        self.host_network = bool(self.spec.get("hostNetwork"))
        self.hostname = hostname or name
        self.subdomain = subdomain
        self.dir = os.path.join(node.work, "pods", name)
        self.hosts_file = os.path.join(self.dir, "hosts")
        self.resolv_file = os.path.join(self.dir, "resolv.conf")
        self.volume_paths, self.volume_readonly = {}, {}
        self.ip = None
        self.netns = None
        self.containers = [Container(self, c) for c in self.spec["containers"]]
        if self.spec.get("initContainers"):
            raise ClusterError(f"{name}: initContainers are not simulated")

    @property
    def netns_path(self):
        return f"/run/netns/{self.node.node_netns if self.host_network else self.netns}"

    def ready(self):
        return all(c.ready for c in self.containers)


class Node:
    def __init__(self, args):
        self.args = args
        self.work = os.path.abspath(args.work)
        self.run_id = hashlib.sha256(self.work.encode()).hexdigest()[:8]
        self.node_netns = args.node_netns
        self.node_addr = args.node_addr
        self.node_labels = dict(kv.split("=", 1) for kv in args.node_label)
        self.node_name = args.node_name
        self.pod_net = ipaddress.ip_network(args.pod_cidr)
        self.svc_net = ipaddress.ip_network(args.service_cidr)
        self.objects = []
        self.pods = []
        self.services = {}  # (ns, name) -> {"obj", "ip", "ports"}
        self.namespaces = {}
        self.netns_made = []
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.ready_logged = False
        self.images = {}
        self.forwarders = []

    # ---- objects
    def load(self, paths):
        for path in paths:
            with open(path) as f:
                self.objects += [o for o in yaml.safe_load_all(f) if o]
        self.objects += CLUSTER_OBJECTS
        kinds = {o["kind"] for o in self.objects} - SIMULATED
        if kinds:
            raise ClusterError(f"kinds this node does not simulate: {sorted(kinds)}")
        for o in self.objects:
            if o["kind"] == "Namespace":
                name = o["metadata"]["name"]
                self.namespaces[name] = {**(o["metadata"].get("labels") or {}),
                                         "kubernetes.io/metadata.name": name}
        for o in self.objects:
            ns = o["metadata"].get("namespace", "default")
            if o["kind"] != "Namespace" and ns not in self.namespaces:
                self.namespaces[ns] = {"kubernetes.io/metadata.name": ns}

    def find(self, kind, ns, name):
        for o in self.objects:
            if o["kind"] == kind and o["metadata"]["name"] == name and \
                    o["metadata"].get("namespace", "default") == ns:
                return o
        return None

    def env_from(self, pod, value_from, var):
        if "fieldRef" in value_from:
            path = value_from["fieldRef"]["fieldPath"]
            fields = {"metadata.name": pod.name, "metadata.namespace": pod.namespace,
                      "status.podIP": pod.ip, "status.hostIP": self.node_addr,
                      "spec.nodeName": self.node_name}
            if path not in fields:
                raise ClusterError(f"{pod.name}: env {var}: fieldRef {path} not simulated")
            return fields[path]
        for kind, key in (("Secret", "secretKeyRef"), ("ConfigMap", "configMapKeyRef")):
            if key in value_from:
                ref = value_from[key]
                obj = self.find(kind, pod.namespace, ref["name"])
                data = self.object_data(obj) if obj else {}
                if ref["key"] not in data:
                    if ref.get("optional"):
                        return ""
                    raise ClusterError(f"{pod.name}: env {var}: {kind} {ref['name']} has no key {ref['key']}")
                return data[ref["key"]].decode()
        raise ClusterError(f"{pod.name}: env {var}: valueFrom {list(value_from)} not simulated")

    @staticmethod
    def object_data(obj):
        out = {}
        for k, v in (obj.get("data") or {}).items():
            out[k] = base64.b64decode(v) if obj["kind"] == "Secret" else v.encode()
        for k, v in (obj.get("stringData") or {}).items():
            out[k] = v.encode()
        for k, v in (obj.get("binaryData") or {}).items():
            out[k] = base64.b64decode(v)
        return out

    def image_user(self, image):
        if image not in self.images:
            p = podman("image", "inspect", "-f", "{{.Config.User}}", image, check=False)
            if p.returncode != 0:
                raise ClusterError(f"image {image} not found: build it with k8s/images/build.sh")
            user = p.stdout.strip().split(":")[0]
            self.images[image] = int(user) if user.isdigit() else (0 if user in ("", "root") else None)
        return self.images[image]

    # ---- pods
    def make_pods(self):
        for o in self.objects:
            kind, meta = o["kind"], o["metadata"]
            ns = meta.get("namespace", "default")
            tpl = (o.get("spec") or {}).get("template")
            if kind == "Deployment":
                h = hashlib.sha256(json.dumps(tpl, sort_keys=True).encode()).hexdigest()[:10]
                for i in range(o["spec"].get("replicas", 1)):
                    rnd = "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(5))
                    self.pods.append(Pod(self, f"{meta['name']}-{h}-{rnd}", ns, tpl, meta["name"], i))
            elif kind == "StatefulSet":
                svc = o["spec"].get("serviceName")
                for i in range(o["spec"].get("replicas", 1)):
                    name = f"{meta['name']}-{i}"
                    pod = Pod(self, name, ns, tpl, meta["name"], i, hostname=name, subdomain=svc)
                    pod.claims = {c["metadata"]["name"] for c in o["spec"].get("volumeClaimTemplates") or []}
                    self.pods.append(pod)
            elif kind == "DaemonSet":
                sel = (tpl["spec"].get("nodeSelector") or {})
                if all(self.node_labels.get(k) == v for k, v in sel.items()):
                    rnd = "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(5))
                    self.pods.append(Pod(self, f"{meta['name']}-{rnd}", ns, tpl, meta["name"], 0))
                else:
                    log(f"DaemonSet {meta['name']}: node selector {sel} does not match this node")
        self.dns_pod = Pod(self, "coredns", "kube-system", DNS_POD, "coredns", 0)
        self.pods.append(self.dns_pod)
        for spec in self.args.probe_pod:
            # NAME:NAMESPACE[:K=V,...]: a pod with no containers, only an
            # address and labels, to connect from (check-reach).
            name, ns, *rest = spec.split(":")
            labels = dict(kv.split("=", 1) for kv in rest[0].split(",")) if rest and rest[0] else {}
            self.namespaces.setdefault(ns, {"kubernetes.io/metadata.name": ns})
            self.pods.append(Pod(self, name, ns, {"metadata": {"labels": labels}, "spec": {"containers": []}},
                                 name, 0))
        hosts = list(self.pod_net.hosts())[1:]
        for i, pod in enumerate(self.pods):
            os.makedirs(pod.dir, exist_ok=True)
            if pod.host_network:
                pod.ip = self.node_addr
                pod.hostname = self.node_name
            else:
                pod.ip = str(hosts[i])

    def plumb(self, pod, index):
        """The pod's network namespace: a veth to the node, a /32 address and
        a default route through the node (169.254.1.1 on the node's end, as
        Calico does)."""
        pod.netns = f"k8s-{self.run_id}-{index}"
        run([*IN_HOST_MOUNTS, "ip", "netns", "add", pod.netns])
        self.netns_made.append(pod.netns)
        node_if, pod_if = f"kv{self.run_id[:4]}{index}", "eth0"
        pod.node_if = node_if
        run(["ip", "link", "add", node_if, "type", "veth", "peer", "name", pod_if, "netns", pod.netns])
        run(["ip", "addr", "add", "169.254.1.1/32", "dev", node_if, "scope", "link"])
        run(["ip", "link", "set", node_if, "up"])
        run(["ip", "route", "add", f"{pod.ip}/32", "dev", node_if, "src", self.node_addr])
        nsx = ["ip", "netns", "exec", pod.netns]
        run(nsx + ["ip", "link", "set", "lo", "up"])
        run(nsx + ["ip", "addr", "add", f"{pod.ip}/32", "dev", pod_if])
        run(nsx + ["ip", "link", "set", pod_if, "up"])
        run(nsx + ["ip", "route", "add", "169.254.1.1", "dev", pod_if, "scope", "link"])
        run(nsx + ["ip", "route", "add", "default", "via", "169.254.1.1", "dev", pod_if])

    def write_volumes(self, pod):
        psc = pod.spec.get("securityContext") or {}
        fs_group = psc.get("fsGroup")
        for v in pod.spec.get("volumes") or []:
            path = os.path.join(pod.dir, "volumes", v["name"])
            pod.volume_readonly[v["name"]] = False
            if "configMap" in v or "secret" in v:
                kind = "ConfigMap" if "configMap" in v else "Secret"
                src = v.get("configMap") or v.get("secret")
                ref = src.get("name") or src.get("secretName")
                obj = self.find(kind, pod.namespace, ref)
                if obj is None:
                    if src.get("optional"):
                        obj = {"kind": kind}
                    else:
                        raise ClusterError(f"{pod.name}: volume {v['name']}: {kind} {ref} does not exist "
                                           "(the pod would stay ContainerCreating)")
                data = self.object_data(obj)
                items = src.get("items")
                if items:
                    data = {i["path"]: data[i["key"]] for i in items}
                self.atomic_write(path, data, src.get("defaultMode", 0o644), fs_group)
                pod.volume_readonly[v["name"]] = True  # kubelet mounts these read-only
            elif "emptyDir" in v:
                os.makedirs(path, exist_ok=True)
                os.chmod(path, 0o777)
                if fs_group is not None:
                    os.chown(path, 0, fs_group)
                    os.chmod(path, 0o2777)
            elif "hostPath" in v:
                hp = v["hostPath"]
                want = hp.get("type", "")
                if want == "CharDevice" and not os.path.exists(hp["path"]):
                    raise ClusterError(f"{pod.name}: hostPath {hp['path']} is not a character device")
                path = hp["path"]
            else:
                raise ClusterError(f"{pod.name}: volume {v['name']}: type {sorted(v)} not simulated")
            pod.volume_paths[v["name"]] = path
        for claim in getattr(pod, "claims", ()):
            # A freshly provisioned volume: root's, made group-writable for fsGroup.
            path = os.path.join(pod.dir, "volumes", f"claim-{claim}")
            os.makedirs(path, exist_ok=True)
            os.chmod(path, 0o755)
            if fs_group is not None:
                os.chown(path, 0, fs_group)
                os.chmod(path, 0o2775)
            pod.volume_paths[claim] = path
            pod.volume_readonly[claim] = False

    @staticmethod
    def atomic_write(path, data, mode, fs_group):
        """The kubelet's atomic writer: files in ..<timestamp>/, a ..data
        symlink to it, and one symlink per key through ..data. With fsGroup,
        files are group fsGroup and group-readable (mode | 0440); the
        directory is setgid."""
        os.makedirs(path, exist_ok=True)
        stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.") + str(random.randint(10**8, 10**9))
        real = os.path.join(path, stamp)
        os.makedirs(real)
        os.chmod(real, 0o755)
        for key, content in data.items():
            target = os.path.join(real, key)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as f:
                f.write(content)
            file_mode = mode
            if fs_group is not None:
                os.chown(target, 0, fs_group)
                file_mode |= 0o440
            os.chmod(target, file_mode)
        os.symlink(stamp, os.path.join(path, "..data"))
        for key in {k.split("/")[0] for k in data}:
            os.symlink(os.path.join("..data", key), os.path.join(path, key))
        os.chmod(path, 0o1777 if fs_group is None else 0o3777)
        if fs_group is not None:
            os.chown(path, 0, fs_group)

    # ---- services and names
    def make_services(self):
        ips = iter(list(self.svc_net.hosts())[19:])  # .20 upward; kube-dns is .10
        for o in self.objects:
            if o["kind"] != "Service":
                continue
            ns, name = o["metadata"].get("namespace", "default"), o["metadata"]["name"]
            fixed = o["spec"].get("clusterIP")
            ip = None if fixed == "None" else (fixed or str(next(ips)))
            self.services[(ns, name)] = {"obj": o, "ip": ip}

    def endpoints(self, ns, svc, ready_only=True):
        sel = svc["obj"]["spec"].get("selector")
        return [p for p in self.pods if p.namespace == ns and sel and matches({"matchLabels": sel},
                                                                                        p.labels)
                and (p.ready() or not ready_only)]

    @staticmethod
    def target_port(pod, port):
        tp = port.get("targetPort", port["port"])
        if isinstance(tp, int):
            return tp
        for c in pod.spec["containers"]:
            for cp in c.get("ports") or []:
                if cp.get("name") == tp:
                    return cp["containerPort"]
        raise ClusterError(f"{pod.name}: Service targetPort {tp!r} names no container port")

    def write_pod_files(self):
        """/etc/hosts and /etc/resolv.conf as the kubelet writes them for
        dnsPolicy ClusterFirst (and ClusterFirstWithHostNet)."""
        for pod in self.pods:
            with open(pod.hosts_file, "w") as f:
                f.write(f"127.0.0.1\tlocalhost\n::1\tlocalhost\n{pod.ip}\t{pod.hostname}\n")
            with open(pod.resolv_file, "w") as f:
                f.write(f"search {pod.namespace}.svc.{CLUSTER_DOMAIN} svc.{CLUSTER_DOMAIN} {CLUSTER_DOMAIN}\n"
                        f"nameserver {DNS_SERVICE_IP}\noptions ndots:5\n")
            for path in (pod.hosts_file, pod.resolv_file):
                os.chmod(path, 0o644)

    def dns_answer(self, name):
        """Cluster DNS: (known, [IPv4 addresses]) for a fully qualified name."""
        name = name.rstrip(".").lower()
        suffix = f".svc.{CLUSTER_DOMAIN}"
        if not name.endswith(suffix):
            return False, []
        parts = name[:-len(suffix)].split(".")
        if len(parts) == 2:
            svc = self.services.get((parts[1], parts[0]))
            if not svc:
                return False, []
            if svc["ip"]:
                return True, [svc["ip"]]
            ready_only = not svc["obj"]["spec"].get("publishNotReadyAddresses")
            return True, [p.ip for p in self.endpoints(parts[1], svc, ready_only)]
        if len(parts) == 3:
            host, sub, ns = parts
            svc = self.services.get((ns, sub))
            if not svc:
                return False, []
            ready_only = not svc["obj"]["spec"].get("publishNotReadyAddresses")
            ips = [p.ip for p in self.endpoints(ns, svc, ready_only) if p.hostname == host and p.subdomain == sub]
            return bool(ips), ips
        return False, []

    def start_dns(self):
        """The kube-dns pod's server: a thread that moves itself into the
        pod's network namespace and answers A queries from dns_answer()
        (AAAA and the rest: no data; names outside the cluster: NXDOMAIN)."""
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        ready = threading.Event()
        failure = []

        def serve():
            try:
                fd = os.open(f"/run/netns/{self.dns_pod.netns}", os.O_RDONLY)
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns")
                os.close(fd)
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sock.bind(("0.0.0.0", 53))
            except OSError as e:
                failure.append(e)
                ready.set()
                return
            ready.set()
            while not self.stopping.is_set():
                sock.settimeout(0.5)
                try:
                    query, peer = sock.recvfrom(512)
                except socket.timeout:
                    continue
                reply = dns_reply(query, self.dns_answer)
                if reply:
                    sock.sendto(reply, peer)
        threading.Thread(target=serve, daemon=True).start()
        ready.wait(5)
        if failure:
            raise ClusterError(f"cluster DNS: {failure[0]}")

    def nft(self, text):
        run(["nft", "-f", "-"], input=text)

    def sync_services(self):
        """kube-proxy: a connection to a ClusterIP goes to a random ready
        endpoint (one chain per endpoint, as its nftables mode does)."""
        rules, chains = [], []
        for (ns, name), svc in sorted(self.services.items()):
            if not svc["ip"]:
                continue
            eps = self.endpoints(ns, svc)
            for port in svc["obj"]["spec"]["ports"]:
                proto = port.get("protocol", "TCP").lower()
                if not eps:
                    continue
                targets = []
                for i, p in enumerate(eps):
                    chain = f"ep_{name}_{port['port']}_{i}".replace("-", "_")
                    chains.append(f"  chain {chain} {{\n    meta l4proto {proto} dnat to {p.ip}:{self.target_port(p, port)}\n  }}")
                    targets.append(f"{i} : jump {chain}")
                rules.append(f"    ip daddr {svc['ip']} {proto} dport {port['port']} "
                             f"numgen random mod {len(eps)} vmap {{ {', '.join(targets)} }}")
        text = (f"table ip k8s_svc_{self.run_id}\ndelete table ip k8s_svc_{self.run_id}\n"
                f"table ip k8s_svc_{self.run_id} {{\n"
                "  chain pre {\n    type nat hook prerouting priority dstnat; policy accept;\n"
                "    jump services\n  }\n"
                "  chain out {\n    type nat hook output priority -100; policy accept;\n"
                "    jump services\n  }\n"
                "  chain services {\n" + "\n".join(rules) + "\n  }\n" + "\n".join(chains) + "\n}\n")
        self.nft(text)

    # ---- network policy
    def peers(self, policy, peer):
        """Addresses (CIDRs) a NetworkPolicy peer stands for."""
        ns = policy["metadata"].get("namespace", "default")
        if "ipBlock" in peer:
            block = peer["ipBlock"]
            nets = [ipaddress.ip_network(block["cidr"])]
            for ex in block.get("except") or []:
                ex = ipaddress.ip_network(ex)
                nets = [s for n in nets for s in (n.address_exclude(ex) if ex.subnet_of(n) else [n])]
            return [str(n) for n in nets]
        if "namespaceSelector" in peer:
            namespaces = {n for n, labels in self.namespaces.items()
                          if matches(peer["namespaceSelector"], labels)}
        else:
            namespaces = {ns}
        pod_sel = peer.get("podSelector", {})
        # Host-network pods are the node: a podSelector does not find them.
        return [f"{p.ip}/32" for p in self.pods if p.namespace in namespaces and not p.host_network
                and matches(pod_sel, p.labels)]

    def port_matches(self, pod, ports):
        """nft fragments for a rule's ports on `pod` (named ports resolved)."""
        if not ports:
            return [""]
        out = []
        for port in ports:
            proto = port.get("protocol", "TCP").lower()
            if "port" not in port:
                out.append(f"meta l4proto {proto}")
                continue
            number = port["port"]
            if not isinstance(number, int):
                number = self.target_port(pod, {"port": 0, "targetPort": number})
            end = port.get("endPort")
            out.append(f"meta l4proto {proto} th dport {number}" + (f"-{end}" if end else ""))
        return out

    def sync_policies(self):
        """Calico-style enforcement: a pod selected by a policy of a type
        accepts (Ingress) or opens (Egress) only what some such policy lists."""
        policies = [o for o in self.objects if o["kind"] == "NetworkPolicy"]
        forward, inp, chains = [], [], []
        for idx, pod in enumerate(self.pods):
            if pod.host_network:
                continue
            for direction in ("Ingress", "Egress"):
                selecting = [pol for pol in policies
                             if pol["metadata"].get("namespace", "default") == pod.namespace
                             and matches(pol["spec"].get("podSelector", {}), pod.labels)
                             and direction in pol["spec"].get("policyTypes", ["Ingress"])]
                if not selecting:
                    continue
                chain = f"{direction.lower()}_{idx}"
                body = []
                for pol in selecting:
                    for rule in pol["spec"].get(direction.lower()) or []:
                        peers_key = "from" if direction == "Ingress" else "to"
                        peer_list = rule.get(peers_key)
                        cidrs = None if not peer_list else sorted({c for p in peer_list
                                                                   for c in self.peers(pol, p)})
                        if cidrs == []:
                            continue
                        addr = "saddr" if direction == "Ingress" else "daddr"
                        match = f"ip {addr} {{ {', '.join(cidrs)} }} " if cidrs else ""
                        # Egress ports are the destination's; a named one resolves on any pod.
                        port_pod = pod
                        for frag in self.port_matches(port_pod, rule.get("ports")):
                            body.append(f"    {match}{frag} return  # {pol['metadata']['name']}")
                body.append(f'    counter log prefix "k8s-policy {direction.lower()} {pod.name[:20]} " drop')
                chains.append(f"  chain {chain} {{\n" + "\n".join(body) + "\n  }")
                if direction == "Ingress":
                    forward.append(f"    ip daddr {pod.ip} jump {chain}")
                else:
                    forward.insert(0, f"    ip saddr {pod.ip} jump {chain}")
                    inp.append(f"    ip saddr {pod.ip} jump {chain}")
        t = f"k8s_policy_{self.run_id}"
        text = (f"table inet {t}\ndelete table inet {t}\ntable inet {t} {{\n"
                "  chain forward {\n    type filter hook forward priority filter; policy accept;\n"
                "    ct state established,related accept\n" + "\n".join(forward) + "\n  }\n"
                "  chain input {\n    type filter hook input priority filter; policy accept;\n"
                "    ct state established,related accept\n" + "\n".join(inp) + "\n  }\n"
                + "\n".join(chains) + "\n}\n")
        with open(os.path.join(self.work, "policies.nft"), "w") as f:
            f.write(text)
        self.nft(text)

    # ---- probes
    def probe(self, pod, container, spec):
        timeout = spec.get("timeoutSeconds", 1)
        try:
            if "grpc" in spec:
                return grpc_health(pod.ip, spec["grpc"]["port"], spec["grpc"].get("service", ""), timeout)
            if "httpGet" in spec:
                h = spec["httpGet"]
                port = h["port"] if isinstance(h["port"], int) else self.target_port(
                    pod, {"port": 0, "targetPort": h["port"]})
                url = f"{h.get('scheme', 'HTTP').lower()}://{pod.ip}:{port}{h.get('path', '/')}"
                with urllib.request.urlopen(url, timeout=timeout) as r:
                    return 200 <= r.status < 400, f"HTTP {r.status}"
            if "tcpSocket" in spec:
                with socket.create_connection((pod.ip, spec["tcpSocket"]["port"]), timeout=timeout):
                    return True, "connected"
            if "exec" in spec:
                p = podman("exec", container.cid, *spec["exec"]["command"], check=False)
                return p.returncode == 0, f"exit {p.returncode}"
        except Exception as e:  # noqa: BLE001 - any failure is a failed probe
            return False, f"{type(e).__name__}: {e}"
        raise ClusterError(f"{pod.name}/{container.name}: probe {sorted(spec)} not simulated")

    def tick_probes(self, pod, c, now):
        changed = False
        for kind in ("readinessProbe", "livenessProbe"):
            spec = c.spec.get(kind)
            if not spec:
                if kind == "readinessProbe" and not c.ready:
                    c.ready, changed = True, True
                continue
            st = c.probe_state.setdefault(kind, [0, 0, c.started_at + spec.get("initialDelaySeconds", 0)])
            if now < st[2]:
                continue
            st[2] = now + spec.get("periodSeconds", 10)
            ok, detail = self.probe(pod, c, spec)
            if ok:
                st[0], st[1] = st[0] + 1, 0
            else:
                st[0], st[1] = 0, st[1] + 1
                c.last_probe_error = f"{kind}: {detail}"
            if kind == "readinessProbe":
                was = c.ready
                if ok and st[0] >= spec.get("successThreshold", 1):
                    c.ready = True
                elif not ok and st[1] >= spec.get("failureThreshold", 3):
                    c.ready = False
                if was != c.ready:
                    changed = True
                    log(f"{pod.name}/{c.name}: {'Ready' if c.ready else 'not Ready'} ({detail})")
            elif not ok and st[1] >= spec.get("failureThreshold", 3):
                log(f"{pod.name}/{c.name}: liveness probe failed {st[1]} times ({detail}): killing it")
                c.stop(pod.spec.get("terminationGracePeriodSeconds", 30))
        return changed

    # ---- life cycle
    def up(self):
        os.makedirs(self.work, exist_ok=True)
        run(["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])
        self.make_pods()
        self.make_services()
        for i, pod in enumerate(self.pods):
            if not pod.host_network:
                self.plumb(pod, i)
            self.write_volumes(pod)
        # The node's own connections to a ClusterIP need a route before
        # kube-proxy's DNAT picks the endpoint (any device will do).
        run(["ip", "route", "replace", str(self.svc_net), "dev", self.dns_pod.node_if])
        self.write_pod_files()
        self.start_dns()
        self.sync_policies()
        self.sync_services()
        for p in self.args.port_forward:
            self.port_forward(p)
        for pod in self.pods:
            for c in pod.containers:
                c.start()
        self.write_status()

    def loop(self):
        deadline = time.monotonic() + self.args.ready_timeout
        last_progress = 0
        while not self.stopping.is_set():
            now = time.monotonic()
            changed = False
            for pod in self.pods:
                for c in pod.containers:
                    if self.stopping.is_set():
                        return
                    running, code = c.running()
                    if not running:
                        if c.next_start == 0:
                            delay = min(BACKOFF_FIRST_S * (2 ** c.restarts), BACKOFF_MAX_S)
                            c.next_start = now + delay
                            c.ready = False
                            changed = True
                            c.last_probe_error = f"exited with {code}: {tail(c.log_path, 1)}"
                            log(f"{pod.name}/{c.name}: exited with {code}; restarting in {delay} s "
                                f"(last lines: {tail(c.log_path, 3)})")
                        elif now >= c.next_start:
                            c.restarts += 1
                            c.next_start = 0
                            c.start()
                            changed = True
                        continue
                    changed |= self.tick_probes(pod, c, now)
            if changed:
                self.sync_services()
                self.write_status()
            all_ready = all(p.ready() for p in self.pods)
            if all_ready and not self.ready_logged:
                self.ready_logged = True
                log(f"all {len(self.pods)} pods Ready")
                self.write_status()
            elif not self.ready_logged:
                if now > deadline:
                    raise ClusterError("pods not Ready in time: " + self.not_ready())
                if now - last_progress >= 5:
                    last_progress = now
                    log("waiting for " + self.not_ready())
            self.stopping.wait(0.2)

    def not_ready(self):
        return "; ".join(
            f"{p.name} ({', '.join((c.last_probe_error or 'starting') + (f', {c.restarts} restarts' if c.restarts else '') for c in p.containers if not c.ready)})"
            for p in self.pods if not p.ready())

    def write_status(self):
        status = {"ready": self.ready_logged, "node_addr": self.node_addr, "pods": [
            {"name": p.name, "owner": p.owner, "ordinal": p.ordinal, "namespace": p.namespace,
             "ip": p.ip, "netns": p.netns, "ready": p.ready(), "host_network": p.host_network,
             "containers": [{"name": c.name, "id": c.cid, "pid": c.pid, "restarts": c.restarts,
                             "log": c.log_path, "ready": c.ready} for c in p.containers]}
            for p in self.pods],
            "services": {f"{ns}/{n}": s["ip"] for (ns, n), s in self.services.items()}}
        tmp = os.path.join(self.work, "status.json.tmp")
        with open(tmp, "w") as f:
            json.dump(status, f, indent=1)
        os.replace(tmp, os.path.join(self.work, "status.json"))

    def port_forward(self, spec):
        """kubectl port-forward POD PORT: 127.0.0.1:PORT on the node relays
        to the pod's PORT."""
        name, port = spec.rsplit(":", 1)
        pod = next((p for p in self.pods if p.name == name), None)
        if pod is None:
            raise ClusterError(f"port-forward: no pod {name}")
        lsock = socket.create_server(("127.0.0.1", int(port)), reuse_port=False)
        self.forwarders.append(lsock)

        def pump(a, b):
            try:
                while data := a.recv(65536):
                    b.sendall(data)
            except OSError:
                pass
            finally:
                for s in (a, b):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        def accept():
            while True:
                try:
                    conn, _ = lsock.accept()
                except OSError:
                    return
                try:
                    up = socket.create_connection((pod.ip, int(port)), timeout=5)
                    up.settimeout(None)
                except OSError:
                    conn.close()
                    continue
                for a, b in ((conn, up), (up, conn)):
                    threading.Thread(target=pump, args=(a, b), daemon=True).start()
        threading.Thread(target=accept, daemon=True).start()

    def down(self):
        self.stopping.set()
        for s in self.forwarders:
            s.close()
        # All at once, briefly: the harness waits 5 s before SIGKILL.
        ids = [c.cid for pod in self.pods for c in pod.containers]
        if ids:
            podman("rm", "-f", "-t", "2", *ids, check=False)
        for t in (f"inet k8s_policy_{self.run_id}", f"ip k8s_svc_{self.run_id}"):
            run(["nft", "delete", "table", *t.split()], check=False)
        for ns in self.netns_made:
            run([*IN_HOST_MOUNTS, "ip", "netns", "delete", ns], check=False)


def check_reach(work, table):
    """Each line of TABLE: FROM TO PORT open|closed, where FROM and TO are a
    pod's owner (Deployment, StatefulSet, probe pod); the connection is
    made from FROM's network namespace to TO's first pod."""
    with open(os.path.join(work, "status.json")) as f:
        pods = json.load(f)["pods"]
    by_owner = {}
    for p in pods:
        by_owner.setdefault(p["owner"], p)
    rows = []
    with open(table) as f:
        for n, line in enumerate(f, 1):
            line = line.split("#", 1)[0].split()
            if not line:
                continue
            if len(line) != 4 or line[3] not in ("open", "closed") or line[0] not in by_owner \
                    or line[1] not in by_owner:
                print(f"{table}:{n}: want FROM TO PORT open|closed with known pods: {' '.join(line)}")
                return 2
            rows.append(line)
    code = ("import socket,sys\ntry:\n socket.create_connection((sys.argv[1],int(sys.argv[2])),timeout=1)"
            "\n print('open')\nexcept OSError:\n print('closed')")

    def attempt(row):
        src, dst, port, _ = row
        ns = by_owner[src]["netns"]
        argv = (["ip", "netns", "exec", ns] if ns else []) + ["/usr/bin/python3", "-c", code,
                                                             by_owner[dst]["ip"], port]
        row.append(subprocess.run(argv, capture_output=True, text=True).stdout.strip())
    threads = [threading.Thread(target=attempt, args=(r,)) for r in rows]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bad = [r for r in rows if r[3] != r[4]]
    for r in rows:
        print(f"{'ok ' if r[3] == r[4] else 'BAD'} {r[0]} -> {r[1]}:{r[2]} {r[4]} (want {r[3]})")
    return 1 if bad else 0


def tail(path, n):
    try:
        with open(path, errors="replace") as f:
            return " | ".join(line.rstrip()[-300:] for line in f.readlines()[-n:])
    except OSError:
        return "(no log)"


def dns_reply(query, answer):
    """A DNS response to a one-question query (RFC 1035 4.1), or None for
    anything malformed."""
    if len(query) < 12 or int.from_bytes(query[4:6], "big") != 1:
        return None
    labels, i = [], 12
    while True:
        if i >= len(query):
            return None
        n = query[i]
        if n == 0 or n & 0xC0:
            break
        labels.append(query[i + 1:i + 1 + n].decode("ascii", "replace"))
        i += 1 + n
    if n != 0 or i + 5 > len(query):
        return None
    qtype = int.from_bytes(query[i + 1:i + 3], "big")
    question = query[12:i + 5]
    known, ips = answer(".".join(labels))
    ips = ips if qtype == 1 else []
    rcode = 0 if known else 3
    flags = 0x8400 | (int.from_bytes(query[2:4], "big") & 0x0100) | 0x0080 | rcode
    head = query[0:2] + flags.to_bytes(2, "big") + b"\x00\x01" + len(ips).to_bytes(2, "big") + b"\x00\x00\x00\x00"
    body = b"".join(b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x05\x00\x04" + socket.inet_aton(ip) for ip in ips)
    return head + question + body


def grpc_health(ip, port, service, timeout):
    """The kubelet's gRPC probe: grpc.health.v1.Health/Check in plaintext."""
    import grpc  # Debian's python3-grpcio
    req = (b"\x0a" + bytes([len(service)]) + service.encode()) if service else b""
    with grpc.insecure_channel(f"{ip}:{port}") as ch:
        resp = ch.unary_unary("/grpc.health.v1.Health/Check", request_serializer=None,
                              response_deserializer=None)(req, timeout=timeout)
    return resp == b"\x08\x01", "SERVING" if resp == b"\x08\x01" else f"status bytes {resp.hex()}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--manifests", nargs="+", required=True)
    r.add_argument("--work", required=True)
    r.add_argument("--node-netns", required=True, help="the namespace this runs in: the node's")
    r.add_argument("--node-addr", required=True)
    r.add_argument("--node-name", default="node-0")
    r.add_argument("--node-label", action="append", default=[])
    r.add_argument("--pod-cidr", default="10.244.0.0/24")
    r.add_argument("--service-cidr", default="10.96.0.0/24")
    r.add_argument("--port-forward", action="append", default=[], metavar="POD:PORT")
    r.add_argument("--ready-timeout", type=float, default=90)
    r.add_argument("--probe-pod", action="append", default=[], metavar="NAME:NAMESPACE[:K=V,...]")
    c = sub.add_parser("check-reach", help="TCP connections between pods against a table")
    c.add_argument("--work", required=True)
    c.add_argument("--table", required=True)
    args = ap.parse_args()
    if args.cmd == "check-reach":
        return check_reach(args.work, args.table)
    if os.geteuid() != 0:
        print("node.py: run as root", file=sys.stderr)
        return 2
    mnt = host_mount_ns()
    if mnt:
        # Held open: the ancestor may exit before this does.
        fd = os.open(mnt, os.O_RDONLY)
        IN_HOST_MOUNTS[:] = ["nsenter", f"--mount=/proc/{os.getpid()}/fd/{fd}", "--"]
        PODMAN[:0] = IN_HOST_MOUNTS
    node = Node(args)
    signal.signal(signal.SIGTERM, lambda *_: node.stopping.set())
    signal.signal(signal.SIGINT, lambda *_: node.stopping.set())
    code = 0
    try:
        node.load(args.manifests)
        node.up()
        node.loop()
    except ClusterError as e:
        log(f"FAILED: {e}")
        code = 1
    finally:
        node.down()
    return code


if __name__ == "__main__":
    sys.exit(main())
