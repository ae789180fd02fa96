//! Adapter for Multiverse (a white-label of Tel25's provisioning API); its facts, sources
//! and guesses: `src/vendors/multiverse/README.md`.
//!
//! Documented: two auth layers on every call (the per-request `X-Multiverse-Access-Token` and
//! an OAuth2 client-credentials token), the package list, the asynchronous purchase whose
//! eSIM arrives by an unsigned callback, and the `{"code","message"}` error envelope.
//! Everything else (package fields, units, query/usage/top-up/balance endpoints) is a guess,
//! and every guess lives in [`assumptions`] so it can be corrected in one place.

use std::time::Duration;

use crate::vendors::CallbackHeaders;
use async_trait::async_trait;
use reqwest::Method;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::{
    domain::{
        money::Money,
        secret::{ExposeSecret, SecretString},
    },
    vendors::multiverse::credentials::MultiverseCredentials,
    vendors::{
        AdapterOptions, CallbackTrust, CancelOutcome, EsimRef, Offer, OrderState, PlaceOrder,
        Placed, RejectKind, TopUp, Usage, Vendor, VendorError, VendorEvent, VendorId,
        VendorOrderRef, VendorOrderStatus,
        http_client::{RawResponse, VendorHttp},
        support::{self, CodeMeaning, Effect, FanOut, TokenCache},
    },
};

pub mod assumptions;
mod auth;
pub mod credentials;
pub mod sim;
pub mod webhook;
pub mod wire;

/// Percent-encodes one path segment of the paths in [`assumptions`].
use support::segment as path_segment;

/// `404001 "API not found"`: the vendor does not serve this operation at all. On a guessed
/// operation that means [`VendorError::Unsupported`]; it never means "no such order".
pub const API_NOT_FOUND: &str = "404001";

/// The documented error codes, in one table. `None`: the outcome is unknown (500001
/// internal error, 500003 OTA failure after the platform may have allocated, or a code the
/// document does not list) and must be reconciled. `404001` is not here: see
/// [`API_NOT_FOUND`].
pub fn classify(code: &str) -> Option<RejectKind> {
    match code {
        "400001" => Some(RejectKind::InvalidRequest),
        "401001" => Some(RejectKind::Auth),
        // 404002 "Resource not found".
        "404002" => Some(RejectKind::NotFound),
        // "No available sim iccid": inventory ran out before allocation → try another offer.
        "500002" => Some(RejectKind::SoldOut),
        c if c == assumptions::INSUFFICIENT_BALANCE_CODE => Some(RejectKind::InsufficientBalance),
        _ => None,
    }
}

pub const UNAUTHORIZED_CODE: &str = "401001";

pub use auth::{access_token, basic_auth};

pub struct Multiverse {
    creds: MultiverseCredentials,
    http: VendorHttp,
    /// Timeout of `/purchase/sync`, which waits for allocation: at least a minute.
    sync_timeout: Duration,
    /// Set once `/purchase/sync` answered `404001`: later purchases go straight to the
    /// asynchronous route (an optimisation only; a restart simply asks again).
    sync_unsupported: AtomicBool,
    /// Set once the guessed order query answered `404001`: polling stops asking it, and
    /// orders complete by their matched callback.
    queries_unsupported: AtomicBool,
    /// Set once the guessed top-up call answered `404001`: no top-up is offered any more.
    topup_unsupported: AtomicBool,
    /// The OAuth token, fetched once for all concurrent callers instead of stampeding
    /// `/auth/token` (see `auth.rs`).
    tokens: TokenCache<SecretString>,
}

impl Multiverse {
    pub fn new(creds: MultiverseCredentials, opts: &AdapterOptions) -> Self {
        Multiverse {
            creds,
            http: VendorHttp::new(VendorId::Multiverse, opts.timeout, None),
            sync_timeout: opts.timeout.max(assumptions::SYNC_PURCHASE_MIN_TIMEOUT),
            sync_unsupported: AtomicBool::new(false),
            queries_unsupported: AtomicBool::new(false),
            topup_unsupported: AtomicBool::new(false),
            tokens: TokenCache::default(),
        }
    }

    /// The same adapter with another `/purchase/sync` timeout (tests; a vendor that
    /// allocates faster or slower than the minute assumed).
    pub fn with_sync_purchase_timeout(mut self, timeout: Duration) -> Self {
        self.sync_timeout = timeout;
        self
    }

    fn url(&self, path: &str) -> Result<url::Url, VendorError> {
        support::join_url(
            &self.creds.base_url,
            &format!("{}{path}", assumptions::PREFIX),
        )
    }

    /// Sends one call with both auth layers; on 401001 refreshes the OAuth token and sends it
    /// once more (a 401 means the vendor did not act, so even a purchase may be re-sent).
    async fn call(
        &self,
        operation: &'static str,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<RawResponse, VendorError> {
        self.call_with(operation, method, path, body, None).await
    }

    async fn call_with(
        &self,
        operation: &'static str,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
        timeout: Option<Duration>,
    ) -> Result<RawResponse, VendorError> {
        let mut retried = false;
        loop {
            let (authorization, generation) = self.authorization().await?;
            let mut request = self
                .http
                .client()
                .request(method.clone(), self.url(path)?)
                .header("Authorization", authorization.expose_secret())
                .header("X-Multiverse-Access-Token", self.current_access_token());
            if let Some(body) = body {
                request = request.json(body);
            }
            if let Some(timeout) = timeout {
                request = request.timeout(timeout);
            }
            let raw = self.http.send(operation, request).await?;
            match check_status(raw) {
                Err(VendorError::Rejected {
                    kind: RejectKind::Auth,
                    ..
                }) if !retried => {
                    self.tokens.invalidate(generation).await;
                    retried = true;
                }
                other => return other,
            }
        }
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        operation: &'static str,
        path: &str,
    ) -> Result<T, VendorError> {
        let raw = self.call(operation, Method::GET, path, None).await?;
        parse(&raw)
    }

    async fn post<T: serde::de::DeserializeOwned>(
        &self,
        operation: &'static str,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<T, VendorError> {
        let raw = self.call(operation, Method::POST, path, Some(body)).await?;
        parse(&raw)
    }

    /// Buys one eSIM: Tel25's `/purchase/sync` first (answers with the allocated eSIM), the
    /// documented asynchronous `/purchase` (the eSIM follows by callback) when the vendor
    /// answers `/sync` with `404001`. `404001` from the documented route itself is unknown:
    /// a path missing today says nothing certain about what the vendor did.
    async fn purchase_one(
        &self,
        sku: &str,
        customer_order_id: &str,
    ) -> Result<wire::Order, VendorError> {
        let body = json!({ "customer_order_id": customer_order_id });
        if !self.sync_unsupported.load(Ordering::Relaxed) {
            let raw = self
                .call_with(
                    "place_order",
                    Method::POST,
                    &assumptions::purchase_sync(sku),
                    Some(&body),
                    Some(self.sync_timeout),
                )
                .await;
            match raw {
                Err(VendorError::Unsupported) => {
                    tracing::info!(
                        vendor = "multiverse",
                        "/purchase/sync is not offered; buying through the asynchronous route"
                    );
                    self.sync_unsupported.store(true, Ordering::Relaxed);
                }
                other => return parse(&other?),
            }
        }
        match self
            .call(
                "place_order",
                Method::POST,
                &assumptions::purchase(sku),
                Some(&body),
            )
            .await
        {
            Err(VendorError::Unsupported) => Err(VendorError::Unknown(
                "the documented purchase route answered 404001 API not found".into(),
            )),
            other => parse(&other?),
        }
    }

    async fn order_by_id(&self, order_id: &str) -> Result<wire::Order, VendorError> {
        self.get("fetch_order", &assumptions::order(order_id)).await
    }

    async fn orders_by_customer_id(
        &self,
        customer_order_id: &str,
    ) -> Result<Vec<wire::Order>, VendorError> {
        let path = format!(
            "{}?customer_order_id={}",
            assumptions::ORDERS,
            path_segment(customer_order_id)
        );
        let list: wire::OrderList = self.get("fetch_order", &path).await?;
        Ok(list.order_list)
    }

    /// Finds every vendor order placed for our order id: the plain id (quantity one), else
    /// the per-eSIM `<id>-1`, `<id>-2`… until one is missing.
    async fn find_orders(&self, order_id: &str) -> Result<Vec<wire::Order>, VendorError> {
        let plain = self.orders_by_customer_id(order_id).await?;
        if !plain.is_empty() {
            return Ok(plain);
        }
        let pages = support::collect_pages(
            1,
            MAX_QUANTITY,
            |n| {
                let id = suffixed(order_id, n);
                async move { self.orders_by_customer_id(&id).await }
            },
            |n, part, found| {
                let last = part.is_empty();
                found.extend(part);
                (!last).then_some(n + 1)
            },
        )
        .await?;
        Ok(pages.items)
    }

    /// The vendor orders of `r` through the guessed query endpoints.
    async fn query_orders(&self, r: &VendorOrderRef) -> Result<OrderState, VendorError> {
        let orders = match r.vendor_reference.as_deref().filter(|s| !s.is_empty()) {
            Some(refs) => {
                let mut orders = Vec::new();
                for id in refs.split(',') {
                    orders.push(self.order_by_id(id.trim()).await?);
                }
                orders
            }
            None => {
                let found = self.find_orders(&r.order_id).await?;
                // More vendor orders than eSIMs asked for: which are ours is not knowable.
                if found.len() > r.quantity.max(1) as usize {
                    return Err(VendorError::Unknown(format!(
                        "{} Multiverse orders carry customer_order_id {} for {} eSIM(s) \
                         (needs an operator)",
                        found.len(),
                        r.order_id,
                        r.quantity.max(1)
                    )));
                }
                found
            }
        };
        if orders.is_empty() {
            // "None" is evidence only once no purchase sent at `placed_at` can still be in
            // flight (the `/sync` timeout plus a margin).
            let settle = chrono::Duration::from_std(self.sync_timeout + assumptions::SETTLE_MARGIN)
                .unwrap_or_else(|_| chrono::Duration::minutes(5));
            if chrono::Utc::now() - r.placed_at < settle {
                return Err(VendorError::Unknown(
                    "no order yet; the purchase may still be in flight".into(),
                ));
            }
            return Err(VendorError::rejected(
                RejectKind::NotFound,
                "404002",
                format!("no order with customer_order_id {}", r.order_id),
            ));
        }
        Ok(wire::combine(orders))
    }
}

/// The most eSIMs one order may ask for (one purchase call each).
const MAX_QUANTITY: u32 = 50;

/// The `customer_order_id` of the `n`th eSIM (from 1) of an order of `quantity`.
fn customer_order_id(order_id: &str, n: u32, quantity: u32) -> String {
    if quantity <= 1 {
        order_id.to_string()
    } else {
        suffixed(order_id, n)
    }
}

fn suffixed(order_id: &str, n: u32) -> String {
    format!("{order_id}{}{n}", assumptions::QUANTITY_SUFFIX_SEPARATOR)
}

/// Maps a non-2xx answer (or a 2xx that carries an error code) to a `VendorError`.
fn check_status(raw: RawResponse) -> Result<RawResponse, VendorError> {
    let envelope = raw
        .json::<wire::ErrorBody>()
        .ok()
        .filter(|e| !e.code.is_empty());
    if raw.status.is_success() {
        return match envelope {
            Some(e) if !e.code.starts_with('2') => Err(error_from_code(e)),
            _ => Ok(raw),
        };
    }
    match envelope {
        Some(e) => Err(error_from_code(e)),
        // A bare 429 is not in the document: it is not evidence that nothing was bought.
        None => Err(VendorError::Unknown(format!(
            "HTTP {} without an error code: {}",
            raw.status.as_u16(),
            raw.snippet()
        ))),
    }
}

fn error_from_code(e: wire::ErrorBody) -> VendorError {
    if e.code == API_NOT_FOUND {
        return VendorError::Unsupported;
    }
    // Any code but the documented refusals may have acted, on any call (see `classify`).
    let meaning = match classify(&e.code) {
        Some(kind) => CodeMeaning::Refused(kind),
        None => CodeMeaning::MayHaveActed,
    };
    let what = format!("vendor error {}", e.code);
    support::refusal_or_unknown(Effect::Money, meaning, &what, &e.code, e.message)
}

fn parse<T: serde::de::DeserializeOwned>(raw: &RawResponse) -> Result<T, VendorError> {
    raw.json()
        .map_err(|e| VendorError::Unknown(format!("unexpected reply ({e}): {}", raw.snippet())))
}

#[async_trait]
impl Vendor for Multiverse {
    fn id(&self) -> VendorId {
        VendorId::Multiverse
    }

    fn place_is_idempotent(&self) -> bool {
        assumptions::PLACE_IS_IDEMPOTENT
    }

    async fn list_offers(&self) -> Result<Vec<Offer>, VendorError> {
        let list: wire::PackageList = self.get("list_offers", assumptions::PACKAGES).await?;
        list.into_offers().map_err(VendorError::Unknown)
    }

    async fn topup_offers(&self, _esim: &EsimRef) -> Result<Vec<Offer>, VendorError> {
        if self.topup_unsupported.load(Ordering::Relaxed) {
            return Err(VendorError::Unsupported);
        }
        let offers = self.list_offers().await?;
        Ok(offers
            .into_iter()
            .filter(|o| o.supports_topup && o.active)
            .map(|o| Offer {
                is_topup: true,
                ..o
            })
            .collect())
    }

    async fn place_order(&self, req: &PlaceOrder) -> Result<Placed, VendorError> {
        let quantity = req.quantity.max(1);
        if quantity > MAX_QUANTITY {
            return Err(VendorError::rejected(
                RejectKind::InvalidRequest,
                "quantity",
                format!("at most {MAX_QUANTITY} eSIMs per order"),
            ));
        }
        // One call per eSIM, all at once (each still paced by the vendor's rate limit): one
        // after the other, an order of ten would wait ten allocations, past any request
        // timeout.
        let placed = support::per_esim(quantity, FanOut::AllAtOnce, "", |n| {
            let id = customer_order_id(&req.order_id, n, quantity);
            async move { self.purchase_one(&req.sku, &id).await }
        })
        .await?;
        let mut state = wire::combine(placed);
        // Accepted means allocation is under way; the callback or a poll completes it.
        if state.status == VendorOrderStatus::Completed && state.esims.len() < quantity as usize {
            state.status = VendorOrderStatus::Pending;
        }
        Ok(state)
    }

    /// Polls through the guessed order query. Where the vendor does not offer it (`404001`)
    /// the answer is `Unknown`, never "not found" and never `Unsupported` (which would read
    /// as "nothing bought"): the order waits for its provisioning callback, which completes
    /// it when it matches what we placed (see `webhook::matches_placed`).
    async fn fetch_order(&self, r: &VendorOrderRef) -> Result<OrderState, VendorError> {
        let no_query = || {
            VendorError::Unknown(
                "Multiverse offers no order query (404001): the order completes by its \
                 provisioning callback"
                    .into(),
            )
        };
        if self.queries_unsupported.load(Ordering::Relaxed) {
            return Err(no_query());
        }
        match self.query_orders(r).await {
            Err(VendorError::Unsupported) => {
                self.queries_unsupported.store(true, Ordering::Relaxed);
                Err(no_query())
            }
            other => other,
        }
    }

    async fn topup(&self, req: &TopUp) -> Result<Placed, VendorError> {
        let body = json!({ "customer_order_id": req.order_id });
        let order: wire::Order = match self
            .post(
                "topup",
                &assumptions::topup(&req.esim.iccid, &req.sku),
                &body,
            )
            .await
        {
            Err(VendorError::Unsupported) => {
                // "API not found": nothing was bought, and no top-up will be offered again.
                self.topup_unsupported.store(true, Ordering::Relaxed);
                return Err(VendorError::Unsupported);
            }
            other => other?,
        };
        Ok(order.into_topup_state())
    }

    async fn cancel(
        &self,
        _r: &VendorOrderRef,
        _esims: &[EsimRef],
    ) -> Result<CancelOutcome, VendorError> {
        // No cancel or refund endpoint is known (see `assumptions`).
        Err(VendorError::Unsupported)
    }

    async fn usage(&self, esim: &EsimRef) -> Result<Usage, VendorError> {
        let usage: wire::UsageResponse =
            self.get("usage", &assumptions::usage(&esim.iccid)).await?;
        usage.into_usage().map_err(VendorError::Unknown)
    }

    async fn balance(&self) -> Result<Money, VendorError> {
        let balance: wire::BalanceResponse = self.get("balance", assumptions::BALANCE).await?;
        balance.into_money().map_err(VendorError::Unknown)
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
        _headers: &CallbackHeaders,
        raw_body: &[u8],
    ) -> Result<Vec<VendorEvent>, VendorError> {
        webhook::parse_callback(raw_body)
    }

    /// No order query is documented, so a callback that matches our purchase in every
    /// detail is how an order completes (see [`webhook::matches_placed`]).
    fn match_hint(
        &self,
        ev: &VendorEvent,
        placed: &VendorOrderRef,
    ) -> Result<crate::vendors::EsimProfile, String> {
        webhook::matches_placed(ev, placed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use auth::refresh_margin;

    /// Vectors computed from the documented algorithm.
    #[test]
    fn access_token_matches_the_shared_test_vectors() {
        assert_eq!(
            access_token("your_user_id", "your_security_token", "1732270000"),
            "Bearer eW91cl91c2VyX2lkLzE3MzIyNzAwMDAvNzIxMzRlMGE4ZTg1ZmZjZGYwZjRmMjZjYjAyNTEwM2NmMjZiMWVlMmIzYzJhMWJkYjZjMWEyMjUxNDc5NDgwYw=="
        );
        assert_eq!(
            access_token("reseller-42", "Zx9!token", "1700000000"),
            "Bearer cmVzZWxsZXItNDIvMTcwMDAwMDAwMC8zYWY5ZGJmM2M0ZGQ3OWE0Y2RlODU0M2RmMGE3YWE2MTcyYmJlYmI2OGQ1ZjFmNmNlOTVlNDVhOTMzMWE2Mjgx"
        );
    }

    /// A second vector, computed independently with Python.
    #[test]
    fn access_token_matches_the_vendor_file_vector() {
        assert_eq!(
            access_token("user1", "sectoken", "1700000000"),
            "Bearer dXNlcjEvMTcwMDAwMDAwMC9iNjcxZjY5YzI0YzVmZjU3YzZmYzY2YTIzNTU1MTM2ZWFmOWU1YjEyNzUwOGNlMjE4YjRjMzA2OTM4NWU5MWM2"
        );
    }

    /// Basic auth vectors.
    #[test]
    fn basic_auth_matches_the_shared_test_vectors() {
        assert_eq!(
            basic_auth("your_client_id", "your_client_secret"),
            "Basic eW91cl9jbGllbnRfaWQ6eW91cl9jbGllbnRfc2VjcmV0"
        );
        assert_eq!(
            basic_auth("mv-client", "p@ss:word"),
            "Basic bXYtY2xpZW50OnBAc3M6d29yZA=="
        );
    }

    #[test]
    fn every_documented_code_is_classified() {
        assert_eq!(classify("400001"), Some(RejectKind::InvalidRequest));
        assert_eq!(classify("401001"), Some(RejectKind::Auth));
        assert_eq!(classify("404002"), Some(RejectKind::NotFound));
        // "API not found" says the operation does not exist, never that an order does not.
        assert_eq!(classify(API_NOT_FOUND), None);
        assert_eq!(
            error_from_code(wire::ErrorBody {
                code: API_NOT_FOUND.into(),
                message: "API not found".into()
            }),
            VendorError::Unsupported
        );
        assert_eq!(classify("500002"), Some(RejectKind::SoldOut));
        assert_eq!(classify("402001"), Some(RejectKind::InsufficientBalance));
        for unknown in ["500001", "500003", "999999", ""] {
            assert_eq!(classify(unknown), None, "{unknown}");
        }
    }

    fn raw(status: u16, body: &str) -> RawResponse {
        RawResponse {
            status: reqwest::StatusCode::from_u16(status).unwrap(),
            headers: Default::default(),
            body: bytes::Bytes::from(body.to_string()),
        }
    }

    /// The seed's only example body.
    #[test]
    fn documented_error_example_is_an_invalid_request() {
        let err = check_status(raw(
            400,
            r#"{ "code": "400001", "message": "Invalid parameter" }"#,
        ))
        .unwrap_err();
        assert_eq!(
            err,
            VendorError::rejected(RejectKind::InvalidRequest, "400001", "Invalid parameter")
        );
    }

    #[test]
    fn ambiguous_answers_are_unknown() {
        for (status, body) in [
            (
                500,
                r#"{"code":"500001","message":"Internal server error"}"#,
            ),
            (500, r#"{"code":"500003","message":"OTA API server error"}"#),
            (502, "<html>bad gateway</html>"),
            (
                200,
                r#"{"code":"500001","message":"Internal server error"}"#,
            ),
        ] {
            let err = check_status(raw(status, body)).unwrap_err();
            assert!(
                matches!(err, VendorError::Unknown(_)),
                "{status} {body}: {err:?}"
            );
        }
        let err = check_status(raw(
            500,
            r#"{"code":"500002","message":"No available sim iccid"}"#,
        ))
        .unwrap_err();
        assert_eq!(err.reject_kind(), Some(RejectKind::SoldOut));
    }

    #[test]
    fn quantity_above_one_suffixes_the_customer_order_id() {
        assert_eq!(customer_order_id("ord_1", 1, 1), "ord_1");
        assert_eq!(customer_order_id("ord_1", 2, 3), "ord_1-2");
    }

    #[test]
    fn tokens_refresh_before_they_expire() {
        assert_eq!(
            refresh_margin(Duration::from_secs(3600)),
            Duration::from_secs(3540)
        );
        assert_eq!(
            refresh_margin(Duration::from_secs(10)),
            Duration::from_secs(9)
        );
    }
}
