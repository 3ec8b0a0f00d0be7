#!/usr/bin/env bash
# Run each cargo-fuzz target of the guest's HTTP core for a few seconds
# (nightly toolchain; installs cargo-fuzz when missing).
# Usage: bench/fuzz-smoke.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../guest/http-core/fuzz"
secs=${1:-5}
rustup toolchain list | grep -q nightly || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
for target in head chunked request; do
    echo "== fuzz $target for ${secs}s"
    cargo +nightly fuzz run -O "$target" -- -max_total_time="$secs" 2>&1 | grep -E "^Done|SUMMARY|panicked|ERROR" || true
    # A crash leaves an artifact and a non-zero exit: fail then.
    if ls artifacts/"$target"/crash-* >/dev/null 2>&1; then
        echo "fuzz $target found a crash: guest/http-core/fuzz/artifacts/$target/"; exit 1
    fi
done
