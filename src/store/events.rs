//! `vendor_events`: every authenticated vendor callback, stored before it is applied.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

pub struct NewEvent<'a> {
    /// The mode the callback was attributed to (which vendor set it is applied with).
    pub livemode: bool,
    pub vendor: &'a str,
    pub dedupe_key: &'a str,
    pub kind: Option<&'a str>,
    pub headers: serde_json::Value,
    pub body: &'a [u8],
    pub status: &'a str,
    pub error: Option<&'a str>,
    pub order_ref: Option<&'a str>,
    pub iccid: Option<&'a str>,
    pub trusted: bool,
}

/// Stores an event unless the same one (vendor + dedupe key) was stored before; returns it
/// when new. With a `lease` it is stored already leased to the caller, who applies it at
/// once (the lease [`lease`] would take): storing and taking it are one statement and one
/// commit, and a crash before it is applied leaves it to the callback worker once the
/// lease runs out.
pub async fn insert(
    pool: &PgPool,
    e: &NewEvent<'_>,
    lease: Option<std::time::Duration>,
) -> sqlx::Result<Option<EventRow>> {
    sqlx::query_as(
        "INSERT INTO vendor_events (vendor, dedupe_key, kind, headers, body, status, error,
             order_ref, iccid, trusted, livemode, lease_until, lease_version)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,
             now() + make_interval(secs => $12), CASE WHEN $12 IS NULL THEN 0 ELSE 1 END)
         ON CONFLICT (livemode, vendor, dedupe_key) DO NOTHING
         RETURNING *",
    )
    .bind(e.vendor)
    .bind(e.dedupe_key)
    .bind(e.kind)
    .bind(&e.headers)
    .bind(e.body)
    .bind(e.status)
    .bind(e.error)
    .bind(e.order_ref)
    .bind(e.iccid)
    .bind(e.trusted)
    .bind(e.livemode)
    .bind(lease.map(|l| l.as_secs_f64()))
    .fetch_optional(pool)
    .await
}

/// An already stored event with this identity (a redelivery).
pub async fn by_key(
    pool: &PgPool,
    livemode: bool,
    vendor: &str,
    dedupe_key: &str,
) -> sqlx::Result<Option<EventRow>> {
    sqlx::query_as(
        "SELECT * FROM vendor_events WHERE vendor = $1 AND dedupe_key = $2 AND livemode = $3",
    )
    .bind(vendor)
    .bind(dedupe_key)
    .bind(livemode)
    .fetch_optional(pool)
    .await
}

/// Statuses after which an event is never applied again.
pub const FINAL: [&str; 4] = ["applied", "matched_hint", "ignored", "unparseable"];

/// Leases one stored event for applying, unless it is final or someone else is on it.
pub async fn lease(
    pool: &PgPool,
    id: i64,
    lease: std::time::Duration,
) -> sqlx::Result<Option<EventRow>> {
    sqlx::query_as(
        "UPDATE vendor_events SET lease_until = now() + make_interval(secs => $2),
             lease_version = lease_version + 1
         WHERE id = $1 AND status IN ('received', 'waiting', 'failed')
           AND (lease_until IS NULL OR lease_until < now())
         RETURNING *",
    )
    .bind(id)
    .bind(lease.as_secs_f64())
    .fetch_optional(pool)
    .await
}

/// Leases up to `limit` events that are not final and due: never applied (a crash between
/// storing and applying), waiting for their order, or failed.
pub async fn lease_due(
    pool: &PgPool,
    limit: i64,
    lease: std::time::Duration,
) -> sqlx::Result<Vec<EventRow>> {
    sqlx::query_as(
        "UPDATE vendor_events SET lease_until = now() + make_interval(secs => $2),
             lease_version = lease_version + 1
         WHERE id IN (
             SELECT id FROM vendor_events
             WHERE status IN ('received', 'waiting', 'failed') AND next_attempt_at <= now()
               AND (lease_until IS NULL OR lease_until < now()) AND attempts < $3
             ORDER BY next_attempt_at, id LIMIT $1
             FOR UPDATE SKIP LOCKED)
           AND (lease_until IS NULL OR lease_until < now())
         RETURNING *",
    )
    .bind(limit)
    .bind(lease.as_secs_f64())
    .bind(MAX_ATTEMPTS)
    .fetch_all(pool)
    .await
}

/// Tries per event before it is left for an admin (about a day at the capped backoff).
pub const MAX_ATTEMPTS: i32 = 200;

/// Records what applying a leased event came to, if the lease is still the caller's; a
/// non-final status comes due again after `retry_in`.
pub async fn finish(
    pool: &PgPool,
    id: i64,
    version: i64,
    status: &str,
    error: Option<&str>,
    retry_in: std::time::Duration,
) -> sqlx::Result<bool> {
    let n = sqlx::query(
        "UPDATE vendor_events SET status = $3, error = $4, attempts = attempts + 1,
             lease_until = NULL, next_attempt_at = now() + make_interval(secs => $5),
             applied_at = CASE WHEN $3 IN ('applied', 'matched_hint', 'ignored') THEN now() ELSE applied_at END
         WHERE id = $1 AND lease_version = $2",
    )
    .bind(id)
    .bind(version)
    .bind(status)
    .bind(error)
    .bind(retry_in.as_secs_f64())
    .execute(pool)
    .await?
    .rows_affected();
    Ok(n == 1)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventRow {
    pub id: i64,
    pub livemode: bool,
    pub vendor: String,
    pub dedupe_key: String,
    pub kind: Option<String>,
    pub headers: serde_json::Value,
    pub body: Vec<u8>,
    pub status: String,
    pub error: Option<String>,
    pub order_ref: Option<String>,
    pub iccid: Option<String>,
    pub received_at: DateTime<Utc>,
    pub applied_at: Option<DateTime<Utc>>,
    pub attempts: i32,
    pub trusted: bool,
    pub lease_version: i64,
}

/// Newest first, optionally filtered; `limit + 1` rows.
pub async fn list(
    pool: &PgPool,
    livemode: Option<bool>,
    vendor: Option<&str>,
    status: Option<&str>,
    before_id: Option<i64>,
    limit: i64,
) -> sqlx::Result<Vec<EventRow>> {
    sqlx::query_as(
        "SELECT * FROM vendor_events
         WHERE ($1::text IS NULL OR vendor = $1) AND ($2::text IS NULL OR status = $2)
           AND ($3::bigint IS NULL OR id < $3) AND ($5::boolean IS NULL OR livemode = $5)
         ORDER BY id DESC LIMIT $4",
    )
    .bind(vendor)
    .bind(status)
    .bind(before_id)
    .bind(limit + 1)
    .bind(livemode)
    .fetch_all(pool)
    .await
}

/// How many unparseable callbacks of `vendor` are kept (their number is capped per vendor).
pub async fn unparseable_count(pool: &PgPool, vendor: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT count(*) FROM vendor_events WHERE vendor = $1 AND status = 'unparseable'",
    )
    .bind(vendor)
    .fetch_one(pool)
    .await
}
