//! Simulator for Multiverse (facts: `src/vendors/multiverse/README.md`).
//!
//! Documented behaviour, reproduced exactly: both auth layers on every call (the
//! `X-Multiverse-Access-Token` header, checked for user, SHA-256 and a 10-digit timestamp,
//! and the OAuth2 client-credentials token from `POST /api/v1/auth/token` with Basic auth and
//! a JSON body), refusals as HTTP 401 `{"code":"401001","message":"Unauthorized"}`, the
//! package list, the asynchronous purchase whose eSIM arrives by an unsigned callback, and
//! the `{"code","message"}` envelope whose first three digits are the HTTP status.
//!
//! Undocumented behaviour implements EXACTLY the guesses listed in
//! `crate::vendors::multiverse::assumptions` (paths, package fields and binary units, the
//! order object, `/purchase/sync`, order query, usage in MB, top-up, balance, the `402001`
//! insufficient-balance code, ±1 h timestamp tolerance, `expires_in`, callback retries, no
//! cancel endpoint, no deduplication of `customer_order_id`). The paths and JSON are written
//! out here independently of the adapter, so a typo on either side fails a test. Fix both
//! places together when the vendor confirms or corrects a guess.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::sandbox::{
    OutgoingCallback, SimCore, SimOrderRecord, SimSettings,
    catalog::{SeedData, VendorProduct, vendor_products_sized},
    control_router,
    faults::Armed,
    generate_iccid, generate_matching_id, random_alnum,
};
use crate::{
    domain::api_key::secrets_equal,
    domain::{
        money::Currency,
        secret::{ExposeSecret, SecretString},
    },
    vendors::{
        VendorId,
        multiverse::{
            API_NOT_FOUND, UNAUTHORIZED_CODE,
            assumptions::{
                ACCESS_TOKEN_TOLERANCE_SECS, BALANCE, CALLBACK_RETRY_DELAYS,
                DEFAULT_TOKEN_LIFETIME, INSUFFICIENT_BALANCE_CODE, ORDERS, PACKAGES, PREFIX,
                STATUS_COMPLETED, STATUS_PROCESSING,
            },
            credentials::MultiverseCredentials,
        },
    },
};

/// How this simulator plays the storefront test scenarios (`ordering::scenario`). Multiverse: 500002 sold out; no cancel endpoint is known; its order carries our id as customer_order_id.
pub const SCENARIO_CODES: crate::sandbox::ScenarioCodes = crate::sandbox::ScenarioCodes {
    sold_out: "500002",
    cancel_refused: None,
    order_names_client_reference: true,
    async_delivery: false,
    usage_callbacks: false,
};

/// Fault-injectable operations (`core.faults`).
pub mod ops {
    /// `POST /api/v1/auth/token`.
    pub const AUTH: &str = "auth";
    pub const LIST: &str = "list";
    /// The asynchronous `/purchase`.
    pub const ORDER: &str = "order";
    /// Tel25's `/purchase/sync` (vendor-specific).
    pub const ORDER_SYNC: &str = "order_sync";
    /// Both order queries (by id and by `customer_order_id`).
    pub const QUERY: &str = "query";
    pub const TOPUP: &str = "topup";
    pub const USAGE: &str = "usage";
    pub const BALANCE: &str = "balance";
    // No `cancel`: Multiverse has no known cancel endpoint.
}

const SMDP: &str = "rsp.multiverse-sandbox.test";
const ICCID_PREFIX: &str = "8985230";
const STARTING_BALANCE: &str = "10000.00";

/// The package id of a seed product (stable across runs).
pub fn package_id(seed_key: &str) -> String {
    format!("mv_{seed_key}")
}

struct Package {
    id: String,
    product: VendorProduct,
}

#[derive(Debug, Clone)]
struct SimOrder {
    order_id: String,
    customer_order_id: String,
    package_id: String,
    status: &'static str,
    iccid: Option<String>,
    activation_code: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl SimOrder {
    fn to_json(&self) -> Value {
        let mut v = json!({
            "order_id": self.order_id,
            "customer_order_id": self.customer_order_id,
            "package_id": self.package_id,
            "status": self.status,
            "created_at": self.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "updated_at": self.updated_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        });
        if let (Some(iccid), Some(code)) = (&self.iccid, &self.activation_code) {
            v["iccid"] = json!(iccid);
            v["smdp"] = json!(SMDP);
            v["activation_code"] = json!(code);
        }
        v
    }
}

#[derive(Debug, Clone)]
struct SimEsim {
    /// Megabytes; `None` = unlimited.
    total_mb: Option<u64>,
    used_mb: Decimal,
    status: &'static str,
    activated_at: Option<DateTime<Utc>>,
    expires_at: DateTime<Utc>,
}

struct SimState {
    packages: Vec<Package>,
    sold_out: HashSet<String>,
    balance: Decimal,
    tokens: HashMap<String, Instant>,
    token_lifetime: Duration,
    token_requests: u32,
    orders: Vec<SimOrder>,
    esims: HashMap<String, SimEsim>,
    /// Guessed operations (by `ops` name) this simulator answers `404001 API not found`,
    /// as a Multiverse that does not offer them would.
    withdrawn: HashSet<&'static str>,
}

impl SimState {
    fn package(&self, id: &str) -> Option<&Package> {
        self.packages.iter().find(|p| p.id == id)
    }
}

struct SimCredentials {
    user_id: String,
    security_token: String,
    client_id: String,
    client_secret: String,
}

#[derive(Clone)]
pub struct MultiverseSim {
    core: SimCore,
    creds: Arc<SimCredentials>,
    state: Arc<Mutex<SimState>>,
}

/// A refusal in the vendor's envelope, boxed because a `Response` is large.
type Refusal = Box<Response>;
type Reply = Result<Response, Refusal>;

impl MultiverseSim {
    pub fn new(creds: &MultiverseCredentials, settings: SimSettings) -> Self {
        let packages = vendor_products_sized(VendorId::Multiverse, settings.catalog_size)
            .into_iter()
            .map(|product| Package {
                id: package_id(&product.plan.key),
                product,
            })
            .collect();
        MultiverseSim {
            core: SimCore::new(VendorId::Multiverse, settings),
            creds: Arc::new(SimCredentials {
                user_id: creds.user_id.expose_secret().to_string(),
                security_token: creds.security_token.expose_secret().to_string(),
                client_id: creds.client_id.expose_secret().to_string(),
                client_secret: creds.client_secret.expose_secret().to_string(),
            }),
            state: Arc::new(Mutex::new(SimState {
                packages,
                sold_out: HashSet::new(),
                balance: STARTING_BALANCE.parse().expect("valid decimal"),
                tokens: HashMap::new(),
                token_lifetime: DEFAULT_TOKEN_LIFETIME,
                token_requests: 0,
                orders: Vec::new(),
                esims: HashMap::new(),
                withdrawn: HashSet::new(),
            })),
        }
    }

    pub fn core(&self) -> &SimCore {
        &self.core
    }

    /// Random credentials for sandbox mode.
    pub fn sandbox_credentials(base_url: url::Url) -> MultiverseCredentials {
        MultiverseCredentials {
            user_id: SecretString::from(format!("sandbox-{}", random_alnum(8))),
            security_token: SecretString::from(random_alnum(32)),
            client_id: SecretString::from(format!("mv-{}", random_alnum(12))),
            client_secret: SecretString::from(random_alnum(32)),
            base_url,
        }
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route(&format!("{PREFIX}/auth/token"), post(token))
            .route(&format!("{PREFIX}{PACKAGES}"), get(packages))
            .route(
                &format!("{PREFIX}{PACKAGES}/{{package_id}}/purchase"),
                post(purchase),
            )
            .route(
                &format!("{PREFIX}{PACKAGES}/{{package_id}}/purchase/sync"),
                post(purchase_sync),
            )
            .route(&format!("{PREFIX}{ORDERS}"), get(orders_by_customer_id))
            .route(&format!("{PREFIX}{ORDERS}/{{order_id}}"), get(order_by_id))
            .route(
                &format!("{PREFIX}/esims/{{iccid}}/packages/{{package_id}}/topup"),
                post(topup),
            )
            .route(&format!("{PREFIX}/esims/{{iccid}}/usage"), get(usage))
            .route(&format!("{PREFIX}{BALANCE}"), get(balance))
            .fallback(|| async { error(API_NOT_FOUND, "API not found") })
            .with_state(self.clone())
            .merge(control_router(self.core.clone()))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, SimState> {
        self.state.lock().expect("multiverse sim lock")
    }

    /// The prepaid balance, in EUR.
    pub fn balance(&self) -> Decimal {
        self.state().balance
    }

    pub fn set_balance(&self, balance: Decimal) {
        self.state().balance = balance;
    }

    /// Every OAuth token issued so far stops working (as after the vendor's expiry).
    pub fn expire_tokens(&self) {
        let now = Instant::now();
        for expiry in self.state().tokens.values_mut() {
            *expiry = now;
        }
    }

    /// The `expires_in` of tokens issued from now on.
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.state().token_lifetime = lifetime;
    }

    /// How many tokens `/auth/token` has issued.
    pub fn token_requests(&self) -> u32 {
        self.state().token_requests
    }

    /// Makes a guessed operation (`ops::ORDER_SYNC`, `ops::QUERY`, `ops::TOPUP`,
    /// `ops::USAGE`, `ops::BALANCE`) answer `404001 API not found`, as a Multiverse whose
    /// documents are all there is would; `offered = true` brings it back.
    pub fn set_offered(&self, operation: &'static str, offered: bool) {
        let mut state = self.state();
        if offered {
            state.withdrawn.remove(operation);
        } else {
            state.withdrawn.insert(operation);
        }
    }

    /// Only the documented operations: every guessed one answers `404001`.
    pub fn documented_only(&self) {
        for op in [
            ops::ORDER_SYNC,
            ops::QUERY,
            ops::TOPUP,
            ops::USAGE,
            ops::BALANCE,
        ] {
            self.set_offered(op, false);
        }
    }

    /// `404001` when `operation` is withdrawn (see [`MultiverseSim::set_offered`]).
    fn offered(&self, operation: &'static str) -> Result<(), Refusal> {
        if self.state().withdrawn.contains(operation) {
            Err(refuse(API_NOT_FOUND, "API not found"))
        } else {
            Ok(())
        }
    }

    /// Makes a package answer `500002 No available sim iccid`.
    pub fn set_sold_out(&self, package_id: &str, sold_out: bool) {
        let mut state = self.state();
        if sold_out {
            state.sold_out.insert(package_id.to_string());
        } else {
            state.sold_out.remove(package_id);
        }
    }

    /// Sets the data an eSIM has used (megabytes) and marks it active.
    pub fn set_usage(&self, iccid: &str, used_mb: Decimal) {
        if let Some(esim) = self.state().esims.get_mut(iccid) {
            esim.used_mb = used_mb;
            esim.status = "ACTIVE";
            esim.activated_at.get_or_insert_with(Utc::now);
        }
    }

    /// The seed products this simulator sells, with their package ids.
    pub fn products(&self) -> Vec<(String, VendorProduct)> {
        self.state()
            .packages
            .iter()
            .map(|p| (p.id.clone(), p.product.clone()))
            .collect()
    }

    /// `X-Multiverse-Access-Token`: known user, 10-digit timestamp within tolerance, and
    /// SHA-256(timestamp + security_token) in lowercase hex.
    fn access_token_valid(&self, headers: &HeaderMap) -> bool {
        let Some(decoded) = header(headers, "x-multiverse-access-token")
            .and_then(|h| h.strip_prefix("Bearer "))
            .and_then(|b| BASE64.decode(b.trim()).ok())
            .and_then(|b| String::from_utf8(b).ok())
        else {
            return false;
        };
        // The user id may itself contain '/', so split from the right.
        let mut parts = decoded.rsplitn(3, '/');
        let (Some(hash), Some(ts), Some(user)) = (parts.next(), parts.next(), parts.next()) else {
            return false;
        };
        let fresh = ts.len() == 10
            && ts.bytes().all(|b| b.is_ascii_digit())
            && ts
                .parse::<i64>()
                .is_ok_and(|t| (Utc::now().timestamp() - t).abs() <= ACCESS_TOKEN_TOLERANCE_SECS);
        let expected = hex::encode(Sha256::digest(format!("{ts}{}", self.creds.security_token)));
        fresh && secrets_equal(user, &self.creds.user_id) && secrets_equal(hash, &expected)
    }

    fn basic_valid(&self, headers: &HeaderMap) -> bool {
        let Some(pair) = header(headers, "authorization")
            .and_then(|h| h.strip_prefix("Basic "))
            .and_then(|b| BASE64.decode(b.trim()).ok())
            .and_then(|b| String::from_utf8(b).ok())
        else {
            return false;
        };
        let Some((id, secret)) = pair.split_once(':') else {
            return false;
        };
        secrets_equal(id, &self.creds.client_id) & secrets_equal(secret, &self.creds.client_secret)
    }

    fn oauth_valid(&self, headers: &HeaderMap) -> bool {
        let Some(token) = header(headers, "authorization").and_then(|h| {
            h.split_once(' ')
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, t)| t.trim().to_string())
        }) else {
            return false;
        };
        self.state()
            .tokens
            .get(&token)
            .is_some_and(|expiry| Instant::now() < *expiry)
    }

    /// Both layers, as every call but `/auth/token` needs them.
    /// The start of every authenticated operation: served at all, authorized, then its
    /// injected fault (if any) taken.
    fn enter(&self, operation: &'static str, headers: &HeaderMap) -> Result<Armed, Refusal> {
        self.offered(operation)?;
        self.authorize(headers)?;
        self.core.faults.begin(operation, reject)
    }

    fn authorize(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        if self.access_token_valid(headers) && self.oauth_valid(headers) {
            Ok(())
        } else {
            Err(unauthorized())
        }
    }

    fn issue_token(&self) -> Value {
        let token = random_alnum(48);
        let mut state = self.state();
        let lifetime = state.token_lifetime;
        state
            .tokens
            .insert(token.clone(), Instant::now() + lifetime);
        state.token_requests += 1;
        json!({
            "token_type": "Bearer",
            "access_token": token,
            "expires_in": lifetime.as_secs(),
        })
    }

    /// Checks stock and balance, debits, and records a `PROCESSING` order.
    fn create_order(&self, package_id: &str, customer_order_id: &str) -> Result<SimOrder, Refusal> {
        let mut state = self.state();
        let price = state
            .package(package_id)
            .map(|p| p.product.price)
            .ok_or_else(|| refuse("404002", "Resource not found"))?;
        if state.sold_out.contains(package_id) {
            return Err(refuse("500002", "No available sim iccid"));
        }
        if state.balance < price {
            return Err(refuse(INSUFFICIENT_BALANCE_CODE, "Insufficient balance"));
        }
        state.balance -= price;
        let now = Utc::now();
        let order = SimOrder {
            order_id: format!("MV{}", random_alnum(14).to_ascii_uppercase()),
            customer_order_id: customer_order_id.to_string(),
            package_id: package_id.to_string(),
            status: STATUS_PROCESSING,
            iccid: None,
            activation_code: None,
            created_at: now,
            updated_at: now,
        };
        state.orders.push(order.clone());
        drop(state);
        self.core.record_order(SimOrderRecord {
            vendor_reference: order.order_id.clone(),
            client_reference: Some(customer_order_id.to_string()),
            sku: package_id.to_string(),
            quantity: 1,
            iccids: Vec::new(),
            topup: false,
            cancelled: false,
            created_at: now,
        });
        Ok(order)
    }

    /// Allocates the eSIM of a `PROCESSING` order and returns the completed order.
    fn allocate(&self, order_id: &str) -> Option<SimOrder> {
        let mut state = self.state();
        let index = state
            .orders
            .iter()
            .position(|o| o.order_id == order_id && o.status == STATUS_PROCESSING)?;
        let package = state.package(&state.orders[index].package_id)?;
        let (total_mb, days) = (total_mb(&package.product), package.product.plan.days);
        let iccid = generate_iccid(ICCID_PREFIX, 19);
        let now = Utc::now();
        state.esims.insert(
            iccid.clone(),
            SimEsim {
                total_mb,
                used_mb: Decimal::ZERO,
                status: "READY",
                activated_at: None,
                expires_at: now + chrono::Duration::days(i64::from(days) + 180),
            },
        );
        let order = &mut state.orders[index];
        order.status = STATUS_COMPLETED;
        order.iccid = Some(iccid.clone());
        order.activation_code = Some(generate_matching_id());
        order.updated_at = now;
        let order = order.clone();
        drop(state);
        self.core
            .update_order(order_id, |r| r.iccids = vec![iccid.clone()]);
        Some(order)
    }

    /// After the provisioning delay, allocates and pushes the order to the registered URL.
    fn provision_later(&self, order_id: String) {
        let sim = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(sim.core.settings().provisioning_delay).await;
            if let Some(order) = sim.allocate(&order_id) {
                sim.core.deliver(
                    OutgoingCallback {
                        content_type: "application/json",
                        headers: Vec::new(),
                        body: order.to_json().to_string().into_bytes(),
                    },
                    CALLBACK_RETRY_DELAYS,
                );
            }
        });
    }

    fn topup_order(
        &self,
        iccid: &str,
        package_id: &str,
        customer_order_id: &str,
    ) -> Result<SimOrder, Refusal> {
        let mut state = self.state();
        let not_found = || refuse("404002", "Resource not found");
        if !state.esims.contains_key(iccid) {
            return Err(not_found());
        }
        let package = state.package(package_id).ok_or_else(not_found)?;
        if !package.product.topup {
            return Err(refuse("400001", "Invalid parameter"));
        }
        let (price, extra_mb) = (package.product.price, total_mb(&package.product));
        if state.balance < price {
            return Err(refuse(INSUFFICIENT_BALANCE_CODE, "Insufficient balance"));
        }
        state.balance -= price;
        if let Some(esim) = state.esims.get_mut(iccid) {
            esim.total_mb = esim.total_mb.zip(extra_mb).map(|(a, b)| a + b);
        }
        let now = Utc::now();
        let order = SimOrder {
            order_id: format!("MV{}", random_alnum(14).to_ascii_uppercase()),
            customer_order_id: customer_order_id.to_string(),
            package_id: package_id.to_string(),
            status: STATUS_COMPLETED,
            iccid: Some(iccid.to_string()),
            activation_code: None,
            created_at: now,
            updated_at: now,
        };
        state.orders.push(order.clone());
        drop(state);
        self.core.record_order(SimOrderRecord {
            vendor_reference: order.order_id.clone(),
            client_reference: Some(customer_order_id.to_string()),
            sku: package_id.to_string(),
            quantity: 1,
            iccids: vec![iccid.to_string()],
            topup: true,
            cancelled: false,
            created_at: now,
        });
        Ok(order)
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The vendor's error envelope; the HTTP status is the code's first three digits.
fn error(code: &str, message: &str) -> Response {
    let status = code
        .get(..3)
        .and_then(|s| s.parse::<u16>().ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(json!({"code": code, "message": message}))).into_response()
}

fn refuse(code: &str, message: &str) -> Refusal {
    Box::new(error(code, message))
}

fn unauthorized() -> Refusal {
    refuse(UNAUTHORIZED_CODE, "Unauthorized")
}

/// The documented message of a code, for injected rejections.
fn message_of(code: &str) -> &'static str {
    match code {
        "400001" => "Invalid parameter",
        UNAUTHORIZED_CODE => "Unauthorized",
        API_NOT_FOUND => "API not found",
        "404002" => "Resource not found",
        "500001" => "Internal server error",
        "500002" => "No available sim iccid",
        "500003" => "OTA API server error",
        INSUFFICIENT_BALANCE_CODE => "Insufficient balance",
        _ => "Error",
    }
}

fn reject(code: &str, message: Option<&str>) -> Response {
    error(code, message.unwrap_or(message_of(code)))
}

fn total_mb(product: &VendorProduct) -> Option<u64> {
    match product.plan.data {
        SeedData::TotalMb(mb) => Some(mb),
        SeedData::DailyMb(mb) => Some(mb * u64::from(product.plan.days)),
        SeedData::Unlimited => None,
    }
}

/// A package in the assumed string-valued shape, data in GB when whole, else MB.
fn render_package(id: &str, p: &VendorProduct, currency: Currency) -> Value {
    let amount_unit = |mb: u64| {
        if mb % 1024 == 0 {
            ((mb / 1024).to_string(), "GB")
        } else {
            (mb.to_string(), "MB")
        }
    };
    let (amount, unit) = match p.plan.data {
        SeedData::TotalMb(mb) | SeedData::DailyMb(mb) => amount_unit(mb),
        SeedData::Unlimited => (String::new(), ""),
    };
    let unlimited = p.plan.data == SeedData::Unlimited;
    let daily = matches!(p.plan.data, SeedData::DailyMb(_));
    json!({
        "package_id": id,
        "name": p.plan.title,
        "countries": p.plan.countries.join(","),
        "region": p.plan.region.unwrap_or(""),
        "data_amount": amount,
        "data_unit": unit,
        "unlimited": unlimited.to_string(),
        "daily": daily.to_string(),
        "validity_days": p.plan.days.to_string(),
        "price": p.price.to_string(),
        "currency": currency.as_str(),
        "topup": p.topup.to_string(),
        "status": "ACTIVE",
    })
}

/// `{"customer_order_id": "<non-empty string>"}`, or `400001`.
fn customer_order_id(body: &[u8]) -> Result<String, Refusal> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("customer_order_id")?.as_str().map(str::to_string))
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| refuse("400001", "Invalid parameter"))
}

fn flatten(reply: Reply) -> Response {
    reply.unwrap_or_else(|r| *r)
}

async fn token(State(sim): State<MultiverseSim>, headers: HeaderMap, body: Bytes) -> Response {
    flatten(token_inner(sim, headers, body).await)
}

async fn token_inner(sim: MultiverseSim, headers: HeaderMap, body: Bytes) -> Reply {
    if !sim.access_token_valid(&headers) || !sim.basic_valid(&headers) {
        return Err(unauthorized());
    }
    let fault = sim.core.faults.begin(ops::AUTH, reject)?;
    let grant = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("grant_type")?.as_str().map(str::to_string));
    if grant.as_deref() != Some("client_credentials") {
        return Err(refuse("400001", "Invalid parameter"));
    }
    let answer = sim.issue_token();
    Ok(fault.finish(Json(answer).into_response()).await)
}

async fn packages(State(sim): State<MultiverseSim>, headers: HeaderMap) -> Response {
    flatten(packages_inner(sim, headers).await)
}

async fn packages_inner(sim: MultiverseSim, headers: HeaderMap) -> Reply {
    sim.authorize(&headers)?;
    let fault = sim.core.faults.begin(ops::LIST, reject)?;
    let currency = crate::sandbox::catalog::vendor_pricing(VendorId::Multiverse).0;
    let list: Vec<Value> = sim
        .state()
        .packages
        .iter()
        .map(|p| render_package(&p.id, &p.product, currency))
        .collect();
    Ok(fault
        .finish(Json(json!({ "package_list": list })).into_response())
        .await)
}

async fn purchase(
    State(sim): State<MultiverseSim>,
    Path(package_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    flatten(purchase_inner(sim, package_id, headers, body).await)
}

async fn purchase_inner(
    sim: MultiverseSim,
    package_id: String,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    sim.authorize(&headers)?;
    let fault = sim.core.faults.begin(ops::ORDER, reject)?;
    let customer_order_id = customer_order_id(&body)?;
    let order = sim.create_order(&package_id, &customer_order_id)?;
    sim.provision_later(order.order_id.clone());
    Ok(fault.finish(Json(order.to_json()).into_response()).await)
}

async fn purchase_sync(
    State(sim): State<MultiverseSim>,
    Path(package_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    flatten(purchase_sync_inner(sim, package_id, headers, body).await)
}

/// Waits for allocation and answers with the eSIM; no callback follows [assumption].
async fn purchase_sync_inner(
    sim: MultiverseSim,
    package_id: String,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    sim.offered(ops::ORDER_SYNC)?;
    sim.authorize(&headers)?;
    // A fault armed for "order" applies to whichever purchase route the client uses.
    let fault = sim
        .core
        .faults
        .begin_first(&[ops::ORDER_SYNC, ops::ORDER], reject)?;
    let customer_order_id = customer_order_id(&body)?;
    let order = sim.create_order(&package_id, &customer_order_id)?;
    tokio::time::sleep(sim.core.settings().provisioning_delay).await;
    let order = sim
        .allocate(&order.order_id)
        .ok_or_else(|| refuse("500003", "OTA API server error"))?;
    Ok(fault.finish(Json(order.to_json()).into_response()).await)
}

#[derive(serde::Deserialize)]
struct OrderQuery {
    customer_order_id: Option<String>,
}

async fn orders_by_customer_id(
    State(sim): State<MultiverseSim>,
    headers: HeaderMap,
    Query(q): Query<OrderQuery>,
) -> Response {
    flatten(orders_by_customer_id_inner(sim, headers, q).await)
}

async fn orders_by_customer_id_inner(
    sim: MultiverseSim,
    headers: HeaderMap,
    q: OrderQuery,
) -> Reply {
    let fault = sim.enter(ops::QUERY, &headers)?;
    let wanted = q
        .customer_order_id
        .filter(|c| !c.is_empty())
        .ok_or_else(|| refuse("400001", "Invalid parameter"))?;
    let list: Vec<Value> = sim
        .state()
        .orders
        .iter()
        .filter(|o| o.customer_order_id == wanted)
        .map(SimOrder::to_json)
        .collect();
    Ok(fault
        .finish(Json(json!({ "order_list": list })).into_response())
        .await)
}

async fn order_by_id(
    State(sim): State<MultiverseSim>,
    Path(order_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    flatten(order_by_id_inner(sim, order_id, headers).await)
}

async fn order_by_id_inner(sim: MultiverseSim, order_id: String, headers: HeaderMap) -> Reply {
    let fault = sim.enter(ops::QUERY, &headers)?;
    let order = sim
        .state()
        .orders
        .iter()
        .find(|o| o.order_id == order_id)
        .map(SimOrder::to_json)
        .ok_or_else(|| refuse("404002", "Resource not found"))?;
    Ok(fault.finish(Json(order).into_response()).await)
}

async fn topup(
    State(sim): State<MultiverseSim>,
    Path((iccid, package_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    flatten(topup_inner(sim, iccid, package_id, headers, body).await)
}

async fn topup_inner(
    sim: MultiverseSim,
    iccid: String,
    package_id: String,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let fault = sim.enter(ops::TOPUP, &headers)?;
    let customer_order_id = customer_order_id(&body)?;
    let order = sim.topup_order(&iccid, &package_id, &customer_order_id)?;
    Ok(fault.finish(Json(order.to_json()).into_response()).await)
}

async fn usage(
    State(sim): State<MultiverseSim>,
    Path(iccid): Path<String>,
    headers: HeaderMap,
) -> Response {
    flatten(usage_inner(sim, iccid, headers).await)
}

async fn usage_inner(sim: MultiverseSim, iccid: String, headers: HeaderMap) -> Reply {
    let fault = sim.enter(ops::USAGE, &headers)?;
    let esim = sim
        .state()
        .esims
        .get(&iccid)
        .cloned()
        .ok_or_else(|| refuse("404002", "Resource not found"))?;
    let time = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut answer = json!({
        "iccid": iccid,
        "status": esim.status,
        "data_used": esim.used_mb.to_string(),
        "data_unit": "MB",
        "unlimited": esim.total_mb.is_none().to_string(),
        "expired_at": time(esim.expires_at),
        "updated_at": time(Utc::now()),
    });
    if let Some(total) = esim.total_mb {
        answer["data_total"] = json!(total.to_string());
    }
    if let Some(at) = esim.activated_at {
        answer["activated_at"] = json!(time(at));
    }
    Ok(fault.finish(Json(answer).into_response()).await)
}

async fn balance(State(sim): State<MultiverseSim>, headers: HeaderMap) -> Response {
    flatten(balance_inner(sim, headers).await)
}

async fn balance_inner(sim: MultiverseSim, headers: HeaderMap) -> Reply {
    let fault = sim.enter(ops::BALANCE, &headers)?;
    let amount = sim.balance();
    let currency = crate::sandbox::catalog::vendor_pricing(VendorId::Multiverse).0;
    let answer = json!({
        "balance": amount.round_dp(2).to_string(),
        "currency": currency.as_str(),
    });
    Ok(fault.finish(Json(answer).into_response()).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sim() -> MultiverseSim {
        let creds = MultiverseSim::sandbox_credentials("http://127.0.0.1:1".parse().unwrap());
        MultiverseSim::new(&creds, SimSettings::fast())
    }

    #[test]
    fn packages_render_in_binary_units_and_euros() {
        let sim = sim();
        let (id, product) = sim
            .products()
            .into_iter()
            .find(|(_, p)| p.plan.data == SeedData::TotalMb(500))
            .unwrap();
        let v = render_package(&id, &product, "EUR".parse().unwrap());
        assert_eq!(v["data_amount"], "500");
        assert_eq!(v["data_unit"], "MB");
        assert_eq!(v["currency"], "EUR");
        assert_eq!(v["package_id"], id);
    }

    #[test]
    fn error_status_is_the_first_three_digits() {
        assert_eq!(
            error("500002", "x").status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(error("402001", "x").status(), StatusCode::PAYMENT_REQUIRED);
        assert_eq!(unauthorized().status(), StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn access_token_check_refuses_wrong_hash_stale_time_and_other_users() {
        let sim = sim();
        let header_for = |user: &str, token: &str, ts: i64| {
            let mut h = HeaderMap::new();
            let v = crate::vendors::multiverse::access_token(user, token, &ts.to_string());
            h.insert("x-multiverse-access-token", v.parse().unwrap());
            h
        };
        let now = Utc::now().timestamp();
        let (user, token) = (sim.creds.user_id.clone(), sim.creds.security_token.clone());
        assert!(sim.access_token_valid(&header_for(&user, &token, now)));
        assert!(sim.access_token_valid(&header_for(&user, &token, now - 3500)));
        assert!(!sim.access_token_valid(&header_for(&user, &token, now - 3700)));
        assert!(!sim.access_token_valid(&header_for(&user, &token, now + 3700)));
        assert!(!sim.access_token_valid(&header_for(&user, "wrong", now)));
        assert!(!sim.access_token_valid(&header_for("someone", &token, now)));
        // 13-digit milliseconds (the Tel25 habit) are refused: the document says 10 digits.
        let mut h = HeaderMap::new();
        let ms = (now * 1000).to_string();
        let v = crate::vendors::multiverse::access_token(&user, &token, &ms);
        h.insert("x-multiverse-access-token", v.parse().unwrap());
        assert!(!sim.access_token_valid(&h));
        assert!(!sim.access_token_valid(&HeaderMap::new()));
    }
}
