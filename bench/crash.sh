#!/usr/bin/env bash
# Crash-safety benchmark (issue 12): the real gateway binary in live mode against the five
# vendor simulators in a process of their own (`esim-gateway sandbox --vendors-only`),
# ORDERS orders over all five vendors from a storefront that retries every request with its
# Idempotency-Key, REPLICAS gateways on one database behind one front door, KILLS SIGKILLs
# (spread over purchases in flight, provisioning and callbacks; each killed replica is
# restarted), then an audit from the vendors' own order records:
#   doubled  gateway orders with more than one vendor order
#   lost     vendor orders no live gateway order accounts for (paid, never delivered)
#   stuck    orders neither terminal nor flagged for attention SETTLE_SECS after the burst
#   recovery time from the last kill until every order was terminal or flagged
#
# Needs: a local PostgreSQL (TEST_DATABASE_URL or DATABASE_URL, default
# postgres://postgres@127.0.0.1:5432/postgres). The harness is tests/crash/ (scenario
# `crash_bench`); the in-CI version runs the same code with tens of orders.
# Usage: bench/crash.sh     ORDERS=500 REPLICAS=3 KILLS=5 CONCURRENCY=16 SETTLE_SECS=180
#        ATTENTION_SECS=60 (ORDER_ATTENTION_AFTER), LEASE_MS (ORDER_LEASE, default the gateway's)
#        PROFILE=dev bench/crash.sh   (debug build instead of release)
set -euo pipefail
cd "$(dirname "$0")/.."

export CRASH_ORDERS=${ORDERS:-500}
export CRASH_REPLICAS=${REPLICAS:-3}
export CRASH_KILLS=${KILLS:-5}
export CRASH_CONCURRENCY=${CONCURRENCY:-16}
export CRASH_SETTLE_SECS=${SETTLE_SECS:-180}
export CRASH_ATTENTION_SECS=${ATTENTION_SECS:-60}
[ -n "${LEASE_MS:-}" ] && export CRASH_LEASE_MS=$LEASE_MS
PROFILE=${PROFILE:-release}

args=(--test crash)
[ "$PROFILE" = release ] && args+=(--release)
echo "commit: $(git rev-parse --short HEAD)  machine: $(nproc) CPU, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "orders=$CRASH_ORDERS replicas=$CRASH_REPLICAS kills=$CRASH_KILLS concurrency=$CRASH_CONCURRENCY settle=${CRASH_SETTLE_SECS}s attention=${CRASH_ATTENTION_SECS}s lease=${CRASH_LEASE_MS:-default}ms profile=$PROFILE"
start=$(date +%s)
status=0
cargo test "${args[@]}" -- --ignored --exact crash_bench --nocapture 2>&1 \
  | grep -E '^(CRASH RESULT|orders=|kills:|final statuses:|storefront saw:|callbacks:|doubled:|lost:|parked:|stuck:|unbacked:|shared:|unanswered:|split:|logs:|  ord_|test result)' \
  || status=$?
echo "wall time: $(( $(date +%s) - start )) s"
exit $status
