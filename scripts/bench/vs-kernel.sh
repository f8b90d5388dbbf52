#!/usr/bin/env bash
# hagw against the Linux kernel MPTCP proxy and the lab's ceiling, in one run,
# on the LAB.md topology (run as root on Debian 12):
#
#   1. hagw  : `hagw run --config configs/lab-xdp.toml` (net_af_xdp ports,
#              worker on CPU 1); the Linux MPTCP client in ns cli (fixed +
#              cellular subflows, `mptcpize run iperf3`) → plain iperf3
#              server in ns srv.
#   2. kernel: the baseline of LAB.md: gw gets kernel addresses and runs
#              `mptcpize run socat TCP4-LISTEN:6000,fork TCP4:198.51.100.2:5201`
#              pinned to CPU 1; the same client connects to 192.0.2.1:6000.
#   3. ceiling: `hagw l2fwd` (rx_burst → tx_burst, nothing else) between
#              fix1 and srv1 on CPU 1, one plain TCP flow cli → srv.
#
# Upload (client → server) and download (-R), RUNS runs of SECS seconds each;
# iperf3 on CPU 0. Prints min/median Gbit/s per case and the ratios
# hagw/kernel and hagw/ceiling (medians).
#
# LOSS=N (per mille, default 0) drops N in 1000 packets at random in each
# direction on the client's access links (nftables in ns cli, LAB.md: no
# netem here), the same for all three cases: how each recovers from loss.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-3}
SECS=${SECS:-8}
LOSS=${LOSS:-0}
command -v iperf3 >/dev/null && command -v mptcpize >/dev/null || bash scripts/setup.sh
cargo build --release --quiet
HAGW=$PWD/target/release/hagw
echo 512 > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
OUT=$(mktemp -d /tmp/hagw-vs-kernel.XXXX)

cleanup() {
  pkill -TERM -f "hagw (run|l2fwd) --config" 2>/dev/null || true
  pkill -f "socat TCP4-LISTEN:6000" 2>/dev/null || true
  pkill -f "iperf3 -s" 2>/dev/null || true
  sleep 1
  bash scripts/lab.sh down >/dev/null 2>&1 || true
}
trap cleanup EXIT

# one iperf3 run; prints Gbit/s received.
# $1 label, $2 host, $3 port, $4 command prefix ("mptcpize run" or ""), $5 extra iperf3 flag ("" or -R)
one() {
  local label=$1 host=$2 port=$3 prefix=$4 extra=$5
  ip netns exec srv taskset -c 0 iperf3 -s -1 -p 5201 >/dev/null 2>&1 &
  local srv=$!
  sleep 0.3
  local json="$OUT/$label.$RANDOM.json"
  # shellcheck disable=SC2086
  ip netns exec cli taskset -c 0 $prefix iperf3 -c "$host" -p "$port" -t "$SECS" -J $extra >"$json" || true
  wait "$srv" 2>/dev/null || true
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("%.3f" % (d["end"]["sum_received"]["bits_per_second"]/1e9))' "$json" 2>/dev/null || echo 0
}

# RUNS runs of a case in both directions -> "$OUT/<label>.up|down" (one figure per line)
case_runs() {
  local label=$1 host=$2 port=$3 prefix=$4
  : >"$OUT/$label.up"; : >"$OUT/$label.down"
  for _ in $(seq "$RUNS"); do
    one "$label-up" "$host" "$port" "$prefix" "" >>"$OUT/$label.up"
    one "$label-down" "$host" "$port" "$prefix" -R >>"$OUT/$label.down"
  done
}

bash scripts/lab.sh up >/dev/null
if [ "$LOSS" -gt 0 ]; then
  ip netns exec cli nft -f - <<NFT
table inet hagwloss {
  chain out { type filter hook output priority 0; oifname { "fix0", "cel0" } numgen random mod 1000 < $LOSS drop; }
  chain in { type filter hook input priority 0; iifname { "fix0", "cel0" } numgen random mod 1000 < $LOSS drop; }
}
NFT
fi

echo "== 1/3 hagw (net_af_xdp, worker on CPU 1)"
ip netns exec gw "$HAGW" run --config configs/lab-xdp.toml >"$OUT/hagw.log" 2>&1 &
bash scripts/lab.sh wait-hagw
ip netns exec cli ping -c 1 -W 2 198.51.100.2 >/dev/null
case_runs hagw 198.51.100.2 5201 "mptcpize run"
ip netns exec gw curl -sf http://127.0.0.1:9180/metrics | grep -E '^hagw_conv_(sessions_created|joins_accepted|payload_bytes_copied)_total|^hagw_conv_(rx|tx)_bytes_total' >"$OUT/hagw.metrics" || true
pkill -TERM -f "hagw run --config configs/lab-xdp.toml"; sleep 2

echo "== 2/3 Linux kernel MPTCP proxy (socat under mptcpize, CPU 1)"
ip -n gw addr add 192.0.2.1/24 dev fix1
ip -n gw addr add 100.64.0.1/24 dev cel1
ip -n gw addr add 2001:db8:c::1/64 dev cel1 nodad 2>/dev/null || true  # IPv6 is off on the gw veths
ip -n gw addr add 198.51.100.1/24 dev srv1
ip netns exec gw sysctl -qw net.ipv4.ip_forward=1 net.mptcp.enabled=1
ip -n gw mptcp limits set subflows 4 add_addr_accepted 4 2>/dev/null || true
ip netns exec gw taskset -c 1 mptcpize run socat TCP4-LISTEN:6000,fork,reuseaddr TCP4:198.51.100.2:5201 &
sleep 0.5
case_runs kernel 192.0.2.1 6000 "mptcpize run"
pkill -f "socat TCP4-LISTEN:6000" || true
for a in "192.0.2.1/24 dev fix1" "100.64.0.1/24 dev cel1" "2001:db8:c::1/64 dev cel1" "198.51.100.1/24 dev srv1"; do
  ip -n gw addr del $a 2>/dev/null || true
done

echo "== 3/3 ceiling: hagw l2fwd fix1 <-> srv1 (CPU 1), one TCP flow"
sed -e 's/^main_lcore = 0/main_lcore = 1/' -e 's/^lcores = \[1\]/lcores = [0]/' configs/lab-xdp.toml >"$OUT/l2fwd.toml"
ip netns exec gw "$HAGW" l2fwd --config "$OUT/l2fwd.toml" --ports fix1,srv1 >"$OUT/l2fwd.log" 2>&1 &
sleep 3
FIX0=$(ip -n cli -br link show fix0 | awk '{print $3}')
SRV0=$(ip -n srv -br link show srv0 | awk '{print $3}')
ip -n cli neigh replace 192.0.2.1 lladdr "$SRV0" dev fix0
ip -n srv neigh replace 198.51.100.1 lladdr "$FIX0" dev srv0
case_runs ceiling 198.51.100.2 5201 ""
pkill -TERM -f "hagw l2fwd --config"; sleep 1

python3 - "$OUT" "$RUNS" "$SECS" "$LOSS" <<'PY'
import sys, statistics
out, runs, secs = sys.argv[1], sys.argv[2], sys.argv[3]
def figs(label, d):
    v = sorted(float(x) for x in open(f"{out}/{label}.{d}").read().split())
    return v
loss = int(sys.argv[4])
print(f"\nGbit/s, {runs} runs x {secs} s each (min / median), iperf3 on CPU 0, the gateway on CPU 1"
      + (f", {loss} per mille dropped each way on the client's access links" if loss else ""))
med = {}
for label, what in [("hagw", "hagw (MPTCP client -> hagw -> TCP server)"),
                    ("kernel", "kernel MPTCP proxy (socat, mptcpize)"),
                    ("ceiling", "ceiling (l2fwd, one plain TCP flow)")]:
    for d in ("up", "down"):
        v = figs(label, d)
        m = statistics.median(v) if v else 0.0
        med[(label, d)] = m
        print(f"  {what:44s} {d:5s} {min(v) if v else 0:6.2f} / {m:6.2f}")
for d in ("up", "down"):
    k, c, h = med[("kernel", d)], med[("ceiling", d)], med[("hagw", d)]
    print(f"  {d:5s} hagw/kernel = {h / k if k else float('nan'):.2f}   hagw/ceiling = {h / c if c else float('nan'):.2f}")
PY
echo "(raw iperf3 JSON and logs in $OUT)"
