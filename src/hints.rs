//! Re-reads asked for by unsigned vendor callbacks ("hints"), bounded.
//!
//! An unsigned callback proves nothing, so the gateway re-reads the eSIM from the vendor.
//! Anyone can post one, so each re-read is admitted here first:
//! - at most one in flight per eSIM, and at most one per [`MIN_INTERVAL`] per eSIM (a usage
//!   figure younger than that is served as it is);
//! - at most [`QUEUE_CAPACITY`] waiting or running at once, [`CONCURRENCY`] of them talking
//!   to vendors; beyond that a hint is dropped and counted (`callback_hints_total`).
//!
//! The vendor call itself is a background call in `vendors::http_client`, so it never delays
//! a purchase within the vendor's rate limit.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, Instant},
};

use chrono::Utc;
use tokio::sync::Semaphore;

use crate::{
    ordering::{Ctx, usage},
    store::esims::EsimRow,
};

/// Shortest time between two hint-driven re-reads of one eSIM.
pub const MIN_INTERVAL: Duration = Duration::from_secs(30);
/// Shortest time between two hint-driven re-checks of one unfinished order (the
/// provisioner's own back-off goes on regardless).
pub const ORDER_MIN_INTERVAL: Duration = Duration::from_secs(5);
/// Hints admitted (waiting or running) at once, across all vendors.
pub const QUEUE_CAPACITY: usize = 64;
/// Hint re-reads talking to vendors at once.
pub const CONCURRENCY: usize = 2;
/// An unsigned callback about an order or eSIM we do not know (yet) is retried this long,
/// then marked failed: a real callback races its purchase by seconds, a forged one for ever.
pub const WAITING_TTL: Duration = Duration::from_secs(10 * 60);

pub fn waiting_expired(received_at: chrono::DateTime<Utc>) -> bool {
    Utc::now()
        .signed_duration_since(received_at)
        .to_std()
        .is_ok_and(|age| age > WAITING_TTL)
}

/// Entries kept for rate limiting per eSIM before old ones are pruned.
const MAX_TRACKED: usize = 10_000;

/// What became of one hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Queued,
    /// A re-read of this eSIM is already waiting or running.
    Coalesced,
    /// This eSIM was re-read (or its usage refreshed) less than [`MIN_INTERVAL`] ago.
    TooSoon,
    /// The queue is full.
    Dropped,
}

impl Admission {
    pub fn as_str(self) -> &'static str {
        match self {
            Admission::Queued => "queued",
            Admission::Coalesced => "coalesced",
            Admission::TooSoon => "too_soon",
            Admission::Dropped => "dropped",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    in_flight: bool,
    last_started: Option<Instant>,
}

/// The admission state. One per process: hints from every vendor share its queue.
pub struct HintGate {
    entries: Mutex<HashMap<String, Entry>>,
    queue: Arc<Semaphore>,
    running: Arc<Semaphore>,
    min_interval: Duration,
}

impl HintGate {
    pub fn new(capacity: usize, concurrency: usize, min_interval: Duration) -> Self {
        HintGate {
            entries: Mutex::new(HashMap::new()),
            queue: Arc::new(Semaphore::new(capacity)),
            running: Arc::new(Semaphore::new(concurrency)),
            min_interval,
        }
    }

    /// The gate every callback uses.
    pub fn global() -> &'static HintGate {
        static GATE: OnceLock<HintGate> = OnceLock::new();
        GATE.get_or_init(|| HintGate::new(QUEUE_CAPACITY, CONCURRENCY, MIN_INTERVAL))
    }

    /// Admits a re-read of `key`; on `Queued` the caller owns the returned ticket and must
    /// run the work while holding it.
    fn admit(&self, key: &str) -> Result<Ticket<'_>, Admission> {
        self.admit_every(key, self.min_interval)
    }

    fn admit_every(&self, key: &str, min_interval: Duration) -> Result<Ticket<'_>, Admission> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if let Some(e) = entries.get(key) {
            if e.in_flight {
                return Err(Admission::Coalesced);
            }
            if e.last_started
                .is_some_and(|t| now.duration_since(t) < min_interval)
            {
                return Err(Admission::TooSoon);
            }
        }
        let Ok(slot) = self.queue.clone().try_acquire_owned() else {
            return Err(Admission::Dropped);
        };
        if entries.len() >= MAX_TRACKED {
            let min = self.min_interval;
            entries.retain(|_, e| {
                e.in_flight || e.last_started.is_some_and(|t| now.duration_since(t) < min)
            });
        }
        entries.insert(
            key.to_string(),
            Entry {
                in_flight: true,
                last_started: Some(now),
            },
        );
        Ok(Ticket {
            gate: self,
            key: key.to_string(),
            _slot: slot,
        })
    }
}

/// Held while a re-read waits or runs; releases the eSIM (and the queue slot) when dropped,
/// also when the task is cancelled.
struct Ticket<'a> {
    gate: &'a HintGate,
    key: String,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        let mut entries = self.gate.entries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = entries.get_mut(&self.key) {
            e.in_flight = false;
        }
    }
}

/// An unsigned callback about an unfinished order: have the provisioner ask the vendor now,
/// at most once per [`ORDER_MIN_INTERVAL`] per order.
pub async fn poke_order(ctx: &Ctx, order_id: &str) -> sqlx::Result<Admission> {
    let gate = HintGate::global();
    let admission = match gate.admit_every(&format!("order:{order_id}"), ORDER_MIN_INTERVAL) {
        Ok(_ticket) => {
            crate::store::orders::poke(&ctx.pool, order_id).await?;
            Admission::Queued
        }
        Err(a) => a,
    };
    metrics::counter!("callback_hints_total", "result" => admission.as_str()).increment(1);
    Ok(admission)
}

/// An unsigned callback about this eSIM: re-read it from its vendor in the background, if
/// the gate admits it. Never waits, so the callback is answered at once.
pub fn refresh_esim(ctx: &Ctx, esim: EsimRow) -> Admission {
    refresh_esim_with(HintGate::global(), ctx, esim)
}

pub fn refresh_esim_with(gate: &'static HintGate, ctx: &Ctx, mut esim: EsimRow) -> Admission {
    let recent = esim.usage_updated_at.is_some_and(|t| {
        Utc::now()
            .signed_duration_since(t)
            .to_std()
            .unwrap_or_default()
            < gate.min_interval
    });
    let admission = if recent {
        Admission::TooSoon
    } else {
        let key = format!("{}:{}", esim.vendor, esim.iccid);
        match gate.admit(&key) {
            Ok(ticket) => {
                let ctx = ctx.clone();
                let running = gate.running.clone();
                tokio::spawn(async move {
                    let _ticket = ticket;
                    let Ok(_running) = running.acquire_owned().await else {
                        return;
                    };
                    // The hint says the vendor knows something newer: skip the usage cache.
                    esim.usage_updated_at = None;
                    if let Err(e) = usage::refreshed(&ctx, esim).await {
                        tracing::warn!(error = %e, "re-reading an eSIM after a vendor hint failed");
                    }
                });
                Admission::Queued
            }
            Err(a) => a,
        }
    };
    metrics::counter!("callback_hints_total", "result" => admission.as_str()).increment(1);
    admission
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_in_flight_per_key_then_one_per_interval_and_a_bounded_queue() {
        let gate = HintGate::new(2, 1, Duration::from_millis(50));
        let a = gate.admit("esimaccess:1").unwrap();
        assert_eq!(gate.admit("esimaccess:1").err(), Some(Admission::Coalesced));
        let b = gate.admit("esimaccess:2").unwrap();
        assert_eq!(gate.admit("esimaccess:3").err(), Some(Admission::Dropped));
        drop(a);
        assert_eq!(gate.admit("esimaccess:1").err(), Some(Admission::TooSoon));
        std::thread::sleep(Duration::from_millis(60));
        assert!(gate.admit("esimaccess:1").is_ok());
        drop(b);
    }
}
