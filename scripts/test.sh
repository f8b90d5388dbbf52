#!/usr/bin/env bash
# The test command (README.md): installs what is missing, then formatting,
# lints, unit/property tests, and the end-to-end lab test (as root).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --no-build
export CARGO_TERM_COLOR=never
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked --no-fail-fast
