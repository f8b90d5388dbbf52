#!/usr/bin/env bash
# The reference lab of LAB.md: namespaces cli, gw, srv and three veth pairs.
#   scripts/lab.sh up     build it (idempotent: tears down an old one first)
#   scripts/lab.sh down   remove it
#   scripts/lab.sh status show addresses and routes
#   scripts/lab.sh wait-hagw   wait (10 s at most) for hagw's management in ns gw
# hagw then runs inside ns gw on fix1, cel1 and srv1 (no kernel addresses).
set -euo pipefail

need_root() {
  if [ "$(id -u)" -ne 0 ]; then echo "lab.sh: needs root (network namespaces): sudo $0 $*" >&2; exit 1; fi
}

offloads_off() { # ns dev
  ip netns exec "$1" ethtool -K "$2" tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
}

down() {
  for ns in cli gw srv; do ip netns del "$ns" 2>/dev/null || true; done
}

up() {
  command -v ethtool >/dev/null || { echo "lab.sh: ethtool missing: run scripts/setup.sh" >&2; exit 1; }
  down
  for ns in cli gw srv; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
  ip link add fix0 netns cli type veth peer name fix1 netns gw
  ip link add cel0 netns cli type veth peer name cel1 netns gw
  ip link add srv0 netns srv type veth peer name srv1 netns gw

  # gw: hagw owns the addresses; the kernel stays out (no IPv6, no forwarding)
  for d in fix1 cel1 srv1; do
    ip netns exec gw sysctl -qw "net.ipv6.conf.$d.disable_ipv6=1"
    offloads_off gw "$d"
    ip -n gw link set "$d" up
  done

  # cli: MPTCP host with a fixed and a cellular access
  ip netns exec cli sysctl -qw net.mptcp.enabled=1 || true
  ip -n cli addr add 192.0.2.2/24 dev fix0
  ip -n cli addr add 100.64.0.2/24 dev cel0
  ip -n cli addr add 2001:db8:c::2/64 dev cel0 nodad
  for d in fix0 cel0; do offloads_off cli "$d"; ip -n cli link set "$d" up; done
  ip -n cli route add default via 192.0.2.1 dev fix0
  ip -n cli rule add from 100.64.0.2 table 100
  ip -n cli route add default via 100.64.0.1 dev cel0 table 100
  ip -n cli -6 route add default via 2001:db8:c::1 dev cel0
  ip -n cli mptcp limits set subflows 4 add_addr_accepted 4 2>/dev/null || true
  ip -n cli mptcp endpoint add 100.64.0.2 dev cel0 subflow 2>/dev/null || true

  # srv: IPv4-only servers
  ip netns exec srv sysctl -qw net.ipv6.conf.all.disable_ipv6=1
  ip netns exec srv sysctl -qw net.mptcp.enabled=1 || true
  ip -n srv mptcp limits set subflows 4 add_addr_accepted 4 2>/dev/null || true
  ip -n srv addr add 198.51.100.2/24 dev srv0
  offloads_off srv srv0
  ip -n srv link set srv0 up
  ip -n srv route add default via 198.51.100.1 dev srv0
}

status() {
  for ns in cli gw srv; do
    echo "== $ns"; ip -n "$ns" -br addr 2>/dev/null || echo "(absent)"; ip -n "$ns" route 2>/dev/null || true
  done
}

# hagw's management answering /healthz in ns gw (hagw started there with
# a lab config), 10 s at most
wait_hagw() {
  for _ in $(seq 100); do
    ip netns exec gw curl -sf http://127.0.0.1:9180/healthz >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "lab.sh: hagw's management (127.0.0.1:9180 in ns gw) did not answer within 10 s" >&2
  exit 1
}

case "${1:-}" in
  up) need_root "$@"; up ;;
  down) need_root "$@"; down ;;
  status) status ;;
  wait-hagw) wait_hagw ;;
  *) echo "usage: $0 up|down|status|wait-hagw" >&2; exit 2 ;;
esac
