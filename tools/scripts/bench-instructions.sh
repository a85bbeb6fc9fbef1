#!/usr/bin/env bash
# Instructions per packet of the in-memory hot paths, counted by callgrind:
# the worker's classify + MAC swap (per frame of a 64-frame burst) and the ARP
# responder's round trip (per request). Unlike the criterion times, these
# counts repeat exactly for the same binary whatever else the machine does,
# so they show a change of a few instructions that timing noise hides.
# Needs valgrind (Debian: apt-get install valgrind).
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v valgrind >/dev/null || { echo "needs valgrind: apt-get install valgrind" >&2; exit 1; }
cargo bench -p vipdrift-benches --no-run >/dev/null 2>&1
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
newest() { ls -t target/release/deps/"$1"-* | grep -v '\.d$' | head -1; }
count() { # bench binary, filter, function to count, frames per call, label
    valgrind --tool=callgrind --callgrind-out-file="$out/$3.out" --toggle-collect="*$3*" \
        "$1" --bench "$2" --profile-time 3 >/dev/null 2>"$out/$3.err"
    python3 - "$out/$3.out" "$3" "$4" "$5" <<'PY'
import re, sys
path, function, frames, label = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
lines = open(path).read().split("\n")
names = {}
for line in lines:
    m = re.match(r"c?fn=\((\d+)\)(?: (.*))?", line)
    if m and m.group(2):
        names[m.group(1)] = m.group(2)
ids = {k for k, v in names.items() if function in v}
calls = 0
for i, line in enumerate(lines[:-1]):
    m = re.match(r"cfn=\((\d+)\)", line)
    if m and m.group(1) in ids and lines[i + 1].startswith("calls="):
        calls += int(lines[i + 1].split("=")[1].split()[0])
total = next(int(l.split()[1]) for l in lines if l.startswith(("summary:", "totals:")))
print(f"{label}: {total / calls / frames:.1f} instructions ({calls} calls of {function})")
PY
}
count "$(newest engine)" worker_memport/64 poll_once 64 "worker, per frame of a 64-frame burst"
count "$(newest arp_responder)" responder_memport round_trip 64 "ARP responder, per request"
