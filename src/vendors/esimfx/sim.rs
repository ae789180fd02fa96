//! Nomad eSIMfx simulator: the paths, `{code, message, data}` envelope, JWT auth and
//! `X-Idempotency-Key` semantics of `src/vendors/esimfx/README.md`. Error codes and the webhook
//! payload are the adapter's documented assumptions (`vendors::esimfx::{codes,assumptions}`).
//!
//! Orders are synchronous, as at eSIMfx: `create_order` answers with the ICCID and LPA.
//! Subscriptions stay PENDING until activated (API, [`EsimFxSim::simulate_usage`], or
//! automatically after `provisioning_delay` when [`EsimFxSim::set_auto_activation`] is on),
//! which sends an ACTIVATION callback; usage crossing 50/80/90/100 % sends DATA_USAGE and, at
//! 100 %, EXPIRATION.

use std::{
    collections::{HashMap, HashSet},
    str::FromStr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::time::Instant;

use crate::sandbox::{
    OutgoingCallback, SimCore, SimOrderRecord, SimSettings,
    catalog::{SeedData, SeedPlan, VendorProduct, vendor_products_sized},
    faults, generate_iccid, random_alnum,
};
use crate::{
    domain::{
        api_key::secrets_equal,
        secret::{ExposeSecret, SecretString},
    },
    vendors::esimfx::credentials::EsimFxCredentials,
    vendors::{
        GIB, MIB, VendorId,
        esimfx::{
            AUTH_PATH, CREATE_ORDER_PATH, ESIM_ORDERS_PATH, ESIM_STATUS_PATH, GET_ORDER_PATH,
            PRODUCTS_PATH, PROFILE_PATH, TERMINATE_PATH, TOPUPS_PATH, assumptions, codes,
            webhook::TOKEN_HEADER,
        },
    },
};

/// How this simulator plays the storefront test scenarios (`ordering::scenario`). eSIMfx: 2002 out of stock, 3005 wrong subscription state (the adapter's assumed table); its order's idempotency key is derived from our id.
pub const SCENARIO_CODES: crate::sandbox::ScenarioCodes = crate::sandbox::ScenarioCodes {
    sold_out: "2002",
    cancel_refused: Some("3005"),
    order_names_client_reference: true,
    async_delivery: false,
    usage_callbacks: true,
};

/// Fault-injectable operations.
pub mod ops {
    pub const AUTH: &str = "auth";
    /// `get_products` (v2) and `get_product`.
    pub const LIST: &str = "list";
    /// `create_order` with `operation_type: NEW`.
    pub const ORDER: &str = "order";
    /// `get_order` and `get_esim_status`.
    pub const QUERY: &str = "query";
    /// `create_order` with `operation_type: TOPUP`.
    pub const TOPUP: &str = "topup";
    /// `get_available_topups` (eSIMfx-specific).
    pub const TOPUP_OFFERS: &str = "topup_offers";
    /// `terminate_subscription`.
    pub const CANCEL: &str = "cancel";
    /// `activate_subscription` (eSIMfx-specific).
    pub const ACTIVATE: &str = "activate";
    /// `get_esim_orders`.
    pub const USAGE: &str = "usage";
    /// `reseller/get_profile`.
    pub const BALANCE: &str = "balance";
}

const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
const DEFAULT_PAGE_SIZE: usize = 20;
const MAX_PAGE_SIZE: usize = 100;
/// Thresholds the simulated portal webhook is configured with (100 % is always sent).
const USAGE_THRESHOLDS: &[u8] = &[50, 80, 90, 100];
const REFUND_WINDOW_DAYS: i64 = 60;
const STARTING_BALANCE: i64 = 1000;

/// A product as the simulator sells it, with its v2 JSON.
#[derive(Debug, Clone)]
struct SimProduct {
    sku: String,
    json: Value,
    price: Decimal,
    days: u32,
    /// `None` for unlimited and daily plans, whose subscriptions count days.
    total_bytes: Option<u64>,
    coverage: Vec<String>,
    region: Option<&'static str>,
    imsi_profile: &'static str,
    topup: bool,
}

#[derive(Debug, Clone)]
struct SimOrder {
    id: String,
    iccid: String,
    sku: String,
    price: Decimal,
    days: u32,
    total_bytes: Option<u64>,
    used: u64,
    status: &'static str,
    activation_time: Option<DateTime<Utc>>,
    expiry: DateTime<Utc>,
    activate_by: DateTime<Utc>,
    created_at: DateTime<Utc>,
    thresholds_sent: HashSet<u8>,
}

#[derive(Debug, Clone)]
struct SimEsim {
    qr: String,
    status: &'static str,
    /// The product it was bought with: decides which top-ups fit.
    sku: String,
}

#[derive(Debug)]
struct Ledger {
    balance: Decimal,
    token_lifetime: Duration,
    tokens: HashMap<String, Instant>,
    orders: Vec<SimOrder>,
    /// Key → (request body, answer `data`).
    idempotency: HashMap<String, (Value, Value)>,
    esims: HashMap<String, SimEsim>,
    auto_activate: bool,
}

struct Inner {
    core: SimCore,
    client_id: String,
    client_key: String,
    webhook_token: Option<String>,
    jwt_secret: String,
    products: Vec<SimProduct>,
    ledger: Mutex<Ledger>,
    auth_calls: AtomicU64,
    refused_tokens: AtomicU64,
}

/// The simulated eSIMfx API.
#[derive(Clone)]
pub struct EsimFxSim {
    inner: Arc<Inner>,
}

type Refusal = (i64, String);

fn refuse(code: i64, message: impl Into<String>) -> Refusal {
    (code, message.into())
}

impl EsimFxSim {
    pub fn new(creds: &EsimFxCredentials, settings: SimSettings) -> Self {
        let products = vendor_products_sized(VendorId::EsimFx, settings.catalog_size)
            .iter()
            .map(render_product)
            .collect();
        EsimFxSim {
            inner: Arc::new(Inner {
                core: SimCore::new(VendorId::EsimFx, settings),
                client_id: creds.client_id.expose_secret().to_string(),
                client_key: creds.client_key.expose_secret().to_string(),
                webhook_token: creds
                    .webhook_token
                    .as_ref()
                    .map(|t| t.expose_secret().to_string()),
                jwt_secret: random_alnum(32),
                products,
                ledger: Mutex::new(Ledger {
                    balance: Decimal::from(STARTING_BALANCE),
                    token_lifetime: TOKEN_LIFETIME,
                    tokens: HashMap::new(),
                    orders: Vec::new(),
                    idempotency: HashMap::new(),
                    esims: HashMap::new(),
                    auto_activate: false,
                }),
                auth_calls: AtomicU64::new(0),
                refused_tokens: AtomicU64::new(0),
            }),
        }
    }

    /// Random credentials for sandbox mode.
    pub fn sandbox_credentials(base_url: url::Url) -> EsimFxCredentials {
        EsimFxCredentials {
            client_id: SecretString::from(random_alnum(20)),
            client_key: SecretString::from(random_alnum(40)),
            webhook_token: Some(SecretString::from(random_alnum(32))),
            base_url,
        }
    }

    pub fn core(&self) -> &SimCore {
        &self.inner.core
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route(AUTH_PATH, post(auth))
            .route(PROFILE_PATH, get(get_profile))
            .route(PRODUCTS_PATH, post(get_products))
            // Not called by the adapter (its list comes from `get_products`).
            .route("/product/api/v1/get_product", get(get_product))
            .route(TOPUPS_PATH, get(get_available_topups))
            .route(CREATE_ORDER_PATH, post(create_order))
            .route(GET_ORDER_PATH, get(get_order))
            .route(ESIM_STATUS_PATH, get(get_esim_status))
            .route(ESIM_ORDERS_PATH, get(get_esim_orders))
            .route(TERMINATE_PATH, post(terminate))
            .route("/order/api/v1/activate_subscription", post(activate))
            .route("/_sandbox/esimfx/usage", post(control_usage))
            .with_state(self.clone())
            .merge(crate::sandbox::control_router(self.inner.core.clone()))
            // A path the API does not serve, as an honest web framework answers it.
            .fallback(|| async { faults::path_not_found() })
    }

    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.inner.ledger.lock().expect("esimfx ledger lock")
    }

    pub fn balance(&self) -> Decimal {
        self.ledger().balance
    }

    pub fn set_balance(&self, balance: Decimal) {
        self.ledger().balance = balance;
    }

    /// Calls to the auth endpoint, successful or not.
    pub fn auth_calls(&self) -> u64 {
        self.inner.auth_calls.load(Ordering::SeqCst)
    }

    /// Requests refused for a missing, invalid or expired token.
    pub fn refused_token_calls(&self) -> u64 {
        self.inner.refused_tokens.load(Ordering::SeqCst)
    }

    /// Invalidates every issued token, as a key rotation in the portal would.
    pub fn revoke_tokens(&self) {
        self.ledger().tokens.clear();
    }

    /// Lifetime of tokens issued from now on (1 h at eSIMfx).
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.ledger().token_lifetime = lifetime;
    }

    /// When on, each new eSIM is used on a network `provisioning_delay` after purchase.
    pub fn set_auto_activation(&self, on: bool) {
        self.ledger().auto_activate = on;
    }

    /// The SKUs the simulator sells, in catalogue order.
    pub fn skus(&self) -> Vec<String> {
        self.inner.products.iter().map(|p| p.sku.clone()).collect()
    }

    /// The traveller has used `used_bytes` on this eSIM's current package: activates it if it
    /// was pending and sends the callbacks eSIMfx would. `false` when the ICCID is unknown.
    pub fn simulate_usage(&self, iccid: &str, used_bytes: u64) -> bool {
        let events = {
            let mut ledger = self.ledger();
            let Some(idx) = current_package(&ledger, iccid) else {
                return false;
            };
            let mut events = Vec::new();
            if ledger.orders[idx].status == "PENDING" {
                events.push(activate_locked(&mut ledger, idx));
            }
            events.extend(record_usage(&mut ledger, idx, used_bytes));
            events
        };
        for e in events {
            self.send_callback(e);
        }
        true
    }

    fn send_callback(&self, event: Value) {
        let headers = self
            .inner
            .webhook_token
            .iter()
            .map(|t| (TOKEN_HEADER.to_string(), t.clone()))
            .collect();
        self.inner.core.deliver(
            OutgoingCallback {
                content_type: "application/json",
                headers,
                body: event.to_string().into_bytes(),
            },
            assumptions::CALLBACK_RETRIES,
        );
    }

    // ---- auth ---------------------------------------------------------------------------

    fn issue_token(&self) -> String {
        let now = Utc::now();
        let lifetime = self.ledger().token_lifetime;
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let claims = json!({
            "reseller_id": format!("rs_{}", &self.inner.client_id.chars().take(8).collect::<String>()),
            "version": 1,
            "epoch": now.timestamp(),
            "channel_id": 1,
            "iat": now.timestamp(),
            "exp": now.timestamp() + lifetime.as_secs() as i64,
            "jti": random_alnum(12),
        });
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signing_input = format!("{header}.{payload}");
        let token = format!("{signing_input}.{}", self.sign(&signing_input));
        self.ledger()
            .tokens
            .insert(token.clone(), Instant::now() + lifetime);
        token
    }

    fn sign(&self, input: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.inner.jwt_secret.as_bytes())
            .expect("HMAC takes any key length");
        mac.update(input.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// `Authorization: Bearer <JWT>` with our signature, issued and not expired.
    fn check_token(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let token = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .unwrap_or("");
        let signed = token.rsplit_once('.').is_some_and(|(input, sig)| {
            input.contains('.') && secrets_equal(&self.sign(input), sig)
        });
        let live = signed
            && self
                .ledger()
                .tokens
                .get(token)
                .is_some_and(|expiry| Instant::now() < *expiry);
        if live {
            return Ok(());
        }
        self.inner.refused_tokens.fetch_add(1, Ordering::SeqCst);
        let message = if token.is_empty() {
            "missing access token"
        } else {
            "invalid or expired access token"
        };
        Err(refuse(codes::TOKEN_INVALID, message))
    }

    // ---- orders -------------------------------------------------------------------------

    fn product(&self, sku: &str) -> Option<&SimProduct> {
        self.inner.products.iter().find(|p| p.sku == sku)
    }

    /// Products that fit on top of `base`: same IMSI profile and same coverage.
    fn topups_for(&self, base: &str) -> Vec<&SimProduct> {
        let Some(base) = self.product(base) else {
            return Vec::new();
        };
        self.inner
            .products
            .iter()
            .filter(|p| {
                p.topup && p.imsi_profile == base.imsi_profile && p.coverage == base.coverage
            })
            .collect()
    }

    /// Everything `create_order` does under the ledger lock; returns the answer's `data`.
    fn place(&self, key: &str, body: &Value) -> Result<(Value, Option<usize>), Refusal> {
        let mut ledger = self.ledger();
        if let Some((seen, answer)) = ledger.idempotency.get(key) {
            return if seen == body {
                Ok((answer.clone(), None))
            } else {
                Err(refuse(
                    codes::IDEMPOTENCY_CONFLICT,
                    "X-Idempotency-Key was already used with a different request",
                ))
            };
        }
        let sku = body
            .pointer("/product/id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| refuse(codes::INVALID_PARAMETER, "product.id is required"))?;
        let product = self
            .product(sku)
            .ok_or_else(|| refuse(codes::PRODUCT_NOT_FOUND, format!("product {sku} not found")))?
            .clone();
        let topup = match body.get("operation_type").and_then(Value::as_str) {
            Some("NEW") => false,
            Some("TOPUP") => true,
            _ => {
                return Err(refuse(
                    codes::INVALID_PARAMETER,
                    "operation_type must be NEW or TOPUP",
                ));
            }
        };
        let iccid = if topup {
            let iccid = body
                .get("iccid")
                .and_then(Value::as_str)
                .ok_or_else(|| refuse(codes::INVALID_PARAMETER, "iccid is required for TOPUP"))?;
            let esim = ledger
                .esims
                .get(iccid)
                .ok_or_else(|| refuse(codes::ICCID_NOT_FOUND, "iccid not found"))?;
            if matches!(esim.status, "EXPIRED" | "BLOCKED" | "DEACTIVATED") {
                return Err(refuse(
                    codes::ESIM_NOT_TOPPABLE,
                    "the eSIM can no longer be topped up",
                ));
            }
            if !self.topups_for(&esim.sku).iter().any(|p| p.sku == sku) {
                return Err(refuse(
                    codes::TOPUP_INCOMPATIBLE,
                    "product is not an available top-up for this eSIM",
                ));
            }
            Some(iccid.to_string())
        } else {
            None
        };
        if ledger.balance < product.price {
            return Err(refuse(codes::INSUFFICIENT_BALANCE, "insufficient balance"));
        }
        ledger.balance -= product.price;
        let iccid = iccid.unwrap_or_else(|| {
            let iccid = generate_iccid("894400", 20);
            let qr = format!(
                "LPA:1$rsp.truphone.com$JQ-{}-{}",
                random_alnum(6).to_ascii_uppercase(),
                random_alnum(6).to_ascii_uppercase()
            );
            ledger.esims.insert(
                iccid.clone(),
                SimEsim {
                    qr,
                    status: "PROVISIONED",
                    sku: product.sku.clone(),
                },
            );
            iccid
        });
        let now = Utc::now();
        let activate_by = now + chrono::Duration::days(REFUND_WINDOW_DAYS);
        let order = SimOrder {
            id: uuid::Uuid::new_v4().to_string(),
            iccid: iccid.clone(),
            sku: product.sku.clone(),
            price: product.price,
            days: product.days,
            total_bytes: product.total_bytes,
            used: 0,
            status: "PENDING",
            activation_time: None,
            expiry: activate_by + chrono::Duration::days(i64::from(product.days)),
            activate_by,
            created_at: now,
            thresholds_sent: HashSet::new(),
        };
        self.inner.core.record_order(SimOrderRecord {
            vendor_reference: order.id.clone(),
            client_reference: Some(key.to_string()),
            sku: product.sku.clone(),
            quantity: 1,
            iccids: vec![iccid.clone()],
            topup,
            cancelled: false,
            created_at: now,
        });
        let esim = &ledger.esims[&iccid];
        let answer = json!({
            "id": order.id,
            "status": "COMPLETED",
            "subscription": subscription_json(&order),
            "creation_time": rfc3339(now),
            "esim": {"iccid": iccid, "esim_qr": esim.qr, "status": esim.status},
        });
        ledger.orders.push(order);
        ledger
            .idempotency
            .insert(key.to_string(), (body.clone(), answer.clone()));
        let fresh = (!topup).then(|| ledger.orders.len() - 1);
        Ok((answer, fresh))
    }

    /// The `usage_80_percent` test scenario, when armed for this order (a scoped
    /// `Delay` fault on [`crate::sandbox::USAGE_SCENARIO_OPERATION`]): after the delay the
    /// traveller has used 80% of the package, and the usage callbacks go out.
    fn schedule_scenario_usage(&self, idx: usize) {
        let Some(crate::sandbox::Fault::Delay { millis }) = self
            .inner
            .core
            .faults
            .take(crate::sandbox::USAGE_SCENARIO_OPERATION)
        else {
            return;
        };
        let (iccid, total) = {
            let ledger = self.ledger();
            let order = &ledger.orders[idx];
            (order.iccid.clone(), order.total_bytes)
        };
        let Some(total) = total else { return };
        let sim = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(millis)).await;
            sim.simulate_usage(&iccid, total / 100 * 80);
        });
    }

    /// The traveller's phone attaches to a network `provisioning_delay` after purchase.
    fn schedule_activation(&self, idx: usize) {
        if !self.ledger().auto_activate {
            return;
        }
        let sim = self.clone();
        let delay = self.inner.core.settings().provisioning_delay;
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let event = {
                let mut ledger = sim.ledger();
                (ledger.orders[idx].status == "PENDING").then(|| activate_locked(&mut ledger, idx))
            };
            if let Some(e) = event {
                sim.send_callback(e);
            }
        });
    }

    fn terminate(&self, order_id: &str) -> Result<Value, Refusal> {
        let mut ledger = self.ledger();
        let idx = find_order(&ledger, order_id)?;
        let order = &ledger.orders[idx];
        if matches!(order.status, "TERMINATED" | "EXPIRED") {
            return Err(refuse(
                codes::WRONG_SUBSCRIPTION_STATE,
                format!("subscription is already {}", order.status),
            ));
        }
        let need_refund = order.status == "PENDING"
            && Utc::now() - order.created_at < chrono::Duration::days(REFUND_WINDOW_DAYS);
        let price = order.price;
        ledger.orders[idx].status = "TERMINATED";
        if need_refund {
            ledger.balance += price;
        }
        self.inner
            .core
            .update_order(order_id, |o| o.cancelled = true);
        Ok(json!({
            "id": order_id,
            "subscription": {"status": "TERMINATED"},
            "refund": {"need_refund": need_refund},
        }))
    }
}

// ---- ledger helpers (called with the lock held) -------------------------------------------

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn find_order(ledger: &Ledger, order_id: &str) -> Result<usize, Refusal> {
    ledger
        .orders
        .iter()
        .position(|o| o.id == order_id)
        .ok_or_else(|| refuse(codes::ORDER_NOT_FOUND, "order not found"))
}

/// The package in use: ACTIVE, else the oldest PENDING.
fn current_package(ledger: &Ledger, iccid: &str) -> Option<usize> {
    let on_esim = |status: &str| {
        ledger
            .orders
            .iter()
            .position(|o| o.iccid == iccid && o.status == status)
    };
    on_esim("ACTIVE").or_else(|| on_esim("PENDING"))
}

fn activate_locked(ledger: &mut Ledger, idx: usize) -> Value {
    let now = Utc::now();
    let order = &mut ledger.orders[idx];
    order.status = "ACTIVE";
    order.activation_time = Some(now);
    order.expiry = now + chrono::Duration::days(i64::from(order.days));
    let (iccid, id) = (order.iccid.clone(), order.id.clone());
    if let Some(esim) = ledger.esims.get_mut(&iccid) {
        esim.status = "ACTIVE";
    }
    json!({"event_type": "ACTIVATION", "iccid": iccid, "order_id": id, "timestamp": rfc3339(now)})
}

/// Sets usage and returns the DATA_USAGE / EXPIRATION events it triggers.
fn record_usage(ledger: &mut Ledger, idx: usize, used: u64) -> Vec<Value> {
    let order = &mut ledger.orders[idx];
    let Some(total) = order.total_bytes else {
        return Vec::new();
    };
    order.used = used.min(total);
    let percent = (u128::from(order.used) * 100 / u128::from(total.max(1))) as u8;
    let now = rfc3339(Utc::now());
    let mut events = Vec::new();
    for t in USAGE_THRESHOLDS.iter().filter(|t| **t <= percent) {
        if order.thresholds_sent.insert(*t) {
            events.push(json!({
                "event_type": "DATA_USAGE", "iccid": order.iccid, "order_id": order.id,
                "threshold": t, "used_amount": order.used, "upper_limit_amount": total,
                "amount_unit": "Byte", "timestamp": now,
            }));
        }
    }
    if order.used >= total {
        order.status = "EXPIRED";
        events.push(json!({
            "event_type": "EXPIRATION", "iccid": order.iccid, "order_id": order.id,
            "timestamp": now,
        }));
        let iccid = order.iccid.clone();
        let live = ledger
            .orders
            .iter()
            .any(|o| o.iccid == iccid && matches!(o.status, "ACTIVE" | "PENDING"));
        if !live {
            if let Some(esim) = ledger.esims.get_mut(&iccid) {
                esim.status = "EXPIRED";
            }
        }
    }
    events
}

fn subscription_json(o: &SimOrder) -> Value {
    // Unlimited and daily plans count days, not bytes ("for Unlimited Plans would be Days").
    let (limit, used, unit) = match o.total_bytes {
        Some(total) => (total, o.used, "Byte"),
        None => (u64::from(o.days), 0, "DAY"),
    };
    json!({
        "upper_limit_amount": limit,
        "used_amount": used,
        "amount_unit": unit,
        "status": o.status,
        // Before activation eSIMfx shows the planned activation date.
        "activation_time": rfc3339(o.activation_time.unwrap_or(o.activate_by)),
        "expiry": rfc3339(o.expiry),
        "activate_by": rfc3339(o.activate_by),
    })
}

fn order_json(sim: &EsimFxSim, o: &SimOrder) -> Value {
    let product = sim.product(&o.sku).map(|p| &p.json);
    let field = |k: &str| {
        product
            .and_then(|p| p.get(k))
            .cloned()
            .unwrap_or(Value::Null)
    };
    json!({
        "id": o.id,
        "iccid": o.iccid,
        "product": {
            "id": o.sku, "name": field("name"), "duration": field("duration"),
            "duration_unit": field("duration_unit"), "imsi_profile": field("imsi_profile"),
        },
        "subscription": subscription_json(o),
        "status": "COMPLETED",
        "creation_time": rfc3339(o.created_at),
    })
}

// ---- catalogue rendering --------------------------------------------------------------------

/// The stable v2 id: `esimfx_<data>_<days>D_<area>` like the doc's `esimfx_10G_7D_BR`.
pub fn sku_of(plan: &SeedPlan) -> String {
    let area = match plan.region {
        None => plan.countries.first().copied().unwrap_or("XX").to_string(),
        Some(_) => plan
            .key
            .split('-')
            .next()
            .unwrap_or("RG")
            .to_ascii_uppercase(),
    };
    let data = match plan.data {
        SeedData::TotalMb(mb) if mb % 1024 == 0 => format!("{}G", mb / 1024),
        SeedData::TotalMb(mb) => format!("{mb}M"),
        SeedData::DailyMb(mb) if mb % 1024 == 0 => format!("{}GD", mb / 1024),
        SeedData::DailyMb(mb) => format!("{mb}MD"),
        SeedData::Unlimited => "UL".to_string(),
    };
    format!("esimfx_{data}_{}D_{area}", plan.days)
}

fn slug(title: &str) -> String {
    let mut out = String::new();
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_string()
}

fn networks(countries: &[&str]) -> Vec<Value> {
    let known: &[(&str, &str, &str, &str)] = &[
        ("JP", "44020", "SOFTBANK", "5G"),
        ("JP", "44051", "KDDI au", "5G"),
        ("US", "310260", "T-Mobile", "5G"),
        ("US", "310410", "AT&T", "4G/5G"),
        ("GB", "23430", "EE", "5G"),
        ("BR", "72405", "Claro", "4G"),
        ("TH", "52003", "AIS", "5G"),
    ];
    countries
        .iter()
        .flat_map(|cc| {
            let mut found: Vec<Value> = known
                .iter()
                .filter(|(c, ..)| c == cc)
                .map(|(c, m, n, s)| json!({"mccmnc": m, "name": n, "speed": s, "country_iso": c}))
                .collect();
            if found.is_empty() {
                let b = cc.as_bytes();
                let mcc = 200 + (u32::from(b[0]) * 31 + u32::from(b[1])) % 500;
                found.push(json!({
                    "mccmnc": format!("{mcc}01"), "name": format!("{cc} Partner"),
                    "speed": "4G", "country_iso": cc,
                }));
            }
            found
        })
        .collect()
}

fn price_number(price: Decimal) -> Value {
    serde_json::Number::from_str(&price.normalize().to_string())
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

fn render_product(vp: &VendorProduct) -> SimProduct {
    let plan = &vp.plan;
    let sku = sku_of(plan);
    let imsi_profile = match plan.region {
        None => "Green",
        Some("Global") => "Red",
        Some(_) => "Blue",
    };
    let (amount, unit, unlimited, high_speed, total_bytes) = match plan.data {
        SeedData::TotalMb(mb) if mb % 1024 == 0 => {
            (mb / 1024, "GB", false, None, Some(mb / 1024 * GIB))
        }
        SeedData::TotalMb(mb) => (mb, "MB", false, None, Some(mb * MIB)),
        SeedData::DailyMb(mb) if mb % 1024 == 0 => (
            u64::from(plan.days),
            "DAY",
            true,
            Some((mb / 1024, "GB")),
            None,
        ),
        SeedData::DailyMb(mb) => (u64::from(plan.days), "DAY", true, Some((mb, "MB")), None),
        SeedData::Unlimited => (u64::from(plan.days), "DAY", true, None, None),
    };
    let json = json!({
        "id": sku,
        "meta_product_id": format!("meta_{}", plan.key),
        "name": slug(&plan.title),
        "duration": plan.days,
        "duration_unit": "DAY",
        "amount": amount,
        "amount_unit": unit,
        "is_unlimited": unlimited,
        "high_speed": high_speed.map(|h| h.0),
        "high_speed_unit": high_speed.map(|h| h.1),
        "unlimited_speed": unlimited.then_some("512kbps"),
        "coverage": plan.countries,
        "networks": networks(&plan.countries),
        "imsi_profile": imsi_profile,
        "price": price_number(vp.price),
        "price_unit": vp.currency.as_str(),
    });
    SimProduct {
        sku,
        json,
        price: vp.price,
        days: plan.days,
        total_bytes,
        coverage: plan.countries.iter().map(|c| c.to_string()).collect(),
        region: plan.region,
        imsi_profile,
        topup: vp.topup,
    }
}

// ---- HTTP -----------------------------------------------------------------------------------

/// eSIMfx's envelope. Business errors come with HTTP 200 ([assumption]); token errors 401.
fn envelope(code: i64, message: &str, data: Value) -> Response {
    let status = match code {
        codes::TOKEN_INVALID | codes::BAD_CLIENT_CREDENTIALS => StatusCode::UNAUTHORIZED,
        codes::RATE_LIMITED => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::OK,
    };
    (
        status,
        Json(json!({"code": code, "message": message, "data": data})),
    )
        .into_response()
}

fn ok(data: Value) -> Response {
    envelope(codes::SUCCESS, "Success", data)
}

fn refused((code, message): Refusal) -> Response {
    envelope(code, &message, Value::Null)
}

/// A fault's rejection, in the envelope; non-numeric codes are sent as given.
fn fault_reject(code: &str, message: Option<&str>) -> Response {
    let message = message.unwrap_or("rejected");
    match code.parse::<i64>() {
        Ok(c) => envelope(c, message, Value::Null),
        Err(_) => Json(json!({"code": code, "message": message, "data": null})).into_response(),
    }
}

fn parse_body(body: &Bytes) -> Result<Value, Refusal> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| {
            refuse(
                codes::INVALID_PARAMETER,
                "request body must be a JSON object",
            )
        })
}

type Params = Query<HashMap<String, String>>;

fn param<'a>(q: &'a Params, name: &str) -> Result<&'a str, Refusal> {
    q.get(name)
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| refuse(codes::INVALID_PARAMETER, format!("{name} is required")))
}

/// The shape of every authenticated handler: token, fault, act, late fault, answer.
async fn run(
    sim: &EsimFxSim,
    headers: &HeaderMap,
    op: &'static str,
    act: impl FnOnce() -> Result<Value, Refusal>,
) -> Response {
    if let Err(r) = sim.check_token(headers) {
        return refused(r);
    }
    let fault = match sim.inner.core.faults.begin(op, fault_reject) {
        Ok(fault) => fault,
        Err(r) => return *r,
    };
    let response = match act() {
        Ok(data) => ok(data),
        Err(r) => refused(r),
    };
    fault.finish(response).await
}

async fn auth(State(sim): State<EsimFxSim>, body: Bytes) -> Response {
    sim.inner.auth_calls.fetch_add(1, Ordering::SeqCst);
    let fault = match sim.inner.core.faults.begin(ops::AUTH, fault_reject) {
        Ok(fault) => fault,
        Err(r) => return *r,
    };
    let response = match parse_body(&body) {
        Err(r) => refused(r),
        Ok(b) => {
            let field = |k: &str| b.get(k).and_then(Value::as_str).unwrap_or("");
            let id_ok = secrets_equal(field("client_id"), &sim.inner.client_id);
            let key_ok = secrets_equal(field("client_key"), &sim.inner.client_key);
            if id_ok && key_ok {
                ok(json!({"access_token": sim.issue_token()}))
            } else {
                refused(refuse(
                    codes::BAD_CLIENT_CREDENTIALS,
                    "invalid client_id or client_key",
                ))
            }
        }
    };
    fault.finish(response).await
}

async fn get_profile(State(sim): State<EsimFxSim>, headers: HeaderMap) -> Response {
    run(&sim, &headers, ops::BALANCE, || {
        Ok(json!({
            "reseller_id": format!("rs_{}", sim.inner.client_id.chars().take(8).collect::<String>()),
            "name": "Sandbox Reseller",
            "email": "reseller@example.com",
            "balance": price_number(sim.balance()),
            "currency": "USD",
        }))
    })
    .await
}

fn page_size(body: &Value) -> Result<usize, Refusal> {
    let size = match body.get("page_size") {
        None | Some(Value::Null) => return Ok(DEFAULT_PAGE_SIZE),
        Some(Value::Number(n)) => n.as_u64(),
        // One client sends "99".
        Some(Value::String(s)) => s.trim().parse().ok(),
        Some(_) => None,
    };
    match size {
        Some(n) if n >= 1 => Ok((n as usize).min(MAX_PAGE_SIZE)),
        _ => Err(refuse(
            codes::INVALID_PARAMETER,
            "page_size must be a positive integer",
        )),
    }
}

fn list_page(sim: &EsimFxSim, body: &Value) -> Result<Value, Refusal> {
    let size = page_size(body)?;
    let region = body
        .get("region")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let countries: Vec<String> = body
        .get("countries")
        .and_then(Value::as_str)
        .map(|s| {
            s.split(',')
                .map(|c| c.trim().to_ascii_uppercase())
                .filter(|c| !c.is_empty())
                .collect()
        })
        .unwrap_or_default();
    // "When both countries and region have values, only region takes effect."
    let matching: Vec<&SimProduct> = sim
        .inner
        .products
        .iter()
        .filter(|p| match region {
            Some(r) => p.region.is_some_and(|pr| pr.eq_ignore_ascii_case(r)),
            None => countries.is_empty() || p.coverage.iter().any(|c| countries.contains(c)),
        })
        .collect();
    let start = match body.pointer("/page_start/id") {
        None => 0,
        Some(id) => {
            let id = id.as_str().unwrap_or("");
            1 + matching
                .iter()
                .position(|p| p.sku == id)
                .ok_or_else(|| refuse(codes::INVALID_PARAMETER, "invalid page_start"))?
        }
    };
    let page: Vec<&SimProduct> = matching.iter().skip(start).take(size).copied().collect();
    let more = start + page.len() < matching.len();
    let last_key = match page.last() {
        Some(last) if more => json!({"id": last.sku}),
        _ => json!({}),
    };
    Ok(json!({
        "products": page.iter().map(|p| p.json.clone()).collect::<Vec<_>>(),
        "last_evaluated_key": last_key,
    }))
}

async fn get_products(State(sim): State<EsimFxSim>, headers: HeaderMap, body: Bytes) -> Response {
    run(&sim, &headers, ops::LIST, || {
        list_page(&sim, &parse_body(&body)?)
    })
    .await
}

async fn get_product(State(sim): State<EsimFxSim>, headers: HeaderMap, q: Params) -> Response {
    run(&sim, &headers, ops::LIST, || {
        let id = param(&q, "id")?;
        sim.inner
            .products
            .iter()
            .find(|p| p.sku == id || p.json["meta_product_id"] == id)
            .map(|p| p.json.clone())
            .ok_or_else(|| refuse(codes::PRODUCT_NOT_FOUND, "product not found"))
    })
    .await
}

async fn get_available_topups(
    State(sim): State<EsimFxSim>,
    headers: HeaderMap,
    q: Params,
) -> Response {
    run(&sim, &headers, ops::TOPUP_OFFERS, || {
        let base = match (q.get("iccid"), q.get("product_id")) {
            (Some(iccid), _) => sim
                .ledger()
                .esims
                .get(iccid.trim())
                .map(|e| e.sku.clone())
                .ok_or_else(|| refuse(codes::ICCID_NOT_FOUND, "iccid not found"))?,
            (None, Some(id)) => id.trim().to_string(),
            (None, None) => {
                return Err(refuse(
                    codes::INVALID_PARAMETER,
                    "iccid or product_id is required",
                ));
            }
        };
        let products: Vec<Value> = sim
            .topups_for(&base)
            .iter()
            .map(|p| p.json.clone())
            .collect();
        Ok(json!({"products": products}))
    })
    .await
}

async fn create_order(State(sim): State<EsimFxSim>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = sim.check_token(&headers) {
        return refused(r);
    }
    let parsed = parse_body(&body);
    let op = match parsed.as_ref().ok().and_then(|b| b.get("operation_type")) {
        Some(t) if t == "TOPUP" => ops::TOPUP,
        _ => ops::ORDER,
    };
    let fault = match sim.inner.core.faults.begin(op, fault_reject) {
        Ok(fault) => fault,
        Err(r) => return *r,
    };
    let key = headers
        .get("x-idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty());
    let response = match (parsed, key) {
        (Err(r), _) => refused(r),
        (_, None) => refused(refuse(
            codes::INVALID_PARAMETER,
            "X-Idempotency-Key header is required",
        )),
        (Ok(body), Some(key)) => match sim.place(key, &body) {
            Ok((data, fresh)) => {
                if let Some(idx) = fresh {
                    sim.schedule_activation(idx);
                    sim.schedule_scenario_usage(idx);
                }
                ok(data)
            }
            Err(r) => refused(r),
        },
    };
    fault.finish(response).await
}

async fn get_order(State(sim): State<EsimFxSim>, headers: HeaderMap, q: Params) -> Response {
    run(&sim, &headers, ops::QUERY, || {
        let id = param(&q, "order_id")?;
        let ledger = sim.ledger();
        let idx = find_order(&ledger, id)?;
        Ok(order_json(&sim, &ledger.orders[idx]))
    })
    .await
}

async fn get_esim_status(State(sim): State<EsimFxSim>, headers: HeaderMap, q: Params) -> Response {
    run(&sim, &headers, ops::QUERY, || {
        let iccid = param(&q, "iccid")?;
        let ledger = sim.ledger();
        let esim = ledger
            .esims
            .get(iccid)
            .ok_or_else(|| refuse(codes::ICCID_NOT_FOUND, "iccid not found"))?;
        Ok(json!({"iccid": iccid, "esim_qr": esim.qr, "status": esim.status}))
    })
    .await
}

async fn get_esim_orders(State(sim): State<EsimFxSim>, headers: HeaderMap, q: Params) -> Response {
    run(&sim, &headers, ops::USAGE, || {
        let iccid = param(&q, "iccid")?;
        let ledger = sim.ledger();
        if !ledger.esims.contains_key(iccid) {
            return Err(refuse(codes::ICCID_NOT_FOUND, "iccid not found"));
        }
        let orders: Vec<Value> = ledger
            .orders
            .iter()
            .filter(|o| o.iccid == iccid)
            .map(|o| order_json(&sim, o))
            .collect();
        Ok(json!({"orders": orders}))
    })
    .await
}

fn order_id_of(body: &Bytes) -> Result<String, Refusal> {
    parse_body(body)?
        .get("order_id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .ok_or_else(|| refuse(codes::INVALID_PARAMETER, "order_id is required"))
}

async fn terminate(State(sim): State<EsimFxSim>, headers: HeaderMap, body: Bytes) -> Response {
    run(&sim, &headers, ops::CANCEL, || {
        sim.terminate(&order_id_of(&body)?)
    })
    .await
}

async fn activate(State(sim): State<EsimFxSim>, headers: HeaderMap, body: Bytes) -> Response {
    let mut event = None;
    let response = run(&sim, &headers, ops::ACTIVATE, || {
        let id = order_id_of(&body)?;
        let mut ledger = sim.ledger();
        let idx = find_order(&ledger, &id)?;
        if ledger.orders[idx].status != "PENDING" {
            return Err(refuse(
                codes::WRONG_SUBSCRIPTION_STATE,
                "only a PENDING subscription can be activated",
            ));
        }
        event = Some(activate_locked(&mut ledger, idx));
        Ok(json!({"id": id, "subscription": subscription_json(&ledger.orders[idx])}))
    })
    .await;
    if let Some(e) = event {
        sim.send_callback(e);
    }
    response
}

#[derive(serde::Deserialize)]
struct UsageControl {
    iccid: String,
    used_bytes: u64,
}

/// `POST /_sandbox/esimfx/usage {"iccid","used_bytes"}`: drive usage (and its callbacks) in
/// a running sandbox.
async fn control_usage(State(sim): State<EsimFxSim>, Json(req): Json<UsageControl>) -> StatusCode {
    if sim.simulate_usage(&req.iccid, req.used_bytes) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::catalog::seed_plans;

    #[test]
    fn skus_are_unique_and_stable() {
        let plans = seed_plans();
        let skus: HashSet<String> = plans.iter().map(sku_of).collect();
        assert_eq!(skus.len(), plans.len());
        let jp = plans.iter().find(|p| p.key == "jp-10gb-30d").unwrap();
        assert_eq!(sku_of(jp), "esimfx_10G_30D_JP");
        let eu = plans.iter().find(|p| p.key == "eu32-500mb-7d").unwrap();
        assert_eq!(sku_of(eu), "esimfx_500M_7D_EU32");
    }

    #[test]
    fn rendered_products_parse_back_through_the_adapter_types() {
        for vp in crate::sandbox::catalog::vendor_products(VendorId::EsimFx) {
            let p = render_product(&vp);
            let product: crate::vendors::esimfx::wire::Product =
                serde_json::from_value(p.json.clone()).unwrap();
            let offer = product.to_offer(p.json.clone()).unwrap();
            assert_eq!(offer.cost.amount, vp.price, "{}", p.sku);
            assert_eq!(offer.validity_days, vp.plan.days);
            assert!(offer.active);
            let expected = match vp.plan.data {
                SeedData::TotalMb(mb) => Some(mb * MIB),
                SeedData::DailyMb(mb) => Some(mb * MIB),
                SeedData::Unlimited => None,
            };
            assert_eq!(offer.data.unwrap().bytes, expected, "{}", p.sku);
        }
    }

    #[test]
    fn jwt_is_three_base64url_parts_signed_by_the_sim() {
        let creds = EsimFxSim::sandbox_credentials("http://127.0.0.1:1".parse().unwrap());
        let sim = EsimFxSim::new(&creds, SimSettings::fast());
        let token = sim.issue_token();
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert!(claims["exp"].as_i64().unwrap() > claims["iat"].as_i64().unwrap());
        let mut h = HeaderMap::new();
        h.insert("authorization", format!("Bearer {token}").parse().unwrap());
        assert!(sim.check_token(&h).is_ok());
        let forged = format!("{}.{}.{}", parts[0], parts[1], "AAAA");
        h.insert("authorization", format!("Bearer {forged}").parse().unwrap());
        assert!(sim.check_token(&h).is_err());
    }
}
