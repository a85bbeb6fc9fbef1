#!/usr/bin/env bash
# Runs every check and test of vipdrift: formatting, clippy, unit tests and
# the end-to-end tests on veth pairs in network namespaces (needs root).
# Installs the Debian packages it needs first.
set -euo pipefail
cd "$(dirname "$0")/../.."

bash tools/scripts/install-deps.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# The end-to-end tests run the release binaries: vipdrift and the example
# load balancer built on its library.
cargo build --release -p vipdrift-tools -p vipdrift-example-lb
# One test at a time: the end-to-end tests spin AF_XDP workers, and two cores
# shared by several spinning workers would turn the tests into a CPU contest.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --release -- --test-threads=1 2>&1 | tee "$log"
# One closing line for the whole run (cargo prints one per test binary).
awk '/^test result:/ {p += $4; f += $6} END {printf "\ntests: %d passed, %d failed\n", p, f}' "$log"
