//! Why an order's vendor was chosen: the record of one ranking (`routing::rank`), stored
//! with the attempt it led to (`store::routings`) and shown in `/admin/orders/{id}`.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::breaker::BreakerState;
use crate::{
    domain::money::{Currency, Money},
    routing::{Candidate, Ranking},
    vendors::VendorId,
};

/// At most this many candidates and as many exclusions are kept per ranking (the rest are
/// counted): a record's size is bounded whatever the catalogue.
pub const MAX_LISTED: usize = 20;

/// One ranking of an order's offers and the rule that put the first first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RoutingChoice {
    /// What decided the first candidate: `only_candidate`, `cheapest`,
    /// `near_tie_success_rate`, `near_tie_latency`, `tie_sync_health`, `tie_stable_order`,
    /// or `no_candidate` when every offer was left out.
    #[schema(example = "near_tie_success_rate")]
    pub rule: String,
    /// `ROUTING_NEAR_TIE_PERCENT` when ranked.
    pub near_tie_percent: Decimal,
    /// `VENDOR_HEALTH_WINDOW` in seconds: how far back the success rates and latencies reach.
    pub window_seconds: u64,
    /// The eligible offers in the order they would be tried (the first was), at most 20.
    pub candidates: Vec<RoutingCandidate>,
    /// Offers left out and why, cheapest first, at most 20.
    pub excluded: Vec<RoutingExclusion>,
    /// Candidates and exclusions beyond the listed ones.
    pub unlisted: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RoutingCandidate {
    pub vendor: VendorId,
    pub offer_id: i64,
    pub sku: String,
    /// Wholesale unit cost in the vendor's currency.
    pub cost: Money,
    /// The same converted into the retail currency (unrounded).
    pub cost_in_retail: Money,
    /// placed / (placed + unknown) over the window, 0–1; null without such attempts (a
    /// vendor without a record is neutral). Definite refusals are not counted.
    pub success_rate: Option<Decimal>,
    pub placed: u64,
    pub unknown: u64,
    pub latency_p50_ms: Option<i64>,
    /// `closed` or `half_open` (this order holds the probe).
    pub breaker: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RoutingExclusion {
    pub vendor: VendorId,
    pub offer_id: i64,
    pub sku: String,
    pub cost: Money,
    pub cost_in_retail: Money,
    /// `breaker_open`, `breaker_probe_taken`, `already_tried`, `below_min_margin`,
    /// `balance_below_cost` (the set
    /// may grow; treat unknown values as "left out").
    #[schema(example = "breaker_open")]
    pub reason: String,
}

impl RoutingChoice {
    /// The record of `ranking`; `breaker` tells each candidate vendor's breaker state.
    pub fn of(
        ranking: &Ranking<'_>,
        retail: Currency,
        near_tie_percent: Decimal,
        window_seconds: u64,
        breaker: impl Fn(VendorId) -> BreakerState,
    ) -> RoutingChoice {
        let money = |c: &Candidate<'_>| {
            (
                Money::new(c.offer.cost_amount, c.offer.cost_currency),
                Money::new(c.cost_in_retail, retail),
            )
        };
        let candidates = ranking
            .candidates
            .iter()
            .take(MAX_LISTED)
            .map(|c| {
                let (cost, cost_in_retail) = money(c);
                RoutingCandidate {
                    vendor: c.offer.vendor,
                    offer_id: c.offer.offer_id,
                    sku: c.offer.sku.clone(),
                    cost,
                    cost_in_retail,
                    success_rate: c.stats.success_rate().map(|r| r.round_dp(4)),
                    placed: c.stats.placed,
                    unknown: c.stats.unknown,
                    latency_p50_ms: c.stats.latency_p50_ms,
                    breaker: breaker(c.offer.vendor).as_str().to_string(),
                }
            })
            .collect();
        let excluded = ranking
            .excluded
            .iter()
            .take(MAX_LISTED)
            .map(|(c, why)| {
                let (cost, cost_in_retail) = money(c);
                RoutingExclusion {
                    vendor: c.offer.vendor,
                    offer_id: c.offer.offer_id,
                    sku: c.offer.sku.clone(),
                    cost,
                    cost_in_retail,
                    reason: why.as_str().to_string(),
                }
            })
            .collect();
        let unlisted = ranking.candidates.len().saturating_sub(MAX_LISTED)
            + ranking.excluded.len().saturating_sub(MAX_LISTED);
        RoutingChoice {
            rule: ranking.rule.as_str().to_string(),
            near_tie_percent,
            window_seconds,
            candidates,
            excluded,
            unlisted: unlisted as u32,
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}
