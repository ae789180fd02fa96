//! The purchase loop: try ranked offers in order until one vendor takes the order, recording
//! every attempt before and after the vendor call, and stopping at the first unknown outcome.

use std::{collections::HashSet, time::Instant};

use super::Ctx;
use crate::{
    domain::{money::Money, plan::PlanKey},
    routing,
    store::{
        self,
        esims::NewEsim,
        offers::parse_kind,
        orders::{AttemptResult, AttemptRow, OrderRow},
    },
    vendors::{
        EsimRef, EsimStatus, OrderState, PlaceOrder, RejectKind, TopUp, VendorError, VendorId,
        VendorOrderStatus,
    },
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
}

pub fn esim_status_str(s: EsimStatus) -> &'static str {
    match s {
        EsimStatus::Ready => "ready",
        EsimStatus::Installed => "installed",
        EsimStatus::Active => "active",
        EsimStatus::Depleted => "depleted",
        EsimStatus::Expired => "expired",
        EsimStatus::Cancelled => "cancelled",
    }
}

fn reject_kind_str(k: RejectKind) -> &'static str {
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

/// The plan key behind an order's plan.
async fn plan_key(ctx: &Ctx, plan_id: &str) -> sqlx::Result<Option<PlanKey>> {
    Ok(store::plans::get(&ctx.pool, plan_id).await?.and_then(|p| {
        Some(PlanKey {
            countries: p.countries,
            kind: parse_kind(&p.data_kind)?,
            bytes: p.data_bytes.map(|b| b as u64),
            validity_days: p.validity_days as u32,
        })
    }))
}

/// Runs the candidate loop for a new-eSIM order from wherever its attempts left off.
/// The caller holds the order's lease.
pub async fn buy(ctx: &Ctx, order: &OrderRow) -> Result<Step, PurchaseError> {
    let attempts = store::orders::attempts(&ctx.pool, &order.id).await?;
    // Offers already refused for this order are not tried again.
    let tried: HashSet<i64> = attempts.iter().filter_map(|a| a.vendor_offer_id).collect();
    let Some(key) = plan_key(ctx, &order.plan_id).await? else {
        super::events::fail_order(
            &ctx.pool,
            &order.id,
            "plan_unavailable",
            "the plan is no longer sold",
        )
        .await?;
        return Ok(Step::Failed);
    };
    let offers = store::offers::candidates(&ctx.pool, &key, &ctx.vendors.ids()).await?;
    let health = store::offers::sync_states(&ctx.pool).await?;
    let healthy = |v: VendorId| {
        health
            .iter()
            .find(|s| s.vendor == v.as_str())
            .is_none_or(|s| s.last_error.is_none())
    };
    let ranked = routing::rank(
        &key,
        offers.iter().map(|o| &o.routable),
        &ctx.pricing.fx,
        ctx.pricing.retail_currency,
        healthy,
    );
    let placed_at = order.created_at;
    for candidate in ranked.iter().filter(|c| !tried.contains(&c.offer.offer_id)) {
        let offer = candidate.offer;
        let Some(adapter) = ctx.vendors.adapter(offer.vendor) else {
            continue;
        };
        let unit_cost = Money::new(offer.cost_amount, offer.cost_currency);
        let total_cost = offer.cost_amount * rust_decimal::Decimal::from(order.quantity);
        let attempt = store::orders::start_attempt(
            &ctx.pool,
            &order.id,
            offer.vendor.as_str(),
            offer.offer_id,
            &offer.sku,
            (total_cost, offer.cost_currency.as_str()),
        )
        .await?;
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
        match result {
            Ok(state) => {
                return placed(
                    ctx,
                    order,
                    &attempt,
                    state,
                    Some(latency),
                    Some(retail_cost),
                )
                .await;
            }
            Err(e) if e.nothing_bought() => {
                record_refusal(ctx, &attempt, &e, latency).await?;
                metrics::counter!("order_attempts_total", "vendor" => offer.vendor.as_str(), "outcome" => e.class())
                    .increment(1);
            }
            Err(e) => {
                record_unknown(ctx, order, &attempt, &e, Some(latency)).await?;
                return Ok(Step::Provisioning);
            }
        }
    }
    give_up(ctx, order).await
}

pub(super) async fn record_refusal(
    ctx: &Ctx,
    attempt: &AttemptRow,
    e: &VendorError,
    latency: i64,
) -> sqlx::Result<()> {
    let (outcome, kind, code, message) = match e {
        VendorError::Rejected {
            kind,
            code,
            message,
        } => (
            "rejected",
            Some(reject_kind_str(*kind)),
            Some(code.as_str()),
            message.clone(),
        ),
        VendorError::Unreachable(m) => ("unreachable", None, None, m.clone()),
        other => ("rejected", Some("other"), None, other.to_string()),
    };
    store::orders::finish_attempt(
        &ctx.pool,
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
    .await
}

pub(super) async fn record_unknown(
    ctx: &Ctx,
    order: &OrderRow,
    attempt: &AttemptRow,
    e: &VendorError,
    latency: Option<i64>,
) -> sqlx::Result<()> {
    tracing::warn!(order_id = %order.id, vendor = %attempt.vendor, error = %e, "order outcome unknown: reconciling with that vendor before anything else");
    metrics::counter!("order_attempts_total", "vendor" => attempt.vendor.clone(), "outcome" => "unknown")
        .increment(1);
    store::orders::finish_attempt(
        &ctx.pool,
        attempt.id,
        &AttemptResult {
            outcome: "unknown",
            vendor_reference: None,
            error_kind: None,
            error_code: None,
            error_message: Some(&e.to_string()),
            latency_ms: latency,
        },
    )
    .await?;
    store::orders::mark_awaiting_vendor(&ctx.pool, &order.id, &attempt.vendor).await
}

/// The vendor has the order: record it, store whatever profiles came back, complete when
/// every eSIM is there.
pub async fn placed(
    ctx: &Ctx,
    order: &OrderRow,
    attempt: &AttemptRow,
    state: OrderState,
    latency: Option<i64>,
    retail_cost: Option<rust_decimal::Decimal>,
) -> Result<Step, PurchaseError> {
    store::orders::finish_attempt(
        &ctx.pool,
        attempt.id,
        &AttemptResult {
            outcome: "placed",
            vendor_reference: state.vendor_reference.as_deref(),
            error_kind: None,
            error_code: None,
            error_message: None,
            latency_ms: latency,
        },
    )
    .await?;
    metrics::counter!("order_attempts_total", "vendor" => attempt.vendor.clone(), "outcome" => "placed")
        .increment(1);
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
    store::orders::mark_placed(
        &ctx.pool,
        &order.id,
        attempt,
        state.vendor_reference.as_deref(),
        retail_cost,
    )
    .await?;
    apply_state(ctx, order, &attempt.vendor, state).await
}

/// Applies a vendor's view of a placed order. Idempotent: profiles already stored are
/// skipped and a finished order is not touched.
pub async fn apply_state(
    ctx: &Ctx,
    order: &OrderRow,
    vendor: &str,
    state: OrderState,
) -> Result<Step, PurchaseError> {
    if order.kind == "topup" {
        return Ok(match state.status {
            VendorOrderStatus::Failed | VendorOrderStatus::Cancelled => {
                super::events::fail_order(
                    &ctx.pool,
                    &order.id,
                    "vendor_failed",
                    "the vendor could not apply the top-up",
                )
                .await?;
                Step::Failed
            }
            VendorOrderStatus::Pending => Step::Provisioning,
            VendorOrderStatus::Completed => {
                super::events::complete_order(&ctx.pool, &order.id).await?;
                Step::Completed
            }
        });
    }
    for p in &state.esims {
        store::esims::insert(
            &ctx.pool,
            &NewEsim {
                iccid: &p.iccid,
                order_id: &order.id,
                storefront_id: &order.storefront_id,
                vendor,
                vendor_reference: state.vendor_reference.as_deref(),
                vendor_esim_ref: p.vendor_esim_ref.as_deref(),
                plan_id: &order.plan_id,
                status: esim_status_str(p.status),
                lpa: &p.activation.lpa,
                smdp_address: &p.activation.smdp_address,
                matching_id: &p.activation.matching_id,
                expires_at: p.expires_at,
                total_bytes: None,
                unlimited: false,
            },
        )
        .await?;
    }
    match state.status {
        VendorOrderStatus::Failed | VendorOrderStatus::Cancelled => {
            // The vendor gave the order up before delivering: nothing was bought there.
            super::events::fail_order(
                &ctx.pool,
                &order.id,
                "vendor_failed",
                "the vendor could not deliver the eSIM",
            )
            .await?;
            return Ok(Step::Failed);
        }
        VendorOrderStatus::Pending => return Ok(Step::Provisioning),
        VendorOrderStatus::Completed => {}
    }
    let stored = store::esims::for_order(&ctx.pool, &order.id).await?;
    if stored.len() >= order.quantity as usize {
        if super::events::complete_order(&ctx.pool, &order.id).await? {
            metrics::counter!("orders_total", "vendor" => vendor.to_string(), "outcome" => "completed").increment(1);
        }
        Ok(Step::Completed)
    } else {
        Ok(Step::Provisioning)
    }
}

/// No candidate left: the order fails and the storefront is not charged.
async fn give_up(ctx: &Ctx, order: &OrderRow) -> Result<Step, PurchaseError> {
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
    super::events::fail_order(&ctx.pool, &order.id, code, &message).await?;
    metrics::counter!("orders_total", "vendor" => "none", "outcome" => "failed").increment(1);
    Ok(Step::Failed)
}

/// Resolves an attempt whose outcome is unknown (or was cut short by a crash) with its
/// vendor: idempotent vendors get the same request again, the others are asked.
pub async fn reconcile(
    ctx: &Ctx,
    order: &OrderRow,
    attempt: &AttemptRow,
) -> Result<Option<Step>, PurchaseError> {
    let Some(vendor) = attempt.vendor.parse::<VendorId>().ok() else {
        return Ok(None);
    };
    let Some(adapter) = ctx.vendors.adapter(vendor) else {
        return Ok(None);
    };
    let result = if order.kind == "topup" {
        let esim = topup_target(ctx, order).await?;
        if adapter.place_is_idempotent() {
            adapter
                .topup(&TopUp {
                    order_id: order.id.clone(),
                    esim,
                    sku: attempt.sku.clone().unwrap_or_default(),
                    placed_at: attempt.started_at,
                })
                .await
        } else {
            adapter
                .fetch_order(&order_ref(ctx, order, attempt).await?)
                .await
        }
    } else if adapter.place_is_idempotent() {
        adapter
            .place_order(&PlaceOrder {
                order_id: order.id.clone(),
                sku: attempt.sku.clone().unwrap_or_default(),
                quantity: order.quantity as u32,
                expected_unit_cost: None,
                placed_at: attempt.started_at,
            })
            .await
    } else {
        adapter
            .fetch_order(&order_ref(ctx, order, attempt).await?)
            .await
    };
    match result {
        Ok(state) => Ok(Some(placed(ctx, order, attempt, state, None, None).await?)),
        Err(VendorError::Rejected {
            kind: RejectKind::NotFound,
            ..
        }) if !adapter.place_is_idempotent() => {
            store::orders::finish_attempt(
                &ctx.pool,
                attempt.id,
                &AttemptResult {
                    outcome: "not_found",
                    vendor_reference: None,
                    error_kind: Some("not_found"),
                    error_code: None,
                    error_message: Some("reconciled: the vendor has no such order"),
                    latency_ms: None,
                },
            )
            .await?;
            Ok(Some(continue_after_refusal(ctx, order).await?))
        }
        // A refused or unreachable *lookup* says nothing about the order; only a re-sent
        // request that the vendor deduplicates proves, when refused, that nothing was bought.
        Err(e) if adapter.place_is_idempotent() && e.nothing_bought() => {
            store::orders::finish_attempt(
                &ctx.pool,
                attempt.id,
                &AttemptResult {
                    outcome: "rejected",
                    vendor_reference: None,
                    error_kind: e.reject_kind().map(reject_kind_str),
                    error_code: None,
                    error_message: Some(&e.to_string()),
                    latency_ms: None,
                },
            )
            .await?;
            Ok(Some(continue_after_refusal(ctx, order).await?))
        }
        Err(e) => {
            tracing::info!(order_id = %order.id, vendor = %vendor, error = %e, "reconciliation still inconclusive");
            Ok(None)
        }
    }
}

async fn continue_after_refusal(ctx: &Ctx, order: &OrderRow) -> Result<Step, PurchaseError> {
    if order.kind == "topup" {
        super::events::fail_order(
            &ctx.pool,
            &order.id,
            "vendor_rejected",
            "the eSIM's vendor refused the top-up",
        )
        .await?;
        return Ok(Step::Failed);
    }
    buy(ctx, order).await
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
        quantity: if order.kind == "topup" {
            1
        } else {
            order.quantity.max(1) as u32
        },
        owned_iccids,
    })
}

pub async fn topup_target(ctx: &Ctx, order: &OrderRow) -> sqlx::Result<EsimRef> {
    let iccid = order.target_iccid.clone().unwrap_or_default();
    let esim = store::esims::get(&ctx.pool, &iccid).await?;
    Ok(EsimRef {
        iccid,
        vendor_esim_ref: esim.as_ref().and_then(|e| e.vendor_esim_ref.clone()),
        vendor_reference: esim.and_then(|e| e.vendor_reference),
    })
}
