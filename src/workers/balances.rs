//! Reads every enabled vendor's balance every `BALANCE_REFRESH_INTERVAL`. Each replica
//! ticks, but a vendor's read is claimed in Postgres, so the replicas share one read per
//! interval; every tick exports the stored balances as gauges, so each replica's `/metrics`
//! shows what any replica read.

use std::time::Duration;

use tokio::task::JoinHandle;

use crate::{ordering::Ctx, ordering::balances, store};

/// The longest a replica's gauges lag behind a read made by another replica.
const MAX_TICK: Duration = Duration::from_secs(30);

/// Reads the balances that are due (not read by any replica within `interval`), then
/// exports every stored one.
pub async fn tick(ctx: &Ctx, interval: Duration) -> sqlx::Result<()> {
    for livemode in [true, false] {
        for vendor in ctx.vendors(livemode).ids() {
            if store::balances::claim_refresh(&ctx.pool, livemode, vendor.as_str(), interval)
                .await?
            {
                balances::refresh(ctx, livemode, vendor).await?;
            }
        }
        balances::export_stored(ctx, livemode).await?;
    }
    Ok(())
}

/// Starts the loop: a tick now, then one every `min(interval, 30s)`. Dropping the handle
/// does not stop it; abort it on shutdown.
pub fn spawn(ctx: Ctx) -> JoinHandle<()> {
    let interval = ctx.balances.config.refresh_interval;
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval.min(MAX_TICK));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if let Err(e) = tick(&ctx, interval).await {
                tracing::warn!(error = %e, "balance refresh cannot reach the database");
            }
        }
    })
}
