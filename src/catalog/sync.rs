//! Catalogue sync: read a vendor's whole catalogue through its adapter, store it, then
//! rebuild the plans. One vendor's failure leaves its stored offers and every other vendor
//! untouched; a vendor is synced by one gateway replica at a time.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, LazyLock, Mutex, Weak,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Instant,
};

use chrono::Utc;
use sqlx::{PgPool, postgres::PgConnectOptions};

use crate::{
    catalog::{
        build::build_plans,
        normalize::{Normalized, normalize},
        pricing::Pricing,
    },
    store::{self, offers::OfferUpsert},
    vendors::{Offer, Vendor, registry::Vendors},
};

/// What one vendor sync did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncOutcome {
    Synced {
        offers: usize,
        unparsed: usize,
        deactivated: u64,
    },
    /// Another replica holds this vendor's sync lock.
    Skipped,
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("vendor: {0}")]
    Vendor(#[from] crate::vendors::VendorError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

/// Syncs one vendor and rebuilds the plans. The lock lives on its own connection, so a
/// crashed replica releases it with its connection.
pub async fn sync_vendor(
    pool: &PgPool,
    vendor: &dyn Vendor,
    vendors: &Vendors,
    pricing: &Pricing,
) -> Result<SyncOutcome, SyncError> {
    let id = vendor.id();
    let livemode = vendors.livemode;
    let mut lock_conn = pool.acquire().await?;
    if !store::offers::try_lock_sync(&mut lock_conn, livemode, id).await? {
        return Ok(SyncOutcome::Skipped);
    }
    let result = sync_locked(pool, vendor, vendors, pricing).await;
    // Unlock errors only mean the connection is gone, which releases the lock anyway.
    let _ = store::offers::unlock_sync(&mut lock_conn, livemode, id).await;
    result
}

async fn sync_locked(
    pool: &PgPool,
    vendor: &dyn Vendor,
    vendors: &Vendors,
    pricing: &Pricing,
) -> Result<SyncOutcome, SyncError> {
    let id = vendor.id();
    let livemode = vendors.livemode;
    let started = Instant::now();
    store::offers::sync_started(pool, livemode, id).await?;
    let offers = match vendor.list_offers().await {
        Ok(offers) => offers,
        Err(e) => {
            let ms = started.elapsed().as_millis() as i64;
            store::offers::sync_failed(pool, livemode, id, &e.to_string(), ms).await?;
            for listener in listeners(pool) {
                listener.sync_recorded().await;
            }
            metrics::counter!("catalog_syncs_total", "vendor" => id.as_str(), "outcome" => "error")
                .increment(1);
            tracing::warn!(vendor = %id, error = %e, "catalogue sync failed; keeping the previous offers");
            return Err(e.into());
        }
    };
    let fetch_ms = started.elapsed().as_millis() as i64;
    let rows = to_rows(&offers);
    let unparsed = rows.iter().filter(|(_, n)| n.unparsed()).count();
    let upserts: Vec<OfferUpsert> = rows.into_iter().map(|(u, _)| u).collect();
    let change =
        store::offers::replace_vendor_catalogue(pool, livemode, id, &upserts, Utc::now()).await?;
    let deactivated = change.deactivated;
    let store_ms = started.elapsed().as_millis() as i64 - fetch_ms;
    // Plans are made from the offers, the pricing and the enabled vendors: when this sync
    // changed no offer and this process's last rebuild succeeded (it had this process's
    // pricing and vendors), they are current. Another replica's change is rebuilt by that
    // replica's sync; a failed rebuild makes the next sync here rebuild.
    let rebuilt = !(change.is_none() && plans_current(pool, livemode));
    if rebuilt {
        rebuild_plans(pool, vendors, pricing).await?;
    }
    let ms = started.elapsed().as_millis() as i64;
    let rebuild_ms = ms - fetch_ms - store_ms;
    store::offers::sync_succeeded(
        pool,
        livemode,
        id,
        upserts.len() as i32,
        unparsed as i32,
        ms,
    )
    .await?;
    metrics::counter!("catalog_syncs_total", "vendor" => id.as_str(), "outcome" => "ok")
        .increment(1);
    if !rebuilt {
        // No rebuild to announce the new sync record (routing reads sync health).
        for listener in listeners(pool) {
            listener.sync_recorded().await;
        }
    }
    metrics::gauge!("catalog_offers", "vendor" => id.as_str()).set(upserts.len() as f64);
    tracing::info!(vendor = %id, offers = upserts.len(), written = change.written, unparsed, deactivated, rebuilt, ms, fetch_ms, store_ms, rebuild_ms, "catalogue synced");
    Ok(SyncOutcome::Synced {
        offers: upserts.len(),
        unparsed,
        deactivated,
    })
}

/// Recomputes every plan from the active offers of the enabled vendors.
///
/// Vendors sync concurrently and each asks for a rebuild once its offers are committed.
/// Rebuilds on one replica are coalesced: a caller whose request was taken before a later
/// rebuild started reading offers is covered by that rebuild and does not run its own (so
/// five vendors finishing together cost one or two rebuilds, not five). Across replicas
/// the advisory lock serializes them.
pub async fn rebuild_plans(
    pool: &PgPool,
    vendors: &Vendors,
    pricing: &Pricing,
) -> Result<usize, sqlx::Error> {
    let gate = rebuild_gate(pool, vendors.livemode);
    let ticket = gate.requested.fetch_add(1, Ordering::AcqRel) + 1;
    let mut done = gate.done.lock().await;
    if done.0 >= ticket {
        return Ok(done.1);
    }
    // Every ticket up to here was taken after its offers committed, and the read below
    // starts after this point: this rebuild covers them all.
    let covers = gate.requested.load(Ordering::Acquire);
    let started = Instant::now();
    let rebuilt = rebuild_now(pool, vendors, pricing).await;
    gate.current.store(rebuilt.is_ok(), Ordering::Release);
    let (count, steps) = rebuilt?;
    let built_ms = started.elapsed().as_millis() as u64;
    // This replica serves the new plans from its next request on (also to the callers this
    // rebuild covers, who wait on `done`); other replicas hear by NOTIFY.
    plans_committed(pool).await;
    tracing::info!(
        plans = count,
        requests = covers - done.0,
        built_ms,
        load_ms = steps.load_ms,
        build_ms = steps.build_ms,
        write_ms = steps.write_ms,
        served_ms = started.elapsed().as_millis() as u64 - built_ms,
        "plans rebuilt"
    );
    *done = (covers, count);
    Ok(count)
}

/// Where a rebuild's time went, for its log line.
struct RebuildSteps {
    load_ms: u64,
    build_ms: u64,
    write_ms: u64,
}

async fn rebuild_now(
    pool: &PgPool,
    vendors: &Vendors,
    pricing: &Pricing,
) -> Result<(usize, RebuildSteps), sqlx::Error> {
    let started = Instant::now();
    let mut tx = crate::store::begin(pool).await?;
    store::plans::lock_rebuild(&mut tx).await?;
    let offers = store::offers::load_sellable(&mut *tx, vendors.livemode, &vendors.ids()).await?;
    let loaded = Instant::now();
    // A second of CPU for a large catalogue: off the runtime's threads, so requests and
    // order work keep running meanwhile.
    let pricing = pricing.clone();
    let plans = tokio::task::spawn_blocking(move || build_plans(&offers, &pricing))
        .await
        .map_err(|e| sqlx::Error::Protocol(format!("plan build failed: {e}")))?;
    let built = Instant::now();
    store::plans::replace_all(&mut tx, vendors.livemode, &plans).await?;
    tx.commit().await?;
    let ms = |from: Instant, to: Instant| to.duration_since(from).as_millis() as u64;
    let steps = RebuildSteps {
        load_ms: ms(started, loaded),
        build_ms: ms(loaded, built),
        write_ms: ms(built, Instant::now()),
    };
    Ok((plans.len(), steps))
}

/// What serves plans from memory and must catch up before a rebuild returns to its caller
/// (this replica's read cache).
#[async_trait::async_trait]
pub trait PlansListener: Send + Sync {
    /// The plans changed and the change is committed.
    async fn plans_committed(&self);
    /// A vendor's sync record changed and no rebuild follows (a failed sync).
    async fn sync_recorded(&self) {}
}

/// Listeners with the identity of their pool.
type Listeners = Vec<(usize, Weak<dyn PlansListener>)>;

static LISTENERS: LazyLock<Mutex<Listeners>> = LazyLock::new(Default::default);

/// `listener` hears of every rebuild on `pool` (or a clone of it) while it lives.
pub fn listen_for_plans(pool: &PgPool, listener: Weak<dyn PlansListener>) {
    let mut all = LISTENERS.lock().unwrap_or_else(|e| e.into_inner());
    all.retain(|(_, w)| w.strong_count() > 0);
    all.push((store::pool_identity(pool), listener));
}

/// The listeners of this pool.
fn listeners(pool: &PgPool) -> Vec<Arc<dyn PlansListener>> {
    let id = store::pool_identity(pool);
    let mut all = LISTENERS.lock().unwrap_or_else(|e| e.into_inner());
    all.retain(|(_, w)| w.strong_count() > 0);
    all.iter()
        .filter(|(p, _)| *p == id)
        .filter_map(|(_, w)| w.upgrade())
        .collect()
}

/// Tells this pool's listeners that a rebuild committed, and waits for them.
async fn plans_committed(pool: &PgPool) {
    for listener in listeners(pool) {
        listener.plans_committed().await;
    }
}

/// Per pool (per replica): rebuild tickets handed out, and the last ticket a finished
/// rebuild covered with its plan count.
#[derive(Default)]
struct RebuildGate {
    requested: AtomicU64,
    done: tokio::sync::Mutex<(u64, usize)>,
    /// The last rebuild through this gate succeeded (none yet: false).
    current: AtomicBool,
}

/// Whether this process's last rebuild of `livemode`'s plans succeeded.
fn plans_current(pool: &PgPool, livemode: bool) -> bool {
    rebuild_gate(pool, livemode).current.load(Ordering::Acquire)
}

fn rebuild_gate(pool: &PgPool, livemode: bool) -> Arc<RebuildGate> {
    // One gate per pool and mode (a test-mode rebuild never covers a live one), kept while
    // the pool lives: it remembers whether the last rebuild succeeded. The weak reference
    // to the pool's options tells when the pool is gone, and keeps its identity (an
    // address) from being reused by another pool meanwhile.
    type Gates = HashMap<(usize, bool), (Weak<PgConnectOptions>, Arc<RebuildGate>)>;
    static GATES: LazyLock<Mutex<Gates>> = LazyLock::new(Default::default);
    let id = (store::pool_identity(pool), livemode);
    let mut gates = GATES.lock().unwrap_or_else(|e| e.into_inner());
    gates.retain(|_, (options, _)| options.strong_count() > 0);
    gates
        .entry(id)
        .or_insert_with(|| {
            (
                Arc::downgrade(&pool.connect_options()),
                Arc::new(RebuildGate::default()),
            )
        })
        .1
        .clone()
}

/// Normalizes and converts offers to rows; a SKU listed twice keeps its first listing.
fn to_rows(offers: &[Offer]) -> Vec<(OfferUpsert, Normalized)> {
    let mut seen = HashSet::new();
    offers
        .iter()
        .filter(|o| seen.insert(o.sku.clone()))
        .map(|o| {
            let n = normalize(o);
            let flags = n.problems.iter().map(|p| p.as_str().to_string()).collect();
            let row = OfferUpsert {
                sku: o.sku.clone(),
                name: o.name.clone(),
                countries: n.countries.clone(),
                region_label: o.region_label.clone(),
                data_kind: o.data.map(|d| store::offers::kind_str(d.kind)),
                data_bytes: o.data.and_then(|d| d.bytes).map(|b| b as i64),
                marketed_bytes: o.data.and_then(|d| d.marketed_bytes).map(|b| b as i64),
                validity_days: (o.validity_days > 0).then_some(o.validity_days as i32),
                cost_amount: o.cost.amount.max(rust_decimal::Decimal::ZERO).to_string(),
                cost_currency: o.cost.currency.to_string(),
                networks: serde_json::to_value(&o.networks).unwrap_or_default(),
                supports_topup: o.supports_topup,
                is_topup: o.is_topup,
                plan_id: n.key.as_ref().map(|k| k.id()),
                flags,
                raw: o.raw.clone(),
                active: o.active,
            };
            (row, n)
        })
        .collect()
}
