#!/usr/bin/env bash
# The REST API against its own OpenAPI document (docs/api.md): schemathesis generates requests from
# Sources/CPNPHTTP/openapi.yaml and sends them to a real cpnpd over HTTPS, once as a customer (its
# client certificate) and once as an operator (the token). It fails on any server error (5xx) and on
# any response that does not conform to the document (status code, content type, headers, schema).
#
# usage: scripts/api-schema-check.sh BUILD_DIR [EXAMPLES]   (e.g. .build/debug 40)
#
# Two checks are left out, on purpose:
# - positive_data_acceptance: a request the schema admits may still be refused with a 400 problem,
#   since a CPD's rules (RFC 7297, docs/protocol.md) are more than JSON Schema says;
# - unsupported_method: a method the document does not list gets Hummingbird's 404, not 405.
# And one operation: POST /webhooks, whose generated URLs would make cpnpd call hosts off this
# machine; Tests/CPNPIntegrationTests/WebhookEndToEndTests.swift and RESTEndToEndTests cover it.
set -euo pipefail
BUILD="${1:?usage: $0 BUILD_DIR [EXAMPLES]}"
EXAMPLES="${2:-40}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CPNPD="$(cd "$BUILD" && pwd)/cpnpd"
command -v schemathesis >/dev/null || { echo "schemathesis not found (.ci/run.d/30-schemathesis.sh installs it)"; exit 1; }
WORK="$(mktemp -d)"
trap 'kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT
cd "$WORK"
sed 's/^  tls: false /  tls: true /' "$ROOT/Examples/cpnpd.yaml" > cpnpd.yaml
"$CPNPD" --config cpnpd.yaml --listen 127.0.0.1:0 --http 127.0.0.1:0 > cpnpd.log 2>&1 &
PID=$!
for _ in $(seq 100); do grep -q "HTTP server listening" cpnpd.log && break; sleep 0.1; done
ADDRESS="$(grep -o 'http=https://[0-9.:]*' cpnpd.log | head -1 | cut -d/ -f3)"
[ -n "$ADDRESS" ] || { cat cpnpd.log; echo "cpnpd did not start"; exit 1; }
P=.cpnp/pki
CHECKS="not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,negative_data_rejection"
run() {
    schemathesis run "$ROOT/Sources/CPNPHTTP/openapi.yaml" --url "https://$ADDRESS/api" --tls-verify "$P/ca.pem" \
        --checks "$CHECKS" -n "$EXAMPLES" --seed 8921 --no-color --exclude-operation-id createWebhook "$@"
}
echo "== as the customer acme (client certificate)"
run --request-cert "$P/client-acme.pem" --request-cert-key "$P/client-acme-key.pem"
echo "== as an operator (bearer token)"
run -H "Authorization: Bearer $(cat "$P/operator.token")"
grep -q " error " cpnpd.log && { echo "cpnpd logged errors:"; grep " error " cpnpd.log | head -20; exit 1; }
echo "api schema check: passed"
