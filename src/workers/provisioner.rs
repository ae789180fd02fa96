//! Finishes unfinished orders: polls asynchronous vendors until profiles arrive, reconciles
//! unknown outcomes, resumes orders a crashed replica left behind, and flags orders that
//! outlived `ORDER_ATTENTION_AFTER` for an operator.

use std::time::{Duration, Instant};

use tokio::task::{JoinHandle, JoinSet};

use crate::{
    ordering::{Ctx, provision::work_leased},
    store,
};

/// Orders claimed per round. They are worked on concurrently, each under its own renewed
/// lease, so no claimed order waits behind another's vendor timeouts.
const BATCH: i64 = 8;

/// How often overdue orders are looked for (more often when the deadline is shorter).
const ATTENTION_SCAN: Duration = Duration::from_secs(10);

/// Processes the orders that are due now; returns how many were looked at.
pub async fn tick(ctx: &Ctx) -> sqlx::Result<usize> {
    let due = store::orders::claim_due(&ctx.pool, BATCH, ctx.lease).await?;
    let n = due.len();
    let mut work = JoinSet::new();
    for order in due {
        let ctx = ctx.clone();
        work.spawn(async move {
            // Errors are logged inside; the order comes due again.
            let _ = work_leased(&ctx, &order).await;
        });
    }
    while work.join_next().await.is_some() {}
    Ok(n)
}

/// Flags unfinished orders past their deadline (once each, one WARN each) and refreshes
/// the `orders_attention` gauge.
pub async fn flag_overdue(ctx: &Ctx) -> sqlx::Result<usize> {
    let flagged = store::orders::flag_overdue(&ctx.pool, ctx.attention_after).await?;
    for o in &flagged {
        tracing::warn!(
            order_id = %o.id,
            storefront_id = %o.storefront_id,
            vendor = o.vendor.as_deref().unwrap_or("none"),
            reason = o.attention_reason.as_deref().unwrap_or(""),
            "order needs attention: unfinished past ORDER_ATTENTION_AFTER"
        );
    }
    let count = store::orders::attention_count(&ctx.pool).await?;
    metrics::gauge!("orders_attention").set(count as f64);
    Ok(flagged.len())
}

/// Starts the provisioner and the callback worker; abort the handle on shutdown (a lease
/// left behind simply expires).
pub fn spawn(ctx: Ctx) -> JoinHandle<()> {
    let idle = ctx.retry_base.min(Duration::from_secs(1));
    tokio::spawn(async move {
        let callbacks = crate::workers::callbacks::run(ctx.clone());
        let provisioner = async move {
            let scan_every = ATTENTION_SCAN.min(ctx.attention_after);
            let mut last_scan: Option<Instant> = None;
            loop {
                if last_scan.is_none_or(|t| t.elapsed() >= scan_every) {
                    last_scan = Some(Instant::now());
                    if let Err(e) = flag_overdue(&ctx).await {
                        tracing::error!(error = %e, "attention scan failed");
                    }
                }
                match tick(&ctx).await {
                    Ok(n) if n > 0 => continue,
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "provisioner cannot reach the database"),
                }
                tokio::time::sleep(idle).await;
            }
        };
        tokio::join!(callbacks, provisioner);
    })
}
