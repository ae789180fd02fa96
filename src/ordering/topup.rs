//! Top-ups: plans added to an existing eSIM. They never route: only the vendor that issued
//! the eSIM can add data to it. Everything a top-up does differently from a new order is
//! here or in [`OrderKind`]'s rules; the shared attempt machinery is `purchase`.

use std::{collections::BTreeMap, sync::Arc, time::Instant};

use chrono::Utc;

use super::{
    Ctx,
    error::{OrderingError, OrderingResult, TopupRefusal},
    lease::Lease,
    purchase::{self, PurchaseError, Step},
};
use crate::{
    domain::{country::Country, esim::EsimState, money::Money, order::OrderKind, plan::PlanKey},
    store::{
        self,
        esims::EsimRow,
        offers::OfferDetail,
        orders::{AttemptRow, OrderRow},
    },
    vendors::{EsimRef, OrderState, TopUp, Vendor, VendorError, VendorId},
};

/// A plan that can be added to one eSIM, priced like catalogue plans.
#[derive(Debug, Clone)]
pub struct TopupPlan {
    pub plan_id: String,
    pub key: PlanKey,
    pub price: Money,
    pub offer: OfferDetail,
}

/// The countries of the plan the eSIM was bought with (a top-up must keep covering them).
async fn esim_countries(ctx: &Ctx, esim: &EsimRow) -> sqlx::Result<Vec<String>> {
    Ok(store::plans::get(&ctx.pool, esim.livemode, &esim.plan_id)
        .await?
        .map(|p| p.countries)
        .unwrap_or_default())
}

/// At most this many catalogue candidates are put to a vendor that checks one product at a
/// time (eSIM Go), this many at once.
const MAX_COMPATIBILITY_CHECKS: usize = 48;
const PARALLEL_CHECKS: usize = 4;

/// Why nothing can be added to this eSIM, decided from our own records before any vendor is
/// asked: its vendor documents no top-up, or the eSIM is cancelled or expired.
pub fn refusal(esim: &EsimRow) -> Option<TopupRefusal> {
    let documented = esim
        .vendor
        .parse::<VendorId>()
        .is_ok_and(VendorId::topups_documented);
    if !documented {
        return Some(TopupRefusal::NotSupported);
    }
    if esim.status == EsimState::Cancelled {
        return Some(TopupRefusal::Cancelled);
    }
    let lapsed = esim.expires_at.is_some_and(|t| t <= Utc::now());
    if esim.status == EsimState::Expired || lapsed {
        return Some(TopupRefusal::Expired);
    }
    None
}

fn esim_ref(esim: &EsimRow) -> EsimRef {
    EsimRef {
        iccid: esim.iccid.clone(),
        vendor_esim_ref: esim.vendor_esim_ref.clone(),
        vendor_reference: esim.vendor_reference.clone(),
    }
}

fn vendor_unavailable() -> OrderingError {
    OrderingError::TopupPlansUnavailable
}

/// The vendor SKUs the eSIM's vendor accepts as a top-up of it, asked where the vendor can
/// say (a per-eSIM list, or a per-product check of the catalogue candidates) and kept for a
/// short time. A vendor that can say neither leaves the catalogue's candidates (same
/// vendor, covering the eSIM's countries, marked as top-ups).
async fn accepted_skus(
    ctx: &Ctx,
    vendor: VendorId,
    adapter: Arc<dyn Vendor>,
    esim: &EsimRow,
    countries: &[String],
) -> OrderingResult<Arc<Vec<String>>> {
    let cache = &ctx.vendors(esim.livemode).topup_answers;
    if let Some(skus) = cache.get(vendor, &esim.iccid) {
        return Ok(skus);
    }
    let target = esim_ref(esim);
    let listed = match adapter.topup_offers(&target).await {
        Ok(offers) => Some(
            offers
                .into_iter()
                .filter(|o| o.active)
                .map(|o| o.sku)
                .collect::<Vec<_>>(),
        ),
        Err(VendorError::Unsupported) => None,
        Err(e) => {
            tracing::warn!(%vendor, error = %e, "top-up list for an eSIM failed");
            return Err(vendor_unavailable());
        }
    };
    if let Some(skus) = listed {
        return Ok(cache.put(vendor, &esim.iccid, skus));
    }
    let mut candidates: Vec<String> =
        store::offers::topup_offers(&ctx.pool, esim.livemode, vendor, countries, None)
            .await?
            .into_iter()
            .map(|(_, o)| o.routable.sku)
            .collect();
    candidates.sort();
    candidates.dedup();
    candidates.truncate(MAX_COMPATIBILITY_CHECKS);
    let mut accepted = Vec::new();
    let mut failed = 0usize;
    for chunk in candidates.chunks(PARALLEL_CHECKS) {
        let mut checks = tokio::task::JoinSet::new();
        for sku in chunk {
            let (adapter, target, sku) = (adapter.clone(), target.clone(), sku.clone());
            checks.spawn(async move {
                let answer = adapter.topup_compatible(&target, &sku).await;
                (sku, answer)
            });
        }
        while let Some(done) = checks.join_next().await {
            match done {
                Ok((sku, Ok(true) | Err(VendorError::Unsupported))) => accepted.push(sku),
                Ok((_, Ok(false))) => {}
                Ok((sku, Err(e))) => {
                    tracing::warn!(%vendor, %sku, error = %e, "top-up compatibility check failed");
                    failed += 1;
                }
                Err(e) => {
                    tracing::warn!(%vendor, error = %e, "top-up compatibility check panicked");
                    failed += 1;
                }
            }
        }
    }
    if failed > 0 && accepted.is_empty() {
        return Err(vendor_unavailable());
    }
    accepted.sort();
    if failed > 0 {
        // A partial answer is shown but not kept: the next listing asks again.
        return Ok(Arc::new(accepted));
    }
    Ok(cache.put(vendor, &esim.iccid, accepted))
}

/// The top-ups this eSIM's vendor accepts for it, one per plan id (the cheapest offer each),
/// priced like catalogue plans. Empty when nothing can be added to the eSIM.
pub async fn plans_for(ctx: &Ctx, esim: &EsimRow) -> OrderingResult<Vec<TopupPlan>> {
    if refusal(esim).is_some() {
        return Ok(vec![]);
    }
    let Ok(vendor) = esim.vendor.parse::<VendorId>() else {
        return Ok(vec![]);
    };
    let Some(adapter) = ctx.vendors(esim.livemode).adapter(vendor) else {
        return Ok(vec![]);
    };
    let countries = esim_countries(ctx, esim).await?;
    let skus = accepted_skus(ctx, vendor, adapter, esim, &countries).await?;
    let offers =
        store::offers::topup_offers(&ctx.pool, esim.livemode, vendor, &countries, Some(&skus))
            .await?;
    let mut best: BTreeMap<String, TopupPlan> = BTreeMap::new();
    for (plan_id, offer) in offers {
        let cost = Money::new(offer.routable.cost_amount, offer.routable.cost_currency);
        let Some(in_retail) = ctx.pricing.cost_in_retail(cost) else {
            continue;
        };
        let price = ctx.pricing.retail_from_retail_cost(in_retail);
        let key = PlanKey {
            countries: offer.routable.countries.to_vec(),
            kind: offer.routable.kind,
            bytes: offer.routable.bytes,
            validity_days: offer.routable.validity_days,
        };
        let better = best
            .get(&plan_id)
            .is_none_or(|b| price.amount < b.price.amount);
        if better {
            best.insert(
                plan_id.clone(),
                TopupPlan {
                    plan_id,
                    key,
                    price,
                    offer,
                },
            );
        }
    }
    let mut plans: Vec<TopupPlan> = best.into_values().collect();
    plans.sort_by(|a, b| {
        a.price
            .amount
            .cmp(&b.price.amount)
            .then(a.plan_id.cmp(&b.plan_id))
    });
    Ok(plans)
}

pub fn topup_plan_name(key: &PlanKey) -> String {
    let coverage = match key.countries.as_slice() {
        [one] => Country::from_alpha2(one).map_or(one.clone(), |c| c.common_name().to_string()),
        many => format!("{} countries", many.len()),
    };
    format!("{coverage} {} top-up", key.allowance_label())
}

/// The top-ups that can be added to the storefront's eSIM right now, cheapest first.
pub async fn plans_for_esim(
    ctx: &Ctx,
    owner: (&str, bool),
    iccid: &str,
) -> OrderingResult<Vec<TopupPlan>> {
    let esim = super::usage::own_esim(ctx, owner, iccid).await?;
    plans_for(ctx, &esim).await
}

/// The top-up `plan_id` as it is offered for the storefront's eSIM now, or why not.
pub(super) async fn offered(
    ctx: &Ctx,
    owner: (&str, bool),
    iccid: &str,
    plan_id: &str,
) -> OrderingResult<TopupPlan> {
    let esim = super::usage::own_esim(ctx, owner, iccid).await?;
    // Decided from our records alone: no vendor is asked for what cannot be sold.
    if let Some(refused) = refusal(&esim) {
        return Err(refused.into());
    }
    plans_for(ctx, &esim)
        .await?
        .into_iter()
        .find(|p| p.plan_id == plan_id)
        .ok_or(OrderingError::TopupPlanNotFound)
}

/// Buys a claimed top-up order from the eSIM's own vendor, under the caller's lease.
pub async fn purchase(ctx: &Ctx, order: &OrderRow, lease: &Lease) -> Result<Step, PurchaseError> {
    let Some(esim) =
        store::esims::get(&ctx.pool, order.target_iccid.as_deref().unwrap_or("")).await?
    else {
        return purchase::fail(ctx, lease, "esim_not_found", "the eSIM no longer exists").await;
    };
    if let Some(refused) = refusal(&esim) {
        return purchase::fail(
            ctx,
            lease,
            refused.code(),
            "nothing can be added to this eSIM",
        )
        .await;
    }
    let Ok(plans) = plans_for(ctx, &esim).await else {
        return purchase::fail(
            ctx,
            lease,
            "vendor_unavailable",
            "the eSIM's network could not confirm the top-up; nothing was bought",
        )
        .await;
    };
    let (Some(plan), Ok(vendor)) = (
        plans.iter().find(|p| p.plan_id == order.plan_id),
        esim.vendor.parse::<VendorId>(),
    ) else {
        return purchase::fail(
            ctx,
            lease,
            "plan_unavailable",
            "the top-up is no longer offered",
        )
        .await;
    };
    let Some(adapter) = ctx.vendors(order.livemode).adapter(vendor) else {
        return purchase::fail(
            ctx,
            lease,
            "vendor_unavailable",
            "the eSIM's vendor is not enabled",
        )
        .await;
    };
    let offer = &plan.offer.routable;
    let (mut tx, _) = purchase::fenced(ctx, lease).await?;
    let attempt = store::orders::start_attempt(
        &mut tx,
        &order.id,
        vendor.as_str(),
        offer.offer_id,
        &offer.sku,
        (offer.cost_amount, offer.cost_currency.as_str()),
    )
    .await?;
    tx.commit().await?;
    let started = Instant::now();
    let result = adapter
        .topup(&TopUp {
            order_id: order.id.clone(),
            esim: target(ctx, order).await?,
            sku: offer.sku.clone(),
            placed_at: order.created_at,
        })
        .await;
    let latency = started.elapsed().as_millis() as i64;
    match result {
        Ok(state) => {
            // The eSIM changed: the next listing asks the vendor again.
            ctx.vendors(order.livemode)
                .topup_answers
                .forget(vendor, &esim.iccid);
            let retail = ctx
                .pricing
                .cost_in_retail(Money::new(offer.cost_amount, offer.cost_currency));
            purchase::placed(ctx, order, lease, &attempt, state, Some(latency), retail).await
        }
        Err(e) if e.nothing_bought() => {
            purchase::record_refusal(ctx, lease, &attempt, &e, latency).await?;
            let code = if e.reject_kind() == Some(crate::vendors::RejectKind::SoldOut) {
                "sold_out"
            } else {
                "vendor_rejected"
            };
            refused(ctx, lease, code).await
        }
        Err(e) => {
            purchase::record_unknown(ctx, order, lease, &attempt, &e, Some(latency)).await?;
            Ok(Step::Provisioning)
        }
    }
}

/// The eSIM's vendor refused the top-up: it fails (a top-up never routes elsewhere). The
/// vendor's own words stay in the attempt (admins); storefronts get ours.
pub(super) async fn refused(ctx: &Ctx, lease: &Lease, code: &str) -> Result<Step, PurchaseError> {
    purchase::fail(ctx, lease, code, "the eSIM's vendor refused the top-up").await
}

/// The eSIM a top-up order adds to, as its vendor knows it.
pub async fn target(ctx: &Ctx, order: &OrderRow) -> sqlx::Result<EsimRef> {
    let iccid = order.target_iccid.clone().unwrap_or_default();
    let esim = store::esims::get(&ctx.pool, &iccid).await?;
    Ok(EsimRef {
        iccid,
        vendor_esim_ref: esim.as_ref().and_then(|e| e.vendor_esim_ref.clone()),
        vendor_reference: esim.and_then(|e| e.vendor_reference),
    })
}

/// Sends a top-up attempt whose outcome is unknown to its (idempotent) vendor again.
pub(super) async fn resend(
    ctx: &Ctx,
    order: &OrderRow,
    attempt: &AttemptRow,
    adapter: &dyn Vendor,
) -> Result<Result<OrderState, VendorError>, PurchaseError> {
    debug_assert_eq!(order.kind, OrderKind::Topup);
    Ok(adapter
        .topup(&TopUp {
            order_id: order.id.clone(),
            esim: target(ctx, order).await?,
            sku: attempt.sku.clone().unwrap_or_default(),
            placed_at: attempt.started_at,
        })
        .await)
}
