//! Applies verified vendor events to orders and eSIMs, idempotently and never backwards.
//!
//! A signed event (eSIM Go, eSIMfx) may be applied as it is. An unsigned one is a hint: the
//! gateway re-reads the order or eSIM from the vendor's API and applies only that.
//!
//! Every event is stored raw first, in its own commit ([`receive`]), then applied under a
//! lease on the stored row; an event not in a final state (never applied because the
//! process died, waiting for its order, or failed) is applied again by
//! `workers::callbacks`, and a vendor's redelivery of it is applied rather than dropped.

use std::time::Duration;

pub mod ingest;
mod matched;

use crate::{
    domain::{attempt::AttemptOutcome, ids::printable},
    ordering::{
        Ctx,
        events::{self, Reading},
        lease::Lease,
        purchase,
        usage::esim_state,
    },
    store::{
        self,
        events::{EventRow, NewEvent},
        orders::OrderRow,
    },
    vendors::{
        CallbackTrust, OrderState, VendorEvent, VendorEventKind, VendorId, VendorOrderStatus,
    },
};

/// Why an event could not be applied (it stays due and is tried again).
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// Another worker took the order over mid-apply.
    #[error("the order's lease was taken over by another worker")]
    LeaseLost,
}

impl From<purchase::PurchaseError> for CallbackError {
    fn from(e: purchase::PurchaseError) -> Self {
        match e {
            purchase::PurchaseError::Database(e) => CallbackError::Database(e),
            purchase::PurchaseError::LeaseLost => CallbackError::LeaseLost,
        }
    }
}

/// What became of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Applied,
    /// Refers to an order or eSIM not known (yet): kept for another try.
    Waiting,
    /// Nothing to do (a ping, or a kind the gateway does not act on).
    Ignored,
    /// An unsigned callback applied because it matched the order we placed in every detail
    /// (weaker than a signed one; see `matched`).
    MatchedHint,
}

impl Applied {
    pub fn as_str(self) -> &'static str {
        match self {
            Applied::Applied => "applied",
            Applied::Waiting => "waiting",
            Applied::Ignored => "ignored",
            Applied::MatchedHint => "matched_hint",
        }
    }
}

/// The order an event is about, by our id, the vendor's order number or the ICCID; only
/// an order of the callback's mode (a simulator's callback never touches a live order).
async fn find_order(
    ctx: &Ctx,
    livemode: bool,
    vendor: VendorId,
    ev: &VendorEvent,
) -> sqlx::Result<Option<OrderRow>> {
    if let Some(id) = &ev.order_id {
        if let Some(o) = store::orders::get(&ctx.pool, id).await? {
            if o.livemode == livemode {
                return Ok(Some(o));
            }
        }
    }
    if let Some(r) = &ev.vendor_reference {
        let found = store::orders::by_vendor_reference(&ctx.pool, livemode, vendor, r).await?;
        if found.is_some() {
            return Ok(found);
        }
    }
    if let Some(iccid) = &ev.iccid {
        if let Some(e) = own_esim(ctx, livemode, iccid).await? {
            if e.vendor == vendor.as_str() {
                return store::orders::get(&ctx.pool, &e.order_id).await;
            }
        }
    }
    Ok(None)
}

/// The eSIM with this ICCID if it is of this mode.
async fn own_esim(
    ctx: &Ctx,
    livemode: bool,
    iccid: &str,
) -> sqlx::Result<Option<store::esims::EsimRow>> {
    Ok(store::esims::get(&ctx.pool, iccid)
        .await?
        .filter(|e| e.livemode == livemode))
}

pub async fn apply(
    ctx: &Ctx,
    livemode: bool,
    vendor: VendorId,
    trust: CallbackTrust,
    ev: &VendorEvent,
) -> Result<Applied, CallbackError> {
    match &ev.kind {
        VendorEventKind::Ping | VendorEventKind::Other { .. } => Ok(Applied::Ignored),
        VendorEventKind::LowBalance { exhausted } => {
            // An account alert for operators; `/admin/vendors` shows the balance itself,
            // read again now (debounced) so routing and our own low-balance alert see it.
            metrics::counter!("vendor_low_balance_alerts_total", "vendor" => vendor.as_str())
                .increment(1);
            tracing::warn!(%vendor, exhausted, "vendor reports our prepaid balance is low");
            crate::ordering::balances::nudge(ctx, livemode, vendor);
            Ok(Applied::Applied)
        }
        VendorEventKind::OrderReady | VendorEventKind::OrderFailed => {
            let Some(order) = find_order(ctx, livemode, vendor, ev).await? else {
                return Ok(Applied::Waiting);
            };
            if !order.status.is_unfinished() {
                return Ok(Applied::Applied);
            }
            match (trust, &ev.profile, &ev.kind) {
                (CallbackTrust::Verified, Some(profile), VendorEventKind::OrderReady) => {
                    // Writing the order needs its lease, like any other worker.
                    let Some(leased) =
                        store::orders::lease_one(&ctx.pool, &order.id, ctx.lease).await?
                    else {
                        return Ok(Applied::Waiting);
                    };
                    let lease = Lease::hold(&ctx.pool, &leased.id, leased.lease_version, ctx.lease);
                    let state = OrderState {
                        charged: None,
                        vendor_reference: ev.vendor_reference.clone(),
                        status: VendorOrderStatus::Completed,
                        esims: vec![profile.clone()],
                    };
                    let attempts = store::orders::attempts(&ctx.pool, &leased.id).await?;
                    let step = match attempts.iter().rev().find(|a| a.vendor == vendor.as_str()) {
                        Some(a) if a.outcome.is_open() => {
                            Some(purchase::placed(ctx, &leased, &lease, a, state, None, None).await)
                        }
                        Some(a) if a.outcome == AttemptOutcome::Placed => Some(
                            purchase::apply_state(ctx, &leased, &lease, vendor.as_str(), state)
                                .await,
                        ),
                        // The vendor delivers an order we concluded it never took (and may
                        // have bought elsewhere): not applied, an operator must look.
                        Some(a) => {
                            let reason = format!(
                                "{vendor} reports an eSIM ready for attempt {} that was concluded {}: check at the vendor",
                                a.seq, a.outcome
                            );
                            let mut tx = store::begin(&ctx.pool).await?;
                            if store::orders::flag_attention(&mut tx, &leased.id, &reason).await? {
                                tracing::warn!(order_id = %leased.id, %vendor, outcome = %a.outcome, "order needs attention: a vendor delivered an attempt concluded as not bought");
                            }
                            tx.commit().await?;
                            Some(Ok(purchase::Step::Provisioning))
                        }
                        None => None,
                    };
                    lease.release(&ctx.pool, ctx.retry_base).await?;
                    match step {
                        None => return Ok(Applied::Ignored),
                        Some(Err(purchase::PurchaseError::LeaseLost)) => {
                            return Ok(Applied::Waiting);
                        }
                        Some(r) => {
                            r?;
                        }
                    }
                }
                (CallbackTrust::Hint, Some(_), VendorEventKind::OrderReady) => {
                    // Completing from a matched hint writes the order: it needs the lease.
                    let Some(leased) =
                        store::orders::lease_one(&ctx.pool, &order.id, ctx.lease).await?
                    else {
                        return Ok(Applied::Waiting);
                    };
                    let lease = Lease::hold(&ctx.pool, &leased.id, leased.lease_version, ctx.lease);
                    let matched = matched::apply_if_matched(ctx, vendor, &leased, &lease, ev).await;
                    lease.release(&ctx.pool, ctx.retry_base).await?;
                    match matched {
                        Ok(Some(applied)) => return Ok(applied),
                        Ok(None) => {}
                        Err(purchase::PurchaseError::LeaseLost) => return Ok(Applied::Waiting),
                        Err(e) => return Err(e.into()),
                    }
                    crate::hints::poke_order(ctx, &order.id).await?;
                }
                // Unsigned, or a failure: ask the vendor (the provisioner does it now).
                _ => {
                    crate::hints::poke_order(ctx, &order.id).await?;
                }
            }
            Ok(Applied::Applied)
        }
        VendorEventKind::EsimStatus { status } => {
            let Some(iccid) = ev.iccid.as_deref() else {
                return Ok(Applied::Ignored);
            };
            let Some(esim) = own_esim(ctx, livemode, iccid).await? else {
                return Ok(Applied::Waiting);
            };
            match trust {
                CallbackTrust::Verified => {
                    let mut tx = store::begin(&ctx.pool).await?;
                    events::transition_esim(&mut tx, iccid, esim_state(*status), ev.occurred_at)
                        .await?;
                    tx.commit().await?;
                }
                CallbackTrust::Hint => refresh_later(ctx, esim),
            }
            Ok(Applied::Applied)
        }
        VendorEventKind::Usage {
            used_bytes,
            total_bytes,
            remaining_bytes,
            threshold_percent,
        } => {
            let Some(iccid) = ev.iccid.as_deref() else {
                return Ok(Applied::Ignored);
            };
            let Some(esim) = own_esim(ctx, livemode, iccid).await? else {
                return Ok(Applied::Waiting);
            };
            let used = used_bytes.or_else(|| {
                Some(
                    total_bytes
                        .as_ref()?
                        .saturating_sub(*remaining_bytes.as_ref()?),
                )
            });
            match (trust, used) {
                (CallbackTrust::Verified, Some(used)) => {
                    let reading = Reading {
                        used_bytes: i64::try_from(used).unwrap_or(i64::MAX),
                        total_bytes: total_bytes.map(|t| i64::try_from(t).unwrap_or(i64::MAX)),
                        measured_at: ev.occurred_at,
                        vendor_threshold: *threshold_percent,
                        ..Reading::default()
                    };
                    let mut tx = store::begin(&ctx.pool).await?;
                    events::apply_usage(&mut tx, iccid, &reading, &ctx.usage_thresholds).await?;
                    tx.commit().await?;
                }
                _ => refresh_later(ctx, esim),
            }
            Ok(Applied::Applied)
        }
        VendorEventKind::ValidityEnding { .. } => {
            Ok(if find_order(ctx, livemode, vendor, ev).await?.is_some() {
                Applied::Applied
            } else {
                Applied::Waiting
            })
        }
    }
}

/// Re-reads an eSIM from its vendor in the background so the callback is answered fast;
/// `hints` bounds how often and how many.
fn refresh_later(ctx: &Ctx, esim: store::esims::EsimRow) {
    crate::hints::refresh_esim(ctx, esim);
}

/// What [`ingest`] does with a verified, parsed callback: stores every event raw and
/// leased to this request (its own commit, so nothing is lost if the process dies next;
/// the worker applies it once the lease runs out), then applies it. A
/// redelivery of an event already stored but not applied is applied now. Returns one
/// result label per event, for metrics.
pub async fn receive(
    ctx: &Ctx,
    livemode: bool,
    vendor: VendorId,
    trust: CallbackTrust,
    headers: serde_json::Value,
    body: &[u8],
    parsed: &[VendorEvent],
) -> Result<Vec<&'static str>, CallbackError> {
    let mut results = Vec::with_capacity(parsed.len());
    for ev in parsed {
        let kind = serde_json::to_value(&ev.kind)
            .ok()
            .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_owned));
        let new = NewEvent {
            livemode,
            vendor: vendor.as_str(),
            dedupe_key: &ev.dedupe_key,
            kind: kind.as_deref(),
            headers: headers.clone(),
            body,
            status: "received",
            error: None,
            order_ref: ev.order_id.as_deref().or(ev.vendor_reference.as_deref()),
            iccid: ev.iccid.as_deref(),
            trusted: trust == CallbackTrust::Verified,
        };
        let row = match store::events::insert(&ctx.pool, &new, Some(event_lease(ctx))).await? {
            Some(row) => row,
            None => match take_redelivery(ctx, livemode, vendor, &ev.dedupe_key).await? {
                Ok(row) => row,
                Err(result) => {
                    results.push(result);
                    continue;
                }
            },
        };
        results.push(apply_leased(ctx, vendor, &row, Some(ev)).await?);
    }
    Ok(results)
}

/// A redelivery of a stored event: leased to this request when it is not final and nobody
/// holds it, else the result label (`duplicate`, or `received` while another request or
/// the worker is applying it).
async fn take_redelivery(
    ctx: &Ctx,
    livemode: bool,
    vendor: VendorId,
    dedupe_key: &str,
) -> sqlx::Result<Result<EventRow, &'static str>> {
    let stored = store::events::by_key(&ctx.pool, livemode, vendor.as_str(), dedupe_key).await?;
    let Some(stored) = stored.filter(|r| !store::events::FINAL.contains(&r.status.as_str())) else {
        return Ok(Err("duplicate"));
    };
    Ok(store::events::lease(&ctx.pool, stored.id, event_lease(ctx))
        .await?
        .ok_or("received"))
}

/// How long applying one event may hold it (no vendor call happens inline).
pub fn event_lease(ctx: &Ctx) -> Duration {
    ctx.lease.max(Duration::from_secs(10))
}

/// Delay before a non-final event is tried again: quadratic in its attempts, at most ten
/// minutes.
fn retry_in(attempts: i32) -> Duration {
    let n = u64::try_from(attempts.max(1)).unwrap_or(1);
    Duration::from_secs((n * n).min(600))
}

/// Applies one leased event (re-parsed from its stored body when not given) and records
/// the outcome, unless the lease was lost meanwhile.
pub async fn apply_leased(
    ctx: &Ctx,
    vendor: VendorId,
    row: &EventRow,
    parsed: Option<&VendorEvent>,
) -> Result<&'static str, CallbackError> {
    let trust = if row.trusted {
        CallbackTrust::Verified
    } else {
        CallbackTrust::Hint
    };
    let reparsed;
    let ev = match parsed {
        Some(ev) => ev,
        None => {
            let Some(adapter) = ctx.vendors(row.livemode).adapter(vendor) else {
                store::events::finish(
                    &ctx.pool,
                    row.id,
                    row.lease_version,
                    row.status.as_str(),
                    Some("vendor not enabled"),
                    retry_in(row.attempts + 1),
                )
                .await?;
                return Ok("waiting");
            };
            let mut headers = crate::vendors::CallbackHeaders::new();
            if let Some(ct) = row.headers.get("content-type").and_then(|v| v.as_str()) {
                headers.insert("content-type", ct);
            }
            reparsed = adapter
                .parse_callback(&headers, &row.body)
                .unwrap_or_default();
            let Some(ev) = reparsed.iter().find(|e| e.dedupe_key == row.dedupe_key) else {
                store::events::finish(
                    &ctx.pool,
                    row.id,
                    row.lease_version,
                    "unparseable",
                    Some("no longer parses"),
                    Duration::ZERO,
                )
                .await?;
                return Ok("unparseable");
            };
            ev
        }
    };
    let (status, error) = match apply(ctx, row.livemode, vendor, trust, ev).await {
        Ok(applied) => (applied.as_str(), None),
        // Error text may quote what the vendor sent: stored printable and bounded.
        Err(e) => ("failed", Some(printable(&e.to_string(), 1000))),
    };
    store::events::finish(
        &ctx.pool,
        row.id,
        row.lease_version,
        status,
        error.as_deref(),
        retry_in(row.attempts + 1),
    )
    .await?;
    Ok(status)
}

/// Applies every due event that is not final; returns how many were tried.
pub async fn apply_due(ctx: &Ctx, limit: i64) -> Result<usize, CallbackError> {
    let rows = store::events::lease_due(&ctx.pool, limit, event_lease(ctx)).await?;
    for row in &rows {
        if !row.trusted && crate::hints::waiting_expired(row.received_at) {
            store::events::finish(
                &ctx.pool,
                row.id,
                row.lease_version,
                // Final, so it is not leased again: an unsigned hint about something that
                // never appeared is evidence of nothing.
                "ignored",
                Some("expired: no such order or eSIM appeared"),
                Duration::ZERO,
            )
            .await?;
            continue;
        }
        let Ok(vendor) = row.vendor.parse::<VendorId>() else {
            continue;
        };
        apply_leased(ctx, vendor, row, None).await?;
    }
    Ok(rows.len())
}
