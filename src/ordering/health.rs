//! Whether a vendor is healthy, the one model routing and the admin API share, and the
//! vendors' status as operators see it (sync health, circuit breaker, recent order
//! attempts, offers, prepaid balance as last stored by `super::balances`).
//!
//! A vendor's health has three parts: its catalogue sync (below), its circuit breaker
//! ([`super::breaker`]: routing skips a vendor whose breaker is open) and the outcome of
//! its real order attempts over `VENDOR_HEALTH_WINDOW` ([`super::RoutingSettings`]), read from the attempts every replica
//! records, so that every replica reports the same numbers.
//!
//! The rule: a vendor is healthy when its last catalogue sync succeeded and no failed sync
//! came after that success. A vendor never synced here is `Unknown`: routing does not hold
//! it back (it has no synced offers to route to anyway), the admin view does not call it
//! healthy.

use chrono::{DateTime, Utc};

use super::{
    Ctx,
    breaker::{self, BreakerState},
    error::OrderingResult,
};
use crate::{
    store::{
        self,
        balances::BalanceRow,
        breakers::{AttemptWindow, BreakerRow},
        offers::SyncState,
    },
    vendors::{VendorId, registry::VendorMode},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Healthy,
    Unhealthy,
    /// No sync recorded for this vendor yet.
    Unknown,
}

/// The health of one vendor by its sync record.
pub fn of_sync(sync: Option<&SyncState>) -> Health {
    let Some(s) = sync else {
        return Health::Unknown;
    };
    match (s.last_success_at, s.last_error_at) {
        (Some(ok), Some(failed)) if failed > ok => Health::Unhealthy,
        (Some(_), _) => Health::Healthy,
        (None, Some(_)) => Health::Unhealthy,
        (None, None) => Health::Unknown,
    }
}

/// The record routing weighs for `vendor` (`routing::VendorStats`): its attempts in the
/// window (`store::breakers::attempt_window`) and whether its catalogue sync is fine (a
/// vendor never synced is not held back: only a failed sync is evidence).
pub fn stats_of(
    windows: &[AttemptWindow],
    states: &[SyncState],
    vendor: VendorId,
) -> crate::routing::VendorStats {
    let w = windows.iter().find(|w| w.vendor == vendor.as_str());
    crate::routing::VendorStats {
        placed: w.map_or(0, |w| w.placed.max(0) as u64),
        unknown: w.map_or(0, |w| w.unknown.max(0) as u64),
        latency_p50_ms: w.and_then(|w| w.latency_p50_ms),
        sync_healthy: of(states, vendor) != Health::Unhealthy,
    }
}

/// The health of `vendor` among the sync records `states`.
pub fn of(states: &[SyncState], vendor: VendorId) -> Health {
    of_sync(states.iter().find(|s| s.vendor == vendor.as_str()))
}

/// A vendor's circuit breaker as it stands now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerView {
    pub state: BreakerState,
    pub opened_at: Option<DateTime<Utc>>,
    /// The end of the cool-down (open) or of the last one (half-open).
    pub until: Option<DateTime<Utc>>,
    pub consecutive_failures: u32,
}

impl BreakerView {
    pub fn of(row: Option<&BreakerRow>, now: DateTime<Utc>) -> BreakerView {
        match row {
            None => BreakerView {
                state: BreakerState::Closed,
                opened_at: None,
                until: None,
                consecutive_failures: 0,
            },
            Some(r) => BreakerView {
                state: breaker::state(r, now),
                opened_at: r.opened_at,
                until: r.open_until,
                consecutive_failures: r.consecutive_failures.max(0) as u32,
            },
        }
    }
}

/// One vendor as operators see it.
#[derive(Debug, Clone)]
pub struct VendorReport {
    pub id: VendorId,
    /// `None` when the vendor is not enabled here.
    pub mode: Option<VendorMode>,
    /// Enabled, [`Health::Healthy`] and its breaker closed.
    pub healthy: bool,
    pub breaker: BreakerView,
    /// Its order attempts over the health window.
    pub attempts: AttemptWindow,
    /// Active offers in the stored catalogue.
    pub offer_count: u64,
    pub sync: Option<SyncState>,
    /// The prepaid balance as last read and stored (`super::balances`); `None` for a
    /// vendor not enabled or never read.
    pub balance: Option<BalanceRow>,
}

/// Every vendor of one mode, enabled or not: sync health, offers and balance.
pub async fn vendors_status(ctx: &Ctx, livemode: bool) -> OrderingResult<Vec<VendorReport>> {
    let mut states = store::offers::sync_states(&ctx.pool).await?;
    states.retain(|s| s.livemode == livemode);
    let mut counts = store::offers::active_counts(&ctx.pool).await?;
    counts.retain(|(live, _, _)| *live == livemode);
    let (mut breakers, now) = store::breakers::all(&ctx.pool).await?;
    breakers.retain(|b| b.livemode == livemode);
    let mut windows = store::breakers::attempt_window(&ctx.pool, ctx.routing.health_window).await?;
    windows.retain(|w| w.livemode == livemode);
    super::balances::read_unread(ctx, livemode).await?;
    let balances = super::balances::export_stored(ctx, livemode).await?;
    Ok(VendorId::ALL
        .into_iter()
        .map(|id| {
            let mode = ctx.vendors(livemode).get(id).map(|e| e.mode);
            let sync = states.iter().find(|s| s.vendor == id.as_str()).cloned();
            let breaker = BreakerView::of(breakers.iter().find(|b| b.vendor == id.as_str()), now);
            if mode.is_some() {
                breaker::export(livemode, id, breaker.state);
            }
            VendorReport {
                id,
                mode,
                healthy: mode.is_some()
                    && of_sync(sync.as_ref()) == Health::Healthy
                    && breaker.state == BreakerState::Closed,
                attempts: windows
                    .iter()
                    .find(|w| w.vendor == id.as_str())
                    .cloned()
                    .unwrap_or_else(|| AttemptWindow {
                        livemode,
                        vendor: id.as_str().to_string(),
                        ..AttemptWindow::default()
                    }),
                breaker,
                offer_count: counts
                    .iter()
                    .find(|(_, v, _)| v == id.as_str())
                    .map_or(0, |(_, _, n)| *n as u64),
                sync,
                balance: balances
                    .iter()
                    .find(|b| mode.is_some() && b.vendor == id.as_str())
                    .cloned(),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, Utc};

    use super::*;

    fn sync(ok: Option<i64>, failed: Option<i64>) -> SyncState {
        let at = |secs: i64| Utc::now() - Duration::seconds(secs);
        SyncState {
            vendor: "esimaccess".into(),
            last_success_at: ok.map(at),
            last_error_at: failed.map(at),
            last_error: failed.map(|_| "boom".into()),
            ..SyncState::default()
        }
    }

    #[test]
    fn a_sync_that_failed_after_the_last_success_is_unhealthy() {
        assert_eq!(of_sync(None), Health::Unknown);
        assert_eq!(of_sync(Some(&sync(Some(60), None))), Health::Healthy);
        assert_eq!(of_sync(Some(&sync(Some(60), Some(10)))), Health::Unhealthy);
        assert_eq!(of_sync(Some(&sync(Some(10), Some(60)))), Health::Healthy);
        assert_eq!(of_sync(Some(&sync(None, Some(10)))), Health::Unhealthy);
        assert_eq!(of_sync(Some(&sync(None, None))), Health::Unknown);
    }
}
