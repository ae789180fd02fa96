//! Checks an adapter's offer against what the catalogue can sell and derives its plan key.
//! Adapters already converted units; this is the one place that decides whether an offer is
//! understood well enough to be sold, and records why not.
//!
//! Gigabytes per vendor (each adapter fills `DataAllowance` from its vendor's own docs):
//! eSIM Access counts bytes (1 GB = 2^30), eSIM Go decimal MB (1 GB = 1000 MB = 10^9 bytes,
//! marketed as 1 GB), eSIMfx GB = 2^30 (its 10 GB example is 10737418240 bytes), MicroEsim
//! MB = 1024 KB, Multiverse as assumed in its adapter. Plans group by the marketed amount.

use crate::{
    domain::{country::Country, plan::PlanKey},
    vendors::{DataKind, Offer, OfferFlag},
};

/// Why an offer cannot be sold. Stored as text in `vendor_offers.flags`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Problem {
    /// Not understood: the data allowance could not be read.
    UnparsedData,
    /// Not understood: a coverage entry is not a country.
    UnknownCountry,
    /// Not understood: no coverage at all.
    NoCoverage,
    /// Not understood: zero or missing validity.
    NoValidity,
    /// Not understood: a negative or zero price.
    BadPrice,
    /// Understood, but must not be sold without identity checks we do not run.
    EkycRequired,
}

impl Problem {
    pub fn as_str(self) -> &'static str {
        match self {
            Problem::UnparsedData => "unparsed_data",
            Problem::UnknownCountry => "unknown_country",
            Problem::NoCoverage => "no_coverage",
            Problem::NoValidity => "no_validity",
            Problem::BadPrice => "bad_price",
            Problem::EkycRequired => "ekyc_required",
        }
    }

    /// True when the offer was not understood (counted as "unparsed" for admins), as
    /// opposed to understood but deliberately not sold.
    fn is_unparsed(self) -> bool {
        !matches!(self, Problem::EkycRequired)
    }
}

/// The result of normalizing one offer.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalized {
    /// ISO alpha-2, sorted, unique (only the recognised entries).
    pub countries: Vec<String>,
    /// `None` when the offer cannot form a plan.
    pub key: Option<PlanKey>,
    pub problems: Vec<Problem>,
}

impl Normalized {
    /// A new-eSIM plan may be built on this offer (given it is also active).
    pub fn sellable(&self) -> bool {
        self.key.is_some() && self.problems.is_empty()
    }

    pub fn unparsed(&self) -> bool {
        self.problems.iter().any(|p| p.is_unparsed())
    }
}

/// Accepts alpha-2, alpha-3 and English names (adapters pass what their vendor gives when it
/// is not alpha-2 already).
fn normalize_countries(raw: &[String]) -> (Vec<String>, bool) {
    let mut all_known = true;
    let mut out: Vec<String> = raw
        .iter()
        .filter_map(|c| {
            let found = Country::lookup(c);
            all_known &= found.is_some();
            found.map(|c| c.alpha2().to_string())
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    (out, all_known)
}

pub fn normalize(offer: &Offer) -> Normalized {
    let mut problems = Vec::new();
    let (countries, all_known) = normalize_countries(&offer.countries);
    if !all_known {
        problems.push(Problem::UnknownCountry);
    }
    if countries.is_empty() {
        problems.push(Problem::NoCoverage);
    }
    if offer.validity_days == 0 {
        problems.push(Problem::NoValidity);
    }
    if offer.cost.amount <= rust_decimal::Decimal::ZERO {
        problems.push(Problem::BadPrice);
    }
    let data = match offer.data {
        Some(d) if d.kind == DataKind::Unlimited => Some((d.kind, None)),
        Some(d) => d
            .marketed_bytes
            .filter(|b| *b > 0)
            .map(|b| (d.kind, Some(b))),
        None => None,
    };
    if data.is_none() {
        problems.push(Problem::UnparsedData);
    }
    if offer.flags.contains(&OfferFlag::EkycRequired) {
        problems.push(Problem::EkycRequired);
    }
    let key = match data {
        Some((kind, bytes)) if !countries.is_empty() && offer.validity_days > 0 => Some(PlanKey {
            countries: countries.clone(),
            kind,
            bytes,
            validity_days: offer.validity_days,
        }),
        _ => None,
    };
    Normalized {
        countries,
        key,
        problems,
    }
}

#[cfg(test)]
mod tests {
    use rust_decimal::Decimal;

    use super::*;
    use crate::{
        domain::money::{Currency, Money},
        vendors::{DataAllowance, GIB, VendorId},
    };

    fn offer(countries: &[&str], data: Option<DataAllowance>, days: u32) -> Offer {
        Offer {
            vendor: VendorId::EsimGo,
            sku: "sku".into(),
            name: "name".into(),
            countries: countries.iter().map(|c| c.to_string()).collect(),
            region_label: None,
            data,
            validity_days: days,
            cost: Money::new(Decimal::new(450, 2), Currency::USD),
            networks: vec![],
            supports_topup: false,
            is_topup: false,
            active: true,
            flags: vec![],
            raw: serde_json::json!({}),
        }
    }

    #[test]
    fn vendor_gigabytes_group_by_marketed_amount() {
        let go = normalize(&offer(
            &["GB"],
            Some(DataAllowance::decimal_mb(DataKind::Total, 10_000)),
            7,
        ));
        let access = normalize(&offer(
            &["GB"],
            Some(DataAllowance::binary(DataKind::Total, 10 * GIB)),
            7,
        ));
        assert_eq!(go.key, access.key);
        assert_eq!(go.key.unwrap().id(), "gb-10gb-7d");
    }

    #[test]
    fn coverage_accepts_names_and_alpha3_and_sorts() {
        let n = normalize(&offer(
            &["JPN", "france", "DE", "de"],
            Some(DataAllowance::unlimited()),
            7,
        ));
        assert_eq!(n.countries, ["DE", "FR", "JP"]);
        assert!(n.sellable());
        assert_eq!(n.key.unwrap().kind, DataKind::Unlimited);
    }

    #[test]
    fn daily_plans_are_their_own_kind() {
        let daily = normalize(&offer(
            &["TH"],
            Some(DataAllowance::binary(DataKind::Daily, GIB)),
            5,
        ));
        let total = normalize(&offer(
            &["TH"],
            Some(DataAllowance::binary(DataKind::Total, GIB)),
            5,
        ));
        assert_ne!(daily.key, total.key);
    }

    #[test]
    fn offers_not_understood_are_kept_flagged_and_never_sold() {
        let cases = [
            (offer(&["JP"], None, 7), Problem::UnparsedData),
            (
                offer(&["Atlantis"], Some(DataAllowance::unlimited()), 7),
                Problem::UnknownCountry,
            ),
            (
                offer(&[], Some(DataAllowance::unlimited()), 7),
                Problem::NoCoverage,
            ),
            (
                offer(&["JP"], Some(DataAllowance::unlimited()), 0),
                Problem::NoValidity,
            ),
        ];
        for (o, problem) in cases {
            let n = normalize(&o);
            assert!(n.problems.contains(&problem), "{problem:?}: {n:?}");
            assert!(!n.sellable());
            assert!(n.unparsed());
        }
        let mut ekyc = offer(&["CN"], Some(DataAllowance::unlimited()), 7);
        ekyc.flags.push(OfferFlag::EkycRequired);
        let n = normalize(&ekyc);
        assert!(!n.sellable() && !n.unparsed());
    }
}
