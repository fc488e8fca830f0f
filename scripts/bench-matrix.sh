#!/usr/bin/env bash
# The cpnp-bench runs behind docs/performance.md: concurrency, transports and stored orders.
# Each run starts its own cpnpd (release build) and writes one JSON report to OUT.
#
#   scripts/bench-matrix.sh [OUT] [BIN]      # BIN: directory with release cpnp-bench and cpnpd
#   MATRIX="customers transports stored" DURATION=20s scripts/bench-matrix.sh
#
# Build first: swift build -c release --product cpnp-bench && swift build -c release --product cpnpd
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-bench-results}
BIN=${2:-.build/release}
DURATION=${DURATION:-20s}
MATRIX=${MATRIX:-"customers transports stored"}
mkdir -p "$OUT"

run() {
    local name=$1
    shift
    echo "== $name: cpnp-bench $*" >&2
    "$BIN/cpnp-bench" --cpnpd "$BIN/cpnpd" --json "$@" > "$OUT/$name.json" || echo "   $name failed (exit $?)" >&2
    if command -v jq > /dev/null; then
        jq -r '"   \(."negotiations-per-second") negotiations/s, p50 \(.latency."p50-ms") ms, \(.failed) failed"' "$OUT/$name.json" >&2 || true
    fi
}

for part in $MATRIX; do
    case $part in
    customers)
        for c in 1 10 100 1000; do
            run "customers-$c" --customers "$c" --duration "$DURATION"
        done
        ;;
    transports)
        for t in plain-udp dtls tls; do
            run "transport-$t" --transport "$t" --customers 10 --duration "$DURATION"
        done
        ;;
    stored)
        for n in 1000 10000 100000 1000000; do
            run "stored-$n" --preload "$n" --customers 10 --duration "$DURATION" --ping-pong 0
        done
        ;;
    *)
        echo "unknown part $part (customers, transports, stored)" >&2
        exit 2
        ;;
    esac
done
echo "reports in $OUT" >&2
