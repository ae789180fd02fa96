#!/usr/bin/env bash
# Contract fuzzing: the gateway in sandbox mode on a fresh database, schemathesis over its
# own /openapi.json with every check, all phases (examples, coverage, fuzzing, stateful), a
# fixed seed and a bounded number of examples per operation (bench/schemathesis.toml).
# Prints requests, 5xx answers, failures by check and the run time.
#
# Needs: a debug build is enough (cargo build), a local Postgres, curl, jq and schemathesis
# (`pip install schemathesis`; SCHEMATHESIS=/path/to/schemathesis to pick one).
# Usage: bench/fuzz.sh          MAX_EXAMPLES=25 by default (see schemathesis.toml)
set -euo pipefail
cd "$(dirname "$0")/.."

PORT=${PORT:-18181}
DATABASE_SERVER=${DATABASE_SERVER:-postgres://postgres@127.0.0.1:5432}
SCHEMATHESIS=${SCHEMATHESIS:-schemathesis}
DB="esim_fuzz_$$"
BASE="http://127.0.0.1:$PORT"
ADMIN="fuzz-admin-token-0123456789"
OUT=${OUT:-target/fuzz}
mkdir -p "$OUT"

cargo build --quiet
export DATABASE_URL="$DATABASE_SERVER/$DB" ADMIN_TOKEN="$ADMIN" SANDBOX=true \
  BIND_ADDR="127.0.0.1:$PORT" CATALOG_SYNC_INTERVAL=24h LOG_FORMAT=json RUST_LOG=warn
target/debug/esim-gateway serve >"$OUT/gateway.log" 2>&1 &
PID=$!
cleanup() {
  kill "$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
  psql "$DATABASE_SERVER/postgres" -qc "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true
}
trap cleanup EXIT

until curl -sf "$BASE/readyz" >/dev/null; do sleep 0.2; done
until [ "$(curl -sf -H "Authorization: Bearer $ADMIN" "$BASE/admin/vendors" \
  | jq '[.data[] | select(.last_sync_at != null)] | length')" = 5 ]; do
  sleep 0.5
done
FUZZ_STOREFRONT_KEY=$(curl -sf -X POST "$BASE/admin/storefronts" \
  -H "Authorization: Bearer $ADMIN" -H 'content-type: application/json' \
  -d '{"name":"Fuzz Shop"}' | jq -r .api_key)
export FUZZ_STOREFRONT_KEY FUZZ_ADMIN_TOKEN="$ADMIN"

started=$(date +%s)
set +e
"$SCHEMATHESIS" --config-file bench/schemathesis.toml run "$BASE/openapi.json" \
  --checks all --phases examples,coverage,fuzzing,stateful \
  --report ndjson --report-ndjson-path "$OUT/events.ndjson" \
  --no-color --warnings off ${SCHEMATHESIS_ARGS:-} >"$OUT/schemathesis.txt" 2>&1
status=$?
set -e
elapsed=$(( $(date +%s) - started ))

tail -n 25 "$OUT/schemathesis.txt"
echo
python3 bench/fuzz_summary.py "$OUT/events.ndjson"
echo "run time: ${elapsed}s (schemathesis exit $status)"
echo "full output: $OUT/schemathesis.txt, events: $OUT/events.ndjson"
