//! The circuit breaker of each vendor, shared by every replica through `vendor_breakers`.
//!
//! ```text
//! closed ──(BREAKER_FAILURES unknown/unreachable outcomes in a row)──▶ open
//! open ──(BREAKER_COOLDOWN passes)──▶ half_open ──(one order claims the probe)──▶ …
//!   probe answered (placed or a definite refusal) ──▶ closed
//!   probe failed ──▶ open for another cool-down
//! ```
//! A definite refusal (sold out, balance) is an answer, not a failure: it resets the count.
//! The breaker only filters the candidates of new orders (and of an order continuing after
//! a refusal); reconciles, polling and callbacks go on for a vendor whose breaker is open.
//! While every candidate's breaker is closed, a replica reuses its read of the rows for up
//! to a second (`cache::routing`); whatever this replica writes to them drops that copy.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::Ctx;
use crate::{
    cache::routing::BreakerRead,
    store::{self, breakers::BreakerRow},
    vendors::VendorId,
};

/// `BREAKER_FAILURES` and `BREAKER_COOLDOWN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSettings {
    pub failures: u32,
    pub cooldown: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        BreakerSettings {
            failures: 3,
            cooldown: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    /// New orders skip the vendor until `open_until`.
    Open,
    /// The cool-down is over: one order at a time may try the vendor.
    HalfOpen,
}

impl BreakerState {
    pub const ALL: [BreakerState; 3] = [
        BreakerState::Closed,
        BreakerState::Open,
        BreakerState::HalfOpen,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

/// What one vendor call told about the vendor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// The vendor answered: it took the order or definitely refused it.
    Answered,
    /// No usable answer: a timeout, a dropped connection, unreachable.
    Failed,
}

pub fn state(row: &BreakerRow, now: DateTime<Utc>) -> BreakerState {
    match row.open_until {
        None => BreakerState::Closed,
        Some(until) if now < until => BreakerState::Open,
        Some(_) => BreakerState::HalfOpen,
    }
}

fn cooldown_of(s: &BreakerSettings) -> chrono::Duration {
    chrono::Duration::from_std(s.cooldown).unwrap_or(chrono::Duration::MAX)
}

/// The row after a call's `signal`; `probe` is the probe version the caller claimed, if
/// the call was the half-open probe (a stale probe's version no longer matches).
pub fn after(
    row: &BreakerRow,
    signal: Signal,
    probe: Option<i64>,
    now: DateTime<Utc>,
    s: &BreakerSettings,
) -> BreakerRow {
    let mut next = row.clone();
    match signal {
        Signal::Answered => {
            next.consecutive_failures = 0;
            next.opened_at = None;
            next.open_until = None;
            next.probe_expires_at = None;
        }
        Signal::Failed => {
            next.consecutive_failures = row.consecutive_failures.saturating_add(1);
            let is_probe = probe == Some(row.probe_version) && row.probe_expires_at.is_some();
            let trips = state(row, now) == BreakerState::Closed
                && next.consecutive_failures as i64 >= i64::from(s.failures);
            if trips || (is_probe && state(row, now) == BreakerState::HalfOpen) {
                next.opened_at = Some(now);
                next.open_until = Some(now + cooldown_of(s));
                next.probe_expires_at = None;
            }
        }
    }
    next
}

/// The row with the probe claimed for `lease`, or `None` when this caller may not try the
/// vendor now (open, or another order holds an unexpired probe).
pub fn claim_probe(row: &BreakerRow, now: DateTime<Utc>, lease: Duration) -> Option<BreakerRow> {
    if state(row, now) != BreakerState::HalfOpen
        || row.probe_expires_at.is_some_and(|until| until > now)
    {
        return None;
    }
    let mut next = row.clone();
    next.probe_version += 1;
    next.probe_expires_at =
        Some(now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX));
    Some(next)
}

/// Sets `vendor_breaker_state{mode, vendor, state}` to 1 for the current state, 0 for the
/// others.
pub fn export(livemode: bool, vendor: VendorId, current: BreakerState) {
    for st in BreakerState::ALL {
        metrics::gauge!("vendor_breaker_state", "mode" => crate::domain::mode::label(livemode), "vendor" => vendor.as_str(), "state" => st.as_str())
            .set(if st == current { 1.0 } else { 0.0 });
    }
}

/// Each vendor's breaker state and whether new orders may call it: `Some(None)` freely,
/// `Some(Some(v))` as the half-open probe holding version `v`, `None` not at all.
/// `vendors` are the candidates. With `claim` false (a view, not an order) a half-open
/// vendor counts as admitted without claiming its probe.
pub async fn admit(
    ctx: &Ctx,
    livemode: bool,
    vendors: &[VendorId],
    claim_probes: bool,
) -> sqlx::Result<Vec<(VendorId, BreakerState, Option<Option<i64>>)>> {
    let breakers = &ctx.cache.routing.breakers;
    let load = || async {
        let (rows, db_now) = store::breakers::all(&ctx.pool).await?;
        Ok(BreakerRead { rows, db_now })
    };
    let row_of = |read: &BreakerRead, v: VendorId| {
        read.rows
            .iter()
            .find(|r| r.vendor == v.as_str() && r.livemode == livemode)
            .cloned()
    };
    let (began, mut read) = breakers.get_with_time(load).await?;
    let mut now = read.now(began);
    // Only a closed breaker is taken from memory: anything else is read again, so an open
    // breaker's end and a half-open probe are judged on the stored row.
    if vendors
        .iter()
        .any(|&v| row_of(&read, v).is_some_and(|r| state(&r, now) != BreakerState::Closed))
    {
        breakers.forget();
        let (began, again) = breakers.get_with_time(load).await?;
        (read, now) = (again.clone(), again.now(began));
    }
    let mut out = Vec::with_capacity(vendors.len());
    for &v in vendors {
        let row = row_of(&read, v);
        let row = row.as_ref();
        let st = row.map_or(BreakerState::Closed, |r| state(r, now));
        export(livemode, v, st);
        let admitted = match st {
            BreakerState::Closed => Some(None),
            BreakerState::Open => None,
            BreakerState::HalfOpen if !claim_probes => Some(None),
            BreakerState::HalfOpen => claim(ctx, livemode, v).await?.map(Some),
        };
        out.push((v, st, admitted));
    }
    Ok(out)
}

/// Claims the half-open probe of `vendor` in its own transaction.
async fn claim(ctx: &Ctx, livemode: bool, vendor: VendorId) -> sqlx::Result<Option<i64>> {
    let mut tx = store::begin(&ctx.pool).await?;
    let (row, now) = store::breakers::lock(&mut tx, livemode, vendor.as_str()).await?;
    let Some(next) = claim_probe(&row, now, ctx.probe_lease()) else {
        return Ok(None);
    };
    store::breakers::save(&mut tx, &next).await?;
    tx.commit().await?;
    ctx.cache.routing.breakers.forget();
    tracing::info!(vendor = %vendor, "breaker half-open: this order probes the vendor");
    Ok(Some(next.probe_version))
}

/// Records what a vendor call told about the vendor. A failure to record is logged, never
/// the order's failure: the breaker is advice, the order's own record is the fact.
pub async fn record(
    ctx: &Ctx,
    livemode: bool,
    vendor: VendorId,
    signal: Signal,
    probe: Option<i64>,
) {
    if let Err(e) = try_record(ctx, livemode, vendor, signal, probe).await {
        tracing::warn!(vendor = %vendor, error = %e, "could not record the vendor's breaker outcome");
    }
}

async fn try_record(
    ctx: &Ctx,
    livemode: bool,
    vendor: VendorId,
    signal: Signal,
    probe: Option<i64>,
) -> sqlx::Result<()> {
    let breakers = &ctx.cache.routing.breakers;
    if signal == Signal::Answered {
        // An answer's effect does not depend on the row (see `after`): nothing to write
        // for a vendor this replica read as untouched within the last second (a failure
        // another replica recorded meanwhile keeps its count a little longer), else one
        // statement, which writes nothing for a vendor that was already fine.
        let untouched = breakers.peek().is_some_and(|(_, read)| {
            !read.rows.iter().any(|r| {
                r.vendor == vendor.as_str()
                    && r.livemode == livemode
                    && (r.consecutive_failures != 0
                        || r.open_until.is_some()
                        || r.probe_expires_at.is_some())
            })
        });
        if probe.is_some() || !untouched {
            if store::breakers::reset(&ctx.pool, livemode, vendor.as_str()).await? {
                tracing::info!(vendor = %vendor, "breaker closed: the vendor answered");
            }
            breakers.forget();
        }
        export(livemode, vendor, BreakerState::Closed);
        return Ok(());
    }
    let mut tx = store::begin(&ctx.pool).await?;
    let (row, now) = store::breakers::lock(&mut tx, livemode, vendor.as_str()).await?;
    let next = after(&row, signal, probe, now, &ctx.breaker);
    if next != row {
        store::breakers::save(&mut tx, &next).await?;
    }
    tx.commit().await?;
    breakers.forget();
    let is = state(&next, now);
    if row.opened_at != next.opened_at {
        tracing::warn!(vendor = %vendor, failures = next.consecutive_failures, cooldown = ?ctx.breaker.cooldown, "breaker open: new orders skip this vendor");
    }
    export(livemode, vendor, is);
    Ok(())
}

/// Gives back a probe claimed for a call that was never made.
pub async fn release(ctx: &Ctx, livemode: bool, vendor: VendorId, probe: i64) {
    if let Err(e) =
        store::breakers::release_probe(&ctx.pool, livemode, vendor.as_str(), probe).await
    {
        tracing::warn!(vendor = %vendor, error = %e, "could not release the breaker probe");
    }
    ctx.cache.routing.breakers.forget();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> BreakerSettings {
        BreakerSettings {
            failures: 3,
            cooldown: Duration::from_secs(60),
        }
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    fn fail(row: &BreakerRow, now: DateTime<Utc>) -> BreakerRow {
        after(row, Signal::Failed, None, now, &settings())
    }

    #[test]
    fn opens_after_n_failures_in_a_row_and_an_answer_resets_the_count() {
        let r = BreakerRow::closed(true, "esimgo");
        let r = fail(&fail(&r, at(0)), at(1));
        assert_eq!(state(&r, at(1)), BreakerState::Closed);
        assert_eq!(r.consecutive_failures, 2);
        // A definite refusal (sold out) is an answer: the count starts again.
        let r = after(&r, Signal::Answered, None, at(2), &settings());
        assert_eq!(r.consecutive_failures, 0);
        let r = fail(&fail(&r, at(3)), at(4));
        assert_eq!(state(&r, at(4)), BreakerState::Closed);
        let r = fail(&r, at(5));
        assert_eq!(state(&r, at(5)), BreakerState::Open);
        assert_eq!(r.opened_at, Some(at(5)));
        assert_eq!(r.open_until, Some(at(65)));
        // Failures of orders already in flight while open do not extend the cool-down.
        let again = fail(&r, at(6));
        assert_eq!(again.open_until, Some(at(65)));
    }

    #[test]
    fn half_open_after_the_cooldown_admits_exactly_one_probe() {
        let mut r = BreakerRow::closed(true, "esimgo");
        for i in 0..3 {
            r = fail(&r, at(i));
        }
        assert!(
            claim_probe(&r, at(30), Duration::from_secs(30)).is_none(),
            "still open"
        );
        assert_eq!(state(&r, at(62)), BreakerState::HalfOpen);
        let claimed = claim_probe(&r, at(62), Duration::from_secs(30)).unwrap();
        assert!(claim_probe(&claimed, at(63), Duration::from_secs(30)).is_none());
        // A probe whose holder vanished expires; then another order may probe.
        let again = claim_probe(&claimed, at(93), Duration::from_secs(30)).unwrap();
        assert_eq!(again.probe_version, claimed.probe_version + 1);
    }

    #[test]
    fn the_probe_closes_on_an_answer_and_reopens_on_a_failure() {
        let mut r = BreakerRow::closed(true, "esimgo");
        for i in 0..3 {
            r = fail(&r, at(i));
        }
        let probing = claim_probe(&r, at(62), Duration::from_secs(30)).unwrap();
        let v = Some(probing.probe_version);
        let closed = after(&probing, Signal::Answered, v, at(63), &settings());
        assert_eq!(state(&closed, at(63)), BreakerState::Closed);
        assert_eq!(closed.consecutive_failures, 0);
        let reopened = after(&probing, Signal::Failed, v, at(63), &settings());
        assert_eq!(state(&reopened, at(63)), BreakerState::Open);
        assert_eq!(reopened.open_until, Some(at(123)));
        // A failure that is not the probe's (a stale order) leaves the half-open state.
        let stale = after(
            &probing,
            Signal::Failed,
            Some(probing.probe_version - 1),
            at(63),
            &settings(),
        );
        assert_eq!(state(&stale, at(63)), BreakerState::HalfOpen);
    }
}
