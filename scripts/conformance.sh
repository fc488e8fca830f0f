#!/usr/bin/env bash
# Plays the conformance kit (conformance/) with `cpnp conformance` against a cpnpd started here on
# its embedded defaults, with the restart (kill -9) and approve hooks. CI runs it after the tests.
#
#   scripts/conformance.sh [BIN]        # BIN: directory with cpnpd and cpnp (default .build/debug)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BIN=$(cd "${1:-.build/debug}" && pwd)
DIR=$(mktemp -d)
trap 'for f in "$DIR/cpnpd.pid" "$DIR/more-time/cpnpd.pid"; do kill -9 "$(cat "$f" 2>/dev/null)" 2>/dev/null || true; done; rm -rf "$DIR"' EXIT

# Starts cpnpd in $DIR (embedded defaults, listening on port $1, 0 = any) and waits for "cpnpd ready".
cat > "$DIR/start.sh" <<SH
#!/bin/sh
cd "$DIR" || exit 1
: > cpnpd.log
"$BIN/cpnpd" --listen "127.0.0.1:\$1" --http 127.0.0.1:0 >> cpnpd.log 2>&1 &
echo \$! > cpnpd.pid
i=0
until grep -q 'cpnpd ready' cpnpd.log; do
    i=\$((i + 1)); [ \$i -gt 300 ] && { echo "cpnpd did not start" >&2; cat cpnpd.log >&2; exit 1; }
    sleep 0.1
done
SH
cat > "$DIR/restart.sh" <<SH
#!/bin/sh
kill -9 "\$(cat "$DIR/cpnpd.pid")"; sleep 0.2
exec "$DIR/start.sh" "\$(cat "$DIR/port")"
SH
chmod +x "$DIR/start.sh" "$DIR/restart.sh"

# Figures 11 and 12 need a server that asks for more time within seconds; the embedded defaults ask
# after 55 minutes, so those two cases run first against a cpnpd whose only change is its timers.
awk 'BEGIN { t = 0 } /^timers:/ { t = 1; print "timers:\n  retransmission: {initial: 1s, max-retries: 3}\n  offer-validity: 10m\n  expected-offer-time: 60s\n  approval-expected-offer-time: 6s\n  more-time: {request-before: 5s, extension: 10s, max-requests: 1}"; next }
     t && /^$/ { t = 0 } !t { print }' "$ROOT/Examples/cpnpd.yaml" > "$DIR/more-time.yaml"
python3 -c 'import json, sys; t = json.load(open(sys.argv[1])); t["more-time"] = {"requested-within-ms": 5000}; json.dump(t, open(sys.argv[2], "w"))' \
    "$ROOT/conformance/targets/cpnpd-defaults.json" "$DIR/more-time-target.json"
mkdir -p "$DIR/more-time"
# exec: the background job is cpnpd itself, so its pid is the one recorded (and killed below).
(cd "$DIR/more-time" && exec "$BIN/cpnpd" --config "$DIR/more-time.yaml" --listen 127.0.0.1:0 --http 127.0.0.1:0 > cpnpd.log 2>&1) &
echo $! > "$DIR/more-time/cpnpd.pid"
until grep -q 'cpnpd ready' "$DIR/more-time/cpnpd.log"; do sleep 0.1; done
MORE_TIME_PORT=$(grep -o 'listen=127.0.0.1:[0-9]*' "$DIR/more-time/cpnpd.log" | head -1 | cut -d: -f2)
echo "cpnpd (timers asking for more time within seconds) on 127.0.0.1:$MORE_TIME_PORT" >&2
"$BIN/cpnp" conformance --server "127.0.0.1:$MORE_TIME_PORT" --pki "$DIR/more-time/.cpnp/pki" --filter more-time \
    --cases "$ROOT/conformance/cases" --target "$DIR/more-time-target.json" \
    --approve-command "cd '$DIR/more-time' && '$BIN/cpnpd' admin approve {{provider-order-id}} --config '$DIR/more-time.yaml'" \
    | tee "$DIR/more-time.out"
kill "$(cat "$DIR/more-time/cpnpd.pid")"

# Every case (the two above are skipped here) against cpnpd on its embedded defaults.
"$DIR/start.sh" 0
PORT=$(grep -o 'listen=127.0.0.1:[0-9]*' "$DIR/cpnpd.log" | head -1 | cut -d: -f2)
echo "$PORT" > "$DIR/port"
echo "cpnpd (embedded defaults) on 127.0.0.1:$PORT in $DIR" >&2

"$BIN/cpnp" conformance --server "127.0.0.1:$PORT" --pki "$DIR/.cpnp/pki" \
    --cases "$ROOT/conformance/cases" --target "$ROOT/conformance/targets/cpnpd-defaults.json" \
    --approve-command "cd '$DIR' && '$BIN/cpnpd' admin approve {{provider-order-id}}" \
    --restart-command "'$DIR/restart.sh'" | tee "$DIR/defaults.out"

# Both runs together: every case passed, none was left skipped.
cat "$DIR/more-time.out" "$DIR/defaults.out" | awk '
    /^PASS / { passed[$2] = 1 } /^FAIL / { failed[$2] = 1 } /^SKIP / { id = $2; sub(/:$/, "", id); skipped[id] = 1 }
    END {
        p = 0; f = 0; s = 0
        for (c in failed) f++
        for (c in passed) if (!(c in failed)) p++
        for (c in skipped) if (!(c in passed) && !(c in failed)) s++
        printf "conformance kit, both runs: %d cases\n", p + f + s
        printf "%d passed, %d failed%s\n", p, f, (s > 0 ? sprintf(", %d skipped", s) : "")
        exit (f > 0 || s > 0) ? 1 : 0
    }'
