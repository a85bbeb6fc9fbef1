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
if command -v cargo >/dev/null; then
  cargo build --release -p vipdrift-tools
elif [[ -x target/release/vipdrift ]]; then
  # Rust installed for a user, not for root (sudo's PATH): use their build.
  echo "demo.sh: no cargo in root's PATH; running the existing target/release/vipdrift" >&2
else
  echo "demo.sh: no cargo in root's PATH. Install Rust (https://rustup.rs), or build as yourself with" >&2
  echo "  cargo build --release -p vipdrift-tools   and run this script again with sudo." >&2
  exit 1
fi
exec target/release/vipdrift lab demo "$@"
