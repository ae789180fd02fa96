//! Buying: idempotent order intake, the purchase loop over ranked vendor offers,
//! provisioning and reconciliation, cancellation and usage.
//!
//! Exactly-once rules: the order row and its idempotency key are written
//! before any vendor is called; every vendor attempt is recorded before the call; an unknown
//! outcome at a vendor is reconciled with that vendor before anything is bought elsewhere.

use std::{sync::Arc, time::Duration};

use sqlx::PgPool;

pub use self::error::{OrderingError, OrderingResult};
pub use crate::domain::order::OrderStatus;
use crate::{AppState, catalog::pricing::Pricing, vendors::registry::Vendors};

pub mod alerts;
pub mod answer;
pub mod balances;
pub mod breaker;
pub mod cancel;
pub mod choice;
pub mod error;
pub mod events;
pub mod health;
pub mod lease;
pub mod place;
pub mod provision;
pub mod purchase;
pub mod scenario;
pub mod topup;
pub mod usage;
pub mod view;

/// What the ordering services need, cheap to clone.
#[derive(Clone)]
pub struct Ctx {
    pub pool: PgPool,
    /// Vendors of live-mode orders (real credentials).
    pub live_vendors: Arc<Vendors>,
    /// Vendors of test-mode orders (the built-in simulators).
    pub test_vendors: Arc<Vendors>,
    pub pricing: Pricing,
    /// First delay before the provisioner re-checks an order; doubles per check up to
    /// [`Ctx::max_retry`].
    pub retry_base: Duration,
    pub max_retry: Duration,
    pub usage_max_age: Duration,
    /// Length of an order lease (renewed at a third of it while work runs).
    pub lease: Duration,
    pub attention_after: Duration,
    pub usage_thresholds: Vec<u8>,
    /// How long after an attempt was sent a vendor's "no such order" is believed: a vendor
    /// may still be processing a request sent moments ago (adapter timeout plus margin).
    pub reconcile_settle: Duration,
    /// When a vendor's breaker opens and for how long.
    pub breaker: breaker::BreakerSettings,
    /// How vendors are ranked and prices guarded.
    pub routing: RoutingSettings,
    /// How vendor balances are read and judged low.
    pub balances: balances::BalanceSettings,
    /// `TEST_SCENARIO_DELAY`: how long the slow test scenarios take.
    pub scenario_delay: Duration,
    /// This replica's memory: the catalogue, and what routing reads for every order
    /// (`cache.routing`) and the balance reads planned after orders (see
    /// [`balances::nudge`]).
    pub cache: Arc<crate::cache::ReplicaCache>,
}

/// `ROUTING_NEAR_TIE_PERCENT`, `VENDOR_HEALTH_WINDOW`, `PRICE_TOLERANCE_PERCENT` (the
/// minimum margin is in [`Pricing`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoutingSettings {
    pub near_tie_percent: rust_decimal::Decimal,
    pub health_window: Duration,
    pub price_tolerance_percent: rust_decimal::Decimal,
}

impl Ctx {
    /// The only vendors an order, eSIM or callback of this mode may reach.
    pub fn vendors(&self, livemode: bool) -> &Arc<Vendors> {
        if livemode {
            &self.live_vendors
        } else {
            &self.test_vendors
        }
    }

    pub fn from_state(state: &AppState) -> Self {
        Ctx {
            pool: state.pool.clone(),
            live_vendors: state.live_vendors.clone(),
            test_vendors: state.test_vendors.clone(),
            pricing: Pricing::from_config(&state.config),
            retry_base: state.config.provision_retry_base,
            max_retry: Duration::from_secs(60),
            usage_max_age: state.config.usage_max_age,
            lease: state.config.order_lease,
            attention_after: state.config.order_attention_after,
            usage_thresholds: state.config.usage_thresholds.clone(),
            reconcile_settle: RECONCILE_SETTLE,
            breaker: breaker::BreakerSettings {
                failures: state.config.breaker_failures,
                cooldown: state.config.breaker_cooldown,
            },
            routing: RoutingSettings {
                near_tie_percent: state.config.near_tie_percent,
                health_window: state.config.vendor_health_window,
                price_tolerance_percent: state.config.price_tolerance_percent,
            },
            balances: balances::BalanceSettings {
                config: state.config.balances.clone(),
                deliver_alerts: state.config.operator_webhook.is_some(),
            },
            scenario_delay: state.config.test_scenario_delay,
            cache: state.cache.clone(),
        }
    }

    /// How long a half-open probe is held: one vendor call at most (the settle margin
    /// covers the adapter's timeout), so a probe whose order died frees itself.
    pub fn probe_lease(&self) -> Duration {
        self.reconcile_settle
    }

    /// Delay before the provisioner's next look after `checks` looks.
    pub fn backoff(&self, checks: i32) -> Duration {
        let factor = 1u32 << checks.clamp(0, 16);
        self.retry_base.saturating_mul(factor).min(self.max_retry)
    }
}

/// See [`Ctx::reconcile_settle`]: the adapters' default timeout (20 s) plus margin.
pub const RECONCILE_SETTLE: Duration = Duration::from_secs(30);

/// How often an order flagged for attention is still looked at…
pub const ATTENTION_POLL: Duration = Duration::from_secs(3600);

/// …once it has been flagged this long. Until then the usual backoff goes on: an outcome
/// a vendor cannot settle yet (its lookup window still open) may settle minutes later.
pub const ATTENTION_GRACE: Duration = Duration::from_secs(600);
