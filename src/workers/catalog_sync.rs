//! Re-reads every enabled vendor's catalogue at start and every `CATALOG_SYNC_INTERVAL`.

use std::{sync::Arc, time::Duration};

use sqlx::PgPool;
use tokio::task::JoinHandle;

use crate::{
    catalog::{pricing::Pricing, sync::sync_vendor},
    vendors::registry::Vendors,
};

/// Syncs every vendor once, concurrently; one vendor's failure does not stop the others.
pub async fn sync_all(pool: &PgPool, vendors: &Arc<Vendors>, pricing: &Pricing) {
    let tasks: Vec<_> = vendors
        .iter()
        .map(|(id, entry)| {
            let (pool, vendors, pricing) = (pool.clone(), vendors.clone(), pricing.clone());
            let adapter = entry.adapter.clone();
            tokio::spawn(async move {
                if let Err(e) = sync_vendor(&pool, adapter.as_ref(), &vendors, &pricing).await {
                    tracing::warn!(vendor = %id, error = %e, "catalogue sync failed");
                }
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
}

/// Starts the loop: a sync now, then one per `interval`. Dropping the handle does not stop
/// it; abort it on shutdown.
pub fn spawn(
    pool: PgPool,
    vendors: Arc<Vendors>,
    pricing: Pricing,
    interval: Duration,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            sync_all(&pool, &vendors, &pricing).await;
        }
    })
}
