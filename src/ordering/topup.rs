//! Top-ups: plans added to an existing eSIM. They never route: only the vendor that issued
//! the eSIM can add data to it.

use std::{collections::BTreeMap, time::Instant};

use serde::Serialize;

use super::{
    Ctx,
    lease::Lease,
    place::{Answer, request_hash},
    purchase::{self, PurchaseError, Step},
};
use crate::{
    domain::{country::Country, ids::new_id, money::Money, plan::PlanKey},
    error::{ApiError, ApiResult},
    store::{self, esims::EsimRow, offers::OfferDetail, orders::NewOrderRow},
    vendors::{TopUp, VendorId},
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
    Ok(store::plans::get(&ctx.pool, &esim.plan_id)
        .await?
        .map(|p| p.countries)
        .unwrap_or_default())
}

/// The owning vendor's compatible offers, one per plan id, cheapest offer each.
pub async fn plans_for(ctx: &Ctx, esim: &EsimRow) -> ApiResult<Vec<TopupPlan>> {
    let Ok(vendor) = esim.vendor.parse::<VendorId>() else {
        return Ok(vec![]);
    };
    if ctx.vendors.get(vendor).is_none() {
        return Ok(vec![]);
    }
    let countries = esim_countries(ctx, esim).await?;
    let offers = store::offers::topup_offers(&ctx.pool, vendor, &countries).await?;
    let mut best: BTreeMap<String, TopupPlan> = BTreeMap::new();
    for (plan_id, offer) in offers {
        let cost = Money::new(offer.routable.cost_amount, offer.routable.cost_currency);
        let Some(in_retail) = ctx.pricing.cost_in_retail(cost) else {
            continue;
        };
        let price = ctx.pricing.retail_from_retail_cost(in_retail);
        let key = PlanKey {
            countries: offer.routable.countries.clone(),
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

#[derive(Serialize)]
struct TopupRequest<'a> {
    plan_id: &'a str,
}

/// `POST /v1/esims/{iccid}/topups`: idempotent like orders.
pub async fn place_topup(
    ctx: &Ctx,
    storefront_id: &str,
    key: &str,
    iccid: &str,
    plan_id: &str,
) -> ApiResult<Answer> {
    let hash = request_hash("topup", Some(iccid), &TopupRequest { plan_id });
    if let Some(a) = super::place::replay(ctx, storefront_id, key, &hash).await? {
        return Ok(a);
    }
    let esim = store::esims::get_for(&ctx.pool, storefront_id, iccid)
        .await?
        .ok_or_else(esim_not_found)?;
    // Nothing can be added to a cancelled eSIM: refuse before asking the vendor.
    if esim.status == "cancelled" {
        return Err(ApiError::conflict(
            "esim_cancelled",
            "this eSIM is cancelled; nothing can be added to it",
        ));
    }
    let plans = plans_for(ctx, &esim).await?;
    let plan = plans.iter().find(|p| p.plan_id == plan_id).ok_or_else(|| {
        ApiError::not_found(
            "topup_plan_not_found",
            "this plan cannot be added to this eSIM (see its topup-plans)",
        )
    })?;
    let id = new_id("ord");
    let row = NewOrderRow {
        id: &id,
        storefront_id,
        kind: "topup",
        plan_id,
        quantity: 1,
        price_amount: plan.price.amount,
        price_currency: plan.price.currency.as_str(),
        reference: None,
        customer_email: None,
        target_iccid: Some(iccid),
        idempotency_key: key,
        request_hash: &hash,
    };
    super::place::claim_then_buy(ctx, &row).await
}

pub fn esim_not_found() -> ApiError {
    ApiError::not_found("esim_not_found", "no such eSIM")
}

/// Buys a claimed top-up order from the eSIM's own vendor, under the caller's lease.
pub async fn purchase(
    ctx: &Ctx,
    order: &store::orders::OrderRow,
    lease: &Lease,
) -> Result<Step, PurchaseError> {
    let Some(esim) =
        store::esims::get(&ctx.pool, order.target_iccid.as_deref().unwrap_or("")).await?
    else {
        return purchase::fail(ctx, lease, "esim_not_found", "the eSIM no longer exists").await;
    };
    let plans = plans_for(ctx, &esim).await.unwrap_or_default();
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
    let Some(adapter) = ctx.vendors.adapter(vendor) else {
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
            esim: purchase::topup_target(ctx, order).await?,
            sku: offer.sku.clone(),
            placed_at: order.created_at,
        })
        .await;
    let latency = started.elapsed().as_millis() as i64;
    match result {
        Ok(state) => {
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
            purchase::fail(
                ctx,
                lease,
                code,
                // The vendor's own words stay in the attempt (admins); storefronts get ours.
                "the eSIM's vendor refused the top-up",
            )
            .await
        }
        Err(e) => {
            purchase::record_unknown(ctx, order, lease, &attempt, &e, Some(latency)).await?;
            Ok(Step::Provisioning)
        }
    }
}
