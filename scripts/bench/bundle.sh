#!/usr/bin/env bash
# Runs hagw's in-process benchmarks on a machine without the DPDK packages
# (a borrowed benchmark box): pack here, copy, run there.
#
#   scripts/bench/bundle.sh pack
#       builds the release binary and gathers into target/bundle/ the shared
#       libraries it loads (DPDK's and theirs) and the DPDK drivers the
#       benchmarks use (net_null, net_ring, the vdev bus, the ring mempool).
#   scripts/bench/bundle.sh run ARGS...      (as root, from the repository root)
#       runs `target/release/hagw ARGS...` with those libraries, e.g.
#       `scripts/bench/bundle.sh run bench forward --runs 5 --lcore 2`.
#
# Copy target/release/hagw and target/bundle/ (about 2 MB) with the tree.
#
# Why `run` links the drivers into the EAL's plugin directory: EAL loads its
# drivers from the directory compiled into librte_eal (Debian's
# /usr/lib/x86_64-linux-gnu/dpdk/pmds-23.0), and each driver there must be
# the very file the loader gives hagw through LD_LIBRARY_PATH. Without the
# drivers EAL stops at "Unable to parse device 'net_null0,size=60'"; with
# copies of them (a second vdev bus beside the one hagw links) at "Cannot
# init plugins".
set -euo pipefail
cd "$(dirname "$0")/../.."
B=$PWD/target/bundle
DRIVERS="net_null net_ring bus_vdev mempool_ring"

pack() {
  cargo build --release --quiet -p hagw
  rm -rf "$B"
  mkdir -p "$B/lib"
  local eal plugins
  eal=$(ldd target/release/hagw | awk '/librte_eal/ {print $3}')
  [ -n "$eal" ] || { echo "bundle: target/release/hagw does not load librte_eal (is DPDK installed? scripts/setup.sh)" >&2; exit 1; }
  plugins=$(strings "$eal" | grep -m1 -E '^/.*/dpdk/pmds-[0-9.]+$' || true)
  [ -n "$plugins" ] || { echo "bundle: no plugin directory found in $eal" >&2; exit 1; }
  echo "$plugins" >"$B/plugin-dir"
  local files=(target/release/hagw)
  for d in $DRIVERS; do
    local f
    f=$(readlink -f "$plugins/librte_$d.so")
    [ -e "$f" ] || { echo "bundle: no DPDK driver $d in $plugins" >&2; exit 1; }
    # under its soname (librte_net_null.so.23), as its dependants ask for it
    cp -L "$f" "$B/lib/$(basename "$f" | sed 's/\.so\.\([0-9]*\)\..*/.so.\1/')"
    files+=("$f")
  done
  # every library those load, but the C library's own (the box has them)
  for f in "${files[@]}"; do
    ldd "$f" | awk '/=> \// {print $3}'
  done | sort -u | grep -v -E '/(libc|libm|libgcc_s|libpthread|libdl|librt|ld-linux[^/]*)\.so' |
    while read -r l; do cp -L "$l" "$B/lib/"; done
  echo "$DRIVERS" >"$B/drivers"
  echo "bundle: $(ls "$B/lib" | wc -l) libraries, $(du -sh "$B" | cut -f1), for $(cat "$B/plugin-dir")"
}

run() {
  [ -f "$B/plugin-dir" ] || { echo "bundle: no target/bundle here; run 'scripts/bench/bundle.sh pack' where DPDK is installed and copy target/bundle" >&2; exit 1; }
  local dir
  dir=$(cat "$B/plugin-dir")
  mkdir -p "$dir"
  for d in $(cat "$B/drivers"); do
    local f
    f=$(ls "$B/lib/librte_$d.so."* | head -1)
    ln -sf "$f" "$dir/librte_$d.so"
  done
  LD_LIBRARY_PATH="$B/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec target/release/hagw "$@"
}

case "${1:-}" in
  pack) pack ;;
  run) shift; run "$@" ;;
  *) echo "usage: scripts/bench/bundle.sh pack | run ARGS..." >&2; exit 2 ;;
esac
