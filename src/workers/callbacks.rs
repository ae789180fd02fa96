//! Applies stored vendor callbacks that are not in a final state: events whose process died
//! between storing and applying them, events that arrived before their order or eSIM, and
//! events whose application failed. Each is leased while it is applied, so replicas share
//! the work without applying one event twice at once.

use std::time::Duration;

use crate::ordering::Ctx;

/// Events leased per round: applying one is a few queries, well inside the lease.
const BATCH: i64 = 32;

/// One round; returns how many events were tried.
pub async fn tick(ctx: &Ctx) -> Result<usize, crate::callbacks::CallbackError> {
    crate::callbacks::apply_due(ctx, BATCH).await
}

/// The loop, run next to the provisioner (see `workers::provisioner::spawn`).
pub async fn run(ctx: Ctx) {
    let idle = ctx.retry_base.min(Duration::from_secs(1));
    loop {
        match tick(&ctx).await {
            Ok(n) if n > 0 => continue,
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "callback worker cannot reach the database"),
        }
        tokio::time::sleep(idle).await;
    }
}
