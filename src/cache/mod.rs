//! What one replica keeps in memory so storefront reads and the ranking of an order need no
//! database round trip: the catalogue [`Snapshot`], the storefront API keys and the offers
//! behind each plan key ([`routing::RoutingCache`]). Each is rebuilt from Postgres when its
//! row in `cache_versions` moves. Every replica learns of a move twice over: a
//! `NOTIFY esim_cache` sent by the changing transaction (milliseconds) and a poll of the
//! version rows every [`POLL_INTERVAL`] in case a notification is lost (a dropped listener
//! connection). The replica that made a change refreshes before it answers: a sync refreshes
//! every cache on its pool before returning (see [`PlansListener`]), a key revocation
//! calls [`ReplicaCache::keys_changed`].
//!
//! Key use (`last_used_at`) is recorded off the request path: marked in memory, written in
//! one statement per [`USAGE_FLUSH_INTERVAL`].

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, RwLock, Weak,
        atomic::{AtomicI64, AtomicU64, Ordering},
    },
    time::Duration,
};

use chrono::{DateTime, Utc};
use sqlx::{PgPool, postgres::PgListener};

pub mod fresh;
pub mod routing;

use crate::{
    catalog::{
        snapshot::Snapshot,
        sync::{self, PlansListener},
    },
    store,
};

/// The fallback: how often each replica reads `cache_versions` even without a notification.
pub const POLL_INTERVAL: Duration = Duration::from_millis(400);
/// How often marked key uses are written to `storefront_api_keys.last_used_at`.
pub const USAGE_FLUSH_INTERVAL: Duration = Duration::from_secs(2);
/// A key's use is recorded at most once per this many seconds (as before: coarse on purpose).
const USAGE_RESOLUTION_SECS: i64 = 60;
/// Bound on cached key look-ups (including unknown keys); past it the cache starts over.
const MAX_CACHED_KEYS: usize = 100_000;
pub const CHANNEL: &str = "esim_cache";

/// A storefront API key as the auth extractor needs it.
#[derive(Debug)]
pub struct CachedKey {
    pub key_id: String,
    pub storefront_id: String,
    pub key_hash: Vec<u8>,
    pub revoked: bool,
    pub livemode: bool,
    /// Unix seconds of the last use handed to the usage log.
    last_marked: AtomicI64,
}

#[derive(Default)]
struct Keys {
    /// By lookup prefix; `None` caches "no such key".
    entries: HashMap<String, Option<Arc<CachedKey>>>,
    /// `cache_versions.version` of `api_keys` the entries are valid at.
    version: i64,
}

pub struct ReplicaCache {
    pool: PgPool,
    /// The test-mode catalogue (index 0) and the live one (index 1).
    plans: RwLock<[Arc<Snapshot>; 2]>,
    keys: RwLock<Keys>,
    /// Bumped whenever the key entries are dropped; a look-up that started before a drop
    /// does not store its (possibly older) answer.
    key_generation: AtomicU64,
    usage: Arc<Mutex<HashMap<String, DateTime<Utc>>>>,
    /// Set once the watcher runs and the first snapshot is loaded.
    started: tokio::sync::OnceCell<()>,
    /// One refresh at a time (watcher, local sync, first load).
    refresh: tokio::sync::Mutex<()>,
    /// What routing reads for every order (offers, breakers, balances, sync records,
    /// recent attempts).
    pub routing: routing::RoutingCache,
    /// Balance reads already planned on this replica after an order.
    pub balance_nudges: PendingNudges,
}

/// The (mode, vendor) pairs whose balance read after an order is already planned on this
/// replica: one planned read per vendor at a time, however many orders it takes meanwhile,
/// so the order rate does not become a rate of statements on the vendor's balance row.
#[derive(Default)]
pub struct PendingNudges(Mutex<std::collections::HashSet<(bool, crate::domain::vendor::VendorId)>>);

impl PendingNudges {
    /// `true` when the caller is the one to plan the read (none was pending).
    pub fn plan(&self, livemode: bool, vendor: crate::domain::vendor::VendorId) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((livemode, vendor))
    }

    /// The planned read has started: the next order plans another.
    pub fn started(&self, livemode: bool, vendor: crate::domain::vendor::VendorId) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(livemode, vendor));
    }
}

impl std::fmt::Debug for ReplicaCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicaCache")
            .field("plans", &self.read_plans(false).version)
            .finish_non_exhaustive()
    }
}

/// A sync on this replica refreshes this cache before it returns (so its caller's next
/// read sees the new plans); other replicas hear through Postgres.
#[async_trait::async_trait]
impl PlansListener for ReplicaCache {
    async fn sync_recorded(&self) {
        self.routing.sync_states.forget();
    }

    async fn plans_committed(&self) {
        self.routing.sync_states.forget();
        if self.started.initialized() {
            if let Err(e) = self.check().await {
                tracing::warn!(error = %e, "could not refresh the catalogue snapshot after a sync");
            }
        }
    }
}

impl ReplicaCache {
    /// A cache over `pool`. Nothing is loaded and no task runs until the first read.
    pub fn new(pool: PgPool) -> Arc<ReplicaCache> {
        let cache = Arc::new(ReplicaCache {
            plans: RwLock::new([Arc::new(Snapshot::empty()), Arc::new(Snapshot::empty())]),
            keys: RwLock::new(Keys::default()),
            key_generation: AtomicU64::new(0),
            usage: Default::default(),
            started: tokio::sync::OnceCell::new(),
            refresh: tokio::sync::Mutex::new(()),
            routing: routing::RoutingCache::default(),
            balance_nudges: PendingNudges::default(),
            pool: pool.clone(),
        });
        let listener: Arc<dyn PlansListener> = cache.clone();
        sync::listen_for_plans(&pool, Arc::downgrade(&listener));
        cache
    }

    /// Starts listening, loads the snapshot and spawns the watcher; once per cache.
    async fn ensure_started(self: &Arc<Self>) -> sqlx::Result<()> {
        self.started
            .get_or_try_init(|| async {
                // Listen before the first load so no change between the two goes unheard.
                let mut listener = PgListener::connect_with(&self.pool).await?;
                listener.listen(CHANNEL).await?;
                self.check().await?;
                tokio::spawn(watch(Arc::downgrade(self), listener, self.usage.clone()));
                Ok(())
            })
            .await
            .map(|_| ())
    }

    /// The current catalogue of one mode (loading both on the first call).
    pub async fn snapshot(self: &Arc<Self>, livemode: bool) -> sqlx::Result<Arc<Snapshot>> {
        self.ensure_started().await?;
        Ok(self.read_plans(livemode))
    }

    /// The sellable offers of every vendor of one mode that satisfy `key`, from memory when
    /// read since the offers last changed.
    pub async fn candidates(
        self: &Arc<Self>,
        livemode: bool,
        key: &crate::domain::plan::PlanKey,
    ) -> sqlx::Result<routing::KeyOffers> {
        self.ensure_started().await?;
        if let Some(hit) = self.routing.offers(livemode, key) {
            return Ok(hit);
        }
        let generation = self.routing.offers_generation();
        let read = store::offers::candidates(
            &self.pool,
            key,
            livemode,
            &crate::domain::vendor::VendorId::ALL,
        )
        .await?;
        Ok(self.routing.keep_offers(generation, livemode, key, read))
    }

    fn read_plans(&self, livemode: bool) -> Arc<Snapshot> {
        self.plans.read().unwrap_or_else(|e| e.into_inner())[usize::from(livemode)].clone()
    }

    /// The key with this lookup prefix, from memory when known.
    pub async fn key(self: &Arc<Self>, lookup: &str) -> sqlx::Result<Option<Arc<CachedKey>>> {
        self.ensure_started().await?;
        if let Some(hit) = self
            .keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .entries
            .get(lookup)
        {
            return Ok(hit.clone());
        }
        let generation = self.key_generation.load(Ordering::Acquire);
        let found = store::storefronts::key_by_lookup(&self.pool, lookup)
            .await?
            .map(|row| {
                Arc::new(CachedKey {
                    key_id: row.id,
                    storefront_id: row.storefront_id,
                    key_hash: row.key_hash,
                    revoked: row.revoked_at.is_some(),
                    livemode: row.livemode,
                    last_marked: AtomicI64::new(0),
                })
            });
        let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
        if self.key_generation.load(Ordering::Acquire) == generation {
            if keys.entries.len() >= MAX_CACHED_KEYS {
                keys.entries.clear();
            }
            keys.entries.insert(lookup.to_string(), found.clone());
        }
        Ok(found)
    }

    /// Records a key's use for the next batched write (at most once a minute per key).
    pub fn mark_used(&self, key: &CachedKey) {
        let now = Utc::now();
        let secs = now.timestamp();
        let last = key.last_marked.load(Ordering::Relaxed);
        if secs - last < USAGE_RESOLUTION_SECS
            || key
                .last_marked
                .compare_exchange(last, secs, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        self.usage
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.key_id.clone(), now);
    }

    /// Call after committing a key change: this replica refuses a revoked key from now on
    /// (the others within [`POLL_INTERVAL`] at worst).
    pub async fn keys_changed(&self) {
        if let Err(e) = self.check().await {
            // The watcher's next poll catches up; until then drop every cached key.
            tracing::warn!(error = %e, "could not read cache versions after a key change");
            self.drop_keys(None);
        }
    }

    fn drop_keys(&self, version: Option<i64>) {
        let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
        self.key_generation.fetch_add(1, Ordering::AcqRel);
        keys.entries.clear();
        if let Some(v) = version {
            keys.version = v;
        }
    }

    /// Reads the version rows; reloads what moved.
    async fn check(&self) -> sqlx::Result<()> {
        let _one = self.refresh.lock().await;
        let versions = store::plans::cache_versions(&self.pool).await?;
        let keys_version = self.keys.read().unwrap_or_else(|e| e.into_inner()).version;
        if versions.api_keys != keys_version {
            self.drop_keys(Some(versions.api_keys));
        }
        if versions.offers != self.routing.offers_version() {
            self.routing.offers_moved(versions.offers);
        }
        let current = self.read_plans(false);
        if versions.plans != current.version || !self.started.initialized() {
            let (version, records) = store::plans::load_active(&self.pool).await?;
            let (live, test): (Vec<_>, Vec<_>) = records.into_iter().partition(|p| p.livemode);
            let snapshots = tokio::task::spawn_blocking(move || {
                [
                    Arc::new(Snapshot::build(version, test)),
                    Arc::new(Snapshot::build(version, live)),
                ]
            })
            .await
            .map_err(|e| sqlx::Error::Protocol(format!("snapshot build failed: {e}")))?;
            for (mode, s) in ["test", "live"].into_iter().zip(&snapshots) {
                metrics::gauge!("catalog_snapshot_plans", "mode" => mode)
                    .set(s.plan_count() as f64);
            }
            tracing::debug!(
                version,
                test_plans = snapshots[0].plan_count(),
                live_plans = snapshots[1].plan_count(),
                "catalogue snapshots loaded"
            );
            *self.plans.write().unwrap_or_else(|e| e.into_inner()) = snapshots;
        }
        Ok(())
    }
}

/// The watcher: wakes on a notification or every [`POLL_INTERVAL`], refreshes, flushes key
/// use; ends when its cache is dropped (writing the last key uses first).
async fn watch(
    cache: Weak<ReplicaCache>,
    listener: PgListener,
    usage: Arc<Mutex<HashMap<String, DateTime<Utc>>>>,
) {
    let Some(pool) = cache.upgrade().map(|c| c.pool.clone()) else {
        return;
    };
    let wake = Arc::new(tokio::sync::Notify::new());
    let listen = tokio::spawn(listen(listener, wake.clone()));
    let mut poll = tokio::time::interval(POLL_INTERVAL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut flush = tokio::time::interval(USAGE_FLUSH_INTERVAL);
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let flushing = tokio::select! {
            () = wake.notified() => false,
            _ = poll.tick() => false,
            _ = flush.tick() => true,
        };
        let Some(c) = cache.upgrade() else { break };
        if flushing {
            flush_usage(&pool, &usage).await;
        } else if let Err(e) = c.check().await {
            tracing::warn!(error = %e, "could not refresh the in-memory catalogue and keys");
        }
    }
    listen.abort();
    flush_usage(&pool, &usage).await;
}

/// Forwards notifications as wake-ups. A lost connection also wakes the watcher: the
/// listener reconnects, but what was sent meanwhile is unknown, so the versions are re-read.
async fn listen(mut listener: PgListener, wake: Arc<tokio::sync::Notify>) {
    loop {
        match listener.try_recv().await {
            Ok(_) => wake.notify_one(),
            Err(e) => {
                tracing::warn!(error = %e, "cache notification listener failed; polling meanwhile");
                wake.notify_one();
                tokio::time::sleep(POLL_INTERVAL).await;
            }
        }
    }
}

async fn flush_usage(pool: &PgPool, usage: &Mutex<HashMap<String, DateTime<Utc>>>) {
    let batch = std::mem::take(&mut *usage.lock().unwrap_or_else(|e| e.into_inner()));
    if batch.is_empty() {
        return;
    }
    let (ids, times): (Vec<String>, Vec<DateTime<Utc>>) = batch.into_iter().unzip();
    if let Err(e) = store::storefronts::record_key_use(pool, &ids, &times).await {
        tracing::warn!(error = %e, keys = ids.len(), "could not record key use");
    }
}
