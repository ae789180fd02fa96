//! Unsigned order-ready callbacks that may complete an order without asking the vendor:
//! only for vendors with no order query (Multiverse), and only when the event matches the
//! attempt we placed in every detail (the adapter's `match_hint`). Kept apart from the
//! general callback code so the rule stays in one place.

use super::Applied;
use crate::{
    domain::attempt::AttemptOutcome,
    ordering::{
        Ctx,
        lease::Lease,
        purchase::{self, PurchaseError},
    },
    store::{self, orders::OrderRow},
    vendors::{OrderState, VendorEvent, VendorId, VendorOrderStatus},
};

/// Applies `ev` to `order` when it matches what we placed there: `Some(MatchedHint)` once
/// applied, `None` when it does not match. The caller holds the order's lease.
/// Returns `None` also (the caller then treats it as a plain hint, and it
/// is stored and otherwise ignored).
pub async fn apply_if_matched(
    ctx: &Ctx,
    vendor: VendorId,
    order: &OrderRow,
    lease: &Lease,
    ev: &VendorEvent,
) -> Result<Option<Applied>, PurchaseError> {
    let Some(adapter) = ctx.vendors(order.livemode).adapter(vendor) else {
        return Ok(None);
    };
    // Only a purchase that delivers eSIMs can be matched by the profile a hint carries.
    if !order.status.is_unfinished() || !order.kind.delivers_esims() {
        return Ok(None);
    }
    let attempts = store::orders::attempts(&ctx.pool, &order.id).await?;
    let Some(attempt) = attempts.iter().rev().find(|a| a.vendor == vendor.as_str()) else {
        return Ok(None);
    };
    // An attempt already concluded "nothing bought" is not reopened by a hint.
    if !(attempt.outcome.is_open() || attempt.outcome == AttemptOutcome::Placed) {
        tracing::warn!(order_id = %order.id, %vendor, outcome = %attempt.outcome, "callback for an attempt we concluded; ignored");
        return Ok(None);
    }
    let placed = purchase::order_ref(ctx, order, attempt).await?;
    let profile = match adapter.match_hint(ev, &placed) {
        Ok(p) => p,
        Err(why) => {
            tracing::warn!(order_id = %order.id, %vendor, %why, "unsigned callback does not match our order; ignored");
            return Ok(None);
        }
    };
    // The ICCID must not be ours already (beyond the adapter's window, any order at all).
    if let Some(e) = store::esims::get(&ctx.pool, &profile.iccid).await? {
        if e.order_id != order.id {
            tracing::warn!(order_id = %order.id, %vendor, iccid = %profile.iccid, "callback ICCID belongs to another order; ignored");
            return Ok(None);
        }
    }
    let state = OrderState {
        charged: None,
        vendor_reference: ev.vendor_reference.clone(),
        status: VendorOrderStatus::Completed,
        esims: vec![profile],
    };
    if attempt.outcome.is_open() {
        purchase::placed(ctx, order, lease, attempt, state, None, None).await?;
    } else {
        purchase::apply_state(ctx, order, lease, vendor.as_str(), state).await?;
    }
    Ok(Some(Applied::MatchedHint))
}
