#!/usr/bin/env bash
# Catalogue benchmark (issue: Catalogue): 5 sandbox vendors × SIZE offers each.
# Measures a full sync of every vendor, then GET /v1/plans throughput and latency at 64
# connections with wrk, next to /healthz measured by the same tool in the same run.
#
# Needs: a release build, a local Postgres (DATABASE_SERVER below), wrk (apt install wrk).
# Usage: bench/catalog.sh            SIZE=10000 DURATION=15s CONNECTIONS=64 by default
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE=${SIZE:-10000}
DURATION=${DURATION:-15s}
CONNECTIONS=${CONNECTIONS:-64}
PORT=${PORT:-18080}
DATABASE_SERVER=${DATABASE_SERVER:-postgres://postgres@127.0.0.1:5432}
DB="esim_bench_$$"
BASE="http://127.0.0.1:$PORT"
ADMIN="bench-admin-token-0123456789"

cargo build --release --quiet
export DATABASE_URL="$DATABASE_SERVER/$DB" ADMIN_TOKEN="$ADMIN" SANDBOX=true \
  SANDBOX_CATALOG_SIZE="$SIZE" BIND_ADDR="127.0.0.1:$PORT" CATALOG_SYNC_INTERVAL=24h \
  LOG_FORMAT=json RUST_LOG=warn
target/release/esim-gateway serve >"/tmp/esim-bench-$$.log" 2>&1 &
PID=$!
cleanup() {
  kill "$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
  psql "$DATABASE_SERVER/postgres" -qc "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true
}
trap cleanup EXIT

until curl -sf "$BASE/readyz" >/dev/null; do sleep 0.2; done
# The start-up sync runs in the background; wait for it before timing our own.
until [ "$(curl -sf -H "Authorization: Bearer $ADMIN" "$BASE/admin/vendors" \
  | python3 -c 'import json,sys; print(sum(1 for v in json.load(sys.stdin)["data"] if v["last_sync_at"]))')" = 5 ]; do
  sleep 0.5
done

echo "## Full sync, $SIZE offers per vendor"
total_start=$(date +%s.%N)
for v in esimaccess esimgo esimfx microesim multiverse; do
  start=$(date +%s.%N)
  out=$(curl -sf -X POST -H "Authorization: Bearer $ADMIN" "$BASE/admin/vendors/$v/sync")
  end=$(date +%s.%N)
  printf '%-11s %6.2f s  %s\n' "$v" "$(echo "$end - $start" | bc)" "$out"
done
printf 'all five   %6.2f s\n' "$(echo "$(date +%s.%N) - $total_start" | bc)"
psql "$DATABASE_URL" -Atc "SELECT 'offers: ' || count(*) FROM vendor_offers WHERE active"
psql "$DATABASE_URL" -Atc "SELECT 'plans:  ' || count(*) FROM plans WHERE active"

echo
echo "## Query plans (GIN on plans.countries vs the price index)"
for c in "{JP}" "{FR,DE,IT}"; do
  psql "$DATABASE_URL" -Atc "EXPLAIN (ANALYZE, COSTS OFF, TIMING ON)
    SELECT id FROM plans WHERE active AND countries @> '$c' ORDER BY price_amount, id LIMIT 51" \
    | grep -E 'Index|Bitmap|Seq Scan|Execution Time'
done

KEY=$(curl -sf -X POST -H "Authorization: Bearer $ADMIN" -H 'content-type: application/json' \
  -d '{"name":"bench"}' "$BASE/admin/storefronts" | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')

run() {
  echo
  echo "## wrk -t2 -c$CONNECTIONS -d$DURATION $1"
  wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -H "Authorization: Bearer $KEY" "$BASE$1" \
    | grep -E 'Requests/sec|Latency |50%|99%|Non-2xx|requests in'
}
run /healthz
run "/v1/plans?country=JP"
run "/v1/plans?country=FR,DE,IT"
