//! The work on one unfinished order, whoever does it: the provisioner, the request that
//! created it, a callback, or an admin's reconcile. Safe to run any number of times; the
//! caller holds the order's lease.

use super::{
    Ctx,
    error::{OrderingError, OrderingResult},
    lease::Lease,
    purchase::{self, PurchaseError, Step},
    topup,
};
use crate::{
    domain::{attempt::AttemptOutcome, ids::printable, order::OrderKind},
    store::{
        self,
        orders::{AttemptResult, AttemptRow, OrderRow},
    },
    vendors::{RejectKind, VendorError, VendorId},
};

/// Starts buying a claimed order that has no attempt yet: a new order from the cheapest
/// vendor, a top-up from its eSIM's own.
pub(super) async fn start(
    ctx: &Ctx,
    order: &OrderRow,
    lease: &Lease,
) -> Result<Step, PurchaseError> {
    match order.kind {
        OrderKind::New => purchase::buy(ctx, order, lease).await,
        OrderKind::Topup => topup::purchase(ctx, order, lease).await,
    }
}

/// One look at an unfinished order whose lease the caller holds.
pub async fn provision(ctx: &Ctx, order: &OrderRow, lease: &Lease) -> Result<Step, PurchaseError> {
    let attempts = store::orders::attempts(&ctx.pool, &order.id).await?;
    let Some(last) = attempts.last() else {
        // Crashed before the first vendor call: start buying.
        return start(ctx, order, lease).await;
    };
    match last.outcome {
        outcome if outcome.is_open() => Ok(reconcile(ctx, order, lease, last)
            .await?
            .unwrap_or(Step::Provisioning)),
        AttemptOutcome::Placed => {
            let Some(adapter) = last
                .vendor
                .parse::<VendorId>()
                .ok()
                .and_then(|v| ctx.vendors(order.livemode).adapter(v))
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
                    let note = printable(&format!("not delivered yet: {e}"), 1000);
                    store::orders::note_attempt(&ctx.pool, last.id, &note).await?;
                    Ok(Step::Provisioning)
                }
            }
        }
        // The last vendor refused and the loop was cut short: go on with the next one (a
        // top-up has no next one).
        _ => continue_after_refusal(ctx, order, lease).await,
    }
}

/// Resolves an attempt whose outcome is unknown (or was cut short by a crash) with its
/// vendor: idempotent vendors get the same request again, the others are asked. Only a
/// complete answer showing no order, for a request sent longer ago than the vendor could
/// still be working on it, counts as "not bought".
async fn reconcile(
    ctx: &Ctx,
    order: &OrderRow,
    lease: &Lease,
    attempt: &AttemptRow,
) -> Result<Option<Step>, PurchaseError> {
    let Some(vendor) = attempt.vendor.parse::<VendorId>().ok() else {
        return Ok(None);
    };
    let Some(adapter) = ctx.vendors(order.livemode).adapter(vendor) else {
        return Ok(None);
    };
    let idempotent = adapter.place_is_idempotent();
    // A search of the vendor's listing (no reference of the vendor's yet) may find the
    // purchase of another order of ours waiting on the same product: one search at a time
    // per product, until its match is committed, so the second sees the first's claim.
    let searches =
        !idempotent && attempt.vendor_reference.is_none() && order.vendor_reference.is_none();
    let _one_search = match (&attempt.sku, searches) {
        (Some(sku), true) => {
            Some(store::orders::lock_listing_search(&ctx.pool, &attempt.vendor, sku).await?)
        }
        _ => None,
    };
    let result = match (idempotent, order.kind) {
        (true, OrderKind::New) => purchase::resend(order, attempt, adapter.as_ref()).await,
        (true, OrderKind::Topup) => topup::resend(ctx, order, attempt, adapter.as_ref()).await?,
        (false, _) => {
            adapter
                .fetch_order(&purchase::order_ref(ctx, order, attempt).await?)
                .await
        }
    };
    let settled = chrono::Utc::now()
        .signed_duration_since(attempt.started_at)
        .to_std()
        .is_ok_and(|age| age >= ctx.reconcile_settle);
    let not_bought = match &result {
        Ok(_) => false,
        Err(VendorError::Rejected {
            kind: RejectKind::NotFound,
            ..
        }) if !idempotent => true,
        // Refusing the same request again means it was refused the first time; a refused
        // status query means nothing.
        Err(e) => idempotent && e.nothing_bought(),
    };
    match result {
        Ok(state) => Ok(Some(
            purchase::placed(ctx, order, lease, attempt, state, None, None).await?,
        )),
        Err(e) if not_bought && settled => {
            let (outcome, kind, message) = if idempotent {
                (
                    AttemptOutcome::Rejected,
                    e.reject_kind().map(purchase::reject_kind_str),
                    e.to_string(),
                )
            } else {
                (
                    AttemptOutcome::NotFound,
                    Some("not_found"),
                    "reconciled: the vendor has no such order".to_string(),
                )
            };
            let (mut tx, _) = purchase::fenced(ctx, lease).await?;
            store::orders::finish_attempt(
                &mut tx,
                attempt.id,
                &AttemptResult {
                    outcome,
                    vendor_reference: None,
                    error_kind: kind,
                    error_code: None,
                    error_message: Some(&message),
                    latency_ms: None,
                },
            )
            .await?;
            tx.commit().await?;
            Ok(Some(continue_after_refusal(ctx, order, lease).await?))
        }
        Err(e) => {
            tracing::info!(order_id = %order.id, vendor = %vendor, error = %e, settled, "reconciliation still inconclusive");
            Ok(None)
        }
    }
}

/// After a refusal: a new order goes on with the next vendor, a top-up fails.
async fn continue_after_refusal(
    ctx: &Ctx,
    order: &OrderRow,
    lease: &Lease,
) -> Result<Step, PurchaseError> {
    if order.kind.routes() {
        purchase::buy(ctx, order, lease).await
    } else {
        topup::refused(ctx, lease, "vendor_rejected").await
    }
}

/// An operator asks the vendor now what happened to an order: takes its lease and does
/// the provisioner's one look ([`work_leased`]). A finished order is left as it is.
pub async fn provision_now(ctx: &Ctx, order_id: &str) -> OrderingResult<()> {
    let order = store::orders::get(&ctx.pool, order_id)
        .await?
        .ok_or(OrderingError::OrderNotFound)?;
    if !order.status.is_unfinished() {
        return Ok(());
    }
    let busy = || OrderingError::OrderBusy("the order is being worked on; retry shortly");
    let Some(leased) = store::orders::lease_one(&ctx.pool, &order.id, ctx.lease).await? else {
        return Err(busy());
    };
    match work_leased(ctx, &leased).await {
        Ok(_) => Ok(()),
        Err(PurchaseError::LeaseLost) => Err(busy()),
        Err(PurchaseError::Database(e)) => Err(e.into()),
    }
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

/// An operator gives up on an unfinished order: it fails with `order.failed` and the
/// storefront is not charged. Refused while a vendor order is known to exist (an attempt
/// was placed): that order was bought and must be delivered or cancelled at the vendor,
/// not forgotten.
pub async fn fail_by_operator(ctx: &Ctx, order_id: &str, reason: &str) -> OrderingResult<()> {
    let order = store::orders::get(&ctx.pool, order_id)
        .await?
        .ok_or(OrderingError::OrderNotFound)?;
    if !order.status.is_unfinished() {
        return Err(OrderingError::OrderFinished(order.status));
    }
    let Some(leased) = store::orders::lease_one(&ctx.pool, order_id, ctx.lease).await? else {
        return Err(OrderingError::OrderBusy(
            "the order is being worked on; retry shortly",
        ));
    };
    let lease = Lease::hold(&ctx.pool, &leased.id, leased.lease_version, ctx.lease);
    let attempts = store::orders::attempts(&ctx.pool, order_id).await?;
    let placed = attempts
        .iter()
        .find(|a| a.outcome == AttemptOutcome::Placed);
    let result = if let Some(a) = placed {
        Err(OrderingError::VendorOrderExists {
            vendor: a.vendor.clone(),
            seq: a.seq,
        })
    } else {
        match purchase::fail(ctx, &lease, "operator_failed", reason).await {
            Ok(_) => {
                tracing::warn!(order_id, reason, "order failed by an operator");
                Ok(())
            }
            Err(PurchaseError::LeaseLost) => Err(OrderingError::OrderBusy(
                "the order was taken over meanwhile; retry shortly",
            )),
            Err(PurchaseError::Database(e)) => Err(e.into()),
        }
    };
    lease.release(&ctx.pool, ctx.retry_base).await?;
    result
}
