//! Simulated eSIM Access: its wire protocol (`src/vendors/esimaccess/README.md`) with signed
//! JSON POSTs under `/api/v1/open/…`, the `{success, errorCode, errorMsg, obj}` envelope and
//! the docs' error codes, an 8 requests/s limit, asynchronous profile allocation (`/esim/query`
//! answers 200010 until done) and unsigned webhooks.
//!
//! The JSON here is written out field by field rather than through the adapter's wire types,
//! so a misnamed field on either side fails the integration tests instead of agreeing with
//! itself. Guesses about the vendor come from [`assumptions`].

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::Instant,
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, Method},
    response::{IntoResponse, Response},
    routing::{MethodRouter, any},
};
use chrono::{DateTime, Utc};
use rand::Rng;
use rust_decimal::{Decimal, prelude::ToPrimitive};
use serde_json::{Value, json};

use crate::sandbox::{
    OutgoingCallback, SimCore, SimOrderRecord, SimSettings,
    catalog::{SeedData, vendor_products_sized},
    control_router, faults, generate_iccid, random_alnum,
};
use crate::{
    domain::api_key::secrets_equal,
    domain::secret::{ExposeSecret, SecretString},
    vendors::esimaccess::credentials::EsimAccessCredentials,
    vendors::{
        MIB, VendorId,
        esimaccess::{
            MAX_REQUESTS_PER_SECOND, MAX_TRANSACTION_ID, NOT_READY, assumptions, sign,
            wire::parse_time,
        },
    },
};

/// How this simulator plays the storefront test scenarios (`ordering::scenario`). eSIM Access: 200011 sold out, 200009 not allowed (cancel of a used/expired profile); its order carries our id as transactionId.
pub const SCENARIO_CODES: crate::sandbox::ScenarioCodes = crate::sandbox::ScenarioCodes {
    sold_out: "200011",
    cancel_refused: Some("200009"),
    order_names_client_reference: true,
    async_delivery: true,
    usage_callbacks: false,
};

/// Fault-injectable operations. `auth` applies to every call, before its own operation.
pub mod ops {
    pub const AUTH: &str = "auth";
    /// `/package/list` (base and top-up catalogues).
    pub const LIST: &str = "list";
    pub const ORDER: &str = "order";
    /// `/esim/query`.
    pub const QUERY: &str = "query";
    pub const TOPUP: &str = "topup";
    pub const CANCEL: &str = "cancel";
    /// `/esim/usage/query`.
    pub const USAGE: &str = "usage";
    pub const BALANCE: &str = "balance";
}

const SMDP: &str = "rsp-eu.simlessly.com";
const STARTING_BALANCE_UNITS: i64 = 1_000 * 10_000;
const MAX_ESIMS_PER_ORDER: i64 = 30;

/// An injected refusal, in the vendor's envelope (the documented message unless given).
fn fault_reject(code: &str, message: Option<&str>) -> Response {
    error(code, message.unwrap_or_else(|| message_for(code)))
}

/// The docs' message for each code the simulator sends.
fn message_for(code: &str) -> &'static str {
    match code {
        "000001" => "Server error",
        "000101" => "Request header (mandatory) is null",
        "000102" => "Wrong request header format",
        "000103" => "This https request method (get/post ) is not supported",
        "000104" => "Request in invalid JSON format",
        "000105" => "Request parameters (mandatory) are not contained",
        "000106" => "Request parameter (mandatory) is null",
        "000107" => "The length of the request parameter does not meet the requirement.",
        "101001" => "The timestamp of the request has expired.",
        "101002" => "This IP is in the blocklist.",
        "101003" => "Request signature mismatch.",
        "200002" => "This operation is not allowed due to the order status.",
        "200005" => "Package price error. Check price.",
        "200006" => "Total order price amount is wrong. Check prices.",
        "200007" => "Insufficient account balance",
        "200008" => "Order parameters error, please contact customer service.",
        "200009" => "Abnormal order status",
        NOT_READY => "Profile is being downloaded for the order.",
        "200011" => {
            "Insufficient available Profiles for the package, please contact the customer service."
        }
        "310241" => "The packageCode does not exist.",
        "310243" => "The package does not exist",
        "310272" => "The orderNo does not exist.",
        "310403" => "The ICCID does not exist in the order.",
        "900001" => "The system is busy, please try again later.",
        c if c == assumptions::THROTTLED_CODE => "Too many requests",
        _ => "Error",
    }
}

fn ok(obj: Value) -> Response {
    Json(json!({"success": true, "errorCode": "0", "errorMsg": null, "obj": obj})).into_response()
}

/// Errors are an envelope with `success: false`, sent with HTTP 200 [assumption].
fn error(code: &str, message: &str) -> Response {
    let status = if assumptions::ERRORS_USE_HTTP_200 {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::BAD_REQUEST
    };
    let body = json!({"success": false, "errorCode": code, "errorMsg": message, "obj": null});
    (status, Json(body)).into_response()
}

fn vendor_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S+0000").to_string()
}

/// One package of the simulated catalogue, base or top-up.
#[derive(Debug, Clone)]
struct Package {
    code: String,
    slug: String,
    name: String,
    price: i64,
    volume: i64,
    data_type: u8,
    duration: i64,
    countries: Vec<&'static str>,
    supports_topup: bool,
    is_topup: bool,
}

impl Package {
    fn location(&self) -> String {
        self.countries.join(",")
    }

    fn matches(&self, code_or_slug: &str) -> bool {
        self.code == code_or_slug || self.slug == code_or_slug
    }

    fn to_json(&self) -> Value {
        let networks: Vec<Value> = self
            .countries
            .iter()
            .map(|cc| {
                let (name, operators) = country_networks(cc);
                json!({
                    "locationName": name,
                    "locationLogo": format!("/img/flags/{}.png", cc.to_ascii_lowercase()),
                    "locationCode": cc,
                    "operatorList": operators.iter().map(|(op, kind)| json!({
                        "operatorName": op, "networkType": kind
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        json!({
            "packageCode": self.code,
            "slug": self.slug,
            "name": self.name,
            "price": self.price,
            "currencyCode": "USD",
            "volume": self.volume,
            "smsStatus": 0,
            "dataType": self.data_type,
            "unusedValidTime": 180,
            "duration": self.duration,
            "durationUnit": "DAY",
            "location": self.location(),
            "description": self.name,
            "activeType": 2,
            "favorite": false,
            "retailPrice": self.price * 3 / 2,
            "speed": "3G/4G/5G",
            "locationNetworkList": networks,
            "supportTopUpType": if self.supports_topup { 2 } else { 1 },
            "fupPolicy": if self.volume == assumptions::UNLIMITED_VOLUME { "512 Kbps" } else { "" },
            "ipExport": "HK",
        })
    }
}

/// Operators per country for the catalogue's network lists.
fn country_networks(cc: &str) -> (&'static str, &'static [(&'static str, &'static str)]) {
    match cc {
        "JP" => ("Japan", &[("SoftBank", "4G/5G"), ("KDDI", "4G/5G")]),
        "US" => ("United States", &[("T-Mobile", "5G"), ("AT&T", "4G/5G")]),
        "GB" => ("United Kingdom", &[("Three", "4G/5G"), ("EE", "4G")]),
        "FR" => ("France", &[("Orange", "4G/5G"), ("SFR", "4G")]),
        "DE" => ("Germany", &[("Telekom", "4G/5G"), ("Vodafone", "4G")]),
        "TH" => ("Thailand", &[("AIS", "4G/5G"), ("dtac", "4G")]),
        "KR" => ("South Korea", &[("SK Telecom", "4G/5G"), ("KT", "4G")]),
        "CN" => ("China", &[("China Unicom", "4G/5G")]),
        "HK" => ("Hong Kong", &[("CMHK", "4G/5G")]),
        "SG" => ("Singapore", &[("Singtel", "4G/5G")]),
        _ => ("", &[("Partner network", "4G")]),
    }
}

/// FNV-1a: package codes must not change between runs.
fn fnv(s: &str, salt: u32) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes().chain(salt.to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// "JC016"-style codes derived from the seed key, unique in the catalogue.
fn package_code(key: &str, taken: &mut std::collections::HashSet<String>) -> String {
    (0..)
        .map(|salt| {
            let h = fnv(key, salt);
            let a = char::from(b'A' + (h % 26) as u8);
            let b = char::from(b'A' + ((h >> 8) % 26) as u8);
            format!("{a}{b}{:03}", (h >> 16) % 1000)
        })
        .find(|c| taken.insert(c.clone()))
        .expect("the code space is far larger than the catalogue")
}

fn build_catalogue(size: Option<usize>) -> Vec<Package> {
    let mut taken = std::collections::HashSet::new();
    let mut base = Vec::new();
    let mut topups = Vec::new();
    for product in vendor_products_sized(VendorId::EsimAccess, size) {
        let plan = &product.plan;
        let (volume, data_type) = match plan.data {
            SeedData::TotalMb(mb) => ((mb * MIB) as i64, 1),
            SeedData::DailyMb(mb) => ((mb * MIB) as i64, 2),
            SeedData::Unlimited => (assumptions::UNLIMITED_VOLUME, 2),
        };
        let price = (product.price * Decimal::from(10_000))
            .round()
            .to_i64()
            .unwrap_or(i64::MAX);
        let package = Package {
            code: package_code(&plan.key, &mut taken),
            slug: plan.key.clone(),
            name: plan.title.clone(),
            price,
            volume,
            data_type,
            duration: i64::from(plan.days),
            countries: plan.countries.clone(),
            supports_topup: product.topup,
            is_topup: false,
        };
        if product.topup {
            topups.push(Package {
                code: format!("TOPUP_{}", package.code),
                slug: format!("TOPUP_{}", package.slug),
                name: format!("{} (top up)", package.name),
                supports_topup: false,
                is_topup: true,
                ..package.clone()
            });
        }
        base.push(package);
    }
    base.extend(topups);
    base
}

#[derive(Debug, Clone)]
struct OrderLine {
    package: Package,
    count: i64,
}

#[derive(Debug)]
struct Order {
    order_no: String,
    transaction_id: String,
    lines: Vec<OrderLine>,
    created_at: DateTime<Utc>,
    allocated: bool,
}

#[derive(Debug)]
struct Esim {
    tran_no: String,
    order_no: String,
    transaction_id: String,
    iccid: String,
    imsi: String,
    matching_id: String,
    package: Package,
    total_volume: i64,
    total_duration: i64,
    used: i64,
    expires_at: DateTime<Utc>,
    esim_status: &'static str,
    smdp_status: &'static str,
}

impl Esim {
    fn to_json(&self) -> Value {
        let qr = self.matching_id.to_ascii_lowercase();
        json!({
            "esimTranNo": self.tran_no,
            "orderNo": self.order_no,
            "transactionId": self.transaction_id,
            "imsi": self.imsi,
            "iccid": self.iccid,
            "msisdn": "",
            "smsStatus": 0,
            "dataType": self.package.data_type,
            "ac": format!("LPA:1${SMDP}${}", self.matching_id),
            "qrCodeUrl": format!("https://p.qrsim.net/{qr}.png"),
            "shortUrl": format!("https://p.qrsim.net/{qr}"),
            "smdpStatus": self.smdp_status,
            "esimStatus": self.esim_status,
            "eid": if self.smdp_status == "RELEASED" { "" } else { "89049032007108882600137544319616" },
            "activeType": 2,
            "pin": "7668",
            "puk": "72330085",
            "apn": "cmhk",
            "expiredTime": vendor_time(self.expires_at),
            "totalVolume": self.total_volume,
            "totalDuration": self.total_duration,
            "durationUnit": "DAY",
            "orderUsage": self.used,
            "supportTopUpType": if self.package.supports_topup { 2 } else { 1 },
            "fupPolicy": "",
            "packageList": [{
                "packageCode": self.package.code,
                "duration": self.package.duration,
                "volume": self.package.volume,
                "locationCode": self.package.location(),
            }],
        })
    }
}

/// 8 requests per second as a token bucket: bursts of up to 8, refilled continuously, so a
/// client that spaces its calls evenly never trips it despite network jitter.
#[derive(Debug)]
struct TokenBucket {
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    fn full() -> Self {
        TokenBucket {
            tokens: f64::from(MAX_REQUESTS_PER_SECOND),
            last: Instant::now(),
        }
    }

    fn take(&mut self) -> bool {
        let now = Instant::now();
        let rate = f64::from(MAX_REQUESTS_PER_SECOND);
        self.tokens = (self.tokens + (now - self.last).as_secs_f64() * rate).min(rate);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[derive(Debug)]
struct SimState {
    balance: i64,
    orders: Vec<Order>,
    esims: Vec<Esim>,
    /// Top-ups by transactionId: a retry gets the first answer back.
    topups: HashMap<String, Value>,
    seq: u64,
    bucket: TokenBucket,
    /// When each admitted request arrived (rate-limit tests).
    arrivals: Vec<Instant>,
    throttled: u32,
}

impl SimState {
    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// `B` + 14 digits like `B22102010075311`; esimTranNo is 14 digits.
    fn next_number(&mut self) -> String {
        let seq = self.next_seq();
        format!("{}{:04}", Utc::now().format("%y%m%d%H%M"), seq % 10_000)
    }

    fn esim_mut(&mut self, tran_no: Option<&str>, iccid: Option<&str>) -> Option<&mut Esim> {
        match (tran_no, iccid) {
            (Some(t), _) => self.esims.iter_mut().find(|e| e.tran_no == t),
            // ICCIDs are re-used by the vendor: the newest profile wins.
            (None, Some(i)) => self.esims.iter_mut().rev().find(|e| e.iccid == i),
            (None, None) => None,
        }
    }
}

struct Inner {
    core: SimCore,
    access_code: String,
    secret_key: String,
    packages: Vec<Package>,
    state: Mutex<SimState>,
}

type Action = fn(&Arc<Inner>, &Value) -> Result<Value, &'static str>;

/// A non-empty string field of the request.
fn text<'a>(req: &'a Value, field: &str) -> Option<&'a str> {
    req.get(field)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn int(v: Option<&Value>) -> Option<i64> {
    v.and_then(|v| v.as_i64().or_else(|| v.as_str()?.trim().parse().ok()))
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, SimState> {
        // A handler that drops its connection (fault injection) unwinds; the data it left
        // behind is still consistent, so poisoning is ignored.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn handle(
        self: &Arc<Self>,
        op: &'static str,
        action: Action,
        method: Method,
        headers: HeaderMap,
        body: Bytes,
    ) -> Response {
        let req = match self.admit(&method, &headers, &body).await {
            Ok(req) => req,
            Err(refusal) => return refusal,
        };
        let fault = match self.core.faults.begin(op, fault_reject) {
            Ok(fault) => fault,
            Err(response) => return *response,
        };
        let response = match action(self, &req) {
            Ok(obj) => ok(obj),
            Err(code) => error(code, message_for(code)),
        };
        fault.finish(response).await
    }

    /// Method, rate limit, headers, timestamp, signature and JSON, in the vendor's order.
    async fn admit(
        self: &Arc<Self>,
        method: &Method,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Value, Response> {
        let refuse = |code: &str| error(code, message_for(code));
        if method != Method::POST {
            return Err(refuse("000103"));
        }
        {
            let mut state = self.state();
            if !state.bucket.take() {
                state.throttled += 1;
                return Err(refuse(assumptions::THROTTLED_CODE));
            }
            state.arrivals.push(Instant::now());
        }
        self.core
            .faults
            .begin(ops::AUTH, fault_reject)
            .map_err(|r| *r)?
            .pass()
            .await;
        self.check_auth(headers, body).map_err(refuse)?;
        if body.iter().all(u8::is_ascii_whitespace) {
            // The docs' own balance example posts an empty body.
            return Ok(json!({}));
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(v @ Value::Object(_)) => Ok(v),
            _ => Err(refuse("000104")),
        }
    }

    /// This sandbox account has the HMAC "enhanced security" on: every header is required.
    fn check_auth(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), &'static str> {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let (Some(access_code), Some(request_id), Some(timestamp), Some(signature)) = (
            header("RT-AccessCode"),
            header("RT-RequestID"),
            header("RT-Timestamp"),
            header("RT-Signature"),
        ) else {
            return Err("000101");
        };
        if !secrets_equal(access_code, &self.access_code) {
            return Err(assumptions::UNKNOWN_ACCESS_CODE);
        }
        let sent: i64 = timestamp.parse().map_err(|_| "000102")?;
        // Seconds (the worked example) or milliseconds (the header table) [assumption].
        let sent_ms = if sent > 100_000_000_000 {
            sent
        } else {
            sent * 1000
        };
        let skew = (Utc::now().timestamp_millis() - sent_ms).unsigned_abs();
        if u128::from(skew) > assumptions::TIMESTAMP_TOLERANCE.as_millis() {
            return Err("101001");
        }
        let expected = sign(&self.secret_key, timestamp, request_id, access_code, body);
        let given = if assumptions::SIGNATURE_CASE_INSENSITIVE {
            signature.to_ascii_lowercase()
        } else {
            signature.to_string()
        };
        if !secrets_equal(&given, &expected) {
            return Err("101003");
        }
        Ok(())
    }

    fn package_list(self: &Arc<Self>, req: &Value) -> Result<Value, &'static str> {
        let topup = text(req, "type").is_some_and(|t| t.eq_ignore_ascii_case("TOPUP"));
        let code = text(req, "packageCode").or_else(|| text(req, "slug"));
        let location = text(req, "locationCode");
        // A top-up list for an eSIM or a base package: same coverage as that package.
        let coverage: Option<Vec<&'static str>> = if !topup {
            None
        } else if let Some(iccid) = text(req, "iccid") {
            let state = self.state();
            let esim = state.esims.iter().rev().find(|e| e.iccid == iccid);
            Some(esim.ok_or("310403")?.package.countries.clone())
        } else if let Some(code) = code {
            let base = self
                .packages
                .iter()
                .find(|p| !p.is_topup && p.matches(code));
            Some(base.ok_or("310241")?.countries.clone())
        } else {
            None
        };
        let list: Vec<Value> = self
            .packages
            .iter()
            .filter(|p| p.is_topup == topup)
            .filter(|p| match &coverage {
                Some(countries) => &p.countries == countries,
                None => code.is_none_or(|c| p.matches(c)),
            })
            .filter(|p| match location {
                None => true,
                Some("!GL") => p.countries.len() > 40,
                Some("!RG") => (2..=40).contains(&p.countries.len()),
                Some(cc) => p.countries == [cc],
            })
            .map(Package::to_json)
            .collect();
        Ok(json!({ "packageList": list }))
    }

    fn order(self: &Arc<Self>, req: &Value) -> Result<Value, &'static str> {
        let txn = text(req, "transactionId").ok_or("000105")?;
        if txn.chars().count() > MAX_TRANSACTION_ID {
            return Err("000107");
        }
        let mut state = self.state();
        if assumptions::DUPLICATE_TRANSACTION_RETURNS_SAME_ORDER {
            if let Some(o) = state.orders.iter().find(|o| o.transaction_id == txn) {
                return Ok(json!({"orderNo": o.order_no, "transactionId": txn}));
            }
        }
        let lines = self.order_lines(req)?;
        let total: i64 = lines.iter().map(|l| l.package.price * l.count).sum();
        if let Some(amount) = req.get("amount").filter(|a| !a.is_null()) {
            if int(Some(amount)) != Some(total) {
                return Err("200006");
            }
        }
        if state.balance < total {
            return Err("200007");
        }
        state.balance -= total;
        let order_no = format!("B{}", state.next_number());
        let created_at = Utc::now();
        state.orders.push(Order {
            order_no: order_no.clone(),
            transaction_id: txn.to_string(),
            lines: lines.clone(),
            created_at,
            allocated: false,
        });
        drop(state);
        self.core.record_order(SimOrderRecord {
            vendor_reference: order_no.clone(),
            client_reference: Some(txn.to_string()),
            sku: lines
                .iter()
                .map(|l| l.package.code.as_str())
                .collect::<Vec<_>>()
                .join(","),
            quantity: lines.iter().map(|l| l.count as u32).sum(),
            iccids: Vec::new(),
            topup: false,
            cancelled: false,
            created_at,
        });
        let sim = Arc::clone(self);
        let allocate_as = order_no.clone();
        // `slow_async_provisioning`: a delay armed for this order replaces the usual one.
        let delay = match sim
            .core
            .faults
            .take_scoped(txn, crate::sandbox::PROVISIONING_OPERATION)
        {
            Some(crate::sandbox::Fault::Delay { millis }) => {
                std::time::Duration::from_millis(millis)
            }
            _ => sim.core.settings().provisioning_delay,
        };
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            sim.allocate(&allocate_as);
        });
        Ok(json!({"orderNo": order_no, "transactionId": txn}))
    }

    fn order_lines(&self, req: &Value) -> Result<Vec<OrderLine>, &'static str> {
        let items = req
            .get("packageInfoList")
            .and_then(Value::as_array)
            .filter(|l| !l.is_empty())
            .ok_or("000105")?;
        let mut lines = Vec::new();
        for item in items {
            let code = text(item, "packageCode")
                .or_else(|| text(item, "slug"))
                .ok_or("000105")?;
            let package = self
                .packages
                .iter()
                .find(|p| !p.is_topup && p.matches(code))
                .ok_or("310241")?;
            let count = int(item.get("count")).ok_or("000105")?;
            if !(1..=MAX_ESIMS_PER_ORDER).contains(&count) {
                return Err("000107");
            }
            if let Some(price) = item.get("price").filter(|p| !p.is_null()) {
                if int(Some(price)) != Some(package.price) {
                    return Err("200005");
                }
            }
            lines.push(OrderLine {
                package: package.clone(),
                count,
            });
        }
        if lines.iter().map(|l| l.count).sum::<i64>() > MAX_ESIMS_PER_ORDER {
            return Err("000107");
        }
        Ok(lines)
    }

    /// The SM-DP+ has produced the profiles: issue them and tell the partner.
    fn allocate(&self, order_no: &str) {
        let mut state = self.state();
        let Some(index) = state.orders.iter().position(|o| o.order_no == order_no) else {
            return;
        };
        let lines = state.orders[index].lines.clone();
        let txn = state.orders[index].transaction_id.clone();
        state.orders[index].allocated = true;
        let mut iccids = Vec::new();
        for line in &lines {
            for _ in 0..line.count {
                let esim = new_esim(&mut state, order_no, &txn, &line.package);
                iccids.push(esim.iccid.clone());
                state.esims.push(esim);
            }
        }
        drop(state);
        self.core.update_order(order_no, |o| o.iccids = iccids);
        self.send_callback(json!({
            "notifyType": "ORDER_STATUS",
            "content": {"orderNo": order_no, "transactionId": txn, "orderStatus": "GOT_RESOURCE"},
        }));
    }

    fn send_callback(&self, body: Value) {
        self.core.deliver(
            OutgoingCallback {
                content_type: "application/json",
                headers: Vec::new(),
                body: body.to_string().into_bytes(),
            },
            assumptions::CALLBACK_RETRIES,
        );
    }

    fn query(self: &Arc<Self>, req: &Value) -> Result<Value, &'static str> {
        let pager = req.get("pager").ok_or("000105")?;
        let page_num = int(pager.get("pageNum")).ok_or("000105")?;
        let page_size = int(pager.get("pageSize")).ok_or("000105")?;
        if !(1..=10_000).contains(&page_num) || !(5..=500).contains(&page_size) {
            return Err("000107");
        }
        let state = self.state();
        let found: Vec<&Esim> = if let Some(order_no) = text(req, "orderNo") {
            let order = state
                .orders
                .iter()
                .find(|o| o.order_no == order_no)
                .ok_or("310272")?;
            if !order.allocated {
                return Err(NOT_READY);
            }
            state
                .esims
                .iter()
                .filter(|e| e.order_no == order_no)
                .collect()
        } else if let Some(tran_no) = text(req, "esimTranNo") {
            state
                .esims
                .iter()
                .filter(|e| e.tran_no == tran_no)
                .collect()
        } else if let Some(iccid) = text(req, "iccid") {
            state.esims.iter().filter(|e| e.iccid == iccid).collect()
        } else if let (Some(start), Some(end)) = (text(req, "startTime"), text(req, "endTime")) {
            let (start, end) = (
                parse_time(start).ok_or("000106")?,
                parse_time(end).ok_or("000106")?,
            );
            // Only allocated profiles are listed: an order still being built is invisible.
            let in_window: Vec<&str> = state
                .orders
                .iter()
                .filter(|o| o.created_at >= start && o.created_at <= end)
                .map(|o| o.order_no.as_str())
                .collect();
            state
                .esims
                .iter()
                .filter(|e| in_window.contains(&e.order_no.as_str()))
                .collect()
        } else {
            return Err("000105");
        };
        if found.is_empty() && text(req, "orderNo").is_none() && text(req, "startTime").is_none() {
            return Err("310403");
        }
        let skip = ((page_num - 1) * page_size) as usize;
        let page: Vec<Value> = found
            .iter()
            .skip(skip)
            .take(page_size as usize)
            .map(|e| e.to_json())
            .collect();
        Ok(json!({
            "esimList": page,
            "pager": {"pageSize": page_size, "pageNum": page_num, "total": found.len()},
        }))
    }

    fn cancel(self: &Arc<Self>, req: &Value) -> Result<Value, &'static str> {
        let (tran_no, iccid) = (text(req, "esimTranNo"), text(req, "iccid"));
        if tran_no.is_none() && iccid.is_none() {
            return Err("000105");
        }
        let mut state = self.state();
        let esim = state.esim_mut(tran_no, iccid).ok_or("310403")?;
        // Only a profile never installed can be cancelled [EA-docs "Cancel Profile"].
        if esim.esim_status != "GOT_RESOURCE" || esim.smdp_status != "RELEASED" {
            return Err("200002");
        }
        esim.esim_status = "CANCEL";
        let refund = esim.package.price;
        let callback = json!({
            "notifyType": "ESIM_STATUS",
            "eventGenerateTime": Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "notifyId": uuid::Uuid::new_v4().simple().to_string(),
            "content": {
                "orderNo": esim.order_no, "esimTranNo": esim.tran_no,
                "transactionId": esim.transaction_id, "iccid": esim.iccid,
                "esimStatus": "CANCEL", "smdpStatus": "RELEASED",
            },
        });
        let order_no = esim.order_no.clone();
        state.balance += refund;
        let all_cancelled = state
            .esims
            .iter()
            .filter(|e| e.order_no == order_no)
            .all(|e| e.esim_status == "CANCEL");
        drop(state);
        if all_cancelled {
            self.core.update_order(&order_no, |o| o.cancelled = true);
        }
        self.send_callback(callback);
        Ok(json!({}))
    }

    fn topup(self: &Arc<Self>, req: &Value) -> Result<Value, &'static str> {
        let txn = text(req, "transactionId").ok_or("000105")?;
        let code = text(req, "packageCode").ok_or("000105")?;
        let (tran_no, iccid) = (text(req, "esimTranNo"), text(req, "iccid"));
        let mut state = self.state();
        if let Some(done) = state.topups.get(txn) {
            return Ok(done.clone());
        }
        let package = self
            .packages
            .iter()
            .find(|p| p.is_topup && p.matches(code))
            .ok_or("310241")?
            .clone();
        let price = package.price;
        if let Some(amount) = req.get("amount").filter(|a| !a.is_null()) {
            if int(Some(amount)) != Some(price) {
                return Err("200005");
            }
        }
        let balance = state.balance;
        let esim = state.esim_mut(tran_no, iccid).ok_or("310403")?;
        if !matches!(esim.esim_status, "GOT_RESOURCE" | "IN_USE" | "USED_UP") {
            return Err("200002");
        }
        if esim.package.countries != package.countries {
            return Err("200008");
        }
        if balance < price {
            return Err("200007");
        }
        esim.total_volume += package.volume;
        esim.total_duration += package.duration;
        esim.expires_at += chrono::Duration::days(package.duration);
        if esim.esim_status == "USED_UP" {
            esim.esim_status = "IN_USE";
        }
        let answer = json!({
            "transactionId": txn,
            "iccid": esim.iccid,
            "expiredTime": vendor_time(esim.expires_at),
            "totalVolume": esim.total_volume,
            "totalDuration": esim.total_duration,
            "orderUsage": esim.used,
        });
        let iccid = esim.iccid.clone();
        state.balance -= price;
        state.topups.insert(txn.to_string(), answer.clone());
        let reference = format!("T{}", state.next_number());
        drop(state);
        self.core.record_order(SimOrderRecord {
            vendor_reference: reference,
            client_reference: Some(txn.to_string()),
            sku: package.code,
            quantity: 1,
            iccids: vec![iccid],
            topup: true,
            cancelled: false,
            created_at: Utc::now(),
        });
        Ok(answer)
    }

    fn usage(self: &Arc<Self>, req: &Value) -> Result<Value, &'static str> {
        let list = req
            .get("esimTranNoList")
            .and_then(Value::as_array)
            .filter(|l| !l.is_empty())
            .ok_or("000105")?;
        if list.len() > 10 {
            return Err("000107");
        }
        let state = self.state();
        let now = vendor_time(Utc::now());
        let usage: Vec<Value> = list
            .iter()
            .filter_map(Value::as_str)
            .filter_map(|t| state.esims.iter().find(|e| e.tran_no == t))
            .map(|e| {
                json!({
                    "esimTranNo": e.tran_no, "dataUsage": e.used,
                    "totalData": e.total_volume, "lastUpdateTime": now,
                })
            })
            .collect();
        Ok(json!({ "esimUsageList": usage }))
    }

    fn balance(self: &Arc<Self>, _req: &Value) -> Result<Value, &'static str> {
        let balance = self.state().balance;
        Ok(json!({"balance": balance, "lastUpdateTime": vendor_time(Utc::now())}))
    }
}

fn new_esim(state: &mut SimState, order_no: &str, txn: &str, package: &Package) -> Esim {
    let mut rng = rand::thread_rng();
    let allocated = Utc::now();
    Esim {
        tran_no: state.next_number(),
        order_no: order_no.to_string(),
        transaction_id: txn.to_string(),
        iccid: generate_iccid("8985200", 20),
        imsi: format!("45400{:010}", rng.gen_range(0..10_000_000_000u64)),
        matching_id: uuid::Uuid::new_v4()
            .simple()
            .to_string()
            .to_ascii_uppercase(),
        package: package.clone(),
        total_volume: package.volume,
        total_duration: package.duration,
        used: 0,
        // Unused profiles may be installed within 180 days; validity runs from then.
        expires_at: allocated + chrono::Duration::days(180 + package.duration),
        esim_status: "GOT_RESOURCE",
        smdp_status: "RELEASED",
    }
}

fn route(op: &'static str, action: Action) -> MethodRouter<Arc<Inner>> {
    any(
        move |State(sim): State<Arc<Inner>>, method: Method, headers: HeaderMap, body: Bytes| async move {
            sim.handle(op, action, method, headers, body).await
        },
    )
}

/// The simulator. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct EsimAccessSim {
    inner: Arc<Inner>,
}

impl EsimAccessSim {
    pub fn new(creds: &EsimAccessCredentials, settings: SimSettings) -> Self {
        EsimAccessSim {
            inner: Arc::new(Inner {
                core: SimCore::new(VendorId::EsimAccess, settings),
                access_code: creds.access_code.expose_secret().to_string(),
                secret_key: creds.secret_key.expose_secret().to_string(),
                packages: build_catalogue(settings.catalog_size),
                state: Mutex::new(SimState {
                    balance: STARTING_BALANCE_UNITS,
                    orders: Vec::new(),
                    esims: Vec::new(),
                    topups: HashMap::new(),
                    seq: 0,
                    bucket: TokenBucket::full(),
                    arrivals: Vec::new(),
                    throttled: 0,
                }),
            }),
        }
    }

    pub fn core(&self) -> &SimCore {
        &self.inner.core
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route(
                "/api/v1/open/package/list",
                route(ops::LIST, Inner::package_list),
            )
            .route("/api/v1/open/esim/order", route(ops::ORDER, Inner::order))
            .route("/api/v1/open/esim/query", route(ops::QUERY, Inner::query))
            .route(
                "/api/v1/open/esim/cancel",
                route(ops::CANCEL, Inner::cancel),
            )
            .route("/api/v1/open/esim/topup", route(ops::TOPUP, Inner::topup))
            .route(
                "/api/v1/open/esim/usage/query",
                route(ops::USAGE, Inner::usage),
            )
            .route(
                "/api/v1/open/balance/query",
                route(ops::BALANCE, Inner::balance),
            )
            .with_state(Arc::clone(&self.inner))
            .merge(control_router(self.inner.core.clone()))
            // A path the API does not serve, as an honest web framework answers it.
            .fallback(|| async { faults::path_not_found() })
    }

    /// Random credentials for sandbox mode.
    pub fn sandbox_credentials(base_url: url::Url) -> EsimAccessCredentials {
        EsimAccessCredentials {
            access_code: SecretString::from(random_alnum(32)),
            secret_key: SecretString::from(random_alnum(32)),
            base_url,
        }
    }

    /// The base package code this simulator sells for a seed product key (its slug).
    pub fn package_code(&self, seed_key: &str) -> Option<String> {
        self.inner
            .packages
            .iter()
            .find(|p| !p.is_topup && p.slug == seed_key)
            .map(|p| p.code.clone())
    }

    /// The prepaid balance in USD.
    pub fn balance(&self) -> Decimal {
        Decimal::new(self.inner.state().balance, 4)
    }

    pub fn set_balance(&self, usd: Decimal) {
        let units = (usd * Decimal::from(10_000)).round().to_i64().unwrap_or(0);
        self.inner.state().balance = units;
    }

    /// The traveller installs the eSIM and uses `bytes` of data.
    pub fn use_data(&self, iccid: &str, bytes: u64) {
        let mut state = self.inner.state();
        if let Some(e) = state.esim_mut(None, Some(iccid)) {
            e.smdp_status = "ENABLED";
            e.used += i64::try_from(bytes).unwrap_or(i64::MAX);
            e.esim_status = if e.total_volume >= 0 && e.used >= e.total_volume {
                "USED_UP"
            } else {
                "IN_USE"
            };
        }
    }

    /// The most requests admitted inside any window of this length.
    pub fn max_requests_within(&self, window: std::time::Duration) -> usize {
        let arrivals = self.inner.state().arrivals.clone();
        (0..arrivals.len())
            .map(|i| {
                arrivals[i..]
                    .iter()
                    .take_while(|t| t.duration_since(arrivals[i]) < window)
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    /// How many requests were refused for exceeding the rate limit.
    pub fn throttled(&self) -> u32 {
        self.inner.state().throttled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_codes_are_stable_unique_and_priced_in_units() {
        let a = build_catalogue(None);
        let b = build_catalogue(None);
        assert_eq!(
            a.iter().map(|p| &p.code).collect::<Vec<_>>(),
            b.iter().map(|p| &p.code).collect::<Vec<_>>()
        );
        let codes: std::collections::HashSet<_> = a.iter().map(|p| p.code.as_str()).collect();
        assert_eq!(codes.len(), a.len());
        let products = crate::sandbox::catalog::vendor_products(VendorId::EsimAccess);
        let first = &products[0];
        let p = a.iter().find(|p| p.slug == first.plan.key).unwrap();
        assert_eq!(Decimal::new(p.price, 4), first.price);
        assert!(p.code.len() == 5 && p.code[2..].bytes().all(|b| b.is_ascii_digit()));
        assert!(a.iter().any(|p| p.is_topup && p.code.starts_with("TOPUP_")));
    }

    #[test]
    fn token_bucket_allows_a_burst_of_eight_then_refuses() {
        let mut bucket = TokenBucket::full();
        assert!((0..8).all(|_| bucket.take()));
        assert!(!bucket.take());
    }
}
