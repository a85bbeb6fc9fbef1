#!/usr/bin/env bash
# The packet-engine demo: builds vipdrift, makes two network namespaces
# joined by a veth pair, runs `vipdrift fwd --mode macswap` in one and
# `vipdrift gen` in the other for a few seconds, and prints both rates.
# Everything it creates is removed on exit, even on Ctrl-C. Needs root.
# (The failover quick start is demo.sh.)
set -euo pipefail
cd "$(dirname "$0")/../.."

bash tools/scripts/install-deps.sh
cargo build --release -p vipdrift-tools
bin=$PWD/target/release/vipdrift

tag=demo$$
gen_ns=vd-gen-$tag dut_ns=vd-dut-$tag
fwd_pid=
cleanup() {
  [[ -n $fwd_pid ]] && kill -INT "$fwd_pid" 2>/dev/null && wait "$fwd_pid" 2>/dev/null || true
  ip netns del "$gen_ns" 2>/dev/null || true
  ip netns del "$dut_ns" 2>/dev/null || true
}
trap cleanup EXIT INT TERM

echo "== two namespaces ($gen_ns, $dut_ns) joined by veth g0 <-> f0"
ip netns add "$gen_ns"
ip netns add "$dut_ns"
for ns in "$gen_ns" "$dut_ns"; do ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1; done
ip link add g0 netns "$gen_ns" address 02:00:00:00:00:01 type veth peer name f0 netns "$dut_ns" address 02:00:00:00:00:02
ip -n "$gen_ns" link set g0 up
ip -n "$dut_ns" link set f0 up

cores=$(nproc)
fwd_core=$((cores > 1 ? 1 : 0))
echo "== vipdrift fwd --mode macswap on f0 (core $fwd_core): swaps MACs and sends every frame back"
ip netns exec "$dut_ns" "$bin" fwd --iface f0 --mode macswap --core "$fwd_core" --duration 8 &
fwd_pid=$!
sleep 1
echo "== vipdrift gen on g0 (core 0): 64-byte UDP frames for 5 s, counting what comes back"
ip netns exec "$gen_ns" "$bin" gen --iface g0 --core 0 --duration 5
wait "$fwd_pid" || true
fwd_pid=
echo "== done; the namespaces are removed on exit"
