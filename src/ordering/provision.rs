//! The provisioner's work on one order: finish what the request (or a crashed replica)
//! left unfinished. Safe to run any number of times.

use super::{
    Ctx,
    purchase::{self, PurchaseError, Step},
};
use crate::{
    store::{self, orders::OrderRow},
    vendors::VendorId,
};

/// One look at an unfinished order whose lease the caller holds.
pub async fn provision(ctx: &Ctx, order: &OrderRow) -> Result<Step, PurchaseError> {
    let attempts = store::orders::attempts(&ctx.pool, &order.id).await?;
    let Some(last) = attempts.last() else {
        // Crashed before the first vendor call: start buying.
        return purchase::buy(ctx, order).await;
    };
    match last.outcome.as_str() {
        "pending" | "unknown" => Ok(purchase::reconcile(ctx, order, last)
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
                Ok(state) => purchase::apply_state(ctx, order, &last.vendor, state).await,
                Err(e) => {
                    tracing::info!(order_id = %order.id, error = %e, "order not ready at the vendor yet");
                    Ok(Step::Provisioning)
                }
            }
        }
        // The last vendor refused and the loop was cut short: go on with the next one.
        _ if order.kind == "new" => purchase::buy(ctx, order).await,
        _ => {
            super::events::fail_order(
                &ctx.pool,
                &order.id,
                "vendor_rejected",
                "the eSIM's vendor refused the top-up",
            )
            .await?;
            Ok(Step::Failed)
        }
    }
}
