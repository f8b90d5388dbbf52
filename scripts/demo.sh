#!/usr/bin/env bash
# The demo: set-up, the LAB.md topology, hagw on its three ports converting
# MPTCP, ping through it, then an MPTCP transfer from the Linux client in ns
# cli (fixed + cellular IPv4 + cellular IPv6 subflows) to a plain TCP server
# in ns srv, with the bytes per access read from /metrics at the end.
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
bash scripts/lab.sh wait-hagw
ip netns exec gw curl -sf http://127.0.0.1:9180/healthz; echo

echo "== ping srv from the fixed address, the cellular address, and the gateway over IPv6"
ip netns exec cli ping -c 3 -W 2 198.51.100.2 | tail -2
ip netns exec cli ping -c 3 -W 2 -I 100.64.0.2 198.51.100.2 | tail -2
ip netns exec cli ping -6 -c 3 -W 2 2001:db8:c::1 | tail -2

echo "== MPTCP upload and download, 100 MB each, Linux MPTCP client in cli -> hagw -> plain TCP server in srv"
m0=$(ip netns exec gw curl -sf http://127.0.0.1:9180/metrics)
ip netns exec srv python3 scripts/xfer.py sink 5201 >/tmp/hagw-demo-sink.out 2>&1 &
SINK=$!
sleep 0.5
echo "client sent:    $(ip netns exec cli python3 scripts/xfer.py send 198.51.100.2 5201 100000000 --mptcp --v6)"
wait "$SINK"
echo "server got:     $(grep -E "^[0-9]+ " /tmp/hagw-demo-sink.out) (from $(grep -o 'peer .*' /tmp/hagw-demo-sink.out | cut -d' ' -f2))"
ip netns exec srv python3 scripts/xfer.py serve 5202 100000000 >/tmp/hagw-demo-serve.out 2>&1 &
SERVE=$!
sleep 0.5
echo "client got:     $(ip netns exec cli python3 scripts/xfer.py recv 198.51.100.2 5202 --mptcp --v6)"
wait "$SERVE"
echo "server sent:    $(grep -E "^[0-9]+ " /tmp/hagw-demo-serve.out)"
echo "== the Linux client's MPTCP counters (MP_CAPABLE answered by hagw, joins, ADD_ADDR of 2001:db8:c::1)"
ip netns exec cli nstat -az | grep -E '^MPTcpExt(MPCapableSYNACKRX|MPJoinSynAckRx|AddAddr) ' || true

echo "== bytes per access (/metrics, this demo's transfers)"
m1=$(ip netns exec gw curl -sf http://127.0.0.1:9180/metrics)
python3 - "$m0" "$m1" <<'PY'
import sys
def parse(t):
    d = {}
    for l in t.splitlines():
        if l.startswith("hagw_conv_") and " " in l:
            k, v = l.rsplit(" ", 1)
            d[k] = float(v)
    return d
a, b = parse(sys.argv[1]), parse(sys.argv[2])
for role in ("access-fixed", "access-cellular", "internet"):
    rx = b.get('hagw_conv_rx_bytes_total{role="%s"}' % role, 0) - a.get('hagw_conv_rx_bytes_total{role="%s"}' % role, 0)
    tx = b.get('hagw_conv_tx_bytes_total{role="%s"}' % role, 0) - a.get('hagw_conv_tx_bytes_total{role="%s"}' % role, 0)
    print("%-16s in %12d B   out %12d B" % (role, rx, tx))
for k in ("hagw_conv_sessions_created_total", "hagw_conv_joins_accepted_total", "hagw_conv_payload_bytes_copied_total", "hagw_conv_sessions_refused_total{reason=\"server_reset\"}"):
    print("%-55s %d" % (k, b.get(k, 0) - a.get(k, 0)))
PY
echo "== drops and parse errors (non-zero only)"
ip netns exec gw curl -sf http://127.0.0.1:9180/metrics | grep -E '^hagw_(drops|parse_errors)_total' | grep -v ' 0$' || echo "(none)"
