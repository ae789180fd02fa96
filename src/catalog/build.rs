//! Builds the plan list from the active sellable offers: one plan per distinct plan key,
//! priced from the cheapest offer that satisfies it (which may be a bigger or wider offer,
//! exactly as routing would buy it).

use std::collections::{BTreeMap, HashMap};

use crate::{
    catalog::pricing::Pricing,
    domain::{country::Country, plan::PlanKey},
    routing,
    store::{offers::SellableOffer, plans::PlanRow},
};

/// The plan an offer stands behind exactly.
fn key_of(o: &SellableOffer) -> PlanKey {
    PlanKey {
        countries: o.routable.countries.to_vec(),
        kind: o.routable.kind,
        bytes: o.routable.bytes,
        validity_days: o.routable.validity_days,
    }
}

pub fn build_plans(offers: &[SellableOffer], pricing: &Pricing) -> Vec<PlanRow> {
    let mut keys: BTreeMap<PlanKey, Vec<usize>> = BTreeMap::new();
    let mut by_country: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, o) in offers.iter().enumerate() {
        keys.entry(key_of(o)).or_default().push(i);
        for c in o.routable.countries.iter() {
            by_country.entry(c.as_str()).or_default().push(i);
        }
    }
    // A plan takes top-ups only if every offer that may fill it does: routing may buy from
    // any of them, and a top-up can only come from the vendor that issued the eSIM.
    let takes_topups: HashMap<i64, bool> = offers
        .iter()
        .map(|o| {
            let ok = o.supports_topup && o.routable.vendor.topups_documented();
            (o.routable.offer_id, ok)
        })
        .collect();
    keys.into_iter()
        .filter_map(|(key, exact)| {
            // Only offers that cover the plan's rarest country can cover all of them.
            let pool = key
                .countries
                .iter()
                .filter_map(|c| by_country.get(c.as_str()))
                .min_by_key(|v| v.len())?;
            let ranked = routing::by_cost_only(
                &key,
                pool.iter().map(|&i| &offers[i].routable),
                &pricing.fx,
                pricing.retail_currency,
            );
            let cheapest = ranked.first()?;
            let cheapest_offer = pool
                .iter()
                .map(|&i| &offers[i])
                .find(|o| o.routable.offer_id == cheapest.offer.offer_id)?;
            let region = exact
                .iter()
                .find_map(|&i| offers[i].region_label.clone())
                .filter(|_| key.countries.len() > 1);
            Some(PlanRow {
                id: key.id(),
                name: plan_name(&key, region.as_deref()),
                countries: key.countries.clone(),
                region,
                kind: key.kind,
                bytes: key.bytes,
                sort_bytes: key
                    .total_bytes()
                    .map_or(i64::MAX, |b| i64::try_from(b).unwrap_or(i64::MAX)),
                validity_days: key.validity_days,
                price: pricing.retail_from_retail_cost(cheapest.cost_in_retail),
                networks: networks_within(&cheapest_offer.networks, &key.countries),
                supports_topup: ranked
                    .iter()
                    .all(|c| takes_topups.get(&c.offer.offer_id) == Some(&true)),
                offer_count: ranked.len() as u32,
            })
        })
        .collect()
}

/// The offer's networks in the plan's own countries (a wider offer may price a narrower
/// plan; its other countries' networks mean nothing to this plan's buyer).
fn networks_within(networks: &serde_json::Value, countries: &[String]) -> serde_json::Value {
    match networks.as_array() {
        Some(list) => serde_json::Value::Array(
            list.iter()
                .filter(|n| {
                    n.get("country")
                        .and_then(|c| c.as_str())
                        .is_none_or(|c| countries.iter().any(|p| p == c))
                })
                .cloned()
                .collect(),
        ),
        None => serde_json::Value::Array(vec![]),
    }
}

/// "Japan 10 GB 7 days", "Europe (32 countries) 5 GB 30 days".
fn plan_name(key: &PlanKey, region: Option<&str>) -> String {
    let coverage = match key.countries.as_slice() {
        [one] => Country::from_alpha2(one)
            .map(|c| c.common_name().to_string())
            .unwrap_or_else(|| one.clone()),
        many => match region {
            Some(label) => format!("{label} ({} countries)", many.len()),
            None => format!("{} countries", many.len()),
        },
    };
    format!("{coverage} {}", key.allowance_label())
}

#[cfg(test)]
mod tests {
    use rust_decimal::Decimal;

    use super::*;
    use crate::{
        domain::{
            data::{DataKind, GIB},
            money::{Currency, FxRates},
        },
        routing::RoutableOffer,
        vendors::VendorId,
    };

    fn offer(
        id: i64,
        vendor: VendorId,
        countries: &[&str],
        gb: u64,
        days: u32,
        cost: &str,
        cur: &str,
    ) -> SellableOffer {
        SellableOffer {
            routable: RoutableOffer {
                offer_id: id,
                vendor,
                sku: format!("sku{id}"),
                countries: countries.iter().map(|c| c.to_string()).collect(),
                kind: DataKind::Total,
                bytes: Some(gb * GIB),
                validity_days: days,
                cost_amount: cost.parse().unwrap(),
                cost_currency: cur.parse().unwrap(),
            },
            region_label: (countries.len() > 1).then(|| "Europe".to_string()),
            networks: serde_json::json!([{"vendor": id}]),
            supports_topup: id % 2 == 0,
        }
    }

    fn pricing() -> Pricing {
        Pricing {
            fx: FxRates::builtin(),
            retail_currency: Currency::USD,
            markup_percent: Decimal::from(20),
            min_margin_percent: Decimal::ZERO,
        }
    }

    #[test]
    fn same_key_offers_form_one_plan_priced_from_the_cheapest() {
        let offers = [
            offer(1, VendorId::EsimFx, &["JP"], 10, 7, "10.00", "USD"),
            offer(2, VendorId::MicroEsim, &["JP"], 10, 7, "70", "HKD"),
            offer(3, VendorId::EsimGo, &["JP"], 10, 7, "7.50", "GBP"),
        ];
        let plans = build_plans(&offers, &pricing());
        assert_eq!(plans.len(), 1);
        let p = &plans[0];
        assert_eq!(p.id, "jp-10gb-7d");
        assert_eq!(p.price.amount, "10.76".parse::<Decimal>().unwrap());
        assert_eq!(p.offer_count, 3);
        assert_eq!(p.networks, serde_json::json!([{"vendor": 2}]));
        // Offers 1 and 3 take no top-ups and MicroEsim documents none.
        assert!(!p.supports_topup);
    }

    #[test]
    fn a_plan_takes_topups_only_if_every_offer_that_fills_it_does() {
        let both = [
            offer(2, VendorId::EsimFx, &["JP"], 10, 7, "10.00", "USD"),
            offer(4, VendorId::EsimGo, &["JP"], 10, 7, "9.00", "USD"),
        ];
        assert!(build_plans(&both, &pricing())[0].supports_topup);
        // A dearer seller without top-ups may still fill the plan on a fallback.
        let mut mixed = both.to_vec();
        mixed.push(offer(
            6,
            VendorId::Multiverse,
            &["JP"],
            10,
            7,
            "20.00",
            "USD",
        ));
        assert!(!build_plans(&mixed, &pricing())[0].supports_topup);
        mixed[2] = offer(5, VendorId::EsimAccess, &["JP"], 10, 7, "20.00", "USD");
        assert!(!build_plans(&mixed, &pricing())[0].supports_topup);
    }

    #[test]
    fn a_cheaper_wider_offer_prices_the_narrower_plan() {
        let offers = [
            offer(1, VendorId::EsimFx, &["FR"], 5, 30, "9.00", "USD"),
            offer(
                2,
                VendorId::EsimGo,
                &["DE", "FR", "IT"],
                10,
                30,
                "5.00",
                "USD",
            ),
        ];
        let plans = build_plans(&offers, &pricing());
        let fr = plans.iter().find(|p| p.countries == ["FR"]).unwrap();
        assert_eq!(fr.price.amount.to_string(), "6.00");
        assert_eq!(fr.offer_count, 2);
        assert_eq!(fr.name, "France 5 GB 30 days");
        let eu = plans.iter().find(|p| p.countries.len() == 3).unwrap();
        assert_eq!(eu.offer_count, 1);
        assert_eq!(eu.region.as_deref(), Some("Europe"));
        assert_eq!(eu.name, "Europe (3 countries) 10 GB 30 days");
    }
}
