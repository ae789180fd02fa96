//! `orders` and `order_attempts`: every order, its idempotency record and every vendor tried.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgExecutor, PgPool, Postgres, QueryBuilder};

use crate::{
    domain::{
        attempt::AttemptOutcome,
        order::{OrderKind, OrderStatus},
    },
    vendors::VendorId,
};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrderRow {
    pub id: String,
    pub storefront_id: String,
    /// Live or test: which vendor set may fill it, and which keys see it.
    pub livemode: bool,
    pub kind: OrderKind,
    pub status: OrderStatus,
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
    /// Bumped by every claim: the fence a lease holder's writes check.
    pub lease_version: i64,
    pub attention_reason: Option<String>,
    pub attention_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A new order row, claimed under its idempotency key.
pub struct NewOrderRow<'a> {
    pub id: &'a str,
    pub storefront_id: &'a str,
    pub livemode: bool,
    pub kind: OrderKind,
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

/// The insert of a new order under its idempotency key, binding `$1`–`$14` as
/// [`bind_new_order`] does: nothing when the key is taken.
pub(super) const INSERT_NEW_ORDER: &str =
    "INSERT INTO orders (id, storefront_id, kind, status, plan_id, quantity, price_amount,
         price_currency, reference, customer_email, target_iccid, idempotency_key,
         request_hash, lease_until, lease_version, livemode)
     VALUES ($1, $2, $3, 'pending', $4, $5, $6, $7, $8, $9, $10, $11, $12,
         now() + make_interval(secs => $13), 1, $14)
     ON CONFLICT (storefront_id, livemode, idempotency_key) DO NOTHING
     RETURNING *";

/// Binds `o` and its lease as `$1`–`$14` of [`INSERT_NEW_ORDER`].
pub(super) fn bind_new_order<'q>(
    q: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    o: &NewOrderRow<'q>,
    lease: std::time::Duration,
) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
    q.bind(o.id)
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
        .bind(lease.as_secs_f64())
        .bind(o.livemode)
}

/// Inserts the order unless the storefront already used this idempotency key; the unique
/// constraint decides between concurrent duplicates. `Some(row)` when this call created it.
/// The creator holds the first lease (version 1) so nobody else touches the order while
/// it buys.
pub async fn claim<'e>(
    ex: impl PgExecutor<'e>,
    o: &NewOrderRow<'_>,
    lease: std::time::Duration,
) -> sqlx::Result<Option<OrderRow>> {
    let row = bind_new_order(sqlx::query(INSERT_NEW_ORDER), o, lease)
        .fetch_optional(ex)
        .await?;
    row.map(|r| <OrderRow as sqlx::FromRow<sqlx::postgres::PgRow>>::from_row(&r))
        .transpose()
}

pub async fn by_idempotency_key(
    pool: &PgPool,
    storefront_id: &str,
    livemode: bool,
    key: &str,
) -> sqlx::Result<Option<OrderRow>> {
    sqlx::query_as(
        "SELECT * FROM orders WHERE storefront_id = $1 AND idempotency_key = $2 AND livemode = $3",
    )
    .bind(storefront_id)
    .bind(key)
    .bind(livemode)
    .fetch_optional(pool)
    .await
}

pub async fn get<'e>(ex: impl PgExecutor<'e>, id: &str) -> sqlx::Result<Option<OrderRow>> {
    sqlx::query_as("SELECT * FROM orders WHERE id = $1")
        .bind(id)
        .fetch_optional(ex)
        .await
}

/// An order only if it belongs to this storefront and mode (tenant and mode isolation in
/// the query itself).
pub async fn get_for(
    pool: &PgPool,
    storefront_id: &str,
    livemode: bool,
    id: &str,
) -> sqlx::Result<Option<OrderRow>> {
    sqlx::query_as("SELECT * FROM orders WHERE id = $1 AND storefront_id = $2 AND livemode = $3")
        .bind(id)
        .bind(storefront_id)
        .bind(livemode)
        .fetch_optional(pool)
        .await
}

/// The first answer given for an order's idempotency key, stored as it was sent (status and
/// JSON body) so that every replay is byte-identical to it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredAnswer {
    pub status: u16,
    pub body: serde_json::Value,
}

impl StoredAnswer {
    /// The answer to a request that created an order (`201 Created`).
    pub const CREATED: u16 = 201;

    pub fn created(body: serde_json::Value) -> Self {
        StoredAnswer {
            status: Self::CREATED,
            body,
        }
    }
}

impl OrderRow {
    /// The answer saved for this order, if one was.
    pub fn stored_answer(&self) -> Option<StoredAnswer> {
        let status = self.response_status?;
        let body = self.response_body.clone()?;
        Some(StoredAnswer {
            status: u16::try_from(status).unwrap_or(StoredAnswer::CREATED),
            body,
        })
    }
}

/// Whether nobody holds the order's lease (its holder finished, or died and it lapsed).
pub async fn lease_lapsed(pool: &PgPool, id: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "SELECT lease_until IS NULL OR lease_until < now() FROM orders WHERE id = $1",
    )
    .bind(id)
    .fetch_one(pool)
    .await
}

/// [`by_vendor_reference`]'s statement: a union of two indexed lookups (with an `OR`
/// across the two tables Postgres can only scan every order).
pub const BY_VENDOR_REFERENCE: &str = "SELECT o.* FROM orders o
     WHERE o.livemode = $3 AND o.id IN (
         SELECT id FROM orders WHERE vendor = $1 AND vendor_reference = $2
         UNION ALL
         SELECT order_id FROM order_attempts WHERE vendor = $1 AND vendor_reference = $2)
     LIMIT 1";

/// The order that holds this vendor order: by the reference on the order, or on one of
/// its attempts at that vendor.
pub async fn by_vendor_reference(
    pool: &PgPool,
    livemode: bool,
    vendor: VendorId,
    reference: &str,
) -> sqlx::Result<Option<OrderRow>> {
    sqlx::query_as(BY_VENDOR_REFERENCE)
        .bind(vendor.as_str())
        .bind(reference)
        .bind(livemode)
        .fetch_optional(pool)
        .await
}

/// Saves the first answer given for this order, for idempotent replays. Never overwritten:
/// `false` when an answer was already saved.
pub async fn save_response<'e>(
    ex: impl PgExecutor<'e>,
    id: &str,
    answer: &StoredAnswer,
) -> sqlx::Result<bool> {
    let (status, body) = (answer.status, &answer.body);
    let saved = sqlx::query(
        "UPDATE orders SET response_status = $2, response_body = $3
         WHERE id = $1 AND response_status IS NULL",
    )
    .bind(id)
    .bind(i32::from(status))
    .bind(body)
    .execute(ex)
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
    pub outcome: AttemptOutcome,
    pub vendor_reference: Option<String>,
    pub error_kind: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub cost_amount: Option<Decimal>,
    pub cost_currency: Option<String>,
    /// What the vendor said it charged, when it says (`store::routings::set_charged`).
    pub charged_amount: Option<Decimal>,
    pub charged_currency: Option<String>,
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

/// Records that a vendor is about to be called. Written (and committed) before the call so
/// that a crash during it leaves an attempt the next lease holder reconciles.
pub async fn start_attempt(
    conn: &mut PgConnection,
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
    .fetch_one(&mut *conn)
    .await
}

pub struct AttemptResult<'a> {
    pub outcome: AttemptOutcome,
    pub vendor_reference: Option<&'a str>,
    pub error_kind: Option<&'a str>,
    pub error_code: Option<&'a str>,
    pub error_message: Option<&'a str>,
    pub latency_ms: Option<i64>,
}

/// Records what became of an attempt. A `placed` attempt is a fact about money spent and
/// is never overwritten by a later, weaker outcome.
pub async fn finish_attempt(
    conn: &mut PgConnection,
    id: i64,
    r: &AttemptResult<'_>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE order_attempts SET outcome = $2,
             vendor_reference = coalesce($3, vendor_reference), error_kind = $4,
             error_code = $5, error_message = $6,
             latency_ms = coalesce($7, latency_ms), finished_at = coalesce(finished_at, now())
         WHERE id = $1 AND (outcome <> 'placed' OR $2 = 'placed')",
    )
    .bind(id)
    .bind(r.outcome)
    .bind(r.vendor_reference)
    .bind(r.error_kind)
    .bind(r.error_code)
    .bind(r.error_message)
    .bind(r.latency_ms)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Why a placed attempt has not delivered yet, for operators (`/admin/orders/{id}`): the
/// outcome stays `placed`; only the note changes, and only when it says something new.
pub async fn note_attempt(pool: &PgPool, id: i64, note: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE order_attempts SET error_message = $2
         WHERE id = $1 AND outcome = 'placed' AND error_message IS DISTINCT FROM $2",
    )
    .bind(id)
    .bind(note)
    .execute(pool)
    .await?;
    Ok(())
}

/// The vendor accepted the order: the attempt is `placed` (with the vendor's reference and
/// the call's latency) and the order remembers what was bought, from whom, at what cost.
/// One statement: the attempt's update is a data-modifying CTE, which Postgres runs
/// whether or not the order still takes the change (a finished order keeps its status,
/// its attempt still records the purchase).
pub async fn mark_placed(
    conn: &mut PgConnection,
    id: &str,
    attempt: &AttemptRow,
    vendor_reference: Option<&str>,
    latency_ms: Option<i64>,
    retail_cost: Option<Decimal>,
) -> sqlx::Result<Option<OrderRow>> {
    sqlx::query_as(
        "WITH attempt AS (
             UPDATE order_attempts SET outcome = 'placed',
                 vendor_reference = coalesce($4, vendor_reference), error_kind = NULL,
                 error_code = NULL, error_message = NULL,
                 latency_ms = coalesce($9, latency_ms),
                 finished_at = coalesce(finished_at, now())
             WHERE id = $8
         )
         UPDATE orders SET status = 'provisioning', vendor = $2, vendor_offer_id = $3,
             vendor_reference = coalesce($4, vendor_reference), cost_amount = $5,
             cost_currency = $6, retail_cost_amount = coalesce($7, retail_cost_amount),
             updated_at = now()
         WHERE id = $1 AND status IN ('pending', 'provisioning')
         RETURNING *",
    )
    .bind(id)
    .bind(&attempt.vendor)
    .bind(attempt.vendor_offer_id)
    .bind(vendor_reference)
    .bind(attempt.cost_amount)
    .bind(&attempt.cost_currency)
    .bind(retail_cost)
    .bind(attempt.id)
    .bind(latency_ms)
    .fetch_optional(&mut *conn)
    .await
}

/// Another new-eSIM order that already holds this vendor order (its reference on a placed
/// attempt) or one of these ICCIDs: a vendor order belongs to one gateway order only.
///
/// Two statements, each sent only when it has something to look for, rather than one
/// `UNION` guarded by "reference is not null": Postgres planned that one afresh on every
/// purchase (a generic plan never looked as cheap), which cost more than the lookup. The
/// kind is a per-row subquery, not a join, so each starts from its index whatever the
/// statistics say (a new deployment's first orders).
pub async fn other_holder(
    conn: &mut PgConnection,
    order_id: &str,
    vendor: &str,
    vendor_reference: Option<&str>,
    iccids: &[String],
) -> sqlx::Result<Option<String>> {
    if let Some(reference) = vendor_reference {
        let holder = sqlx::query_scalar(
            "SELECT a.order_id FROM order_attempts a
             WHERE a.vendor = $2 AND a.vendor_reference = $3 AND a.outcome = 'placed'
               AND a.order_id <> $1
               AND (SELECT o.kind FROM orders o WHERE o.id = a.order_id) = 'new'
             LIMIT 1",
        )
        .bind(order_id)
        .bind(vendor)
        .bind(reference)
        .fetch_optional(&mut *conn)
        .await?;
        if holder.is_some() {
            return Ok(holder);
        }
    }
    if iccids.is_empty() {
        return Ok(None);
    }
    sqlx::query_scalar(
        "SELECT e.order_id FROM esims e
         WHERE e.iccid = ANY($2) AND e.order_id <> $1
           AND (SELECT o.kind FROM orders o WHERE o.id = e.order_id) = 'new'
         LIMIT 1",
    )
    .bind(order_id)
    .bind(iccids)
    .fetch_optional(&mut *conn)
    .await
}

/// Flags an order for an operator now (not waiting for its deadline); `false` when it was
/// flagged already.
pub async fn flag_attention(conn: &mut PgConnection, id: &str, reason: &str) -> sqlx::Result<bool> {
    let n = sqlx::query(
        "UPDATE orders SET attention_at = now(), attention_reason = $2
         WHERE id = $1 AND attention_at IS NULL",
    )
    .bind(id)
    .bind(reason)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Outcome unknown at a vendor: wait for reconciliation, never buy elsewhere meanwhile.
pub async fn mark_awaiting_vendor(
    conn: &mut PgConnection,
    id: &str,
    vendor: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE orders SET status = 'provisioning', vendor = $2, updated_at = now()
         WHERE id = $1 AND status IN ('pending', 'provisioning')",
    )
    .bind(id)
    .bind(vendor)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Writes a status the caller's transition rule allowed, with its failure details
/// (failed) or note (cancelled). A failed order keeps no vendor or cost: nothing was bought.
pub async fn set_status(
    conn: &mut PgConnection,
    id: &str,
    status: OrderStatus,
    failure: Option<(&str, &str)>,
) -> sqlx::Result<Option<OrderRow>> {
    sqlx::query_as(
        "UPDATE orders SET status = $2,
             failure_code = CASE WHEN $2 = 'failed' THEN $3 ELSE failure_code END,
             failure_message = coalesce($4, failure_message),
             vendor = CASE WHEN $2 = 'failed' THEN NULL ELSE vendor END,
             vendor_offer_id = CASE WHEN $2 = 'failed' THEN NULL ELSE vendor_offer_id END,
             cost_amount = CASE WHEN $2 = 'failed' THEN NULL ELSE cost_amount END,
             cost_currency = CASE WHEN $2 = 'failed' THEN NULL ELSE cost_currency END,
             retail_cost_amount = CASE WHEN $2 = 'failed' THEN NULL ELSE retail_cost_amount END,
             lease_until = CASE WHEN $2 IN ('completed', 'failed') THEN NULL ELSE lease_until END,
             updated_at = now()
         WHERE id = $1
         RETURNING *",
    )
    .bind(id)
    .bind(status)
    .bind(failure.map(|f| f.0))
    .bind(failure.map(|f| f.1))
    .fetch_optional(&mut *conn)
    .await
}

/// The order row locked for this transaction, if the caller still holds lease `version`.
/// Every write a lease holder makes after a vendor call starts here: a worker whose lease
/// was taken over gets `None` and must write nothing.
pub async fn lock_fenced(
    conn: &mut PgConnection,
    id: &str,
    version: i64,
) -> sqlx::Result<Option<OrderRow>> {
    sqlx::query_as("SELECT * FROM orders WHERE id = $1 AND lease_version = $2 FOR UPDATE")
        .bind(id)
        .bind(version)
        .fetch_optional(&mut *conn)
        .await
}

/// Extends the lease while its holder is still working; `false` when it was taken over.
pub async fn renew(
    pool: &PgPool,
    id: &str,
    version: i64,
    lease: std::time::Duration,
) -> sqlx::Result<bool> {
    let n = sqlx::query(
        "UPDATE orders SET lease_until = now() + make_interval(secs => $3)
         WHERE id = $1 AND lease_version = $2",
    )
    .bind(id)
    .bind(version)
    .bind(lease.as_secs_f64())
    .execute(pool)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Releases the caller's lease and schedules the provisioner's next look.
pub async fn release(
    pool: &PgPool,
    id: &str,
    version: i64,
    next_check_in: std::time::Duration,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE orders SET lease_until = NULL,
             next_check_at = now() + make_interval(secs => $3)
         WHERE id = $1 AND lease_version = $2",
    )
    .bind(id)
    .bind(version)
    .bind(next_check_in.as_secs_f64())
    .execute(pool)
    .await
    .map(drop)
}

/// [`release`] and [`save_response`] in one statement, for the transaction that records a
/// request's outcome: the lease is given back and, when `answer` is given and none was
/// saved before, it becomes the order's first answer. `Some(saved)` when the lease was
/// still the caller's.
pub async fn release_answering(
    conn: &mut PgConnection,
    id: &str,
    version: i64,
    next_check_in: std::time::Duration,
    answer: Option<&StoredAnswer>,
) -> sqlx::Result<Option<bool>> {
    sqlx::query_scalar(
        "WITH before AS (SELECT response_status IS NULL AS unanswered FROM orders WHERE id = $1)
         UPDATE orders SET lease_until = NULL,
             next_check_at = now() + make_interval(secs => $3),
             response_status = coalesce(response_status, $4),
             response_body = CASE WHEN response_status IS NULL AND $4 IS NOT NULL
                 THEN $5 ELSE response_body END
         WHERE id = $1 AND lease_version = $2
         RETURNING $4 IS NOT NULL AND (SELECT unanswered FROM before)",
    )
    .bind(id)
    .bind(version)
    .bind(next_check_in.as_secs_f64())
    .bind(answer.map(|a| i32::from(a.status)))
    .bind(answer.map(|a| &a.body))
    .fetch_optional(&mut *conn)
    .await
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
/// them for `lease` under a new version. `SKIP LOCKED` lets several replicas claim
/// disjoint sets.
pub async fn claim_due(
    pool: &PgPool,
    limit: i64,
    lease: std::time::Duration,
) -> sqlx::Result<Vec<OrderRow>> {
    sqlx::query_as(
        "UPDATE orders SET lease_until = now() + make_interval(secs => $2), checks = checks + 1,
             lease_version = lease_version + 1
         WHERE id IN (
             SELECT id FROM orders
             WHERE status IN ('pending', 'provisioning') AND next_check_at <= now()
               AND (lease_until IS NULL OR lease_until < now())
             ORDER BY next_check_at
             LIMIT $1
             FOR UPDATE SKIP LOCKED)
           AND (lease_until IS NULL OR lease_until < now())
         RETURNING *",
    )
    .bind(limit)
    .bind(lease.as_secs_f64())
    .fetch_all(pool)
    .await
}

/// Takes the lease on one order (cancel, callbacks, admin actions); `None` when someone
/// else holds it.
pub async fn lease_one(
    pool: &PgPool,
    id: &str,
    lease: std::time::Duration,
) -> sqlx::Result<Option<OrderRow>> {
    sqlx::query_as(
        "UPDATE orders SET lease_until = now() + make_interval(secs => $2),
             lease_version = lease_version + 1
         WHERE id = $1 AND (lease_until IS NULL OR lease_until < now())
         RETURNING *",
    )
    .bind(id)
    .bind(lease.as_secs_f64())
    .fetch_optional(pool)
    .await
}

/// Flags unfinished orders older than `after` for an operator, once each; returns the
/// newly flagged ones.
pub async fn flag_overdue(
    pool: &PgPool,
    after: std::time::Duration,
) -> sqlx::Result<Vec<OrderRow>> {
    sqlx::query_as(
        "UPDATE orders SET attention_at = now(),
             attention_reason = 'unfinished after ' || $1 || ': ' || CASE
                 WHEN EXISTS (SELECT 1 FROM order_attempts a WHERE a.order_id = orders.id
                              AND a.outcome IN ('pending', 'unknown'))
                     THEN 'the outcome at ' || coalesce(vendor, 'the vendor')
                          || ' is still unknown; reconcile with the vendor'
                 WHEN vendor IS NOT NULL
                     THEN coalesce(vendor, 'the vendor') || ' has not delivered the eSIM'
                 ELSE 'no vendor has taken the order'
             END
         WHERE status IN ('pending', 'provisioning') AND attention_at IS NULL
           AND created_at < now() - make_interval(secs => $2)
         RETURNING *",
    )
    .bind(humanize(after))
    .bind(after.as_secs_f64())
    .fetch_all(pool)
    .await
}

fn humanize(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => format!("{}ms", d.as_millis()),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// Unfinished orders flagged for attention (a gauge in `/metrics`).
pub async fn attention_count(pool: &PgPool) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT count(*) FROM orders
         WHERE attention_at IS NOT NULL AND status IN ('pending', 'provisioning')",
    )
    .fetch_one(pool)
    .await
}

#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    pub storefront_id: Option<String>,
    /// Only orders of this mode (storefront reads always set it; admins may).
    pub livemode: Option<bool>,
    pub status: Option<String>,
    pub reference: Option<String>,
    /// Only unfinished orders flagged for attention (`Some(true)`) or only unflagged ones.
    pub attention: Option<bool>,
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
    if let Some(live) = f.livemode {
        q.push(" AND livemode = ").push_bind(live);
    }
    if let Some(s) = &f.status {
        q.push(" AND status = ").push_bind(s.clone());
    }
    if let Some(r) = &f.reference {
        q.push(" AND reference = ").push_bind(r.clone());
    }
    match f.attention {
        Some(true) => {
            q.push(" AND attention_at IS NOT NULL AND status IN ('pending', 'provisioning')");
        }
        Some(false) => {
            q.push(" AND (attention_at IS NULL OR status NOT IN ('pending', 'provisioning'))");
        }
        None => {}
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

/// Serialises reconciliations that search a vendor's listing for one product: held (a
/// transaction-scoped advisory lock, so it ends with the transaction however the caller
/// exits) from the search until the match is committed, on every replica. Two of our orders
/// waiting on the same product must not both take one vendor order for theirs.
pub async fn lock_listing_search(
    pool: &PgPool,
    vendor: &str,
    sku: &str,
) -> sqlx::Result<sqlx::Transaction<'static, sqlx::Postgres>> {
    let mut tx = super::begin(pool).await?;
    sqlx::query("SELECT pg_advisory_xact_lock(7261002, hashtext($1 || ':' || $2))")
        .bind(vendor)
        .bind(sku)
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}
