//! Which vendor offers can fill a plan, cheapest first. Pure: the caller loads offers and
//! vendor health, this module only decides. Vendors whose circuit breaker is open are not
//! candidates at all: the caller leaves their offers out after ranking
//! (`ordering::purchase::ranked_offers`), so they are skipped, not sorted last. The catalogue prices each plan with [`rank`]
//! (as routing would buy it), so this module sits below it and needs only the FX table.

use std::cmp::Ordering;

use rust_decimal::Decimal;

use crate::{
    domain::data::DataKind,
    domain::{
        money::{Currency, FxRates},
        plan::PlanKey,
    },
    vendors::VendorId,
};

/// The offer row routing ranks (read by `store::offers`).
pub use crate::store::offers::RoutableOffer;

impl RoutableOffer {
    /// The offer gives at least what the plan promises: every plan country, the same data
    /// kind with at least as much data, and at least as many days.
    pub fn satisfies(&self, plan: &PlanKey) -> bool {
        self.kind == plan.kind
            && self.validity_days >= plan.validity_days
            && match (plan.bytes, self.bytes) {
                (None, _) => self.kind == DataKind::Unlimited,
                (Some(want), Some(have)) => have >= want,
                (Some(_), None) => false,
            }
            && is_superset(&self.countries, &plan.countries)
    }
}

/// Both slices sorted: a linear merge.
fn is_superset(have: &[String], want: &[String]) -> bool {
    let mut have = have.iter();
    'outer: for w in want {
        for h in have.by_ref() {
            match h.cmp(w) {
                Ordering::Less => continue,
                Ordering::Equal => continue 'outer,
                Ordering::Greater => return false,
            }
        }
        return false;
    }
    true
}

/// One ranked offer with its wholesale cost converted into the retail currency.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate<'a> {
    pub offer: &'a RoutableOffer,
    pub cost_in_retail: Decimal,
    pub vendor_healthy: bool,
}

/// Every offer that satisfies `plan` and whose cost can be converted, sorted by cost in the
/// retail currency, then healthy vendors first, then a stable order (vendor, SKU). Offers
/// from disabled vendors must not be passed in; unhealthy ones are kept as a last resort.
pub fn rank<'a>(
    plan: &PlanKey,
    offers: impl IntoIterator<Item = &'a RoutableOffer>,
    fx: &FxRates,
    retail: Currency,
    healthy: impl Fn(VendorId) -> bool,
) -> Vec<Candidate<'a>> {
    let mut ranked: Vec<Candidate<'a>> = offers
        .into_iter()
        .filter(|o| o.satisfies(plan))
        .filter_map(|o| {
            let cost = fx.convert(o.cost_amount, o.cost_currency, retail)?;
            Some(Candidate {
                offer: o,
                cost_in_retail: cost,
                vendor_healthy: healthy(o.vendor),
            })
        })
        .collect();
    ranked.sort_by(|a, b| {
        a.cost_in_retail
            .cmp(&b.cost_in_retail)
            .then(b.vendor_healthy.cmp(&a.vendor_healthy))
            .then(a.offer.vendor.cmp(&b.offer.vendor))
            .then(a.offer.sku.cmp(&b.offer.sku))
    });
    ranked
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendors::GIB;

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[allow(clippy::too_many_arguments)] // a table-like test helper reads best flat
    fn offer(
        id: i64,
        vendor: VendorId,
        countries: &[&str],
        kind: DataKind,
        gb: Option<u64>,
        days: u32,
        cost: &str,
        cur: &str,
    ) -> RoutableOffer {
        RoutableOffer {
            offer_id: id,
            vendor,
            sku: format!("sku{id}"),
            countries: countries.iter().map(|c| c.to_string()).collect(),
            kind,
            bytes: gb.map(|g| g * GIB),
            validity_days: days,
            cost_amount: dec(cost),
            cost_currency: cur.parse().unwrap(),
        }
    }

    fn plan(countries: &[&str], kind: DataKind, gb: Option<u64>, days: u32) -> PlanKey {
        PlanKey {
            countries: countries.iter().map(|c| c.to_string()).collect(),
            kind,
            bytes: gb.map(|g| g * GIB),
            validity_days: days,
        }
    }

    #[test]
    fn cheapest_in_retail_currency_wins_across_currencies() {
        let fx = FxRates::builtin();
        let p = plan(&["JP"], DataKind::Total, Some(10), 7);
        let offers = [
            offer(
                1,
                VendorId::EsimFx,
                &["JP"],
                DataKind::Total,
                Some(10),
                7,
                "10.00",
                "USD",
            ),
            // 70 HKD = 8.96 USD
            offer(
                2,
                VendorId::MicroEsim,
                &["JP"],
                DataKind::Total,
                Some(10),
                7,
                "70",
                "HKD",
            ),
            // 7.50 GBP = 9.525 USD
            offer(
                3,
                VendorId::EsimGo,
                &["JP"],
                DataKind::Total,
                Some(10),
                7,
                "7.50",
                "GBP",
            ),
        ];
        let ranked = rank(&p, &offers, &fx, Currency::USD, |_| true);
        let ids: Vec<i64> = ranked.iter().map(|c| c.offer.offer_id).collect();
        assert_eq!(ids, [2, 3, 1]);
        assert_eq!(ranked[0].cost_in_retail, dec("8.960"));
    }

    #[test]
    fn only_offers_that_give_at_least_the_plan_qualify() {
        let p = plan(&["DE", "FR"], DataKind::Total, Some(5), 30);
        let cases = [
            (
                offer(
                    1,
                    VendorId::EsimFx,
                    &["DE", "FR"],
                    DataKind::Total,
                    Some(5),
                    30,
                    "1",
                    "USD",
                ),
                true,
            ),
            (
                offer(
                    2,
                    VendorId::EsimFx,
                    &["DE", "ES", "FR", "IT"],
                    DataKind::Total,
                    Some(10),
                    30,
                    "1",
                    "USD",
                ),
                true,
            ),
            (
                offer(
                    3,
                    VendorId::EsimFx,
                    &["DE"],
                    DataKind::Total,
                    Some(5),
                    30,
                    "1",
                    "USD",
                ),
                false,
            ),
            (
                offer(
                    4,
                    VendorId::EsimFx,
                    &["DE", "FR"],
                    DataKind::Total,
                    Some(3),
                    30,
                    "1",
                    "USD",
                ),
                false,
            ),
            (
                offer(
                    5,
                    VendorId::EsimFx,
                    &["DE", "FR"],
                    DataKind::Total,
                    Some(5),
                    15,
                    "1",
                    "USD",
                ),
                false,
            ),
            (
                offer(
                    6,
                    VendorId::EsimFx,
                    &["DE", "FR"],
                    DataKind::Daily,
                    Some(5),
                    30,
                    "1",
                    "USD",
                ),
                false,
            ),
            (
                offer(
                    7,
                    VendorId::EsimFx,
                    &["DE", "FR"],
                    DataKind::Unlimited,
                    None,
                    30,
                    "1",
                    "USD",
                ),
                false,
            ),
            (
                offer(
                    8,
                    VendorId::EsimFx,
                    &["AT", "FR", "IT"],
                    DataKind::Total,
                    Some(5),
                    30,
                    "1",
                    "USD",
                ),
                false,
            ),
        ];
        for (o, want) in &cases {
            assert_eq!(o.satisfies(&p), *want, "offer {}", o.offer_id);
        }
        let unlimited = plan(&["FR"], DataKind::Unlimited, None, 7);
        assert!(
            offer(
                9,
                VendorId::EsimGo,
                &["FR"],
                DataKind::Unlimited,
                None,
                7,
                "1",
                "USD"
            )
            .satisfies(&unlimited)
        );
        let daily = plan(&["FR"], DataKind::Daily, Some(1), 7);
        assert!(
            offer(
                10,
                VendorId::EsimGo,
                &["FR"],
                DataKind::Daily,
                Some(2),
                10,
                "1",
                "USD"
            )
            .satisfies(&daily)
        );
        assert!(
            !offer(
                11,
                VendorId::EsimGo,
                &["FR"],
                DataKind::Total,
                Some(10),
                10,
                "1",
                "USD"
            )
            .satisfies(&daily)
        );
    }

    #[test]
    fn ties_prefer_healthy_vendors_then_a_stable_order() {
        let fx = FxRates::builtin();
        let p = plan(&["JP"], DataKind::Total, Some(1), 7);
        let offers = [
            offer(
                1,
                VendorId::Multiverse,
                &["JP"],
                DataKind::Total,
                Some(1),
                7,
                "5",
                "USD",
            ),
            offer(
                2,
                VendorId::EsimAccess,
                &["JP"],
                DataKind::Total,
                Some(1),
                7,
                "5",
                "USD",
            ),
            offer(
                3,
                VendorId::EsimGo,
                &["JP"],
                DataKind::Total,
                Some(1),
                7,
                "5",
                "USD",
            ),
        ];
        let ranked = rank(&p, &offers, &fx, Currency::USD, |v| {
            v != VendorId::EsimAccess
        });
        let ids: Vec<i64> = ranked.iter().map(|c| c.offer.offer_id).collect();
        assert_eq!(ids, [3, 1, 2]);
    }

    #[test]
    fn offers_in_unknown_currencies_are_skipped() {
        let fx = FxRates::builtin();
        let p = plan(&["JP"], DataKind::Total, Some(1), 7);
        let offers = [offer(
            1,
            VendorId::EsimGo,
            &["JP"],
            DataKind::Total,
            Some(1),
            7,
            "5",
            "XAF",
        )];
        assert!(rank(&p, &offers, &fx, Currency::USD, |_| true).is_empty());
    }
}
