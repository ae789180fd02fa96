//! Cancelling an unused order through its vendor's cancel/refund, where one exists.
//!
//! The canceller holds the order's lease for the vendor call, so of any number of
//! concurrent cancels exactly one reaches the vendor; the others answer `409 order_busy`
//! while it runs and `409 order_not_cancellable` once the order is cancelled.

use super::{
    Ctx,
    error::{OrderingError, OrderingResult},
    events::transition_order,
    lease::Lease,
    purchase::{self, PurchaseError},
    view::{OrderView, storefront_order},
};
use crate::{
    domain::{attempt::AttemptOutcome, esim::EsimState, order::OrderStatus},
    store::{self, orders::OrderRow},
    vendors::{CancelOutcome, EsimRef, RejectKind, VendorError, VendorId},
};

fn not_cancellable(why: impl Into<String>) -> OrderingError {
    OrderingError::NotCancellable(why.into())
}

fn check_cancellable(order: &OrderRow) -> OrderingResult<()> {
    if !order.kind.cancellable() || order.status != OrderStatus::Completed {
        return Err(not_cancellable(format!(
            "only completed eSIM orders can be cancelled (this one is {} {})",
            order.kind, order.status
        )));
    }
    Ok(())
}

/// Cancels the storefront's order if it is a completed new-eSIM order whose eSIMs are
/// unused. The vendor decides; its answer is recorded on the order, which is returned as
/// it stands afterwards.
pub async fn cancel(
    ctx: &Ctx,
    (storefront_id, livemode): (&str, bool),
    order_id: &str,
) -> OrderingResult<OrderView> {
    let order = store::orders::get_for(&ctx.pool, storefront_id, livemode, order_id)
        .await?
        .ok_or(OrderingError::OrderNotFound)?;
    cancel_order(ctx, &order).await?;
    storefront_order(ctx, (storefront_id, livemode), order_id).await
}

async fn cancel_order(ctx: &Ctx, order: &OrderRow) -> OrderingResult<()> {
    check_cancellable(order)?;
    let Some(leased) = store::orders::lease_one(&ctx.pool, &order.id, ctx.lease).await? else {
        if let Some(now) = store::orders::get(&ctx.pool, &order.id).await? {
            check_cancellable(&now)?;
        }
        return Err(OrderingError::OrderBusy(
            "the order is being worked on (another cancel?); retry shortly",
        ));
    };
    let lease = Lease::hold(&ctx.pool, &leased.id, leased.lease_version, ctx.lease);
    let result = cancel_leased(ctx, &leased, &lease).await;
    lease.release(&ctx.pool, ctx.retry_base).await?;
    result
}

async fn cancel_leased(ctx: &Ctx, order: &OrderRow, lease: &Lease) -> OrderingResult<()> {
    // Re-checked under the lease: a cancel may have finished meanwhile.
    check_cancellable(order)?;
    let vendor: VendorId = order
        .vendor
        .as_deref()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("completed order without a vendor"))?;
    let adapter = ctx
        .vendors(order.livemode)
        .adapter(vendor)
        .ok_or(OrderingError::VendorDisabled)?;
    let esims = store::esims::for_order(&ctx.pool, &order.id).await?;
    if esims.iter().any(|e| e.status != EsimState::Ready) {
        return Err(not_cancellable(
            "an eSIM of this order has been installed or used",
        ));
    }
    let refs: Vec<EsimRef> = esims
        .iter()
        .map(|e| EsimRef {
            iccid: e.iccid.clone(),
            vendor_esim_ref: e.vendor_esim_ref.clone(),
            vendor_reference: e.vendor_reference.clone(),
        })
        .collect();
    let attempts = store::orders::attempts(&ctx.pool, &order.id).await?;
    let placed = attempts
        .iter()
        .rev()
        .find(|a| a.outcome == AttemptOutcome::Placed)
        .ok_or_else(|| anyhow::anyhow!("completed order without a placed attempt"))?;
    let r = purchase::order_ref(ctx, order, placed).await?;
    let note = match adapter.cancel(&r, &refs).await {
        Ok(CancelOutcome::Refunded { amount: Some(m) }) => {
            format!("cancelled by {vendor}; refunded {m}")
        }
        Ok(CancelOutcome::Refunded { amount: None }) => format!("cancelled by {vendor}; refunded"),
        Ok(CancelOutcome::CancelledWithoutRefund) => format!("cancelled by {vendor}; no refund"),
        Err(VendorError::Unsupported) => {
            return Err(not_cancellable(format!(
                "{} does not support cancellation",
                vendor.display_name()
            )));
        }
        Err(VendorError::Rejected {
            kind: RejectKind::NotAllowed | RejectKind::NotFound,
            message,
            ..
        }) => {
            return Err(not_cancellable(format!("the vendor refused: {message}")));
        }
        Err(e) => {
            return Err(OrderingError::Vendor(format!(
                "the vendor could not be asked to cancel: {e}"
            )));
        }
    };
    let (mut tx, locked) = match purchase::fenced(ctx, lease).await {
        Ok(t) => t,
        Err(PurchaseError::LeaseLost) => {
            return Err(
                anyhow::anyhow!("cancel lease taken over after the vendor cancelled").into(),
            );
        }
        Err(PurchaseError::Database(e)) => return Err(e.into()),
    };
    if transition_order(
        &mut tx,
        &locked,
        OrderStatus::Cancelled,
        Some(("", &note)),
        None,
    )
    .await?
    .is_some()
    {
        tracing::info!(order_id = %order.id, %vendor, "order cancelled");
    }
    tx.commit().await?;
    Ok(())
}
