#!/usr/bin/env bash
# Failover dark time, measured the way tests/tests/failover_veth.rs does it:
# a client and two `vipdrift run` nodes on a bridge (advert interval 10 ms,
# priorities 200/100), the client probing the VIP every 2 ms with
# `vipdrift probe`. Runs the scenarios REPS times and prints, per scenario,
# the median and range of the lost replies × 2 ms and of the longest gap
# between replies. Needs root.
#
#   REPS=5 sudo bash tools/scripts/bench-failover.sh
#
# TESTS names the test files to run: the bonds' link-loss figures (one node,
# two NICs, tlb and alb) come from
#
#   TESTS=bond_veth REPS=5 sudo bash tools/scripts/bench-failover.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
REPS=${REPS:-5}
TESTS=${TESTS:-failover_veth keepalived_interop}
test_args=()
for t in $TESTS; do test_args+=(--test "$t"); done

bash tools/scripts/install-deps.sh
cargo build --release -p vipdrift-tools
raw=$(mktemp)
trap 'rm -f "$raw"' EXIT
for ((i = 1; i <= REPS; i++)); do
  echo "== run $i of $REPS" >&2
  cargo test --release -p vipdrift-tests "${test_args[@]}" -- \
    --test-threads=1 --nocapture 2>/dev/null | grep -E '^(test .*\.\.\. )?[a-zA-Z].*: sent [0-9]+ lost' |
    sed -E 's/^test .*\.\.\. //' >>"$raw"
done
# Lines look like: "kill -9, IPv4, vmac: sent 1500 lost 15 (outage 30.0 ms at 2 ms spacing), longest gap between replies 32.9 ms"
python3 - "$raw" <<'PY'
import re, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    m = re.match(r"(.*): sent (\d+) lost (\d+) \(outage ([\d.]+) ms.*longest gap between replies ([\d.]+) ms", line)
    if m:
        rows.setdefault(m[1], []).append((float(m[4]), float(m[5])))
print(f"{'scenario':<58} {'runs':>4}  {'lost x 2 ms: median [min-max]':>30}  {'longest gap: median [min-max]':>30}")
for name, runs in rows.items():
    lost = [r[0] for r in runs]; gap = [r[1] for r in runs]
    fmt = lambda v: f"{statistics.median(v):.1f} [{min(v):.1f}-{max(v):.1f}]"
    print(f"{name:<58} {len(runs):>4}  {fmt(lost):>30}  {fmt(gap):>30}")
PY
