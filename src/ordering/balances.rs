//! Vendor balances: read from every vendor that has a balance operation (on a schedule,
//! `workers::balances`, and shortly after each placed order, [`nudge`]), stored in
//! `vendor_balances` so every replica routes by the same numbers, and judged against a
//! low threshold.
//!
//! Routing skips a vendor whose last known balance is below an order's cost
//! ([`shortfall`]); an unknown balance, or a vendor without a balance operation, skips no
//! one (the vendor's own refusal is still definite and the next vendor is tried).
//!
//! A balance that falls below its threshold raises one `vendor.balance_low` operator alert
//! per crossing, and one going back above raises `vendor.balance_recovered`: the `low` flag
//! flips in the same transaction that records the alert, with the row locked, so however
//! many replicas read the balance a crossing alerts once.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rust_decimal::{Decimal, prelude::ToPrimitive};
use serde_json::json;

use super::Ctx;
use crate::{
    config::BalanceConfig,
    domain::mode,
    domain::money::{Currency, FxRates, Money},
    routing::RoutableOffer,
    store::{self, balances::BalanceRow},
    vendors::{VendorError, VendorId},
};

/// How long one balance read may take.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long after a placed order its vendor's balance is read: the orders placed within
/// this window share one read, which every replica's orders coalesce into (claimed in
/// Postgres).
pub const NUDGE_DEBOUNCE: Duration = Duration::from_secs(2);

/// How many of a vendor's latest placed orders make "an average order".
const AVERAGE_OVER: i64 = 50;

/// `BALANCE_*` settings, and whether alerts also go to the operator webhook.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BalanceSettings {
    pub config: BalanceConfig,
    /// `OPERATOR_WEBHOOK_URL` is set: alerts are queued for delivery too.
    pub deliver_alerts: bool,
}

/// A vendor routing leaves out because its last known balance cannot pay the order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortfall {
    pub balance: Money,
    /// The order's cost in the balance's currency.
    pub cost: Money,
}

/// The order's cost (`unit_cost` × `quantity`) against the vendor's last known `balance`,
/// in the balance's currency: `Some` when the balance is below it. An unknown balance, or
/// a cost that cannot be converted, is no shortfall.
pub fn shortfall(
    balance: Option<Money>,
    unit_cost: Money,
    quantity: u32,
    fx: &FxRates,
) -> Option<Shortfall> {
    let balance = balance?;
    let total = unit_cost.amount.checked_mul(Decimal::from(quantity))?;
    let cost = fx.convert(total, unit_cost.currency, balance.currency)?;
    (balance.amount < cost).then(|| Shortfall {
        balance,
        cost: Money::new(cost, balance.currency),
    })
}

/// [`shortfall`] of `offer` for `quantity` by its vendor's stored balance among `rows`.
pub fn shortfall_for(
    rows: &[BalanceRow],
    offer: &RoutableOffer,
    quantity: u32,
    fx: &FxRates,
) -> Option<Shortfall> {
    let row = rows.iter().find(|r| r.vendor == offer.vendor.as_str())?;
    let unit_cost = Money::new(offer.cost_amount, offer.cost_currency);
    shortfall(known(row), unit_cost, quantity, fx)
}

/// Whether routing may try `offer` for `quantity` by its vendor's last known balance. An
/// offer left out is listed in the order's routing record as `balance_below_cost`
/// (`routing::Exclusion::BalanceBelowCost`).
pub fn pays(rows: &[BalanceRow], offer: &RoutableOffer, quantity: u32, fx: &FxRates) -> bool {
    shortfall_for(rows, offer, quantity, fx).is_none()
}

/// The last balance read from a stored row; `None` when never read or not offered.
pub fn known(row: &BalanceRow) -> Option<Money> {
    if !row.supported {
        return None;
    }
    Some(Money::new(
        row.amount?,
        row.currency.as_deref()?.parse().ok()?,
    ))
}

/// Where a low threshold comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThresholdRule {
    /// `BALANCE_LOW_THRESHOLDS`.
    Absolute,
    /// `BALANCE_LOW_ORDERS` times the vendor's average order.
    AverageOrders(u32),
}

impl ThresholdRule {
    pub fn as_str(self) -> &'static str {
        match self {
            ThresholdRule::Absolute => "absolute",
            ThresholdRule::AverageOrders(_) => "average_orders",
        }
    }
}

/// The amount below which a balance is low, in the balance's currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threshold {
    pub amount: Decimal,
    pub rule: ThresholdRule,
}

/// The vendor's threshold for a balance in `currency`: its absolute one when configured,
/// else `low_orders` times the average of `recent` order costs (converted), else none
/// (no orders yet, or the relative rule is off).
pub fn threshold(
    vendor: VendorId,
    cfg: &BalanceConfig,
    currency: Currency,
    recent: &[Money],
    fx: &FxRates,
) -> Option<Threshold> {
    if let Some((_, amount)) = cfg.low_thresholds.iter().find(|(v, _)| *v == vendor) {
        return Some(Threshold {
            amount: *amount,
            rule: ThresholdRule::Absolute,
        });
    }
    if cfg.low_orders == 0 {
        return None;
    }
    let costs: Vec<Decimal> = recent
        .iter()
        .filter_map(|m| fx.convert(m.amount, m.currency, currency))
        .collect();
    if costs.is_empty() {
        return None;
    }
    let sum: Decimal = costs.iter().copied().sum();
    let average = sum.checked_div(Decimal::from(costs.len()))?;
    Some(Threshold {
        amount: average
            .checked_mul(Decimal::from(cfg.low_orders))?
            // Shown and compared in the balance's own minor units.
            .round_dp(currency.minor_units())
            .normalize(),
        rule: ThresholdRule::AverageOrders(cfg.low_orders),
    })
}

/// What one balance read gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    Balance(Money),
    /// The vendor's API has no balance operation.
    Unsupported,
    /// Timed out, unreachable, unreadable: the last known balance stands.
    Failed(String),
}

/// A balance crossing its threshold, either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crossing {
    WentLow,
    Recovered,
}

impl Crossing {
    pub fn event_type(self) -> &'static str {
        match self {
            Crossing::WentLow => super::alerts::BALANCE_LOW,
            Crossing::Recovered => super::alerts::BALANCE_RECOVERED,
        }
    }
}

/// The stored row after `read`, started at `now`, judged by `threshold`, and the crossing
/// it makes. A failed read changes neither the balance nor the low flag; a vendor without
/// a balance operation is never low; a read older than the stored one (a slower replica's)
/// changes nothing.
pub fn after_read(
    row: &BalanceRow,
    read: &Read,
    threshold: Option<Threshold>,
    now: DateTime<Utc>,
) -> (BalanceRow, Option<Crossing>) {
    let mut next = row.clone();
    if row.read_at.is_some_and(|last| last > now) {
        return (next, None);
    }
    match read {
        Read::Failed(e) => {
            next.last_error = Some(e.clone());
            next.last_error_at = Some(now);
            return (next, None);
        }
        Read::Unsupported => {
            next.supported = false;
            next.amount = None;
            next.currency = None;
            next.threshold = None;
            next.read_at = Some(now);
            next.last_error = None;
            next.last_error_at = None;
            next.low = false;
            next.low_since = None;
            return (next, None);
        }
        Read::Balance(m) => {
            next.supported = true;
            next.amount = Some(m.amount);
            next.currency = Some(m.currency.as_str().to_string());
            next.read_at = Some(now);
            next.last_error = None;
            next.last_error_at = None;
            next.threshold = threshold.map(|t| t.amount);
            next.low = threshold.is_some_and(|t| m.amount < t.amount);
        }
    }
    let crossing = match (row.low, next.low) {
        (false, true) => {
            next.low_since = Some(now);
            Some(Crossing::WentLow)
        }
        (true, false) => {
            next.low_since = None;
            Some(Crossing::Recovered)
        }
        _ => None,
    };
    (next, crossing)
}

/// Reads `vendor`'s balance now and stores it, raising an alert on a crossing. Returns the
/// stored row, or `None` for a vendor not enabled here.
pub async fn refresh(
    ctx: &Ctx,
    livemode: bool,
    vendor: VendorId,
) -> sqlx::Result<Option<BalanceRow>> {
    let Some(adapter) = ctx.vendors(livemode).adapter(vendor) else {
        return Ok(None);
    };
    let started = store::balances::db_now(&ctx.pool).await?;
    let read = match tokio::time::timeout(READ_TIMEOUT, adapter.balance()).await {
        Ok(Ok(m)) => Read::Balance(m),
        Ok(Err(VendorError::Unsupported)) => Read::Unsupported,
        Ok(Err(e)) => Read::Failed(e.to_string()),
        Err(_) => Read::Failed(format!("no answer within {}s", READ_TIMEOUT.as_secs())),
    };
    let threshold = match &read {
        Read::Balance(m) => {
            let recent = recent_costs(ctx, livemode, vendor).await?;
            threshold(
                vendor,
                &ctx.balances.config,
                m.currency,
                &recent,
                &ctx.pricing.fx,
            )
        }
        _ => None,
    };
    let mut tx = store::begin(&ctx.pool).await?;
    let row = store::balances::lock(&mut tx, livemode, vendor.as_str()).await?;
    let (next, crossing) = after_read(&row, &read, threshold, started);
    store::balances::save(&mut tx, &next).await?;
    if let Some(c) = crossing {
        let payload = alert_payload(vendor, &next, threshold);
        super::alerts::raise(
            &mut tx,
            ctx,
            livemode,
            c.event_type(),
            Some(vendor),
            &payload,
        )
        .await?;
    }
    tx.commit().await?;
    // Orders on this replica rank with the new balance from the next one on.
    ctx.cache.routing.balances(livemode).forget();
    match (&read, crossing) {
        (Read::Failed(e), _) => {
            tracing::info!(vendor = %vendor, error = %e, "could not read the vendor's balance; the last known one stands")
        }
        (Read::Balance(m), _) if next.low => {
            tracing::warn!(vendor = %vendor, balance = %m, threshold = ?next.threshold, alert = crossing.is_some(), "vendor balance is low: top it up")
        }
        (Read::Balance(m), Some(Crossing::Recovered)) => {
            tracing::info!(vendor = %vendor, balance = %m, "vendor balance recovered")
        }
        _ => {}
    }
    export(livemode, vendor, Some(&next));
    Ok(Some(next))
}

/// The vendor's latest placed order costs.
async fn recent_costs(ctx: &Ctx, livemode: bool, vendor: VendorId) -> sqlx::Result<Vec<Money>> {
    let no_relative_rule = ctx.balances.config.low_orders == 0
        || ctx
            .balances
            .config
            .low_thresholds
            .iter()
            .any(|(v, _)| *v == vendor);
    if no_relative_rule {
        return Ok(Vec::new());
    }
    let rows =
        store::balances::recent_placed_costs(&ctx.pool, livemode, vendor.as_str(), AVERAGE_OVER)
            .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(amount, cur)| Some(Money::new(amount, cur.parse().ok()?)))
        .collect())
}

fn alert_payload(
    vendor: VendorId,
    row: &BalanceRow,
    threshold: Option<Threshold>,
) -> serde_json::Value {
    let currency = row.currency.as_deref().unwrap_or_default();
    let money =
        |a: Option<Decimal>| a.map(|a| json!({"amount": a.to_string(), "currency": currency}));
    json!({
        "vendor": vendor.as_str(),
        "balance": money(row.amount),
        "threshold": money(threshold.map(|t| t.amount)),
        "threshold_rule": threshold.map(|t| t.rule.as_str()),
        "read_at": row.read_at,
    })
}

/// Reads now the balance of each enabled vendor never read yet (not even a failed read),
/// so that the first look after a start need not wait for the schedule: concurrently,
/// each read bounded by [`READ_TIMEOUT`], and once per vendor, since a failed read is
/// recorded too.
pub async fn read_unread(ctx: &Ctx, livemode: bool) -> sqlx::Result<()> {
    let rows = store::balances::all(&ctx.pool, livemode).await?;
    let unread: Vec<VendorId> = ctx
        .vendors(livemode)
        .ids()
        .into_iter()
        .filter(|v| {
            !rows.iter().any(|r| {
                r.vendor == v.as_str() && (r.read_at.is_some() || r.last_error_at.is_some())
            })
        })
        .collect();
    refresh_each(ctx, livemode, unread).await;
    Ok(())
}

/// Reads these vendors' balances concurrently; a database error on one is logged, the
/// others go on.
async fn refresh_each(ctx: &Ctx, livemode: bool, vendors: Vec<VendorId>) {
    let tasks: Vec<_> = vendors
        .into_iter()
        .map(|v| {
            let ctx = ctx.clone();
            tokio::spawn(async move { (v, refresh(&ctx, livemode, v).await) })
        })
        .collect();
    for t in tasks {
        if let Ok((v, Err(e))) = t.await {
            tracing::warn!(vendor = %v, error = %e, "could not store the vendor's balance");
        }
    }
}

/// Asks for a read of `vendor`'s balance shortly after an order was placed there, off the
/// order's path: one planned read per vendor at a time on this replica (the orders in
/// between share it), one read per [`NUDGE_DEBOUNCE`] across replicas, errors only logged.
pub fn nudge(ctx: &Ctx, livemode: bool, vendor: VendorId) {
    if !ctx.cache.balance_nudges.plan(livemode, vendor) {
        return;
    }
    let ctx = ctx.clone();
    tokio::spawn(async move {
        tokio::time::sleep(NUDGE_DEBOUNCE).await;
        ctx.cache.balance_nudges.started(livemode, vendor);
        let claimed =
            store::balances::claim_refresh(&ctx.pool, livemode, vendor.as_str(), NUDGE_DEBOUNCE)
                .await;
        let r = match claimed {
            Ok(true) => refresh(&ctx, livemode, vendor).await.map(|_| ()),
            Ok(false) => Ok(()),
            Err(e) => Err(e),
        };
        if let Err(e) = r {
            tracing::warn!(vendor = %vendor, error = %e, "could not refresh the vendor's balance after an order");
        }
    });
}

/// Sets `vendor_balance{mode, vendor}` (in the balance's own currency) and
/// `vendor_balance_low{mode, vendor}` (1 while below its threshold) from a stored row.
pub fn export(livemode: bool, vendor: VendorId, row: Option<&BalanceRow>) {
    let (low, mode) = (row.is_some_and(|r| r.low), mode::label(livemode));
    metrics::gauge!("vendor_balance_low", "mode" => mode, "vendor" => vendor.as_str())
        .set(if low { 1.0 } else { 0.0 });
    if let Some(amount) = row.and_then(known).and_then(|m| m.amount.to_f64()) {
        metrics::gauge!("vendor_balance", "mode" => mode, "vendor" => vendor.as_str()).set(amount);
    }
}

/// Every enabled vendor's stored balance, exported as gauges (each replica shows the
/// balances any replica read).
pub async fn export_stored(ctx: &Ctx, livemode: bool) -> sqlx::Result<Vec<BalanceRow>> {
    let rows = store::balances::all(&ctx.pool, livemode).await?;
    for v in ctx.vendors(livemode).ids() {
        export(livemode, v, rows.iter().find(|r| r.vendor == v.as_str()));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn money(a: &str, c: &str) -> Money {
        Money::new(dec(a), c.parse().unwrap())
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn a_balance_below_the_orders_cost_is_a_shortfall_in_its_own_currency() {
        let fx = FxRates::builtin();
        // 3 × 4.00 USD = 12 USD against 10 USD.
        let s = shortfall(Some(money("10", "USD")), money("4.00", "USD"), 3, &fx).unwrap();
        assert_eq!(s.cost, money("12.00", "USD"));
        assert_eq!(s.balance, money("10", "USD"));
        // Exactly enough pays.
        assert!(shortfall(Some(money("12", "USD")), money("4", "USD"), 3, &fx).is_none());
        // 70 HKD is about 8.96 USD: a 9 USD balance pays, an 8 USD one does not.
        assert!(shortfall(Some(money("9", "USD")), money("70", "HKD"), 1, &fx).is_none());
        let s = shortfall(Some(money("8", "USD")), money("70", "HKD"), 1, &fx).unwrap();
        assert_eq!(s.cost.currency, "USD".parse().unwrap());
        // Unknown balance, or no rate to compare by: nobody is skipped.
        assert!(shortfall(None, money("4", "USD"), 1, &fx).is_none());
        assert!(shortfall(Some(money("1", "USD")), money("4", "XAF"), 1, &fx).is_none());
    }

    #[test]
    fn only_a_read_balance_is_known() {
        let mut row = BalanceRow {
            vendor: "esimgo".into(),
            supported: true,
            ..BalanceRow::default()
        };
        assert_eq!(known(&row), None, "never read");
        row.amount = Some(dec("5"));
        row.currency = Some("GBP".into());
        assert_eq!(known(&row), Some(money("5", "GBP")));
        row.supported = false;
        assert_eq!(known(&row), None, "no balance operation");
    }

    #[test]
    fn an_absolute_threshold_wins_else_n_average_orders() {
        let fx = FxRates::builtin();
        let cfg = BalanceConfig {
            low_thresholds: vec![(VendorId::EsimGo, dec("50"))],
            low_orders: 10,
            ..BalanceConfig::default()
        };
        let usd = Currency::USD;
        let recent = [money("4", "USD"), money("6", "USD")];
        let t = threshold(VendorId::EsimGo, &cfg, usd, &recent, &fx).unwrap();
        assert_eq!((t.amount, t.rule), (dec("50"), ThresholdRule::Absolute));
        let t = threshold(VendorId::EsimAccess, &cfg, usd, &recent, &fx).unwrap();
        assert_eq!(
            (t.amount, t.rule),
            (dec("50"), ThresholdRule::AverageOrders(10))
        );
        // Costs in another currency are converted to the balance's.
        let t = threshold(VendorId::EsimFx, &cfg, usd, &[money("70", "HKD")], &fx).unwrap();
        assert_eq!(t.amount, dec("89.6"));
        // No orders yet, or the relative rule off: no threshold.
        assert!(threshold(VendorId::EsimAccess, &cfg, usd, &[], &fx).is_none());
        let off = BalanceConfig {
            low_orders: 0,
            ..BalanceConfig::default()
        };
        assert!(threshold(VendorId::EsimAccess, &off, usd, &recent, &fx).is_none());
    }

    fn read(
        row: &BalanceRow,
        amount: &str,
        threshold: &str,
        t: i64,
    ) -> (BalanceRow, Option<Crossing>) {
        let th = Threshold {
            amount: dec(threshold),
            rule: ThresholdRule::Absolute,
        };
        after_read(row, &Read::Balance(money(amount, "USD")), Some(th), at(t))
    }

    #[test]
    fn a_crossing_alerts_once_each_way() {
        let row = BalanceRow {
            vendor: "esimgo".into(),
            supported: true,
            ..BalanceRow::default()
        };
        let (row, c) = read(&row, "100", "50", 0);
        assert_eq!((row.low, c), (false, None));
        let (row, c) = read(&row, "40", "50", 1);
        assert_eq!((row.low, c), (true, Some(Crossing::WentLow)));
        assert_eq!(row.low_since, Some(at(1)));
        // Still low: no second alert.
        let (row, c) = read(&row, "30", "50", 2);
        assert_eq!((row.low, c), (true, None));
        assert_eq!(row.low_since, Some(at(1)));
        // A failed read leaves the last known balance and the flag.
        let (row, c) = after_read(&row, &Read::Failed("timeout".into()), None, at(3));
        assert_eq!((row.low, c, row.amount), (true, None, Some(dec("30"))));
        assert_eq!(row.last_error.as_deref(), Some("timeout"));
        // At the threshold is not low: recovered, and the next drop alerts again.
        let (row, c) = read(&row, "50", "50", 4);
        assert_eq!((row.low, c), (false, Some(Crossing::Recovered)));
        assert_eq!(row.last_error, None);
        let (row, c) = read(&row, "49.99", "50", 5);
        assert_eq!((row.low, c), (true, Some(Crossing::WentLow)));
        // A read that started before the stored one (a slower replica's) changes nothing.
        let (stale, c) = read(&row, "500", "50", 4);
        assert_eq!((&stale, c), (&row, None));
        // A vendor without a balance operation is never low, and says so.
        let (row, c) = after_read(&row, &Read::Unsupported, None, at(6));
        assert_eq!(
            (row.low, row.supported, row.amount, c),
            (false, false, None, None)
        );
    }
}
