//! Order intake with idempotency keys, for new eSIMs and top-ups alike: the first request
//! with a key buys, every later request with the same key and body gets the first answer
//! back, a different body is a conflict. The database's unique constraint decides who is
//! first.

use std::{collections::HashSet, time::Duration};

use rust_decimal::Decimal;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{
    Ctx, answer,
    error::{OrderingError, OrderingResult},
    lease::Lease,
    provision, purchase, scenario, topup,
};
use crate::{
    domain::{ids::new_id, money::Money, order::OrderKind, scenario::TestScenario},
    store::{
        self,
        orders::{AttemptRow, NewOrderRow, OrderRow, StoredAnswer},
    },
};

/// A validated request for a new order.
#[derive(Debug, Clone, Serialize)]
pub struct NewOrder {
    pub plan_id: String,
    pub quantity: u32,
    pub reference: Option<String>,
    pub customer_email: Option<String>,
    pub max_price: Option<Money>,
    /// Test mode only: the scenario this order meets at the simulators. Left out of the
    /// idempotency hash when absent, so ordinary requests hash as before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_scenario: Option<TestScenario>,
}

/// How long a duplicate waits at most for the first request with its key to finish before
/// it answers `409 idempotency_key_in_use`: far below any request timeout, so a storefront
/// retrying after a dropped connection hears "retry shortly" instead of timing out. With a
/// short lease the wait is one renewal period (a third of the lease), the time in which
/// the first request proves it is still alive.
const REPLAY_WAIT: Duration = Duration::from_secs(2);

/// `Retry-After` on `idempotency_key_in_use`, in seconds.
pub const REPLAY_RETRY_AFTER_SECS: u32 = 2;

fn request_hash(kind: OrderKind, target: Option<&str>, body: &impl Serialize) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(kind.as_str().as_bytes());
    h.update([0]);
    h.update(target.unwrap_or("").as_bytes());
    h.update([0]);
    h.update(serde_json::to_vec(body).unwrap_or_default());
    h.finalize().to_vec()
}

/// `Some(answer)` when this key was used before with the same request.
async fn replay(
    ctx: &Ctx,
    (storefront_id, livemode): (&str, bool),
    key: &str,
    hash: &[u8],
) -> OrderingResult<Option<StoredAnswer>> {
    let Some(first) =
        store::orders::by_idempotency_key(&ctx.pool, storefront_id, livemode, key).await?
    else {
        return Ok(None);
    };
    if first.request_hash != hash {
        return Err(OrderingError::IdempotencyKeyReused);
    }
    let deadline = tokio::time::Instant::now() + (ctx.lease / 3).min(REPLAY_WAIT);
    let mut order = first;
    loop {
        if let Some(first_answer) = order.stored_answer() {
            return Ok(Some(first_answer));
        }
        // The first request died before answering: whatever is true now is the first answer.
        if store::orders::lease_lapsed(&ctx.pool, &order.id).await? {
            return Ok(Some(answer::saved(ctx, &order.id).await?));
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(OrderingError::IdempotencyKeyInUse);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        order = store::orders::get(&ctx.pool, &order.id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("order vanished"))?;
    }
}

/// The plan as this replica's catalogue has it (the one storefronts read) and its ranked
/// offers: everything an order needs before its claim, from memory once warm.
async fn accept(
    ctx: &Ctx,
    livemode: bool,
    req: &NewOrder,
) -> OrderingResult<(
    std::sync::Arc<store::plans::PlanRecord>,
    Option<purchase::Routed>,
)> {
    let snapshot = ctx.cache.snapshot(livemode).await?;
    let plan = snapshot
        .record(&req.plan_id)
        .filter(|p| p.active)
        .cloned()
        .ok_or(OrderingError::PlanNotFound)?;
    drop(snapshot);
    let price = plan.price_amount * Decimal::from(req.quantity);
    if let Some(max) = &req.max_price {
        if max.currency.as_str() != plan.price_currency.trim() || price > max.amount {
            return Err(OrderingError::PriceChanged(format!(
                "the price is now {price} {} (max_price {} {})",
                plan.price_currency, max.amount, max.currency
            )));
        }
    }
    // Ranked before the claim, so that the order, its idempotency key and the first
    // attempt are one commit before the first vendor call.
    let routed = match purchase::key_of(&plan) {
        Some(key) => {
            let demand = purchase::Demand {
                livemode,
                key: &key,
                quantity: req.quantity,
                price: Money::new(
                    price,
                    plan.price_currency
                        .trim()
                        .parse()
                        .unwrap_or(ctx.pricing.retail_currency),
                ),
            };
            let mut r = purchase::route(ctx, &demand, &HashSet::new()).await?;
            // A test scenario keeps to the simulators that can play it.
            if let (Some(s), false) = (req.test_scenario, livemode) {
                r.offers = scenario::eligible(s, r.offers);
            }
            Some(r)
        }
        None => None,
    };
    Ok((plan, routed))
}

/// Buys a plan from the cheapest vendor of the storefront's mode that has it, once per
/// idempotency key (keys are per mode).
pub async fn place_new(
    ctx: &Ctx,
    (storefront_id, livemode): (&str, bool),
    key: &str,
    req: NewOrder,
) -> OrderingResult<StoredAnswer> {
    let owner = (storefront_id, livemode);
    let hash = request_hash(OrderKind::New, None, &req);
    // The key is not looked up first: a new key, the common case, costs no read. It is
    // looked up when the claim below finds it taken, and when this request cannot be
    // accepted as it stands (its first use may have been, and gets its first answer).
    let (plan, routed) = match accept(ctx, livemode, &req).await {
        Ok(accepted) => accepted,
        Err(e) => {
            return match replay(ctx, owner, key, &hash).await? {
                Some(a) => Ok(a),
                None => Err(e),
            };
        }
    };
    let price = plan.price_amount * Decimal::from(req.quantity);
    let id = new_id("ord");
    let row = NewOrderRow {
        id: &id,
        storefront_id,
        livemode,
        kind: OrderKind::New,
        plan_id: &plan.id,
        quantity: req.quantity as i32,
        price_amount: price,
        price_currency: plan.price_currency.trim(),
        reference: req.reference.as_deref(),
        customer_email: req.customer_email.as_deref(),
        target_iccid: None,
        idempotency_key: key,
        request_hash: &hash,
    };
    let Some((order, first)) = intake(ctx, &row, routed.as_ref()).await? else {
        // A replay calls no vendor: a half-open probe claimed for it goes back at once.
        if let Some(routed) = &routed {
            purchase::release_probes(ctx, livemode, &routed.offers).await;
        }
        return replay(ctx, owner, key, &hash)
            .await?
            .ok_or_else(|| anyhow::anyhow!("idempotency record vanished").into());
    };
    if let (Some(s), false) = (req.test_scenario, livemode) {
        // Before the first vendor call below, and scoped to this order alone.
        let offers = routed.as_ref().map_or(&[][..], |r| r.offers.as_slice());
        scenario::arm(ctx, &order.id, s, offers);
    }
    tracing::info!(order_id = %row.id, storefront_id = %row.storefront_id, kind = %row.kind, plan_id = %row.plan_id, "order accepted");
    // A plan whose key cannot be read fails in `buy`, as it would on a retry.
    let started = routed.as_ref().map(|r| (r, first));
    run_request(ctx, &order, started).await
}

/// Claims the idempotency key for a new order and, in the same commit, records the ranking
/// and the attempt on its first offer (or the ranking alone when it left none); `None`
/// when the key was taken. With a first offer that is one statement.
async fn intake(
    ctx: &Ctx,
    row: &NewOrderRow<'_>,
    routed: Option<&purchase::Routed>,
) -> OrderingResult<Option<(OrderRow, Option<AttemptRow>)>> {
    if let Some(r) = routed
        && let Some(c) = r.offers.first()
    {
        let first = purchase::first_attempt(c, row.quantity);
        let claimed = store::intake::claim_with_attempt(
            &ctx.pool,
            row,
            ctx.lease,
            &first,
            &r.choice.to_json(),
        )
        .await?;
        return Ok(claimed.map(|(order, attempt)| (order, Some(attempt))));
    }
    let mut tx = store::begin(&ctx.pool).await?;
    let Some(order) = store::orders::claim(&mut *tx, row, ctx.lease).await? else {
        return Ok(None);
    };
    if let Some(r) = routed {
        purchase::record_empty_choice(&mut tx, &order.id, r).await?;
    }
    tx.commit().await?;
    Ok(Some((order, None)))
}

#[derive(Serialize)]
struct TopupRequest<'a> {
    plan_id: &'a str,
}

/// Adds a plan to an eSIM of the storefront's, from the vendor that issued it; idempotent
/// like new orders.
pub async fn place_topup(
    ctx: &Ctx,
    (storefront_id, livemode): (&str, bool),
    key: &str,
    iccid: &str,
    plan_id: &str,
) -> OrderingResult<StoredAnswer> {
    let owner = (storefront_id, livemode);
    let hash = request_hash(OrderKind::Topup, Some(iccid), &TopupRequest { plan_id });
    if let Some(a) = replay(ctx, owner, key, &hash).await? {
        return Ok(a);
    }
    let plan = topup::offered(ctx, owner, iccid, plan_id).await?;
    let id = new_id("ord");
    let row = NewOrderRow {
        id: &id,
        storefront_id,
        livemode,
        kind: OrderKind::Topup,
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
    let Some(order) = store::orders::claim(&ctx.pool, &row, ctx.lease).await? else {
        return replay(ctx, owner, key, &hash)
            .await?
            .ok_or_else(|| anyhow::anyhow!("idempotency record vanished").into());
    };
    tracing::info!(order_id = %row.id, storefront_id = %row.storefront_id, kind = %row.kind, plan_id = %row.plan_id, "order accepted");
    run_request(ctx, &order, None).await
}

/// Runs the purchase for a freshly claimed order under its lease (renewed while the
/// vendor answers) and answers with its state; a new order may come with its ranked
/// offers and the attempt on the first of them committed with the order. The outcome's
/// transaction releases the lease and saves the answer: one commit after the vendor call.
/// If the request is dropped mid-purchase the renewals stop, the lease lapses and the
/// provisioner takes over.
async fn run_request(
    ctx: &Ctx,
    order: &OrderRow,
    started: Option<(&purchase::Routed, Option<AttemptRow>)>,
) -> OrderingResult<StoredAnswer> {
    let lease = Lease::hold(&ctx.pool, &order.id, order.lease_version, ctx.lease)
        .settling_with_outcome(ctx.retry_base);
    let step = match started {
        Some((routed, first)) => purchase::try_offers(ctx, order, &lease, routed, first).await,
        None => provision::start(ctx, order, &lease).await,
    };
    match step {
        Ok(_) => match lease.settled() {
            Some(Some(saved)) => return Ok(saved),
            // Released with the outcome; the answer saved before it is the answer.
            Some(None) => {}
            None => lease.release(&ctx.pool, ctx.retry_base).await?,
        },
        // Another worker holds the order now: answer with what is true.
        Err(purchase::PurchaseError::LeaseLost) => {}
        Err(e) => {
            // The order stays pending under its lease; the provisioner takes over once the
            // lease expires, and replays then answer with what it achieved.
            return Err(anyhow::Error::from(e).into());
        }
    }
    answer::saved(ctx, &order.id).await
}
