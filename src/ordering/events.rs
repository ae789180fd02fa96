//! Order and eSIM state changes that storefronts hear about. Each change and its outbox
//! event are written in one transaction: no event without the change, no change without
//! its event.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use super::view::{esim_view, order_view};
use crate::store;

async fn order_event(
    conn: &mut PgConnection,
    order_id: &str,
    event_type: &str,
) -> sqlx::Result<()> {
    let Some(order) = store::orders::get(&mut *conn, order_id).await? else {
        return Ok(());
    };
    let esims = store::esims::for_order(&mut *conn, order_id).await?;
    let data = serde_json::to_value(order_view(&order, &esims)).unwrap_or_default();
    store::outbox::insert(conn, &order.storefront_id, event_type, &data).await?;
    Ok(())
}

/// `order.completed`; false when the order was already finished (the change is a no-op).
pub async fn complete_order(pool: &PgPool, order_id: &str) -> sqlx::Result<bool> {
    let mut tx = pool.begin().await?;
    let changed = store::orders::complete(&mut tx, order_id).await?;
    if changed {
        order_event(&mut tx, order_id, "order.completed").await?;
    }
    tx.commit().await?;
    Ok(changed)
}

/// `order.failed`.
pub async fn fail_order(
    pool: &PgPool,
    order_id: &str,
    code: &str,
    message: &str,
) -> sqlx::Result<bool> {
    let mut tx = pool.begin().await?;
    let changed = store::orders::fail(&mut tx, order_id, code, message).await?;
    if changed {
        order_event(&mut tx, order_id, "order.failed").await?;
    }
    tx.commit().await?;
    Ok(changed)
}

/// `order.cancelled`; the order's eSIMs become `cancelled` with it.
pub async fn cancel_order(pool: &PgPool, order_id: &str, note: &str) -> sqlx::Result<bool> {
    let mut tx = pool.begin().await?;
    let changed = store::orders::mark_cancelled(&mut tx, order_id, note).await?;
    if changed {
        store::esims::cancel_for_order(&mut tx, order_id).await?;
        order_event(&mut tx, order_id, "order.cancelled").await?;
    }
    tx.commit().await?;
    Ok(changed)
}

/// `esim.status_changed`, unless a newer status was already applied.
pub async fn esim_status(
    pool: &PgPool,
    iccid: &str,
    status: &str,
    observed_at: DateTime<Utc>,
) -> sqlx::Result<bool> {
    let mut tx = pool.begin().await?;
    let changed = store::esims::set_status(&mut tx, iccid, status, observed_at).await?;
    if changed {
        if let Some(e) = store::esims::get(&mut *tx, iccid).await? {
            let data = serde_json::to_value(esim_view(&e)).unwrap_or_default();
            store::outbox::insert(&mut tx, &e.storefront_id, "esim.status_changed", &data).await?;
        }
    }
    tx.commit().await?;
    Ok(changed)
}

/// `esim.usage_threshold`: a vendor reported that a usage threshold was crossed.
pub async fn usage_threshold(pool: &PgPool, iccid: &str, percent: Option<u8>) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    if let Some(e) = store::esims::get(&mut *tx, iccid).await? {
        let mut data = serde_json::to_value(esim_view(&e)).unwrap_or_default();
        data["threshold_percent"] = serde_json::json!(percent);
        data["used_bytes"] = serde_json::json!(e.used_bytes);
        data["total_bytes"] = serde_json::json!(e.total_bytes);
        store::outbox::insert(&mut tx, &e.storefront_id, "esim.usage_threshold", &data).await?;
    }
    tx.commit().await
}
