//! Applies verified vendor events to orders and eSIMs, idempotently and never backwards.
//!
//! A signed event (eSIM Go, eSIMfx) may be applied as it is. An unsigned one is a hint: the
//! gateway re-reads the order or eSIM from the vendor's API and applies only that.

use chrono::Utc;

mod matched;

use crate::{
    ordering::{
        Ctx,
        purchase::{self, esim_status_str},
        usage,
    },
    store::{self, orders::OrderRow},
    vendors::{
        CallbackTrust, OrderState, VendorEvent, VendorEventKind, VendorId, VendorOrderStatus,
    },
};

/// What became of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Applied,
    /// Refers to an order or eSIM not known (yet): kept for another try.
    Waiting,
    /// Nothing to do (a ping, or a kind the gateway does not act on).
    Ignored,
    /// An unsigned callback applied because it matched the order we placed in every detail
    /// (weaker than a signed one; see `matched`).
    MatchedHint,
}

impl Applied {
    pub fn as_str(self) -> &'static str {
        match self {
            Applied::Applied => "applied",
            Applied::Waiting => "waiting",
            Applied::Ignored => "ignored",
            Applied::MatchedHint => "matched_hint",
        }
    }
}

/// The order an event is about, by our id, the vendor's order number or the ICCID.
async fn find_order(
    ctx: &Ctx,
    vendor: VendorId,
    ev: &VendorEvent,
) -> sqlx::Result<Option<OrderRow>> {
    if let Some(id) = &ev.order_id {
        if let Some(o) = store::orders::get(&ctx.pool, id).await? {
            return Ok(Some(o));
        }
    }
    if let Some(r) = &ev.vendor_reference {
        let found: Option<OrderRow> = sqlx::query_as(
            "SELECT o.* FROM orders o
             WHERE o.vendor_reference = $2 AND o.vendor = $1
                OR o.id IN (SELECT order_id FROM order_attempts WHERE vendor = $1 AND vendor_reference = $2)
             LIMIT 1",
        )
        .bind(vendor.as_str())
        .bind(r)
        .fetch_optional(&ctx.pool)
        .await?;
        if found.is_some() {
            return Ok(found);
        }
    }
    if let Some(iccid) = &ev.iccid {
        if let Some(e) = store::esims::get(&ctx.pool, iccid).await? {
            if e.vendor == vendor.as_str() {
                return store::orders::get(&ctx.pool, &e.order_id).await;
            }
        }
    }
    Ok(None)
}

pub async fn apply(
    ctx: &Ctx,
    vendor: VendorId,
    trust: CallbackTrust,
    ev: &VendorEvent,
) -> Result<Applied, purchase::PurchaseError> {
    match &ev.kind {
        VendorEventKind::Ping | VendorEventKind::Other { .. } => Ok(Applied::Ignored),
        VendorEventKind::LowBalance { exhausted } => {
            // An account alert for operators; `/admin/vendors` shows the balance itself.
            metrics::counter!("vendor_low_balance_alerts_total", "vendor" => vendor.as_str())
                .increment(1);
            tracing::warn!(%vendor, exhausted, "vendor reports our prepaid balance is low");
            Ok(Applied::Applied)
        }
        VendorEventKind::OrderReady | VendorEventKind::OrderFailed => {
            let Some(order) = find_order(ctx, vendor, ev).await? else {
                return Ok(Applied::Waiting);
            };
            if !matches!(order.status.as_str(), "pending" | "provisioning") {
                return Ok(Applied::Applied);
            }
            match (trust, &ev.profile, &ev.kind) {
                (CallbackTrust::Verified, Some(profile), VendorEventKind::OrderReady) => {
                    let state = OrderState {
                        vendor_reference: ev.vendor_reference.clone(),
                        status: VendorOrderStatus::Completed,
                        esims: vec![profile.clone()],
                    };
                    let attempts = store::orders::attempts(&ctx.pool, &order.id).await?;
                    match attempts.iter().rev().find(|a| a.vendor == vendor.as_str()) {
                        Some(a) if matches!(a.outcome.as_str(), "pending" | "unknown") => {
                            purchase::placed(ctx, &order, a, state, None, None).await?;
                        }
                        Some(_) => {
                            purchase::apply_state(ctx, &order, vendor.as_str(), state).await?;
                        }
                        None => return Ok(Applied::Ignored),
                    }
                }
                (CallbackTrust::Hint, Some(_), VendorEventKind::OrderReady) => {
                    if let Some(applied) =
                        matched::apply_if_matched(ctx, vendor, &order, ev).await?
                    {
                        return Ok(applied);
                    }
                    store::orders::poke(&ctx.pool, &order.id).await?
                }
                // Unsigned, or a failure: ask the vendor (the provisioner does it now).
                _ => store::orders::poke(&ctx.pool, &order.id).await?,
            }
            Ok(Applied::Applied)
        }
        VendorEventKind::EsimStatus { status } => {
            let Some(iccid) = ev.iccid.as_deref() else {
                return Ok(Applied::Ignored);
            };
            let Some(esim) = store::esims::get(&ctx.pool, iccid).await? else {
                return Ok(Applied::Waiting);
            };
            match trust {
                CallbackTrust::Verified => {
                    let at = ev.occurred_at.unwrap_or_else(Utc::now);
                    crate::ordering::events::esim_status(
                        &ctx.pool,
                        iccid,
                        esim_status_str(*status),
                        at,
                    )
                    .await?;
                }
                CallbackTrust::Hint => refresh_later(ctx, esim),
            }
            Ok(Applied::Applied)
        }
        VendorEventKind::Usage {
            used_bytes,
            total_bytes,
            remaining_bytes,
            ..
        } => {
            let Some(iccid) = ev.iccid.as_deref() else {
                return Ok(Applied::Ignored);
            };
            let Some(esim) = store::esims::get(&ctx.pool, iccid).await? else {
                return Ok(Applied::Waiting);
            };
            let used = used_bytes.or_else(|| {
                Some(
                    total_bytes
                        .as_ref()?
                        .saturating_sub(*remaining_bytes.as_ref()?),
                )
            });
            match (trust, used) {
                (CallbackTrust::Verified, Some(used)) => {
                    store::esims::update_usage(
                        &ctx.pool,
                        iccid,
                        &store::esims::UsageUpdate {
                            used_bytes: i64::try_from(used).unwrap_or(i64::MAX),
                            total_bytes: total_bytes.map(|t| i64::try_from(t).unwrap_or(i64::MAX)),
                            unlimited: esim.unlimited,
                            status: None,
                            activated_at: None,
                            expires_at: None,
                        },
                    )
                    .await?;
                }
                _ => refresh_later(ctx, esim),
            }
            Ok(Applied::Applied)
        }
        VendorEventKind::ValidityEnding { .. } => {
            Ok(if find_order(ctx, vendor, ev).await?.is_some() {
                Applied::Applied
            } else {
                Applied::Waiting
            })
        }
    }
}

/// Re-reads an eSIM from its vendor in the background so the callback is answered fast.
fn refresh_later(ctx: &Ctx, mut esim: store::esims::EsimRow) {
    let ctx = ctx.clone();
    esim.usage_updated_at = None;
    tokio::spawn(async move {
        if let Err(e) = usage::refreshed(&ctx, esim).await {
            tracing::warn!(error = %e, "re-reading an eSIM after a vendor hint failed");
        }
    });
}

/// Re-applies events that arrived before their order or eSIM existed (a callback can race
/// the purchase response). Called by the provisioner.
pub async fn retry_waiting(ctx: &Ctx) -> sqlx::Result<usize> {
    let rows = store::events::waiting(&ctx.pool, 50).await?;
    for row in &rows {
        let Ok(vendor) = row.vendor.parse::<VendorId>() else {
            continue;
        };
        let Some(adapter) = ctx.vendors.adapter(vendor) else {
            continue;
        };
        let mut headers = axum::http::HeaderMap::new();
        if let Some(ct) = row.headers.get("content-type").and_then(|v| v.as_str()) {
            if let Ok(v) = ct.parse() {
                headers.insert(axum::http::header::CONTENT_TYPE, v);
            }
        }
        let trust = if row.trusted {
            CallbackTrust::Verified
        } else {
            CallbackTrust::Hint
        };
        let events = adapter
            .parse_callback(&headers, &row.body)
            .unwrap_or_default();
        let Some(ev) = events.iter().find(|e| e.dedupe_key == row.dedupe_key) else {
            store::events::set_status(&ctx.pool, row.id, "failed", Some("no longer parses"))
                .await?;
            continue;
        };
        match apply(ctx, vendor, trust, ev).await {
            Ok(Applied::Waiting) => {
                store::events::set_status(&ctx.pool, row.id, "waiting", None).await?
            }
            Ok(applied) => {
                store::events::set_status(&ctx.pool, row.id, applied.as_str(), None).await?
            }
            Err(e) => {
                store::events::set_status(&ctx.pool, row.id, "failed", Some(&e.to_string())).await?
            }
        }
    }
    Ok(rows.len())
}
