//! Order intake with idempotency keys: the first request with a key buys, every later
//! request with the same key and body gets the first answer back, a different body is a
//! conflict. The database's unique constraint decides who is first.

use std::{collections::HashSet, time::Duration};

use axum::http::StatusCode;
use rust_decimal::Decimal;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{Ctx, lease::Lease, purchase, view::order_view};
use crate::{
    domain::{ids::new_id, money::Money},
    error::{ApiError, ApiResult},
    store::{
        self,
        orders::{AttemptRow, NewOrderRow, OrderRow},
    },
};

/// A validated `POST /v1/orders` body.
#[derive(Debug, Clone, Serialize)]
pub struct NewOrder {
    pub plan_id: String,
    pub quantity: u32,
    pub reference: Option<String>,
    pub customer_email: Option<String>,
    pub max_price: Option<Money>,
}

/// A stored answer: status and JSON body, replayed verbatim.
pub type Answer = (StatusCode, serde_json::Value);

/// How long a duplicate waits at most for the first request with its key to finish before
/// it answers `409 idempotency_key_in_use`: far below any request timeout, so a storefront
/// retrying after a dropped connection hears "retry shortly" instead of timing out. With a
/// short lease the wait is one renewal period (a third of the lease), the time in which
/// the first request proves it is still alive.
const REPLAY_WAIT: Duration = Duration::from_secs(2);

/// `Retry-After` on `idempotency_key_in_use`, in seconds.
pub const REPLAY_RETRY_AFTER_SECS: u32 = 2;

pub fn request_hash(kind: &str, target: Option<&str>, body: &impl Serialize) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(kind.as_bytes());
    h.update([0]);
    h.update(target.unwrap_or("").as_bytes());
    h.update([0]);
    h.update(serde_json::to_vec(body).unwrap_or_default());
    h.finalize().to_vec()
}

/// `Some(answer)` when this key was used before with the same request.
pub(super) async fn replay(
    ctx: &Ctx,
    storefront_id: &str,
    key: &str,
    hash: &[u8],
) -> ApiResult<Option<Answer>> {
    let Some(first) = store::orders::by_idempotency_key(&ctx.pool, storefront_id, key).await?
    else {
        return Ok(None);
    };
    if first.request_hash != hash {
        return Err(ApiError::conflict(
            "idempotency_key_reused",
            "this Idempotency-Key was already used with a different request",
        ));
    }
    let deadline = tokio::time::Instant::now() + (ctx.lease / 3).min(REPLAY_WAIT);
    let mut order = first;
    loop {
        if let (Some(status), Some(body)) = (order.response_status, &order.response_body) {
            let status = StatusCode::from_u16(status as u16).unwrap_or(StatusCode::CREATED);
            return Ok(Some((status, body.clone())));
        }
        // The first request died before answering: whatever is true now is the first answer.
        let abandoned: bool = sqlx::query_scalar(
            "SELECT lease_until IS NULL OR lease_until < now() FROM orders WHERE id = $1",
        )
        .bind(&order.id)
        .fetch_one(&ctx.pool)
        .await?;
        if abandoned {
            return Ok(Some(answer(ctx, &order.id).await?));
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ApiError::busy(
                "idempotency_key_in_use",
                "the first request with this Idempotency-Key is still being processed; retry shortly",
                REPLAY_RETRY_AFTER_SECS,
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        order = store::orders::get(&ctx.pool, &order.id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("order vanished"))?;
    }
}

/// Saves the order's current view as its first answer in the caller's transaction, unless
/// one is saved already; `Some(body)` when this call saved it.
pub(super) async fn save_answer_in(
    conn: &mut sqlx::PgConnection,
    order_id: &str,
) -> sqlx::Result<Option<serde_json::Value>> {
    let Some(order) = store::orders::get(&mut *conn, order_id).await? else {
        return Ok(None);
    };
    if order.response_status.is_some() {
        return Ok(None);
    }
    let esims = store::esims::for_order(&mut *conn, order_id).await?;
    let body = serde_json::to_value(order_view(&order, &esims)).unwrap_or_default();
    let saved =
        store::orders::save_response(&mut *conn, order_id, StatusCode::CREATED.as_u16(), &body)
            .await?;
    Ok(saved.then_some(body))
}

/// Saves the order's current view as its first answer (unless one is saved) and returns
/// the saved one.
async fn answer(ctx: &Ctx, order_id: &str) -> ApiResult<Answer> {
    let order = store::orders::get(&ctx.pool, order_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("order vanished"))?;
    let esims = store::esims::for_order(&ctx.pool, order_id).await?;
    let body = serde_json::to_value(order_view(&order, &esims)).map_err(anyhow::Error::from)?;
    if store::orders::save_response(&ctx.pool, order_id, StatusCode::CREATED.as_u16(), &body)
        .await?
    {
        return Ok((StatusCode::CREATED, body));
    }
    // Someone else answered first: theirs is the answer.
    let saved = store::orders::get(&ctx.pool, order_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("order vanished"))?;
    Ok((
        StatusCode::from_u16(saved.response_status.unwrap_or(201) as u16)
            .unwrap_or(StatusCode::CREATED),
        saved.response_body.unwrap_or(body),
    ))
}

pub async fn place_new(
    ctx: &Ctx,
    storefront_id: &str,
    key: &str,
    req: NewOrder,
) -> ApiResult<Answer> {
    let hash = request_hash("new", None, &req);
    if let Some(a) = replay(ctx, storefront_id, key, &hash).await? {
        return Ok(a);
    }
    let plan = store::plans::get(&ctx.pool, &req.plan_id)
        .await?
        .filter(|p| p.active)
        .ok_or_else(crate::http::plans::plan_not_found)?;
    let plan_key = purchase::key_of(&plan);
    let price = plan.price_amount * Decimal::from(req.quantity);
    if let Some(max) = &req.max_price {
        if max.currency.as_str() != plan.price_currency.trim() || price > max.amount {
            return Err(ApiError::conflict(
                "price_changed",
                format!(
                    "the price is now {price} {} (max_price {} {})",
                    plan.price_currency, max.amount, max.currency
                ),
            ));
        }
    }
    let id = new_id("ord");
    let row = NewOrderRow {
        id: &id,
        storefront_id,
        kind: "new",
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
    // Ranked before the claim, so that the order, its idempotency key and the first
    // attempt are one commit before the first vendor call.
    let ranked = match &plan_key {
        Some(k) => purchase::ranked_offers(ctx, k, &HashSet::new()).await?,
        None => Vec::new(),
    };
    let mut tx = ctx.pool.begin().await?;
    let Some(order) = store::orders::claim(&mut *tx, &row, ctx.lease).await? else {
        drop(tx);
        return replay(ctx, storefront_id, key, &hash)
            .await?
            .ok_or_else(|| anyhow::anyhow!("idempotency record vanished").into());
    };
    let first = match ranked.first() {
        Some(c) => Some(purchase::start_attempt(&mut tx, &order, c).await?),
        None => None,
    };
    tx.commit().await?;
    tracing::info!(order_id = %row.id, storefront_id = %row.storefront_id, kind = %row.kind, plan_id = %row.plan_id, "order accepted");
    // A plan whose key cannot be read fails in `buy`, as it would on a retry.
    let started = plan_key.is_some().then_some((ranked.as_slice(), first));
    run_request(ctx, &order, started).await
}

/// Claims the idempotency key with a new order row and buys it; when a concurrent request
/// with the same key won the insert, answers with that request's answer instead.
pub(super) async fn claim_then_buy(ctx: &Ctx, row: &NewOrderRow<'_>) -> ApiResult<Answer> {
    let Some(order) = store::orders::claim(&ctx.pool, row, ctx.lease).await? else {
        return replay(
            ctx,
            row.storefront_id,
            row.idempotency_key,
            row.request_hash,
        )
        .await?
        .ok_or_else(|| anyhow::anyhow!("idempotency record vanished").into());
    };
    tracing::info!(order_id = %row.id, storefront_id = %row.storefront_id, kind = %row.kind, plan_id = %row.plan_id, "order accepted");
    finish_request(ctx, &order).await
}

/// Runs the purchase for a freshly claimed order under its lease (renewed while the
/// vendor answers) and answers with its state. If the request is dropped mid-purchase the
/// renewals stop, the lease lapses and the provisioner takes over.
pub async fn finish_request(ctx: &Ctx, order: &OrderRow) -> ApiResult<Answer> {
    run_request(ctx, order, None).await
}

/// [`finish_request`], for a new order also given its ranked offers and the attempt on the
/// first of them committed with the order. The outcome's transaction releases the lease
/// and saves the answer: one commit after the vendor call.
async fn run_request(
    ctx: &Ctx,
    order: &OrderRow,
    started: Option<(&[purchase::Ranked], Option<AttemptRow>)>,
) -> ApiResult<Answer> {
    let lease = Lease::hold(&ctx.pool, &order.id, order.lease_version, ctx.lease)
        .settling_with_outcome(ctx.retry_base);
    let step = match started {
        Some((ranked, first)) => purchase::try_offers(ctx, order, &lease, ranked, first).await,
        None if order.kind == "topup" => super::topup::purchase(ctx, order, &lease).await,
        None => purchase::buy(ctx, order, &lease).await,
    };
    match step {
        Ok(_) => match lease.settled() {
            Some(Some(body)) => return Ok((StatusCode::CREATED, body)),
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
    answer(ctx, &order.id).await
}
