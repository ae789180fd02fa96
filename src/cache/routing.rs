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
        Arc, RwLock,
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
/// Bound on cached plan keys per mode; past it the map starts over. An entry is a vector
/// of shared offers (8 bytes each), so even keys with a thousand offers stay within
/// about 200 MB at the bound.
const MAX_CACHED_KEYS: usize = 25_000;

/// Rows split by mode when read (test mode at index 0, live at 1), so that an order borrows
/// its mode's rows instead of filtering and copying them.
pub type ByMode<T> = [Vec<T>; 2];

/// Splits `rows` by the mode `livemode_of` tells.
pub fn by_mode<T>(rows: Vec<T>, livemode_of: impl Fn(&T) -> bool) -> ByMode<T> {
    let (live, test): (Vec<T>, Vec<T>) = rows.into_iter().partition(|r| livemode_of(r));
    [test, live]
}

/// The stored breakers and the database's clock when they were read.
#[derive(Debug, Clone)]
pub struct BreakerRead {
    pub rows: Vec<BreakerRow>,
    pub db_now: DateTime<Utc>,
}

pub struct RoutingCache {
    pub attempts: Fresh<ByMode<AttemptWindow>>,
    pub sync_states: Fresh<ByMode<SyncState>>,
    pub breakers: Fresh<BreakerRead>,
    /// Test mode (index 0) and live mode (index 1).
    balances: [Fresh<Vec<BalanceRow>>; 2],
    offers: RwLock<Offers>,
    /// Moved whenever the offer entries are dropped; a read that began before a drop does
    /// not store its (possibly older) answer.
    offers_generation: AtomicU64,
}

/// The offers of one plan key; each offer is held once however many keys it fills.
pub type KeyOffers = Arc<Vec<Arc<OfferDetail>>>;

#[derive(Default)]
struct Offers {
    /// `cache_versions.version` of `offers` the entries are valid at.
    version: i64,
    /// Per mode, the sellable offers of every vendor that satisfy a plan key.
    by_key: [HashMap<PlanKey, KeyOffers>; 2],
    /// Per mode, every offer held by some entry, by id: a regional offer fills hundreds of
    /// plan keys and is stored once.
    by_id: [HashMap<i64, Arc<OfferDetail>>; 2],
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
    pub(super) fn offers(&self, livemode: bool, key: &PlanKey) -> Option<KeyOffers> {
        self.offers.read().unwrap_or_else(|e| e.into_inner()).by_key[usize::from(livemode)]
            .get(key)
            .cloned()
    }

    /// Where a read of offers begins: pass it to [`RoutingCache::keep_offers`].
    pub(super) fn offers_generation(&self) -> u64 {
        self.offers_generation.load(Ordering::Acquire)
    }

    /// The offers read for `key`, kept unless the entries were dropped since the read
    /// began (`generation`).
    pub(super) fn keep_offers(
        &self,
        generation: u64,
        livemode: bool,
        key: &PlanKey,
        read: Vec<OfferDetail>,
    ) -> KeyOffers {
        let mut all = self.offers.write().unwrap_or_else(|e| e.into_inner());
        let mode = usize::from(livemode);
        if all.by_key[mode].len() >= MAX_CACHED_KEYS {
            all.by_key[mode].clear();
            all.by_id[mode].clear();
        }
        let by_id = &mut all.by_id[mode];
        let offers: KeyOffers = Arc::new(
            read.into_iter()
                .map(|o| {
                    by_id
                        .entry(o.routable.offer_id)
                        .or_insert_with(|| Arc::new(o))
                        .clone()
                })
                .collect(),
        );
        if self.offers_generation.load(Ordering::Acquire) == generation {
            all.by_key[mode].insert(key.clone(), offers.clone());
        }
        offers
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
        all.by_id = Default::default();
        all.version = version;
    }
}

impl BreakerRead {
    /// The database's clock now, judged from the read's clock and the time since.
    pub fn now(&self, read_began: std::time::Instant) -> DateTime<Utc> {
        self.db_now + chrono::Duration::from_std(read_began.elapsed()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        domain::{data::DataKind, money::Currency, vendor::VendorId},
        store::offers::RoutableOffer,
    };

    fn detail(id: i64, countries: &[&str]) -> OfferDetail {
        OfferDetail {
            routable: RoutableOffer {
                offer_id: id,
                vendor: VendorId::EsimFx,
                sku: format!("sku{id}"),
                countries: countries.iter().map(|c| c.to_string()).collect(),
                kind: DataKind::Total,
                bytes: Some(1 << 30),
                validity_days: 7,
                cost_amount: "1.00".parse().unwrap(),
                cost_currency: Currency::USD,
            },
            name: format!("offer {id}"),
            region_label: None,
            data_bytes: Some(1 << 30),
            supports_topup: false,
            last_seen_at: Utc::now(),
        }
    }

    fn key(countries: &[&str]) -> PlanKey {
        PlanKey {
            countries: countries.iter().map(|c| c.to_string()).collect(),
            kind: DataKind::Total,
            bytes: Some(1 << 30),
            validity_days: 7,
        }
    }

    #[test]
    fn rows_are_split_by_mode_test_first() {
        let [test, live] = by_mode(vec![(true, 1), (false, 2), (true, 3)], |r| r.0);
        assert_eq!(test, [(false, 2)]);
        assert_eq!(live, [(true, 1), (true, 3)]);
    }

    #[test]
    fn an_offer_filling_several_keys_is_held_once() {
        let cache = RoutingCache::default();
        let g = cache.offers_generation();
        let europe = &["DE", "FR"];
        let de = cache.keep_offers(g, true, &key(&["DE"]), vec![detail(1, europe)]);
        let fr = cache.keep_offers(g, true, &key(&["FR"]), vec![detail(1, europe)]);
        assert!(Arc::ptr_eq(&de[0], &fr[0]));
        assert!(cache.offers(true, &key(&["DE"])).is_some());
        // The other mode is another catalogue.
        assert!(cache.offers(false, &key(&["DE"])).is_none());
    }

    #[test]
    fn a_read_that_began_before_the_offers_moved_is_not_kept() {
        let cache = RoutingCache::default();
        let before = cache.offers_generation();
        cache.offers_moved(7);
        let read = cache.keep_offers(before, false, &key(&["JP"]), vec![detail(2, &["JP"])]);
        assert_eq!(read.len(), 1, "the caller still gets what it read");
        assert!(cache.offers(false, &key(&["JP"])).is_none());
        assert_eq!(cache.offers_version(), 7);
        let now = cache.offers_generation();
        cache.keep_offers(now, false, &key(&["JP"]), vec![detail(2, &["JP"])]);
        assert!(cache.offers(false, &key(&["JP"])).is_some());
    }
}
