//! MicroEsim simulator: the `/allesim/v1` API as the Postman collection shows it, with the
//! undocumented parts (error codes, lookup by `custom_order_no`, `terminate`, replay window)
//! taken from `vendors::microesim::assumptions`, so adapter and simulator agree on one table.
//!
//! Every request must carry a valid MICROESIM-ACCOUNT / -NONCE / -TIMESTAMP / -SIGN set.
//! Orders are asynchronous: `esimSubscribe` answers a `topup_id`, `topupDetail` says "order
//! processing" (1006) until `provisioning_delay` has passed, then the eSIMs are pushed (one
//! push per eSIM, retried twice with backoff) to the account's callback URL.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{RawQuery, State},
    http::{HeaderMap, header::CONTENT_TYPE},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use chrono::{DateTime, Utc};
use rand::Rng;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::sandbox::{
    OutgoingCallback, SimCore, SimOrderRecord, SimSettings,
    catalog::{SeedData, VendorProduct, vendor_products_sized},
    faults, generate_iccid,
};
use crate::{
    domain::api_key::secrets_equal,
    domain::secret::{ExposeSecret, SecretString},
    sandbox::random_digits,
    vendors::microesim::credentials::MicroEsimCredentials,
    vendors::{
        VendorId,
        microesim::{
            Signer,
            assumptions::{self, PATH_PREFIX, SIGNATURE_WINDOW, codes},
            wire::{format_java_date, format_utc8},
        },
    },
};

/// How this simulator plays the storefront test scenarios (`ordering::scenario`). MicroEsim: 1008 sold out, 1011 terminate not allowed (the adapter's assumed table); its order carries our id as custom_order_no.
pub const SCENARIO_CODES: crate::sandbox::ScenarioCodes = crate::sandbox::ScenarioCodes {
    sold_out: "1008",
    cancel_refused: Some("1011"),
    order_names_client_reference: true,
    async_delivery: false,
    usage_callbacks: false,
};

/// Fault-injectable operations.
pub mod ops {
    /// Signature check of every request (a `Reject` here refuses any call).
    pub const AUTH: &str = "auth";
    /// `esimDataplanList` and `esimDataplanListPage`.
    pub const LIST: &str = "list";
    /// `esimSubscribe`.
    pub const ORDER: &str = "order";
    /// `topupDetail`.
    pub const QUERY: &str = "query";
    /// `getOrderInfoByCustomOrderNo` (MicroEsim-specific: reconciliation by our order id).
    pub const LOOKUP: &str = "lookup";
    /// `terminate`.
    pub const CANCEL: &str = "cancel";
    /// `deviceDetail`.
    pub const USAGE: &str = "usage";
    /// `eventDetail` (MicroEsim-specific).
    pub const EVENTS: &str = "events";
    /// `accountBalance`.
    pub const BALANCE: &str = "balance";
}

/// Retries after a failed push: "exponential backoff (e.g., 5s → 10s), up to 2 attempts".
const PUSH_RETRIES: &[Duration] = &[Duration::from_secs(5), Duration::from_secs(10)];
/// The same shape, compressed for tests.
const PUSH_RETRIES_FAST: &[Duration] = &[Duration::from_millis(50), Duration::from_millis(100)];

const SMDP: &str = "rsp-eu.simlessly.com";
const START_BALANCE: &str = "50000.00";

/// How the simulator sends its pushes: the collection shows both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushFormat {
    Json,
    Form,
}

#[derive(Debug, Clone)]
struct SimPlan {
    id: String,
    name: String,
    price: Decimal,
    days: u32,
    daily: bool,
    activates_on_order: bool,
    wire: Value,
}

#[derive(Debug, Clone)]
struct SimDevice {
    device_id: String,
    iccid: String,
    lpa: String,
    msisdn: String,
    cf_code: String,
    eid: String,
    topup_id: String,
    created: DateTime<Utc>,
    active_time: Option<DateTime<Utc>>,
    terminate_time: Option<DateTime<Utc>>,
    events: Vec<(DateTime<Utc>, &'static str)>,
    /// Usage per UTC+8 day (`yyyy-MM-dd`), binary megabytes.
    daily_mb: BTreeMap<String, Decimal>,
}

#[derive(Debug, Clone)]
struct SimOrder {
    topup_id: String,
    custom_order_no: Option<String>,
    plan: SimPlan,
    number: u32,
    created: DateTime<Utc>,
    ready: bool,
    device_ids: Vec<String>,
}

#[derive(Debug)]
struct SimState {
    balance: Decimal,
    plans: Vec<SimPlan>,
    orders: Vec<SimOrder>,
    devices: HashMap<String, SimDevice>,
    /// Nonces seen inside the signature window, with their timestamps (ms).
    nonces: HashMap<String, i64>,
    max_page_size: u32,
    push_format: PushFormat,
}

/// The simulated MicroEsim account.
#[derive(Clone)]
pub struct MicroEsimSim {
    core: SimCore,
    signer: Signer,
    state: Arc<Mutex<SimState>>,
}

type Reply = Result<Value, (i64, String)>;

fn refuse(code: i64) -> (i64, String) {
    (code, assumptions::message(code).to_string())
}

/// The vendor's envelope, always HTTP 200 (see `assumptions::codes`).
fn envelope(reply: Reply) -> Response {
    match reply {
        Ok(result) => Json(json!({"code": codes::SUCCESS, "msg": "Success", "result": result}))
            .into_response(),
        Err((code, msg)) => Json(json!({"code": code, "msg": msg})).into_response(),
    }
}

/// A fault's code as the vendor would send it: numeric when it is a number.
fn reject_envelope(code: &str, msg: Option<&str>) -> Response {
    let code_value = code
        .parse::<i64>()
        .map(Value::from)
        .unwrap_or_else(|_| Value::from(code));
    let msg = msg.map(str::to_string).unwrap_or_else(|| {
        code.parse()
            .map(assumptions::message)
            .unwrap_or("System error")
            .to_string()
    });
    Json(json!({"code": code_value, "msg": msg})).into_response()
}

/// Request fields from a form body, a JSON body (one client posts JSON to `topupDetail`) or a
/// query string.
fn fields(headers: &HeaderMap, body: &[u8]) -> HashMap<String, String> {
    let is_json = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.to_ascii_lowercase().contains("json"));
    if is_json {
        let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
            return HashMap::new();
        };
        map.into_iter()
            .filter_map(|(k, v)| match v {
                Value::String(s) => Some((k, s)),
                Value::Number(n) => Some((k, n.to_string())),
                _ => None,
            })
            .collect()
    } else {
        form_urlencoded::parse(body).into_owned().collect()
    }
}

fn required<'a>(fields: &'a HashMap<String, String>, name: &str) -> Result<&'a str, (i64, String)> {
    fields
        .get(name)
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| (codes::INVALID_PARAMETER, format!("{name} is required")))
}

fn random_hex_upper(n: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| char::from(b"0123456789ABCDEF"[rng.gen_range(0..16)]))
        .collect()
}

fn money(d: Decimal) -> String {
    let mut d = d;
    d.rescale(2);
    d.to_string()
}

impl MicroEsimSim {
    pub fn new(creds: &MicroEsimCredentials, settings: SimSettings) -> Self {
        let signer = Signer::new(
            creds.account.expose_secret(),
            creds.secret.expose_secret(),
            creds.salt_hex.expose_secret(),
        )
        .expect("simulator credentials carry a hex salt");
        let plans = vendor_products_sized(VendorId::MicroEsim, settings.catalog_size)
            .iter()
            .map(render_plan)
            .collect();
        MicroEsimSim {
            core: SimCore::new(VendorId::MicroEsim, settings),
            signer,
            state: Arc::new(Mutex::new(SimState {
                balance: START_BALANCE.parse().expect("valid decimal"),
                plans,
                orders: Vec::new(),
                devices: HashMap::new(),
                nonces: HashMap::new(),
                max_page_size: 500,
                push_format: PushFormat::Json,
            })),
        }
    }

    pub fn core(&self) -> &SimCore {
        &self.core
    }

    /// Random credentials for sandbox mode.
    pub fn sandbox_credentials(base_url: url::Url) -> MicroEsimCredentials {
        let salt: [u8; 16] = rand::thread_rng().r#gen();
        MicroEsimCredentials {
            account: SecretString::from(format!("sandbox_{}", crate::sandbox::random_alnum(10))),
            secret: SecretString::from(crate::sandbox::random_alnum(28)),
            salt_hex: SecretString::from(hex::encode(salt)),
            base_url,
        }
    }

    pub fn router(&self) -> Router {
        let p = |endpoint: &str| format!("{PATH_PREFIX}/{endpoint}");
        Router::new()
            .route(&p("esimDataplanList"), get(plan_list))
            .route(&p("esimDataplanListPage"), get(plan_page))
            .route(&p("esimSubscribe"), post(subscribe))
            .route(&p("topupDetail"), post(topup_detail))
            .route(&p(assumptions::LOOKUP_ENDPOINT), post(lookup))
            .route(&p("deviceDetail"), post(device_detail))
            .route(&p("eventDetail"), post(event_detail))
            .route(&p("accountBalance"), post(account_balance))
            .route(&p("terminate"), post(terminate))
            .with_state(self.clone())
            .merge(crate::sandbox::control_router(self.core.clone()))
            // A path the API does not serve, as an honest web framework answers it.
            .fallback(|| async { faults::path_not_found() })
    }

    fn state(&self) -> MutexGuard<'_, SimState> {
        // A handler that drops its connection never holds this lock, but recover anyway.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn balance(&self) -> Decimal {
        self.state().balance
    }

    pub fn set_balance(&self, balance: Decimal) {
        self.state().balance = balance;
    }

    /// Caps `pageSize` so the catalogue spans several pages.
    pub fn set_max_page_size(&self, size: u32) {
        self.state().max_page_size = size.max(1);
    }

    pub fn set_push_format(&self, format: PushFormat) {
        self.state().push_format = format;
    }

    /// Number of plans in the catalogue.
    pub fn plan_count(&self) -> usize {
        self.state().plans.len()
    }

    /// The catalogue price of a plan.
    pub fn price_of(&self, plan_id: &str) -> Option<Decimal> {
        self.state()
            .plans
            .iter()
            .find(|p| p.id == plan_id)
            .map(|p| p.price)
    }

    /// The traveller downloads and installs the profile (eventDetail shows it).
    pub fn install(&self, device_id: &str) -> bool {
        let mut st = self.state();
        let Some(d) = st.devices.get_mut(device_id) else {
            return false;
        };
        let now = Utc::now();
        d.events.push((now, "DOWNLOADED"));
        d.events.push((now, "INSTALLED"));
        true
    }

    /// The eSIM uses `mb` binary megabytes today; the first use activates it.
    pub fn consume(&self, device_id: &str, mb: Decimal) -> bool {
        let mut st = self.state();
        let Some(d) = st.devices.get_mut(device_id) else {
            return false;
        };
        let now = Utc::now();
        if d.events.is_empty() {
            d.events.push((now, "DOWNLOADED"));
            d.events.push((now, "INSTALLED"));
        }
        if d.active_time.is_none() {
            d.active_time = Some(now);
            d.events.push((now, "ENABLE"));
        }
        let day = format_utc8(now)[..10].to_string();
        *d.daily_mb.entry(day).or_default() += mb;
        true
    }

    /// Takes the operation's fault, applies its early part, then checks the signature.
    /// The refusal is boxed only to keep the `Result` small.
    fn guard(&self, op: &str, headers: &HeaderMap) -> Result<faults::Armed, Box<Response>> {
        let fault = self.core.faults.begin(op, reject_envelope)?;
        // Only the early part of an auth fault applies: the signature check answers nothing
        // of its own to delay or garble.
        let _auth = self.core.faults.begin(ops::AUTH, reject_envelope)?;
        self.verify(headers)
            .map_err(|c| Box::new(envelope(Err(refuse(c)))))?;
        Ok(fault)
    }

    /// The vendor's check: known account, fresh 13-digit timestamp, 6–32 character nonce not
    /// seen in the window, and the HMAC over account + nonce + timestamp.
    fn verify(&self, headers: &HeaderMap) -> Result<(), i64> {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .unwrap_or("")
        };
        let (account, nonce, timestamp, sign) = (
            header("MICROESIM-ACCOUNT"),
            header("MICROESIM-NONCE"),
            header("MICROESIM-TIMESTAMP"),
            header("MICROESIM-SIGN"),
        );
        if account.is_empty() || account != self.signer.account() {
            return Err(codes::UNKNOWN_ACCOUNT);
        }
        if !(6..=32).contains(&nonce.len()) || sign.is_empty() {
            return Err(codes::INVALID_PARAMETER);
        }
        let ts: i64 = match timestamp.parse() {
            Ok(ts) if timestamp.len() == 13 => ts,
            _ => return Err(codes::TIMESTAMP_EXPIRED),
        };
        let now = Utc::now().timestamp_millis();
        let window = SIGNATURE_WINDOW.as_millis() as i64;
        if (now - ts).abs() > window {
            return Err(codes::TIMESTAMP_EXPIRED);
        }
        let expected = self.signer.sign(nonce, timestamp);
        if !secrets_equal(&expected, sign) {
            return Err(codes::INVALID_SIGN);
        }
        let mut st = self.state();
        st.nonces.retain(|_, seen| now - *seen <= window);
        if st.nonces.insert(nonce.to_string(), ts).is_some() {
            return Err(codes::NONCE_REUSED);
        }
        Ok(())
    }

    fn subscribe_now(&self, f: &HashMap<String, String>) -> Reply {
        let number: u32 = required(f, "number")?
            .parse()
            .ok()
            .filter(|n| (1..=10).contains(n))
            .ok_or_else(|| (codes::INVALID_PARAMETER, "number must be 1-10".to_string()))?;
        let plan_id = required(f, "channel_dataplan_id")?;
        let custom_order_no = f
            .get("custom_order_no")
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty());
        let now = Utc::now();
        let mut st = self.state();
        let plan = st
            .plans
            .iter()
            .find(|p| p.id == plan_id)
            .cloned()
            .ok_or_else(|| refuse(codes::DATAPLAN_NOT_FOUND))?;
        let cost = plan.price * Decimal::from(number);
        if st.balance < cost {
            return Err(refuse(codes::INSUFFICIENT_BALANCE));
        }
        st.balance -= cost;
        let topup_id = loop {
            let id = format!(
                "{}{}",
                format_utc8(now).replace(['-', ' ', ':'], ""),
                random_digits(10)
            );
            if !st.orders.iter().any(|o| o.topup_id == id) {
                break id;
            }
        };
        let device_ids = (0..number)
            .map(|_| new_device(&mut st, &topup_id, now))
            .collect();
        st.orders.push(SimOrder {
            topup_id: topup_id.clone(),
            custom_order_no: custom_order_no.clone(),
            plan: plan.clone(),
            number,
            created: now,
            ready: false,
            device_ids,
        });
        drop(st);
        self.core.record_order(SimOrderRecord {
            vendor_reference: topup_id.clone(),
            client_reference: custom_order_no,
            sku: plan.id,
            quantity: number,
            iccids: Vec::new(),
            topup: false,
            cancelled: false,
            created_at: now,
        });
        let sim = self.clone();
        let delay = self.core.settings().provisioning_delay;
        let id = topup_id.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            sim.complete(&id);
        });
        Ok(json!({"topup_id": topup_id}))
    }

    /// Provisioning finished: the order becomes readable and its eSIMs are pushed.
    fn complete(&self, topup_id: &str) {
        let (pushes, iccids, format) = {
            let mut st = self.state();
            let now = Utc::now();
            let Some(order) = st.orders.iter_mut().find(|o| o.topup_id == topup_id) else {
                return;
            };
            order.ready = true;
            let order = order.clone();
            let mut pushes = Vec::new();
            let mut iccids = Vec::new();
            for id in &order.device_ids {
                let Some(d) = st.devices.get_mut(id) else {
                    continue;
                };
                // ACTIVEDBYORDER without activation_date starts at once.
                if order.plan.activates_on_order && d.active_time.is_none() {
                    d.active_time = Some(now);
                }
                iccids.push(d.iccid.clone());
                pushes.push(push_data(&order, d));
            }
            (pushes, iccids, st.push_format)
        };
        self.core.update_order(topup_id, |o| o.iccids = iccids);
        let retries = retry_schedule(&self.core.settings());
        for data in pushes {
            self.core.deliver(render_push(format, data), retries);
        }
    }

    fn order_by_topup(&self, topup_id: &str) -> Option<SimOrder> {
        self.state()
            .orders
            .iter()
            .find(|o| o.topup_id == topup_id)
            .cloned()
    }

    fn order_by_custom(&self, custom: &str) -> Option<SimOrder> {
        self.state()
            .orders
            .iter()
            .find(|o| o.custom_order_no.as_deref() == Some(custom))
            .cloned()
    }

    /// The topupDetail `result`: parallel arrays, empty until provisioned.
    fn detail(&self, order: &SimOrder) -> Value {
        let st = self.state();
        let devices: Vec<&SimDevice> = if order.ready {
            order
                .device_ids
                .iter()
                .filter_map(|id| st.devices.get(id))
                .collect()
        } else {
            Vec::new()
        };
        let col = |f: &dyn Fn(&SimDevice) -> String| -> Vec<String> {
            devices.iter().map(|d| f(d)).collect()
        };
        json!({
            "topup_id": order.topup_id,
            "number": order.number,
            "channel_dataplan_id": order.plan.id,
            "channel_dataplan_name": order.plan.name,
            "success_number": devices.len(),
            "create_time": format_java_date(order.created),
            "type": "esim",
            "device_ids": col(&|d| d.device_id.clone()),
            "operator_iccids": col(&|d| d.iccid.clone()),
            "lpa_str": col(&|d| d.lpa.clone()),
            "qrcode": col(&|d| qrcode(&d.device_id)),
            "ios_esim_install_link": col(&|d| ios_link(&d.lpa)),
            "android_esim_install_link": col(&|d| android_link(&d.lpa)),
            "msisdn": col(&|d| d.msisdn.clone()),
            "cf_code": col(&|d| d.cf_code.clone()),
        })
    }

    fn device_json(&self, topup_id: &str, device_id: &str) -> Reply {
        let order = self
            .order_by_topup(topup_id)
            .filter(|o| o.ready && o.device_ids.iter().any(|d| d == device_id))
            .ok_or_else(|| refuse(codes::ORDER_NOT_FOUND))?;
        let st = self.state();
        let d = st
            .devices
            .get(device_id)
            .ok_or_else(|| refuse(codes::ORDER_NOT_FOUND))?;
        let time = |t: Option<DateTime<Utc>>| t.map(format_utc8).unwrap_or_default();
        let expire = d
            .active_time
            .map(|t| t + chrono::Duration::days(i64::from(order.plan.days)));
        let total: Decimal = d.daily_mb.values().copied().sum();
        let daily: Vec<Value> = d
            .daily_mb
            .iter()
            .rev()
            .map(|(date, mb)| {
                let mut kb = *mb * Decimal::from(1024);
                kb.rescale(3);
                json!({"date": date, "total_usage": money(*mb), "mcc": "454", "mnc": "00",
                       "total_usage_kb": kb.to_string()})
            })
            .collect();
        let reset = if order.plan.daily {
            format!("{} 23:59:59", &format_utc8(Utc::now())[..10])
        } else {
            String::new()
        };
        Ok(json!({
            "topup_id": order.topup_id,
            "device_id": d.device_id,
            "type": "esim",
            "channel_dataplan_id": order.plan.id,
            "channel_dataplan_name": order.plan.name,
            "status": "success",
            "active_time": time(d.active_time),
            "pause_time": "",
            "expire_time": time(expire),
            "terminate_time": time(d.terminate_time),
            "create_time": format_utc8(d.created),
            "data_usage": total.normalize().to_string(),
            "data_usage_daily": daily,
            "is_daily": order.plan.daily.to_string(),
            "daily_reset_time": reset,
        }))
    }

    fn events_json(&self, device_id: &str) -> Reply {
        let st = self.state();
        let d = st
            .devices
            .get(device_id)
            .ok_or_else(|| refuse(codes::ORDER_NOT_FOUND))?;
        Ok(Value::Array(
            d.events
                .iter()
                .map(|(at, kind)| {
                    json!({"event_date": format_utc8(*at), "eid": d.eid,
                           "notification_status": "Executed-Success", "notify_type": kind})
                })
                .collect(),
        ))
    }

    fn terminate_now(&self, topup_id: &str, device_id: &str) -> Reply {
        let mut st = self.state();
        let order = st
            .orders
            .iter()
            .find(|o| o.topup_id == topup_id && o.device_ids.iter().any(|d| d == device_id))
            .cloned()
            .ok_or_else(|| refuse(codes::ORDER_NOT_FOUND))?;
        let d = st
            .devices
            .get_mut(device_id)
            .ok_or_else(|| refuse(codes::ORDER_NOT_FOUND))?;
        if d.terminate_time.is_none() {
            if !d.events.is_empty() || d.active_time.is_some() {
                return Err(refuse(codes::TERMINATE_NOT_ALLOWED));
            }
            d.terminate_time = Some(Utc::now());
        }
        let all_done = order.device_ids.iter().all(|id| {
            st.devices
                .get(id)
                .is_some_and(|d| d.terminate_time.is_some())
        });
        drop(st);
        if all_done {
            self.core.update_order(topup_id, |o| o.cancelled = true);
        }
        Ok(Value::Null)
    }

    fn page(&self, query: &HashMap<String, String>) -> Reply {
        let number = |name: &str| -> Result<u32, (i64, String)> {
            required(query, name)?
                .parse::<u32>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| {
                    (
                        codes::INVALID_PARAMETER,
                        format!("{name} must be a positive number"),
                    )
                })
        };
        let (page_no, requested) = (number("pageNo")?, number("pageSize")?);
        let st = self.state();
        let size = requested.min(st.max_page_size);
        let total = st.plans.len() as u32;
        let list: Vec<Value> = st
            .plans
            .iter()
            .skip(((page_no - 1) * size) as usize)
            .take(size as usize)
            .map(|p| p.wire.clone())
            .collect();
        Ok(json!({
            "pageNo": page_no,
            "pageSize": size,
            "total": total,
            "totalPages": total.div_ceil(size),
            "list": list,
        }))
    }
}

fn new_device(st: &mut SimState, topup_id: &str, now: DateTime<Utc>) -> String {
    // 16 digits like the collection's `9000024081603874`: 90000, yyMMdd, 5 digits.
    let day = format_utc8(now).replace('-', "");
    let device_id = loop {
        let id = format!("90000{}{}", &day[2..8], random_digits(5));
        if !st.devices.contains_key(&id) {
            break id;
        }
    };
    st.devices.insert(
        device_id.clone(),
        SimDevice {
            device_id: device_id.clone(),
            iccid: generate_iccid("898520", 20),
            lpa: format!("LPA:1${SMDP}${}", random_hex_upper(32)),
            msisdn: format!("852{}", random_digits(8)),
            cf_code: random_digits(6),
            eid: format!("89033023426300000000{}", random_digits(12)),
            topup_id: topup_id.to_string(),
            created: now,
            active_time: None,
            terminate_time: None,
            events: Vec::new(),
            daily_mb: BTreeMap::new(),
        },
    );
    device_id
}

fn qrcode(device_id: &str) -> String {
    format!("https://microesim.top/files/9999-{device_id}")
}

fn ios_link(lpa: &str) -> String {
    format!("https://esimsetup.apple.com/esim_qrcode_provisioning?carddata={lpa}")
}

fn android_link(lpa: &str) -> String {
    format!("https://esimsetup.android.com/esim_qrcode_provisioning?carddata={lpa}")
}

/// The push's scalar fields for one eSIM, as the collection lists them (plus the
/// `operator_iccid` of "ICCID source" in `assumptions`).
fn push_data(order: &SimOrder, d: &SimDevice) -> Vec<(&'static str, String)> {
    vec![
        ("topup_id", d.topup_id.clone()),
        ("number", order.number.to_string()),
        ("create_time", format_utc8(order.created)),
        ("device_id", d.device_id.clone()),
        ("lpa_str", d.lpa.clone()),
        ("qrcode", qrcode(&d.device_id)),
        ("ios_esim_install_link", ios_link(&d.lpa)),
        ("android_esim_install_link", android_link(&d.lpa)),
        ("msisdn", d.msisdn.clone()),
        ("cf_code", d.cf_code.clone()),
        ("operator_iccid", d.iccid.clone()),
    ]
}

/// Unsigned, like the vendor's: no headers beyond the content type.
fn render_push(format: PushFormat, data: Vec<(&'static str, String)>) -> OutgoingCallback {
    match format {
        PushFormat::Json => {
            let data: serde_json::Map<String, Value> = data
                .into_iter()
                .map(|(k, v)| (k.to_string(), Value::String(v)))
                .collect();
            let body = json!({"code": codes::SUCCESS, "msg": "Success", "data": data});
            OutgoingCallback {
                content_type: "application/json",
                headers: Vec::new(),
                body: body.to_string().into_bytes(),
            }
        }
        PushFormat::Form => OutgoingCallback {
            content_type: "application/x-www-form-urlencoded",
            headers: Vec::new(),
            body: form_urlencoded::Serializer::new(String::new())
                .extend_pairs(data)
                .finish()
                .into_bytes(),
        },
    }
}

/// The vendor's 5 s → 10 s backoff, compressed when the settings are test-fast.
fn retry_schedule(settings: &SimSettings) -> &'static [Duration] {
    if settings.callback_delay < Duration::from_millis(100) {
        PUSH_RETRIES_FAST
    } else {
        PUSH_RETRIES
    }
}

/// A stable 33-character plan id like the collection's `2024081342489905C36Eee9eA513390E9`.
fn plan_id(key: &str) -> String {
    let digest = hex::encode_upper(Sha256::digest(format!("microesim:{key}")));
    format!("20240813{}", &digest[..25])
}

fn data_text(data: SeedData, spaced: bool) -> String {
    let sep = if spaced { " " } else { "" };
    let amount = |mb: u64| {
        if mb % 1024 == 0 {
            format!("{}GB", mb / 1024)
        } else {
            format!("{mb}MB")
        }
    };
    match data {
        SeedData::Unlimited => "unlimited".to_string(),
        SeedData::DailyMb(mb) => format!("Daily{sep}{}", amount(mb)),
        SeedData::TotalMb(mb) if mb % 1024 == 0 => format!("Total{sep}{}", amount(mb)),
        SeedData::TotalMb(mb) => amount(mb),
    }
}

fn operator(country: &str) -> &'static str {
    match country {
        "JP" => "Docomo(IIJ)[4G;LTE]",
        "CN" => "China Unicom[4G;5G]",
        "HK" => "CSL[4G;5G]",
        "MO" => "CTM[4G]",
        "TW" => "Chunghwa Telecom[4G;LTE]",
        "US" => "T-Mobile[4G;5G]",
        "GB" => "Three[4G;5G]",
        "KR" => "SKT[4G;LTE]",
        "TH" => "AIS[4G;5G]",
        _ => "Local Partner[4G;LTE]",
    }
}

/// One seed product in MicroEsim's plan format. Mainland-China-only plans need eKYC, and a
/// few plans start their validity at purchase, so both flags appear in the sandbox.
fn render_plan(p: &VendorProduct) -> SimPlan {
    let plan = &p.plan;
    let id = plan_id(&plan.key);
    let spaced = id.as_bytes()[8] % 2 == 0;
    let activates_on_order = id.as_bytes()[9] % 7 == 0;
    let ekyc = plan.countries == ["CN"];
    let name = format!(
        "{}-{}",
        plan.title,
        if plan.region.is_some() { "R" } else { "L" }
    );
    let networks: String = plan
        .countries
        .iter()
        .map(|c| format!("{c}:{}|", operator(c)))
        .collect();
    let wire = json!({
        "channel_dataplan_id": id,
        "channel_dataplan_name": name,
        "price": money(p.price),
        "currency": p.currency.as_str(),
        "status": "1",
        "day": plan.days,
        "data": data_text(plan.data, spaced),
        "apn": "microesim",
        "active_type": if activates_on_order { "ACTIVEDBYORDER" } else { "ACTIVEDBYDEVICE" },
        "code": plan.countries.join(","),
        "networks": networks,
        "ip": "HK",
        "rule_desc": match plan.data {
            SeedData::TotalMb(_) => "terminate",
            SeedData::DailyMb(_) => "unlimited 128kbps",
            SeedData::Unlimited => "unlimited 512kbps",
        },
        "validity_period": "180",
        "special_desc": if ekyc { "ekyc required esim" } else { "" },
    });
    SimPlan {
        id,
        name,
        price: p.price,
        days: plan.days,
        daily: matches!(plan.data, SeedData::DailyMb(_)),
        activates_on_order,
        wire,
    }
}

// ---------------------------------------------------------------------------------------------
// Handlers: fault → signature → act → late part of the fault → envelope.

async fn plan_list(State(sim): State<MicroEsimSim>, headers: HeaderMap) -> Response {
    let fault = match sim.guard(ops::LIST, &headers) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let plans: Vec<Value> = sim.state().plans.iter().map(|p| p.wire.clone()).collect();
    fault.finish(envelope(Ok(Value::Array(plans)))).await
}

async fn plan_page(
    State(sim): State<MicroEsimSim>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let fault = match sim.guard(ops::LIST, &headers) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let query = fields(&HeaderMap::new(), query.unwrap_or_default().as_bytes());
    let reply = sim.page(&query);
    fault.finish(envelope(reply)).await
}

async fn subscribe(State(sim): State<MicroEsimSim>, headers: HeaderMap, body: Bytes) -> Response {
    let fault = match sim.guard(ops::ORDER, &headers) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let reply = sim.subscribe_now(&fields(&headers, &body));
    fault.finish(envelope(reply)).await
}

async fn topup_detail(
    State(sim): State<MicroEsimSim>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fault = match sim.guard(ops::QUERY, &headers) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let f = fields(&headers, &body);
    let reply = required(&f, "topup_id").and_then(|id| {
        let order = sim
            .order_by_topup(id)
            .ok_or_else(|| refuse(codes::ORDER_NOT_FOUND))?;
        // TSIM answers "processing" until the eSIMs exist.
        if !order.ready {
            return Err(refuse(codes::ORDER_PROCESSING));
        }
        Ok(sim.detail(&order))
    });
    fault.finish(envelope(reply)).await
}

async fn lookup(State(sim): State<MicroEsimSim>, headers: HeaderMap, body: Bytes) -> Response {
    let fault = match sim.guard(ops::LOOKUP, &headers) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let f = fields(&headers, &body);
    let reply = required(&f, "custom_order_no").and_then(|no| {
        let order = sim
            .order_by_custom(no)
            .ok_or_else(|| refuse(codes::ORDER_NOT_FOUND))?;
        Ok(sim.detail(&order))
    });
    fault.finish(envelope(reply)).await
}

async fn device_detail(
    State(sim): State<MicroEsimSim>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fault = match sim.guard(ops::USAGE, &headers) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let f = fields(&headers, &body);
    let reply = required(&f, "topup_id")
        .and_then(|t| Ok((t, required(&f, "device_id")?)))
        .and_then(|(t, d)| sim.device_json(t, d));
    fault.finish(envelope(reply)).await
}

async fn event_detail(
    State(sim): State<MicroEsimSim>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fault = match sim.guard(ops::EVENTS, &headers) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let f = fields(&headers, &body);
    let reply = required(&f, "device_id").and_then(|d| sim.events_json(d));
    fault.finish(envelope(reply)).await
}

async fn account_balance(State(sim): State<MicroEsimSim>, headers: HeaderMap) -> Response {
    let fault = match sim.guard(ops::BALANCE, &headers) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    // A JSON number, as in the collection (`14860.23`).
    let balance: serde_json::Number = money(sim.balance())
        .parse()
        .unwrap_or_else(|_| serde_json::Number::from(0));
    let reply = Ok(json!({
        "balance": balance,
        "currency": "HKD",
        "account": sim.signer.account(),
    }));
    fault.finish(envelope(reply)).await
}

async fn terminate(State(sim): State<MicroEsimSim>, headers: HeaderMap, body: Bytes) -> Response {
    let fault = match sim.guard(ops::CANCEL, &headers) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let f = fields(&headers, &body);
    let reply = required(&f, "topup_id")
        .and_then(|t| Ok((t, required(&f, "device_id")?)))
        .and_then(|(t, d)| sim.terminate_now(t, d));
    fault.finish(envelope(reply)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendors::{
        DataKind,
        microesim::wire::{Dataplan, parse_data},
    };

    #[test]
    fn catalogue_renders_in_the_vendors_format_with_stable_ids() {
        let a: Vec<SimPlan> = crate::sandbox::catalog::vendor_products(VendorId::MicroEsim)
            .iter()
            .map(render_plan)
            .collect();
        let b: Vec<String> = crate::sandbox::catalog::vendor_products(VendorId::MicroEsim)
            .iter()
            .map(|p| render_plan(p).id)
            .collect();
        assert_eq!(a.iter().map(|p| p.id.clone()).collect::<Vec<_>>(), b);
        assert!(a.iter().all(|p| p.id.len() == 33));
        let mut kinds = std::collections::HashSet::new();
        for p in &a {
            let plan: Dataplan = serde_json::from_value(p.wire.clone()).unwrap();
            assert!(plan.price.parse::<Decimal>().is_ok());
            let data = parse_data(&plan.data).unwrap_or_else(|| panic!("{}", plan.data));
            kinds.insert(data.kind);
        }
        assert_eq!(kinds.len(), 3, "total, daily and unlimited plans");
        assert!(
            a.iter()
                .any(|p| p.wire["special_desc"] == "ekyc required esim")
        );
        assert!(a.iter().any(|p| p.activates_on_order));
        assert!(kinds.contains(&DataKind::Daily));
    }

    #[test]
    fn fast_settings_compress_the_push_backoff() {
        assert_eq!(retry_schedule(&SimSettings::fast()), PUSH_RETRIES_FAST);
        let slow = SimSettings {
            callback_delay: Duration::from_secs(1),
            ..SimSettings::default()
        };
        assert_eq!(retry_schedule(&slow), PUSH_RETRIES);
    }
}
