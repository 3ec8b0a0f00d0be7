#!/usr/bin/env bash
# Soak: 10,000 sequential and 1,000 concurrent fetches through one
# wfetch::Host in one process (host/examples/soak.rs), every body checked,
# file descriptors counted before and after, RSS printed along the way.
# Usage: bench/soak.sh [SEQUENTIAL] [CONCURRENT]   (CI: bench/soak.sh 200 100)
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${SOAK_PROFILE---release}
exec cargo run -q $profile --example soak -- "${1:-10000}" "${2:-1000}"
