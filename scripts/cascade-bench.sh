#!/usr/bin/env bash
# Negotiations/s and latency through one cascade level, next to the direct figure (RFC 8921 §8.8;
# docs/performance.md, "Cascaded negotiation").
#
# Starts providers B and A of Examples/cascade (their limits raised: rate limits, open orders, link
# capacities) and runs `cpnp-bench --server` against A twice with the same customers and duration:
#   direct:   the French half of Examples/cascade/request.json (A serves it alone);
#   cascaded: the whole request (A orders the German half from B, Figure 7).
# Every agreement is withdrawn (--withdraw), so capacity never runs out. Prints one JSON object per
# run, then a summary line.
#
# Usage: scripts/cascade-bench.sh [CUSTOMERS] [DURATION]     (default 4 customers, 10s)
# Binaries: $CPNPD, $CPNP_BENCH (default .build/release/cpnpd and .build/release/cpnp-bench).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

CUSTOMERS=${1:-4}
DURATION=${2:-10s}
CPNPD=${CPNPD:-.build/release/cpnpd}
CPNP_BENCH=${CPNP_BENCH:-.build/release/cpnp-bench}
WORK=$(mktemp -d /tmp/cascade-bench.XXXXXX)
READY_TIMEOUT=30

say() { printf '== %s\n' "$*" >&2; }
fail() { printf 'cascade-bench: %s\n' "$*" >&2; exit 1; }
[[ -x $CPNPD ]] || fail "no cpnpd at $CPNPD (swift build -c release --product cpnpd, or set CPNPD)"
[[ -x $CPNP_BENCH ]] || fail "no cpnp-bench at $CPNP_BENCH (swift build -c release --product cpnp-bench, or set CPNP_BENCH)"

PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

# relax SOURCE TARGET: the example with its paths under $WORK and its limits raised.
relax() {
    sed -e "s#\.\./\.\./\.cascade-demo/#$WORK/#g" -e "s#\./\.cascade-demo/#$WORK/#g" \
        -e 's/quotations-per-minute: .*/quotations-per-minute: 1000000/' -e 's/fails-per-minute: .*/fails-per-minute: 1000000/' \
        -e 's/max-open-orders: .*/max-open-orders: 100000/' -e 's/default-max-open-orders: .*/default-max-open-orders: 100000/' \
        -e 's/capacity-mbps: .*/capacity-mbps: 10000000/' "$1" >"$2"
}

start() {  # NAME CONFIG: background cpnpd, waits for "cpnpd ready"
    local log=$WORK/$1/cpnpd.log
    "$CPNPD" run --config "$2" --log-level notice >"$log" 2>&1 &
    PIDS+=($!)
    local deadline=$((SECONDS + READY_TIMEOUT))
    until grep -q 'cpnpd ready' "$log"; do
        kill -0 "${PIDS[-1]}" 2>/dev/null || { cat "$log" >&2; fail "provider $1 exited"; }
        ((SECONDS < deadline)) || { cat "$log" >&2; fail "provider $1 not ready"; }
        sleep 0.2
    done
}

mkdir -p "$WORK/a" "$WORK/b"
"$CPNPD" pki init --dir "$WORK/b/pki" >/dev/null
"$CPNPD" pki client provider-a --dir "$WORK/b/pki" >/dev/null
"$CPNPD" pki init --dir "$WORK/a/pki" >/dev/null
"$CPNPD" pki client acme --dir "$WORK/a/pki" >/dev/null
relax Examples/cascade/provider-b.yaml "$WORK/b.yaml"
relax Examples/cascade/provider-a.yaml "$WORK/a.yaml"
python3 - Examples/cascade/request.json "$WORK/french.json" <<'EOF'
import json, sys
cpd = json.load(open(sys.argv[1]))
keep = {"CE-PAR-1", "CE-LYS-1"}
for component in cpd["components"]:
    for p in component["profiles"]:
        p["customer-nodes"] = [n for n in p["customer-nodes"] if n["identifier"] in keep]
        p["scope"] = [s for s in p["scope"] if s["customer-node"] in keep]
        p["capacity"] = [c for c in p["capacity"] if c["customer-node"] in keep]
        p["qos-guarantees"]["entries"] = [e for e in p["qos-guarantees"]["entries"] if e["from"] in keep and e["to"] in keep]
json.dump(cpd, open(sys.argv[2], "w"))
EOF
start b "$WORK/b.yaml"
start a "$WORK/a.yaml"
PID_A=${PIDS[1]}

cpu_seconds() {  # PID: user + system CPU seconds so far
    python3 -c "import os,sys; f=open('/proc/%s/stat'%sys.argv[1]).read().rsplit(')',1)[1].split(); print((int(f[11])+int(f[12]))/os.sysconf('SC_CLK_TCK'))" "$1"
}
PID_B=${PIDS[0]}

run() {  # LABEL CPD
    say "$1: $CUSTOMERS customers, $DURATION"
    local before after
    before=$(cpu_seconds "$PID_B")
    "$CPNP_BENCH" --server 127.0.0.1:18921 --pki "$WORK/a/pki" --identity acme --server-pid "$PID_A" --cpd "$2" \
        --customers "$CUSTOMERS" --duration "$DURATION" --withdraw --json | tail -1 >"$WORK/$1.json"
    after=$(cpu_seconds "$PID_B")
    python3 -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$before" "$after" >"$WORK/$1.b-cpu"
    cat "$WORK/$1.json"
}
run direct "$WORK/french.json"
run cascaded Examples/cascade/request.json

python3 - "$WORK" <<'EOF'
import json, sys
work = sys.argv[1]
for label in ("direct", "cascaded"):
    r = json.load(open(f"{work}/{label}.json"))
    b_cpu = float(open(f"{work}/{label}.b-cpu").read())
    done = max(r["completed"], 1)
    print(json.dumps({
        "run": label, "negotiations-per-second": r["negotiations-per-second"], "failed": r["failed"],
        "p50-ms": r["latency"].get("p50-ms"), "p99-ms": r["latency"].get("p99-ms"),
        "a-cpu-ms-per-negotiation": round(1000 * r["server"]["cpu-seconds"] / done, 3) if r.get("server") else None,
        "b-cpu-ms-per-negotiation": round(1000 * b_cpu / done, 3),
        "ratio-to-ping-pong": (r.get("ratios-to-ping-pong") or {}).get("negotiations-per-second-to-round-trips-per-second"),
    }, separators=(",", ":")))
EOF
