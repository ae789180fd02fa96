//! `vendor_events`: every authenticated vendor callback, stored before it is applied.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

pub struct NewEvent<'a> {
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

/// Stores an event unless the same one (vendor + dedupe key) was stored before; returns its
/// id when new.
pub async fn insert(pool: &PgPool, e: &NewEvent<'_>) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar(
        "INSERT INTO vendor_events (vendor, dedupe_key, kind, headers, body, status, error,
             order_ref, iccid, trusted)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (vendor, dedupe_key) DO NOTHING
         RETURNING id",
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
    .fetch_optional(pool)
    .await
}

pub async fn set_status(
    pool: &PgPool,
    id: i64,
    status: &str,
    error: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE vendor_events SET status = $2, error = $3, attempts = attempts + 1,
             applied_at = CASE WHEN $2 IN ('applied', 'matched_hint', 'ignored') THEN now() ELSE applied_at END
         WHERE id = $1",
    )
    .bind(id)
    .bind(status)
    .bind(error)
    .execute(pool)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventRow {
    pub id: i64,
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
}

/// Newest first, optionally filtered; `limit + 1` rows.
pub async fn list(
    pool: &PgPool,
    vendor: Option<&str>,
    status: Option<&str>,
    before_id: Option<i64>,
    limit: i64,
) -> sqlx::Result<Vec<EventRow>> {
    sqlx::query_as(
        "SELECT * FROM vendor_events
         WHERE ($1::text IS NULL OR vendor = $1) AND ($2::text IS NULL OR status = $2)
           AND ($3::bigint IS NULL OR id < $3)
         ORDER BY id DESC LIMIT $4",
    )
    .bind(vendor)
    .bind(status)
    .bind(before_id)
    .bind(limit + 1)
    .fetch_all(pool)
    .await
}

/// Events that arrived before their order existed, for another try.
pub async fn waiting(pool: &PgPool, limit: i64) -> sqlx::Result<Vec<EventRow>> {
    sqlx::query_as(
        "SELECT * FROM vendor_events WHERE status = 'waiting' AND attempts < 60
           AND received_at + make_interval(secs => attempts * attempts) <= now()
         ORDER BY id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await
}
