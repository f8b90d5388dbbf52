#!/usr/bin/env bash
# Hunts the frames lost between hagw's af_xdp ports and the kernel on the
# LAB.md topology (run as root on Debian 12): RUNS uploads of SECS seconds
# (`mptcpize run iperf3`, client in ns cli, server in ns srv) through
# `hagw run --config configs/lab-xdp.toml`, each on a fresh lab. 4.5 s into
# every run it snapshots, and keeps for any run under 1 Gbit/s, in
# OUT/run-N/:
#   metrics.txt    hagw's /metrics (port counters are the PMD's: opackets)
#   sessions.txt   hagw's /sessions
#   srv1-link.txt  `ip -s -s link` of srv1 in ns gw (the kernel's TX count)
#   srv1-ethtool.txt, srv0-ethtool.txt   veth queue counters, before/after
#   softnet.txt    /proc/net/softnet_stat, before/after
#   srv-ss.txt, cli-ss.txt   the server's and client's sockets
#   iperf.json     the run, interval by interval
# and prints, per run, the rate and (for a slow run) the frames the PMD
# counted as sent on srv1 that the kernel's srv1 never transmitted.
#
# What it found (2026-11-27, kernel 6.18, DPDK 22.11): about one upload in
# ten to twenty collapses; the PMD's srv1 count then exceeds the kernel's by
# 10-14 or, more often, by 733-734 frames, with no drop counted anywhere
# (veth, softnet, hagw); hagw's retransmissions vanish the same way. With
# `busy_budget=0` on the ports it still happens. It went away (0 in 95
# runs) once each af_xdp port received into a mempool of its own (the
# PMD's UMEM) instead of hagw's shared one: src/run.rs `bring_up` does so
# since. Run this after touching port or pool set-up.
#
# RPS=1 steers the peers' receive (cli's fix0/cel0, srv's srv0) to CPU 0,
# away from hagw's core: then the frames also stay behind in srv1's TX
# ring, now on every upload, and only later transmit calls push them out
# (during one stall 734 were held; 50 pings to hagw's srv1 address, 50
# more transmit calls, let 777 frames through, their replies among them,
# and left 17). Before
# the worker kicked idle af_xdp ports (src/worker.rs `TxKick`): 3 uploads
# of 3 stalled for good within two seconds; with it, 0 of 3 (each
# 0.2-0.3 Gbit/s: with RPS every receive costs an IPI to CPU 0 on this VM).
# Each run prints the seconds without a byte through (iperf intervals
# under 1 Mbit/s).
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-30}
RPS=${RPS:-0}
SECS=${SECS:-6}
OUT=${OUT:-/tmp/xdp-tx-loss}
command -v iperf3 >/dev/null && command -v mptcpize >/dev/null || bash scripts/setup.sh
cargo build --release --quiet
HAGW=$PWD/target/release/hagw
echo 512 > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
mkdir -p "$OUT"
snap() { # $1: suffix
  ip netns exec gw ethtool -S srv1 > "$OUT/cur/srv1-ethtool.$1.txt" 2>&1 || true
  ip netns exec srv ethtool -S srv0 > "$OUT/cur/srv0-ethtool.$1.txt" 2>&1 || true
  cat /proc/net/softnet_stat > "$OUT/cur/softnet.$1.txt"
  ip netns exec gw ip -s -s link show srv1 > "$OUT/cur/srv1-link.$1.txt"
}
stop() {
  pkill -TERM -f "run --config configs/lab-xdp.toml" 2>/dev/null || true
  sleep 1
  bash scripts/lab.sh down >/dev/null 2>&1 || true
}
trap stop EXIT
for r in $(seq "$RUNS"); do
  rm -rf "$OUT/cur" && mkdir -p "$OUT/cur"
  bash scripts/lab.sh up >/dev/null 2>&1
  if [ "$RPS" = 1 ]; then
    for d in fix0 cel0; do ip netns exec cli sh -c "echo 1 > /sys/class/net/$d/queues/rx-0/rps_cpus"; done
    ip netns exec srv sh -c "echo 1 > /sys/class/net/srv0/queues/rx-0/rps_cpus"
  fi
  ip netns exec gw taskset -c 1 "$HAGW" run --config configs/lab-xdp.toml > "$OUT/cur/hagw.log" 2>&1 &
  bash scripts/lab.sh wait-hagw
  ip netns exec cli ping -c 1 -W 2 198.51.100.2 >/dev/null || true
  ip netns exec srv taskset -c 0 iperf3 -s -1 -p 5201 >/dev/null 2>&1 &
  sp=$!
  sleep 0.3
  snap before
  (
    sleep 4.5
    snap after
    ip netns exec gw curl -s http://127.0.0.1:9180/metrics > "$OUT/cur/metrics.txt"
    ip netns exec gw curl -s http://127.0.0.1:9180/sessions > "$OUT/cur/sessions.txt"
    ip netns exec srv ss -tinoe > "$OUT/cur/srv-ss.txt"
    ip netns exec cli ss -tinoeM > "$OUT/cur/cli-ss.txt"
  ) &
  sn=$!
  ip netns exec cli taskset -c 0 mptcpize run iperf3 -c 198.51.100.2 -p 5201 -t "$SECS" -J \
    > "$OUT/cur/iperf.json" 2>/dev/null || true
  wait "$sn" || true
  wait "$sp" || true
  g=$(python3 -c 'import json,sys; print("%.2f" % (json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"] / 1e9))' "$OUT/cur/iperf.json" 2>/dev/null || echo 0)
  stalled=$(python3 -c 'import json,sys; print(sum(1 for i in json.load(open(sys.argv[1]))["intervals"] if i["sum"]["bits_per_second"] < 1e6))' "$OUT/cur/iperf.json" 2>/dev/null || echo "$SECS")
  line="run $r: upload $g Gbit/s, $stalled s stalled"
  limit=1.0
  [ "$RPS" = 1 ] && limit=0.1
  if [ "$stalled" -gt 0 ] || python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) < float(sys.argv[2]) else 1)' "$g" "$limit"; then
    pmd=$(grep -E '^hagw_port_tx_packets_total\{port="srv1"' "$OUT/cur/metrics.txt" | awk '{print $2}')
    kern=$(awk 'f{print $2; exit} /TX:/{f=1}' "$OUT/cur/srv1-link.after.txt")
    line="$line  srv1 frames: PMD $pmd, kernel $kern, lost $((${pmd:-0} - ${kern:-0}))"
    rm -rf "$OUT/run-$r" && mv "$OUT/cur" "$OUT/run-$r"
  fi
  echo "$line"
  stop
done
