#!/usr/bin/env bash
# Idempotent set-up of a fresh Debian 12 machine for hagw: every system package
# the build, the lab, the demo and the tests need, then a release build.
# Usage: scripts/setup.sh [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(
  # build: DPDK 22.11 headers + runtime PMDs, clang for bindgen, pkg-config
  dpdk libdpdk-dev clang libclang-dev pkg-config build-essential libnuma-dev
  # lab and tests: namespaces, veth offloads, traffic, MPTCP tooling, promtool
  iproute2 iputils-ping ethtool iperf3 nftables socat mptcpize prometheus python3 curl procps kmod tcpdump
  # benchmarks: instruction counts where the clock is too noisy (scripts/bench/convert-instructions.sh)
  valgrind
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup.sh: packages missing (${missing[*]}); run as root or: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # the prometheus package starts a server we do not want; we only need promtool
  systemctl disable --now prometheus >/dev/null 2>&1 || true
fi

if [ "${1:-}" != "--no-build" ]; then
  cargo build --release --locked -p hagw
fi
