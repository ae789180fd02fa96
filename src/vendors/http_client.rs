//! The HTTP client every adapter uses: per-vendor timeout and rate limit, transport errors
//! classified for exactly-once buying, and metrics per vendor and operation.

use std::time::Duration;

use tokio::time::Instant;

use bytes::Bytes;
use reqwest::{RequestBuilder, StatusCode, header::HeaderMap};
use tokio::sync::Mutex;

use super::{VendorError, VendorId};

/// A vendor's raw answer, read completely.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl RawResponse {
    /// The body as text for error messages, cut short so logs stay readable.
    pub fn snippet(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let mut s: String = text.chars().take(300).collect();
        if text.chars().count() > 300 {
            s.push('…');
        }
        s
    }

    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
}

/// Which budget a vendor call draws from. Buying (and reading back what was bought) comes
/// first; catalogue pages, usage and balance reads wait their turn and never hold a
/// purchase back by more than [`BACKGROUND_BACKLOG`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    Purchase,
    Background,
}

impl Priority {
    /// Operations are named by the adapters; unknown names count as purchases, the safe side.
    pub fn of(operation: &str) -> Self {
        match operation {
            "list" | "list_offers" | "catalog" | "packages" | "usage" | "balance" => {
                Priority::Background
            }
            _ => Priority::Purchase,
        }
    }

    fn max_wait(self) -> Duration {
        match self {
            Priority::Purchase => PURCHASE_MAX_WAIT,
            Priority::Background => BACKGROUND_MAX_WAIT,
        }
    }
}

/// A background call takes a slot only while the queue ahead is at most this long, so a
/// purchase arriving behind any number of background calls waits at most this (plus its own
/// slot).
pub const BACKGROUND_BACKLOG: Duration = Duration::from_millis(250);
/// Longest a purchase waits for a slot; beyond it the call fails without being sent.
pub const PURCHASE_MAX_WAIT: Duration = Duration::from_secs(10);
/// Longest a background call waits for a slot.
pub const BACKGROUND_MAX_WAIT: Duration = Duration::from_secs(30);

/// Spaces requests evenly so a vendor never sees more than `per_second` of them.
#[derive(Debug)]
struct RateLimiter {
    interval: Duration,
    next_slot: Mutex<Instant>,
}

impl RateLimiter {
    fn new(per_second: u32) -> Self {
        RateLimiter {
            interval: Duration::from_secs(1) / per_second.max(1),
            next_slot: Mutex::new(Instant::now()),
        }
    }

    /// Waits for this call's slot. `Err` when none is free within the priority's bound:
    /// the call is then not sent at all.
    async fn acquire(&self, priority: Priority) -> Result<(), Duration> {
        let started = Instant::now();
        let deadline = started + priority.max_wait();
        loop {
            let slot = {
                let mut next = self.next_slot.lock().await;
                let now = Instant::now();
                let slot = (*next).max(now);
                let admitted = match priority {
                    Priority::Purchase => true,
                    Priority::Background => slot - now <= BACKGROUND_BACKLOG,
                };
                if admitted && slot > deadline {
                    return Err(started.elapsed());
                }
                admitted.then(|| {
                    *next = slot + self.interval;
                    slot
                })
            };
            match slot {
                Some(slot) => {
                    tokio::time::sleep_until(slot).await;
                    return Ok(());
                }
                None if Instant::now() >= deadline => return Err(started.elapsed()),
                None => tokio::time::sleep(self.interval).await,
            }
        }
    }
}

#[derive(Debug)]
pub struct VendorHttp {
    client: reqwest::Client,
    vendor: VendorId,
    limiter: Option<RateLimiter>,
}

impl VendorHttp {
    /// `max_per_second`: the vendor's documented rate limit, if any.
    pub fn new(vendor: VendorId, timeout: Duration, max_per_second: Option<u32>) -> Self {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("esim-gateway/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("static reqwest configuration is valid");
        VendorHttp {
            client,
            vendor,
            limiter: max_per_second.map(RateLimiter::new),
        }
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    pub fn vendor(&self) -> VendorId {
        self.vendor
    }

    /// Sends a request and reads the whole body. Any HTTP status is returned as a response:
    /// adapters decide what a status means. Transport failures become `Unreachable` when the
    /// request cannot have reached the vendor and `Unknown` otherwise.
    pub async fn send(
        &self,
        operation: &'static str,
        request: RequestBuilder,
    ) -> Result<RawResponse, VendorError> {
        if let Some(limiter) = &self.limiter {
            if let Err(waited) = limiter.acquire(Priority::of(operation)).await {
                let vendor = self.vendor.as_str();
                metrics::counter!("vendor_requests_total", "vendor" => vendor, "operation" => operation, "outcome" => "rate_budget")
                    .increment(1);
                return Err(VendorError::Unreachable(format!(
                    "no request slot within our {vendor} rate limit after {waited:?}; not sent"
                )));
            }
        }
        let started = Instant::now();
        let result = self.send_inner(request).await;
        let outcome = match &result {
            Ok(r) if r.status.is_success() => "ok",
            Ok(r) if r.status.is_server_error() => "http_5xx",
            Ok(_) => "http_4xx",
            Err(e) => e.class(),
        };
        let vendor = self.vendor.as_str();
        metrics::counter!("vendor_requests_total", "vendor" => vendor, "operation" => operation, "outcome" => outcome)
            .increment(1);
        metrics::histogram!("vendor_request_duration_seconds", "vendor" => vendor, "operation" => operation)
            .record(started.elapsed().as_secs_f64());
        if let Err(e) = &result {
            tracing::warn!(vendor, operation, error = %e, "vendor call failed");
        }
        result
    }

    async fn send_inner(&self, request: RequestBuilder) -> Result<RawResponse, VendorError> {
        let response = request.send().await.map_err(classify)?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(|e| {
            VendorError::Unknown(format!("reading the response failed: {}", describe(&e)))
        })?;
        Ok(RawResponse {
            status,
            headers,
            body,
        })
    }
}

/// Only a failure to connect proves the request never left; a timeout or a dropped
/// connection after that may have reached the vendor.
fn classify(e: reqwest::Error) -> VendorError {
    if e.is_builder() || e.is_connect() {
        VendorError::Unreachable(describe(&e))
    } else if e.is_timeout() {
        VendorError::Unknown(format!("timed out: {}", describe(&e)))
    } else {
        VendorError::Unknown(describe(&e))
    }
}

/// The error chain without the URL (it may carry credentials in a query string).
fn describe(e: &reqwest::Error) -> String {
    let mut msg = e.without_url_ref().to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

trait WithoutUrlRef {
    fn without_url_ref(&self) -> String;
}

impl WithoutUrlRef for reqwest::Error {
    fn without_url_ref(&self) -> String {
        let text = self.to_string();
        match self.url() {
            Some(url) => text.replace(url.as_str(), "<vendor url>"),
            None => text,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn rate_limiter_spaces_requests() {
        let limiter = RateLimiter::new(8);
        let start = tokio::time::Instant::now();
        for _ in 0..17 {
            limiter.acquire(Priority::Purchase).await.unwrap();
        }
        // 17 requests at 8/s: the last one waits 16 intervals of 125 ms.
        assert_eq!(start.elapsed(), Duration::from_millis(2000));
    }

    #[tokio::test(start_paused = true)]
    async fn purchases_never_wait_behind_background_calls() {
        let limiter = std::sync::Arc::new(RateLimiter::new(8));
        // 200 background calls (hint re-reads, catalogue pages) queue up first.
        let mut background = Vec::new();
        for _ in 0..200 {
            let l = limiter.clone();
            background.push(tokio::spawn(async move {
                l.acquire(Priority::Background).await
            }));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        let start = tokio::time::Instant::now();
        limiter.acquire(Priority::Purchase).await.unwrap();
        let waited = start.elapsed();
        assert!(
            waited <= BACKGROUND_BACKLOG + Duration::from_millis(125),
            "purchase waited {waited:?}"
        );
        // Background calls still get their turn, spaced within the rate limit (200 at 8/s
        // fit in their 30 s bound).
        let mut served = 0;
        for b in background {
            if b.await.unwrap().is_ok() {
                served += 1;
            }
        }
        assert_eq!(served, 200);
    }

    #[tokio::test(start_paused = true)]
    async fn a_purchase_fails_unsent_rather_than_waiting_without_bound() {
        let limiter = RateLimiter::new(1);
        for _ in 0..10 {
            limiter.acquire(Priority::Purchase).await.unwrap();
        }
        let l = std::sync::Arc::new(limiter);
        let mut queued = Vec::new();
        for _ in 0..20 {
            let l = l.clone();
            queued.push(tokio::spawn(
                async move { l.acquire(Priority::Purchase).await },
            ));
        }
        let results: Vec<_> = futures_join(queued).await;
        assert!(
            results.iter().any(Result::is_err),
            "some purchase over 10 s is refused"
        );
        assert!(results.iter().filter(|r| r.is_ok()).count() <= 11);
    }

    async fn futures_join(
        handles: Vec<tokio::task::JoinHandle<Result<(), Duration>>>,
    ) -> Vec<Result<(), Duration>> {
        let mut out = Vec::new();
        for h in handles {
            out.push(h.await.unwrap());
        }
        out
    }

    #[tokio::test]
    async fn refused_connection_is_unreachable() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let http = VendorHttp::new(VendorId::EsimGo, Duration::from_secs(2), None);
        let err = http
            .send("test", http.client().get(format!("http://{addr}/")))
            .await
            .unwrap_err();
        assert!(matches!(err, VendorError::Unreachable(_)), "{err:?}");
        assert!(err.nothing_bought());
    }
}
