//! `outbox`: storefront events, written in the same transaction as the change they describe
//! and delivered at least once by `workers::outbox`. A row without a storefront is an
//! operator alert (`store::balances::insert_alert`), sent to the operator webhook instead.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

/// Queues an event of one mode for a storefront that has a webhook URL for it (test events:
/// `test_webhook_url` or else `webhook_url`); a storefront without one gets no rows.
/// Returns the event id when queued.
pub async fn insert(
    conn: &mut PgConnection,
    storefront_id: &str,
    livemode: bool,
    event_type: &str,
    payload: &serde_json::Value,
) -> sqlx::Result<Option<String>> {
    let id = crate::domain::ids::new_id("evt");
    sqlx::query_scalar(
        "INSERT INTO outbox (id, storefront_id, event_type, payload, livemode)
         SELECT $1, s.id, $3, $4, $5 FROM storefronts s
         WHERE s.id = $2 AND (s.webhook_url IS NOT NULL OR (NOT $5 AND s.test_webhook_url IS NOT NULL))
         RETURNING id",
    )
    .bind(&id)
    .bind(storefront_id)
    .bind(event_type)
    .bind(payload)
    .bind(livemode)
    .fetch_optional(&mut *conn)
    .await
}

/// Queues operator alert `id` (recorded in `operator_alerts`) for the operator webhook.
pub async fn insert_operator(
    conn: &mut PgConnection,
    livemode: bool,
    id: &str,
    event_type: &str,
    payload: &serde_json::Value,
) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO outbox (id, event_type, payload, livemode) VALUES ($1, $2, $3, $4)")
        .bind(id)
        .bind(event_type)
        .bind(payload)
        .bind(livemode)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Delivery {
    pub id: String,
    /// `None`: an operator alert.
    pub storefront_id: Option<String>,
    pub livemode: bool,
    pub event_type: String,
    pub payload: serde_json::Value,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub webhook_url: Option<String>,
    /// The storefront's; `None` for an operator alert.
    pub webhook_secret: Option<String>,
    /// The claim's fence: the outcome is recorded only while it is still current.
    pub lease_version: i64,
}

/// Claims due events; pushing `next_attempt_at` forward by `lease_secs` is the claim (a
/// crashed worker's events come due again) and the bumped `lease_version` its fence.
/// `SKIP LOCKED` keeps workers on disjoint rows. Operator alerts are claimed only by a
/// worker that has the operator webhook (`operator`).
pub async fn claim_due(
    pool: &PgPool,
    limit: i64,
    lease_secs: i64,
    operator: bool,
) -> sqlx::Result<Vec<Delivery>> {
    sqlx::query_as(
        "WITH due AS (
             SELECT id FROM outbox
             WHERE status = 'pending' AND next_attempt_at <= now()
               AND (storefront_id IS NOT NULL OR $3)
             ORDER BY next_attempt_at LIMIT $1
             FOR UPDATE SKIP LOCKED)
         UPDATE outbox o SET next_attempt_at = now() + make_interval(secs => $2),
             lease_version = o.lease_version + 1
         FROM due
         WHERE o.id = due.id
         RETURNING o.id, o.storefront_id, o.livemode, o.event_type, o.payload, o.status,
             o.attempts, o.next_attempt_at, o.last_error, o.created_at, o.delivered_at,
             (SELECT CASE WHEN o.livemode THEN s.webhook_url
                          ELSE coalesce(s.test_webhook_url, s.webhook_url) END
                 FROM storefronts s WHERE s.id = o.storefront_id) AS webhook_url,
             (SELECT s.webhook_secret FROM storefronts s WHERE s.id = o.storefront_id)
                 AS webhook_secret,
             o.lease_version",
    )
    .bind(limit)
    .bind(lease_secs as f64)
    .bind(operator)
    .fetch_all(pool)
    .await
}

pub async fn record_attempt(
    pool: &PgPool,
    id: &str,
    http_status: Option<u16>,
    error: Option<&str>,
    duration_ms: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO outbox_attempts (outbox_id, http_status, error, duration_ms)
         VALUES ($1, $2, $3, $4)",
    )
    .bind(id)
    .bind(http_status.map(i32::from))
    .bind(error)
    .bind(duration_ms)
    .execute(pool)
    .await?;
    Ok(())
}

/// Marks a claimed event delivered, if the claim (`version`) is still the caller's.
pub async fn mark_delivered(pool: &PgPool, id: &str, version: i64) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE outbox SET status = 'delivered', attempts = attempts + 1, delivered_at = now(),
             last_error = NULL
         WHERE id = $1 AND lease_version = $2",
    )
    .bind(id)
    .bind(version)
    .execute(pool)
    .await?;
    Ok(())
}

/// A failed attempt: retry after `retry_in_ms`, or give up (`dead`) when `give_up`.
pub async fn mark_failed(
    pool: &PgPool,
    id: &str,
    version: i64,
    error: &str,
    retry_in_ms: i64,
    give_up: bool,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE outbox SET attempts = attempts + 1, last_error = $2,
             status = CASE WHEN $4 THEN 'dead' ELSE 'pending' END,
             next_attempt_at = now() + make_interval(secs => $3)
         WHERE id = $1 AND lease_version = $5",
    )
    .bind(id)
    .bind(error)
    .bind(retry_in_ms as f64 / 1000.0)
    .bind(give_up)
    .bind(version)
    .execute(pool)
    .await?;
    Ok(())
}

/// Queues an event again (admin replay), whatever its state.
pub async fn replay(pool: &PgPool, id: &str) -> sqlx::Result<bool> {
    let n =
        sqlx::query("UPDATE outbox SET status = 'pending', next_attempt_at = now() WHERE id = $1")
            .bind(id)
            .execute(pool)
            .await?
            .rows_affected();
    Ok(n == 1)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventRow {
    pub id: String,
    pub storefront_id: String,
    pub livemode: bool,
    pub event_type: String,
    pub payload: serde_json::Value,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

pub async fn list(
    pool: &PgPool,
    storefront_id: Option<&str>,
    livemode: Option<bool>,
    status: Option<&str>,
    before: Option<&str>,
    limit: i64,
) -> sqlx::Result<Vec<EventRow>> {
    sqlx::query_as(
        "SELECT id, storefront_id, livemode, event_type, payload, status, attempts,
                next_attempt_at, last_error, created_at, delivered_at
         FROM outbox
         WHERE storefront_id IS NOT NULL
           AND ($1::text IS NULL OR storefront_id = $1) AND ($2::text IS NULL OR status = $2)
           AND ($3::text IS NULL OR id < $3) AND ($5::boolean IS NULL OR livemode = $5)
         ORDER BY id DESC LIMIT $4",
    )
    .bind(storefront_id)
    .bind(status)
    .bind(before)
    .bind(limit + 1)
    .bind(livemode)
    .fetch_all(pool)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AttemptRow {
    pub outbox_id: String,
    pub attempted_at: DateTime<Utc>,
    pub http_status: Option<i32>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

pub async fn attempts(pool: &PgPool, ids: &[String]) -> sqlx::Result<Vec<AttemptRow>> {
    sqlx::query_as(
        "SELECT outbox_id, attempted_at, http_status, error, duration_ms FROM outbox_attempts
         WHERE outbox_id = ANY($1) ORDER BY id",
    )
    .bind(ids)
    .fetch_all(pool)
    .await
}
