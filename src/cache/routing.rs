//! What routing reads for every order, kept by each replica so that ranking an order sends
//! no statement to Postgres once warm:
//! - the offers behind each plan key, valid at one `cache_versions` version of `offers`
//!   (every write to `vendor_offers` moves it and notifies, like the plans snapshot);
//! - the circuit breakers, the balances, the sync records and the attempts over the
//!   health window, each reused for up to [`MAX_AGE`] ([`Fresh`]). Whatever changes one of
//!   them on this replica drops its copy, so the next order here sees the change; other
//!   replicas see it within a second. The breaker is only ever trusted from memory while it
//!   is closed: an open or half-open breaker is read again for every order, and claiming a
//!   half-open probe is a locked write, as before.

use std::{
    collections::HashMap,
    sync::{
        RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use chrono::{DateTime, Utc};

use super::fresh::Fresh;
use crate::{
    domain::plan::PlanKey,
    store::{
        balances::BalanceRow,
        breakers::{AttemptWindow, BreakerRow},
        offers::{OfferDetail, SyncState},
    },
};

/// How long a replica reuses a read of the breakers, balances, sync records and attempts.
pub const MAX_AGE: Duration = Duration::from_secs(1);
/// Bound on cached plan keys per mode; past it the map starts over.
const MAX_CACHED_KEYS: usize = 50_000;

/// The stored breakers and the database's clock when they were read.
#[derive(Debug, Clone)]
pub struct BreakerRead {
    pub rows: Vec<BreakerRow>,
    pub db_now: DateTime<Utc>,
}

pub struct RoutingCache {
    pub attempts: Fresh<Vec<AttemptWindow>>,
    pub sync_states: Fresh<Vec<SyncState>>,
    pub breakers: Fresh<BreakerRead>,
    /// Test mode (index 0) and live mode (index 1).
    balances: [Fresh<Vec<BalanceRow>>; 2],
    offers: RwLock<Offers>,
    /// Moved whenever the offer entries are dropped; a read that began before a drop does
    /// not store its (possibly older) answer.
    offers_generation: AtomicU64,
}

#[derive(Default)]
struct Offers {
    /// `cache_versions.version` of `offers` the entries are valid at.
    version: i64,
    /// Per mode, the sellable offers of every vendor that satisfy a plan key.
    by_key: [HashMap<PlanKey, std::sync::Arc<Vec<OfferDetail>>>; 2],
}

impl Default for RoutingCache {
    fn default() -> Self {
        RoutingCache {
            attempts: Fresh::new(MAX_AGE),
            sync_states: Fresh::new(MAX_AGE),
            breakers: Fresh::new(MAX_AGE),
            balances: [Fresh::new(MAX_AGE), Fresh::new(MAX_AGE)],
            offers: RwLock::default(),
            offers_generation: AtomicU64::new(0),
        }
    }
}

impl RoutingCache {
    pub fn balances(&self, livemode: bool) -> &Fresh<Vec<BalanceRow>> {
        &self.balances[usize::from(livemode)]
    }

    /// The cached offers for `key`, if any.
    pub(super) fn offers(
        &self,
        livemode: bool,
        key: &PlanKey,
    ) -> Option<std::sync::Arc<Vec<OfferDetail>>> {
        self.offers.read().unwrap_or_else(|e| e.into_inner()).by_key[usize::from(livemode)]
            .get(key)
            .cloned()
    }

    /// Where a read of offers begins: pass it to [`RoutingCache::keep_offers`].
    pub(super) fn offers_generation(&self) -> u64 {
        self.offers_generation.load(Ordering::Acquire)
    }

    /// Keeps a read of offers unless the entries were dropped since it began.
    pub(super) fn keep_offers(
        &self,
        generation: u64,
        livemode: bool,
        key: &PlanKey,
        offers: std::sync::Arc<Vec<OfferDetail>>,
    ) {
        let mut all = self.offers.write().unwrap_or_else(|e| e.into_inner());
        if self.offers_generation.load(Ordering::Acquire) != generation {
            return;
        }
        let map = &mut all.by_key[usize::from(livemode)];
        if map.len() >= MAX_CACHED_KEYS {
            map.clear();
        }
        map.insert(key.clone(), offers);
    }

    pub(super) fn offers_version(&self) -> i64 {
        self.offers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .version
    }

    /// The offers moved to `version`: every entry goes.
    pub(super) fn offers_moved(&self, version: i64) {
        let mut all = self.offers.write().unwrap_or_else(|e| e.into_inner());
        self.offers_generation.fetch_add(1, Ordering::AcqRel);
        all.by_key = Default::default();
        all.version = version;
    }
}

impl BreakerRead {
    /// The database's clock now, judged from the read's clock and the time since.
    pub fn now(&self, read_began: std::time::Instant) -> DateTime<Utc> {
        self.db_now + chrono::Duration::from_std(read_began.elapsed()).unwrap_or_default()
    }
}
