//! Operator alerts: recorded in Postgres in the caller's transaction (so an alert exists
//! exactly when the change it reports committed) and, with `OPERATOR_WEBHOOK_URL` set,
//! queued for delivery in the same transaction. Listed at `GET /admin/alerts`.

use sqlx::PgConnection;

use super::Ctx;
use crate::{store, vendors::VendorId};

/// A balance fell below its threshold (`ordering::balances`).
pub const BALANCE_LOW: &str = "vendor.balance_low";
/// A balance is back at or above its threshold.
pub const BALANCE_RECOVERED: &str = "vendor.balance_recovered";
/// A vendor charged more for an order than the order's retail price (`ordering::purchase`).
pub const NEGATIVE_MARGIN: &str = "order.negative_margin";

/// Every alert type there is.
pub const TYPES: &[&str] = &[BALANCE_LOW, BALANCE_RECOVERED, NEGATIVE_MARGIN];

/// Records an alert of `event_type` raised in one mode and queues it for the operator webhook; returns its id.
pub async fn raise(
    conn: &mut PgConnection,
    ctx: &Ctx,
    livemode: bool,
    event_type: &str,
    vendor: Option<VendorId>,
    payload: &serde_json::Value,
) -> sqlx::Result<String> {
    let vendor = vendor.map(|v| v.as_str());
    let id =
        store::balances::insert_alert(&mut *conn, livemode, event_type, vendor, payload).await?;
    if ctx.balances.deliver_alerts {
        store::outbox::insert_operator(&mut *conn, livemode, &id, event_type, payload).await?;
    }
    Ok(id)
}
