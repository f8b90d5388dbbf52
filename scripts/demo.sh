#!/usr/bin/env bash
# The demo: set-up, the LAB.md topology, hagw on its three ports, ping and an
# iperf3 TCP run from cli to srv through hagw, a metrics summary, teardown.
# Run as root on Debian 12.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
HAGW=target/release/hagw
LOG=$(mktemp /tmp/hagw-demo.XXXX.log)

cleanup() {
  pkill -TERM -f "hagw run --config configs/lab.toml" 2>/dev/null || true
  sleep 1
  bash scripts/lab.sh down
}
trap cleanup EXIT

bash scripts/lab.sh up
echo "== hagw on fix1, cel1, srv1 (ns gw), worker pinned to lcore 1; log: $LOG"
ip netns exec gw "$HAGW" run --config configs/lab.toml >"$LOG" 2>&1 &
for _ in $(seq 100); do
  ip netns exec gw curl -sf http://127.0.0.1:9180/healthz >/dev/null 2>&1 && break
  sleep 0.1
done
ip netns exec gw curl -sf http://127.0.0.1:9180/healthz; echo

echo "== ping srv from the fixed address, the cellular address, and the gateway over IPv6"
ip netns exec cli ping -c 3 -W 2 198.51.100.2 | tail -2
ip netns exec cli ping -c 3 -W 2 -I 100.64.0.2 198.51.100.2 | tail -2
ip netns exec cli ping -6 -c 3 -W 2 2001:db8:c::1 | tail -2

echo "== iperf3 TCP cli → srv through hagw (iperf3 on core 0)"
ip netns exec srv taskset -c 0 iperf3 -s -1 -p 5201 >/dev/null 2>&1 &
sleep 0.5
ip netns exec cli taskset -c 0 iperf3 -c 198.51.100.2 -p 5201 -t 5 | tail -4

echo "== /metrics summary"
ip netns exec gw curl -sf http://127.0.0.1:9180/metrics |
  grep -E '^hagw_(port_(rx|tx)_(packets|bytes)_total|events_total\{event="(routed_ipv4|arp_reply_tx|icmpv6_echo_reply_tx)"\}|worker_busy_ratio|mbuf_pool_in_use)' || true
echo "== drops and parse errors (non-zero only)"
ip netns exec gw curl -sf http://127.0.0.1:9180/metrics | grep -E '^hagw_(drops|parse_errors)_total' | grep -v ' 0$' || echo "(none)"
