#!/usr/bin/env bash
# Fuzz the admin API from its own OpenAPI document with schemathesis, every check on.
#
#   scripts/fuzz-admin-api.sh [MAX_EXAMPLES] [extra schemathesis options...]
#
# Starts a proxy on a free port against DATABASE_URL (or the embedded PostgreSQL under a
# throw-away BILLING_PROXY_HOME), runs `schemathesis run --checks all`, and stops it. Exits
# with schemathesis' status: 0 means no 5xx and no response contradicting the schema.
set -euo pipefail
max_examples="${1:-200}"
shift || true
port="$(python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export BILLING_PROXY_ADMIN_TOKEN="${BILLING_PROXY_ADMIN_TOKEN:-fuzz-$(python -c 'import secrets; print(secrets.token_hex(16))')}"
if [ -z "${DATABASE_URL:-}" ]; then
    export BILLING_PROXY_HOME="$(mktemp -d)"
fi
billing-proxy serve --port "$port" > "${TMPDIR:-/tmp}/fuzz-admin-api-proxy.log" 2>&1 &
proxy=$!
trap 'kill $proxy 2>/dev/null; wait $proxy 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$port/healthz" > /dev/null 2>&1 && break
    sleep 0.2
done
schemathesis run "http://127.0.0.1:$port/admin/openapi.json" \
    -H "Authorization: Bearer $BILLING_PROXY_ADMIN_TOKEN" \
    --checks all --max-examples "$max_examples" "$@"
