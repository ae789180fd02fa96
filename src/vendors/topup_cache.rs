//! What each vendor last said about which products it accepts as a top-up of one eSIM,
//! kept for a short time so a storefront listing and then buying does not ask twice.
//!
//! In memory and per replica: a lost entry only costs one more vendor call. Bounded, so a
//! flood of listings for many eSIMs cannot grow it without limit.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use super::VendorId;

/// How long a vendor's answer is reused.
pub const TTL: Duration = Duration::from_secs(60);
/// At most this many eSIMs are remembered.
pub const CAPACITY: usize = 10_000;

/// One eSIM at one vendor → when asked, and the SKUs it accepted.
type Entries = HashMap<(VendorId, String), (Instant, Arc<Vec<String>>)>;

#[derive(Debug)]
pub struct TopupCache {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<Entries>,
}

impl Default for TopupCache {
    fn default() -> Self {
        TopupCache::new(TTL, CAPACITY)
    }
}

impl TopupCache {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        TopupCache {
            ttl,
            capacity: capacity.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The SKUs the vendor accepted for this eSIM, if asked within the TTL.
    pub fn get(&self, vendor: VendorId, iccid: &str) -> Option<Arc<Vec<String>>> {
        let mut map = self.lock();
        let key = (vendor, iccid.to_string());
        match map.get(&key) {
            Some((at, skus)) if at.elapsed() < self.ttl => Some(skus.clone()),
            Some(_) => {
                map.remove(&key);
                None
            }
            None => None,
        }
    }

    pub fn put(&self, vendor: VendorId, iccid: &str, skus: Vec<String>) -> Arc<Vec<String>> {
        let skus = Arc::new(skus);
        let mut map = self.lock();
        if map.len() >= self.capacity {
            let ttl = self.ttl;
            map.retain(|_, (at, _)| at.elapsed() < ttl);
        }
        if map.len() >= self.capacity {
            // Still full of fresh answers: the oldest goes.
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, (at, _))| *at)
                .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert((vendor, iccid.to_string()), (Instant::now(), skus.clone()));
        skus
    }

    /// Drops what is known about one eSIM (after a top-up changed it).
    pub fn forget(&self, vendor: VendorId, iccid: &str) {
        self.lock().remove(&(vendor, iccid.to_string()));
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_expire_and_the_size_is_bounded() {
        let c = TopupCache::new(Duration::from_millis(50), 3);
        c.put(VendorId::EsimGo, "1", vec!["a".into()]);
        assert_eq!(c.get(VendorId::EsimGo, "1").unwrap().as_slice(), ["a"]);
        assert!(c.get(VendorId::EsimFx, "1").is_none());
        for i in 2..10 {
            c.put(VendorId::EsimGo, &i.to_string(), vec![]);
        }
        assert_eq!(c.len(), 3);
        assert!(c.get(VendorId::EsimGo, "9").is_some());
        std::thread::sleep(Duration::from_millis(60));
        assert!(c.get(VendorId::EsimGo, "9").is_none());
        c.put(VendorId::EsimGo, "x", vec![]);
        c.forget(VendorId::EsimGo, "x");
        assert!(c.get(VendorId::EsimGo, "x").is_none());
    }
}
