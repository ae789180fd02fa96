//! `orders` and `order_attempts`: every order, its idempotency record and every vendor tried.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgExecutor, PgPool, Postgres, QueryBuilder};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrderRow {
    pub id: String,
    pub storefront_id: String,
    pub kind: String,
    pub status: String,
    pub plan_id: String,
    pub quantity: i32,
    pub price_amount: Decimal,
    pub price_currency: String,
    pub reference: Option<String>,
    pub customer_email: Option<String>,
    pub target_iccid: Option<String>,
    pub idempotency_key: String,
    pub request_hash: Vec<u8>,
    pub response_status: Option<i32>,
    pub response_body: Option<serde_json::Value>,
    pub vendor: Option<String>,
    pub vendor_offer_id: Option<i64>,
    pub vendor_reference: Option<String>,
    pub cost_amount: Option<Decimal>,
    pub cost_currency: Option<String>,
    pub retail_cost_amount: Option<Decimal>,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub checks: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A new order row, claimed under its idempotency key.
pub struct NewOrderRow<'a> {
    pub id: &'a str,
    pub storefront_id: &'a str,
    pub kind: &'a str,
    pub plan_id: &'a str,
    pub quantity: i32,
    pub price_amount: Decimal,
    pub price_currency: &'a str,
    pub reference: Option<&'a str>,
    pub customer_email: Option<&'a str>,
    pub target_iccid: Option<&'a str>,
    pub idempotency_key: &'a str,
    pub request_hash: &'a [u8],
}

/// Inserts the order unless the storefront already used this idempotency key; the unique
/// constraint decides between concurrent duplicates. `true` when this call created it.
/// The creator holds a lease so the provisioner leaves the order alone while it buys.
pub async fn claim(pool: &PgPool, o: &NewOrderRow<'_>, lease_secs: i64) -> sqlx::Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO orders (id, storefront_id, kind, status, plan_id, quantity, price_amount,
             price_currency, reference, customer_email, target_iccid, idempotency_key,
             request_hash, lease_until)
         VALUES ($1, $2, $3, 'pending', $4, $5, $6, $7, $8, $9, $10, $11, $12,
             now() + make_interval(secs => $13))
         ON CONFLICT (storefront_id, idempotency_key) DO NOTHING",
    )
    .bind(o.id)
    .bind(o.storefront_id)
    .bind(o.kind)
    .bind(o.plan_id)
    .bind(o.quantity)
    .bind(o.price_amount)
    .bind(o.price_currency)
    .bind(o.reference)
    .bind(o.customer_email)
    .bind(o.target_iccid)
    .bind(o.idempotency_key)
    .bind(o.request_hash)
    .bind(lease_secs as f64)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

pub async fn by_idempotency_key(
    pool: &PgPool,
    storefront_id: &str,
    key: &str,
) -> sqlx::Result<Option<OrderRow>> {
    sqlx::query_as("SELECT * FROM orders WHERE storefront_id = $1 AND idempotency_key = $2")
        .bind(storefront_id)
        .bind(key)
        .fetch_optional(pool)
        .await
}

pub async fn get<'e>(ex: impl PgExecutor<'e>, id: &str) -> sqlx::Result<Option<OrderRow>> {
    sqlx::query_as("SELECT * FROM orders WHERE id = $1")
        .bind(id)
        .fetch_optional(ex)
        .await
}

/// An order only if it belongs to this storefront (tenant isolation in the query itself).
pub async fn get_for(
    pool: &PgPool,
    storefront_id: &str,
    id: &str,
) -> sqlx::Result<Option<OrderRow>> {
    sqlx::query_as("SELECT * FROM orders WHERE id = $1 AND storefront_id = $2")
        .bind(id)
        .bind(storefront_id)
        .fetch_optional(pool)
        .await
}

/// Saves the first answer given for this order, for idempotent replays. Never overwritten:
/// `false` when an answer was already saved.
pub async fn save_response(
    pool: &PgPool,
    id: &str,
    status: u16,
    body: &serde_json::Value,
) -> sqlx::Result<bool> {
    let saved = sqlx::query(
        "UPDATE orders SET response_status = $2, response_body = $3
         WHERE id = $1 AND response_status IS NULL",
    )
    .bind(id)
    .bind(i32::from(status))
    .bind(body)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(saved == 1)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AttemptRow {
    pub id: i64,
    pub order_id: String,
    pub seq: i32,
    pub vendor: String,
    pub vendor_offer_id: Option<i64>,
    pub sku: Option<String>,
    pub outcome: String,
    pub vendor_reference: Option<String>,
    pub error_kind: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub cost_amount: Option<Decimal>,
    pub cost_currency: Option<String>,
    pub latency_ms: Option<i64>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

pub async fn attempts(pool: &PgPool, order_id: &str) -> sqlx::Result<Vec<AttemptRow>> {
    sqlx::query_as("SELECT * FROM order_attempts WHERE order_id = $1 ORDER BY seq")
        .bind(order_id)
        .fetch_all(pool)
        .await
}

/// The attempts of several orders, in order per order.
pub async fn attempts_for(pool: &PgPool, order_ids: &[String]) -> sqlx::Result<Vec<AttemptRow>> {
    sqlx::query_as("SELECT * FROM order_attempts WHERE order_id = ANY($1) ORDER BY order_id, seq")
        .bind(order_ids)
        .fetch_all(pool)
        .await
}

/// Records that a vendor is about to be called. Written before the call so that a crash
/// during it leaves an attempt the provisioner reconciles.
pub async fn start_attempt(
    pool: &PgPool,
    order_id: &str,
    vendor: &str,
    offer_id: i64,
    sku: &str,
    cost: (Decimal, &str),
) -> sqlx::Result<AttemptRow> {
    sqlx::query_as(
        "INSERT INTO order_attempts (order_id, seq, vendor, vendor_offer_id, sku, outcome,
             cost_amount, cost_currency)
         VALUES ($1, (SELECT coalesce(max(seq), 0) + 1 FROM order_attempts WHERE order_id = $1),
             $2, $3, $4, 'pending', $5, $6)
         RETURNING *",
    )
    .bind(order_id)
    .bind(vendor)
    .bind(offer_id)
    .bind(sku)
    .bind(cost.0)
    .bind(cost.1)
    .fetch_one(pool)
    .await
}

pub struct AttemptResult<'a> {
    pub outcome: &'a str,
    pub vendor_reference: Option<&'a str>,
    pub error_kind: Option<&'a str>,
    pub error_code: Option<&'a str>,
    pub error_message: Option<&'a str>,
    pub latency_ms: Option<i64>,
}

pub async fn finish_attempt(pool: &PgPool, id: i64, r: &AttemptResult<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE order_attempts SET outcome = $2,
             vendor_reference = coalesce($3, vendor_reference), error_kind = $4,
             error_code = $5, error_message = $6,
             latency_ms = coalesce($7, latency_ms), finished_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .bind(r.outcome)
    .bind(r.vendor_reference)
    .bind(r.error_kind)
    .bind(r.error_code)
    .bind(r.error_message)
    .bind(r.latency_ms)
    .execute(pool)
    .await?;
    Ok(())
}

/// The vendor accepted the order: remember what was bought, from whom, at what cost.
pub async fn mark_placed(
    pool: &PgPool,
    id: &str,
    attempt: &AttemptRow,
    vendor_reference: Option<&str>,
    retail_cost: Option<Decimal>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE orders SET status = 'provisioning', vendor = $2, vendor_offer_id = $3,
             vendor_reference = coalesce($4, vendor_reference), cost_amount = $5,
             cost_currency = $6, retail_cost_amount = $7, updated_at = now()
         WHERE id = $1 AND status IN ('pending', 'provisioning')",
    )
    .bind(id)
    .bind(&attempt.vendor)
    .bind(attempt.vendor_offer_id)
    .bind(vendor_reference)
    .bind(attempt.cost_amount)
    .bind(&attempt.cost_currency)
    .bind(retail_cost)
    .execute(pool)
    .await?;
    Ok(())
}

/// Outcome unknown at a vendor: wait for reconciliation, never buy elsewhere meanwhile.
pub async fn mark_awaiting_vendor(pool: &PgPool, id: &str, vendor: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE orders SET status = 'provisioning', vendor = $2, updated_at = now()
         WHERE id = $1 AND status IN ('pending', 'provisioning')",
    )
    .bind(id)
    .bind(vendor)
    .execute(pool)
    .await?;
    Ok(())
}

/// Moves an unfinished order to `completed`; a no-op when something else got there first.
pub async fn complete(conn: &mut PgConnection, id: &str) -> sqlx::Result<bool> {
    let n = sqlx::query(
        "UPDATE orders SET status = 'completed', lease_until = NULL, updated_at = now()
         WHERE id = $1 AND status IN ('pending', 'provisioning')",
    )
    .bind(id)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

pub async fn fail(
    conn: &mut PgConnection,
    id: &str,
    code: &str,
    message: &str,
) -> sqlx::Result<bool> {
    let n = sqlx::query(
        "UPDATE orders SET status = 'failed', failure_code = $2, failure_message = $3,
             vendor = NULL, vendor_offer_id = NULL, cost_amount = NULL, cost_currency = NULL,
             retail_cost_amount = NULL, lease_until = NULL, updated_at = now()
         WHERE id = $1 AND status IN ('pending', 'provisioning')",
    )
    .bind(id)
    .bind(code)
    .bind(message)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

pub async fn mark_cancelled(conn: &mut PgConnection, id: &str, note: &str) -> sqlx::Result<bool> {
    let n = sqlx::query(
        "UPDATE orders SET status = 'cancelled', failure_message = $2, updated_at = now()
         WHERE id = $1 AND status = 'completed'",
    )
    .bind(id)
    .bind(note)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Releases the caller's lease and schedules the provisioner's next look.
pub async fn release(pool: &PgPool, id: &str, next_check_in_ms: i64) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE orders SET lease_until = NULL,
             next_check_at = now() + make_interval(secs => $2)
         WHERE id = $1",
    )
    .bind(id)
    .bind(next_check_in_ms as f64 / 1000.0)
    .execute(pool)
    .await?;
    Ok(())
}

/// Asks the provisioner to look at an order now (a vendor hinted that something changed).
pub async fn poke(pool: &PgPool, id: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE orders SET next_check_at = now()
         WHERE id = $1 AND status IN ('pending', 'provisioning')",
    )
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Claims up to `limit` unfinished orders that are due and not leased by anyone, leasing
/// them for `lease_secs`. `SKIP LOCKED` lets several replicas claim disjoint sets.
pub async fn claim_due(pool: &PgPool, limit: i64, lease_secs: i64) -> sqlx::Result<Vec<OrderRow>> {
    sqlx::query_as(
        "UPDATE orders SET lease_until = now() + make_interval(secs => $2), checks = checks + 1
         WHERE id IN (
             SELECT id FROM orders
             WHERE status IN ('pending', 'provisioning') AND next_check_at <= now()
               AND (lease_until IS NULL OR lease_until < now())
             ORDER BY next_check_at
             LIMIT $1
             FOR UPDATE SKIP LOCKED)
         RETURNING *",
    )
    .bind(limit)
    .bind(lease_secs as f64)
    .fetch_all(pool)
    .await
}

/// Takes the lease on one order (admin reconcile); `None` when someone else holds it.
pub async fn lease_one(pool: &PgPool, id: &str, lease_secs: i64) -> sqlx::Result<Option<OrderRow>> {
    sqlx::query_as(
        "UPDATE orders SET lease_until = now() + make_interval(secs => $2)
         WHERE id = $1 AND (lease_until IS NULL OR lease_until < now())
         RETURNING *",
    )
    .bind(id)
    .bind(lease_secs as f64)
    .fetch_optional(pool)
    .await
}

#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    pub storefront_id: Option<String>,
    pub status: Option<String>,
    pub reference: Option<String>,
    /// Keyset: orders strictly older than this (created_at, id).
    pub before: Option<(DateTime<Utc>, String)>,
    pub limit: i64,
}

/// Newest first; `limit + 1` rows so the caller knows whether more follow.
pub async fn list(pool: &PgPool, f: &OrderFilter) -> sqlx::Result<Vec<OrderRow>> {
    let mut q: QueryBuilder<'_, Postgres> = QueryBuilder::new("SELECT * FROM orders WHERE true");
    if let Some(sf) = &f.storefront_id {
        q.push(" AND storefront_id = ").push_bind(sf.clone());
    }
    if let Some(s) = &f.status {
        q.push(" AND status = ").push_bind(s.clone());
    }
    if let Some(r) = &f.reference {
        q.push(" AND reference = ").push_bind(r.clone());
    }
    if let Some((at, id)) = &f.before {
        q.push(" AND (created_at, id) < (")
            .push_bind(*at)
            .push(", ")
            .push_bind(id.clone())
            .push(")");
    }
    q.push(" ORDER BY created_at DESC, id DESC LIMIT ")
        .push_bind(f.limit + 1);
    q.build_query_as().fetch_all(pool).await
}
