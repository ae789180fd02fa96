//! Which vendor offers can fill a plan, and in which order to try them. Pure: the caller
//! loads offers, vendor records and breaker states, this module only decides.
//!
//! The rule ([`rank`]): offers the caller rules out (breaker open, already tried, below the
//! minimum margin, …: [`Exclusion`]) are not candidates at all. Among the eligible offers,
//! the cheapest in the retail currency leads, except that offers costing at most
//! `near_tie_percent` more than the cheapest are near-ties: among them the better success
//! rate over the health window wins, then the lower median latency, then the lower cost,
//! then a vendor whose catalogue sync is healthy, then a stable order (vendor, SKU). The
//! offers after that band are ranked the same way, band by band, from the cheapest left.
//!
//! A vendor's success rate counts only attempts that say something about its reliability:
//! taken (`placed`) against no usable answer (`unknown`). A definite refusal (sold out, low
//! balance, price changed) is an answer, not unreliability, and is left out. A vendor with
//! no such attempts in the window is neutral: it counts as having no failures and the best
//! latency among its near-ties, so it never beats a proven clean vendor on reliability, only
//! ever on cost, and it is not held back behind a vendor that has failed recently. The
//! catalogue prices each plan with [`rank`] (neutral records, no band), so this module sits
//! below it and needs only the FX table.

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

/// A vendor's record as routing weighs it: its real order attempts over the health window
/// and its catalogue sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VendorStats {
    /// Attempts the vendor took.
    pub placed: u64,
    /// Attempts without a usable answer (timeout, dropped connection, unreachable, or
    /// reconciled as never received).
    pub unknown: u64,
    /// Median latency of its attempts in the window.
    pub latency_p50_ms: Option<i64>,
    /// Its last catalogue sync did not fail (a vendor never synced counts as fine).
    pub sync_healthy: bool,
}

impl Default for VendorStats {
    /// No record: neutral.
    fn default() -> Self {
        VendorStats {
            placed: 0,
            unknown: 0,
            latency_p50_ms: None,
            sync_healthy: true,
        }
    }
}

impl VendorStats {
    /// placed / (placed + unknown), `None` without such attempts. Refusals do not count.
    pub fn success_rate(&self) -> Option<Decimal> {
        let decided = self.placed + self.unknown;
        (decided > 0).then(|| Decimal::from(self.placed) / Decimal::from(decided))
    }
}

/// Why an offer is not a candidate. The caller decides (it holds the breakers, the order
/// and its attempts); the names are stable, they are stored with each order's choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Exclusion {
    /// The vendor's circuit breaker is open.
    BreakerOpen,
    /// Half-open, and another order holds the one probe.
    BreakerProbeTaken,
    /// This order already tried the offer.
    AlreadyTried,
    /// Cost × quantity is above the order's price minus the minimum margin.
    BelowMinMargin,
    /// The vendor's last known balance cannot pay cost × quantity.
    BalanceBelowCost,
}

impl Exclusion {
    pub fn as_str(self) -> &'static str {
        match self {
            Exclusion::BreakerOpen => "breaker_open",
            Exclusion::BreakerProbeTaken => "breaker_probe_taken",
            Exclusion::AlreadyTried => "already_tried",
            Exclusion::BelowMinMargin => "below_min_margin",
            Exclusion::BalanceBelowCost => "balance_below_cost",
        }
    }
}

/// What put the first candidate first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    NoCandidate,
    OnlyCandidate,
    /// Cheapest, with no near-tie or near-ties no better on record.
    Cheapest,
    NearTieSuccessRate,
    NearTieLatency,
    /// Same cost and record: the vendor whose catalogue sync is healthy.
    TieSyncHealth,
    /// Same cost and record: vendor, then SKU order.
    TieStableOrder,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::NoCandidate => "no_candidate",
            Rule::OnlyCandidate => "only_candidate",
            Rule::Cheapest => "cheapest",
            Rule::NearTieSuccessRate => "near_tie_success_rate",
            Rule::NearTieLatency => "near_tie_latency",
            Rule::TieSyncHealth => "tie_sync_health",
            Rule::TieStableOrder => "tie_stable_order",
        }
    }
}

/// One offer with its wholesale cost converted into the retail currency.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate<'a> {
    pub offer: &'a RoutableOffer,
    pub cost_in_retail: Decimal,
    pub stats: VendorStats,
}

/// The eligible offers in the order of trying, the ones left out and why, and the rule
/// that decided the first.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranking<'a> {
    pub candidates: Vec<Candidate<'a>>,
    pub excluded: Vec<(Candidate<'a>, Exclusion)>,
    pub rule: Rule,
}

/// Ranks the offers that satisfy `plan` and whose cost converts into `retail` (see the
/// module docs). `eligible` rules offers out; `stats` gives each vendor's record. Offers
/// from disabled vendors must not be passed in.
pub fn rank<'a>(
    plan: &PlanKey,
    offers: impl IntoIterator<Item = &'a RoutableOffer>,
    fx: &FxRates,
    retail: Currency,
    near_tie_percent: Decimal,
    eligible: impl Fn(&Candidate<'a>) -> Result<(), Exclusion>,
    stats: impl Fn(VendorId) -> VendorStats,
) -> Ranking<'a> {
    let mut all: Vec<Candidate<'a>> = offers
        .into_iter()
        .filter(|o| o.satisfies(plan))
        .filter_map(|o| {
            let cost = fx.convert(o.cost_amount, o.cost_currency, retail)?;
            Some(Candidate {
                offer: o,
                cost_in_retail: cost,
                stats: stats(o.vendor),
            })
        })
        .collect();
    all.sort_by(by_cost);
    let mut excluded = Vec::new();
    let mut rest = Vec::with_capacity(all.len());
    for c in all {
        match eligible(&c) {
            Ok(()) => rest.push(c),
            Err(why) => excluded.push((c, why)),
        }
    }
    let factor = Decimal::ONE + near_tie_percent.max(Decimal::ZERO) / Decimal::ONE_HUNDRED;
    let mut candidates = Vec::with_capacity(rest.len());
    let mut rule = match rest.len() {
        0 => Rule::NoCandidate,
        1 => Rule::OnlyCandidate,
        _ => Rule::Cheapest,
    };
    let mut rest = rest.into_iter().peekable();
    while let Some(first) = rest.next() {
        let limit = first.cost_in_retail * factor;
        let mut band = vec![first];
        while let Some(c) = rest.next_if(|c| c.cost_in_retail <= limit) {
            band.push(c);
        }
        let keyed = sort_band(band);
        if candidates.is_empty() && keyed.len() > 1 {
            rule = deciding_rule(&keyed[0], &keyed[1]);
        }
        candidates.extend(keyed.into_iter().map(|(c, _)| c));
    }
    Ranking {
        candidates,
        excluded,
        rule,
    }
}

/// The vendors with at least one offer that fills `plan` and passes `eligible`, sorted:
/// the vendors of `rank`'s candidates, without ranking (an order asks the breakers about
/// these vendors only, then ranks once).
pub fn eligible_vendors<'a>(
    plan: &PlanKey,
    offers: impl IntoIterator<Item = &'a RoutableOffer>,
    fx: &FxRates,
    retail: Currency,
    eligible: impl Fn(&Candidate<'a>) -> Result<(), Exclusion>,
) -> Vec<VendorId> {
    let mut out: Vec<VendorId> = Vec::new();
    for o in offers {
        if out.contains(&o.vendor) || !o.satisfies(plan) {
            continue;
        }
        let Some(cost) = fx.convert(o.cost_amount, o.cost_currency, retail) else {
            continue;
        };
        let c = Candidate {
            offer: o,
            cost_in_retail: cost,
            stats: VendorStats::default(),
        };
        if eligible(&c).is_ok() {
            out.push(o.vendor);
        }
    }
    out.sort();
    out
}

fn by_cost(a: &Candidate<'_>, b: &Candidate<'_>) -> Ordering {
    a.cost_in_retail
        .cmp(&b.cost_in_retail)
        .then(a.offer.vendor.cmp(&b.offer.vendor))
        .then(a.offer.sku.cmp(&b.offer.sku))
}

/// A candidate's record inside its band: success rate and latency, a vendor without a
/// record taking "no failures" and the band's best latency (neutral).
#[derive(Debug, Clone, Copy)]
struct Key {
    rate: Decimal,
    latency: i64,
}

fn sort_band(band: Vec<Candidate<'_>>) -> Vec<(Candidate<'_>, Key)> {
    let best_latency = band
        .iter()
        .filter(|c| c.stats.success_rate().is_some())
        .filter_map(|c| c.stats.latency_p50_ms)
        .min()
        .unwrap_or(0);
    let mut keyed: Vec<_> = band
        .into_iter()
        .map(|c| {
            let key = match c.stats.success_rate() {
                Some(rate) => Key {
                    rate,
                    latency: c.stats.latency_p50_ms.unwrap_or(best_latency),
                },
                None => Key {
                    rate: Decimal::ONE,
                    latency: best_latency,
                },
            };
            (c, key)
        })
        .collect();
    keyed.sort_by(|(a, ka), (b, kb)| {
        kb.rate
            .cmp(&ka.rate)
            .then(ka.latency.cmp(&kb.latency))
            .then(a.cost_in_retail.cmp(&b.cost_in_retail))
            .then(b.stats.sync_healthy.cmp(&a.stats.sync_healthy))
            .then(a.offer.vendor.cmp(&b.offer.vendor))
            .then(a.offer.sku.cmp(&b.offer.sku))
    });
    keyed
}

fn deciding_rule(first: &(Candidate<'_>, Key), second: &(Candidate<'_>, Key)) -> Rule {
    let ((a, ka), (b, kb)) = (first, second);
    if ka.rate != kb.rate {
        Rule::NearTieSuccessRate
    } else if ka.latency != kb.latency {
        Rule::NearTieLatency
    } else if a.cost_in_retail != b.cost_in_retail {
        Rule::Cheapest
    } else if a.stats.sync_healthy != b.stats.sync_healthy {
        Rule::TieSyncHealth
    } else {
        Rule::TieStableOrder
    }
}

/// [`rank`] by cost alone (neutral records, nothing excluded, no band): what the catalogue
/// prices a plan from.
pub fn by_cost_only<'a>(
    plan: &PlanKey,
    offers: impl IntoIterator<Item = &'a RoutableOffer>,
    fx: &FxRates,
    retail: Currency,
) -> Vec<Candidate<'a>> {
    rank(
        plan,
        offers,
        fx,
        retail,
        Decimal::ZERO,
        |_| Ok(()),
        |_| VendorStats::default(),
    )
    .candidates
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
        let ranked = by_cost_only(&p, &offers, &fx, Currency::USD);
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
        let ranked = rank(
            &p,
            &offers,
            &fx,
            Currency::USD,
            dec("1"),
            |_| Ok(()),
            |v| VendorStats {
                sync_healthy: v != VendorId::EsimAccess,
                ..VendorStats::default()
            },
        );
        let ids: Vec<i64> = ranked.candidates.iter().map(|c| c.offer.offer_id).collect();
        assert_eq!(ids, [3, 1, 2]);
        assert_eq!(ranked.rule, Rule::TieStableOrder);
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
        assert!(by_cost_only(&p, &offers, &fx, Currency::USD).is_empty());
    }

    fn jp(id: i64, vendor: VendorId, cost: &str) -> RoutableOffer {
        offer(
            id,
            vendor,
            &["JP"],
            DataKind::Total,
            Some(1),
            7,
            cost,
            "USD",
        )
    }

    fn record(placed: u64, unknown: u64, p50: Option<i64>) -> VendorStats {
        VendorStats {
            placed,
            unknown,
            latency_p50_ms: p50,
            sync_healthy: true,
        }
    }

    fn ranked_ids(
        offers: &[RoutableOffer],
        band: &str,
        stats: impl Fn(VendorId) -> VendorStats,
    ) -> (Vec<i64>, Rule) {
        let p = plan(&["JP"], DataKind::Total, Some(1), 7);
        let r = rank(
            &p,
            offers,
            &FxRates::builtin(),
            Currency::USD,
            dec(band),
            |_| Ok(()),
            stats,
        );
        (
            r.candidates.iter().map(|c| c.offer.offer_id).collect(),
            r.rule,
        )
    }

    #[test]
    fn a_near_tie_goes_to_the_better_success_rate_beyond_the_band_cost_wins() {
        // 10.00 vs 10.09: within 1 %. 10.20: beyond it.
        let offers = [
            jp(1, VendorId::EsimFx, "10.00"),
            jp(2, VendorId::MicroEsim, "10.09"),
            jp(3, VendorId::EsimAccess, "10.20"),
        ];
        let flaky = |v| match v {
            VendorId::EsimFx => record(1, 3, Some(100)),
            _ => record(10, 0, Some(900)),
        };
        assert_eq!(
            ranked_ids(&offers, "1", flaky),
            (vec![2, 1, 3], Rule::NearTieSuccessRate)
        );
        // With no band, cost alone decides.
        assert_eq!(
            ranked_ids(&offers, "0", flaky),
            (vec![1, 2, 3], Rule::Cheapest)
        );
        // The band is relative to the cheapest: 10.20 is a near-tie of nothing cheaper.
        let offers = [
            jp(1, VendorId::EsimFx, "10.00"),
            jp(3, VendorId::EsimAccess, "10.20"),
        ];
        assert_eq!(
            ranked_ids(&offers, "1", flaky),
            (vec![1, 3], Rule::Cheapest)
        );
    }

    #[test]
    fn equal_success_rates_prefer_lower_latency_then_cost() {
        let offers = [
            jp(1, VendorId::EsimFx, "10.00"),
            jp(2, VendorId::MicroEsim, "10.05"),
        ];
        let slow_fx = |v| match v {
            VendorId::EsimFx => record(5, 0, Some(2000)),
            _ => record(5, 0, Some(300)),
        };
        assert_eq!(
            ranked_ids(&offers, "1", slow_fx),
            (vec![2, 1], Rule::NearTieLatency)
        );
        let same = |_| record(5, 0, Some(300));
        assert_eq!(ranked_ids(&offers, "1", same), (vec![1, 2], Rule::Cheapest));
    }

    #[test]
    fn refusals_are_not_unreliability_and_no_record_is_neutral() {
        let offers = [
            jp(1, VendorId::EsimFx, "10.00"),
            jp(2, VendorId::MicroEsim, "10.05"),
        ];
        // Refusals (sold out) are not in `VendorStats` at all: placed only is a clean record.
        assert_eq!(record(3, 0, None).success_rate(), Some(Decimal::ONE));
        assert_eq!(VendorStats::default().success_rate(), None);
        // Unproven and cheaper vs proven clean: neither wins on record, cost decides.
        let proven_micro = |v| match v {
            VendorId::MicroEsim => record(8, 0, Some(400)),
            _ => VendorStats::default(),
        };
        assert_eq!(
            ranked_ids(&offers, "1", proven_micro),
            (vec![1, 2], Rule::Cheapest)
        );
        // Proven clean and cheaper vs unproven: the proven one stays first.
        let proven_fx = |v| match v {
            VendorId::EsimFx => record(8, 0, Some(400)),
            _ => VendorStats::default(),
        };
        assert_eq!(
            ranked_ids(&offers, "1", proven_fx),
            (vec![1, 2], Rule::Cheapest)
        );
        // A vendor that failed recently comes after one with no record.
        let failed_fx = |v| match v {
            VendorId::EsimFx => record(1, 1, Some(400)),
            _ => VendorStats::default(),
        };
        assert_eq!(
            ranked_ids(&offers, "1", failed_fx),
            (vec![2, 1], Rule::NearTieSuccessRate)
        );
    }

    #[test]
    fn excluded_offers_are_listed_with_their_reason_and_the_band_starts_after_them() {
        let p = plan(&["JP"], DataKind::Total, Some(1), 7);
        let offers = [
            jp(1, VendorId::EsimFx, "9.00"),
            jp(2, VendorId::MicroEsim, "10.00"),
            jp(3, VendorId::EsimAccess, "10.05"),
        ];
        let r = rank(
            &p,
            &offers,
            &FxRates::builtin(),
            Currency::USD,
            dec("1"),
            |c| match c.offer.vendor {
                VendorId::EsimFx => Err(Exclusion::BreakerOpen),
                _ => Ok(()),
            },
            |v| match v {
                VendorId::MicroEsim => record(0, 2, None),
                _ => VendorStats::default(),
            },
        );
        let ids: Vec<i64> = r.candidates.iter().map(|c| c.offer.offer_id).collect();
        assert_eq!(ids, [3, 2]);
        assert_eq!(r.rule, Rule::NearTieSuccessRate);
        assert_eq!(r.excluded.len(), 1);
        assert_eq!(r.excluded[0].1.as_str(), "breaker_open");
        let only = rank(
            &p,
            &offers[..1],
            &FxRates::builtin(),
            Currency::USD,
            dec("1"),
            |_| Ok(()),
            |_| VendorStats::default(),
        );
        assert_eq!(only.rule, Rule::OnlyCandidate);
    }

    #[test]
    fn eligible_vendors_are_the_vendors_rank_keeps() {
        let fx = FxRates::builtin();
        let p = plan(&["JP"], DataKind::Total, Some(1), 7);
        let offers = [
            jp(1, VendorId::EsimFx, "9.00"),
            jp(2, VendorId::MicroEsim, "10.00"),
            jp(3, VendorId::EsimAccess, "10.05"),
            jp(4, VendorId::MicroEsim, "11.00"),
            // Does not fill the plan: too few days.
            offer(
                5,
                VendorId::Multiverse,
                &["JP"],
                DataKind::Total,
                Some(1),
                3,
                "1.00",
                "USD",
            ),
            // A currency without a rate is skipped by both.
            offer(
                6,
                VendorId::EsimGo,
                &["JP"],
                DataKind::Total,
                Some(1),
                7,
                "1.00",
                "XAF",
            ),
        ];
        let keep = |c: &Candidate<'_>| match c.offer.offer_id {
            1 => Err(Exclusion::BalanceBelowCost),
            _ => Ok(()),
        };
        let ranked = rank(&p, &offers, &fx, Currency::USD, dec("1"), keep, |_| {
            VendorStats::default()
        });
        let mut from_rank: Vec<VendorId> =
            ranked.candidates.iter().map(|c| c.offer.vendor).collect();
        from_rank.sort();
        from_rank.dedup();
        assert_eq!(
            eligible_vendors(&p, &offers, &fx, Currency::USD, keep),
            from_rank
        );
        assert_eq!(from_rank, [VendorId::EsimAccess, VendorId::MicroEsim]);
    }
}
