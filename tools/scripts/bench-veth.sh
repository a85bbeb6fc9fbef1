#!/usr/bin/env bash
# Throughput over a veth pair, vipdrift against DPDK testpmd's AF_XDP PMD,
# same source, same pair, same session.
#
#   netns vd-bgen-*  (core 0)                      netns vd-bdut-*  (core 1)
#   g0 02:00:00:00:00:01  <====== veth ======>  f0 02:00:00:00:00:02
#   vipdrift gen --via xdp-live                  vipdrift fwd | dpdk-testpmd (net_af_xdp)
#   (BPF_PROG_RUN live frames, XDP_TX)           drop/rxonly, macswap; gen/txonly alone
#
# For each case and each of REPS runs it records the median of the
# per-second rates (first and last partial seconds left out), per-core
# usr/sys/soft/idle from mpstat, and for vipdrift the wakeup syscalls per
# packet; then prints the median over the runs and the ratio ours/testpmd.
# Needs root. Every namespace it makes is removed on exit, even on Ctrl-C.
#
# Knobs: REPS (3), SECS (10: generator run time), SIZE (64), MODES
# ("drop macswap txonly arp lb"; arp: ARP requests for a VIP answered by
# `vipdrift serve`, compared with fwd macswap of the same run; lb: frames
# over many flows to a VIP, balanced by the example `maglev-lb`, compared
# with `fwd --mode macswap` fed by the same source in the same rep), BUSY_BUDGET (0: testpmd's busy-poll budget; 0 is
# its best setting on veth and, like vipdrift, makes no busy-poll syscalls),
# FWD_ARGS (extra `vipdrift fwd` options, e.g. "--burst 128 --ring-size 4096"),
# LB_LINK_CHECK_MS (5: maglev-lb's link check, the control thread's wakeups),
# TESTPMD_ARGS (extra testpmd options, e.g. "--burst=128 --rxd=4096 --txd=4096"),
# SKIP_TESTPMD (0).
set -euo pipefail
cd "$(dirname "$0")/../.."

REPS=${REPS:-3}
SECS=${SECS:-10}
SIZE=${SIZE:-64}
MODES=${MODES:-"drop macswap txonly arp lb"}
BUSY_BUDGET=${BUSY_BUDGET:-0}
FWD_ARGS=${FWD_ARGS:-}
TESTPMD_ARGS=${TESTPMD_ARGS:-}
SKIP_TESTPMD=${SKIP_TESTPMD:-0}
GEN_CORE=0
DUT_CORE=1

VIPDRIFT_BENCH_DEPS=1 bash tools/scripts/install-deps.sh
cargo build --release -p vipdrift-tools -p vipdrift-example-lb >&2
BIN=$PWD/target/release/vipdrift
LB=$PWD/target/release/maglev-lb
command -v dpdk-testpmd >/dev/null || { echo "bench: dpdk-testpmd missing" >&2; exit 1; }

OUT=$(mktemp -d /tmp/vipdrift-bench.XXXXXX)
TAG=b$$
GEN_NS=vd-bgen-$TAG
DUT_NS=vd-bdut-$TAG
PIDS=()

cleanup() {
  for pid in "${PIDS[@]:-}"; do [[ -n $pid ]] && kill -INT "$pid" 2>/dev/null || true; done
  sleep 0.5
  for pid in "${PIDS[@]:-}"; do [[ -n $pid ]] && kill -KILL "$pid" 2>/dev/null || true; done
  ip netns del "$GEN_NS" 2>/dev/null || true
  ip netns del "$DUT_NS" 2>/dev/null || true
}
trap cleanup EXIT INT TERM

make_pair() {
  ip netns del "$GEN_NS" 2>/dev/null || true
  ip netns del "$DUT_NS" 2>/dev/null || true
  ip netns add "$GEN_NS"
  ip netns add "$DUT_NS"
  for ns in "$GEN_NS" "$DUT_NS"; do
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip netns exec "$ns" ip link set lo up
  done
  ip link add g0 netns "$GEN_NS" address 02:00:00:00:00:01 type veth peer name f0 netns "$DUT_NS" address 02:00:00:00:00:02
  ip -n "$GEN_NS" link set g0 up
  ip -n "$DUT_NS" link set f0 up
}

# median of numbers on stdin
median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print 0; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# Per-second testpmd rates: the "Rx-pps:" / "Tx-pps:" lines of port 0,
# dropping the first two samples and the last, as for vipdrift.
testpmd_median() { # file field(Rx-pps|Tx-pps)
  grep -o "$2: *[0-9]*" "$1" | awk '{print $2}' | awk 'NR>2' | sed '$d' | awk '$1>0' | median
}

mpstat_summary() { # file -> "cpu0 usr/sys/soft/idle cpu1 ..."
  awk '/^Average:/ && $2 ~ /^[0-9]+$/ {printf "cpu%s %.0f/%.0f/%.0f/%.0f  ", $2, $3, $5, $8, $NF}' "$1"
}

run_generator() { # log [extra gen options]; GEN_VIA and GEN_DST_MAC override the defaults
  local log=$1
  shift
  ip netns exec "$GEN_NS" "$BIN" gen --via "${GEN_VIA:-xdp-live}" --iface g0 --core $GEN_CORE --size "$SIZE" \
    --dst-mac "${GEN_DST_MAC:-02:00:00:00:00:02}" --duration "$SECS" --json "$@" >"$log" 2>"$log.err"
}

sample_cpu() { # file
  (sleep 2; LC_ALL=C mpstat -P ALL 1 $((SECS - 4)) >"$1" 2>/dev/null) &
  PIDS+=($!)
}

ours() { # mode rep -> "mpps wakeups_per_packet kernel_rx_lost" (the kernel's XDP_STATISTICS drops at the DUT's socket)
  local mode=$1 dir=$OUT/ours-$1-$2
  mkdir -p "$dir"
  make_pair
  if [[ $mode == lb ]]; then
    sample_cpu "$dir/mpstat"
    echo "$(lb_rate "$dir") 0 0"
    echo "$(mpstat_summary "$dir/mpstat")" >"$dir/cpu"
    return
  elif [[ $mode == arp ]]; then
    # ARP requests for a VIP answered by `vipdrift serve` (replies to the
    # requester's MAC, dropped by the generator side's stack).
    ip netns exec "$DUT_NS" "$BIN" serve --iface f0 --core $DUT_CORE --vip 198.51.100.100/24 \
      --duration $((SECS + 8)) --json >"$dir/dut.json" 2>"$dir/dut.err" &
    local dut=$!
    PIDS+=($dut)
    sleep 2
    sample_cpu "$dir/mpstat"
    run_generator "$dir/gen.json" --arp-for 198.51.100.100 --src-ip 198.51.100.1
    wait "${PIDS[-1]}" 2>/dev/null || true
    kill -INT "$dut"
    wait "$dut" || true
  elif [[ $mode == txonly ]]; then
    sample_cpu "$dir/mpstat"
    ip netns exec "$DUT_NS" "$BIN" gen --iface f0 --core $DUT_CORE --size "$SIZE" --dst-mac 02:00:00:00:00:ff \
      --duration "$SECS" --drain-ms 0 --json >"$dir/dut.json" 2>"$dir/dut.err"
    wait "${PIDS[-1]}" 2>/dev/null || true
  else
    ip netns exec "$DUT_NS" "$BIN" fwd --iface f0 --core $DUT_CORE --mode "$mode" --duration $((SECS + 8)) $FWD_ARGS --json >"$dir/dut.json" 2>"$dir/dut.err" &
    local dut=$!
    PIDS+=($dut)
    sleep 2
    sample_cpu "$dir/mpstat"
    run_generator "$dir/gen.json"
    wait "${PIDS[-1]}" 2>/dev/null || true
    kill -INT "$dut"
    wait "$dut" || true
  fi
  python3 - "$dir/dut.json" <<'PY'
import json, sys
d = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
k = d.get('kernel', {})
lost = k.get('rx_dropped', 0) + k.get('rx_invalid_descs', 0) + k.get('rx_ring_full', 0)
print(f"{d['median_mpps']:.3f} {d.get('wakeups_per_packet', 0):.4f} {lost}")
PY
  echo "$(mpstat_summary "$dir/mpstat")" >"$dir/cpu"
}

# The load balancer case's source: one UDP flow per source port, to the VIP
# on its virtual MAC (vrid 51). xdp-live repeats one frame (one flow), so
# this source is the engine's own AF_XDP TX with --vary-port; both DUTs of a
# rep get the same one.
LB_VIP=198.51.100.100
LB_VMAC=00:00:5e:00:01:33
lb_generator() { # log
  GEN_VIA=afxdp GEN_DST_MAC=$LB_VMAC run_generator "$1" --dst-ip $LB_VIP --vary-port --drain-ms 0
}

# maglev-lb on f0: master at once (priority 255), three backends whose MACs
# send the balanced frames back over the veth, as macswap does. Its rate is
# the engine's TX counter read once a second over the `stats` command; the
# median leaves out the first two and the last sample, as fwd's does.
lb_rate() { # dir -> mpps
  local dir=$1
  cat >"$dir/lb.toml" <<TOML
[[interface]]
name = "f0"
address = "198.51.100.2/24"
cores = [$DUT_CORE]
link_check_ms = ${LB_LINK_CHECK_MS:-5}

[[group]]
name = "bench"
interface = "f0"
vrid = 51
priority = 255
advert_interval_ms = 100
vips = ["$LB_VIP/24"]

[admin]
socket = "$dir/lb.sock"

[[backend]]
address = "198.51.100.21"
mac = "02:00:00:00:00:21"

[[backend]]
address = "198.51.100.22"
mac = "02:00:00:00:00:22"

[[backend]]
address = "198.51.100.23"
mac = "02:00:00:00:00:23"
TOML
  python3 - "$DUT_NS" "$LB" "$dir" $((SECS + 4)) <<'PY' &
import json, subprocess, sys, time
ns, lb, out, secs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
p = subprocess.Popen(["ip", "netns", "exec", ns, lb, "--config", f"{out}/lb.toml"], stdin=subprocess.PIPE,
                     stdout=subprocess.PIPE, stderr=open(f"{out}/lb.err", "w"), text=True)
samples, last = [], None
for _ in range(secs):
    time.sleep(1)
    p.stdin.write("stats\n")
    p.stdin.flush()
    line = json.loads(p.stdout.readline())
    now, tx = time.monotonic(), sum(q["tx_packets"] for q in line["queues"])
    if last is not None and tx > last[1]:
        samples.append((tx - last[1]) / (now - last[0]))
    last = (now, tx)
p.send_signal(2)
summary = p.communicate(timeout=10)[0].strip().splitlines()[-1]
open(f"{out}/lb.json", "w").write(summary + "\n")
rates = sorted(samples[2:-1] or samples)
print(f"{rates[len(rates) // 2] / 1e6 if rates else 0:.3f}", file=open(f"{out}/lb.rate", "w"))
PY
  local lb=$!
  PIDS+=($lb)
  sleep 2
  lb_generator "$dir/gen-lb.json"
  wait "$lb" || true
  cat "$dir/lb.rate"
}

# fwd --mode macswap under the load balancer case's source.
lb_reference() { # dir -> mpps
  local dir=$1
  ip netns exec "$DUT_NS" "$BIN" fwd --iface f0 --core $DUT_CORE --mode macswap --duration $((SECS + 4)) $FWD_ARGS \
    --json >"$dir/fwd.json" 2>"$dir/fwd.err" &
  local dut=$!
  PIDS+=($dut)
  sleep 2
  lb_generator "$dir/gen-fwd.json"
  kill -INT "$dut"
  wait "$dut" || true
  python3 -c 'import json, sys; print("%.3f" % json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])["median_mpps"])' \
    "$dir/fwd.json"
}

theirs() { # mode rep -> mpps
  local mode=$1 dir=$OUT/testpmd-$1-$2 fwd=$1 field=Tx-pps
  mkdir -p "$dir"
  make_pair
  local extra=()
  case $mode in
    drop) fwd=rxonly field=Rx-pps ;;
    txonly) extra=(--txpkts="$SIZE" --eth-peer=0,02:00:00:00:00:ff --tx-ip=198.51.100.2,198.51.100.1) ;;
  esac
  ip netns exec "$DUT_NS" dpdk-testpmd -l $GEN_CORE,$DUT_CORE --main-lcore $GEN_CORE --no-pci --no-huge -m 1024 \
    --file-prefix "vd$TAG" --log-level=pmd.net.af_xdp:info \
    --vdev "net_af_xdp0,iface=f0,start_queue=0,queue_count=1,busy_budget=$BUSY_BUDGET" -- \
    --forward-mode="$fwd" --nb-cores=1 --total-num-mbufs=16384 --stats-period 1 $TESTPMD_ARGS "${extra[@]}" \
    >"$dir/testpmd.log" 2>&1 &
  local dut=$!
  PIDS+=($dut)
  sleep 3
  sample_cpu "$dir/mpstat"
  if [[ $mode == txonly ]]; then
    sleep "$SECS"
  else
    run_generator "$dir/gen.json"
  fi
  wait "${PIDS[-1]}" 2>/dev/null || true
  kill -INT "$dut"
  wait "$dut" || true
  local pps
  pps=$(testpmd_median "$dir/testpmd.log" "$field")
  awk -v p="$pps" 'BEGIN {printf "%.3f\n", p / 1e6}'
  echo "$(mpstat_summary "$dir/mpstat")" >"$dir/cpu"
}

printf "vipdrift vs testpmd (net_af_xdp, busy_budget=%s), veth, %s-byte frames, %s runs of %s s, source: vipdrift gen --via xdp-live on core %s, DUT on core %s\n" \
  "$BUSY_BUDGET" "$SIZE" "$REPS" "$SECS" $GEN_CORE $DUT_CORE
printf "raw logs: %s\n\n" "$OUT"
printf "%-8s %-9s %-26s %-9s %-26s %-7s %-12s %-14s\n" mode ours "ours runs" testpmd "testpmd runs" ratio "wakeups/pkt" "kernel rx lost"
for mode in $MODES; do
  ours_runs=() theirs_runs=() wakeups=() lost=()
  for rep in $(seq 1 "$REPS"); do
    read -r mpps wpp klost < <(ours "$mode" "$rep")
    ours_runs+=("$mpps"); wakeups+=("$wpp"); lost+=("${klost:-0}")
    if [[ $mode == lb ]]; then
      mkdir -p "$OUT/fwd-lb-$rep"
      make_pair
      theirs_runs+=("$(lb_reference "$OUT/fwd-lb-$rep")")
    elif [[ $SKIP_TESTPMD == 1 || $mode == arp ]]; then theirs_runs+=(0); else theirs_runs+=("$(theirs "$mode" "$rep")"); fi
  done
  o=$(printf "%s\n" "${ours_runs[@]}" | median)
  t=$(printf "%s\n" "${theirs_runs[@]}" | median)
  w=$(printf "%s\n" "${wakeups[@]}" | median)
  l=$(printf "%s\n" "${lost[@]}" | median)
  ratio=$(awk -v o="$o" -v t="$t" 'BEGIN {if (t > 0) printf "%.2f", o / t; else print "n/a"}')
  [[ $mode == macswap ]] && ours_macswap=$o
  printf "%-8s %-9s %-26s %-9s %-26s %-7s %-12s %-14s\n" "$mode" "$o" "${ours_runs[*]}" "$t" "${theirs_runs[*]}" "$ratio" "$w" "$l"
  if [[ $mode == arp && -n ${ours_macswap:-} ]]; then
    printf "         ARP replies / fwd macswap, same run: %s\n" \
      "$(awk -v a="$o" -v m="$ours_macswap" 'BEGIN {if (m > 0) printf "%.2f", a / m; else print "n/a"}')"
  fi
  if [[ $mode == lb ]]; then
    echo "         lb: ours = maglev-lb, testpmd columns = vipdrift fwd --mode macswap; source: gen --via afxdp --vary-port"
  fi
done
echo
echo "CPU per core, usr/sys/soft/idle % (run 1 of each case):"
for mode in $MODES; do
  [[ -f $OUT/ours-$mode-1/cpu ]] || continue
  printf "  %-8s ours:    %s\n" "$mode" "$(cat "$OUT/ours-$mode-1/cpu")"
  [[ $SKIP_TESTPMD == 1 || $mode == arp || $mode == lb ]] || printf "  %-8s testpmd: %s\n" "$mode" "$(cat "$OUT/testpmd-$mode-1/cpu")"
done
