#!/usr/bin/env bash
# Instructions hagw spends per conversion, counted by callgrind: a figure
# that does not move with the machine's load, for A/B of changes to the
# conversion path where `hagw bench convert`'s clock is too noisy (this
# 2-core VM: single runs from 50 k to 95 k conversions/s for one binary).
#
#   scripts/bench/convert-instructions.sh [BINARY...]   (default: the release build)
#   ARGS=--offload scripts/bench/convert-instructions.sh   (extra `bench convert` flags)
#
# Counts only inside the pipeline (`Pipeline::process` and
# `Converter::poll`: what `bench convert` times as hagw), over CONNS
# conversions (default 2000) of `hagw bench convert` (two subflows, 1 KB
# echoed, full close). Prints per binary: instructions per conversion, the
# share of SHA-256 (valgrind hides SHA-NI, so the sha2 crate runs its
# portable code there: about 20x the instructions it takes natively; the
# figure without it is the one to compare), and the top functions
# (exclusive, inlined code counted where it lands).
set -euo pipefail
cd "$(dirname "$0")/../.."
CONNS=${CONNS:-2000}
TOP=${TOP:-15}
command -v valgrind >/dev/null || bash scripts/setup.sh --no-build
if [ $# -eq 0 ]; then
  cargo build --release --quiet -p hagw
  set -- "$PWD/target/release/hagw"
fi
OUT=$(mktemp -d /tmp/hagw-convert-ir.XXXX)
for bin in "$@"; do
  f="$OUT/$(basename "$bin").$RANDOM.cg"
  valgrind --tool=callgrind --callgrind-out-file="$f" \
    --toggle-collect='nf_app::pipeline::Pipeline<*>::process' \
    --toggle-collect='nf_app::convert::Converter<*>::poll' \
    "$bin" bench convert --bulk-mb 0 --runs 1 --conns "$CONNS" ${ARGS:-} >/dev/null 2>"$f.log"
  callgrind_annotate --auto=no --threshold=100 "$f" 2>/dev/null | python3 -c '
import re, sys
conns, top, name = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
total, sha, fns = 0, 0, {}
for line in sys.stdin:
    m = re.match(r"\s*([\d,]+) \([ \d.]+%\)\s+(.*)", line)
    if not m:
        continue
    ir, rest = int(m.group(1).replace(",", "")), m.group(2)
    if "PROGRAM TOTALS" in rest:
        total = ir
        continue
    fn = re.sub(r"\s*\[[^]]*\]$", "", rest.split(":", 1)[-1])
    if "sha2::sha256" in fn:
        sha += ir
    fns[fn] = fns.get(fn, 0) + ir
print(f"{name}: {total / conns:,.0f} instructions per conversion, "
      f"{(total - sha) / conns:,.0f} without SHA-256 ({sha / conns:,.0f} SHA-256, portable code under valgrind)")
for fn, ir in sorted(fns.items(), key=lambda kv: -kv[1])[:top]:
    print(f"  {ir / conns:8,.0f}  {fn[:110]}")
' "$CONNS" "$TOP" "$bin"
done
rm -rf "$OUT"
