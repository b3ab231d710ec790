#!/usr/bin/env bash
# Network-namespace topologies for the interop harness (see README.md here).
#
#   netns.sh up <run-id> [--two-paths|--two-nodes] [--nat]
#                                                build a topology, print its facts (KEY=VALUE)
#   netns.sh down <run-id>                       kill what runs in it and delete it (idempotent)
#   netns.sh exec <run-id> <role> <cmd...>       run a command in cli|gw|lan|nat|gw2|lan2
#   netns.sh ns <run-id> <role>                  print a namespace's name
#   netns.sh facts <run-id>                      print the KEY=VALUE facts of a running topology
#   netns.sh path-down|path-up <run-id> a|b      take one client uplink down / bring it back
#   netns.sh nat-rebind <run-id>                 give the NAT's mappings new external ports
#   netns.sh list                                list every harness namespace on this machine
#
# Namespaces are named ivpn-<run-id>-<role>. Veth ends are created directly
# inside the namespaces, so parallel runs never collide on interface names.
#
#   cli ── a0 ─────────── path A 192.0.2.0/24 ──────────── a1 ── gw ── lan1 ── 203.0.113.0/24 ── lan0 ── lan
#       (192.0.2.2)                                         (192.0.2.1)  (203.0.113.1)        (203.0.113.2)
#   cli ── b0 ─────────── path B 198.51.100.0/24 ───────── b1 ── gw          (--two-paths)
#       (198.51.100.2)                                      (198.51.100.1)
#   with --nat, path A goes through a NAT namespace instead:
#   cli ── a0 (100.64.0.2) ── in0 (100.64.0.1) nat out0 (192.0.2.254) ── a1 (192.0.2.1) ── gw
#   with --two-nodes, path B ends at a second gateway node instead, which
#   holds the public address too (anycast, as behind ECMP or a load
#   balancer), reaches the services on gw over a control link, and has a
#   protected network of its own with the same addresses:
#   cli ── b0 ── path B ── b1 (198.51.100.1, lo 192.0.2.1) ── gw2 ── lan1 ── lan0 ── lan2 (203.0.113.2)
#   gw ── c0 (10.255.0.1/30) ──────── control link ──────── c1 (10.255.0.2/30) ── gw2
#
# The gateway's public address is always GW_ADDR=192.0.2.1; the client
# reaches it over path A (metric 50) and, with --two-paths, also over path B
# (metric 100), so taking path A down moves the client's traffic to path B
# while the gateway keeps one address (the VPN Reconnect case). The client has
# no route to 203.0.113.0/24 except through a tunnel.
set -euo pipefail
export PATH="/usr/sbin:/sbin:$PATH"

PREFIX=ivpn
GW_ADDR=192.0.2.1
GW_DNS=gw.vpn.example
CLI_A=192.0.2.2
CLI_B=198.51.100.2
GW_B=198.51.100.1
NAT_IN=100.64.0.1
CLI_A_NAT=100.64.0.2
NAT_OUT=192.0.2.254
GW_CTL=10.255.0.1
GW2_CTL=10.255.0.2
GW_LAN=203.0.113.1
LAN_HOST=203.0.113.2
LAN_NET=203.0.113.0/24
POOL4=10.10.0.0/24

die() { printf 'netns.sh: %s\n' "$*" >&2; exit 1; }

check_run_id() {
  [[ $1 =~ ^[A-Za-z0-9_]{1,24}$ ]] || die "run-id must be 1-24 of [A-Za-z0-9_], got '$1'"
}

nsname() { printf '%s-%s-%s' "$PREFIX" "$1" "$2"; }
nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
ns_exists() { [[ -e /run/netns/$1 ]]; }

sysctl_set() { nsx "$1" sysctl -q -w "$2" >/dev/null; }

# A veth link between two namespaces, addressed and up.
#   veth NS_A DEV_A ADDR_A/LEN NS_B DEV_B ADDR_B/LEN
veth() {
  ip link add "$2" netns "$1" type veth peer name "$5" netns "$4"
  nsx "$1" ip addr add "$3" dev "$2"
  nsx "$4" ip addr add "$6" dev "$5"
  nsx "$1" ip link set "$2" up
  nsx "$4" ip link set "$5" up
}

facts() {
  local run=$1 nat=$2 two=$3 nodes=${4:-0}
  cat <<EOF
RUN_ID=$run
CLI_NS=$(nsname "$run" cli)
GW_NS=$(nsname "$run" gw)
LAN_NS=$(nsname "$run" lan)
NAT_NS=$([[ $nat == 1 ]] && nsname "$run" nat || true)
GW_ADDR=$GW_ADDR
GW_DNS=$GW_DNS
GW_ADDR_B=$([[ $two == 1 ]] && echo "$GW_B" || true)
CLI_ADDR_A=$([[ $nat == 1 ]] && echo "$CLI_A_NAT" || echo "$CLI_A")
CLI_ADDR_B=$([[ $two == 1 ]] && echo "$CLI_B" || true)
CLI_PUBLIC_A=$([[ $nat == 1 ]] && echo "$NAT_OUT" || echo "$CLI_A")
GW_LAN_ADDR=$GW_LAN
LAN_HOST=$LAN_HOST
LAN_NET=$LAN_NET
POOL4=$POOL4
GW2_NS=$([[ $nodes == 1 ]] && nsname "$run" gw2 || true)
LAN2_NS=$([[ $nodes == 1 ]] && nsname "$run" lan2 || true)
GW_CTL_ADDR=$([[ $nodes == 1 ]] && echo "$GW_CTL" || true)
GW2_CTL_ADDR=$([[ $nodes == 1 ]] && echo "$GW2_CTL" || true)
EOF
}

cmd_up() {
  local run="" two=0 nat=0 nodes=0
  for arg in "$@"; do
    case $arg in
      --two-paths) two=1 ;;
      --two-nodes) two=1 nodes=1 ;;
      --nat) nat=1 ;;
      -*) die "unknown option $arg" ;;
      *) [[ -z $run ]] || die "extra argument $arg"; run=$arg ;;
    esac
  done
  [[ -n $run ]] || die "usage: up <run-id> [--two-paths|--two-nodes] [--nat]"
  check_run_id "$run"
  local cli gw lan natns gw2 lan2
  cli=$(nsname "$run" cli) gw=$(nsname "$run" gw) lan=$(nsname "$run" lan) natns=$(nsname "$run" nat)
  gw2=$(nsname "$run" gw2) lan2=$(nsname "$run" lan2)
  for ns in "$cli" "$gw" "$lan" "$natns" "$gw2" "$lan2"; do
    ! ns_exists "$ns" || die "namespace $ns exists already (run '$0 down $run')"
  done
  # A half-built topology is removed again before the error is returned.
  trap 'cmd_down "$run" >/dev/null 2>&1 || true' ERR

  local namespaces=("$cli" "$gw" "$lan")
  ((nat)) && namespaces+=("$natns")
  ((nodes)) && namespaces+=("$gw2" "$lan2")
  for ns in "${namespaces[@]}"; do
    ip netns add "$ns"
    nsx "$ns" ip link set lo up
    sysctl_set "$ns" net.ipv4.conf.all.rp_filter=0
    sysctl_set "$ns" net.ipv4.conf.default.rp_filter=0
    # No router advertisements or DAD delays on the test links.
    sysctl_set "$ns" net.ipv6.conf.all.accept_dad=0
    sysctl_set "$ns" net.ipv6.conf.default.accept_dad=0
  done
  local node
  for node in "$gw" "$gw2"; do
    ns_exists "$node" || continue
    sysctl_set "$node" net.ipv4.ip_forward=1
    sysctl_set "$node" net.ipv6.conf.all.forwarding=1
  done

  # Path A.
  if ((nat)); then
    ip link add a0 netns "$cli" type veth peer name in0 netns "$natns"
    ip link add out0 netns "$natns" type veth peer name a1 netns "$gw"
    nsx "$cli" ip addr add "$CLI_A_NAT/24" dev a0
    nsx "$natns" ip addr add "$NAT_IN/24" dev in0
    nsx "$natns" ip addr add "$NAT_OUT/24" dev out0
    nsx "$gw" ip addr add "$GW_ADDR/24" dev a1
    for dev in in0 out0; do nsx "$natns" ip link set "$dev" up; done
    sysctl_set "$natns" net.ipv4.ip_forward=1
    nsx "$natns" nft -f - <<EOF
table ip ivpn_nat {
  chain post {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "out0" masquerade
  }
}
EOF
    nsx "$cli" ip link set a0 up
    nsx "$gw" ip link set a1 up
    nsx "$cli" ip route add "$GW_ADDR/32" via "$NAT_IN" dev a0 metric 50
  else
    veth "$cli" a0 "$CLI_A/24" "$gw" a1 "$GW_ADDR/24"
    nsx "$cli" ip route add "$GW_ADDR/32" dev a0 metric 50
  fi

  # Path B.
  if ((nodes)); then
    veth "$cli" b0 "$CLI_B/24" "$gw2" b1 "$GW_B/24"
    nsx "$gw2" ip addr add "$GW_ADDR/32" dev lo
    nsx "$cli" ip route add "$GW_ADDR/32" via "$GW_B" dev b0 metric 100
    # The control link: gw2's forwarder reaches etcd and mobility-service on
    # gw; ike-service on gw reaches gw2's forwarder.
    veth "$gw" c0 "$GW_CTL/30" "$gw2" c1 "$GW2_CTL/30"
    # gw2's protected network, with the same addresses as gw's.
    veth "$lan2" lan0 "$LAN_HOST/24" "$gw2" lan1 "$GW_LAN/24"
    nsx "$lan2" ip route add default via "$GW_LAN"
  elif ((two)); then
    veth "$cli" b0 "$CLI_B/24" "$gw" b1 "$GW_B/24"
    nsx "$cli" ip route add "$GW_ADDR/32" via "$GW_B" dev b0 metric 100
  fi

  # Protected network. Replies to virtual IPs (and anything else) go back
  # through the gateway.
  veth "$lan" lan0 "$LAN_HOST/24" "$gw" lan1 "$GW_LAN/24"
  nsx "$lan" ip route add default via "$GW_LAN"

  # Record the options so that 'facts', 'path-up' and 'nat-rebind' can see them.
  mkdir -p "/run/$PREFIX"
  printf 'nat=%s two=%s nodes=%s\n' "$nat" "$two" "$nodes" >"/run/$PREFIX/$run.topology"
  trap - ERR
  facts "$run" "$nat" "$two" "$nodes"
}

topology_opts() {
  local f="/run/$PREFIX/$1.topology"
  [[ -r $f ]] || die "no topology for run $1"
  # shellcheck disable=SC1090
  . <(tr ' ' '\n' <"$f")
}

cmd_down() {
  local run=${1:?usage: down <run-id>}
  check_run_id "$run"
  local role ns pids
  for role in cli gw lan nat gw2 lan2; do
    ns=$(nsname "$run" "$role")
    ns_exists "$ns" || continue
    # Every process in our namespace is one this harness started.
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    if [[ -n $pids ]]; then
      kill -TERM $pids 2>/dev/null || true
      for _ in 1 2 3 4 5 6 7 8 9 10; do
        pids=$(ip netns pids "$ns" 2>/dev/null || true)
        [[ -z $pids ]] && break
        sleep 0.2
      done
      [[ -z $pids ]] || kill -KILL $pids 2>/dev/null || true
    fi
    ip netns del "$ns" 2>/dev/null || true
  done
  rm -f "/run/$PREFIX/$run.topology"
}

cmd_exec() {
  local run=${1:?usage: exec <run-id> <role> <cmd...>} role=${2:?role}
  shift 2
  check_run_id "$run"
  exec ip netns exec "$(nsname "$run" "$role")" "$@"
}

cmd_path() {
  local updown=$1 run=${2:?run-id} path=${3:?path a|b}
  check_run_id "$run"
  local cli nat two
  cli=$(nsname "$run" cli)
  topology_opts "$run"
  case $path in
    a)
      nsx "$cli" ip link set a0 "$updown"
      if [[ $updown == up ]]; then
        # The kernel drops static routes of a link that went down.
        if ((nat)); then
          nsx "$cli" ip route replace "$GW_ADDR/32" via "$NAT_IN" dev a0 metric 50
        else
          nsx "$cli" ip route replace "$GW_ADDR/32" dev a0 metric 50
        fi
      fi ;;
    b)
      ((two)) || die "run $run has no path B (up --two-paths)"
      nsx "$cli" ip link set b0 "$updown"
      [[ $updown == down ]] ||
        nsx "$cli" ip route replace "$GW_ADDR/32" via "$GW_B" dev b0 metric 100 ;;
    *) die "path must be a or b" ;;
  esac
}

cmd_nat_rebind() {
  local run=${1:?run-id}
  check_run_id "$run"
  local nat two
  topology_opts "$run"
  ((nat)) || die "run $run has no NAT (up --nat)"
  local natns
  natns=$(nsname "$run" nat)
  # Alternate between two port ranges, then forget the old mappings.
  local range=20000-29999
  if nsx "$natns" nft list chain ip ivpn_nat post | grep -q 'to :20000-29999'; then
    range=30000-39999
  fi
  nsx "$natns" nft flush chain ip ivpn_nat post
  nsx "$natns" nft add rule ip ivpn_nat post oifname out0 meta l4proto "{ tcp, udp }" masquerade to :"$range"
  nsx "$natns" nft add rule ip ivpn_nat post oifname out0 masquerade
  if command -v conntrack >/dev/null; then
    nsx "$natns" conntrack -F >/dev/null 2>&1 || true
  else
    die "nat-rebind needs the conntrack tool (Debian package conntrack)"
  fi
}

cmd_facts() {
  local run=${1:?run-id} nat two nodes=0
  check_run_id "$run"
  topology_opts "$run"
  facts "$run" "$nat" "$two" "$nodes"
}

cmd_list() {
  ip netns list 2>/dev/null | awk '{print $1}' | grep "^$PREFIX-" || true
}

[[ $(id -u) -eq 0 ]] || die "needs root (network namespaces)"
sub=${1:-}
shift || true
case $sub in
  up) cmd_up "$@" ;;
  down) cmd_down "$@" ;;
  exec) cmd_exec "$@" ;;
  ns) check_run_id "${1:?run-id}"; nsname "$1" "${2:?role}"; echo ;;
  facts) cmd_facts "$@" ;;
  path-down) cmd_path down "$@" ;;
  path-up) cmd_path up "$@" ;;
  nat-rebind) cmd_nat_rebind "$@" ;;
  list) cmd_list ;;
  *) sed -n '2,13p' "$0" >&2; exit 2 ;;
esac
