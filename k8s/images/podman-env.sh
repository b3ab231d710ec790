# Sourced by build.sh and the cluster test: podman 4.3 on Debian 12 as these
# tools run it. crun refuses the hybrid cgroup layout, so runc; no systemd in
# a container host here, so cgroupfs and a file event log; default ulimits
# must not exceed the caller's hard limits or runc fails to set them.
podman_env() {
  local dir=${VPN_PODMAN_STATE:-/run/vpn-gateway-podman}
  mkdir -p "$dir"
  local nofile nproc
  nofile=$(ulimit -Hn); nproc=$(ulimit -Hu)
  [[ $nofile == unlimited ]] && nofile=1048576
  [[ $nproc == unlimited ]] && nproc=65536
  ((nofile > 65536)) && nofile=65536
  ((nproc > 32768)) && nproc=32768  # above this runc fails here with EPERM
  cat >"$dir/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
  export CONTAINERS_CONF=$dir/containers.conf
}
