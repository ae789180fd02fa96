//! Finishes unfinished orders: polls asynchronous vendors until profiles arrive, reconciles
//! unknown outcomes, and resumes orders a crashed replica left behind.

use std::time::Duration;

use tokio::task::JoinHandle;

use crate::{
    ordering::{Ctx, LEASE_SECS, provision::provision, purchase::Step},
    store,
};

/// Processes the orders that are due now; returns how many were looked at.
pub async fn tick(ctx: &Ctx) -> sqlx::Result<usize> {
    crate::callbacks::retry_waiting(ctx).await?;
    let due = store::orders::claim_due(&ctx.pool, 16, LEASE_SECS).await?;
    for order in &due {
        let step = provision(ctx, order).await;
        match step {
            Ok(Step::Provisioning) => {
                let delay = ctx.backoff(order.checks);
                store::orders::release(&ctx.pool, &order.id, delay.as_millis() as i64).await?;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!(order_id = %order.id, error = %e, "provisioning failed; will retry");
                let delay = ctx.backoff(order.checks);
                store::orders::release(&ctx.pool, &order.id, delay.as_millis() as i64).await?;
            }
        }
    }
    Ok(due.len())
}

/// Starts the loop; abort the handle on shutdown (a lease left behind simply expires).
pub fn spawn(ctx: Ctx) -> JoinHandle<()> {
    let idle = ctx.retry_base.min(Duration::from_secs(1));
    tokio::spawn(async move {
        loop {
            match tick(&ctx).await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "provisioner cannot reach the database"),
            }
            tokio::time::sleep(idle).await;
        }
    })
}
