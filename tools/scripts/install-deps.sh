#!/usr/bin/env bash
# Installs the Debian packages vipdrift needs to build, test and benchmark.
# Safe to run again: it installs only what is missing.
set -euo pipefail

packages=(
  clang llvm libelf-dev zlib1g-dev libpcap-dev pkg-config m4 libbpf-dev  # build (xsk-rs, libbpf, our XDP programs)
  iproute2 ethtool iputils-ping util-linux procps python3 keepalived    # end-to-end tests (keepalived: the interop peer)
  curl tcpdump                                                          # kernel delivery tests: a real client, captures on the switch
)
if [[ "${VIPDRIFT_BENCH_DEPS:-0}" == 1 ]]; then
  packages+=(dpdk dpdk-dev librte-net-af-xdp23 sysstat)                 # throughput benchmark against testpmd
  packages+=(iputils-arping)                                            # service failover benchmark: who answers ARP
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-deps: need root to install: ${missing[*]}" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
