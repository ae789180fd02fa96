//! The work on one unfinished order, whoever does it: the provisioner, the request that
//! created it, a callback, or an admin's reconcile. Safe to run any number of times; the
//! caller holds the order's lease.

use super::{
    Ctx,
    lease::Lease,
    purchase::{self, PurchaseError, Step},
};
use crate::{
    store::{self, orders::OrderRow},
    vendors::VendorId,
};

/// One look at an unfinished order whose lease the caller holds.
pub async fn provision(ctx: &Ctx, order: &OrderRow, lease: &Lease) -> Result<Step, PurchaseError> {
    let attempts = store::orders::attempts(&ctx.pool, &order.id).await?;
    let Some(last) = attempts.last() else {
        // Crashed before the first vendor call: start buying.
        return if order.kind == "topup" {
            super::topup::purchase(ctx, order, lease).await
        } else {
            purchase::buy(ctx, order, lease).await
        };
    };
    match last.outcome.as_str() {
        "pending" | "unknown" => Ok(purchase::reconcile(ctx, order, lease, last)
            .await?
            .unwrap_or(Step::Provisioning)),
        "placed" => {
            let Some(adapter) = last
                .vendor
                .parse::<VendorId>()
                .ok()
                .and_then(|v| ctx.vendors.adapter(v))
            else {
                return Ok(Step::Provisioning);
            };
            match adapter
                .fetch_order(&purchase::order_ref(ctx, order, last).await?)
                .await
            {
                Ok(state) => purchase::apply_state(ctx, order, lease, &last.vendor, state).await,
                Err(e) => {
                    tracing::info!(order_id = %order.id, error = %e, "order not ready at the vendor yet");
                    // Vendor text, kept printable and bounded: an operator sees why the
                    // order waits (e.g. an eSIM delivered without a valid ICCID).
                    let note: String = format!("not delivered yet: {e}")
                        .chars()
                        .filter(|c| !c.is_control())
                        .take(1000)
                        .collect();
                    store::orders::note_attempt(&ctx.pool, last.id, &note).await?;
                    Ok(Step::Provisioning)
                }
            }
        }
        // The last vendor refused and the loop was cut short: go on with the next one.
        _ if order.kind == "new" => purchase::buy(ctx, order, lease).await,
        _ => {
            purchase::fail(
                ctx,
                lease,
                "vendor_rejected",
                "the eSIM's vendor refused the top-up",
            )
            .await
        }
    }
}

/// Takes the order's lease and works on it once (admin reconcile). `None` when someone
/// else holds the order right now.
pub async fn work_on(ctx: &Ctx, order_id: &str) -> Result<Option<Step>, PurchaseError> {
    let Some(order) = store::orders::lease_one(&ctx.pool, order_id, ctx.lease).await? else {
        return Ok(None);
    };
    work_leased(ctx, &order).await.map(Some)
}

/// One look at an order just claimed (its `lease_version` is the caller's): renews the
/// lease while it works and gives it back with the next look scheduled. The one service
/// function the provisioner and the admin reconcile share.
pub async fn work_leased(ctx: &Ctx, order: &OrderRow) -> Result<Step, PurchaseError> {
    let lease = Lease::hold(&ctx.pool, &order.id, order.lease_version, ctx.lease);
    let step = if order.status.is_unfinished() {
        provision(ctx, order, &lease).await
    } else {
        Ok(Step::Completed)
    };
    finish(ctx, order, lease, step).await
}

/// After one look: an unfinished order goes back to the provisioner's schedule (hourly
/// once it has been flagged for attention a while); a lost lease is left to its new holder.
async fn finish(
    ctx: &Ctx,
    order: &OrderRow,
    lease: Lease,
    step: Result<Step, PurchaseError>,
) -> Result<Step, PurchaseError> {
    let flagged_for = order
        .attention_at
        .and_then(|at| chrono::Utc::now().signed_duration_since(at).to_std().ok());
    let next = match flagged_for {
        Some(d) if d >= super::ATTENTION_GRACE => super::ATTENTION_POLL,
        _ => ctx.backoff(order.checks),
    };
    match step {
        Ok(Step::Provisioning) => {
            lease.release(&ctx.pool, next).await?;
            Ok(Step::Provisioning)
        }
        Ok(step) => {
            lease.release(&ctx.pool, next).await?;
            Ok(step)
        }
        Err(PurchaseError::LeaseLost) => {
            tracing::info!(order_id = %order.id, "order taken over by another worker mid-work");
            Err(PurchaseError::LeaseLost)
        }
        Err(e) => {
            tracing::error!(order_id = %order.id, error = %e, "provisioning failed; will retry");
            lease.release(&ctx.pool, next).await?;
            Err(e)
        }
    }
}

/// An operator gives up on an unfinished order (`POST /admin/orders/{id}/fail`): it fails
/// with `order.failed` and the storefront is not charged. Refused while a vendor order is
/// known to exist (an attempt was placed): that order was bought and must be delivered or
/// cancelled at the vendor, not forgotten.
pub async fn fail_by_operator(
    ctx: &Ctx,
    order_id: &str,
    reason: &str,
) -> crate::error::ApiResult<()> {
    use crate::error::ApiError;
    let order = store::orders::get(&ctx.pool, order_id)
        .await?
        .ok_or_else(crate::http::orders::order_not_found)?;
    if !order.status.is_unfinished() {
        return Err(ApiError::conflict(
            "order_finished",
            format!("the order is already {}", order.status),
        ));
    }
    let Some(leased) = store::orders::lease_one(&ctx.pool, order_id, ctx.lease).await? else {
        return Err(ApiError::busy(
            "order_busy",
            "the order is being worked on; retry shortly",
            1,
        ));
    };
    let lease = Lease::hold(&ctx.pool, &leased.id, leased.lease_version, ctx.lease);
    let attempts = store::orders::attempts(&ctx.pool, order_id).await?;
    let result = if let Some(a) = attempts.iter().find(|a| a.outcome == "placed") {
        Err(ApiError::conflict(
            "vendor_order_exists",
            format!(
                "{} has this order (attempt {}); reconcile it instead of failing it",
                a.vendor, a.seq
            ),
        ))
    } else {
        match purchase::fail(ctx, &lease, "operator_failed", reason).await {
            Ok(_) => {
                tracing::warn!(order_id, reason, "order failed by an operator");
                Ok(())
            }
            Err(PurchaseError::LeaseLost) => Err(ApiError::busy(
                "order_busy",
                "the order was taken over meanwhile; retry shortly",
                1,
            )),
            Err(PurchaseError::Database(e)) => Err(e.into()),
        }
    };
    lease.release(&ctx.pool, ctx.retry_base).await?;
    result
}
