//! The purchase loop: try ranked offers in order until one vendor takes the order, recording
//! every attempt before and after the vendor call, and stopping at the first unknown outcome.

use std::{collections::HashSet, time::Instant};

use sqlx::{PgConnection, Postgres, Transaction};

use super::{
    Ctx,
    breaker::{self, Signal},
    error::{OrderingError, OrderingResult},
    events::transition_order,
    lease::Lease,
};
use crate::{
    domain::{attempt::AttemptOutcome, money::Money, order::OrderStatus, plan::PlanKey},
    routing::{self, RoutableOffer},
    store::{
        self,
        esims::NewEsim,
        offers::{OfferDetail, parse_kind},
        orders::{AttemptResult, AttemptRow, OrderRow},
    },
    vendors::{OrderState, PlaceOrder, RejectKind, Vendor, VendorError, VendorOrderStatus},
};

/// Where an order stands after a purchase step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Completed,
    /// Placed (waiting for profiles) or waiting for an unknown outcome to be reconciled.
    Provisioning,
    Failed,
}

#[derive(Debug, thiserror::Error)]
pub enum PurchaseError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// Another worker took the order over: this one must not write anything more.
    #[error("the order's lease was taken over by another worker")]
    LeaseLost,
}

/// A transaction holding the order row locked on the caller's lease version: the fence
/// every write after a vendor call goes through.
pub async fn fenced(
    ctx: &Ctx,
    lease: &Lease,
) -> Result<(Transaction<'static, Postgres>, OrderRow), PurchaseError> {
    let mut tx = ctx.pool.begin().await?;
    match store::orders::lock_fenced(&mut tx, &lease.order_id, lease.version).await? {
        Some(order) => Ok((tx, order)),
        None => Err(PurchaseError::LeaseLost),
    }
}

/// The end of a step's last write, before its commit: a request's own lease is released
/// in the same transaction and the request's answer saved with it (see
/// [`Lease::settling_with_outcome`]), so the outcome costs one commit.
async fn settle(conn: &mut PgConnection, lease: &Lease) -> sqlx::Result<()> {
    if lease.settle_in(&mut *conn).await? {
        if let Some(answer) = super::answer::save_in(&mut *conn, &lease.order_id).await? {
            lease.settled_with(answer);
        }
    }
    Ok(())
}

/// Fails the order (`order.failed`) under the caller's lease.
pub async fn fail(
    ctx: &Ctx,
    lease: &Lease,
    code: &str,
    message: &str,
) -> Result<Step, PurchaseError> {
    let (mut tx, order) = fenced(ctx, lease).await?;
    transition_order(&mut tx, &order, OrderStatus::Failed, Some((code, message))).await?;
    settle(&mut tx, lease).await?;
    tx.commit().await?;
    Ok(Step::Failed)
}

pub(super) fn reject_kind_str(k: RejectKind) -> &'static str {
    match k {
        RejectKind::SoldOut => "sold_out",
        RejectKind::InsufficientBalance => "insufficient_balance",
        RejectKind::PriceChanged => "price_changed",
        RejectKind::InvalidRequest => "invalid_request",
        RejectKind::Auth => "auth",
        RejectKind::NotFound => "not_found",
        RejectKind::NotAllowed => "not_allowed",
        RejectKind::RateLimited => "rate_limited",
        RejectKind::Other => "other",
    }
}

/// The plan key behind a stored plan.
pub fn key_of(p: &store::plans::PlanRecord) -> Option<PlanKey> {
    Some(PlanKey {
        countries: p.countries.clone(),
        kind: parse_kind(&p.data_kind)?,
        bytes: p.data_bytes.map(|b| b as u64),
        validity_days: p.validity_days as u32,
    })
}

/// The plan key behind an order's plan (in the order's mode).
async fn plan_key(ctx: &Ctx, livemode: bool, plan_id: &str) -> sqlx::Result<Option<PlanKey>> {
    Ok(store::plans::get(&ctx.pool, livemode, plan_id)
        .await?
        .as_ref()
        .and_then(key_of))
}

/// An offer to try for an order, in the order of trying.
#[derive(Debug, Clone)]
pub struct Ranked {
    pub offer: RoutableOffer,
    pub cost_in_retail: rust_decimal::Decimal,
    /// The half-open probe version this order holds for the offer's vendor, if it does.
    pub probe: Option<i64>,
}

/// The offers that can fill `key`, cheapest first (`routing::rank`), from vendors with an
/// adapter here, not in `tried` (offers already refused for this order) and admitted by
/// their circuit breaker: an open breaker's offers are left out, a half-open one's only
/// when this order claimed its probe.
pub async fn ranked_offers(
    ctx: &Ctx,
    livemode: bool,
    key: &PlanKey,
    tried: &HashSet<i64>,
) -> sqlx::Result<Vec<Ranked>> {
    let vendors_here = ctx.vendors(livemode);
    let offers = store::offers::candidates(&ctx.pool, key, livemode, &vendors_here.ids()).await?;
    let mut health = store::offers::sync_states(&ctx.pool).await?;
    health.retain(|s| s.livemode == livemode);
    // A vendor without a sync record yet is not held back: only a failed sync is evidence.
    let healthy = |v| super::health::of(&health, v) != super::health::Health::Unhealthy;
    let ranked: Vec<_> = routing::rank(
        key,
        offers.iter().map(|o| &o.routable),
        &ctx.pricing.fx,
        ctx.pricing.retail_currency,
        healthy,
    )
    .into_iter()
    .filter(|c| {
        !tried.contains(&c.offer.offer_id) && vendors_here.adapter(c.offer.vendor).is_some()
    })
    .collect();
    let mut vendors: Vec<_> = ranked.iter().map(|c| c.offer.vendor).collect();
    vendors.sort();
    vendors.dedup();
    let admitted = super::breaker::admit(ctx, livemode, &vendors).await?;
    Ok(ranked
        .into_iter()
        .filter_map(|c| {
            let probe = admitted
                .iter()
                .find(|(v, _)| *v == c.offer.vendor)
                .and_then(|(_, a)| *a)?;
            Some(Ranked {
                offer: c.offer.clone(),
                cost_in_retail: c.cost_in_retail,
                probe,
            })
        })
        .collect())
}

/// One offer behind a plan in the order an order would try it, for operators.
#[derive(Debug, Clone)]
pub struct PlanOffer {
    pub detail: OfferDetail,
    pub cost_in_retail: rust_decimal::Decimal,
    pub vendor_healthy: bool,
}

/// The vendor offers behind a stored plan, cheapest first: the routing decision shown to
/// operators.
/// Every vendor is ranked as healthy here, so the list shows the offers by cost alone.
pub async fn plan_offers(
    ctx: &Ctx,
    livemode: bool,
    plan_id: &str,
) -> OrderingResult<(store::plans::PlanRecord, Vec<PlanOffer>)> {
    let plan = store::plans::get(&ctx.pool, livemode, plan_id)
        .await?
        .ok_or(OrderingError::PlanNotFound)?;
    let key = key_of(&plan).ok_or_else(|| anyhow::anyhow!("stored plan has unknown data kind"))?;
    let offers =
        store::offers::candidates(&ctx.pool, &key, livemode, &ctx.vendors(livemode).ids()).await?;
    let ranked = routing::rank(
        &key,
        offers.iter().map(|o| &o.routable),
        &ctx.pricing.fx,
        ctx.pricing.retail_currency,
        |_| true,
    );
    let data = ranked
        .iter()
        .filter_map(|c| {
            let detail = offers
                .iter()
                .find(|o| o.routable.offer_id == c.offer.offer_id)?;
            Some(PlanOffer {
                detail: detail.clone(),
                cost_in_retail: c.cost_in_retail,
                vendor_healthy: c.vendor_healthy,
            })
        })
        .collect();
    Ok((plan, data))
}

/// Records that `candidate` is about to be called for `order`, in the caller's
/// transaction (which must commit before the call).
pub async fn start_attempt(
    conn: &mut PgConnection,
    order: &OrderRow,
    candidate: &Ranked,
) -> sqlx::Result<AttemptRow> {
    let offer = &candidate.offer;
    let total_cost = offer.cost_amount * rust_decimal::Decimal::from(order.quantity);
    store::orders::start_attempt(
        conn,
        &order.id,
        offer.vendor.as_str(),
        offer.offer_id,
        &offer.sku,
        (total_cost, offer.cost_currency.as_str()),
    )
    .await
}

/// Runs the candidate loop for a new-eSIM order from wherever its attempts left off.
/// The caller holds the order's lease.
pub async fn buy(ctx: &Ctx, order: &OrderRow, lease: &Lease) -> Result<Step, PurchaseError> {
    let attempts = store::orders::attempts(&ctx.pool, &order.id).await?;
    // Offers already refused for this order are not tried again.
    let tried: HashSet<i64> = attempts.iter().filter_map(|a| a.vendor_offer_id).collect();
    let Some(key) = plan_key(ctx, order.livemode, &order.plan_id).await? else {
        return fail(ctx, lease, "plan_unavailable", "the plan is no longer sold").await;
    };
    let ranked = ranked_offers(ctx, order.livemode, &key, &tried).await?;
    try_offers(ctx, order, lease, &ranked, None).await
}

/// Tries `ranked` in turn until a vendor takes the order or gives an unknown outcome.
/// `first`, when given, is the attempt on `ranked[0]` already committed with the order
/// itself (a new order's intake); every other attempt is committed here before its call.
pub async fn try_offers(
    ctx: &Ctx,
    order: &OrderRow,
    lease: &Lease,
    ranked: &[Ranked],
    first: Option<AttemptRow>,
) -> Result<Step, PurchaseError> {
    let step = try_in_turn(ctx, order, lease, ranked, first).await;
    release_probes(ctx, order.livemode, ranked).await;
    step
}

/// Gives back the half-open probes claimed for `ranked` that were not used (one that was
/// used is already settled by its outcome; its release then does nothing).
pub async fn release_probes(ctx: &Ctx, livemode: bool, ranked: &[Ranked]) {
    let mut released = HashSet::new();
    for c in ranked {
        if let Some(v) = c.probe
            && released.insert(c.offer.vendor)
        {
            breaker::release(ctx, livemode, c.offer.vendor, v).await;
        }
    }
}

async fn try_in_turn(
    ctx: &Ctx,
    order: &OrderRow,
    lease: &Lease,
    ranked: &[Ranked],
    mut first: Option<AttemptRow>,
) -> Result<Step, PurchaseError> {
    let placed_at = order.created_at;
    for candidate in ranked {
        let offer = &candidate.offer;
        // Only the order's own mode's vendors: a test order never reaches a live vendor.
        let Some(adapter) = ctx.vendors(order.livemode).adapter(offer.vendor) else {
            continue;
        };
        let unit_cost = Money::new(offer.cost_amount, offer.cost_currency);
        let attempt = match first.take_if(|a| a.vendor_offer_id == Some(offer.offer_id)) {
            Some(a) => a,
            None => {
                // The attempt is committed, under the fence, before the vendor hears of it.
                let (mut tx, _) = fenced(ctx, lease).await?;
                let attempt = start_attempt(&mut tx, order, candidate).await?;
                tx.commit().await?;
                attempt
            }
        };
        let started = Instant::now();
        let result = adapter
            .place_order(&PlaceOrder {
                order_id: order.id.clone(),
                sku: offer.sku.clone(),
                quantity: order.quantity as u32,
                expected_unit_cost: Some(unit_cost),
                placed_at,
            })
            .await;
        let latency = started.elapsed().as_millis() as i64;
        let retail_cost = candidate.cost_in_retail * rust_decimal::Decimal::from(order.quantity);
        let signal = match &result {
            Ok(_) | Err(VendorError::Rejected { .. } | VendorError::Unsupported) => {
                Signal::Answered
            }
            Err(_) => Signal::Failed,
        };
        breaker::record(ctx, order.livemode, offer.vendor, signal, candidate.probe).await;
        match result {
            Ok(state) => {
                return placed(
                    ctx,
                    order,
                    lease,
                    &attempt,
                    state,
                    Some(latency),
                    Some(retail_cost),
                )
                .await;
            }
            Err(e) if e.nothing_bought() => {
                record_refusal(ctx, lease, &attempt, &e, latency).await?;
                metrics::counter!("order_attempts_total", "vendor" => offer.vendor.as_str(), "outcome" => e.class())
                    .increment(1);
            }
            Err(e) => {
                record_unknown(ctx, order, lease, &attempt, &e, Some(latency)).await?;
                return Ok(Step::Provisioning);
            }
        }
    }
    give_up(ctx, order, lease).await
}

pub(super) async fn record_refusal(
    ctx: &Ctx,
    lease: &Lease,
    attempt: &AttemptRow,
    e: &VendorError,
    latency: i64,
) -> Result<(), PurchaseError> {
    let (outcome, kind, code, message) = match e {
        VendorError::Rejected {
            kind,
            code,
            message,
        } => (
            AttemptOutcome::Rejected,
            Some(reject_kind_str(*kind)),
            Some(code.as_str()),
            message.clone(),
        ),
        VendorError::Unreachable(m) => (AttemptOutcome::Unreachable, None, None, m.clone()),
        other => (
            AttemptOutcome::Rejected,
            Some("other"),
            None,
            other.to_string(),
        ),
    };
    let (mut tx, _) = fenced(ctx, lease).await?;
    store::orders::finish_attempt(
        &mut tx,
        attempt.id,
        &AttemptResult {
            outcome,
            vendor_reference: None,
            error_kind: kind,
            error_code: code,
            error_message: Some(&message),
            latency_ms: Some(latency),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The attempt's outcome and the order's wait for reconciliation, in one transaction.
pub(super) async fn record_unknown(
    ctx: &Ctx,
    order: &OrderRow,
    lease: &Lease,
    attempt: &AttemptRow,
    e: &VendorError,
    latency: Option<i64>,
) -> Result<(), PurchaseError> {
    tracing::warn!(order_id = %order.id, vendor = %attempt.vendor, error = %e, "order outcome unknown: reconciling with that vendor before anything else");
    let (mut tx, _) = fenced(ctx, lease).await?;
    store::orders::finish_attempt(
        &mut tx,
        attempt.id,
        &AttemptResult {
            outcome: AttemptOutcome::Unknown,
            vendor_reference: None,
            error_kind: None,
            error_code: None,
            error_message: Some(&e.to_string()),
            latency_ms: latency,
        },
    )
    .await?;
    store::orders::mark_awaiting_vendor(&mut tx, &order.id, &attempt.vendor).await?;
    settle(&mut tx, lease).await?;
    tx.commit().await?;
    metrics::counter!("order_attempts_total", "vendor" => attempt.vendor.clone(), "outcome" => "unknown")
        .increment(1);
    Ok(())
}

/// The vendor has the order: the attempt's outcome, what was bought at what cost, the
/// profiles that came back and, when every eSIM is there, completion with its event, all
/// in one transaction under the fence.
pub async fn placed(
    ctx: &Ctx,
    order: &OrderRow,
    lease: &Lease,
    attempt: &AttemptRow,
    state: OrderState,
    latency: Option<i64>,
    retail_cost: Option<rust_decimal::Decimal>,
) -> Result<Step, PurchaseError> {
    let retail_cost = match retail_cost {
        Some(c) => Some(c),
        None => match (
            attempt.cost_amount,
            attempt
                .cost_currency
                .as_deref()
                .and_then(|c| c.parse().ok()),
        ) {
            (Some(a), Some(cur)) => ctx.pricing.cost_in_retail(Money::new(a, cur)),
            _ => None,
        },
    };
    let (mut tx, _) = fenced(ctx, lease).await?;
    // A vendor order that delivers eSIMs belongs to one gateway order only.
    if order.kind.delivers_esims() {
        let iccids: Vec<String> = state.esims.iter().map(|p| p.iccid.clone()).collect();
        let holder = store::orders::other_holder(
            &mut tx,
            &order.id,
            &attempt.vendor,
            state.vendor_reference.as_deref(),
            &iccids,
        )
        .await?;
        if let Some(other) = holder {
            // The vendor's answer names a purchase another of our orders already holds (a
            // reconciliation matched the wrong order): record nothing, keep the attempt open
            // and tell an operator.
            let reason = format!(
                "{} answered with a vendor order ({}) that order {other} already holds; \
                 not recorded: check at the vendor",
                attempt.vendor,
                state.vendor_reference.as_deref().unwrap_or("same eSIM")
            );
            if store::orders::flag_attention(&mut tx, &order.id, &reason).await? {
                tracing::warn!(order_id = %order.id, other_order = %other, vendor = %attempt.vendor, "order needs attention: the vendor order it matched belongs to another order");
            }
            settle(&mut tx, lease).await?;
            tx.commit().await?;
            return Ok(Step::Provisioning);
        }
    }
    store::orders::finish_attempt(
        &mut tx,
        attempt.id,
        &AttemptResult {
            outcome: AttemptOutcome::Placed,
            vendor_reference: state.vendor_reference.as_deref(),
            error_kind: None,
            error_code: None,
            error_message: None,
            latency_ms: latency,
        },
    )
    .await?;
    store::orders::mark_placed(
        &mut tx,
        &order.id,
        attempt,
        state.vendor_reference.as_deref(),
        retail_cost,
    )
    .await?;
    let step = apply_state_in(&mut tx, order, &attempt.vendor, &state).await?;
    settle(&mut tx, lease).await?;
    tx.commit().await?;
    metrics::counter!("order_attempts_total", "vendor" => attempt.vendor.clone(), "outcome" => "placed")
        .increment(1);
    count_outcome(order.livemode, &attempt.vendor, &step);
    Ok(step)
}

/// `orders_total{mode, vendor, outcome}`: test orders never count as live sales.
fn count_outcome(livemode: bool, vendor: &str, step: &Step) {
    if *step == Step::Completed {
        metrics::counter!("orders_total", "mode" => crate::domain::mode::label(livemode), "vendor" => vendor.to_string(), "outcome" => "completed")
            .increment(1);
    }
}

/// Applies a vendor's view of a placed order under the caller's lease. Idempotent:
/// profiles already stored are skipped and a finished order is not touched.
pub async fn apply_state(
    ctx: &Ctx,
    order: &OrderRow,
    lease: &Lease,
    vendor: &str,
    state: OrderState,
) -> Result<Step, PurchaseError> {
    let (mut tx, _) = fenced(ctx, lease).await?;
    let step = apply_state_in(&mut tx, order, vendor, &state).await?;
    tx.commit().await?;
    count_outcome(order.livemode, vendor, &step);
    Ok(step)
}

/// [`apply_state`] inside the caller's fenced transaction.
async fn apply_state_in(
    conn: &mut PgConnection,
    order: &OrderRow,
    vendor: &str,
    state: &OrderState,
) -> Result<Step, PurchaseError> {
    if order.kind.delivers_esims() {
        for p in &state.esims {
            let new = store::esims::insert(
                &mut *conn,
                &NewEsim {
                    iccid: &p.iccid,
                    order_id: &order.id,
                    storefront_id: &order.storefront_id,
                    livemode: order.livemode,
                    vendor,
                    vendor_reference: state.vendor_reference.as_deref(),
                    vendor_esim_ref: p.vendor_esim_ref.as_deref(),
                    plan_id: &order.plan_id,
                    status: super::usage::esim_state(p.status),
                    lpa: &p.activation.lpa,
                    smdp_address: &p.activation.smdp_address,
                    matching_id: &p.activation.matching_id,
                    expires_at: p.expires_at,
                    total_bytes: None,
                    unlimited: false,
                },
            )
            .await?;
            if !new {
                // Known already: its status, as the vendor reports it now, goes through
                // the one eSIM transition like any other fact.
                super::events::transition_esim(
                    &mut *conn,
                    &p.iccid,
                    super::usage::esim_state(p.status),
                    None,
                )
                .await?;
            }
        }
    }
    let now = store::orders::get(&mut *conn, &order.id)
        .await?
        .ok_or(PurchaseError::LeaseLost)?;
    let current = now.status;
    if !current.is_unfinished() {
        if current == OrderStatus::Failed && state.status != VendorOrderStatus::Failed {
            // Only possible after an operator failed an order whose outcome was unknown.
            tracing::warn!(order_id = %order.id, vendor, vendor_reference = state.vendor_reference.as_deref().unwrap_or(""), "a failed order has a purchase at its vendor: cancel it there");
        }
        return Ok(match current {
            OrderStatus::Failed => Step::Failed,
            _ => Step::Completed,
        });
    }
    match state.status {
        VendorOrderStatus::Failed | VendorOrderStatus::Cancelled => {
            // The vendor gave the order up before delivering: nothing was bought there.
            transition_order(
                &mut *conn,
                &now,
                OrderStatus::Failed,
                Some(("vendor_failed", order.kind.vendor_failed_message())),
            )
            .await?;
            Ok(Step::Failed)
        }
        VendorOrderStatus::Pending => Ok(Step::Provisioning),
        VendorOrderStatus::Completed => {
            if order.kind.delivers_esims() {
                let stored = store::esims::for_order(&mut *conn, &order.id).await?;
                if stored.len() < order.quantity as usize {
                    return Ok(Step::Provisioning);
                }
            }
            transition_order(&mut *conn, &now, OrderStatus::Completed, None).await?;
            Ok(Step::Completed)
        }
    }
}

/// No candidate left: the order fails and the storefront is not charged.
async fn give_up(ctx: &Ctx, order: &OrderRow, lease: &Lease) -> Result<Step, PurchaseError> {
    let attempts = store::orders::attempts(&ctx.pool, &order.id).await?;
    let all_sold_out = attempts
        .iter()
        .all(|a| a.error_kind.as_deref() == Some("sold_out"));
    let (code, message) = if attempts.is_empty() || all_sold_out {
        (
            "sold_out",
            "no vendor can supply this plan right now".to_string(),
        )
    } else {
        (
            "vendor_unavailable",
            format!(
                "{} vendor offer(s) tried; none could supply this plan",
                attempts.len()
            ),
        )
    };
    let step = fail(ctx, lease, code, &message).await?;
    metrics::counter!("orders_total", "mode" => crate::domain::mode::label(order.livemode), "vendor" => "none", "outcome" => "failed").increment(1);
    Ok(step)
}

/// Sends a new-eSIM attempt whose outcome is unknown to its (idempotent) vendor again.
pub(super) async fn resend(
    order: &OrderRow,
    attempt: &AttemptRow,
    adapter: &dyn Vendor,
) -> Result<OrderState, VendorError> {
    adapter
        .place_order(&PlaceOrder {
            order_id: order.id.clone(),
            sku: attempt.sku.clone().unwrap_or_default(),
            quantity: order.kind.vendor_quantity(order.quantity),
            expected_unit_cost: None,
            placed_at: attempt.started_at,
        })
        .await
}

/// How far before an attempt other orders' eSIMs are looked at when reconciling it: wider
/// than any adapter's search window, so every vendor order it may consider is covered.
const OWNED_ICCIDS_LOOKBACK: chrono::Duration = chrono::Duration::hours(6);

/// The reconciliation key of an attempt, read from its row in Postgres (never from process
/// memory): what was sent and when, plus the ICCIDs of this vendor already owned by other
/// orders of ours, which the adapter must not attribute to this order.
pub async fn order_ref(
    ctx: &Ctx,
    order: &OrderRow,
    attempt: &AttemptRow,
) -> sqlx::Result<crate::vendors::VendorOrderRef> {
    let vendor_reference = attempt
        .vendor_reference
        .clone()
        .or_else(|| order.vendor_reference.clone());
    // Only a search by our order id (no vendor reference yet) needs them.
    let owned_iccids = if vendor_reference.is_none() {
        store::esims::owned_by_others_since(
            &ctx.pool,
            &attempt.vendor,
            &order.id,
            attempt.started_at - OWNED_ICCIDS_LOOKBACK,
        )
        .await?
    } else {
        Vec::new()
    };
    Ok(crate::vendors::VendorOrderRef {
        order_id: order.id.clone(),
        vendor_reference,
        placed_at: attempt.started_at,
        sku: attempt.sku.clone(),
        quantity: order.kind.vendor_quantity(order.quantity),
        owned_iccids,
    })
}
