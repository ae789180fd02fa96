//! `vendor_breakers` (one circuit breaker per vendor and mode: a simulator's timeouts
//! never open the live vendor's breaker) and the health window read from
//! `order_attempts`. The breaker rule itself lives in `ordering::breaker`; these functions
//! only load a row under lock, with the database's clock, and write it back.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

/// One vendor's breaker as stored. A vendor without a row is closed with no failures.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct BreakerRow {
    pub livemode: bool,
    pub vendor: String,
    pub consecutive_failures: i32,
    pub opened_at: Option<DateTime<Utc>>,
    pub open_until: Option<DateTime<Utc>>,
    pub probe_version: i64,
    pub probe_expires_at: Option<DateTime<Utc>>,
}

impl BreakerRow {
    pub fn closed(livemode: bool, vendor: &str) -> BreakerRow {
        BreakerRow {
            livemode,
            vendor: vendor.to_string(),
            consecutive_failures: 0,
            opened_at: None,
            open_until: None,
            probe_version: 0,
            probe_expires_at: None,
        }
    }
}

/// A breaker row with the database's clock when it was read.
#[derive(sqlx::FromRow)]
struct WithNow {
    #[sqlx(flatten)]
    row: BreakerRow,
    db_now: DateTime<Utc>,
}

const COLUMNS: &str = "livemode, vendor, consecutive_failures, opened_at, open_until, probe_version, probe_expires_at";

/// Every stored breaker, with the database's clock (every replica judges time by it), in
/// one round trip: this runs before every new order's candidate loop.
pub async fn all(pool: &PgPool) -> sqlx::Result<(Vec<BreakerRow>, DateTime<Utc>)> {
    let rows = sqlx::query_as::<_, WithNow>(&format!(
        "SELECT {COLUMNS}, now() AS db_now FROM vendor_breakers ORDER BY vendor"
    ))
    .fetch_all(pool)
    .await?;
    // No row: every breaker is closed, whatever the time.
    let now = rows.first().map_or_else(Utc::now, |r| r.db_now);
    Ok((rows.into_iter().map(|r| r.row).collect(), now))
}

/// The vendor's breaker locked for update in the caller's transaction (created closed if
/// missing), with the transaction's clock.
pub async fn lock(
    conn: &mut PgConnection,
    livemode: bool,
    vendor: &str,
) -> sqlx::Result<(BreakerRow, DateTime<Utc>)> {
    super::ensure_vendor_row(&mut *conn, "vendor_breakers", livemode, vendor).await?;
    // The transaction's clock comes with the row: `now()` is the same all through it.
    let locked = sqlx::query_as::<_, WithNow>(&format!(
        "SELECT {COLUMNS}, now() AS db_now FROM vendor_breakers
         WHERE vendor = $1 AND livemode = $2 FOR UPDATE"
    ))
    .bind(vendor)
    .bind(livemode)
    .fetch_one(&mut *conn)
    .await?;
    Ok((locked.row, locked.db_now))
}

/// Writes back a row read by [`lock`] in the same transaction.
pub async fn save(conn: &mut PgConnection, row: &BreakerRow) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE vendor_breakers SET consecutive_failures = $2, opened_at = $3, open_until = $4,
             probe_version = $5, probe_expires_at = $6, updated_at = now()
         WHERE vendor = $1 AND livemode = $7",
    )
    .bind(&row.vendor)
    .bind(row.consecutive_failures)
    .bind(row.opened_at)
    .bind(row.open_until)
    .bind(row.probe_version)
    .bind(row.probe_expires_at)
    .bind(row.livemode)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Closes the vendor's breaker and clears its count: what any answer from the vendor does
/// (`ordering::breaker::after` with an answer), as one statement that writes nothing in
/// the usual case of a closed breaker with no failures. Returns whether it changed a row.
pub async fn reset(pool: &PgPool, livemode: bool, vendor: &str) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE vendor_breakers SET consecutive_failures = 0, opened_at = NULL,
             open_until = NULL, probe_expires_at = NULL, updated_at = now()
         WHERE vendor = $1 AND livemode = $2 AND (consecutive_failures <> 0
             OR open_until IS NOT NULL OR probe_expires_at IS NOT NULL)",
    )
    .bind(vendor)
    .bind(livemode)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Gives back a probe lease that was claimed but not used, if it is still that claim's.
pub async fn release_probe(
    pool: &PgPool,
    livemode: bool,
    vendor: &str,
    version: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE vendor_breakers SET probe_expires_at = NULL, updated_at = now()
         WHERE vendor = $1 AND probe_version = $2 AND probe_expires_at IS NOT NULL
           AND livemode = $3",
    )
    .bind(vendor)
    .bind(version)
    .bind(livemode)
    .execute(pool)
    .await?;
    Ok(())
}

/// A vendor's real order attempts over the health window.
#[derive(Debug, Clone, Default, PartialEq, sqlx::FromRow)]
pub struct AttemptWindow {
    pub livemode: bool,
    pub vendor: String,
    /// The vendor has the order.
    pub placed: i64,
    /// Definite refusals (sold out, balance, …): nothing bought.
    pub refused: i64,
    /// No answer (timeout, dropped connection, unreachable), as the outcome stands now.
    pub unknown: i64,
    /// Median latency of the attempts that got an answer or timed out.
    pub latency_p50_ms: Option<i64>,
}

/// [`attempt_window`]'s statement: the attempts of the window by `order_attempts_started`,
/// their orders (for the mode) by primary key, so its cost follows the window, not the
/// history.
pub const ATTEMPT_WINDOW: &str = "SELECT o.livemode, a.vendor,
        count(*) FILTER (WHERE outcome = 'placed') AS placed,
        count(*) FILTER (WHERE outcome = 'rejected') AS refused,
        count(*) FILTER (WHERE outcome IN ('unknown', 'unreachable', 'not_found')) AS unknown,
        (percentile_disc(0.5) WITHIN GROUP (ORDER BY latency_ms))::bigint AS latency_p50_ms
    FROM order_attempts a JOIN orders o ON o.id = a.order_id
    WHERE started_at > now() - make_interval(secs => $1)
    GROUP BY 1, 2 ORDER BY 1 DESC, 2";

/// Per vendor, the attempts started within `window`.
pub async fn attempt_window(pool: &PgPool, window: Duration) -> sqlx::Result<Vec<AttemptWindow>> {
    sqlx::query_as::<_, AttemptWindow>(ATTEMPT_WINDOW)
        .bind(window.as_secs_f64())
        .fetch_all(pool)
        .await
}
