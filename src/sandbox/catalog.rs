//! The sandbox's seed catalogue: one list of realistic travel products that every simulator
//! renders in its own vendor's format, units and currency. Most products are carried by
//! several vendors at different prices, so routing has real choices to make.

use rust_decimal::Decimal;

use crate::domain::{
    country::Country,
    money::{Currency, FxRates},
    vendor::VendorId,
};

/// How much data a seed product gives, as marketed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedData {
    /// Total allowance in marketed megabytes (1 GB = 1024 here; each vendor renders it in
    /// its own unit, e.g. eSIM Go as 1000 MB per GB).
    TotalMb(u64),
    /// Daily high-speed allowance in marketed megabytes.
    DailyMb(u64),
    Unlimited,
}

impl SeedData {
    pub fn gb(gb: u64) -> Self {
        SeedData::TotalMb(gb * 1024)
    }
}

/// One product as the sandbox world knows it, before a vendor renders it.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedPlan {
    /// Stable key, unique in the catalogue (`jp-10gb-30d`).
    pub key: String,
    /// English title (`Japan 10GB 30 Days`).
    pub title: String,
    /// ISO 3166 alpha-2, sorted.
    pub countries: Vec<&'static str>,
    /// Region label for multi-country products.
    pub region: Option<&'static str>,
    pub data: SeedData,
    pub days: u32,
    /// Reference wholesale price in USD before a vendor's own pricing.
    pub reference_usd: Decimal,
}

/// A seed product as one vendor sells it.
#[derive(Debug, Clone, PartialEq)]
pub struct VendorProduct {
    pub plan: SeedPlan,
    /// This vendor's wholesale price, converted to `currency`, at most 2 decimals.
    pub price: Decimal,
    pub currency: Currency,
    /// This vendor also sells it as a top-up for its own eSIMs.
    pub topup: bool,
}

const EUROPE: &[&str] = &[
    "AT", "BE", "BG", "CH", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GB", "GR", "HR", "HU",
    "IE", "IS", "IT", "LI", "LT", "LU", "LV", "MT", "NL", "NO", "PL", "PT", "RO", "SE", "SI", "SK",
];
const ASIA: &[&str] = &[
    "CN", "HK", "ID", "JP", "KR", "MO", "MY", "PH", "SG", "TH", "TW", "VN",
];
const NORTH_AMERICA: &[&str] = &["CA", "MX", "US"];
const GREATER_CHINA: &[&str] = &["CN", "HK", "MO", "TW"];
const GULF: &[&str] = &["AE", "BH", "KW", "OM", "QA", "SA"];
const GLOBAL: &[&str] = &[
    "AE", "AR", "AT", "AU", "BE", "BR", "CA", "CH", "CL", "CN", "CO", "CZ", "DE", "DK", "EG", "ES",
    "FI", "FR", "GB", "GR", "HK", "ID", "IE", "IL", "IN", "IT", "JP", "KR", "MA", "MX", "MY", "NL",
    "NO", "NZ", "PE", "PH", "PL", "PT", "QA", "SA", "SE", "SG", "TH", "TR", "TW", "US", "VN", "ZA",
];

/// (country, English name, reference USD per GB) for the single-country products.
const COUNTRIES: &[(&str, &str, &str)] = &[
    ("JP", "Japan", "1.10"),
    ("US", "United States", "1.60"),
    ("GB", "United Kingdom", "1.30"),
    ("FR", "France", "1.20"),
    ("DE", "Germany", "1.25"),
    ("IT", "Italy", "1.20"),
    ("ES", "Spain", "1.15"),
    ("TH", "Thailand", "0.90"),
    ("KR", "South Korea", "1.20"),
    ("SG", "Singapore", "1.00"),
    ("AU", "Australia", "1.70"),
    ("CA", "Canada", "2.10"),
    ("MX", "Mexico", "1.90"),
    ("TR", "Turkey", "1.40"),
    ("AE", "United Arab Emirates", "2.40"),
    ("CN", "China", "1.30"),
    ("HK", "Hong Kong", "1.00"),
    ("TW", "Taiwan", "1.05"),
    ("ID", "Indonesia", "1.00"),
    ("VN", "Vietnam", "0.85"),
    ("BR", "Brazil", "2.00"),
    ("IN", "India", "1.10"),
    ("NZ", "New Zealand", "1.80"),
    ("CH", "Switzerland", "2.20"),
    ("PT", "Portugal", "1.10"),
    ("GR", "Greece", "1.30"),
    ("EG", "Egypt", "1.90"),
    ("ZA", "South Africa", "2.30"),
    ("MA", "Morocco", "1.80"),
    ("IS", "Iceland", "2.00"),
];

/// (region label, key prefix, members, reference USD per GB).
const REGIONS: &[(&str, &str, &[&str], &str)] = &[
    ("Europe", "eu32", EUROPE, "1.30"),
    ("Asia", "asia12", ASIA, "1.45"),
    ("North America", "na3", NORTH_AMERICA, "1.95"),
    (
        "China Mainland, Hong Kong, Macao & Taiwan",
        "cn4",
        GREATER_CHINA,
        "1.40",
    ),
    ("Gulf", "gcc6", GULF, "2.60"),
    ("Global", "global48", GLOBAL, "3.40"),
];

/// (data, days) combinations sold per coverage.
const SHAPES: &[(SeedData, u32)] = &[
    (SeedData::TotalMb(1024), 7),
    (SeedData::TotalMb(3 * 1024), 15),
    (SeedData::TotalMb(5 * 1024), 30),
    (SeedData::TotalMb(10 * 1024), 30),
    (SeedData::TotalMb(20 * 1024), 30),
    (SeedData::TotalMb(500), 7),
    (SeedData::DailyMb(1024), 5),
    (SeedData::DailyMb(2048), 7),
    (SeedData::Unlimited, 7),
    (SeedData::Unlimited, 15),
];

fn dec(s: &str) -> Decimal {
    s.parse().expect("seed prices are valid decimals")
}

/// Reference price of a product from its per-GB price: volume discounts for big bundles,
/// a base fee for tiny ones, daily and unlimited priced by days.
fn reference_price(per_gb: Decimal, data: SeedData, days: u32) -> Decimal {
    let days_d = Decimal::from(days);
    let price = match data {
        SeedData::TotalMb(mb) => {
            let gb = Decimal::from(mb) / Decimal::from(1024);
            let discount = if mb >= 10 * 1024 {
                dec("0.75")
            } else if mb >= 5 * 1024 {
                dec("0.85")
            } else {
                Decimal::ONE
            };
            dec("0.60") + per_gb * gb * discount
        }
        SeedData::DailyMb(mb) => {
            per_gb * Decimal::from(mb) / Decimal::from(1024) * days_d * dec("0.55")
        }
        SeedData::Unlimited => per_gb * days_d * dec("1.10"),
    };
    price.round_dp(2)
}

fn shape_key(data: SeedData, days: u32) -> (String, String) {
    match data {
        SeedData::TotalMb(mb) if mb % 1024 == 0 => (
            format!("{}gb-{days}d", mb / 1024),
            format!("{}GB {days} Days", mb / 1024),
        ),
        SeedData::TotalMb(mb) => (format!("{mb}mb-{days}d"), format!("{mb}MB {days} Days")),
        SeedData::DailyMb(mb) if mb % 1024 == 0 => (
            format!("{}gb-daily-{days}d", mb / 1024),
            format!("{}GB/day {days} Days", mb / 1024),
        ),
        SeedData::DailyMb(mb) => (
            format!("{mb}mb-daily-{days}d"),
            format!("{mb}MB/day {days} Days"),
        ),
        SeedData::Unlimited => (
            format!("unlimited-{days}d"),
            format!("Unlimited {days} Days"),
        ),
    }
}

/// The whole seed catalogue, in a stable order.
pub fn seed_plans() -> Vec<SeedPlan> {
    let mut plans = Vec::new();
    for (cc, name, per_gb) in COUNTRIES {
        for (data, days) in SHAPES {
            let (key, title) = shape_key(*data, *days);
            plans.push(SeedPlan {
                key: format!("{}-{key}", cc.to_ascii_lowercase()),
                title: format!("{name} {title}"),
                countries: vec![cc],
                region: None,
                data: *data,
                days: *days,
                reference_usd: reference_price(dec(per_gb), *data, *days),
            });
        }
    }
    for (label, prefix, members, per_gb) in REGIONS {
        let mut countries = members.to_vec();
        countries.sort_unstable();
        for (data, days) in SHAPES
            .iter()
            .filter(|(d, _)| matches!(d, SeedData::TotalMb(_)))
        {
            let (key, title) = shape_key(*data, *days);
            plans.push(SeedPlan {
                key: format!("{prefix}-{key}"),
                title: format!("{label} {title}"),
                countries: countries.clone(),
                region: Some(label),
                data: *data,
                days: *days,
                reference_usd: reference_price(dec(per_gb), *data, *days),
            });
        }
    }
    plans
}

/// FNV-1a: a stable hash, so every run (and every machine) sees the same sandbox world.
fn stable_hash(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain(std::iter::once(0xff)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// Each simulated vendor's currency and general price level (a multiplier on the
/// reference price), from the vendor table; per-product jitter on top makes the cheapest
/// vendor vary by product.
pub fn vendor_pricing(vendor: VendorId) -> (Currency, Decimal) {
    macro_rules! seed_pricing {
        ($($id:ident $module:ident $name:literal $display:literal $adapter:ident $sim:ident $creds:ident ($topups:expr) ($seed_currency:literal $seed_level:literal);)*) => {
            match vendor {
                $(VendorId::$id => ($seed_currency, $seed_level),)*
            }
        };
    }
    let (cur, level) = crate::domain::vendor::vendor_table!(seed_pricing);
    (cur.parse().expect("valid currency"), dec(level))
}

/// The seed products `vendor` carries, priced in its currency. About four in five products
/// are carried by each vendor, so most plans have several offers and a few have one.
pub fn vendor_products(vendor: VendorId) -> Vec<VendorProduct> {
    carried_by(vendor, seed_plans())
}

/// [`vendor_products`], or with `Some(n)` a generated catalogue of about `n` products per
/// vendor spread over every country and the seed regions (scale tests and benchmarks).
pub fn vendor_products_sized(vendor: VendorId, size: Option<usize>) -> Vec<VendorProduct> {
    match size {
        None => vendor_products(vendor),
        // Each vendor carries ~80% of the products, so generate a quarter more.
        Some(n) => carried_by(vendor, generated_plans(n + n / 4)),
    }
}

fn carried_by(vendor: VendorId, plans: Vec<SeedPlan>) -> Vec<VendorProduct> {
    let (currency, level) = vendor_pricing(vendor);
    let fx = FxRates::builtin();
    plans
        .into_iter()
        .filter_map(|plan| {
            let h = stable_hash(&[vendor.as_str(), &plan.key]);
            if h % 100 >= 80 {
                return None;
            }
            // ±12% around the vendor's level, in whole percent steps.
            let jitter = Decimal::from(88 + (h >> 8) % 25) / Decimal::from(100);
            let usd = plan.reference_usd * level * jitter;
            let price = fx
                .convert(usd, Currency::USD, currency)
                .expect("sandbox currencies are in the built-in FX table")
                .round_dp(2);
            let topup = matches!(plan.data, SeedData::TotalMb(_)) && (h >> 16) % 3 != 0;
            Some(VendorProduct {
                plan,
                price,
                currency,
                topup,
            })
        })
        .collect()
}

const GENERATED_SHAPES: [SeedData; 13] = [
    SeedData::TotalMb(500),
    SeedData::TotalMb(1024),
    SeedData::TotalMb(2 * 1024),
    SeedData::TotalMb(3 * 1024),
    SeedData::TotalMb(5 * 1024),
    SeedData::TotalMb(10 * 1024),
    SeedData::TotalMb(15 * 1024),
    SeedData::TotalMb(20 * 1024),
    SeedData::TotalMb(50 * 1024),
    SeedData::DailyMb(512),
    SeedData::DailyMb(1024),
    SeedData::DailyMb(2048),
    SeedData::Unlimited,
];
// Eleven values: coprime with 13 + 1, which keeps the enumeration below one-to-one.
const GENERATED_DAYS: [u32; 11] = [1, 3, 5, 7, 10, 14, 15, 30, 60, 90, 180];

/// `count` distinct products (capped at every coverage × shape × validity combination):
/// coverage varies fastest so every country appears early; validity is interleaved so no
/// single duration dominates.
pub fn generated_plans(count: usize) -> Vec<SeedPlan> {
    let countries: Vec<Country> = Country::all().collect();
    let coverages = countries.len() + REGIONS.len();
    let shapes = GENERATED_SHAPES.len();
    let days_n = GENERATED_DAYS.len();
    let total = coverages * shapes * days_n;
    (0..count.min(total))
        .map(|i| {
            let cov = i % coverages;
            let j = i / coverages;
            let data = GENERATED_SHAPES[j % shapes];
            let days = GENERATED_DAYS[(j / shapes + j) % days_n];
            let (key, title) = shape_key(data, days);
            if let Some(c) = countries.get(cov) {
                let per_gb =
                    Decimal::from(80 + stable_hash(&[c.alpha2()]) % 270) / Decimal::from(100);
                SeedPlan {
                    key: format!("{}-{key}", c.alpha2().to_ascii_lowercase()),
                    title: format!("{} {title}", c.common_name()),
                    countries: vec![c.alpha2()],
                    region: None,
                    data,
                    days,
                    reference_usd: reference_price(per_gb, data, days),
                }
            } else {
                let (label, prefix, members, per_gb) = REGIONS[cov - countries.len()];
                let mut members = members.to_vec();
                members.sort_unstable();
                SeedPlan {
                    key: format!("{prefix}-{key}"),
                    title: format!("{label} {title}"),
                    countries: members,
                    region: Some(label),
                    data,
                    days,
                    reference_usd: reference_price(dec(per_gb), data, days),
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;

    #[test]
    fn seed_keys_are_unique_and_countries_sorted() {
        let plans = seed_plans();
        let keys: HashSet<_> = plans.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys.len(), plans.len());
        for p in &plans {
            assert!(p.countries.windows(2).all(|w| w[0] < w[1]), "{}", p.key);
            assert!(p.reference_usd > Decimal::ZERO);
        }
        assert!(plans.len() > 300);
    }

    #[test]
    fn products_overlap_across_vendors_at_different_prices_and_currencies() {
        let mut carriers: HashMap<String, Vec<(VendorId, Decimal, Currency)>> = HashMap::new();
        for v in VendorId::ALL {
            for p in vendor_products(v) {
                carriers
                    .entry(p.plan.key.clone())
                    .or_default()
                    .push((v, p.price, p.currency));
            }
        }
        let jp = &carriers["jp-10gb-30d"];
        assert!(jp.len() >= 3, "{jp:?}");
        let currencies: HashSet<_> = jp.iter().map(|c| c.2).collect();
        assert!(currencies.len() >= 2);
        let shared = carriers.values().filter(|c| c.len() >= 3).count();
        assert!(
            shared * 2 > carriers.len(),
            "most plans have three or more vendors"
        );
    }

    #[test]
    fn generated_catalogues_are_large_distinct_and_spread() {
        let plans = generated_plans(12_500);
        assert_eq!(plans.len(), 12_500);
        let keys: HashSet<_> = plans.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys.len(), plans.len());
        let countries: HashSet<_> = plans.iter().flat_map(|p| p.countries.clone()).collect();
        assert!(countries.len() >= 190, "{}", countries.len());
        let n = vendor_products_sized(VendorId::EsimAccess, Some(10_000)).len();
        assert!((9_000..=11_000).contains(&n), "{n}");
    }

    #[test]
    fn pricing_is_deterministic() {
        assert_eq!(
            vendor_products(VendorId::EsimGo),
            vendor_products(VendorId::EsimGo)
        );
    }
}
