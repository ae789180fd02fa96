//! The catalogue as one replica serves it: every active plan held in memory with its JSON
//! already encoded, indexed by id, by each sort order and by country, so a `/v1/plans` page
//! is a few index look-ups and a concatenation of ready bytes: no database, no per-plan
//! serde work. Built from the `plans` table at one `cache_versions` version; replaced whole
//! (never mutated) when the version moves.

use std::{
    collections::HashMap,
    io::Write,
    sync::{Arc, Mutex, OnceLock},
};

use bytes::Bytes;
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};

use crate::{
    catalog::view::{CountryList, CountrySummary, Plan},
    domain::{
        country::Country,
        money::{Currency, Money},
    },
    store::plans::PlanRecord,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PlanSort {
    #[default]
    Price,
    Data,
    Days,
}

impl PlanSort {
    const ALL: [PlanSort; 3] = [PlanSort::Price, PlanSort::Data, PlanSort::Days];

    pub fn name(self) -> &'static str {
        match self {
            PlanSort::Price => "price",
            PlanSort::Data => "data",
            PlanSort::Days => "days",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The value a plan sorts by, typed per sort so a cursor cannot carry a value the column
/// could never hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SortValue {
    Price(Decimal),
    Data(i64),
    Days(i32),
}

/// Keyset position: the sort value and id of the last plan of the previous page.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PlanCursor {
    pub value: SortValue,
    pub id: String,
}

/// A parsed `/v1/plans` query. Equal filters give equal pages, so it also keys the page cache.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PlanFilter {
    /// Plans must cover all of these (alpha-2, sorted, unique).
    pub countries: Vec<String>,
    /// Minimum total data over the validity; unlimited plans always qualify.
    pub min_total_bytes: Option<i64>,
    pub min_days: Option<i32>,
    pub max_days: Option<i32>,
    pub unlimited: Option<bool>,
    pub max_price: Option<Decimal>,
    pub sort: PlanSort,
    pub limit: usize,
    pub after: Option<PlanCursor>,
}

/// A response body ready to send: its bytes, a validator, and its gzip form made on first
/// request (so a body nobody asks compressed is never compressed).
#[derive(Debug)]
pub struct Encoded {
    pub body: Bytes,
    /// Weak (`W/"…"`): the same validator covers the identity and the gzip representation.
    pub etag: String,
    gzip: OnceLock<Bytes>,
}

impl Encoded {
    fn new(body: Vec<u8>, digest: &[u8]) -> Encoded {
        Encoded {
            body: Bytes::from(body),
            etag: format!("W/\"{}\"", hex::encode(&digest[..16])),
            gzip: OnceLock::new(),
        }
    }

    fn hashed(body: Vec<u8>) -> Encoded {
        let digest = Sha256::digest(&body);
        Encoded::new(body, &digest)
    }

    pub fn gzip(&self) -> &Bytes {
        self.gzip.get_or_init(|| {
            let mut enc = flate2::write::GzEncoder::new(
                Vec::with_capacity(self.body.len() / 4),
                flate2::Compression::default(),
            );
            // Writing to a Vec cannot fail.
            let _ = enc.write_all(&self.body);
            Bytes::from(enc.finish().unwrap_or_default())
        })
    }
}

struct Entry {
    id: String,
    countries: Vec<String>,
    unlimited: bool,
    data_sort_bytes: i64,
    validity_days: i32,
    price: Decimal,
    /// The plan's JSON; also `GET /v1/plans/{id}`'s body.
    plan: Encoded,
    digest: [u8; 32],
    /// The stored row, for orders: they price and route from the snapshot the storefront
    /// reads, with no statement of their own.
    record: Arc<PlanRecord>,
}

impl Entry {
    fn sort_value(&self, sort: PlanSort) -> SortValue {
        match sort {
            PlanSort::Price => SortValue::Price(self.price),
            PlanSort::Data => SortValue::Data(self.data_sort_bytes),
            PlanSort::Days => SortValue::Days(self.validity_days),
        }
    }

    fn matches(&self, f: &PlanFilter) -> bool {
        f.countries
            .iter()
            .all(|c| self.countries.binary_search(c).is_ok())
            && f.min_total_bytes.is_none_or(|m| self.data_sort_bytes >= m)
            && f.min_days.is_none_or(|m| self.validity_days >= m)
            && f.max_days.is_none_or(|m| self.validity_days <= m)
            && f.unlimited.is_none_or(|u| self.unlimited == u)
            && f.max_price.is_none_or(|m| self.price <= m)
    }
}

/// Upper bound on the bytes of cached pages per snapshot; past it the cache starts over.
const PAGE_CACHE_BYTES: usize = 64 * 1024 * 1024;

pub struct Snapshot {
    /// `cache_versions.version` of `plans` this was built at (0 before any plan existed).
    pub version: i64,
    entries: Vec<Entry>,
    by_id: HashMap<String, u32>,
    /// Entry indexes in each sort's order (value, then id).
    order: [Vec<u32>; 3],
    /// Per country, the entries covering it, in each sort's order.
    by_country: HashMap<String, [Vec<u32>; 3]>,
    countries: Encoded,
    pages: Mutex<PageCache>,
}

#[derive(Default)]
struct PageCache {
    pages: HashMap<PlanFilter, Arc<Encoded>>,
    bytes: usize,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("version", &self.version)
            .field("plans", &self.entries.len())
            .finish()
    }
}

impl Snapshot {
    pub fn empty() -> Snapshot {
        Snapshot::build(0, Vec::new())
    }

    /// Indexes and encodes `records` (the active plans).
    pub fn build(version: i64, records: Vec<PlanRecord>) -> Snapshot {
        let countries = encode_countries(&records);
        let entries: Vec<Entry> = records
            .into_iter()
            .map(|r| {
                let mut countries = r.countries.clone();
                countries.sort_unstable();
                countries.dedup();
                let (id, unlimited, data_sort_bytes, validity_days, price) = (
                    r.id.clone(),
                    r.data_kind == "unlimited",
                    r.data_sort_bytes,
                    r.validity_days,
                    r.price_amount,
                );
                // A struct of strings, numbers and vectors always serializes.
                let json = serde_json::to_vec(&Plan::from(r.clone())).unwrap_or_default();
                let digest: [u8; 32] = Sha256::digest(&json).into();
                Entry {
                    plan: Encoded::new(json, &digest),
                    digest,
                    id,
                    countries,
                    unlimited,
                    data_sort_bytes,
                    validity_days,
                    price,
                    record: Arc::new(r),
                }
            })
            .collect();
        let by_id = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.id.clone(), i as u32))
            .collect();
        let order = PlanSort::ALL.map(|sort| {
            let mut idx: Vec<u32> = (0..entries.len() as u32).collect();
            idx.sort_by(|&a, &b| {
                let (a, b) = (&entries[a as usize], &entries[b as usize]);
                (a.sort_value(sort), &a.id).cmp(&(b.sort_value(sort), &b.id))
            });
            idx
        });
        let mut by_country: HashMap<String, [Vec<u32>; 3]> = HashMap::new();
        for sort in PlanSort::ALL {
            for &i in &order[sort.index()] {
                for c in &entries[i as usize].countries {
                    by_country.entry(c.clone()).or_default()[sort.index()].push(i);
                }
            }
        }
        Snapshot {
            version,
            entries,
            by_id,
            order,
            by_country,
            countries,
            pages: Mutex::new(PageCache::default()),
        }
    }

    pub fn plan_count(&self) -> usize {
        self.entries.len()
    }

    /// An active plan as stored.
    pub fn record(&self, id: &str) -> Option<&Arc<PlanRecord>> {
        self.by_id
            .get(id)
            .map(|&i| &self.entries[i as usize].record)
    }

    /// An active plan's JSON.
    pub fn plan(&self, id: &str) -> Option<&Encoded> {
        self.by_id.get(id).map(|&i| &self.entries[i as usize].plan)
    }

    /// `GET /v1/countries`'s body.
    pub fn countries(&self) -> &Encoded {
        &self.countries
    }

    /// The page `f` selects, as a `PlanList` body; `encode_cursor` turns the page's last
    /// plan into `next_cursor` when more plans follow.
    pub fn page(
        &self,
        f: &PlanFilter,
        encode_cursor: impl Fn(PlanSort, SortValue, &str) -> String,
    ) -> Arc<Encoded> {
        let cached = self.lock_pages().pages.get(f).cloned();
        if let Some(page) = cached {
            return page;
        }
        let page = Arc::new(self.render(f, encode_cursor));
        let mut cache = self.lock_pages();
        let size = page.body.len();
        if cache.bytes + size > PAGE_CACHE_BYTES {
            *cache = PageCache::default();
        }
        if cache.pages.insert(f.clone(), page.clone()).is_none() {
            cache.bytes += size;
        }
        page
    }

    fn lock_pages(&self) -> std::sync::MutexGuard<'_, PageCache> {
        // The cache holds only finished pages; a panic elsewhere cannot leave it half-built.
        self.pages.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn render(
        &self,
        f: &PlanFilter,
        encode_cursor: impl Fn(PlanSort, SortValue, &str) -> String,
    ) -> Encoded {
        let s = f.sort.index();
        // Walk the shortest candidate list: the rarest requested country's, else all plans.
        let candidates: &[u32] = if f.countries.is_empty() {
            &self.order[s]
        } else {
            match f
                .countries
                .iter()
                .map(|c| self.by_country.get(c).map(|l| &l[s][..]))
                .collect::<Option<Vec<_>>>()
            {
                Some(lists) => lists.into_iter().min_by_key(|l| l.len()).unwrap_or(&[]),
                None => &[],
            }
        };
        let start = match &f.after {
            Some(after) => candidates.partition_point(|&i| {
                let e = &self.entries[i as usize];
                (e.sort_value(f.sort), e.id.as_str()) <= (after.value, after.id.as_str())
            }),
            None => 0,
        };
        let mut picked: Vec<&Entry> = Vec::with_capacity(f.limit.min(256));
        let mut more = false;
        for &i in &candidates[start..] {
            let e = &self.entries[i as usize];
            if !e.matches(f) {
                continue;
            }
            if picked.len() == f.limit {
                more = true;
                break;
            }
            picked.push(e);
        }
        let next_cursor = match (more, picked.last()) {
            (true, Some(last)) => Some(encode_cursor(f.sort, last.sort_value(f.sort), &last.id)),
            _ => None,
        };
        let len: usize = picked.iter().map(|e| e.plan.body.len() + 1).sum();
        let mut body = Vec::with_capacity(len + 64);
        let mut digest = Sha256::new();
        body.extend_from_slice(b"{\"data\":[");
        for (n, e) in picked.iter().enumerate() {
            if n > 0 {
                body.push(b',');
            }
            body.extend_from_slice(&e.plan.body);
            digest.update(e.digest);
        }
        body.extend_from_slice(b"],\"next_cursor\":");
        match &next_cursor {
            // A cursor is base64url: nothing in it needs escaping, but let serde decide.
            Some(c) => body.extend_from_slice(&serde_json::to_vec(c).unwrap_or_default()),
            None => body.extend_from_slice(b"null"),
        }
        body.push(b'}');
        digest.update(next_cursor.as_deref().unwrap_or("").as_bytes());
        Encoded::new(body, &digest.finalize())
    }
}

/// Every country with at least one plan: its plan count and cheapest price.
fn encode_countries(records: &[PlanRecord]) -> Encoded {
    // One snapshot holds one mode's plans.
    let livemode = records.first().is_some_and(|r| r.livemode);
    struct Acc {
        count: u64,
        from: Decimal,
        currency: String,
    }
    let mut acc: std::collections::BTreeMap<&str, Acc> = Default::default();
    for r in records {
        let mut seen: Vec<&str> = r.countries.iter().map(String::as_str).collect();
        seen.sort_unstable();
        seen.dedup();
        for c in seen {
            let a = acc.entry(c).or_insert_with(|| Acc {
                count: 0,
                from: r.price_amount,
                currency: r.price_currency.clone(),
            });
            a.count += 1;
            a.from = a.from.min(r.price_amount);
            if r.price_currency < a.currency {
                a.currency = r.price_currency.clone();
            }
        }
    }
    let data: Vec<CountrySummary> = acc
        .into_iter()
        .map(|(code, a)| CountrySummary {
            livemode,
            name: Country::from_alpha2(code)
                .map(|c| c.common_name().to_string())
                .unwrap_or_else(|| code.to_string()),
            plan_count: a.count,
            from_price: Money::new(a.from, a.currency.parse().unwrap_or(Currency::USD)),
            code: code.to_string(),
        })
        .collect();
    let body = serde_json::to_vec(&CountryList {
        data,
        next_cursor: None,
    })
    .unwrap_or_default();
    Encoded::hashed(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(
        id: &str,
        countries: &[&str],
        kind: &str,
        sort_bytes: i64,
        days: i32,
        price: &str,
    ) -> PlanRecord {
        PlanRecord {
            livemode: false,
            id: id.into(),
            name: id.into(),
            countries: countries.iter().map(|c| c.to_string()).collect(),
            region: None,
            data_kind: kind.into(),
            data_bytes: (kind != "unlimited").then_some(sort_bytes),
            data_sort_bytes: sort_bytes,
            validity_days: days,
            price_amount: price.parse().unwrap(),
            price_currency: "USD".into(),
            networks: sqlx::types::Json(vec![]),
            supports_topup: false,
            offer_count: 1,
            active: true,
            updated_at: chrono::Utc::now(),
        }
    }

    fn snapshot() -> Snapshot {
        Snapshot::build(
            7,
            vec![
                record("jp-b", &["JP"], "total", 10, 7, "5.00"),
                record("jp-a", &["JP"], "total", 20, 30, "5.00"),
                record("eu", &["DE", "FR", "IT"], "total", 30, 15, "9.00"),
                record("fr", &["FR"], "total", 5, 3, "2.00"),
                record("jp-u", &["JP"], "unlimited", i64::MAX, 10, "12.00"),
            ],
        )
    }

    fn cursor(sort: PlanSort, value: SortValue, id: &str) -> String {
        format!("{}|{value:?}|{id}", sort.name())
    }

    fn ids(s: &Snapshot, f: &PlanFilter) -> (Vec<String>, Option<String>) {
        let page = s.page(f, cursor);
        let v: serde_json::Value = serde_json::from_slice(&page.body).unwrap();
        let ids = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap().to_string())
            .collect();
        (ids, v["next_cursor"].as_str().map(str::to_string))
    }

    fn filter(limit: usize) -> PlanFilter {
        PlanFilter {
            limit,
            ..Default::default()
        }
    }

    #[test]
    fn pages_follow_the_sort_with_ties_by_id_and_say_when_more_follow() {
        let s = snapshot();
        assert_eq!(ids(&s, &filter(10)).0, ["fr", "jp-a", "jp-b", "eu", "jp-u"]);
        let (first, next) = ids(&s, &filter(2));
        assert_eq!(first, ["fr", "jp-a"]);
        assert_eq!(next.as_deref(), Some("price|Price(5.00)|jp-a"));
        let after = PlanFilter {
            after: Some(PlanCursor {
                value: SortValue::Price("5.00".parse().unwrap()),
                id: "jp-a".into(),
            }),
            ..filter(2)
        };
        assert_eq!(ids(&s, &after).0, ["jp-b", "eu"]);
        // Exactly full: no cursor.
        assert_eq!(ids(&s, &filter(5)).1, None);
        let by_days = PlanFilter {
            sort: PlanSort::Days,
            ..filter(10)
        };
        assert_eq!(ids(&s, &by_days).0, ["fr", "jp-b", "jp-u", "eu", "jp-a"]);
    }

    #[test]
    fn filters_combine_and_coverage_needs_every_country() {
        let s = snapshot();
        let f = |f: PlanFilter| ids(&s, &f).0;
        let countries = |c: &[&str]| PlanFilter {
            countries: c.iter().map(|c| c.to_string()).collect(),
            ..filter(10)
        };
        assert_eq!(f(countries(&["FR"])), ["fr", "eu"]);
        assert_eq!(f(countries(&["DE", "FR"])), ["eu"]);
        assert!(f(countries(&["DE", "JP"])).is_empty());
        assert!(f(countries(&["US"])).is_empty());
        assert_eq!(
            f(PlanFilter {
                unlimited: Some(true),
                ..filter(10)
            }),
            ["jp-u"]
        );
        assert_eq!(
            f(PlanFilter {
                min_total_bytes: Some(20),
                max_price: Some("9.00".parse().unwrap()),
                ..filter(10)
            }),
            ["jp-a", "eu"]
        );
        assert_eq!(
            f(PlanFilter {
                min_days: Some(7),
                max_days: Some(10),
                ..countries(&["JP"])
            }),
            ["jp-b", "jp-u"]
        );
    }

    #[test]
    fn plans_and_countries_are_served_as_encoded_and_pages_are_cached() {
        let s = snapshot();
        assert_eq!(s.version, 7);
        let plan: serde_json::Value = serde_json::from_slice(&s.plan("eu").unwrap().body).unwrap();
        assert_eq!(plan["countries"], serde_json::json!(["DE", "FR", "IT"]));
        assert!(s.plan("nope").is_none());
        let countries: serde_json::Value = serde_json::from_slice(&s.countries().body).unwrap();
        let codes: Vec<&str> = countries["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["code"].as_str().unwrap())
            .collect();
        assert_eq!(codes, ["DE", "FR", "IT", "JP"]);
        assert_eq!(countries["data"][1]["plan_count"], 2);
        assert_eq!(countries["data"][1]["from_price"]["amount"], "2.00");
        let a = s.page(&filter(3), cursor);
        let b = s.page(&filter(3), cursor);
        assert!(Arc::ptr_eq(&a, &b), "the second request is a cache hit");
        assert_ne!(a.etag, s.page(&filter(2), cursor).etag);
        // Gzip decodes to the same bytes.
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&a.gzip()[..]), &mut out)
            .unwrap();
        assert_eq!(out, a.body);
    }
}
