//! The first answer to an idempotent request, saved with the order: every later request
//! with the same key gets it back as it was first sent.

use super::{Ctx, error::OrderingResult, view::order_view};
use crate::store::{
    self,
    esims::EsimRow,
    orders::{OrderRow, StoredAnswer},
};

/// The answer a request gets for `order` as it now is, with all its eSIMs.
pub(super) fn of(order: &OrderRow, esims: &[EsimRow]) -> StoredAnswer {
    StoredAnswer::created(serde_json::to_value(order_view(order, esims)).unwrap_or_default())
}

/// Saves the order's current view as its first answer (unless one is saved) and returns
/// the saved one.
pub(super) async fn saved(ctx: &Ctx, order_id: &str) -> OrderingResult<StoredAnswer> {
    let order = store::orders::get(&ctx.pool, order_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("order vanished"))?;
    let esims = store::esims::for_order(&ctx.pool, order_id).await?;
    let body = serde_json::to_value(order_view(&order, &esims)).map_err(anyhow::Error::from)?;
    let answer = StoredAnswer::created(body);
    if store::orders::save_response(&ctx.pool, order_id, &answer).await? {
        return Ok(answer);
    }
    // Someone else answered first: theirs is the answer.
    let first = store::orders::get(&ctx.pool, order_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("order vanished"))?;
    Ok(StoredAnswer {
        status: first
            .response_status
            .and_then(|s| u16::try_from(s).ok())
            .unwrap_or(StoredAnswer::CREATED),
        body: first.response_body.unwrap_or(answer.body),
    })
}
