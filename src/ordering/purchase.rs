//! The purchase loop: try ranked offers in order until one vendor takes the order, recording
//! every attempt before and after the vendor call, and stopping at the first unknown outcome.

use std::{collections::HashSet, time::Instant};

use rust_decimal::Decimal;
use sqlx::{PgConnection, Postgres, Transaction};

use super::{
    Ctx,
    breaker::{self, BreakerState, Signal},
    choice::RoutingChoice,
    error::{OrderingError, OrderingResult},
    events::transition_order,
    lease::Lease,
};
use crate::{
    cache::routing::by_mode,
    domain::{attempt::AttemptOutcome, mode, money::Money, order::OrderStatus, plan::PlanKey},
    routing::{self, Candidate, Exclusion, RoutableOffer},
    store::{
        self,
        esims::{EsimRow, NewEsim},
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
    let mut tx = store::begin(&ctx.pool).await?;
    match store::orders::lock_fenced(&mut tx, &lease.order_id, lease.version).await? {
        Some(order) => Ok((tx, order)),
        None => Err(PurchaseError::LeaseLost),
    }
}

/// The end of a step's last write, before its commit: a request's own lease is released
/// in the same transaction and the request's answer saved with it (see
/// [`Lease::settling_with_outcome`]), so the outcome costs one commit. The order is read
/// as the step left it (the caller holds its row locked).
async fn settle(conn: &mut PgConnection, lease: &Lease) -> sqlx::Result<()> {
    if !lease.settles_with_outcome() {
        return Ok(());
    }
    match store::orders::get(&mut *conn, &lease.order_id).await? {
        Some(order) => settle_with(conn, lease, &order, None).await,
        None => lease.settle_answering_in(conn, None).await,
    }
}

/// [`settle`] for a step that knows the order as its last write left it (`order`) and, when
/// it read or stored them all in this transaction, its eSIMs: the answer is made from
/// them and saved with the release, one statement.
async fn settle_with(
    conn: &mut PgConnection,
    lease: &Lease,
    order: &OrderRow,
    esims: Option<&[EsimRow]>,
) -> sqlx::Result<()> {
    if !lease.settles_with_outcome() {
        return Ok(());
    }
    let answer = match order.response_status {
        Some(_) => None,
        None => {
            let esims = store::esims::all_of(&mut *conn, &order.id, esims).await?;
            Some(super::answer::of(order, &esims))
        }
    };
    lease.settle_answering_in(conn, answer).await
}

/// Fails the order (`order.failed`) under the caller's lease.
pub async fn fail(
    ctx: &Ctx,
    lease: &Lease,
    code: &str,
    message: &str,
) -> Result<Step, PurchaseError> {
    let (mut tx, order) = fenced(ctx, lease).await?;
    match transition_order(
        &mut tx,
        &order,
        OrderStatus::Failed,
        Some((code, message)),
        None,
    )
    .await?
    {
        Some(now) => settle_with(&mut tx, lease, &now, None).await?,
        None => settle(&mut tx, lease).await?,
    }
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
    pub cost_in_retail: Decimal,
    /// The half-open probe version this order holds for the offer's vendor, if it does.
    pub probe: Option<i64>,
    pub stats: routing::VendorStats,
}

/// One ranking: the offers to try in turn and why they come in that order.
#[derive(Debug, Clone)]
pub struct Routed {
    pub offers: Vec<Ranked>,
    pub choice: RoutingChoice,
}

/// What an order asks of routing: a plan, how many, at what total price.
#[derive(Debug, Clone, Copy)]
pub struct Demand<'a> {
    /// The order's mode: only that mode's vendors, offers and records count.
    pub livemode: bool,
    pub key: &'a PlanKey,
    pub quantity: u32,
    pub price: Money,
}

/// The offers that can fill `demand`, in the order of trying (`routing::rank`): from
/// vendors with an adapter here, weighed by their attempts over the health window, leaving
/// out offers in `tried` (already refused for this order), offers that would sell below
/// the minimum margin and vendors whose circuit breaker does not admit the order (open; or
/// half-open with the probe claimed by another order: only with `claim_probes` does this
/// order claim it).
pub async fn route(ctx: &Ctx, demand: &Demand<'_>, tried: &HashSet<i64>) -> sqlx::Result<Routed> {
    Ok(route_with_details(ctx, demand, tried, true).await?.1)
}

async fn route_with_details(
    ctx: &Ctx,
    demand: &Demand<'_>,
    tried: &HashSet<i64>,
    claim_probes: bool,
) -> sqlx::Result<(crate::cache::routing::KeyOffers, Routed)> {
    let livemode = demand.livemode;
    // Only the order's own mode's vendors: a test order never reaches a live vendor.
    let vendors_here = ctx.vendors(livemode);
    // From this replica's memory once warm (`cache::routing`): no statement per order.
    let routing_cache = &ctx.cache.routing;
    let cached = ctx.cache.candidates(livemode, demand.key).await?;
    // Borrowed, not cloned: a popular plan key has hundreds of offers.
    let offers: Vec<&OfferDetail> = cached
        .iter()
        .map(|o| &**o)
        .filter(|o| vendors_here.adapter(o.routable.vendor).is_some())
        .collect();
    let mode = usize::from(livemode);
    let states = routing_cache
        .sync_states
        .get(|| async {
            let rows = store::offers::sync_states(&ctx.pool).await?;
            Ok(by_mode(rows, |s| s.livemode))
        })
        .await?;
    let balances = routing_cache
        .balances(livemode)
        .get(|| store::balances::all(&ctx.pool, livemode))
        .await?;
    let window = ctx.routing.health_window;
    let windows = routing_cache
        .attempts
        .get(|| async {
            let rows = store::breakers::attempt_window(&ctx.pool, window).await?;
            Ok(by_mode(rows, |w| w.livemode))
        })
        .await?;
    let stats = |v| super::health::stats_of(&windows[mode], &states[mode], v);
    let max_cost = ctx
        .pricing
        .cost_in_retail(demand.price)
        .map(|p| ctx.pricing.max_cost_for(p));
    let quantity = Decimal::from(demand.quantity);
    let own = |c: &Candidate<'_>| {
        if tried.contains(&c.offer.offer_id) {
            return Err(Exclusion::AlreadyTried);
        }
        if max_cost.is_some_and(|max| c.cost_in_retail * quantity > max) {
            return Err(Exclusion::BelowMinMargin);
        }
        if !super::balances::pays(&balances, c.offer, demand.quantity, &ctx.pricing.fx) {
            return Err(Exclusion::BalanceBelowCost);
        }
        Ok(())
    };
    let (fx, retail, near_tie) = (
        &ctx.pricing.fx,
        ctx.pricing.retail_currency,
        ctx.routing.near_tie_percent,
    );
    let routable = || offers.iter().map(|o| &o.routable);
    // Breakers are asked only about vendors still in the running: asking claims a
    // half-open vendor's probe.
    let vendors = routing::eligible_vendors(demand.key, routable(), fx, retail, own);
    let admitted = super::breaker::admit(ctx, livemode, &vendors, claim_probes).await?;
    let gate = |v| admitted.iter().find(|(x, _, _)| *x == v);
    let ranking = routing::rank(
        demand.key,
        routable(),
        fx,
        retail,
        near_tie,
        |c| {
            own(c)?;
            match gate(c.offer.vendor) {
                Some((_, _, Some(_))) | None => Ok(()),
                Some((_, BreakerState::HalfOpen, None)) => Err(Exclusion::BreakerProbeTaken),
                Some(_) => Err(Exclusion::BreakerOpen),
            }
        },
        stats,
    );
    let choice = RoutingChoice::of(
        &ranking,
        retail,
        near_tie,
        ctx.routing.health_window.as_secs(),
        |v| gate(v).map_or(BreakerState::Closed, |(_, st, _)| *st),
    );
    let ranked = ranking
        .candidates
        .iter()
        .map(|c| Ranked {
            offer: c.offer.clone(),
            cost_in_retail: c.cost_in_retail,
            probe: gate(c.offer.vendor).and_then(|(_, _, a)| *a).flatten(),
            stats: c.stats,
        })
        .collect();
    drop(offers);
    Ok((
        cached,
        Routed {
            offers: ranked,
            choice,
        },
    ))
}

/// One offer behind a plan in the order an order would try it, for operators.
#[derive(Debug, Clone)]
pub struct PlanOffer {
    pub detail: OfferDetail,
    pub cost_in_retail: Decimal,
    pub vendor_healthy: bool,
}

/// The vendor offers behind a stored plan in the order one unit of it would be bought
/// now (same records, breakers and minimum margin as an order; a half-open vendor is shown
/// as an order holding its probe would see it), and the ranking's record.
pub async fn plan_offers(
    ctx: &Ctx,
    livemode: bool,
    plan_id: &str,
) -> OrderingResult<(store::plans::PlanRecord, Vec<PlanOffer>, RoutingChoice)> {
    let plan = store::plans::get(&ctx.pool, livemode, plan_id)
        .await?
        .ok_or(OrderingError::PlanNotFound)?;
    let key = key_of(&plan).ok_or_else(|| anyhow::anyhow!("stored plan has unknown data kind"))?;
    let price = plan_price(&plan, 1)
        .ok_or_else(|| anyhow::anyhow!("stored plan has an unknown currency"))?;
    let demand = Demand {
        livemode,
        key: &key,
        quantity: 1,
        price,
    };
    let (details, routed) = route_with_details(ctx, &demand, &HashSet::new(), false).await?;
    let data = routed
        .offers
        .iter()
        .filter_map(|c| {
            let detail = details
                .iter()
                .find(|o| o.routable.offer_id == c.offer.offer_id)?;
            Some(PlanOffer {
                detail: (**detail).clone(),
                cost_in_retail: c.cost_in_retail,
                vendor_healthy: c.stats.sync_healthy,
            })
        })
        .collect();
    Ok((plan, data, routed.choice))
}

/// The total price of `quantity` of a stored plan.
pub fn plan_price(plan: &store::plans::PlanRecord, quantity: u32) -> Option<Money> {
    Some(Money::new(
        plan.price_amount * Decimal::from(quantity),
        plan.price_currency.trim().parse().ok()?,
    ))
}

/// The attempt on `candidate` for `quantity` units, as recorded before its call.
pub fn first_attempt(candidate: &Ranked, quantity: i32) -> store::intake::FirstAttempt<'_> {
    let offer = &candidate.offer;
    store::intake::FirstAttempt {
        vendor: offer.vendor.as_str(),
        offer_id: offer.offer_id,
        sku: &offer.sku,
        cost: (
            offer.cost_amount * Decimal::from(quantity),
            offer.cost_currency.as_str(),
        ),
    }
}

/// Records that `candidate` is about to be called for `order`, in the caller's
/// transaction (which must commit before the call), with the ranking that chose it when
/// it is that ranking's first attempt.
pub async fn start_attempt(
    conn: &mut PgConnection,
    order: &OrderRow,
    candidate: &Ranked,
    choice: Option<&RoutingChoice>,
) -> sqlx::Result<AttemptRow> {
    let first = first_attempt(candidate, order.quantity);
    let attempt = store::orders::start_attempt(
        &mut *conn,
        &order.id,
        first.vendor,
        first.offer_id,
        first.sku,
        first.cost,
    )
    .await?;
    if let Some(choice) = choice {
        store::routings::record(&mut *conn, &order.id, Some(attempt.id), &choice.to_json()).await?;
    }
    Ok(attempt)
}

/// Records a ranking that left no candidate, in the caller's transaction.
pub async fn record_empty_choice(
    conn: &mut PgConnection,
    order_id: &str,
    routed: &Routed,
) -> sqlx::Result<()> {
    if routed.offers.is_empty() {
        store::routings::record(conn, order_id, None, &routed.choice.to_json()).await?;
    }
    Ok(())
}

/// The demand behind an order.
fn demand_of<'a>(order: &OrderRow, key: &'a PlanKey) -> Demand<'a> {
    Demand {
        livemode: order.livemode,
        key,
        quantity: order.quantity.max(0) as u32,
        price: Money::new(
            order.price_amount,
            order
                .price_currency
                .trim()
                .parse()
                .unwrap_or(crate::domain::money::Currency::USD),
        ),
    }
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
    let routed = route(ctx, &demand_of(order, &key), &tried).await?;
    if routed.offers.is_empty() {
        let (mut tx, _) = fenced(ctx, lease).await?;
        record_empty_choice(&mut tx, &order.id, &routed).await?;
        tx.commit().await?;
    }
    try_offers(ctx, order, lease, &routed, None).await
}

/// Tries `routed` in turn until a vendor takes the order or gives an unknown outcome.
/// `first`, when given, is the attempt on its first offer already committed with the
/// order itself and the ranking's record (a new order's intake); every other attempt is
/// committed here before its call, the first of them with the ranking's record.
pub async fn try_offers(
    ctx: &Ctx,
    order: &OrderRow,
    lease: &Lease,
    routed: &Routed,
    first: Option<AttemptRow>,
) -> Result<Step, PurchaseError> {
    let choice = first.is_none().then_some(&routed.choice);
    let step = try_in_turn(ctx, order, lease, &routed.offers, first, choice).await;
    release_probes(ctx, order.livemode, &routed.offers).await;
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
    mut choice: Option<&RoutingChoice>,
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
                let attempt = start_attempt(&mut tx, order, candidate, choice.take()).await?;
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
                price_tolerance_percent: ctx.routing.price_tolerance_percent,
                placed_at,
            })
            .await;
        let latency = started.elapsed().as_millis() as i64;
        let retail_cost = candidate.cost_in_retail * Decimal::from(order.quantity);
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
                metrics::counter!("order_attempts_total", "mode" => mode::label(order.livemode), "vendor" => offer.vendor.as_str(), "outcome" => e.class())
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
    if outcome == AttemptOutcome::Unreachable {
        // A failure counts against the vendor's record at once on this replica.
        ctx.cache.routing.attempts.forget();
    }
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
    ctx.cache.routing.attempts.forget();
    metrics::counter!("order_attempts_total", "mode" => mode::label(order.livemode), "vendor" => attempt.vendor.clone(), "outcome" => "unknown")
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
    retail_cost: Option<Decimal>,
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
    let (mut tx, locked) = fenced(ctx, lease).await?;
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
    // What the vendor says it charged, when it says, is the cost; else the synced cost.
    let retail_cost = match state.charged {
        Some(m) => {
            store::routings::set_charged(&mut tx, attempt.id, m.amount, m.currency.as_str())
                .await?;
            ctx.pricing.cost_in_retail(m).or(retail_cost)
        }
        None => retail_cost,
    };
    let margin = retail_cost.map(|c| order.price_amount - c);
    if let Some(m) = margin.filter(|m| m.is_sign_negative() && !m.is_zero()) {
        let reason = format!(
            "negative margin: {} charged more than the order's price ({m} {})",
            attempt.vendor,
            order.price_currency.trim()
        );
        store::orders::flag_attention(&mut tx, &order.id, &reason).await?;
        let currency = order.price_currency.trim();
        let payload = serde_json::json!({
            "order_id": order.id,
            "vendor": attempt.vendor,
            "price": {"amount": order.price_amount.to_string(), "currency": currency},
            "charged": retail_cost.map(|c| serde_json::json!({"amount": c.to_string(), "currency": currency})),
            "margin": {"amount": m.to_string(), "currency": currency},
        });
        let vendor = attempt.vendor.parse().ok();
        super::alerts::raise(
            &mut tx,
            ctx,
            order.livemode,
            super::alerts::NEGATIVE_MARGIN,
            vendor,
            &payload,
        )
        .await?;
    }
    // The attempt's outcome is written with the order's.
    let now = store::orders::mark_placed(
        &mut tx,
        &order.id,
        attempt,
        state.vendor_reference.as_deref(),
        latency,
        retail_cost,
    )
    .await?;
    // eSIMs are stored only once an order is placed (below): a still pending order has
    // none but those this transaction stores.
    let fresh = locked.status == OrderStatus::Pending;
    let applied = apply_state_in(&mut tx, order, &attempt.vendor, &state, now, fresh).await?;
    settle_with(&mut tx, lease, &applied.order, applied.esims.as_deref()).await?;
    tx.commit().await?;
    let step = applied.step;
    metrics::counter!("order_attempts_total", "mode" => mode::label(order.livemode), "vendor" => attempt.vendor.clone(), "outcome" => "placed")
        .increment(1);
    count_outcome(order.livemode, &attempt.vendor, &step);
    if let Some(m) = margin {
        record_margin(order, &attempt.vendor, m);
    }
    if let Ok(vendor) = attempt.vendor.parse() {
        super::balances::nudge(ctx, order.livemode, vendor);
    }
    Ok(step)
}

/// `order_margin_ratio{mode, vendor}` (margin ÷ retail price of each purchase) and, below
/// zero, the negative-margin alert: a WARN and `order_negative_margin_total{mode, vendor}`
/// (the order is flagged for attention in the purchase's transaction). Per mode: test
/// margins never mix with live ones.
fn record_margin(order: &OrderRow, vendor: &str, margin: Decimal) {
    use rust_decimal::prelude::ToPrimitive;
    let vendor = vendor
        .parse::<crate::vendors::VendorId>()
        .map_or("unknown", |v| v.as_str());
    if order.price_amount > Decimal::ZERO {
        if let Some(ratio) = (margin / order.price_amount).to_f64() {
            metrics::histogram!("order_margin_ratio", "mode" => mode::label(order.livemode), "vendor" => vendor).record(ratio);
        }
    }
    if margin.is_sign_negative() && !margin.is_zero() {
        tracing::warn!(order_id = %order.id, vendor, margin = %margin, currency = order.price_currency.trim(), "negative margin: the vendor charged more than the order's price");
        metrics::counter!("order_negative_margin_total", "mode" => mode::label(order.livemode), "vendor" => vendor).increment(1);
    }
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
    let step = apply_state_in(&mut tx, order, vendor, &state, None, false)
        .await?
        .step;
    tx.commit().await?;
    count_outcome(order.livemode, vendor, &step);
    Ok(step)
}

/// What [`apply_state_in`] did and left: the step, the order as its last write left it
/// and, when this transaction read or stored them all, the order's eSIMs.
struct Applied {
    step: Step,
    order: OrderRow,
    esims: Option<Vec<EsimRow>>,
}

/// [`apply_state`] inside the caller's fenced transaction; `current` is the order as the
/// caller's last write left it, when it has it (else it is read). `fresh`: the order had
/// no eSIM stored before this transaction, so the ones stored here are all it has.
async fn apply_state_in(
    conn: &mut PgConnection,
    order: &OrderRow,
    vendor: &str,
    state: &OrderState,
    current: Option<OrderRow>,
    fresh: bool,
) -> Result<Applied, PurchaseError> {
    let mut stored_here = Vec::new();
    let mut all_new = true;
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
            match new {
                Some(row) => stored_here.push(row),
                None => {
                    all_new = false;
                    // Known already: its status, as the vendor reports it now, goes
                    // through the one eSIM transition like any other fact.
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
    }
    // In `store::esims::for_order`'s order: one transaction's rows share `created_at`.
    let mut esims = (fresh && all_new).then(|| {
        stored_here.sort_by(|a, b| a.iccid.cmp(&b.iccid));
        stored_here
    });
    let now = match current {
        Some(row) => row,
        None => store::orders::get(&mut *conn, &order.id)
            .await?
            .ok_or(PurchaseError::LeaseLost)?,
    };
    let current = now.status;
    if !current.is_unfinished() {
        if current == OrderStatus::Failed && state.status != VendorOrderStatus::Failed {
            // Only possible after an operator failed an order whose outcome was unknown.
            tracing::warn!(order_id = %order.id, vendor, vendor_reference = state.vendor_reference.as_deref().unwrap_or(""), "a failed order has a purchase at its vendor: cancel it there");
        }
        let step = match current {
            OrderStatus::Failed => Step::Failed,
            _ => Step::Completed,
        };
        return Ok(Applied {
            step,
            order: now,
            esims,
        });
    }
    let (step, moved) = match state.status {
        VendorOrderStatus::Failed | VendorOrderStatus::Cancelled => {
            // The vendor gave the order up before delivering: nothing was bought there.
            let moved = transition_order(
                &mut *conn,
                &now,
                OrderStatus::Failed,
                Some(("vendor_failed", order.kind.vendor_failed_message())),
                esims.as_deref(),
            )
            .await?;
            (Step::Failed, moved)
        }
        VendorOrderStatus::Pending => (Step::Provisioning, None),
        VendorOrderStatus::Completed => {
            if order.kind.delivers_esims() {
                let all = match esims.take() {
                    Some(all) => all,
                    None => store::esims::for_order(&mut *conn, &order.id).await?,
                };
                let delivered = all.len() >= order.quantity as usize;
                esims = Some(all);
                if !delivered {
                    return Ok(Applied {
                        step: Step::Provisioning,
                        order: now,
                        esims,
                    });
                }
            }
            let moved = transition_order(
                &mut *conn,
                &now,
                OrderStatus::Completed,
                None,
                esims.as_deref(),
            )
            .await?;
            (Step::Completed, moved)
        }
    };
    Ok(Applied {
        step,
        order: moved.unwrap_or(now),
        esims,
    })
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
            price_tolerance_percent: Decimal::ZERO,
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
