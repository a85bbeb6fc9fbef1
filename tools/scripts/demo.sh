#!/usr/bin/env bash
# The quick-start demo: installs what vipdrift needs (Debian packages),
# builds it, and runs `vipdrift lab demo`: a client and two vipdrift nodes
# in network namespaces, the master killed and the backup taking over its
# virtual IP and virtual MAC while the client pings, each step explained,
# then everything removed (also on Ctrl-C). About 20 s. Needs root.
# Arguments go to `vipdrift lab demo` (e.g. --prefix NAME).
# The packet-engine demo (gen -> fwd macswap) is demo-fwd.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."

bash tools/scripts/install-deps.sh
cargo build --release -p vipdrift-tools
exec target/release/vipdrift lab demo "$@"
