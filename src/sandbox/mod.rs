//! The sandbox: built-in simulators that speak each vendor's exact wire protocol, check its
//! credentials and signatures the way the vendor does, keep orders, eSIMs and a balance in
//! memory, deliver its callbacks, and can be told to fail (see [`faults`]).
//!
//! Every simulator is an axum router plus shared plumbing from this module: a [`SimCore`]
//! (faults, callback delivery, timing settings, the record of orders it received) and
//! [`serve`] to put a router on a loopback port. Each also answers a small control API under
//! `/_sandbox/` (see [`control_router`]) so a running sandbox can be driven from outside.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex, RwLock},
    time::Duration,
};

use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post, put},
};
use chrono::{DateTime, Utc};
use rand::Rng;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use tokio::{net::TcpListener, task::JoinHandle};

pub mod catalog;
pub mod faults;
pub mod runtime;

pub use faults::{Fault, Faults};

use crate::domain::vendor::VendorId;

/// Timing of the simulated vendor; tests shorten it, the demo keeps it realistic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimSettings {
    /// How long an asynchronous vendor takes to allocate profiles after accepting an order.
    #[serde(with = "millis")]
    pub provisioning_delay: Duration,
    /// How long after an event its callback is sent.
    #[serde(with = "millis")]
    pub callback_delay: Duration,
    /// When false the simulator never calls back (to test polling fallbacks).
    pub callbacks_enabled: bool,
    /// Products per vendor: `None` serves the seed catalogue, `Some(n)` a generated one of
    /// about `n` products (scale tests).
    #[serde(default)]
    pub catalog_size: Option<usize>,
}

impl Default for SimSettings {
    fn default() -> Self {
        SimSettings {
            provisioning_delay: Duration::from_secs(3),
            callback_delay: Duration::from_millis(500),
            callbacks_enabled: true,
            catalog_size: None,
        }
    }
}

impl SimSettings {
    /// Fast settings for tests: allocation and callbacks within a few tens of milliseconds.
    pub fn fast() -> Self {
        SimSettings {
            provisioning_delay: Duration::from_millis(50),
            callback_delay: Duration::from_millis(20),
            callbacks_enabled: true,
            catalog_size: None,
        }
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

/// What a simulator remembers about every order it accepted: the ground truth tests compare
/// the gateway against ("exactly one vendor order exists").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimOrderRecord {
    /// The vendor's own order number.
    pub vendor_reference: String,
    /// The client's reference (transaction id, idempotency key, custom order no…).
    pub client_reference: Option<String>,
    pub sku: String,
    pub quantity: u32,
    pub iccids: Vec<String>,
    /// A top-up onto an existing eSIM rather than a new one.
    pub topup: bool,
    pub cancelled: bool,
    pub created_at: DateTime<Utc>,
}

impl SimOrderRecord {
    /// The record of our order `order_id`: its client reference is our order id, or our id
    /// with a suffix where the vendor needs one reference per request.
    pub fn is_for(&self, order_id: &str) -> bool {
        self.client_reference.as_deref().is_some_and(|r| {
            r.strip_prefix(order_id)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('-'))
        })
    }
}

/// One callback delivery attempt, as the simulator saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryRecord {
    pub url: String,
    /// HTTP status of the answer; `None` when the request failed.
    pub status: Option<u16>,
    pub attempt: u32,
    pub at: DateTime<Utc>,
}

/// A callback ready to send: the simulator has already signed it the vendor's way.
#[derive(Debug, Clone)]
pub struct OutgoingCallback {
    pub content_type: &'static str,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// The plumbing every simulator shares.
#[derive(Clone)]
pub struct SimCore {
    pub vendor: VendorId,
    pub faults: Faults,
    settings: Arc<RwLock<SimSettings>>,
    callback_url: Arc<RwLock<Option<url::Url>>>,
    orders: Arc<Mutex<Vec<SimOrderRecord>>>,
    deliveries: Arc<Mutex<Vec<DeliveryRecord>>>,
    /// Percent the prices charged are above the catalogue's (see [`SimCore::raise_prices`]).
    price_rise: Arc<RwLock<Decimal>>,
    client: reqwest::Client,
}

impl SimCore {
    pub fn new(vendor: VendorId, settings: SimSettings) -> Self {
        SimCore {
            vendor,
            faults: Faults::default(),
            settings: Arc::new(RwLock::new(settings)),
            callback_url: Arc::new(RwLock::new(None)),
            orders: Arc::default(),
            deliveries: Arc::default(),
            price_rise: Arc::default(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("static reqwest configuration is valid"),
        }
    }

    pub fn settings(&self) -> SimSettings {
        *self.settings.read().expect("settings lock")
    }

    pub fn set_settings(&self, settings: SimSettings) {
        *self.settings.write().expect("settings lock") = settings;
    }

    /// Where callbacks go (the gateway's `/webhooks/<vendor>`); `None` stops them.
    pub fn set_callback_url(&self, url: Option<url::Url>) {
        *self.callback_url.write().expect("callback lock") = url;
    }

    pub fn callback_url(&self) -> Option<url::Url> {
        self.callback_url.read().expect("callback lock").clone()
    }

    /// From now on orders are charged `percent` above the catalogue price (negative: below):
    /// a vendor whose price moved after the gateway's last catalogue sync. Simulators that
    /// answer prices on orders apply it (eSIM Go); the catalogue listing keeps its prices.
    pub fn raise_prices(&self, percent: Decimal) {
        *self.price_rise.write().expect("price lock") = percent;
    }

    /// `price` as charged now (rounded to cents).
    pub fn charged_price(&self, price: Decimal) -> Decimal {
        let rise = *self.price_rise.read().expect("price lock");
        (price * (Decimal::ONE + rise / Decimal::ONE_HUNDRED)).round_dp(2)
    }

    pub fn record_order(&self, record: SimOrderRecord) {
        self.orders.lock().expect("orders lock").push(record);
    }

    /// Applies `f` to the recorded order with this vendor reference (e.g. once allocated).
    pub fn update_order(&self, vendor_reference: &str, f: impl FnOnce(&mut SimOrderRecord)) {
        let mut orders = self.orders.lock().expect("orders lock");
        if let Some(o) = orders
            .iter_mut()
            .find(|o| o.vendor_reference == vendor_reference)
        {
            f(o);
        }
    }

    /// Every order the simulator accepted, oldest first.
    pub fn orders(&self) -> Vec<SimOrderRecord> {
        self.orders.lock().expect("orders lock").clone()
    }

    pub fn deliveries(&self) -> Vec<DeliveryRecord> {
        self.deliveries.lock().expect("deliveries lock").clone()
    }

    /// Sends a callback after the configured delay, retrying after each of `retry_delays`
    /// on failure or a non-2xx answer. Does nothing when callbacks are off or no URL is set.
    pub fn deliver(&self, callback: OutgoingCallback, retry_delays: &'static [Duration]) {
        let settings = self.settings();
        if !settings.callbacks_enabled {
            return;
        }
        let Some(url) = self.callback_url() else {
            return;
        };
        // An order meeting `callback_lost`: its callbacks never leave the vendor.
        if let Some(scope) = self.scope_in(&callback.body) {
            if self
                .faults
                .take_scoped(&scope, CALLBACK_OPERATION)
                .is_some()
            {
                return;
            }
        }
        let core = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(settings.callback_delay).await;
            let mut attempt = 0u32;
            loop {
                attempt += 1;
                let mut req = core
                    .client
                    .post(url.clone())
                    .header(reqwest::header::CONTENT_TYPE, callback.content_type)
                    .body(callback.body.clone());
                for (name, value) in &callback.headers {
                    req = req.header(name.as_str(), value.as_str());
                }
                let status = req.send().await.ok().map(|r| r.status().as_u16());
                core.deliveries
                    .lock()
                    .expect("deliveries lock")
                    .push(DeliveryRecord {
                        url: url.to_string(),
                        status,
                        attempt,
                        at: Utc::now(),
                    });
                let delivered = status.is_some_and(|s| (200..300).contains(&s));
                match retry_delays.get(attempt as usize - 1) {
                    Some(delay) if !delivered => tokio::time::sleep(*delay).await,
                    _ => break,
                }
            }
        });
    }
}

/// The vendor's own answers a simulator gives when a storefront test scenario is armed for
/// an order (see `ordering::scenario`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScenarioCodes {
    /// The vendor's "sold out" refusal of an order.
    pub sold_out: &'static str,
    /// The vendor's refusal of a cancellation; `None` when it has no cancel at all.
    pub cancel_refused: Option<&'static str>,
    /// Whether the vendor's order request names our order id, so that a fault can be scoped
    /// to that one order call.
    pub order_names_client_reference: bool,
    /// The simulator delivers eSIMs asynchronously and honours a delay scoped to the order
    /// on [`PROVISIONING_OPERATION`].
    pub async_delivery: bool,
    /// The simulator plays a usage callback scoped to the order on
    /// [`USAGE_SCENARIO_OPERATION`].
    pub usage_callbacks: bool,
}

/// Scoped `Delay` fault: how long this order's asynchronous allocation takes.
pub const PROVISIONING_OPERATION: &str = "provisioning";
/// Scoped `Delay` fault: after it, 80% of this order's package is used (usage callbacks).
pub const USAGE_SCENARIO_OPERATION: &str = "usage_80_percent";

/// Operation names of an order call across the simulators (Multiverse has a synchronous
/// variant).
pub const ORDER_OPERATIONS: &[&str] = &["order", "order_sync"];
/// Operation name of a cancellation in every simulator that has one.
pub const CANCEL_OPERATION: &str = "cancel";

/// Operation name of a simulator's callback delivery, for scoped faults: a fault armed for
/// it drops the callbacks of that order (any fault kind means "lost").
pub const CALLBACK_OPERATION: &str = "callback";

/// How many of a simulator's newest orders a request is matched against for scoped faults.
const SCOPED_ORDERS_LOOKED_AT: usize = 10_000;

impl SimCore {
    /// The armed fault scope (see [`Faults::inject_for`]) that `haystack` (a request or a
    /// callback) is about: it names the scope itself, or the vendor reference or an ICCID
    /// of the order placed with that client reference.
    pub fn scope_in(&self, haystack: &[u8]) -> Option<String> {
        let scopes = self.faults.scopes();
        if scopes.is_empty() {
            return None;
        }
        let contains = |needle: &str| {
            needle.len() >= 6
                && haystack
                    .windows(needle.len())
                    .any(|w| w == needle.as_bytes())
        };
        if let Some(scope) = scopes.iter().find(|s| contains(s)) {
            return Some(scope.clone());
        }
        // Scoped orders are recent (a scope lives `faults::SCOPE_LIFETIME`): the newest
        // orders are looked at, never the whole history.
        let scopes: std::collections::HashSet<&str> = scopes.iter().map(String::as_str).collect();
        let orders = self.orders.lock().expect("orders lock");
        orders
            .iter()
            .rev()
            .take(SCOPED_ORDERS_LOOKED_AT)
            .filter(|o| {
                o.client_reference
                    .as_deref()
                    .is_some_and(|c| scopes.contains(c))
            })
            .find(|o| contains(&o.vendor_reference) || o.iccids.iter().any(|i| contains(i)))
            .and_then(|o| o.client_reference.clone())
    }
}

/// Serves `router` with scoped faults: a request that names an armed scope (see
/// [`SimCore::scope_in`], over its path, query, headers and body) takes that scope's
/// faults first. Bodies of simulator requests are small; past 1 MiB nothing is scoped.
pub fn scope_faults(router: Router, core: SimCore) -> Router {
    async fn scoped(
        axum::extract::State(core): axum::extract::State<SimCore>,
        request: axum::extract::Request,
        next: axum::middleware::Next,
    ) -> Response {
        if core.faults.scopes().is_empty() {
            return next.run(request).await;
        }
        let (parts, body) = request.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, 1 << 20).await else {
            return StatusCode::PAYLOAD_TOO_LARGE.into_response();
        };
        let mut haystack = parts.uri.to_string().into_bytes();
        for value in parts.headers.values() {
            haystack.extend_from_slice(value.as_bytes());
        }
        haystack.extend_from_slice(&bytes);
        let scope = core.scope_in(&haystack);
        let request = axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes));
        faults::CURRENT_SCOPE.scope(scope, next.run(request)).await
    }
    router.layer(axum::middleware::from_fn_with_state(core, scoped))
}

/// A simulator listening on a loopback port; stops when dropped.
pub struct RunningSim {
    pub addr: SocketAddr,
    pub base_url: url::Url,
    task: JoinHandle<()>,
}

impl Drop for RunningSim {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds `127.0.0.1:0` for a simulator. Split from [`serve_on`] because adapters and
/// simulators need the base URL before the router exists.
pub async fn bind_loopback() -> std::io::Result<(TcpListener, url::Url)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let url = url::Url::parse(&format!("http://{addr}")).expect("loopback URL is valid");
    Ok((listener, url))
}

pub fn serve_on(listener: TcpListener, router: Router) -> std::io::Result<RunningSim> {
    let addr = listener.local_addr()?;
    let base_url = url::Url::parse(&format!("http://{addr}")).expect("loopback URL is valid");
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "sandbox simulator stopped");
        }
    });
    Ok(RunningSim {
        addr,
        base_url,
        task,
    })
}

/// Puts a simulator router on a fresh loopback port.
pub async fn serve(router: Router) -> std::io::Result<RunningSim> {
    let (listener, _) = bind_loopback().await?;
    serve_on(listener, router)
}

#[derive(Debug, Deserialize)]
struct PriceRise {
    percent: Decimal,
}

#[derive(Debug, Deserialize)]
struct InjectFault {
    operation: String,
    fault: Fault,
    /// How many calls fail; omitted = 1, 0 = until cleared.
    times: Option<u32>,
}

/// `/_sandbox/*`: drive a running simulator from outside (demo, manual testing).
/// `POST /_sandbox/faults` `{"operation","fault":{"kind",…},"times"?}`, `DELETE /_sandbox/faults`,
/// `GET /_sandbox/orders`, `GET|PUT /_sandbox/settings`, `GET /_sandbox/callbacks`,
/// `PUT /_sandbox/prices` `{"percent"}` ([`SimCore::raise_prices`]).
pub fn control_router(core: SimCore) -> Router {
    async fn inject(State(core): State<SimCore>, Json(req): Json<InjectFault>) -> StatusCode {
        let times = match req.times {
            Some(0) => None,
            Some(n) => Some(n),
            None => Some(1),
        };
        core.faults.inject_times(&req.operation, req.fault, times);
        StatusCode::NO_CONTENT
    }
    async fn clear(State(core): State<SimCore>) -> StatusCode {
        core.faults.clear();
        StatusCode::NO_CONTENT
    }
    async fn orders(State(core): State<SimCore>) -> Response {
        Json(core.orders()).into_response()
    }
    async fn callbacks(State(core): State<SimCore>) -> Response {
        Json(core.deliveries()).into_response()
    }
    async fn get_settings(State(core): State<SimCore>) -> Response {
        Json(core.settings()).into_response()
    }
    async fn put_settings(State(core): State<SimCore>, Json(s): Json<SimSettings>) -> Response {
        core.set_settings(s);
        Json(s).into_response()
    }
    async fn prices(State(core): State<SimCore>, Json(p): Json<PriceRise>) -> StatusCode {
        core.raise_prices(p.percent);
        StatusCode::NO_CONTENT
    }
    Router::new()
        .route("/_sandbox/faults", post(inject).delete(clear))
        .route("/_sandbox/prices", put(prices))
        .route("/_sandbox/orders", get(orders))
        .route("/_sandbox/callbacks", get(callbacks))
        .route("/_sandbox/settings", get(get_settings).put(put_settings))
        .with_state(core)
}

/// A Luhn-valid ICCID of `len` digits (19 or 20) starting with `prefix` (e.g. `8985200`:
/// 89 = telecom, then the country and issuer digits).
pub fn generate_iccid(prefix: &str, len: usize) -> String {
    let mut digits: String = prefix.chars().filter(char::is_ascii_digit).collect();
    digits.push_str(&random_digits((len - 1).saturating_sub(digits.len())));
    digits.truncate(len - 1);
    let check = luhn_check_digit(&digits);
    digits.push(char::from(b'0' + check));
    digits
}

/// The digit that makes `payload` + digit pass the Luhn check.
pub fn luhn_check_digit(payload: &str) -> u8 {
    let sum: u32 = payload
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    ((10 - (sum % 10)) % 10) as u8
}

pub fn luhn_valid(number: &str) -> bool {
    match number.split_at_checked(number.len().saturating_sub(1)) {
        Some((payload, check))
            if !payload.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) =>
        {
            luhn_check_digit(payload) == check.as_bytes()[0] - b'0'
        }
        _ => false,
    }
}

/// A random activation matching id in the usual `XXXX-XXXX-XXXX-XXXX` shape.
pub fn generate_matching_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ0123456789";
    let mut rng = rand::thread_rng();
    (0..4)
        .map(|_| {
            (0..4)
                .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// `n` random decimal digits (PINs, MSISDNs, vendor serial numbers).
pub fn random_digits(n: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
        .collect()
}

/// A random string of lower-case letters and digits (tokens, request ids, nonces).
pub fn random_alnum(len: usize) -> String {
    crate::domain::api_key::random_token(len).to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_record_is_for_our_id_or_our_id_with_a_suffix() {
        let record = |r: Option<&str>| SimOrderRecord {
            vendor_reference: "V1".into(),
            client_reference: r.map(String::from),
            sku: "sku".into(),
            quantity: 1,
            iccids: Vec::new(),
            topup: false,
            cancelled: false,
            created_at: Utc::now(),
        };
        assert!(record(Some("ord_A")).is_for("ord_A"));
        assert!(record(Some("ord_A-2")).is_for("ord_A"));
        assert!(!record(Some("ord_AB")).is_for("ord_A"));
        assert!(!record(Some("ord_B")).is_for("ord_A"));
        assert!(!record(None).is_for("ord_A"));
    }

    #[test]
    fn generated_iccids_are_luhn_valid_and_sized() {
        for len in [19, 20] {
            for _ in 0..100 {
                let iccid = generate_iccid("8985200", len);
                assert_eq!(iccid.len(), len);
                assert!(iccid.starts_with("8985200"));
                assert!(luhn_valid(&iccid), "{iccid}");
            }
        }
    }

    #[test]
    fn luhn_matches_known_numbers() {
        // A published test card number and a real-format ICCID.
        assert!(luhn_valid("4111111111111111"));
        assert!(luhn_valid("79927398713"));
        assert!(!luhn_valid("4111111111111112"));
        assert!(!luhn_valid(""));
        assert!(!luhn_valid("12a4"));
    }

    #[test]
    fn matching_ids_have_four_groups() {
        let id = generate_matching_id();
        assert_eq!(id.len(), 19);
        assert_eq!(id.split('-').count(), 4);
    }
}
