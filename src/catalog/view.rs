//! The catalogue's wire shapes (`/v1/plans`, `/v1/countries`): the snapshot encodes them
//! once per catalogue version, the handlers send those bytes.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    domain::money::{Currency, Money},
    store::plans::PlanRecord,
    vendors::Network,
};

/// How much data a plan gives.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PlanData {
    /// Marketed amount in binary units (10 GB → 10737418240); per day when `daily`;
    /// null when unlimited.
    #[schema(example = 10737418240u64)]
    pub bytes: Option<u64>,
    pub unlimited: bool,
    /// The allowance resets every day (`bytes` is per day).
    pub daily: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Plan {
    #[schema(example = "jp-10gb-7d")]
    pub id: String,
    /// `true`: a live vendor's plan (`sk_live_` keys); `false`: a test-mode plan, filled by
    /// the built-in simulators. The same id may exist in both modes at different prices.
    pub livemode: bool,
    #[schema(example = "Japan 10 GB 7 days")]
    pub name: String,
    /// ISO 3166 alpha-2 codes, sorted.
    #[schema(example = json!(["JP"]))]
    pub countries: Vec<String>,
    /// Region label for multi-country plans.
    pub region: Option<String>,
    pub data: PlanData,
    pub validity_days: u32,
    pub price: Money,
    pub networks: Vec<Network>,
    /// True only if every vendor that may fill this plan documents top-ups and accepts them
    /// for what it sells here, so any eSIM bought from the plan can take top-ups (see its
    /// `topup-plans`). Always true on a `topup-plans` entry.
    pub supports_topup: bool,
}

impl From<PlanRecord> for Plan {
    fn from(r: PlanRecord) -> Self {
        Plan {
            data: PlanData {
                bytes: r.data_bytes.map(|b| b as u64),
                unlimited: r.data_kind == "unlimited",
                daily: r.data_kind == "daily",
            },
            price: Money::new(
                r.price_amount,
                r.price_currency.parse().unwrap_or(Currency::USD),
            ),
            networks: r.networks.0,
            livemode: r.livemode,
            id: r.id,
            name: r.name,
            countries: r.countries,
            region: r.region,
            validity_days: r.validity_days as u32,
            supports_topup: r.supports_topup,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CountrySummary {
    #[schema(example = "JP")]
    pub code: String,
    /// The mode of the catalogue this count is from.
    pub livemode: bool,
    #[schema(example = "Japan")]
    pub name: String,
    pub plan_count: u64,
    /// The cheapest plan covering this country.
    pub from_price: Money,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CountryList {
    pub data: Vec<CountrySummary>,
    pub next_cursor: Option<String>,
}
