#!/usr/bin/env bash
# Several "hosts" on one machine for multi-host MPI tests: Linux network namespaces joined
# by veth pairs to a bridge that lives in its own namespace, so nothing is added to the
# machine's own network stack and no packet leaves the machine.
#
#   netns-hosts.sh up NAME N     hosts NAME-h0 .. NAME-h(N-1), addresses 10.213.0.10+i/24 on
#                                their eth0, the bridge in NAME-sw; prints one host a line
#   netns-hosts.sh down NAME     removes every namespace of NAME (and its /etc/netns files)
#   netns-hosts.sh stale         removes the namespaces of earlier runs whose process is gone
#                                (names aepsl-PID-*, from a test or soak that was killed)
#   netns-hosts.sh exec HOST CMD runs CMD (one shell string, as ssh takes it) on HOST: in its
#                                network namespace, with its own host name (UTS namespace)
#   netns-hosts.sh link NAME I up|down   connects or cuts host I's cable (its bridge port)
#   netns-hosts.sh check         exits 0 when this machine can make namespaces, else prints why
#
# `exec` is Open MPI's remote launcher here: mpirun --mca plm_rsh_agent "netns-hosts.sh exec"
# calls it as `agent [options] HOST COMMAND`, like ssh. A host's name is its namespace's name,
# and /etc/netns/NS/hosts (which `ip netns exec` mounts over /etc/hosts) maps every host of
# the set to its address, so Open MPI can resolve the names in a hostfile.
set -euo pipefail

SUBNET=10.213.0
FIRST=10

die() { echo "netns-hosts.sh: $*" >&2; exit 1; }

namespaces() { ip netns list 2>/dev/null | awk '{print $1}'; }

# The host name as the namespace name: accepts NAME-hI or its address.
namespace_of() {
  local host=$1
  if [[ $host =~ ^$SUBNET\.([0-9]+)$ ]]; then
    die "address $host given: use the host names (NAME-hI) that 'up' prints, which name the namespace"
  fi
  ip netns list | awk '{print $1}' | grep -qx -- "$host" || die "no namespace '$host' (run: netns-hosts.sh up NAME N)"
  echo "$host"
}

cmd_check() {
  [[ $(id -u) == 0 ]] || { echo "not root (network namespaces need CAP_SYS_ADMIN)"; exit 1; }
  command -v ip >/dev/null || { echo "no 'ip' command (install iproute2)"; exit 1; }
  command -v unshare >/dev/null || { echo "no 'unshare' command (install util-linux)"; exit 1; }
  local probe="aepsl-$$-probe"
  if ! err=$(ip netns add "$probe" 2>&1); then echo "ip netns add failed: $err"; exit 1; fi
  if ! err=$(ip -n "$probe" link add veth-a type veth peer name veth-b 2>&1); then
    ip netns del "$probe"; echo "veth pairs cannot be made: $err"; exit 1
  fi
  ip netns del "$probe"
}

cmd_up() {
  local name=$1 count=$2
  [[ $count -ge 1 && $count -le 8 ]] || die "between 1 and 8 hosts, got $count"
  local sw="$name-sw"
  ip netns add "$sw"
  ip -n "$sw" link add br0 type bridge
  ip -n "$sw" link set br0 up
  ip -n "$sw" link set lo up
  local hosts=""
  for ((i = 0; i < count; i++)); do
    hosts+="$SUBNET.$((FIRST + i)) $name-h$i"$'\n'
  done
  for ((i = 0; i < count; i++)); do
    local ns="$name-h$i"
    ip netns add "$ns"
    # The pair is made inside the host's namespace, then one end moves to the switch.
    ip -n "$ns" link add eth0 type veth peer name "port$i"
    ip -n "$ns" link set "port$i" netns "$sw"
    ip -n "$sw" link set "port$i" master br0 up
    ip -n "$ns" addr add "$SUBNET.$((FIRST + i))/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
    mkdir -p "/etc/netns/$ns"
    printf '127.0.0.1 localhost\n%s' "$hosts" > "/etc/netns/$ns/hosts"
    echo "$ns"
  done
}

cmd_down() {
  local name=$1
  for ns in $(namespaces); do
    if [[ $ns == "$name-sw" || $ns == "$name"-h* ]]; then
      # Processes left in a host (a killed test's ranks) would keep its namespace alive.
      for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
      ip netns del "$ns" 2>/dev/null || true
      rm -rf "/etc/netns/$ns"
    fi
  done
}

cmd_stale() {
  for ns in $(namespaces); do
    if [[ $ns =~ ^(aepsl-([0-9]+))-(sw|h[0-9]+)$ ]]; then
      local owner=${BASH_REMATCH[2]}
      kill -0 "$owner" 2>/dev/null || cmd_down "${BASH_REMATCH[1]}"
    fi
  done
}

cmd_exec() {
  # ssh's calling convention: options first (Open MPI may pass some), then host, then command.
  while [[ $# -gt 0 && $1 == -* ]]; do shift; done
  [[ $# -ge 2 ]] || die "exec HOST COMMAND"
  local ns
  ns=$(namespace_of "$1")
  shift
  # Its own UTS namespace gives the host its own name, as gethostname() reports to Open MPI.
  exec ip netns exec "$ns" unshare --uts /bin/sh -c 'hostname "$1"; shift; exec /bin/sh -c "$*"' sh "$ns" "$*"
}

cmd_link() {
  local name=$1 index=$2 state=$3
  [[ $state == up || $state == down ]] || die "link NAME I up|down"
  ip -n "$name-sw" link set "port$index" "$state"
  if [[ $state == up ]]; then
    # Addresses that went unanswered while the cable was out are marked failed in every
    # host's neighbour table: forget them, and give the port a moment, so that the next
    # connection (a rerun's daemons) does not fail on a stale entry.
    for ns in $(namespaces); do
      [[ $ns == "$name"-h* ]] && ip -n "$ns" neigh flush all 2>/dev/null || true
    done
    sleep 1
  fi
}

case "${1:-}" in
  up) [[ $# == 3 ]] || die "up NAME N"; cmd_up "$2" "$3" ;;
  down) [[ $# == 2 ]] || die "down NAME"; cmd_down "$2" ;;
  stale) cmd_stale ;;
  exec) shift; cmd_exec "$@" ;;
  link) [[ $# == 4 ]] || die "link NAME I up|down"; cmd_link "$2" "$3" "$4" ;;
  check) cmd_check ;;
  *) die "usage: up NAME N | down NAME | stale | exec HOST CMD | link NAME I up|down | check" ;;
esac
