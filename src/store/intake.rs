//! A new order's intake in one statement: the order under its idempotency key, its first
//! attempt and the ranking's record. One statement is its own transaction, so the three
//! commit together or not at all, with one round trip and one commit instead of five round
//! trips (`BEGIN`, three inserts, `COMMIT`).

use std::sync::LazyLock;

use rust_decimal::Decimal;
use sqlx::{PgPool, Row, postgres::PgRow};

use super::orders::{AttemptRow, INSERT_NEW_ORDER, NewOrderRow, OrderRow};

/// The first attempt to record with a new order.
pub struct FirstAttempt<'a> {
    pub vendor: &'a str,
    pub offer_id: i64,
    pub sku: &'a str,
    /// The whole order's cost at the vendor and its currency.
    pub cost: (Decimal, &'a str),
}

/// The attempt's columns, renamed so that they do not collide with the order's.
const ATTEMPT_COLUMNS: [&str; 18] = [
    "id",
    "order_id",
    "seq",
    "vendor",
    "vendor_offer_id",
    "sku",
    "outcome",
    "vendor_reference",
    "error_kind",
    "error_code",
    "error_message",
    "cost_amount",
    "cost_currency",
    "charged_amount",
    "charged_currency",
    "latency_ms",
    "started_at",
    "finished_at",
];

/// The statement, built once.
static INTAKE: LazyLock<String> = LazyLock::new(|| {
    let attempt_columns: Vec<String> = ATTEMPT_COLUMNS
        .iter()
        .map(|c| format!("a.{c} AS attempt_{c}"))
        .collect();
    format!(
        "WITH o AS ({INSERT_NEW_ORDER}),
         a AS (
             INSERT INTO order_attempts (order_id, seq, vendor, vendor_offer_id, sku, outcome,
                 cost_amount, cost_currency)
             SELECT id, 1, $15, $16, $17, 'pending', $18, $19 FROM o
             RETURNING *),
         r AS (
             INSERT INTO order_routings (order_id, attempt_id, choice)
             SELECT order_id, id, $20 FROM a)
         SELECT o.*, {} FROM o, a",
        attempt_columns.join(", ")
    )
});

/// Inserts the order (unless the storefront already used the idempotency key, as
/// `orders::claim`), its attempt on `first` and the ranking `choice` of that attempt.
/// `Some` when this call created the order.
pub async fn claim_with_attempt(
    pool: &PgPool,
    o: &NewOrderRow<'_>,
    lease: std::time::Duration,
    first: &FirstAttempt<'_>,
    choice: &serde_json::Value,
) -> sqlx::Result<Option<(OrderRow, AttemptRow)>> {
    let row = super::orders::bind_new_order(sqlx::query(&INTAKE), o, lease)
        .bind(first.vendor)
        .bind(first.offer_id)
        .bind(first.sku)
        .bind(first.cost.0)
        .bind(first.cost.1)
        .bind(choice)
        .fetch_optional(pool)
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let order = <OrderRow as sqlx::FromRow<PgRow>>::from_row(&row)?;
    Ok(Some((order, attempt_from(&row)?)))
}

fn attempt_from(row: &PgRow) -> sqlx::Result<AttemptRow> {
    let get = |c: &str| format!("attempt_{c}");
    Ok(AttemptRow {
        id: row.try_get(get("id").as_str())?,
        order_id: row.try_get(get("order_id").as_str())?,
        seq: row.try_get(get("seq").as_str())?,
        vendor: row.try_get(get("vendor").as_str())?,
        vendor_offer_id: row.try_get(get("vendor_offer_id").as_str())?,
        sku: row.try_get(get("sku").as_str())?,
        outcome: row.try_get(get("outcome").as_str())?,
        vendor_reference: row.try_get(get("vendor_reference").as_str())?,
        error_kind: row.try_get(get("error_kind").as_str())?,
        error_code: row.try_get(get("error_code").as_str())?,
        error_message: row.try_get(get("error_message").as_str())?,
        cost_amount: row.try_get(get("cost_amount").as_str())?,
        cost_currency: row.try_get(get("cost_currency").as_str())?,
        charged_amount: row.try_get(get("charged_amount").as_str())?,
        charged_currency: row.try_get(get("charged_currency").as_str())?,
        latency_ms: row.try_get(get("latency_ms").as_str())?,
        started_at: row.try_get(get("started_at").as_str())?,
        finished_at: row.try_get(get("finished_at").as_str())?,
    })
}
