//! `order_routings`: why each ranking of an order chose its vendor (the document itself is
//! `ordering::choice::RoutingChoice`, stored as jsonb), and the cost a vendor said it charged.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgPool};

/// One stored ranking.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RoutingRow {
    pub order_id: String,
    /// The attempt the ranking led to; `None` when no candidate was left.
    pub attempt_id: Option<i64>,
    pub choice: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// Stores a ranking in the caller's transaction (the one that commits its attempt).
pub async fn record(
    conn: &mut PgConnection,
    order_id: &str,
    attempt_id: Option<i64>,
    choice: &serde_json::Value,
) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO order_routings (order_id, attempt_id, choice) VALUES ($1, $2, $3)")
        .bind(order_id)
        .bind(attempt_id)
        .bind(choice)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The rankings of several orders, oldest first per order.
pub async fn for_orders(pool: &PgPool, order_ids: &[String]) -> sqlx::Result<Vec<RoutingRow>> {
    sqlx::query_as(
        "SELECT order_id, attempt_id, choice, created_at FROM order_routings
         WHERE order_id = ANY($1) ORDER BY order_id, id",
    )
    .bind(order_ids)
    .fetch_all(pool)
    .await
}

/// Records on an attempt what its vendor said it charged.
pub async fn set_charged(
    conn: &mut PgConnection,
    attempt_id: i64,
    amount: Decimal,
    currency: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE order_attempts SET charged_amount = $2, charged_currency = $3 WHERE id = $1",
    )
    .bind(attempt_id)
    .bind(amount)
    .bind(currency)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
