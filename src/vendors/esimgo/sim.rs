//! Simulator of eSIM Go API v2.4 (facts: `src/vendors/esimgo/README.md`), served under `/v2.4`.
//!
//! - Every call needs `X-API-Key`: missing → 401 `{"message":"Unauthorized"}`, wrong → 403
//!   `{"message":"Forbidden"}`. Errors are `{"message": ...}` with the HTTP status.
//! - `GET /catalogue` pages with `page`/`perPage` and answers the `{"bundles", "pageCount",
//!   "rows", "pageSize"}` wrapper real clients read; `dataAmount` in decimal MB, prices in the
//!   organisation's currency (GBP here).
//! - `POST /orders` (`type` validate|transaction, `assign`, `order`/`Order` lines) is
//!   synchronous: with `assign: true` the answer carries the new eSIMs; with `iccids` it tops
//!   up existing ones. No idempotency key: every transaction is a new order. Validate and
//!   transaction charge the catalogue price raised by `SimCore::raise_prices` (a price that
//!   moved after the gateway's sync); validate has its own fault operation.
//! - `GET /orders` (`createdAt=gte:…&createdAt=lte:…`, `page`, `limit`) answers a bare array
//!   with eSIM data included (v2.3+); `GET /orders/{ref}` omits it, as the OpenAPI text shows,
//!   so clients read `GET /esims/assignments?reference=` (CSV by default, JSON on request).
//! - `PUT /esims` sets `customerRef`; `GET /esims` filters by `iccid`/`customerRef`.
//! - `DELETE /esims/{iccid}/bundles/{name}?refundToBalance=true` revokes and refunds an
//!   unstarted assignment; a started one cannot be refunded (400).
//! - Callbacks are V3: JSON signed with `X-Signature-SHA256` = base64 HMAC-SHA256(API key,
//!   body). A profile status change (`Released`) per new eSIM after an order; `FirstUse` and
//!   `Utilisation` (1/50/80/100 %) as data is used ([`EsimGoSim::consume`]);
//!   `InsufficientBalance` when an order is refused for lack of credit. The vendor documents
//!   no notification for a revoke, so a cancel sends none; nor a retry policy, so a failed
//!   delivery is not retried.
//! - Bundle assignments are `Processing` for `provisioning_delay`, then `Queued`.

use std::{
    collections::HashMap,
    str::FromStr,
    sync::{Arc, Mutex},
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, Query, RawQuery, Request, State},
    http::{HeaderMap, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{delete, get},
};
use chrono::{DateTime, SecondsFormat, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    domain::api_key::secrets_equal,
    domain::{
        money::Currency,
        secret::{ExposeSecret, SecretString},
    },
    sandbox::{
        OutgoingCallback, SimCore, SimOrderRecord, SimSettings,
        catalog::{SeedData, vendor_products, vendor_products_sized},
        control_router, faults, generate_iccid, generate_matching_id, random_alnum,
    },
    vendors::esimgo::credentials::EsimGoCredentials,
    vendors::{VendorId, esimgo::webhook},
};

/// How this simulator plays the storefront test scenarios (`ordering::scenario`). eSIM Go: out of stock and not refundable, as this simulator names its messages; its order request carries no reference of ours (the customer reference is tagged afterwards), so no fault can be scoped to one order call.
pub const SCENARIO_CODES: crate::sandbox::ScenarioCodes = crate::sandbox::ScenarioCodes {
    sold_out: "out_of_stock",
    cancel_refused: Some("not_refundable"),
    order_names_client_reference: false,
    async_delivery: false,
    usage_callbacks: false,
};

/// Fault-injectable operations.
pub mod ops {
    /// The `X-API-Key` check in front of every call.
    pub const AUTH: &str = "auth";
    /// `GET /catalogue`, `GET /catalogue/bundle/{name}`.
    pub const LIST: &str = "list";
    /// `POST /orders` for new eSIMs.
    pub const ORDER: &str = "order";
    /// `POST /orders` with `type: validate` (the dry run; faults armed for `order` leave it
    /// alone).
    pub const VALIDATE: &str = "validate_order";
    /// `POST /orders` with `iccids` (a bundle onto existing eSIMs).
    pub const TOPUP: &str = "topup";
    /// `GET /orders`, `GET /orders/{ref}`, `GET /esims/assignments`, `GET /esims`,
    /// `GET /esims/{iccid}`.
    pub const QUERY: &str = "query";
    /// `PUT /esims` (vendor-specific: setting `customerRef`).
    pub const TAG: &str = "tag";
    /// `DELETE /esims/{iccid}/bundles/{name}`.
    pub const CANCEL: &str = "cancel";
    /// `GET /esims/{iccid}/bundles`.
    pub const USAGE: &str = "usage";
    /// `GET /organisation`.
    pub const BALANCE: &str = "balance";
    /// `GET /esims/{iccid}/compatible/{bundle}`.
    pub const COMPATIBLE: &str = "topup_compatible";
}

/// The simulator's 400 texts (the real ones are undocumented). Fault `Reject` codes may name
/// them: `insufficient_balance`, `out_of_stock`, `invalid_bundle`, `not_refundable`, or be an
/// HTTP status (`"400"`, `"401"`, `"403"`, `"429"`, `"503"`) with an optional message.
pub mod messages {
    pub const INSUFFICIENT_BALANCE: &str = "Insufficient balance to complete this order";
    pub const OUT_OF_STOCK: &str = "Bundle is out of stock";
    pub const INVALID_BUNDLE: &str = "Invalid bundle: not available to your organisation";
    pub const NOT_REFUNDABLE: &str = "Bundle assignment has started and cannot be refunded";
    pub const RATE_LIMITED: &str = "Rate limit exceeded";
    pub const PROCESSING: &str = "Processing - please come back later";
    pub const INCOMPATIBLE: &str = "Bundle is not compatible with this eSIM";
}

/// The SM-DP+ the simulated eSIMs download from.
const SMDP_ADDRESS: &str = "rsp.sandbox.esim-go.example";
const STARTING_BALANCE: i64 = 5_000;
const USAGE_THRESHOLDS: [u8; 4] = [1, 50, 80, 100];

/// (ISO, name, eSIM Go region) of every country in the seed catalogue.
const COUNTRY_NAMES: &[(&str, &str, &str)] = &[
    ("AE", "United Arab Emirates", "Middle East"),
    ("AR", "Argentina", "South America"),
    ("AT", "Austria", "Europe"),
    ("AU", "Australia", "Oceania"),
    ("BE", "Belgium", "Europe"),
    ("BG", "Bulgaria", "Europe"),
    ("BH", "Bahrain", "Middle East"),
    ("BR", "Brazil", "South America"),
    ("CA", "Canada", "North America"),
    ("CH", "Switzerland", "Europe"),
    ("CL", "Chile", "South America"),
    ("CN", "China", "Asia"),
    ("CO", "Colombia", "South America"),
    ("CY", "Cyprus", "Europe"),
    ("CZ", "Czech Republic", "Europe"),
    ("DE", "Germany", "Europe"),
    ("DK", "Denmark", "Europe"),
    ("EE", "Estonia", "Europe"),
    ("EG", "Egypt", "Africa"),
    ("ES", "Spain", "Europe"),
    ("FI", "Finland", "Europe"),
    ("FR", "France", "Europe"),
    ("GB", "United Kingdom", "Europe"),
    ("GR", "Greece", "Europe"),
    ("HK", "Hong Kong", "Asia"),
    ("HR", "Croatia", "Europe"),
    ("HU", "Hungary", "Europe"),
    ("ID", "Indonesia", "Asia"),
    ("IE", "Ireland", "Europe"),
    ("IL", "Israel", "Middle East"),
    ("IN", "India", "Asia"),
    ("IS", "Iceland", "Europe"),
    ("IT", "Italy", "Europe"),
    ("JP", "Japan", "Asia"),
    ("KR", "South Korea", "Asia"),
    ("KW", "Kuwait", "Middle East"),
    ("LI", "Liechtenstein", "Europe"),
    ("LT", "Lithuania", "Europe"),
    ("LU", "Luxembourg", "Europe"),
    ("LV", "Latvia", "Europe"),
    ("MA", "Morocco", "Africa"),
    ("MO", "Macao", "Asia"),
    ("MT", "Malta", "Europe"),
    ("MX", "Mexico", "North America"),
    ("MY", "Malaysia", "Asia"),
    ("NL", "Netherlands", "Europe"),
    ("NO", "Norway", "Europe"),
    ("NZ", "New Zealand", "Oceania"),
    ("OM", "Oman", "Middle East"),
    ("PE", "Peru", "South America"),
    ("PH", "Philippines", "Asia"),
    ("PL", "Poland", "Europe"),
    ("PT", "Portugal", "Europe"),
    ("QA", "Qatar", "Middle East"),
    ("RO", "Romania", "Europe"),
    ("SA", "Saudi Arabia", "Middle East"),
    ("SE", "Sweden", "Europe"),
    ("SG", "Singapore", "Asia"),
    ("SI", "Slovenia", "Europe"),
    ("SK", "Slovakia", "Europe"),
    ("TH", "Thailand", "Asia"),
    ("TR", "Turkey", "Europe"),
    ("TW", "Taiwan", "Asia"),
    ("US", "United States", "North America"),
    ("VN", "Vietnam", "Asia"),
    ("ZA", "South Africa", "Africa"),
];

fn country_json(iso: &str) -> Value {
    let (name, region) = COUNTRY_NAMES
        .iter()
        .find(|(c, _, _)| *c == iso)
        .map(|(_, n, r)| (*n, *r))
        .unwrap_or((iso, "Other"));
    json!({"name": name, "region": region, "iso": iso})
}

/// A catalogue bundle as the simulated vendor sells it.
#[derive(Debug, Clone)]
struct Bundle {
    name: String,
    description: String,
    countries: Vec<&'static str>,
    /// Decimal MB; `None` when unlimited.
    data_mb: Option<u64>,
    days: u32,
    price: Decimal,
}

impl Bundle {
    /// Which of eSIM Go's underlying networks the bundle runs on. eSIM Go documents that
    /// bundles from another network cannot be applied to an existing eSIM; the simulator puts
    /// about one bundle in four on a second network (a fixed hash of the name), so listings
    /// must ask `compatible` rather than offer every bundle of the coverage.
    fn network(&self) -> u8 {
        let h = self.name.bytes().fold(0x811c_9dc5_u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
        u8::from(h % 4 == 0)
    }

    fn bytes(&self) -> Option<u64> {
        self.data_mb.map(|mb| mb * 1_000_000)
    }

    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "description": self.description,
            "groups": ["Standard eSIM Bundles"],
            "countries": self.countries.iter().map(|c| country_json(c)).collect::<Vec<_>>(),
            "dataAmount": self.data_mb.map_or(-1, |mb| mb as i64),
            "duration": self.days,
            "speed": ["4G", "5G"],
            "autostart": true,
            "unlimited": self.data_mb.is_none(),
            "roamingEnabled": [],
            "price": num(self.price),
            "billingType": "FixedCost",
            "imageUrl": format!("https://sandbox.esim-go.example/img/{}.png", self.name),
        })
    }
}

/// The seed catalogue in eSIM Go's naming (`esim_1GB_7D_JP_V2`) and units (1 GB = 1000 MB).
/// The documented catalogue has no per-day allowance, so daily products are not carried.
fn seed_bundles(size: Option<usize>) -> Vec<Bundle> {
    vendor_products_sized(VendorId::EsimGo, size)
        .into_iter()
        .filter_map(|p| {
            let (data_label, data_mb) = match p.plan.data {
                SeedData::TotalMb(mb) if mb % 1024 == 0 => {
                    (format!("{}GB", mb / 1024), Some(mb / 1024 * 1000))
                }
                SeedData::TotalMb(mb) => (format!("{mb}MB"), Some(mb)),
                SeedData::Unlimited => ("UL".to_string(), None),
                SeedData::DailyMb(_) => return None,
            };
            let code = p
                .plan
                .key
                .split('-')
                .next()
                .unwrap_or("XX")
                .to_ascii_uppercase();
            let coverage = match p.plan.region {
                Some(label) => label.to_string(),
                None => country_json(p.plan.countries[0])["name"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            };
            let data_text = if data_mb.is_none() {
                "Unlimited".to_string()
            } else {
                data_label.clone()
            };
            Some(Bundle {
                name: format!("esim_{data_label}_{}D_{code}_V2", p.plan.days),
                description: format!("eSIM, {data_text}, {} Days, {coverage}, V2", p.plan.days),
                countries: p.plan.countries.clone(),
                data_mb,
                days: p.plan.days,
                price: p.price,
            })
        })
        .collect()
}

/// A JSON number for a decimal, written exactly as the decimal prints.
fn num(d: Decimal) -> Value {
    serde_json::Number::from_str(&d.normalize().to_string())
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// One bundle applied to an eSIM.
#[derive(Debug, Clone)]
struct Assignment {
    id: String,
    bundle: String,
    /// Bytes; `None` when unlimited.
    initial: Option<u64>,
    used: u64,
    days: u32,
    price: Decimal,
    /// The order that applied it.
    reference: String,
    assigned_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    revoked: bool,
    alerts_sent: Vec<u8>,
}

impl Assignment {
    fn end(&self) -> Option<DateTime<Utc>> {
        self.started_at
            .map(|s| s + chrono::Duration::days(i64::from(self.days)))
    }

    fn remaining(&self) -> u64 {
        self.initial.map_or(0, |i| i.saturating_sub(self.used))
    }

    fn state(&self, now: DateTime<Utc>, settings: &SimSettings) -> &'static str {
        let processing =
            chrono::Duration::from_std(settings.provisioning_delay).unwrap_or_default();
        if self.revoked {
            "Revoked"
        } else if self.end().is_some_and(|e| e <= now) {
            "Expired"
        } else if self.started_at.is_some() && self.initial.is_some() && self.remaining() == 0 {
            "Depleted"
        } else if self.started_at.is_some() {
            "Active"
        } else if now < self.assigned_at + processing {
            "Processing"
        } else {
            "Queued"
        }
    }

    fn to_json(&self, now: DateTime<Utc>, settings: &SimSettings) -> Value {
        json!({
            "id": self.id,
            "callTypeGroup": "data",
            "initialQuantity": self.initial.unwrap_or(0),
            "remainingQuantity": self.remaining(),
            "startTime": self.started_at.map(time),
            "endTime": self.end().map(time),
            "bundleState": self.state(now, settings),
            "assignmentDateTime": time(self.assigned_at),
            "assignmentReference": self.reference,
            "unlimited": self.initial.is_none(),
        })
    }
}

#[derive(Debug, Clone)]
struct Esim {
    iccid: String,
    matching_id: String,
    customer_ref: Option<String>,
    profile_status: &'static str,
    assigned_at: DateTime<Utc>,
    last_action: &'static str,
    action_date: DateTime<Utc>,
    pin: String,
    puk: String,
    assignments: Vec<Assignment>,
}

impl Esim {
    fn install_json(&self) -> Value {
        json!({
            "iccid": self.iccid,
            "matchingId": self.matching_id,
            "smdpAddress": SMDP_ADDRESS,
        })
    }
}

#[derive(Debug, Clone)]
struct OrderLine {
    item: String,
    quantity: u32,
    iccids: Vec<String>,
    price_per_unit: Decimal,
}

#[derive(Debug, Clone)]
struct SimOrder {
    reference: String,
    created_at: DateTime<Utc>,
    lines: Vec<OrderLine>,
    total: Decimal,
    assigned: bool,
}

#[derive(Debug)]
struct World {
    balance: Decimal,
    bundles: Vec<Bundle>,
    esims: Vec<Esim>,
    orders: Vec<SimOrder>,
    next_assignment: u64,
}

impl World {
    fn bundle(&self, name: &str) -> Option<&Bundle> {
        self.bundles.iter().find(|b| b.name == name)
    }

    /// A bundle fits an eSIM when it runs on the network of the eSIM's first bundle.
    fn compatible(&self, esim: &Esim, bundle: &Bundle) -> bool {
        esim.assignments
            .first()
            .and_then(|a| self.bundle(&a.bundle))
            .is_none_or(|first| first.network() == bundle.network())
    }

    fn esim_mut(&mut self, iccid: &str) -> Option<&mut Esim> {
        self.esims.iter_mut().find(|e| e.iccid == iccid)
    }

    fn esim(&self, iccid: &str) -> Option<&Esim> {
        self.esims.iter().find(|e| e.iccid == iccid)
    }
}

struct Inner {
    api_key: SecretString,
    currency: Currency,
    core: SimCore,
    state: Mutex<World>,
}

impl Inner {
    fn state(&self) -> std::sync::MutexGuard<'_, World> {
        self.state.lock().expect("esimgo sim state lock")
    }

    /// Signs and queues a V3 notification to the gateway.
    fn notify(&self, body: Value) {
        let body = body.to_string().into_bytes();
        let signature = webhook::sign_base64(self.api_key.expose_secret(), &body);
        self.core.deliver(
            OutgoingCallback {
                content_type: "application/json",
                headers: vec![(webhook::SIGNATURE_HEADER.to_string(), signature)],
                body,
            },
            &[],
        );
    }
}

/// The simulated eSIM Go. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct EsimGoSim {
    inner: Arc<Inner>,
}

impl EsimGoSim {
    pub fn new(creds: &EsimGoCredentials, settings: SimSettings) -> Self {
        let bundles = seed_bundles(settings.catalog_size);
        let currency = vendor_products(VendorId::EsimGo)
            .first()
            .map(|p| p.currency)
            .unwrap_or(Currency::USD);
        EsimGoSim {
            inner: Arc::new(Inner {
                api_key: creds.api_key.clone(),
                currency,
                core: SimCore::new(VendorId::EsimGo, settings),
                state: Mutex::new(World {
                    balance: Decimal::from(STARTING_BALANCE),
                    bundles,
                    esims: Vec::new(),
                    orders: Vec::new(),
                    next_assignment: 1,
                }),
            }),
        }
    }

    pub fn core(&self) -> &SimCore {
        &self.inner.core
    }

    /// Random credentials for sandbox mode; `base_url` is the simulator's bare host.
    pub fn sandbox_credentials(base_url: url::Url) -> EsimGoCredentials {
        let mut base_url = base_url;
        if let Ok(mut segments) = base_url.path_segments_mut() {
            segments.pop_if_empty().push("v2.4");
        }
        EsimGoCredentials {
            api_key: SecretString::from(random_alnum(32)),
            base_url,
        }
    }

    pub fn router(&self) -> Router {
        let inner = self.inner.clone();
        let api = Router::new()
            .route("/catalogue", get(catalogue))
            .route("/catalogue/bundle/{name}", get(catalogue_bundle))
            .route("/organisation", get(organisation))
            .route("/orders", get(list_orders).post(create_order))
            .route("/orders/{reference}", get(order_detail))
            .route("/esims", get(list_esims).put(update_esim))
            .route("/esims/assignments", get(assignments))
            .route("/esims/{iccid}", get(esim_detail))
            .route("/esims/{iccid}/bundles", get(esim_bundles))
            .route("/esims/{iccid}/bundles/{name}", delete(revoke))
            .route("/esims/{iccid}/compatible/{bundle}", get(compatible))
            .route_layer(middleware::from_fn_with_state(inner.clone(), auth))
            .with_state(inner);
        Router::new()
            .nest("/v2.4", api)
            .merge(control_router(self.inner.core.clone()))
            // Any path the API does not serve, as its web framework answers it.
            .fallback(|| async { faults::path_not_found() })
    }

    pub fn currency(&self) -> Currency {
        self.inner.currency
    }

    pub fn balance(&self) -> Decimal {
        self.inner.state().balance
    }

    pub fn set_balance(&self, balance: Decimal) {
        self.inner.state().balance = balance;
    }

    /// Names of every bundle in the catalogue, in catalogue order.
    pub fn bundle_names(&self) -> Vec<String> {
        self.inner
            .state()
            .bundles
            .iter()
            .map(|b| b.name.clone())
            .collect()
    }

    /// A bundle's price in the organisation currency.
    pub fn price(&self, bundle: &str) -> Option<Decimal> {
        self.inner.state().bundle(bundle).map(|b| b.price)
    }

    /// The `customerRef` an eSIM is tagged with.
    pub fn customer_ref(&self, iccid: &str) -> Option<String> {
        self.inner.state().esim(iccid)?.customer_ref.clone()
    }

    /// Simulates data use on an eSIM: starts its first live bundle on first use (`FirstUse`)
    /// and sends `Utilisation` alerts as 1/50/80/100 % are crossed. False if no live bundle.
    pub fn consume(&self, iccid: &str, bytes: u64) -> bool {
        let now = Utc::now();
        let settings = self.inner.core.settings();
        let mut alerts = Vec::new();
        {
            let mut state = self.inner.state();
            let Some(esim) = state.esim_mut(iccid) else {
                return false;
            };
            let Some(a) = esim
                .assignments
                .iter_mut()
                .find(|a| matches!(a.state(now, &settings), "Active" | "Queued" | "Processing"))
            else {
                return false;
            };
            if a.started_at.is_none() {
                a.started_at = Some(now);
                alerts.push(("FirstUse", a.clone()));
            }
            a.used = a
                .initial
                .map_or(a.used + bytes, |i| (a.used + bytes).min(i));
            if let Some(initial) = a.initial.filter(|i| *i > 0) {
                let percent = a.used.saturating_mul(100) / initial;
                for t in USAGE_THRESHOLDS {
                    if percent >= u64::from(t) && !a.alerts_sent.contains(&t) {
                        a.alerts_sent.push(t);
                        alerts.push(("Utilisation", a.clone()));
                    }
                }
            }
            esim.last_action = "eSIM Utilisation Alert";
            esim.action_date = now;
        }
        for (alert, a) in alerts {
            self.inner.notify(usage_alert(iccid, alert, &a));
        }
        true
    }

    /// Simulates the traveller installing the eSIM (a profile status notification follows).
    pub fn install(&self, iccid: &str) -> bool {
        let now = Utc::now();
        {
            let mut state = self.inner.state();
            let Some(esim) = state.esim_mut(iccid) else {
                return false;
            };
            esim.profile_status = "Installed";
        }
        self.inner.notify(profile_event(iccid, "Installed", now));
        true
    }
}

/// A V3 usage notification (`/your-usage-callback-url/`).
fn usage_alert(iccid: &str, alert: &str, a: &Assignment) -> Value {
    json!({
        "iccid": iccid,
        "alertType": alert,
        "bundle": {
            "id": a.id,
            "reference": a.reference,
            "name": a.bundle,
            "description": a.bundle,
            "initialQuantity": a.initial.unwrap_or(0),
            "remainingQuantity": a.remaining(),
            "startTime": a.started_at.map(time),
            "endTime": a.end().map(time),
            "unlimited": a.initial.is_none(),
        }
    })
}

fn profile_event(iccid: &str, status: &str, at: DateTime<Utc>) -> Value {
    json!({"iccid": iccid, "profileStatus": status, "date": time(at)})
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "message": message }))).into_response()
}

/// A 400 decided by a helper; rendered by the handler.
#[derive(Debug)]
struct BadRequest(String);

impl IntoResponse for BadRequest {
    fn into_response(self) -> Response {
        bad_request(&self.0)
    }
}

const CREATED_AT_FORMAT: &str = "createdAt must be gte:<ISO date> or lte:<ISO date>";

fn bad_request(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, message)
}

/// The vendor's error for an injected `Reject` fault.
fn reject(code: &str, message: Option<&str>) -> Response {
    let (status, default) = match code {
        "insufficient_balance" => (400, messages::INSUFFICIENT_BALANCE),
        "out_of_stock" => (400, messages::OUT_OF_STOCK),
        "invalid_bundle" => (400, messages::INVALID_BUNDLE),
        "not_refundable" => (400, messages::NOT_REFUNDABLE),
        "401" => (401, "Unauthorized"),
        "403" => (403, "Forbidden"),
        "429" => (429, messages::RATE_LIMITED),
        "503" => (503, messages::PROCESSING),
        other => (other.parse().unwrap_or(400), "Bad Request"),
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut resp = error(status, message.unwrap_or(default));
    if status == StatusCode::TOO_MANY_REQUESTS {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    }
    resp
}

async fn auth(State(sim): State<Arc<Inner>>, req: Request, next: Next) -> Response {
    let fault = match sim.core.faults.begin(ops::AUTH, reject) {
        Ok(fault) => fault,
        Err(refusal) => return *refusal,
    };
    let resp: Response = {
        let given = req
            .headers()
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        match given {
            None => error(StatusCode::UNAUTHORIZED, "Unauthorized"),
            Some(key) if !secrets_equal(&key, sim.api_key.expose_secret()) => {
                error(StatusCode::FORBIDDEN, "Forbidden")
            }
            Some(_) => next.run(req).await,
        }
    };
    fault.finish(resp).await
}

fn positive(q: &HashMap<String, String>, key: &str, default: usize) -> Result<usize, BadRequest> {
    match q.get(key) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| BadRequest(format!("{key} must be a positive integer"))),
    }
}

async fn catalogue(
    State(sim): State<Arc<Inner>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let fault = match sim.core.faults.begin(ops::LIST, reject) {
        Ok(fault) => fault,
        Err(refusal) => return *refusal,
    };
    let resp: Response = {
        match catalogue_page(&sim, &q) {
            Ok(v) => Json(v).into_response(),
            Err(e) => e.into_response(),
        }
    };
    fault.finish(resp).await
}

fn catalogue_page(sim: &Inner, q: &HashMap<String, String>) -> Result<Value, BadRequest> {
    let page = positive(q, "page", 1)?;
    let per_page = positive(q, "perPage", 50)?;
    let countries: Vec<String> = q
        .get("countries")
        .map(|c| {
            c.split(',')
                .map(|s| s.trim().to_ascii_uppercase())
                .collect()
        })
        .unwrap_or_default();
    let state = sim.state();
    let matching: Vec<&Bundle> = state
        .bundles
        .iter()
        .filter(|b| {
            countries.is_empty() || b.countries.iter().any(|c| countries.iter().any(|x| x == c))
        })
        .collect();
    let rows = matching.len();
    let bundles: Vec<Value> = matching
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|b| b.to_json())
        .collect();
    Ok(json!({
        "bundles": bundles,
        "pageCount": rows.div_ceil(per_page),
        "rows": rows,
        "pageSize": per_page,
    }))
}

async fn catalogue_bundle(State(sim): State<Arc<Inner>>, Path(name): Path<String>) -> Response {
    let fault = match sim.core.faults.begin(ops::LIST, reject) {
        Ok(fault) => fault,
        Err(refusal) => return *refusal,
    };
    let resp: Response = {
        match sim.state().bundle(&name) {
            Some(b) => Json(b.to_json()).into_response(),
            None => bad_request(messages::INVALID_BUNDLE),
        }
    };
    fault.finish(resp).await
}

async fn organisation(State(sim): State<Arc<Inner>>) -> Response {
    let fault = match sim.core.faults.begin(ops::BALANCE, reject) {
        Ok(fault) => fault,
        Err(refusal) => return *refusal,
    };
    let resp: Response = {
        let balance = sim.state().balance;
        Json(json!({"organisations": [{
            "name": "Sandbox Travel Ltd",
            "apiKey": sim.api_key.expose_secret(),
            "taxLiable": "false",
            "addr1": "1 Sandbox Street",
            "addr2": "",
            "city": "London",
            "country": "United Kingdom",
            "postcode": "EC1A 1AA",
            "callbackUrl": sim.core.callback_url().map(|u| u.to_string()).unwrap_or_default(),
            "notes": "",
            "groups": ["Standard eSIM Bundles"],
            "currency": sim.currency.as_str(),
            "balance": num(balance),
            "testCredit": 0,
            "testCreditExpiry": "",
            "businessType": "Travel",
            "website": "https://sandbox.example",
            "productDescription": "Travel eSIMs",
            "users": []
        }]}))
        .into_response()
    };
    fault.finish(resp).await
}

#[derive(Debug, Deserialize)]
struct OrderBody {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    assign: bool,
    /// The OpenAPI text writes `Order`, the docs and clients `order`.
    #[serde(alias = "Order")]
    order: Vec<OrderLineBody>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrderLineBody {
    #[serde(rename = "type")]
    kind: String,
    item: String,
    quantity: u32,
    #[serde(default)]
    iccids: Vec<String>,
}

async fn create_order(State(sim): State<Arc<Inner>>, body: Bytes) -> Response {
    let Ok(req) = serde_json::from_slice::<OrderBody>(&body) else {
        return bad_request("Invalid request body");
    };
    let topup = req.order.iter().any(|l| !l.iccids.is_empty());
    let operation = if req.kind == "validate" {
        ops::VALIDATE
    } else if topup {
        ops::TOPUP
    } else {
        ops::ORDER
    };
    let fault = match sim.core.faults.begin(operation, reject) {
        Ok(fault) => fault,
        Err(refusal) => return *refusal,
    };
    let resp: Response = { place(&sim, &req) };
    fault.finish(resp).await
}

/// Validates an order and, for a transaction, charges it and assigns its bundles.
fn place(sim: &Inner, req: &OrderBody) -> Response {
    if !matches!(req.kind.as_str(), "validate" | "transaction") {
        return bad_request("type must be validate or transaction");
    }
    if req.order.is_empty() {
        return bad_request("order must contain at least one item");
    }
    let now = Utc::now();
    let mut state = sim.state();
    let mut lines = Vec::new();
    for l in &req.order {
        if l.kind != "bundle" {
            return bad_request("Only bundle items can be ordered");
        }
        let Some(bundle) = state.bundle(&l.item) else {
            return bad_request(messages::INVALID_BUNDLE);
        };
        if l.quantity == 0 {
            return bad_request("quantity must be at least 1");
        }
        if !l.iccids.is_empty() {
            if !req.assign {
                return bad_request("ICCIDs can only be specified when assign is true");
            }
            if l.iccids.len() != l.quantity as usize {
                return bad_request("Quantity must match the number of ICCIDs");
            }
            if let Some(unknown) = l.iccids.iter().find(|i| state.esim(i).is_none()) {
                return bad_request(&format!("eSIM not found: {unknown}"));
            }
            let incompatible = l
                .iccids
                .iter()
                .filter_map(|i| state.esim(i))
                .any(|e| !state.compatible(e, bundle));
            if incompatible {
                return bad_request(messages::INCOMPATIBLE);
            }
        }
        lines.push(OrderLine {
            item: l.item.clone(),
            quantity: l.quantity,
            iccids: l.iccids.clone(),
            price_per_unit: sim.core.charged_price(bundle.price),
        });
    }
    let total: Decimal = lines
        .iter()
        .map(|l| l.price_per_unit * Decimal::from(l.quantity))
        .sum();
    if total > state.balance {
        let balance = state.balance;
        drop(state);
        let threshold = Decimal::from(100);
        sim.notify(json!({"alertType": "InsufficientBalance", "balanceInfo": {
            "balance": num(balance),
            "threshold": num(threshold),
            "thresholdPercentRemaining": num((balance * Decimal::from(100) / threshold).round_dp(3)),
        }}));
        return bad_request(messages::INSUFFICIENT_BALANCE);
    }
    if req.kind == "validate" {
        let order = SimOrder {
            reference: String::new(),
            created_at: now,
            lines,
            total,
            assigned: false,
        };
        let mut v = order_json(&order, &state, sim.currency, Detail::Create);
        v["valid"] = json!(true);
        return Json(v).into_response();
    }

    state.balance -= total;
    let reference = uuid::Uuid::new_v4().to_string();
    let mut new_esims = Vec::new();
    for line in &mut lines {
        let bundle = state.bundle(&line.item).cloned().expect("checked above");
        let topup_line = !line.iccids.is_empty();
        if req.assign && line.iccids.is_empty() {
            for _ in 0..line.quantity {
                let esim = new_esim(now);
                line.iccids.push(esim.iccid.clone());
                new_esims.push(esim.iccid.clone());
                state.esims.push(esim);
            }
        }
        for iccid in line.iccids.clone() {
            let id = state.next_assignment.to_string();
            state.next_assignment += 1;
            let esim = state.esim_mut(&iccid).expect("checked or just created");
            esim.assignments.push(Assignment {
                id,
                bundle: bundle.name.clone(),
                initial: bundle.bytes(),
                used: 0,
                days: bundle.days,
                price: line.price_per_unit,
                reference: reference.clone(),
                assigned_at: now,
                started_at: None,
                revoked: false,
                alerts_sent: Vec::new(),
            });
            esim.last_action = "Bundle Applied";
            esim.action_date = now;
        }
        sim.core.record_order(SimOrderRecord {
            vendor_reference: reference.clone(),
            client_reference: None,
            sku: line.item.clone(),
            quantity: line.quantity,
            iccids: line.iccids.clone(),
            topup: topup_line,
            cancelled: false,
            created_at: now,
        });
    }
    let order = SimOrder {
        reference,
        created_at: now,
        lines,
        total,
        assigned: req.assign,
    };
    let body = order_json(&order, &state, sim.currency, Detail::Create);
    state.orders.push(order);
    drop(state);
    for iccid in new_esims {
        sim.notify(profile_event(&iccid, "Released", now));
    }
    Json(body).into_response()
}

fn new_esim(now: DateTime<Utc>) -> Esim {
    Esim {
        // eSIM Go's ICCIDs are 19 digits starting 8944.
        iccid: generate_iccid("894453853", 19),
        matching_id: generate_matching_id(),
        customer_ref: None,
        profile_status: "Released",
        assigned_at: now,
        last_action: "Bundle Applied",
        action_date: now,
        pin: crate::sandbox::random_digits(4),
        puk: crate::sandbox::random_digits(8),
        assignments: Vec::new(),
    }
}

/// Which order rendering: the create answer (captured payload: `createdDate`, eSIMs), the
/// list (OpenAPI: `createDate`, eSIM data since v2.3) or the detail (OpenAPI: no eSIM data).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Detail {
    Create,
    List,
    Single,
}

fn order_json(order: &SimOrder, state: &World, currency: Currency, detail: Detail) -> Value {
    let lines: Vec<Value> = order
        .lines
        .iter()
        .map(|l| {
            let mut v = json!({
                "type": "bundle",
                "item": l.item,
                "quantity": l.quantity,
                "subTotal": num(l.price_per_unit * Decimal::from(l.quantity)),
                "pricePerUnit": num(l.price_per_unit),
            });
            if detail != Detail::Single && order.assigned {
                let esims: Vec<Value> = l
                    .iccids
                    .iter()
                    .filter_map(|i| state.esim(i))
                    .map(Esim::install_json)
                    .collect();
                v["esims"] = json!(esims);
                v["iccids"] = json!(l.iccids);
            }
            v
        })
        .collect();
    let count: usize = order.lines.iter().map(|l| l.iccids.len()).sum();
    let created_key = if detail == Detail::Create {
        "createdDate"
    } else {
        "createDate"
    };
    let mut v = json!({
        "order": lines,
        "total": num(order.total),
        "currency": currency.as_str(),
        "status": "completed",
        "statusMessage": format!("Order completed: {count} eSIMs assigned"),
        "orderReference": order.reference,
        created_key: order.created_at.to_rfc3339_opts(SecondsFormat::Nanos, true),
    });
    if detail == Detail::Create {
        v["assigned"] = json!(order.assigned);
    }
    v
}

/// Repeated query keys (`createdAt=gte:…&createdAt=lte:…`, `reference=a&reference=b`).
fn pairs(raw: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

async fn list_orders(State(sim): State<Arc<Inner>>, RawQuery(raw): RawQuery) -> Response {
    let fault = match sim.core.faults.begin(ops::QUERY, reject) {
        Ok(fault) => fault,
        Err(refusal) => return *refusal,
    };
    let resp = match orders_page(&sim, &pairs(raw.as_deref())) {
        Ok(Value::Array(mut list)) if fault.fault() == Some(&faults::Fault::UnreadableEntry) => {
            // An entry of a shape nobody documented, next to the real ones.
            list.push(json!({"order": "see attachment", "orderReference": 42}));
            Json(Value::Array(list)).into_response()
        }
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    };
    fault.finish(resp).await
}

fn orders_page(sim: &Inner, q: &[(String, String)]) -> Result<Value, BadRequest> {
    let mut from = None;
    let mut to = None;
    for (_, v) in q.iter().filter(|(k, _)| k == "createdAt") {
        let (op, at) = v.split_once(':').unwrap_or(("eq", v));
        let at = crate::vendors::esimgo::wire::parse_time(at)
            .ok_or_else(|| BadRequest(CREATED_AT_FORMAT.into()))?;
        match op {
            "gte" => from = Some(at),
            "lte" => to = Some(at),
            _ => return Err(BadRequest(CREATED_AT_FORMAT.into())),
        }
    }
    let single: HashMap<String, String> = q.iter().cloned().collect();
    let page = positive(&single, "page", 1)?;
    let limit = positive(&single, "limit", 10)?;
    let state = sim.state();
    let orders: Vec<Value> = state
        .orders
        .iter()
        .filter(|o| from.is_none_or(|f| o.created_at >= f) && to.is_none_or(|t| o.created_at <= t))
        .skip((page - 1) * limit)
        .take(limit)
        .map(|o| order_json(o, &state, sim.currency, Detail::List))
        .collect();
    Ok(Value::Array(orders))
}

async fn order_detail(State(sim): State<Arc<Inner>>, Path(reference): Path<String>) -> Response {
    let fault = match sim.core.faults.begin(ops::QUERY, reject) {
        Ok(fault) => fault,
        Err(refusal) => return *refusal,
    };
    let resp: Response = {
        let state = sim.state();
        match state.orders.iter().find(|o| o.reference == reference) {
            Some(o) => Json(order_json(o, &state, sim.currency, Detail::Single)).into_response(),
            None => bad_request("Order not found"),
        }
    };
    fault.finish(resp).await
}

async fn assignments(
    State(sim): State<Arc<Inner>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let fault = match sim.core.faults.begin(ops::QUERY, reject) {
        Ok(fault) => fault,
        Err(refusal) => return *refusal,
    };
    let resp: Response = {
        let references: Vec<String> = pairs(raw.as_deref())
            .into_iter()
            .filter(|(k, _)| k == "reference")
            .map(|(_, v)| v)
            .collect();
        let json_wanted = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("application/json"));
        install_details(&sim, &references, json_wanted)
    };
    fault.finish(resp).await
}

fn install_details(sim: &Inner, references: &[String], json_wanted: bool) -> Response {
    if references.is_empty() {
        return bad_request("reference is required");
    }
    let state = sim.state();
    let mut rows = Vec::new();
    for reference in references {
        let Some(order) = state.orders.iter().find(|o| &o.reference == reference) else {
            return bad_request(&format!("Order not found: {reference}"));
        };
        for line in &order.lines {
            for esim in line.iccids.iter().filter_map(|i| state.esim(i)) {
                rows.push((esim, line.item.clone(), reference.clone()));
            }
        }
    }
    if json_wanted {
        let v: Vec<Value> = rows
            .iter()
            .map(|(e, _, _)| {
                let mut v = e.install_json();
                v["profileStatus"] = json!(e.profile_status);
                v
            })
            .collect();
        return Json(v).into_response();
    }
    let mut csv = String::from("ICCID,Matching ID,RSP URL,Bundle,Reference\n");
    for (e, bundle, reference) in rows {
        csv.push_str(&format!(
            "{},{},{SMDP_ADDRESS},{bundle},{reference}\n",
            e.iccid, e.matching_id
        ));
    }
    ([(header::CONTENT_TYPE, "text/csv")], csv).into_response()
}

async fn list_esims(
    State(sim): State<Arc<Inner>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let fault = match sim.core.faults.begin(ops::QUERY, reject) {
        Ok(fault) => fault,
        Err(refusal) => return *refusal,
    };
    let resp: Response = {
        let (page, per_page) = match (positive(&q, "page", 1), positive(&q, "perPage", 50)) {
            (Ok(p), Ok(n)) => (p, n),
            (Err(e), _) | (_, Err(e)) => return e.into_response(),
        };
        let filter_by = q.get("filterBy").map(String::as_str);
        let filter = q.get("filter").map(String::as_str).unwrap_or("");
        let state = sim.state();
        let esims: Vec<Value> = state
            .esims
            .iter()
            .filter(|e| match filter_by {
                Some("iccid") => e.iccid == filter,
                Some("customerRef") => e.customer_ref.as_deref() == Some(filter),
                _ => true,
            })
            .skip((page - 1) * per_page)
            .take(per_page)
            .map(|e| {
                json!({
                    "iccid": e.iccid,
                    "customerRef": e.customer_ref.clone().unwrap_or_default(),
                    "lastAction": e.last_action,
                    "actionDate": time(e.action_date),
                    "physical": false,
                    "assignedDate": time(e.assigned_at),
                })
            })
            .collect();
        Json(json!({ "esims": esims })).into_response()
    };
    fault.finish(resp).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateEsimBody {
    #[serde(default)]
    iccid: Option<String>,
    #[serde(default)]
    customer_ref: Option<String>,
}

/// `PUT /esims`: the OpenAPI text documents both a JSON body and query parameters.
async fn update_esim(
    State(sim): State<Arc<Inner>>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let fault = match sim.core.faults.begin(ops::TAG, reject) {
        Ok(fault) => fault,
        Err(refusal) => return *refusal,
    };
    let resp: Response = {
        let b: UpdateEsimBody = if body.is_empty() {
            UpdateEsimBody::default()
        } else {
            match serde_json::from_slice(&body) {
                Ok(b) => b,
                Err(_) => return bad_request("Invalid request body"),
            }
        };
        let iccid = b.iccid.or_else(|| q.get("iccid").cloned());
        let customer_ref = b.customer_ref.or_else(|| q.get("customerRef").cloned());
        match (iccid, customer_ref) {
            (Some(iccid), Some(customer_ref)) => tag(&sim, &iccid, &customer_ref),
            _ => bad_request("iccid and customerRef are required"),
        }
    };
    fault.finish(resp).await
}

fn tag(sim: &Inner, iccid: &str, customer_ref: &str) -> Response {
    let reference = {
        let mut state = sim.state();
        let Some(esim) = state.esim_mut(iccid) else {
            return bad_request(&format!("eSIM not found: {iccid}"));
        };
        esim.customer_ref = Some(customer_ref.to_string());
        esim.last_action = "eSIM Updated";
        esim.action_date = Utc::now();
        // The order that created this eSIM (its first assignment).
        esim.assignments.first().map(|a| a.reference.clone())
    };
    // The vendor has no client reference on orders; the tag is the closest thing, so the
    // sandbox's record of the order learns it here.
    if let Some(reference) = reference {
        sim.core.update_order(&reference, |o| {
            o.client_reference = Some(customer_ref.to_string())
        });
    }
    Json(json!({"iccid": iccid, "customerRef": customer_ref})).into_response()
}

async fn esim_detail(State(sim): State<Arc<Inner>>, Path(iccid): Path<String>) -> Response {
    let fault = match sim.core.faults.begin(ops::QUERY, reject) {
        Ok(fault) => fault,
        Err(refusal) => return *refusal,
    };
    let resp: Response = {
        let state = sim.state();
        match state.esim(&iccid) {
            Some(e) => Json(json!({
                "iccid": e.iccid,
                "matchingId": e.matching_id,
                "smdpAddress": SMDP_ADDRESS,
                "profileStatus": e.profile_status,
                "pin": e.pin,
                "puk": e.puk,
                "firstInstalledDateTime": "",
            }))
            .into_response(),
            None => bad_request(&format!("eSIM not found: {iccid}")),
        }
    };
    fault.finish(resp).await
}

async fn compatible(
    State(sim): State<Arc<Inner>>,
    Path((iccid, bundle)): Path<(String, String)>,
) -> Response {
    let fault = match sim.core.faults.begin(ops::COMPATIBLE, reject) {
        Ok(fault) => fault,
        Err(refusal) => return *refusal,
    };
    let resp: Response = {
        let state = sim.state();
        match (state.esim(&iccid), state.bundle(&bundle)) {
            (None, _) => bad_request(&format!("eSIM not found: {iccid}")),
            (_, None) => bad_request(messages::INVALID_BUNDLE),
            (Some(e), Some(b)) => {
                Json(json!({ "compatible": state.compatible(e, b) })).into_response()
            }
        }
    };
    fault.finish(resp).await
}

async fn esim_bundles(
    State(sim): State<Arc<Inner>>,
    Path(iccid): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let fault = match sim.core.faults.begin(ops::USAGE, reject) {
        Ok(fault) => fault,
        Err(refusal) => return *refusal,
    };
    let resp: Response = {
        let include_used = q.get("includeUsed").is_some_and(|v| v == "true");
        let limit = match positive(&q, "limit", 15) {
            Ok(n) if n <= 200 => n,
            _ => return bad_request("limit must be between 1 and 200"),
        };
        let now = Utc::now();
        let settings = sim.core.settings();
        let state = sim.state();
        let Some(esim) = state.esim(&iccid) else {
            return bad_request(&format!("eSIM not found: {iccid}"));
        };
        let mut grouped: Vec<(String, Vec<Value>)> = Vec::new();
        for a in esim.assignments.iter().rev().take(limit).rev() {
            let state_name = a.state(now, &settings);
            if !include_used && matches!(state_name, "Revoked" | "Expired") {
                continue;
            }
            let v = a.to_json(now, &settings);
            match grouped.iter_mut().find(|(n, _)| *n == a.bundle) {
                Some((_, list)) => list.push(v),
                None => grouped.push((a.bundle.clone(), vec![v])),
            }
        }
        let bundles: Vec<Value> = grouped
            .into_iter()
            .map(|(name, assignments)| json!({"name": name, "assignments": assignments}))
            .collect();
        Json(json!({ "bundles": bundles })).into_response()
    };
    fault.finish(resp).await
}

async fn revoke(
    State(sim): State<Arc<Inner>>,
    Path((iccid, name)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let fault = match sim.core.faults.begin(ops::CANCEL, reject) {
        Ok(fault) => fault,
        Err(refusal) => return *refusal,
    };
    let resp: Response = {
        let validate = q.get("type").is_some_and(|t| t == "validate");
        let refund = q.get("refundToBalance").is_some_and(|v| v == "true");
        revoke_bundle(&sim, &iccid, &name, validate, refund)
    };
    fault.finish(resp).await
}

fn revoke_bundle(sim: &Inner, iccid: &str, name: &str, validate: bool, refund: bool) -> Response {
    let mut state = sim.state();
    let Some(esim) = state.esim_mut(iccid) else {
        return bad_request(&format!("eSIM not found: {iccid}"));
    };
    let Some(a) = esim
        .assignments
        .iter_mut()
        .rev()
        .find(|a| a.bundle == name && !a.revoked)
    else {
        return bad_request(&format!("Bundle not found on eSIM: {name}"));
    };
    if refund && a.started_at.is_some() {
        return bad_request(messages::NOT_REFUNDABLE);
    }
    if validate {
        return Json(json!({"status": "valid"})).into_response();
    }
    a.revoked = true;
    let price = a.price;
    let reference = a.reference.clone();
    esim.last_action = if refund {
        "Bundle Refund"
    } else {
        "Bundle Revoked"
    };
    esim.action_date = Utc::now();
    if refund {
        state.balance += price;
    }
    drop(state);
    sim.core.update_order(&reference, |o| o.cancelled = true);
    Json(json!({"status": "Success"})).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::luhn_valid;

    #[test]
    fn catalogue_is_rendered_in_esim_go_units_and_names() {
        let bundles = seed_bundles(None);
        assert!(bundles.len() > 150, "{}", bundles.len());
        let names: std::collections::HashSet<_> = bundles.iter().map(|b| &b.name).collect();
        assert_eq!(names.len(), bundles.len(), "bundle names are unique");
        let one_gb = bundles
            .iter()
            .find(|b| b.name.starts_with("esim_1GB_7D_"))
            .unwrap();
        assert_eq!(one_gb.data_mb, Some(1000));
        assert!(one_gb.description.starts_with("eSIM, 1GB, 7 Days, "));
        assert!(bundles.iter().all(|b| b.price > Decimal::ZERO));
        assert_eq!(
            seed_bundles(None)[0].name,
            bundles[0].name,
            "stable across runs"
        );
    }

    #[test]
    fn new_esims_have_luhn_valid_iccids() {
        let e = new_esim(Utc::now());
        assert_eq!(e.iccid.len(), 19);
        assert!(luhn_valid(&e.iccid));
        assert_eq!((e.pin.len(), e.puk.len()), (4, 8));
    }

    #[test]
    fn sandbox_credentials_point_at_the_versioned_path() {
        let c = EsimGoSim::sandbox_credentials("http://127.0.0.1:4000".parse().unwrap());
        assert_eq!(c.base_url.as_str(), "http://127.0.0.1:4000/v2.4");
        assert_eq!(c.api_key.expose_secret().len(), 32);
    }

    #[test]
    fn decimals_render_as_exact_json_numbers() {
        assert_eq!(num("1.36".parse().unwrap()).to_string(), "1.36");
        assert_eq!(num("2.50".parse().unwrap()).to_string(), "2.5");
        assert_eq!(num(Decimal::from(5000)).to_string(), "5000");
    }
}
