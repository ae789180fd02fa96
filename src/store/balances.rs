//! `vendor_balances` (the last prepaid balance read from each vendor) and `operator_alerts`.
//! The rules (what is low, what a crossing is, who may be routed to) live in
//! `ordering::balances`; these functions only claim a read, load a row under lock and
//! write it back, with the database's clock.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgPool};

/// One vendor's stored balance. A vendor without a row has never been read.
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct BalanceRow {
    pub livemode: bool,
    pub vendor: String,
    /// The last balance read successfully, kept while later reads fail.
    pub amount: Option<Decimal>,
    pub currency: Option<String>,
    pub read_at: Option<DateTime<Utc>>,
    /// False once the vendor answered that its API has no balance operation.
    pub supported: bool,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    /// The low threshold the last read was judged by, in `currency`.
    pub threshold: Option<Decimal>,
    pub low: bool,
    pub low_since: Option<DateTime<Utc>>,
}

const COLUMNS: &str =
    "livemode, vendor, amount, currency, read_at, supported, last_error, last_error_at,
     threshold, low, low_since";

/// Every stored balance of one mode, one round trip (routing reads it before every new
/// order).
pub async fn all(pool: &PgPool, livemode: bool) -> sqlx::Result<Vec<BalanceRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM vendor_balances WHERE livemode = $1 ORDER BY vendor"
    ))
    .bind(livemode)
    .fetch_all(pool)
    .await
}

/// Claims the next read of `vendor`'s balance for this caller when no read was claimed
/// within `not_since` (by any replica). Returns whether the caller should read it now.
pub async fn claim_refresh(
    pool: &PgPool,
    livemode: bool,
    vendor: &str,
    not_since: Duration,
) -> sqlx::Result<bool> {
    let claimed: Option<String> = sqlx::query_scalar(
        "INSERT INTO vendor_balances (livemode, vendor, refresh_started_at)
         VALUES ($3, $1, now())
         ON CONFLICT (livemode, vendor) DO UPDATE SET refresh_started_at = now()
         WHERE vendor_balances.refresh_started_at IS NULL
            OR vendor_balances.refresh_started_at <= now() - make_interval(secs => $2)
         RETURNING vendor",
    )
    .bind(vendor)
    .bind(not_since.as_secs_f64())
    .bind(livemode)
    .fetch_optional(pool)
    .await?;
    Ok(claimed.is_some())
}

/// The database's clock: every replica dates its reads by it.
pub async fn db_now(pool: &PgPool) -> sqlx::Result<DateTime<Utc>> {
    sqlx::query_scalar("SELECT now()").fetch_one(pool).await
}

/// The vendor's row locked for update in the caller's transaction (created empty if
/// missing).
pub async fn lock(
    conn: &mut PgConnection,
    livemode: bool,
    vendor: &str,
) -> sqlx::Result<BalanceRow> {
    super::ensure_vendor_row(&mut *conn, "vendor_balances", livemode, vendor).await?;
    sqlx::query_as::<_, BalanceRow>(&format!(
        "SELECT {COLUMNS} FROM vendor_balances WHERE vendor = $1 AND livemode = $2 FOR UPDATE"
    ))
    .bind(vendor)
    .bind(livemode)
    .fetch_one(&mut *conn)
    .await
}

/// Writes back a row read by [`lock`] in the same transaction.
pub async fn save(conn: &mut PgConnection, row: &BalanceRow) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE vendor_balances SET amount = $2, currency = $3, read_at = $4, supported = $5,
             last_error = $6, last_error_at = $7, threshold = $8, low = $9, low_since = $10,
             updated_at = now()
         WHERE vendor = $1 AND livemode = $11",
    )
    .bind(&row.vendor)
    .bind(row.amount)
    .bind(&row.currency)
    .bind(row.read_at)
    .bind(row.supported)
    .bind(&row.last_error)
    .bind(row.last_error_at)
    .bind(row.threshold)
    .bind(row.low)
    .bind(row.low_since)
    .bind(row.livemode)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Total costs (amount, currency) of the vendor's last `limit` placed order attempts in
/// one mode: what "an average order" at this vendor costs.
pub async fn recent_placed_costs(
    pool: &PgPool,
    livemode: bool,
    vendor: &str,
    limit: i64,
) -> sqlx::Result<Vec<(Decimal, String)>> {
    sqlx::query_as(
        "SELECT a.cost_amount, trim(a.cost_currency) FROM order_attempts a
         JOIN orders o ON o.id = a.order_id
         WHERE a.vendor = $1 AND a.outcome = 'placed' AND a.cost_amount IS NOT NULL
           AND a.cost_currency IS NOT NULL AND o.livemode = $3
         ORDER BY a.started_at DESC LIMIT $2",
    )
    .bind(vendor)
    .bind(limit)
    .bind(livemode)
    .fetch_all(pool)
    .await
}

/// Records an operator alert in the caller's transaction; returns its event id.
pub async fn insert_alert(
    conn: &mut PgConnection,
    livemode: bool,
    event_type: &str,
    vendor: Option<&str>,
    payload: &serde_json::Value,
) -> sqlx::Result<String> {
    let id = crate::domain::ids::new_id("evt");
    sqlx::query(
        "INSERT INTO operator_alerts (id, event_type, vendor, payload, livemode)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&id)
    .bind(event_type)
    .bind(vendor)
    .bind(payload)
    .bind(livemode)
    .execute(&mut *conn)
    .await?;
    Ok(id)
}

/// One operator alert and, when it was queued for the operator webhook, its delivery.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AlertRow {
    pub id: String,
    pub livemode: bool,
    pub event_type: String,
    pub vendor: Option<String>,
    pub payload: serde_json::Value,
    pub created_at: DateTime<Utc>,
    /// `pending`, `delivered` or `dead`; `None` when not queued (no operator webhook).
    pub delivery_status: Option<String>,
    pub delivery_attempts: Option<i32>,
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// Alerts newest first, `limit + 1` rows (for paging), before the cursor id.
pub async fn list_alerts(
    pool: &PgPool,
    event_type: Option<&str>,
    livemode: Option<bool>,
    before: Option<&str>,
    limit: i64,
) -> sqlx::Result<Vec<AlertRow>> {
    sqlx::query_as(
        "SELECT a.id, a.livemode, a.event_type, a.vendor, a.payload, a.created_at,
                o.status AS delivery_status, o.attempts AS delivery_attempts, o.last_error,
                o.delivered_at
         FROM operator_alerts a LEFT JOIN outbox o ON o.id = a.id
         WHERE ($1::text IS NULL OR a.event_type = $1) AND ($2::text IS NULL OR a.id < $2)
           AND ($4::boolean IS NULL OR a.livemode = $4)
         ORDER BY a.id DESC LIMIT $3",
    )
    .bind(event_type)
    .bind(before)
    .bind(limit + 1)
    .bind(livemode)
    .fetch_all(pool)
    .await
}
