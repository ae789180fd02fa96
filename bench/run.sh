#!/usr/bin/env bash
# The whole benchmark in one command (see bench/README.md): full catalogue sync, catalogue
# reads against an nginx static file of the same body in the same run, /healthz, order
# overhead over a fixed vendor delay, eSIM Go callback ingest, resident memory. Each
# figure is printed with its same-run anchor and the ratio.
#
# Needs: cargo, a local PostgreSQL (DATABASE_SERVER), wrk, curl, psql, python3; nginx for
# the static anchor (apt-get install -y wrk nginx-light; without nginx the ratios are
# skipped with a message).
# Usage: bench/run.sh     SIZE=10000 DURATION=10s CONNECTIONS=64 ORDER_DELAY_MS=50
#                         ORDER_CONNECTIONS=32 ORDER_DURATION=4s ORDER_SINGLE_DURATION=4s
#                         NGINX_WORKERS=1 BIN=path (a build to measure instead of this one)
#                         ONLY=orders (sync and order overhead only)
#                         SYNC_COMMIT=off (diagnostic only: the bench database commits
#                         without waiting for its WAL flush, to show how much of the order
#                         overhead is the disk; never a setting for a real deployment)
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE=${SIZE:-10000}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
ORDER_DELAY_MS=${ORDER_DELAY_MS:-50}
ORDER_CONNECTIONS=${ORDER_CONNECTIONS:-32}
ORDER_DURATION=${ORDER_DURATION:-4s}
ORDER_SINGLE_DURATION=${ORDER_SINGLE_DURATION:-4s}
CALLBACK_DURATION=${CALLBACK_DURATION:-6s}
CALLBACK_BODIES=${CALLBACK_BODIES:-60000}
NGINX_WORKERS=${NGINX_WORKERS:-1}
ONLY=${ONLY:-all}
SYNC_COMMIT=${SYNC_COMMIT:-on}
PORT=${PORT:-18080}
CB_PORT=${CB_PORT:-18081}
REPLICA_PORT=${REPLICA_PORT:-18082}
ORDER_PORT=${ORDER_PORT:-18083}
SIMS_PORT=${SIMS_PORT:-18084}
NGINX_PORT=${NGINX_PORT:-18090}
DATABASE_SERVER=${DATABASE_SERVER:-postgres://postgres@127.0.0.1:5432}
DB="esim_bench_$$"
CB_DB="esim_bench_cb_$$"
ORDER_DB="esim_bench_orders_$$"
BASE="http://127.0.0.1:$PORT"
CB_BASE="http://127.0.0.1:$CB_PORT"
ADMIN="bench-admin-token-0123456789"
CB_KEY="bench-esimgo-api-key-0123456789"
WORK=$(mktemp -d /tmp/esim-bench.XXXXXX)
chmod 755 "$WORK" # nginx workers run as an unprivileged user
PIDS=()

cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  for d in "$DB" "$CB_DB" "$ORDER_DB"; do
    psql "$DATABASE_SERVER/postgres" -qc "DROP DATABASE IF EXISTS $d WITH (FORCE)" >/dev/null 2>&1 || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

for tool in wrk curl psql python3; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (apt-get install -y wrk curl postgresql-client python3)" >&2; exit 2; }
done
NGINX=$(command -v nginx || ls /usr/sbin/nginx 2>/dev/null || true)

echo "# esim-gateway benchmark"
echo "commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src migrations Cargo.toml || echo ' (+ uncommitted changes)')"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/ {print $2}') GiB RAM"
echo "load before: $(uptime | sed 's/.*load average/load average/')"
# BIN=path: measure that build instead (an earlier commit's, for a same-machine comparison).
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
  BIN=target/release/esim-gateway
fi

# Replaces the (background) subshell, so $! is the gateway itself.
common_env() {
  exec env DATABASE_URL="$DATABASE_SERVER/$1" ADMIN_TOKEN="$ADMIN" BIND_ADDR="127.0.0.1:$2" \
    PUBLIC_BASE_URL="http://127.0.0.1:$2" CATALOG_SYNC_INTERVAL=24h LOG_FORMAT=json RUST_LOG=warn \
    "${@:3}"
}

# ---------------------------------------------------------------- gateway (sandbox)
if [ "$SYNC_COMMIT" = off ]; then
  psql "$DATABASE_SERVER/postgres" -qc "CREATE DATABASE $DB" >/dev/null
  psql "$DATABASE_SERVER/postgres" -qc "ALTER DATABASE $DB SET synchronous_commit = off" >/dev/null
  echo "synchronous_commit = off on the bench database (diagnostic: commits do not wait for the disk)"
fi
common_env "$DB" "$PORT" SANDBOX=true SANDBOX_CATALOG_SIZE="$SIZE" "$BIN" serve >"$WORK/gateway.log" 2>&1 &
GW=$!
PIDS+=("$GW")
# Ready, and its start-up sync of all five vendors done (it runs in the background).
# wait_synced BASE [SINCE]: until every vendor has synced (since SINCE, an ISO UTC time,
# when given: a gateway on a database another one synced before still runs its own).
wait_synced() {
  until curl -sf "$1/readyz" >/dev/null; do sleep 0.2; done
  until [ "$(curl -sf -H "Authorization: Bearer $ADMIN" "$1/admin/vendors" \
    | python3 -c '
import datetime, json, sys
since = datetime.datetime.fromisoformat(sys.argv[1]) if sys.argv[1] else None
def at(v): return datetime.datetime.fromisoformat(v["last_sync_at"].replace("Z", "+00:00"))
print(sum(1 for v in json.load(sys.stdin)["data"] if v["last_sync_at"] and (since is None or at(v) > since)))' "${2:-}")" = 5 ]; do
    sleep 0.5
  done
}
# Wait for the start-up sync before timing our own.
wait_synced "$BASE"

echo
echo "## Full sync: 5 sandbox vendors x $SIZE offers, all five at once"
start=$(date +%s.%N)
for v in esimaccess esimgo esimfx microesim multiverse; do
  ( s=$(date +%s.%N)
    out=$(curl -sf -X POST -H "Authorization: Bearer $ADMIN" "$BASE/admin/vendors/$v/sync")
    printf '%-11s %6.2f s  %s\n' "$v" "$(python3 -c "print($(date +%s.%N) - $s)")" "$out" ) &
done
wait_jobs() { for j in $(jobs -p); do case " ${PIDS[*]} " in *" $j "*) ;; *) wait "$j";; esac; done; }
wait_jobs
SYNC_S=$(python3 -c "print(round($(date +%s.%N) - $start, 2))")
echo "all five   $SYNC_S s (goal <= 10 s)"
OFFERS=$(psql "$DATABASE_SERVER/$DB" -Atc "SELECT count(*) FROM vendor_offers WHERE active")
PLANS=$(psql "$DATABASE_SERVER/$DB" -Atc "SELECT count(*) FROM plans WHERE active")
echo "offers: $OFFERS active; plans: $PLANS active"

KEY=$(curl -sf -X POST -H "Authorization: Bearer $ADMIN" -H 'content-type: application/json' \
  -d '{"name":"bench"}' "$BASE/admin/storefronts" | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')
AUTH="Authorization: Bearer $KEY"

RESULTS="$WORK/results.txt"
: >"$RESULTS"
row() { printf '%-34s %9s req/s  p50 %7s ms  p99 %7s ms  %s\n' "$@" | tee -a "$RESULTS"; }
SUMMARY="$WORK/summary.txt"
: >"$SUMMARY"

# ONLY=orders: the sync and the order overhead only (the catalogue reads, the second
# replica and the callbacks are skipped).
if [ "$ONLY" != orders ]; then
# ---------------------------------------------------------------- bodies and nginx
mkdir -p "$WORK/www"
PLAN_ID=$(curl -sf -H "$AUTH" "$BASE/v1/plans?country=JP&limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"][0]["id"])')
declare -A PATHS=(
  [jp]="/v1/plans?country=JP"
  [eu]="/v1/plans?country=FR,DE,IT"
  [all]="/v1/plans"
  [plan]="/v1/plans/$PLAN_ID"
  [countries]="/v1/countries"
)
ORDER=(jp eu all plan countries)
for n in "${ORDER[@]}"; do
  curl -sf -H "$AUTH" "$BASE${PATHS[$n]}" -o "$WORK/www/$n.json"
  gzip -6 -k -c "$WORK/www/$n.json" >"$WORK/www/$n.json.gz"
done
HAVE_NGINX=0
if [ -n "$NGINX" ]; then
  cat >"$WORK/nginx.conf" <<EOF
worker_processes $NGINX_WORKERS;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
daemon off;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $WORK/tmp; proxy_temp_path $WORK/tmp; fastcgi_temp_path $WORK/tmp;
  uwsgi_temp_path $WORK/tmp; scgi_temp_path $WORK/tmp;
  types { application/json json; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    root $WORK/www;
    gzip_static on;
  }
}
EOF
  mkdir -p "$WORK/tmp"
  "$NGINX" -c "$WORK/nginx.conf" -p "$WORK" >/dev/null 2>&1 &
  PIDS+=("$!")
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$NGINX_PORT/jp.json" -o /dev/null && { HAVE_NGINX=1; break; }; sleep 0.1; done
fi
[ "$HAVE_NGINX" = 1 ] || echo "NOTE: nginx is not available (apt-get install -y nginx-light): ratios to a static file are skipped"

# wrk_run NAME URL [extra wrk args...] -> "rps p50_ms p99_ms non2xx"
wrk_run() {
  local name=$1 url=$2
  shift 2
  wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency "$@" "$url" >"$WORK/wrk-$name.txt" 2>&1
  python3 - "$WORK/wrk-$name.txt" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
def ms(v):
    m = re.match(r"([\d.]+)(us|ms|s)", v)
    n, u = float(m.group(1)), m.group(2)
    return n / 1000 if u == "us" else n * 1000 if u == "s" else n
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
p50 = ms(re.search(r"\s50%\s+(\S+)", t).group(1))
p99 = ms(re.search(r"\s99%\s+(\S+)", t).group(1))
bad = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
err = re.search(r"Socket errors: (.*)", t)
print(f"{rps:.0f} {p50:.2f} {p99:.2f} {bad.group(1) if bad else 0}{' ' + err.group(1).replace(' ', '') if err else ''}")
PY
}

echo
echo "## HTTP: wrk -t2 -c$CONNECTIONS -d$DURATION --latency, one after the other, same run"
read -r H_RPS H_P50 H_P99 H_BAD <<<"$(wrk_run healthz "$BASE/healthz")"
row "/healthz (15 B)" "$H_RPS" "$H_P50" "$H_P99" "non-2xx $H_BAD"
for n in "${ORDER[@]}"; do
  size=$(stat -c %s "$WORK/www/$n.json")
  gzsize=$(stat -c %s "$WORK/www/$n.json.gz")
  for enc in identity gzip; do
    hdr=()
    [ "$enc" = gzip ] && hdr=(-H "Accept-Encoding: gzip")
    if [ "$HAVE_NGINX" = 1 ]; then
      read -r N_RPS N_P50 N_P99 _ <<<"$(wrk_run "nginx-$n-$enc" "http://127.0.0.1:$NGINX_PORT/$n.json" "${hdr[@]}")"
      row "nginx static $n.json ($enc)" "$N_RPS" "$N_P50" "$N_P99" "body $size B (gz $gzsize B)"
    fi
    read -r G_RPS G_P50 G_P99 G_BAD <<<"$(wrk_run "gw-$n-$enc" "$BASE${PATHS[$n]}" -H "$AUTH" "${hdr[@]}")"
    row "gateway ${PATHS[$n]} ($enc)" "$G_RPS" "$G_P50" "$G_P99" "non-2xx $G_BAD"
    if [ "$HAVE_NGINX" = 1 ]; then
      ratio=$(python3 -c "print(f'{$G_RPS / $N_RPS:.2f}')")
      v_ratio=$(python3 -c "print('met' if $G_RPS >= 0.5 * $N_RPS else 'MISSED')")
      v_p99=$(python3 -c "print('met' if $G_P99 <= 10 else 'MISSED')")
      printf '%-9s %-8s gateway/nginx %5sx (goal >=0.5x: %s)  p99 %6s ms, nginx %6s ms (goal <=10 ms: %s)\n' \
        "$n" "$enc" "$ratio" "$v_ratio" "$G_P99" "$N_P99" "$v_p99" >>"$SUMMARY"
    else
      echo "$n $enc gateway ${G_RPS} req/s p99 ${G_P99} ms (no nginx anchor)" >>"$SUMMARY"
    fi
  done
done
# A revalidation: what a client with the current ETag pays.
ETAG=$(curl -sfI -H "$AUTH" "$BASE/v1/plans?country=JP" | awk -F': ' 'tolower($1)=="etag" {print $2}' | tr -d '\r')
read -r E_RPS E_P50 E_P99 E_BAD <<<"$(wrk_run gw-etag "$BASE/v1/plans?country=JP" -H "$AUTH" -H "If-None-Match: $ETAG")"
row "gateway JP with If-None-Match (304)" "$E_RPS" "$E_P50" "$E_P99" "non-2xx/3xx $E_BAD"

RSS_KB=$(ps -o rss= -p "$GW" | tr -d ' ')

# ---------------------------------------------------------------- a second replica
echo
echo "## Second replica: how soon another gateway on the same database serves a catalogue change"
# Test mode runs on every replica: the same simulated catalogue as the first, so its own
# first sync changes nothing the measurement reads; it is waited for, so that what is
# measured is a warm replica hearing of a change, not one busy with its start-up sync.
REPLICA_START=$(date -u +%Y-%m-%dT%H:%M:%S+00:00)
common_env "$DB" "$REPLICA_PORT" SANDBOX=true SANDBOX_CATALOG_SIZE="$SIZE" "$BIN" serve >"$WORK/replica.log" 2>&1 &
RP=$!
PIDS+=("$RP")
wait_synced "http://127.0.0.1:$REPLICA_PORT" "$REPLICA_START"
LAG=$(python3 - "$KEY" "$PLAN_ID" "http://127.0.0.1:$REPLICA_PORT" "$DATABASE_SERVER/$DB" <<'PY'
import json, subprocess, sys, time, urllib.request
key, plan, base, db = sys.argv[1:]
def price():
    req = urllib.request.Request(f"{base}/v1/plans/{plan}", headers={"Authorization": f"Bearer {key}"})
    return json.loads(urllib.request.urlopen(req).read())["price"]["amount"]
lags = []
for _ in range(5):
    before = price()  # warm: the replica holds the whole catalogue
    subprocess.run(["psql", db, "-qAtc",
        f"UPDATE plans SET price_amount = price_amount + 0.01 WHERE id = '{plan}'"], check=True)
    committed = time.monotonic()
    while price() == before:
        if time.monotonic() - committed > 5:
            break
        time.sleep(0.005)
    lags.append((time.monotonic() - committed) * 1000)
print(f"{max(lags):.0f} {sorted(lags)[len(lags) // 2]:.0f}")
PY
)
read -r LAG_MAX LAG_MED <<<"$LAG"
echo "replica lag after a committed change of one of $PLANS plans (5 tries): median $LAG_MED ms, max $LAG_MAX ms; goal <=1000 ms: $(python3 -c "print('met' if $LAG_MAX <= 1000 else 'MISSED')")" | tee -a "$SUMMARY"
kill "$RP"; wait "$RP" 2>/dev/null || true
fi

# ---------------------------------------------------------------- orders
# The vendor is another process, as in production: `sandbox --vendors-only` serves the
# five simulators and a gateway on its own database uses them as live vendors (no
# in-process simulators, TEST_MODE=off). The first gateway is stopped first so the two
# cores are the order path's.
echo
echo "## Orders: every simulator answers 'order' after ${ORDER_DELAY_MS} ms; $ORDER_CONNECTIONS connections, distinct Idempotency-Keys"
echo "(the simulators run in their own process: sandbox --vendors-only)"
kill "$GW"; wait "$GW" 2>/dev/null || true
OBASE="http://127.0.0.1:$ORDER_PORT"
mkdir -p "$WORK/sims"
common_env "$ORDER_DB" "$SIMS_PORT" SANDBOX_CATALOG_SIZE="$SIZE" \
  "$BIN" sandbox --vendors-only --state-dir "$WORK/sims" --callback-base "$OBASE" >"$WORK/sims.log" 2>&1 &
PIDS+=("$!")
until [ -f "$WORK/sims/vendors.env" ]; do sleep 0.2; done
( set -a; . "$WORK/sims/vendors.env"; set +a
  common_env "$ORDER_DB" "$ORDER_PORT" TEST_MODE=off "$BIN" serve ) >"$WORK/gateway-orders.log" 2>&1 &
OGW=$!
PIDS+=("$OGW")
wait_synced "$OBASE"
OKEY=$(curl -sf -X POST -H "Authorization: Bearer $ADMIN" -H 'content-type: application/json' \
  -d '{"name":"bench-orders"}' "$OBASE/admin/storefronts" | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')
python3 -c '
import json, sys
for v in json.load(open(sys.argv[1]))["vendors"]:
    print(v["vendor"], v["control_url"])
' "$WORK/sims/vendors.json" >"$WORK/sims.txt"
while read -r vendor url; do
  curl -sf -X POST "${url%/}/_sandbox/faults" -H 'content-type: application/json' \
    -d "{\"operation\":\"order\",\"fault\":{\"kind\":\"delay\",\"millis\":$ORDER_DELAY_MS},\"times\":0}" \
    >/dev/null || echo "could not arm the delay on $vendor ($url)"
done <"$WORK/sims.txt"
echo "delay armed on $(wc -l <"$WORK/sims.txt") simulators"
# Cheap plans spread over the vendors (and their simulated balances), each first routed to
# a vendor without a rate limit: an order routed to eSIM Go waits for a slot of its
# documented 10 requests/s, and eSIM Access's simulator refuses past 8 requests/s (the
# order then goes to the next offer), which is those vendors' pace, not the gateway's
# overhead.
curl -sf -H "Authorization: Bearer $OKEY" "$OBASE/v1/plans?limit=200" | python3 -c '
import json, sys, urllib.request
base, admin = sys.argv[1], sys.argv[2]
picked = []
for p in json.load(sys.stdin)["data"]:
    pid = p["id"]
    req = urllib.request.Request(base + "/admin/plans/" + pid + "/offers",
                                 headers={"Authorization": "Bearer " + admin})
    offers = json.loads(urllib.request.urlopen(req).read())["data"]
    if offers and offers[0]["vendor"] not in ("esimgo", "esimaccess"):
        picked.append((pid, offers[0]["vendor"]))
    if len(picked) == 40:
        break
print("\n".join(i for i, _ in picked))
vendors = sorted({v for _, v in picked})
print(len(picked), "plans, first routed to", *vendors, file=sys.stderr)
' "$OBASE" "$ADMIN" >"$WORK/order-plans.txt"
cat >"$WORK/orders.lua" <<EOF
local plans = {}
for line in io.lines("$WORK/order-plans.txt") do plans[#plans + 1] = line end
-- tid is a global: setup() sets it in each thread's own Lua state.
local counter = 0
local threads = 0
local run = "$(date +%s%N)"
function setup(thread) threads = threads + 1; thread:set("tid", threads) end
function request()
  counter = counter + 1
  local plan = plans[(counter % #plans) + 1]
  return wrk.format("POST", "/v1/orders", {
    ["Authorization"] = "Bearer $OKEY",
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = "bench-" .. run .. "-" .. tostring(tid) .. "-" .. tostring(counter),
  }, '{"plan_id":"' .. plan .. '"}')
end
EOF
# A warm-up first, not measured: every pooled connection has prepared and planned the
# order path's statements (Postgres plans each statement afresh for a connection's first
# five executions), as in a gateway that has been running. Then one connection (the
# overhead without queueing), then the measured concurrency; each run with its own keys.
# Before each measured run the orders of the run before have finished: most are placed
# without eSIMs yet and delivered seconds later (polls, callbacks), background work that
# would otherwise land in the next run.
# Orders whose next look is minutes away (a reconciliation backing off) are not waited for.
drain() {
  local waited=0 busy
  while :; do
    busy=$(psql "$DATABASE_SERVER/$ORDER_DB" -Atc "SELECT count(*) FROM orders WHERE status IN ('pending', 'provisioning') AND (lease_until > now() OR next_check_at < now() + interval '5 seconds')")
    [ "$busy" = 0 ] || [ "$waited" -ge 60 ] && break
    sleep 1; waited=$((waited + 1))
  done
  echo "(before the next run: waited ${waited} s for the orders before it to finish; $busy still being worked on, $(psql "$DATABASE_SERVER/$ORDER_DB" -Atc "SELECT count(*) FROM orders WHERE status IN ('pending', 'provisioning')") unfinished)"
}
# The order calls as the gateway timed them (its vendor_request_duration_seconds
# histogram: request sent to body read), summed over the simulators: "seconds count".
vendor_order_calls() {
  curl -sf -H "Authorization: Bearer $ADMIN" "$OBASE/metrics" | python3 -c '
import sys
s = n = 0.0
for line in sys.stdin:
    if line.startswith("vendor_request_duration_seconds_") and "operation=\"order\"" in line:
        name, value = line.split("{")[0], float(line.rsplit(" ", 1)[1])
        if name.endswith("_sum"): s += value
        elif name.endswith("_count"): n += value
print(s, int(n))'
}
# One measured run: wrk with its own keys; prints "req/s p50 p99 avg non-2xx vendor" (ms;
# vendor: the run's mean order call as the gateway timed it).
measure() {
  sed -i "s/^local run = .*/local run = \"$(date +%s%N)\"/" "$WORK/orders.lua"
  read -r s0 n0 <<<"$(vendor_order_calls)"
  wrk -t"$1" -c"$2" -d"$3" --latency -s "$WORK/orders.lua" "$OBASE" >"$4" 2>&1
  read -r s1 n1 <<<"$(vendor_order_calls)"
  python3 - "$4" "$(python3 -c "print(f'{($s1 - $s0) * 1000 / max($n1 - $n0, 1):.2f}')")" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
def ms(v):
    m = re.match(r"([\d.]+)(us|ms|s)", v)
    n, u = float(m.group(1)), m.group(2)
    return n / 1000 if u == "us" else n * 1000 if u == "s" else n
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
p50 = ms(re.search(r"\s50%\s+(\S+)", t).group(1))
p99 = ms(re.search(r"\s99%\s+(\S+)", t).group(1))
avg = ms(re.search(r"Latency\s+(\S+)", t).group(1))
bad = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
print(f"{rps:.0f} {p50:.2f} {p99:.2f} {avg:.2f} {bad.group(1) if bad else 0} {sys.argv[2]}")
PY
}
wrk -t2 -c"$ORDER_CONNECTIONS" -d2s -s "$WORK/orders.lua" "$OBASE" >"$WORK/wrk-orders-warmup.txt" 2>&1
drain
read -r S_RPS S_P50 S_P99 S_AVG S_BAD S_VENDOR <<<"$(measure 1 1 "$ORDER_SINGLE_DURATION" "$WORK/wrk-orders-1.txt")"
echo "one connection: $S_RPS req/s, p50 $S_P50 ms end to end, overhead $(python3 -c "print(f'{$S_P50 - $ORDER_DELAY_MS:.2f}')") ms over the armed delay; mean $S_AVG ms end to end against a mean vendor call of $S_VENDOR ms: $(python3 -c "print(f'{$S_AVG - $S_VENDOR:.2f}')") ms the gateway's own" | tee -a "$SUMMARY"
drain
read -r O_RPS O_P50 O_P99 O_AVG O_BAD O_VENDOR <<<"$(measure 2 "$ORDER_CONNECTIONS" "$ORDER_DURATION" "$WORK/wrk-orders.txt")"
O_RSS_KB=$(ps -o rss= -p "$OGW" | tr -d ' ')
ORDERS_OK=$(psql "$DATABASE_SERVER/$ORDER_DB" -Atc "SELECT count(*) FROM orders")
STATES=$(psql "$DATABASE_SERVER/$ORDER_DB" -Atc "SELECT string_agg(status || ' ' || n, ', ') FROM (SELECT status, count(*) n FROM orders GROUP BY status ORDER BY 2 DESC) s")
OV50=$(python3 -c "print(f'{$O_P50 - $ORDER_DELAY_MS:.2f}')")
OV99=$(python3 -c "print(f'{$O_P99 - $ORDER_DELAY_MS:.2f}')")
row "POST /v1/orders (vendor ${ORDER_DELAY_MS} ms)" "$O_RPS" "$O_P50" "$O_P99" "non-2xx $O_BAD"
echo "orders stored: $ORDERS_OK ($STATES)"
# The vendor call as the gateway timed it (simulator delay + its HTTP round trip): what of
# the end-to-end time is not the gateway's own.
read -r V_P50 V_P99 <<<"$(psql "$DATABASE_SERVER/$ORDER_DB" -Atc "SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms)::numeric, 1), round(percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_ms)::numeric, 1) FROM order_attempts WHERE latency_ms IS NOT NULL" | tr '|' ' ')"
echo "vendor call as timed by the gateway: p50 $V_P50 ms, p99 $V_P99 ms (whole milliseconds, every order of the bench), mean $O_VENDOR ms in the $ORDER_CONNECTIONS-connection run (delay armed: $ORDER_DELAY_MS ms)" | tee -a "$SUMMARY"
echo "$ORDER_CONNECTIONS connections, mean: $O_AVG ms end to end against a mean vendor call of $O_VENDOR ms: $(python3 -c "print(f'{$O_AVG - $O_VENDOR:.2f}')") ms the gateway's own" | tee -a "$SUMMARY"
O_VERDICT=$(python3 -c "print('met' if $OV50 <= 3 and $OV99 <= 15 else 'MISSED')")
echo "order overhead (end-to-end minus the vendor's ${ORDER_DELAY_MS} ms): p50 $OV50 ms, p99 $OV99 ms; goal <=3 / <=15 ms (LiteLLM's published ~3 ms): $O_VERDICT" | tee -a "$SUMMARY"

if [ "$ONLY" != orders ]; then
# ---------------------------------------------------------------- callbacks
echo
echo "## Callbacks: eSIM Go signed Utilisation callbacks, distinct bodies, to a gateway with eSIM Go configured"
# The first gateway was stopped before the orders; stop the orders gateway now.
kill "$OGW"; wait "$OGW" 2>/dev/null || true
# CALLBACK_RATE_LIMIT at its maximum: this measures what ingest can take, not the
# per-vendor cost limit (20/s by default, answered 429 before the body is read).
common_env "$CB_DB" "$CB_PORT" SANDBOX=false ESIMGO_API_KEY="$CB_KEY" ESIMGO_BASE_URL="http://127.0.0.1:9/v2.4" CALLBACK_RATE_LIMIT=100000 \
  "$BIN" serve >"$WORK/gateway-cb.log" 2>&1 &
CB=$!
PIDS+=("$CB")
until curl -sf "$CB_BASE/readyz" >/dev/null; do sleep 0.2; done
python3 - "$CB_KEY" "$CALLBACK_BODIES" "$WORK/callbacks.txt" <<'PY'
import base64, hashlib, hmac, json, sys
key, n, out = sys.argv[1].encode(), int(sys.argv[2]), sys.argv[3]
with open(out, "w") as f:
    for i in range(n):
        body = json.dumps({
            "iccid": "89445385320%09d" % i, "alertType": "Utilisation",
            "bundle": {"id": str(i), "reference": "bench-%d" % i, "name": "esim_1GB_7D_JP_U",
                       "description": "eSIM, 1GB, 7 Days, Japan, Unthrottled",
                       "initialQuantity": 1073741824, "remainingQuantity": 536870912,
                       "startTime": "2026-01-01T00:00:00Z", "endTime": "2026-01-08T00:00:00Z",
                       "unlimited": False}}, separators=(",", ":"))
        sig = base64.b64encode(hmac.new(key, body.encode(), hashlib.sha256).digest()).decode()
        f.write(sig + "\t" + body + "\n")
PY
cat >"$WORK/callbacks.lua" <<EOF
local sigs, bodies = {}, {}
for line in io.lines("$WORK/callbacks.txt") do
  local tab = line:find("\t", 1, true)
  sigs[#sigs + 1] = line:sub(1, tab - 1)
  bodies[#bodies + 1] = line:sub(tab + 1)
end
-- tid is a global: setup() sets it in each thread's own Lua state.
local threads, nthreads, i = 0, 2, 0
function setup(thread) threads = threads + 1; thread:set("tid", threads) end
function request()
  -- Thread t sends bodies t, t+2, t+4, ...: no two requests share a body until they run out.
  local k = ((tid - 1) + i * nthreads) % #bodies + 1
  i = i + 1
  return wrk.format("POST", "/webhooks/esimgo", {
    ["Content-Type"] = "application/json",
    ["X-Signature-SHA256"] = sigs[k],
  }, bodies[k])
end
EOF
wrk -t2 -c"$CONNECTIONS" -d"$CALLBACK_DURATION" --latency -s "$WORK/callbacks.lua" "$CB_BASE" >"$WORK/wrk-callbacks.txt" 2>&1
read -r C_RPS C_P50 C_P99 C_BAD <<<"$(python3 - "$WORK/wrk-callbacks.txt" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
def ms(v):
    m = re.match(r"([\d.]+)(us|ms|s)", v)
    n, u = float(m.group(1)), m.group(2)
    return n / 1000 if u == "us" else n * 1000 if u == "s" else n
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
p50 = ms(re.search(r"\s50%\s+(\S+)", t).group(1))
p99 = ms(re.search(r"\s99%\s+(\S+)", t).group(1))
bad = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
print(f"{rps:.0f} {p50:.2f} {p99:.2f} {bad.group(1) if bad else 0}")
PY
)"
SENT=$(grep -Eo '^ *[0-9]+ requests in' "$WORK/wrk-callbacks.txt" | grep -Eo '[0-9]+')
# Requests still in flight when wrk stopped may land after it; count once the count settles.
count_events() { psql "$DATABASE_SERVER/$CB_DB" -Atc "SELECT count(*) FROM vendor_events WHERE vendor = 'esimgo'"; }
STORED=$(count_events)
while sleep 1; n=$(count_events); [ "$n" != "$STORED" ]; do STORED=$n; done
ANSWERED_OK=$((SENT - C_BAD))
row "POST /webhooks/esimgo (signed)" "$C_RPS" "$C_P50" "$C_P99" "non-2xx $C_BAD"
# Duplicates: 1,000 bodies sent above (wrk builds each thread's first request without
# sending it, so start past the first few) again must store nothing new.
python3 - "$WORK/callbacks.txt" "$CB_BASE" <<'PY'
import sys, urllib.request
lines = open(sys.argv[1]).read().splitlines()[100:1100]
for line in lines:
    sig, body = line.split("\t", 1)
    req = urllib.request.Request(sys.argv[2] + "/webhooks/esimgo", data=body.encode(),
        headers={"Content-Type": "application/json", "X-Signature-SHA256": sig})
    urllib.request.urlopen(req).read()
PY
STORED_AFTER_DUPES=$(psql "$DATABASE_SERVER/$CB_DB" -Atc "SELECT count(*) FROM vendor_events WHERE vendor = 'esimgo'")
LOST=$((ANSWERED_OK > STORED ? ANSWERED_OK - STORED : 0))
C_VERDICT=$(python3 -c "print('met' if $C_RPS >= 2000 and $LOST == 0 and $STORED_AFTER_DUPES == $STORED else 'MISSED')")
echo "callbacks: $SENT answered ($ANSWERED_OK 2xx), $STORED stored, lost $LOST; 1,000 duplicates resent -> $((STORED_AFTER_DUPES - STORED)) new rows" | tee -a "$SUMMARY"
echo "callback ingest $C_RPS/s (anchor: /healthz $H_RPS req/s, ratio $(python3 -c "print(f'{$C_RPS / $H_RPS:.3f}')")); goal >=2000/s, 0 lost: $C_VERDICT" | tee -a "$SUMMARY"
fi

echo
echo "## Summary (same run; anchors: nginx static file of the same body, $NGINX_WORKERS worker; /healthz ${H_RPS:-not run} req/s)"
echo "full sync of 5 x $SIZE offers: $SYNC_S s ($OFFERS offers -> $PLANS plans); goal <=10 s: $(python3 -c "print('met' if $SYNC_S <= 10 else 'MISSED')")"
cat "$SUMMARY"
[ -n "${RSS_KB:-}" ] && echo "resident memory of the gateway with the catalogue loaded and served: $((RSS_KB / 1024)) MiB"
echo "resident memory of the orders gateway (live catalogue, offers cached per ordered plan, vendors in their own process) after its orders: $((O_RSS_KB / 1024)) MiB"
echo "load after: $(uptime | sed 's/.*load average/load average/')"
