//! MicroEsim (MicroDrive Tech) OPEN API V1. The facts this adapter relies on, their sources
//! and what is only guessed: `src/vendors/microesim/README.md`.
//!
//! Every request carries an HMAC signature over account + nonce + timestamp (not the path or
//! body), keyed with a PBKDF2 derivation of the secret that is computed once here. Bodies are
//! form-urlencoded; success is `code == 1`. Orders are asynchronous: `esimSubscribe` returns
//! only a `topup_id`, the eSIMs arrive by `topupDetail` polling or an unsigned push.

use crate::domain::secret::ExposeSecret;
use crate::vendors::CallbackHeaders;
use async_trait::async_trait;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::{
    domain::money::Money,
    vendors::microesim::credentials::MicroEsimCredentials,
    vendors::{
        AdapterOptions, CallbackTrust, CancelOutcome, EsimRef, Offer, OrderState, PlaceOrder,
        Placed, RejectKind, TopUp, Usage, Vendor, VendorError, VendorEvent, VendorId,
        VendorOrderRef, VendorOrderStatus,
        http_client::{RawResponse, VendorHttp},
        support::{self, CodeMeaning, Effect},
    },
};

pub mod assumptions;
pub mod credentials;
pub mod sim;
pub mod webhook;
pub mod wire;

/// Documented: `esimDataplanListPage?pageNo&pageSize=500`.
const PAGE_SIZE: u32 = 500;
/// A guard against a vendor that never reports the last page.
const MAX_PAGES: u32 = 1000;
const PBKDF2_ROUNDS: u32 = 1024;

/// `lowercase_hex(PBKDF2-HMAC-SHA256(utf8(secret), hex_decode(salt_hex), 1024, 32))`.
pub fn derive_key_hex(secret: &str, salt_hex: &str) -> Result<String, String> {
    let salt = hex::decode(salt_hex.trim()).map_err(|_| "salt is not hex".to_string())?;
    let mut key = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(secret.as_bytes(), &salt, PBKDF2_ROUNDS, &mut key);
    Ok(hex::encode(key))
}

/// Signs requests for one account. The HMAC is keyed with the UTF-8 bytes of the derived
/// key's hex string, not the raw 32 bytes (all five samples of the collection agree).
#[derive(Clone)]
pub struct Signer {
    account: String,
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(***)")
    }
}

/// The four auth headers of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    pub account: String,
    pub nonce: String,
    pub timestamp: String,
    pub sign: String,
}

impl Signer {
    pub fn new(account: &str, secret: &str, salt_hex: &str) -> Result<Self, String> {
        let key_hex = derive_key_hex(secret, salt_hex)?;
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(key_hex.as_bytes())
            .map_err(|_| "HMAC key rejected".to_string())?;
        Ok(Signer {
            account: account.to_string(),
            mac,
        })
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    /// `lowercase_hex(HMAC-SHA256(key_hex, account + nonce + timestamp))`.
    pub fn sign(&self, nonce: &str, timestamp: &str) -> String {
        let mut mac = self.mac.clone();
        mac.update(self.account.as_bytes());
        mac.update(nonce.as_bytes());
        mac.update(timestamp.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Fresh headers: a 16-character `[a-z0-9]` nonce and the time in milliseconds.
    pub fn headers_now(&self) -> SignedHeaders {
        let nonce = random_nonce();
        let timestamp = chrono::Utc::now().timestamp_millis().to_string();
        SignedHeaders {
            sign: self.sign(&nonce, &timestamp),
            account: self.account.clone(),
            nonce,
            timestamp,
        }
    }
}

/// 16 random `[a-z0-9]` characters (the vendor accepts 6–32).
fn random_nonce() -> String {
    crate::domain::api_key::random_token(16).to_ascii_lowercase()
}

/// The MicroEsim adapter.
#[derive(Debug)]
pub struct MicroEsim {
    http: VendorHttp,
    timeout: std::time::Duration,
    base_url: url::Url,
    /// `Err` when the configured salt is not hex: every call then fails before sending.
    signer: Result<Signer, String>,
}

enum Body<'a> {
    /// A GET with these query parameters.
    Query(&'a [(&'a str, String)]),
    /// A POST with these form fields (form-urlencoded, with Content-Length).
    Form(&'a [(&'a str, String)]),
}

impl MicroEsim {
    pub fn new(creds: MicroEsimCredentials, opts: &AdapterOptions) -> Self {
        let signer = Signer::new(
            creds.account.expose_secret(),
            creds.secret.expose_secret(),
            creds.salt_hex.expose_secret(),
        );
        MicroEsim {
            http: VendorHttp::new(VendorId::MicroEsim, opts.timeout, None),
            timeout: opts.timeout,
            base_url: creds.base_url,
            signer,
        }
    }

    fn settled(&self, r: &VendorOrderRef) -> bool {
        let wait = chrono::Duration::from_std(self.timeout + assumptions::SETTLE_MARGIN)
            .unwrap_or_else(|_| chrono::Duration::minutes(5));
        chrono::Utc::now() - r.placed_at >= wait
    }

    fn url(&self, endpoint: &str) -> Result<url::Url, VendorError> {
        support::join_url(
            &self.base_url,
            &format!("{}/{endpoint}", assumptions::PATH_PREFIX),
        )
    }

    /// One signed call; `Ok` carries the envelope's `result` of a `code == 1` answer.
    async fn call(
        &self,
        operation: &'static str,
        endpoint: &str,
        body: Body<'_>,
    ) -> Result<serde_json::Value, VendorError> {
        let signer = self.signer.as_ref().map_err(|e| {
            VendorError::Unreachable(format!("MicroEsim credentials unusable: {e}"))
        })?;
        let h = signer.headers_now();
        let client = self.http.client();
        let request = match body {
            Body::Query(query) => client.get(self.url(endpoint)?).query(query),
            Body::Form(fields) => client.post(self.url(endpoint)?).form(fields),
        }
        .header("MICROESIM-ACCOUNT", h.account)
        .header("MICROESIM-NONCE", h.nonce)
        .header("MICROESIM-TIMESTAMP", h.timestamp)
        .header("MICROESIM-SIGN", h.sign);
        let raw = self.http.send(operation, request).await?;
        interpret(&raw, effect_of(operation))
    }

    /// `topupDetail`, with "still processing" read as pending.
    async fn topup_detail(&self, topup_id: &str) -> Result<OrderState, VendorError> {
        let fields = [("topup_id", topup_id.to_string())];
        match self.call("query", "topupDetail", Body::Form(&fields)).await {
            Ok(result) => order_state(result),
            Err(e) if is_processing(&e) => Ok(pending(Some(topup_id.to_string()))),
            Err(e) => Err(e),
        }
    }

    /// Finds an order by our order id, sent as `custom_order_no` when it was placed.
    async fn lookup(&self, order_id: &str) -> Result<OrderState, VendorError> {
        let fields = [("custom_order_no", order_id.to_string())];
        let endpoint = assumptions::LOOKUP_ENDPOINT;
        match self.call("lookup", endpoint, Body::Form(&fields)).await {
            Ok(result) => order_state(result),
            Err(e) if is_processing(&e) => Ok(pending(None)),
            Err(e) => Err(e),
        }
    }

    /// The vendor order number, from the reference, the eSIMs, or a lookup.
    async fn topup_id_of(
        &self,
        r: &VendorOrderRef,
        esims: &[EsimRef],
    ) -> Result<String, VendorError> {
        if let Some(id) = r
            .vendor_reference
            .clone()
            .or_else(|| esims.iter().find_map(|e| e.vendor_reference.clone()))
        {
            return Ok(id);
        }
        self.lookup(&r.order_id)
            .await?
            .vendor_reference
            .ok_or_else(|| VendorError::rejected(RejectKind::NotFound, "", "order has no topup_id"))
    }

    async fn terminate(&self, topup_id: &str, device_id: &str) -> Result<(), VendorError> {
        let fields = [
            ("topup_id", topup_id.to_string()),
            ("device_id", device_id.to_string()),
        ];
        self.call("cancel", "terminate", Body::Form(&fields))
            .await
            .map(drop)
    }

    async fn events(&self, device_id: &str) -> Result<Vec<wire::DeviceEvent>, VendorError> {
        let fields = [("device_id", device_id.to_string())];
        let result = self
            .call("usage", "eventDetail", Body::Form(&fields))
            .await?;
        wire::from_result(result).map_err(VendorError::Unknown)
    }
}

/// What a call can do, which decides what a code we do not know means: `esimSubscribe` and
/// `terminate` may spend or refund money, the answers of `topupDetail` and the lookup decide
/// whether something was bought.
fn effect_of(operation: &str) -> Effect {
    match operation {
        "order" | "cancel" => Effect::Money,
        "query" | "lookup" => Effect::Lookup,
        _ => Effect::Read,
    }
}

/// Reads the `{code, msg, result}` envelope; anything else (an nginx error page, garbage) is
/// an unknown outcome. A code outside our table (the vendor publishes none, see
/// `assumptions::codes`) is a refusal only on a plain read: on a money operation or a lookup
/// it is unknown, so the order waits for reconciliation instead of being bought elsewhere.
fn interpret(raw: &RawResponse, effect: Effect) -> Result<serde_json::Value, VendorError> {
    let unknown = || {
        VendorError::Unknown(format!(
            "HTTP {} with an unexpected body: {}",
            raw.status.as_u16(),
            raw.snippet()
        ))
    };
    let envelope: wire::Envelope = raw.json().map_err(|_| unknown())?;
    match envelope.code {
        Some(assumptions::codes::SUCCESS) if raw.status.is_success() => Ok(envelope.result),
        Some(assumptions::codes::SUCCESS) | None => Err(unknown()),
        // "Still processing" on a lookup is the documented not-ready answer.
        Some(code @ assumptions::codes::ORDER_PROCESSING) if effect == Effect::Lookup => Err(
            VendorError::rejected(RejectKind::Other, code.to_string(), envelope.msg),
        ),
        Some(code) => {
            let meaning = match assumptions::classify(code) {
                RejectKind::Other => CodeMeaning::Unlisted,
                kind => CodeMeaning::Refused(kind),
            };
            let what = format!("MicroEsim code {code}");
            Err(support::refusal_or_unknown(
                effect,
                meaning,
                &what,
                &code.to_string(),
                envelope.msg,
            ))
        }
    }
}

fn is_processing(e: &VendorError) -> bool {
    matches!(e, VendorError::Rejected { code, .. }
        if code == &assumptions::codes::ORDER_PROCESSING.to_string())
}

fn pending(vendor_reference: Option<String>) -> OrderState {
    OrderState {
        charged: None,
        vendor_reference,
        status: VendorOrderStatus::Pending,
        esims: Vec::new(),
    }
}

fn order_state(result: serde_json::Value) -> Result<OrderState, VendorError> {
    let detail: wire::TopupDetail = wire::from_result(result).map_err(VendorError::Unknown)?;
    detail.to_order_state().map_err(VendorError::Unknown)
}

fn missing(what: &str) -> VendorError {
    VendorError::rejected(
        RejectKind::InvalidRequest,
        "",
        format!("MicroEsim needs the eSIM's {what}"),
    )
}

#[async_trait]
impl Vendor for MicroEsim {
    fn id(&self) -> VendorId {
        VendorId::MicroEsim
    }

    fn place_is_idempotent(&self) -> bool {
        assumptions::PLACE_IS_IDEMPOTENT
    }

    async fn list_offers(&self) -> Result<Vec<Offer>, VendorError> {
        let mut seen = std::collections::HashSet::new();
        // The last page is an empty one or `totalPages`; the page cap ends it without an error.
        let pages = support::collect_pages(
            1,
            MAX_PAGES,
            |page_no| async move {
                let query = [
                    ("pageNo", page_no.to_string()),
                    ("pageSize", PAGE_SIZE.to_string()),
                ];
                let result = self
                    .call("list", "esimDataplanListPage", Body::Query(&query))
                    .await?;
                wire::from_result::<wire::DataplanPage>(result).map_err(VendorError::Unknown)
            },
            |page_no, page, offers: &mut Vec<Offer>| {
                let was_empty = page.list.is_empty();
                for raw in page.list {
                    match wire::offer_from_raw(raw) {
                        Some(offer) if seen.insert(offer.sku.clone()) => offers.push(offer),
                        Some(_) => {}
                        None => tracing::warn!(vendor = "microesim", "skipped an unreadable plan"),
                    }
                }
                (!was_empty && *page_no < page.total_pages).then_some(page_no + 1)
            },
        )
        .await?;
        Ok(pages.items)
    }

    async fn place_order(&self, req: &PlaceOrder) -> Result<Placed, VendorError> {
        // No activation_date: ACTIVEDBYORDER plans then start at once, as their flag says.
        let fields = [
            ("number", req.quantity.to_string()),
            ("channel_dataplan_id", req.sku.clone()),
            ("custom_order_no", req.order_id.clone()),
        ];
        let result = self
            .call("order", "esimSubscribe", Body::Form(&fields))
            .await?;
        // `code == 1` means the order exists, so a reply we cannot read is an unknown outcome.
        let placed: wire::SubscribeResult =
            wire::from_result(result).map_err(VendorError::Unknown)?;
        if placed.topup_id.trim().is_empty() {
            return Err(VendorError::Unknown(
                "esimSubscribe succeeded without a topup_id".into(),
            ));
        }
        Ok(pending(Some(placed.topup_id)))
    }

    async fn fetch_order(&self, r: &VendorOrderRef) -> Result<OrderState, VendorError> {
        match &r.vendor_reference {
            Some(topup_id) => self.topup_detail(topup_id).await,
            None => match self.lookup(&r.order_id).await {
                // "No such order" from the guessed lookup counts only once no order sent at
                // `placed_at` can still be in flight.
                Err(e) if e.reject_kind() == Some(RejectKind::NotFound) && !self.settled(r) => Err(
                    VendorError::Unknown(format!("{e}; the order may still be in flight")),
                ),
                other => other,
            },
        }
    }

    async fn topup(&self, _req: &TopUp) -> Result<Placed, VendorError> {
        Err(VendorError::Unsupported)
    }

    async fn cancel(
        &self,
        r: &VendorOrderRef,
        esims: &[EsimRef],
    ) -> Result<CancelOutcome, VendorError> {
        let topup_id = self.topup_id_of(r, esims).await?;
        let mut devices: Vec<String> = esims
            .iter()
            .filter_map(|e| e.vendor_esim_ref.clone())
            .collect();
        if devices.is_empty() {
            devices = self
                .topup_detail(&topup_id)
                .await?
                .esims
                .into_iter()
                .filter_map(|e| e.vendor_esim_ref)
                .collect();
        }
        if devices.is_empty() {
            return Err(VendorError::rejected(
                RejectKind::NotAllowed,
                "",
                "no eSIM issued yet: nothing to terminate",
            ));
        }
        for device_id in &devices {
            self.terminate(&topup_id, device_id).await?;
        }
        Ok(if assumptions::TERMINATE_REFUNDS {
            CancelOutcome::Refunded { amount: None }
        } else {
            CancelOutcome::CancelledWithoutRefund
        })
    }

    async fn usage(&self, esim: &EsimRef) -> Result<Usage, VendorError> {
        let topup_id = esim
            .vendor_reference
            .clone()
            .ok_or_else(|| missing("topup_id"))?;
        let device_id = esim
            .vendor_esim_ref
            .clone()
            .ok_or_else(|| missing("device_id"))?;
        let fields = [("topup_id", topup_id), ("device_id", device_id.clone())];
        let result = self
            .call("usage", "deviceDetail", Body::Form(&fields))
            .await?;
        let detail: wire::DeviceDetail = wire::from_result(result).map_err(VendorError::Unknown)?;
        // Install events only matter before activation; without them the status is `ready`.
        let events = if detail.wants_events() {
            self.events(&device_id).await.ok()
        } else {
            None
        };
        detail
            .to_usage(chrono::Utc::now(), events.as_deref())
            .map_err(VendorError::Unknown)
    }

    async fn balance(&self) -> Result<Money, VendorError> {
        let result = self
            .call("balance", "accountBalance", Body::Form(&[]))
            .await?;
        let balance: wire::AccountBalance =
            wire::from_result(result).map_err(VendorError::Unknown)?;
        balance.to_money().map_err(VendorError::Unknown)
    }

    fn verify_callback(
        &self,
        headers: &CallbackHeaders,
        raw_body: &[u8],
    ) -> Result<CallbackTrust, VendorError> {
        webhook::verify_callback(headers, raw_body)
    }

    fn parse_callback(
        &self,
        headers: &CallbackHeaders,
        raw_body: &[u8],
    ) -> Result<Vec<VendorEvent>, VendorError> {
        webhook::parse_callback(headers, raw_body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Vector {
        account: &'static str,
        secret: &'static str,
        salt_hex: &'static str,
        nonce: &'static str,
        timestamp: &'static str,
        key_hex: &'static str,
        sign: &'static str,
    }

    /// The vendor collection's signed samples (see `README.md`), then its worked example.
    const VECTORS: [Vector; 3] = [
        Vector {
            account: "113490b1281917ab9d47657cedb6ce",
            secret: "s3cr3t-Example",
            salt_hex: "a1b2c3d4e5f60718",
            nonce: "k2j4h5g6f7d8s9a0",
            timestamp: "1732270000123",
            key_hex: "316769f18acdd50e83f7d2f9c218a6cf10bf53952d7cb311c410e0286009329d",
            sign: "70b34a5b9e85a6c02c5ca5ce6b6bdfdae10535517634baecbf495190e6fdf026",
        },
        Vector {
            account: "partner-demo",
            secret: "another secret with spaces",
            salt_hex: "00ff10ee20dd30cc40bb50aa",
            nonce: "abcdef",
            timestamp: "1700000000000",
            key_hex: "08bfd9032bb804894638facff3211d761afa2753b386b415db7e45b5f3838a6a",
            sign: "937b09909cbd39fdce1ef5c3b245f0283606e263f206ee62bbc4bf12f4020cfc",
        },
        Vector {
            account: "test_account",
            secret: "test_secret",
            salt_hex: "00112233445566778899aabbccddeeff",
            nonce: "abc123def456",
            timestamp: "1700000000000",
            key_hex: "19affbb488486b738ebb1734dcf5f49887e985dc22fa915a38e3f43822d3aa61",
            sign: "ac8f4483341a7f8632978a6c0be719653269a2883392f9d24cd4f7f4bb79ad0b",
        },
    ];

    #[test]
    fn derived_keys_match_the_test_vectors() {
        for v in &VECTORS {
            assert_eq!(derive_key_hex(v.secret, v.salt_hex).unwrap(), v.key_hex);
        }
    }

    #[test]
    fn signatures_match_the_test_vectors() {
        for v in &VECTORS {
            let signer = Signer::new(v.account, v.secret, v.salt_hex).unwrap();
            assert_eq!(signer.sign(v.nonce, v.timestamp), v.sign, "{}", v.account);
        }
    }

    #[test]
    fn fresh_headers_have_the_documented_shape() {
        let v = &VECTORS[0];
        let signer = Signer::new(v.account, v.secret, v.salt_hex).unwrap();
        let h = signer.headers_now();
        assert_eq!(h.account, v.account);
        assert_eq!(h.nonce.len(), 16);
        assert!(
            h.nonce
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        );
        assert_eq!(h.timestamp.len(), 13);
        assert_eq!(h.sign, signer.sign(&h.nonce, &h.timestamp));
        assert_ne!(signer.headers_now().nonce, h.nonce);
        assert_eq!(format!("{signer:?}"), "Signer(***)");
    }

    #[test]
    fn a_non_hex_salt_is_refused() {
        assert!(Signer::new("a", "b", "not hex").is_err());
    }

    #[test]
    fn codes_classify_into_reject_kinds() {
        use assumptions::{classify, codes};
        assert_eq!(classify(codes::DATAPLAN_UNAVAILABLE), RejectKind::SoldOut);
        assert_eq!(
            classify(codes::INSUFFICIENT_BALANCE),
            RejectKind::InsufficientBalance
        );
        assert_eq!(classify(codes::INVALID_SIGN), RejectKind::Auth);
        assert_eq!(classify(codes::NONCE_REUSED), RejectKind::Auth);
        assert_eq!(classify(codes::ORDER_NOT_FOUND), RejectKind::NotFound);
        assert_eq!(
            classify(codes::TERMINATE_NOT_ALLOWED),
            RejectKind::NotAllowed
        );
        assert_eq!(classify(codes::SYSTEM_ERROR), RejectKind::Other);
        assert_eq!(classify(4242), RejectKind::Other);
    }

    fn raw(status: u16, body: &str) -> RawResponse {
        RawResponse {
            status: reqwest::StatusCode::from_u16(status).unwrap(),
            headers: Default::default(),
            body: bytes::Bytes::copy_from_slice(body.as_bytes()),
        }
    }

    #[test]
    fn envelopes_are_interpreted_by_code() {
        assert_eq!(
            interpret(&raw(200, wire::tests::SUBSCRIBE), Effect::Money).unwrap()["topup_id"],
            "202308161431187762753800"
        );
        let err = interpret(
            &raw(200, r#"{"code":1009,"msg":"Insufficient balance"}"#),
            Effect::Money,
        );
        assert_eq!(
            err.unwrap_err().reject_kind(),
            Some(RejectKind::InsufficientBalance)
        );
        let err = interpret(&raw(200, r#"{"code":"1008","msg":"x"}"#), Effect::Money).unwrap_err();
        assert_eq!(err.reject_kind(), Some(RejectKind::SoldOut));
        for (status, body) in [
            (500, "<html>nginx</html>"),
            (200, "{}"),
            (502, r#"{"code":1,"result":{}}"#),
        ] {
            let err = interpret(&raw(status, body), Effect::Money).unwrap_err();
            assert!(
                matches!(err, VendorError::Unknown(_)),
                "{status} {body}: {err:?}"
            );
        }
    }

    /// A code nobody documented may have bought: unknown on a money call or a lookup, a
    /// refusal only on a plain read.
    #[test]
    fn unknown_codes_on_money_operations_are_unknown() {
        for code in ["4242", "9999", "1006"] {
            let body = format!(r#"{{"code":{code},"msg":"new"}}"#);
            let err = interpret(&raw(200, &body), Effect::Money).unwrap_err();
            assert!(matches!(err, VendorError::Unknown(_)), "{code}: {err:?}");
        }
        let err = interpret(&raw(200, r#"{"code":4242,"msg":"new"}"#), Effect::Lookup).unwrap_err();
        assert!(matches!(err, VendorError::Unknown(_)), "{err:?}");
        let err =
            interpret(&raw(200, r#"{"code":1006,"msg":"busy"}"#), Effect::Lookup).unwrap_err();
        assert!(is_processing(&err), "{err:?}");
        let err = interpret(&raw(200, r#"{"code":4242,"msg":"new"}"#), Effect::Read).unwrap_err();
        assert_eq!(err.reject_kind(), Some(RejectKind::Other));
        assert_eq!(effect_of("order"), Effect::Money);
        assert_eq!(effect_of("cancel"), Effect::Money);
        assert_eq!(effect_of("lookup"), Effect::Lookup);
    }
}
