//! Fenced, renewed leases on orders.
//!
//! Whoever calls a vendor for an order holds its lease: a short expiry (`ORDER_LEASE`,
//! seconds) that a background ticker renews while the work runs, so a dead process's orders
//! come free within one lease. Every claim bumps the order's `lease_version`, and every
//! write the holder makes after a vendor call locks the row on that version
//! ([`store::orders::lock_fenced`]): a holder whose lease lapsed and was taken over cannot
//! write at all, so two workers can never both record a purchase for one order.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use sqlx::{PgConnection, PgPool};
use tokio::task::JoinHandle;

use crate::store::{self, orders::StoredAnswer};

/// A held lease; dropping it stops the renewals (the lease then simply expires).
#[derive(Debug)]
pub struct Lease {
    pub order_id: String,
    pub version: i64,
    lost: Arc<AtomicBool>,
    renewer: JoinHandle<()>,
    /// A request's own lease: released (with the provisioner's next look after this) by
    /// the transaction that records the outcome, not by a commit of its own.
    settle_after: Option<Duration>,
    /// Set by [`Lease::settle_answering_in`]: released in the outcome's transaction, with the
    /// request's answer when that transaction saved it.
    settled: Mutex<Option<Option<StoredAnswer>>>,
}

impl Lease {
    /// Starts renewing a lease just taken (by `claim`, `claim_due` or `lease_one`) at a
    /// third of its length, so two missed renewals still leave it held.
    pub fn hold(pool: &PgPool, order_id: &str, version: i64, length: Duration) -> Lease {
        let lost = Arc::new(AtomicBool::new(false));
        let renewer = {
            let (pool, id, lost) = (pool.clone(), order_id.to_string(), lost.clone());
            tokio::spawn(async move {
                let mut ticker = tokio::time::interval(length / 3);
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                ticker.tick().await;
                loop {
                    ticker.tick().await;
                    match store::orders::renew(&pool, &id, version, length).await {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::warn!(order_id = %id, version, "order lease taken over; this worker stops writing");
                            lost.store(true, Ordering::Relaxed);
                            return;
                        }
                        // The database is away: keep trying; the fence protects writes.
                        Err(e) => {
                            tracing::warn!(order_id = %id, error = %e, "order lease renewal failed")
                        }
                    }
                }
            })
        };
        Lease {
            order_id: order_id.to_string(),
            version,
            lost,
            renewer,
            settle_after: None,
            settled: Mutex::new(None),
        }
    }

    /// Makes the holder's last write (the outcome) also release the lease, scheduling the
    /// provisioner's next look after `next_check_in`: one commit instead of two.
    pub fn settling_with_outcome(mut self, next_check_in: Duration) -> Lease {
        self.settle_after = Some(next_check_in);
        self
    }

    /// Whether the outcome's transaction releases this lease ([`Lease::settling_with_outcome`]).
    pub fn settles_with_outcome(&self) -> bool {
        self.settle_after.is_some()
    }

    /// Inside the transaction recording the outcome (locked on this lease's version):
    /// releases a lease made [`Lease::settling_with_outcome`], saving `answer` (made from
    /// the order as that transaction left it) as the request's first answer unless one was
    /// saved before; release and answer are one statement. The renewals stop first, so
    /// none lands after the release; if the transaction then fails, the lease simply
    /// lapses and the provisioner takes over, as after any failed write.
    pub async fn settle_answering_in(
        &self,
        conn: &mut PgConnection,
        answer: Option<StoredAnswer>,
    ) -> sqlx::Result<()> {
        let Some(next_check_in) = self.settle_after else {
            return Ok(());
        };
        self.renewer.abort();
        let saved = store::orders::release_answering(
            &mut *conn,
            &self.order_id,
            self.version,
            next_check_in,
            answer.as_ref(),
        )
        .await?;
        let answer = answer.filter(|_| saved == Some(true));
        *self.settled.lock().unwrap_or_else(|e| e.into_inner()) = Some(answer);
        Ok(())
    }

    /// `Some` once released by the outcome's transaction (meaningful after it committed),
    /// with the answer that transaction saved, if it did.
    pub fn settled(&self) -> Option<Option<StoredAnswer>> {
        self.settled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Known to be lost (a renewal found another version). Not knowing is no guarantee:
    /// writes check the fence themselves.
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }

    /// Gives the order back, scheduling the provisioner's next look after `next_check_in`.
    pub async fn release(self, pool: &PgPool, next_check_in: Duration) -> sqlx::Result<()> {
        self.renewer.abort();
        store::orders::release(pool, &self.order_id, self.version, next_check_in).await
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}
