//! Delivers storefront events: at least once, signed, retried with exponential backoff and
//! jitter for more than 24 hours, every attempt recorded. Operator alerts (outbox rows with
//! no storefront) go the same way to `OPERATOR_WEBHOOK_URL`, signed with its secret.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::Utc;
use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;
use sqlx::PgPool;
use tokio::task::JoinHandle;

use crate::{
    config::OperatorWebhook,
    domain::{secret::ExposeSecret, webhook_url},
    store::{self, outbox::Delivery},
    workers::webhook_dns::{InternalAddress, SystemDns, WebhookDns, refused_internal},
};

/// Events are retried for at least this long before they are declared dead.
pub const RETRY_WINDOW: chrono::Duration = chrono::Duration::hours(25);
/// A claim lasts three delivery timeouts; a batch is delivered concurrently, so every
/// event's single attempt ends well inside its claim.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
const LEASE_SECS: i64 = 30;
const BATCH: i64 = 16;

/// The `Gateway-Signature` header: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// Delay before retry number `attempt` (1-based): 10 s doubling to an hour, ±20% jitter so
/// a storefront coming back is not hit by every event at once.
pub fn backoff(attempt: i32, base: Duration) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.clamp(0, 20).saturating_sub(1) as u32);
    let capped = exp.min(Duration::from_secs(3600));
    let jitter = rand::thread_rng().gen_range(0.8..1.2);
    capped.mul_f64(jitter)
}

#[derive(Clone)]
pub struct OutboxWorker {
    pub pool: PgPool,
    pub client: reqwest::Client,
    pub base_delay: Duration,
    /// Sandbox mode allows webhooks to loopback and private hosts; live mode does not.
    pub sandbox: bool,
    /// Where operator alerts go; without it this worker leaves them alone.
    pub operator: Option<OperatorWebhook>,
}

impl OutboxWorker {
    pub fn new(pool: PgPool, base_delay: Duration, sandbox: bool) -> Self {
        OutboxWorker {
            pool,
            client: client(sandbox, Arc::new(SystemDns)),
            base_delay,
            sandbox,
            operator: None,
        }
    }

    /// Also delivers operator alerts, to `operator` (`OPERATOR_WEBHOOK_URL`).
    pub fn with_operator(mut self, operator: Option<OperatorWebhook>) -> Self {
        self.operator = operator;
        self
    }

    /// Resolves webhook hosts with `dns` instead of the system resolver (live mode still
    /// refuses internal addresses whatever it answers).
    pub fn with_dns(mut self, dns: Arc<dyn reqwest::dns::Resolve>) -> Self {
        self.client = client(self.sandbox, dns);
        self
    }

    /// Delivers what is due now; returns how many events were tried.
    pub async fn tick(&self) -> sqlx::Result<usize> {
        let due = store::outbox::claim_due(&self.pool, BATCH, LEASE_SECS, self.operator.is_some())
            .await?;
        let n = due.len();
        let mut work = tokio::task::JoinSet::new();
        for d in due {
            let me = self.clone();
            work.spawn(async move { me.deliver(&d).await });
        }
        while let Some(done) = work.join_next().await {
            if let Ok(Err(e)) = done {
                return Err(e);
            }
        }
        Ok(n)
    }

    /// Where an event goes and the secret that signs it: its storefront's webhook, or the
    /// operator's for an alert.
    fn target(&self, d: &Delivery) -> Result<(String, String), &'static str> {
        if d.storefront_id.is_none() {
            let op = self.operator.as_ref().ok_or("no OPERATOR_WEBHOOK_URL")?;
            return Ok((op.url.to_string(), op.secret.expose_secret().to_string()));
        }
        match (&d.webhook_url, &d.webhook_secret) {
            (Some(url), Some(secret)) => Ok((url.clone(), secret.clone())),
            _ => Err("storefront has no webhook_url"),
        }
    }

    async fn deliver(&self, d: &Delivery) -> sqlx::Result<()> {
        let (url, secret) = match self.target(d) {
            Ok(t) => t,
            Err(why) => {
                store::outbox::mark_failed(&self.pool, &d.id, d.lease_version, why, 0, true)
                    .await?;
                return Ok(());
            }
        };
        let url = &url;
        let body = serde_json::to_vec(&serde_json::json!({
            "id": d.id,
            "type": d.event_type,
            "livemode": d.livemode,
            "created_at": d.created_at,
            "data": d.payload,
        }))
        .unwrap_or_default();
        // The URL was checked when it was registered; check it again now, under this mode's
        // rules, and (live mode) every address its host resolves to in `client`.
        if webhook_url::validate(url.clone(), self.sandbox).is_err() {
            return self
                .failed(
                    d,
                    None,
                    "webhook_url is not allowed: not https, or an internal host",
                    0,
                )
                .await;
        }
        let ts = Utc::now().timestamp();
        let started = Instant::now();
        let result = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("gateway-signature", signature(&secret, ts, &body))
            .header("gateway-event-id", &d.id)
            .header("gateway-event-type", &d.event_type)
            .body(body)
            .send()
            .await;
        let ms = started.elapsed().as_millis() as i64;
        let (status, error) = match result {
            Ok(r) if r.status().is_success() => (Some(r.status().as_u16()), None),
            Ok(r) => (
                Some(r.status().as_u16()),
                Some(format!("HTTP {}", r.status().as_u16())),
            ),
            Err(e) if refused_internal(&e) => (None, Some(InternalAddress.to_string())),
            Err(e) => (None, Some(e.without_url().to_string())),
        };
        match error {
            None => {
                store::outbox::record_attempt(&self.pool, &d.id, status, None, ms).await?;
                metrics::counter!(counter_of(d), "result" => "delivered").increment(1);
                store::outbox::mark_delivered(&self.pool, &d.id, d.lease_version).await
            }
            Some(e) => self.failed(d, status, &e, ms).await,
        }
    }

    /// Records a failed attempt and schedules the next one (or gives up after the window).
    async fn failed(
        &self,
        d: &Delivery,
        status: Option<u16>,
        error: &str,
        ms: i64,
    ) -> sqlx::Result<()> {
        store::outbox::record_attempt(&self.pool, &d.id, status, Some(error), ms).await?;
        metrics::counter!(counter_of(d), "result" => "failed").increment(1);
        let attempt = d.attempts + 1;
        let give_up = Utc::now() - d.created_at > RETRY_WINDOW;
        let delay = backoff(attempt, self.base_delay);
        tracing::info!(event_id = %d.id, attempt, error, "storefront event delivery failed; will retry");
        store::outbox::mark_failed(
            &self.pool,
            &d.id,
            d.lease_version,
            error,
            delay.as_millis() as i64,
            give_up,
        )
        .await
    }

    pub fn spawn(self) -> JoinHandle<()> {
        let idle = self.base_delay.min(Duration::from_secs(1));
        tokio::spawn(async move {
            loop {
                match self.tick().await {
                    Ok(n) if n > 0 => continue,
                    Ok(_) => {}
                    Err(e) => {
                        tracing::error!(error = %e, "outbox worker cannot reach the database")
                    }
                }
                tokio::time::sleep(idle).await;
            }
        })
    }
}

/// Storefront events and operator alerts are counted apart.
fn counter_of(d: &Delivery) -> &'static str {
    match d.storefront_id {
        Some(_) => "storefront_events_total",
        None => "operator_alerts_sent_total",
    }
}

fn client(sandbox: bool, dns: Arc<dyn reqwest::dns::Resolve>) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(DELIVERY_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(Arc::new(WebhookDns {
            inner: dns,
            refuse_internal: !sandbox,
        }))
        .build()
        .expect("static reqwest configuration is valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_follows_the_documented_formula() {
        // HMAC-SHA256("whsec_test", "1700000000.{}") computed independently.
        let sig = signature("whsec_test", 1_700_000_000, b"{}");
        assert!(sig.starts_with("t=1700000000,v1="));
        let mut mac = Hmac::<Sha256>::new_from_slice(b"whsec_test").unwrap();
        mac.update(b"1700000000.{}");
        assert_eq!(
            sig,
            format!(
                "t=1700000000,v1={}",
                hex::encode(mac.finalize().into_bytes())
            )
        );
    }

    #[test]
    fn backoff_grows_to_an_hour_with_jitter() {
        let base = Duration::from_secs(10);
        let first = backoff(1, base);
        assert!(first >= Duration::from_secs(8) && first <= Duration::from_secs(12));
        let later = backoff(12, base);
        assert!(later >= Duration::from_secs(2880) && later <= Duration::from_secs(4320));
    }
}
