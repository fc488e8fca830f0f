#!/usr/bin/env bash
# Cascaded negotiation demo (RFC 8921 §8.8, Figure 7; docs/cascade.md).
#
# Provider A (France, Examples/cascade/provider-a.yaml) orders from provider B (Germany,
# Examples/cascade/provider-b.yaml) the German sites of ACME's L3VPN (Examples/cascade/request.json).
# The script makes both PKIs under ./.cascade-demo, starts B then A, runs `cpnp quote --yes --json`
# against A, reads A's child orders with `cpnpd admin show --json`, stops both daemons, and prints
# as its last line one JSON object: cpnp's output plus "children" (A's child orders).
#
# Binaries: $CPNPD and $CPNP (default .build/debug/cpnpd and .build/debug/cpnp); `swift build` runs
# only when a default binary is missing. Exit status: cpnp's (0 = agreement), or 1 when a step
# of the demo itself failed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

CPNPD=${CPNPD:-.build/debug/cpnpd}
CPNP=${CPNP:-.build/debug/cpnp}
DEMO=./.cascade-demo
EXAMPLES=Examples/cascade
READY_TIMEOUT=30

say() { printf '== %s\n' "$*" >&2; }
fail() { printf 'cascade-demo: %s\n' "$*" >&2; exit 1; }

command -v python3 >/dev/null || fail "python3 is needed to combine the JSON outputs"

if [[ ! -x $CPNPD || ! -x $CPNP ]]; then
    if [[ $CPNPD == .build/debug/cpnpd && $CPNP == .build/debug/cpnp ]]; then
        say "building cpnpd and cpnp (swift build)"
        swift build --product cpnpd >&2
        swift build --product cpnp >&2
    fi
    [[ -x $CPNPD ]] || fail "no cpnpd at $CPNPD (set CPNPD)"
    [[ -x $CPNP ]] || fail "no cpnp at $CPNP (set CPNP)"
fi

# The daemons are always stopped: on success, on a failed step, on ^C.
PID_A=""
PID_B=""
stop_daemon() {  # PID: SIGTERM, then SIGKILL after 10 s
    local pid=$1
    [[ -n $pid ]] || return 0
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        printf 'cascade-demo: pid %s ignored SIGTERM, killing it\n' "$pid" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}
stop_daemons() {
    stop_daemon "$PID_A"; PID_A=""
    stop_daemon "$PID_B"; PID_B=""
}
trap stop_daemons EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start NAME CONFIG PIDVAR: runs cpnpd in the background (its pid in PIDVAR at once, so that the
# EXIT trap stops it whatever happens next) and waits for it to log "cpnpd ready".
start() {
    local name=$1 config=$2 log=$DEMO/$1/cpnpd.log
    say "starting provider $name ($config), log $log"
    "$CPNPD" run --config "$config" >"$log" 2>&1 &
    STARTED_PID=$!
    printf -v "$3" '%s' "$STARTED_PID"
    local deadline=$((SECONDS + READY_TIMEOUT))
    until grep -q 'cpnpd ready' "$log"; do
        if ! kill -0 "$STARTED_PID" 2>/dev/null; then
            cat "$log" >&2
            fail "provider $name's cpnpd exited before it was ready (log above)"
        fi
        if ((SECONDS >= deadline)); then
            cat "$log" >&2
            fail "provider $name's cpnpd was not ready within ${READY_TIMEOUT}s (log above)"
        fi
        sleep 0.2
    done
}

say "fresh $DEMO"
rm -rf "$DEMO"
mkdir -p "$DEMO/a" "$DEMO/b"

say "PKI of B, with the client certificate B issues to A (provider-a)"
"$CPNPD" pki init --dir "$DEMO/b/pki" >&2
"$CPNPD" pki client provider-a --dir "$DEMO/b/pki" >&2
say "PKI of A, with its customers' client certificates (acme, globex)"
"$CPNPD" pki init --dir "$DEMO/a/pki" >&2
"$CPNPD" pki client acme --dir "$DEMO/a/pki" >&2
"$CPNPD" pki client globex --dir "$DEMO/a/pki" >&2

start b "$EXAMPLES/provider-b.yaml" PID_B
start a "$EXAMPLES/provider-a.yaml" PID_A

say "ACME asks A for $EXAMPLES/request.json (Paris, Lyon, Frankfurt, Berlin)"
QUOTE=$DEMO/quote.json
QUOTE_STATUS=0
"$CPNP" quote --cpd "$EXAMPLES/request.json" --server 127.0.0.1:18921 --pki "$DEMO/a/pki" --identity acme \
    --database "$DEMO/customer.sqlite" --yes --json >"$QUOTE" || QUOTE_STATUS=$?
[[ -s $QUOTE ]] || fail "cpnp quote printed nothing (exit status $QUOTE_STATUS)"

# A's provider order id: the agreement's, else the offer's of the last round (an offer not accepted).
# cpnp's output is rewritten as one JSON document (it may be one, or end with one line).
PROVIDER_ORDER_ID=$(python3 - "$QUOTE" <<'EOF'
import json, sys
text = open(sys.argv[1]).read()
try:
    out = json.loads(text)
except ValueError:
    out = json.loads([l for l in text.splitlines() if l.strip()][-1])
json.dump(out, open(sys.argv[1], "w"))
poid = (out.get("agreement") or {}).get("provider-order-id")
if not poid:
    for candidate in reversed((out.get("rounds") or [[]])[-1]):
        poid = (candidate.get("offer") or {}).get("provider-order-id")
        if poid:
            break
print(poid or "")
EOF
)

ADMIN=$DEMO/admin-show.json
if [[ -n $PROVIDER_ORDER_ID ]]; then
    say "A's order $PROVIDER_ORDER_ID and its child orders"
    "$CPNPD" admin show "$PROVIDER_ORDER_ID" --json --config Examples/cascade/provider-a.yaml --database "$DEMO/a/cpnpd.sqlite" >"$ADMIN" \
        || fail "cpnpd admin show $PROVIDER_ORDER_ID --json failed"
else
    say "no provider order id in cpnp's output (no offer): no child orders to show"
    echo '{"children": []}' >"$ADMIN"
fi

say "stopping both providers"
stop_daemons

python3 - "$QUOTE" "$ADMIN" <<'EOF'
import json, sys
out = json.load(open(sys.argv[1]))
admin = json.load(open(sys.argv[2]))
out["children"] = admin.get("children", [])
print(json.dumps(out, ensure_ascii=False, separators=(",", ":")))
EOF
exit "$QUOTE_STATUS"
