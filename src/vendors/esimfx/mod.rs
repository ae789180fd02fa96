//! Nomad eSIMfx adapter; its facts, sources and guesses: `src/vendors/esimfx/README.md`.
//!
//! - Auth: `POST /account/api/v1/auth` gives a 1 h JWT, sent as `Authorization: Bearer`. It is
//!   cached, refreshed before it expires, and fetched again once when a call answers 401/403.
//! - Every answer is `{code, message, data}`; success iff `code == 0`, even on HTTP 200.
//! - `create_order` is synchronous (ICCID + LPA in the answer) and deduplicated on
//!   `X-Idempotency-Key` = our order id, so an unknown outcome is resolved by sending the same
//!   request again ([`Vendor::place_is_idempotent`]). There is no lookup by our own reference:
//!   `fetch_order` needs the vendor order id.

use std::time::Duration;

use crate::vendors::CallbackHeaders;
use async_trait::async_trait;
use reqwest::Method;
use serde::de::DeserializeOwned;

use crate::{
    domain::{
        money::{Currency, Money},
        secret::{ExposeSecret, SecretString},
    },
    vendors::esimfx::credentials::EsimFxCredentials,
    vendors::{
        AdapterOptions, CallbackTrust, CancelOutcome, EsimRef, Offer, OrderState, PlaceOrder,
        Placed, RejectKind, TopUp, Usage, Vendor, VendorError, VendorEvent, VendorId,
        VendorOrderRef, VendorOrderStatus,
        http_client::{RawResponse, VendorHttp},
        support::{self, Effect, FanOut, TokenCache},
    },
};

pub mod assumptions;
mod auth;
pub mod credentials;
pub mod sim;
pub mod webhook;
pub mod wire;

pub use assumptions::codes;

use wire::{CreateOrderRequest, Envelope, Order, ProductRef};

pub(crate) const AUTH_PATH: &str = "/account/api/v1/auth";
pub(crate) const PRODUCTS_PATH: &str = "/product/api/v2/get_products";
pub(crate) const TOPUPS_PATH: &str = "/product/api/v1/get_available_topups";
pub(crate) const CREATE_ORDER_PATH: &str = "/order/api/v1/create_order";
pub(crate) const GET_ORDER_PATH: &str = "/order/api/v1/get_order";
pub(crate) const ESIM_STATUS_PATH: &str = "/order/api/v1/get_esim_status";
pub(crate) const ESIM_ORDERS_PATH: &str = "/order/api/v1/get_esim_orders";
pub(crate) const TERMINATE_PATH: &str = "/order/api/v1/terminate_subscription";
pub(crate) const PROFILE_PATH: &str = "/account/api/v1/reseller/get_profile";

/// One request, rebuilt for the retry after a re-authentication.
struct Call<'a> {
    operation: &'static str,
    method: Method,
    path: &'a str,
    query: &'a [(&'a str, &'a str)],
    body: Option<serde_json::Value>,
    idempotency_key: Option<&'a str>,
    effect: Effect,
}

pub struct EsimFx {
    creds: EsimFxCredentials,
    http: VendorHttp,
    /// The JWT, fetched once for all concurrent callers (see `auth.rs`).
    token: TokenCache<SecretString>,
    refresh_after: Duration,
}

impl EsimFx {
    pub fn new(creds: EsimFxCredentials, opts: &AdapterOptions) -> Self {
        EsimFx {
            creds,
            // No rate limit is documented.
            http: VendorHttp::new(VendorId::EsimFx, opts.timeout, None),
            token: TokenCache::default(),
            refresh_after: assumptions::TOKEN_REFRESH_AFTER,
        }
    }

    /// Refreshes the token after `after` instead of 55 min (tests, or a vendor that shortens
    /// its token lifetime).
    pub fn with_token_refresh_after(mut self, after: Duration) -> Self {
        self.refresh_after = after;
        self
    }

    fn url(&self, path: &str) -> Result<url::Url, VendorError> {
        support::join_url(&self.creds.base_url, path)
    }

    fn build(
        &self,
        call: &Call<'_>,
        token: &SecretString,
    ) -> Result<reqwest::RequestBuilder, VendorError> {
        let mut request = self
            .http
            .client()
            .request(call.method.clone(), self.url(call.path)?)
            .bearer_auth(token.expose_secret());
        if !call.query.is_empty() {
            request = request.query(call.query);
        }
        if let Some(key) = call.idempotency_key {
            request = request.header("X-Idempotency-Key", key);
        }
        if let Some(body) = &call.body {
            request = request.json(body);
        }
        Ok(request)
    }

    /// Sends `call` with a token, re-authenticating once when the token is refused (safe for
    /// `create_order`: the retry carries the same idempotency key). Returns `data`.
    async fn send(&self, call: Call<'_>) -> Result<serde_json::Value, VendorError> {
        let (token, generation) = self.access_token().await?;
        let mut response = self
            .http
            .send(call.operation, self.build(&call, &token)?)
            .await?;
        if auth::token_refused(response.status) {
            self.token.invalidate(generation).await;
            let (token, _) = self.access_token().await?;
            response = self
                .http
                .send(call.operation, self.build(&call, &token)?)
                .await?;
            if auth::token_refused(response.status) {
                return Err(VendorError::rejected(
                    RejectKind::Auth,
                    response.status.as_str(),
                    "eSIMfx refused a fresh access token",
                ));
            }
        }
        interpret(&response, call.effect)
    }

    async fn send_as<T: DeserializeOwned>(&self, call: Call<'_>) -> Result<T, VendorError> {
        let data = self.send(call).await?;
        serde_json::from_value(data.clone())
            .map_err(|e| garbled(&format!("{e}: {}", short(&data.to_string()))))
    }

    async fn create_order(
        &self,
        key: &str,
        body: &CreateOrderRequest,
        operation: &'static str,
    ) -> Result<Order, VendorError> {
        let body =
            serde_json::to_value(body).map_err(|e| VendorError::Unreachable(e.to_string()))?;
        self.send_as(Call {
            operation,
            method: Method::POST,
            path: CREATE_ORDER_PATH,
            query: &[],
            body: Some(body),
            idempotency_key: Some(key),
            effect: Effect::Money,
        })
        .await
    }

    async fn products_page(
        &self,
        page_start: serde_json::Value,
    ) -> Result<wire::ProductsPage, VendorError> {
        let body = wire::GetProductsRequest {
            page_start,
            page_size: assumptions::PAGE_SIZE,
        };
        self.send_as(Call {
            operation: "list",
            method: Method::POST,
            path: PRODUCTS_PATH,
            query: &[],
            body: serde_json::to_value(body).ok(),
            idempotency_key: None,
            effect: Effect::Read,
        })
        .await
    }

    async fn get(
        &self,
        operation: &'static str,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<serde_json::Value, VendorError> {
        self.send(Call {
            operation,
            method: Method::GET,
            path,
            query,
            body: None,
            idempotency_key: None,
            effect: if operation == "query" {
                Effect::Lookup
            } else {
                Effect::Read
            },
        })
        .await
    }

    async fn get_as<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, VendorError> {
        let data = self.get(operation, path, query).await?;
        serde_json::from_value(data.clone())
            .map_err(|e| garbled(&format!("{e}: {}", short(&data.to_string()))))
    }

    /// One vendor order: `get_order` for the subscription, `get_esim_status` for the LPA
    /// (`get_order` carries only the ICCID).
    async fn fetch_one(&self, vendor_order_id: &str) -> Result<OrderState, VendorError> {
        let order: Order = self
            .get_as("query", GET_ORDER_PATH, &[("order_id", vendor_order_id)])
            .await?;
        let status = wire::order_status(order.status.as_deref());
        let Some(iccid) = order.iccid.as_deref().filter(|i| !i.trim().is_empty()) else {
            return Ok(OrderState {
                charged: None,
                vendor_reference: Some(vendor_order_id.to_string()),
                status: if status == VendorOrderStatus::Completed {
                    VendorOrderStatus::Pending
                } else {
                    status
                },
                esims: Vec::new(),
            });
        };
        let esim: wire::Esim = self
            .get_as("query", ESIM_STATUS_PATH, &[("iccid", iccid)])
            .await?;
        let profile = wire::esim_profile(&esim, vendor_order_id, order.subscription.as_ref())
            .ok_or_else(|| garbled("get_esim_status without a usable LPA"))?;
        Ok(OrderState {
            charged: None,
            vendor_reference: Some(vendor_order_id.to_string()),
            status,
            esims: vec![profile],
        })
    }

    async fn terminate(&self, vendor_order_id: &str) -> Result<bool, VendorError> {
        let data: wire::TerminateData = self
            .send_as(Call {
                operation: "cancel",
                method: Method::POST,
                path: TERMINATE_PATH,
                query: &[],
                body: Some(serde_json::json!({ "order_id": vendor_order_id })),
                idempotency_key: None,
                effect: Effect::Money,
            })
            .await?;
        Ok(data.refund.is_some_and(|r| r.need_refund))
    }
}

/// The offers of a product page; products that cannot be offered are logged and skipped.
/// The running package first (its status and activation), then the queued ones.
fn combine_usage(live: &[Usage]) -> Option<Usage> {
    let first = live
        .iter()
        .find(|u| u.activated_at.is_some())
        .or(live.first())?;
    let unlimited = live.iter().any(|u| u.unlimited);
    let total = live.iter().map(|u| u.total_bytes).sum::<Option<u64>>();
    Some(Usage {
        used_bytes: live.iter().map(|u| u.used_bytes).sum(),
        total_bytes: if unlimited { None } else { total },
        unlimited,
        status: first.status,
        activated_at: first.activated_at,
        expires_at: live.iter().filter_map(|u| u.expires_at).max(),
        updated_at: None,
    })
}

fn offers_from(page: wire::ProductsPage, is_topup: bool) -> impl Iterator<Item = Offer> {
    page.products.into_iter().filter_map(move |raw| {
            let product: wire::Product = match serde_json::from_value(raw.clone()) {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(vendor = "esimfx", error = %e, "skipping unreadable product");
                    return None;
                }
            };
            match product.to_offer(raw) {
                Ok(mut offer) => {
                    offer.is_topup = is_topup;
                    Some(offer)
                }
                Err(e) => {
                    tracing::warn!(vendor = "esimfx", product = %product.id, error = %e, "skipping product");
                    None
                }
            }
        })
}

fn short(text: &str) -> String {
    let mut s: String = text.chars().take(200).collect();
    if text.chars().count() > 200 {
        s.push('…');
    }
    s
}

/// An answer we cannot read: after a purchase nobody knows what happened, and on a read the
/// caller cannot tell what the vendor meant either.
fn garbled(what: &str) -> VendorError {
    VendorError::Unknown(format!("unreadable eSIMfx answer: {what}"))
}

/// The envelope's `data` on `code == 0`; otherwise the error, classified by
/// [`codes::classify`].
fn interpret(response: &RawResponse, effect: Effect) -> Result<serde_json::Value, VendorError> {
    if response.status.is_server_error() {
        return Err(VendorError::Unknown(format!(
            "HTTP {}: {}",
            response.status,
            response.snippet()
        )));
    }
    let envelope: Envelope = response
        .json()
        .map_err(|_| garbled(&format!("HTTP {}: {}", response.status, response.snippet())))?;
    if envelope.is_success() {
        return Ok(envelope.data);
    }
    let code = envelope.code_text();
    let meaning = code.parse::<i64>().ok().and_then(codes::classify).into();
    let what = format!("eSIMfx code {code}");
    Err(support::refusal_or_unknown(
        effect,
        meaning,
        &what,
        &code,
        envelope.message,
    ))
}

fn decode<T: DeserializeOwned>(
    data: serde_json::Value,
    response: &RawResponse,
) -> Result<T, VendorError> {
    serde_json::from_value(data).map_err(|e| garbled(&format!("{e}: {}", response.snippet())))
}

/// Combines the answers for the eSIMs of one order (one vendor order each): completed when
/// every part is, else pending while any is, else failed when any failed, else cancelled.
fn combine(parts: Vec<OrderState>) -> OrderState {
    support::combine(parts, |parts| {
        let any = |s| parts.iter().any(|p| p.status == s);
        if parts
            .iter()
            .all(|p| p.status == VendorOrderStatus::Completed)
        {
            VendorOrderStatus::Completed
        } else if any(VendorOrderStatus::Pending) {
            VendorOrderStatus::Pending
        } else if any(VendorOrderStatus::Failed) {
            VendorOrderStatus::Failed
        } else {
            VendorOrderStatus::Cancelled
        }
    })
}

/// The vendor order ids of an order: its reference, else the ones its eSIMs remember.
fn vendor_order_ids(r: &VendorOrderRef, esims: &[EsimRef]) -> Vec<String> {
    let from_ref = r.vendor_reference.iter().flat_map(|s| s.split(','));
    let from_esims = esims.iter().filter_map(|e| {
        e.vendor_esim_ref
            .as_deref()
            .or(e.vendor_reference.as_deref())
    });
    let mut ids: Vec<String> = if r.vendor_reference.is_some() {
        from_ref
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    } else {
        from_esims
            .flat_map(|s| s.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    };
    ids.dedup();
    ids
}

#[async_trait]
impl Vendor for EsimFx {
    fn id(&self) -> VendorId {
        VendorId::EsimFx
    }

    fn place_is_idempotent(&self) -> bool {
        true
    }

    async fn list_offers(&self) -> Result<Vec<Offer>, VendorError> {
        // The page cap stops a vendor that keeps returning a key.
        let pages = support::collect_pages(
            serde_json::json!({}),
            1000,
            |page_start| self.products_page(page_start),
            |_, page, offers| {
                let next = page.next_page_start();
                offers.extend(offers_from(page, false));
                next
            },
        )
        .await?;
        if !pages.ended {
            return Err(VendorError::Unknown(
                "get_products never reached its last page".into(),
            ));
        }
        Ok(pages.items)
    }

    /// One `create_order` per eSIM. If a later one fails after an earlier one succeeded, the
    /// outcome is `Unknown`: re-sending the whole order replays the bought eSIMs (same keys)
    /// and retries the rest.
    async fn place_order(&self, req: &PlaceOrder) -> Result<Placed, VendorError> {
        let quantity = req.quantity.max(1);
        let body = CreateOrderRequest {
            operation_type: "NEW".into(),
            iccid: None,
            product: ProductRef {
                id: req.sku.clone(),
            },
        };
        let parts = support::per_esim(
            quantity,
            FanOut::OneByOne,
            "; re-send the order to complete it",
            |n| {
                let key = assumptions::idempotency_key(&req.order_id, n, quantity);
                let body = &body;
                async move {
                    let order = self.create_order(&key, body, "order").await?;
                    order.to_placed().map_err(|e| garbled(&e))
                }
            },
        )
        .await?;
        Ok(combine(parts))
    }

    /// Needs the vendor order ids (`vendor_reference`, comma-separated for several eSIMs):
    /// eSIMfx cannot find an order by our id. Without them the outcome stays `Unknown`, and
    /// the ordering layer resolves it by re-sending `place_order` with the same order id,
    /// which the idempotency key makes safe.
    async fn fetch_order(&self, r: &VendorOrderRef) -> Result<OrderState, VendorError> {
        let ids = vendor_order_ids(r, &[]);
        if ids.is_empty() {
            return Err(VendorError::Unknown(
                "eSIMfx has no lookup by our order id; re-send place_order with the same order id"
                    .into(),
            ));
        }
        let mut parts = Vec::with_capacity(ids.len());
        for id in &ids {
            parts.push(self.fetch_one(id).await?);
        }
        Ok(combine(parts))
    }

    async fn topup_offers(&self, esim: &EsimRef) -> Result<Vec<Offer>, VendorError> {
        let page: wire::ProductsPage = self
            .get_as(
                "topup_offers",
                TOPUPS_PATH,
                &[("iccid", esim.iccid.as_str())],
            )
            .await?;
        Ok(offers_from(page, true).collect())
    }

    async fn topup(&self, req: &TopUp) -> Result<Placed, VendorError> {
        let body = CreateOrderRequest {
            operation_type: "TOPUP".into(),
            iccid: Some(req.esim.iccid.clone()),
            product: ProductRef {
                id: req.sku.clone(),
            },
        };
        let order = self.create_order(&req.order_id, &body, "topup").await?;
        if order.id.trim().is_empty() {
            return Err(garbled("top-up order without id"));
        }
        // The seed's top-up answer repeats the eSIM; tolerate its absence.
        let esims = order
            .esim
            .as_ref()
            .and_then(|e| wire::esim_profile(e, &order.id, order.subscription.as_ref()))
            .into_iter()
            .collect();
        Ok(OrderState {
            charged: None,
            vendor_reference: Some(order.id.clone()),
            status: wire::order_status(order.status.as_deref()),
            esims,
        })
    }

    /// Terminates every subscription of the order. eSIMfx refunds the package fee of a
    /// PENDING subscription under 60 days old, never the eSIM fee, and says so only with
    /// `refund.need_refund` (no amount).
    async fn cancel(
        &self,
        r: &VendorOrderRef,
        esims: &[EsimRef],
    ) -> Result<CancelOutcome, VendorError> {
        let ids = vendor_order_ids(r, esims);
        if ids.is_empty() {
            return Err(VendorError::rejected(
                RejectKind::InvalidRequest,
                "no_reference",
                "no eSIMfx order id is known for this order",
            ));
        }
        let mut refunded = Vec::with_capacity(ids.len());
        for id in &ids {
            refunded.push(self.terminate(id).await?);
        }
        if refunded.iter().all(|r| *r) {
            Ok(CancelOutcome::Refunded { amount: None })
        } else {
            if refunded.iter().any(|r| *r) {
                tracing::warn!(vendor = "esimfx", "only part of the order was refunded");
            }
            Ok(CancelOutcome::CancelledWithoutRefund)
        }
    }

    /// The ACTIVE package of the eSIM, else the PENDING one (a top-up waits as PENDING while
    /// another is ACTIVE), else the newest.
    async fn usage(&self, esim: &EsimRef) -> Result<Usage, VendorError> {
        let orders: wire::EsimOrders = self
            .get_as("usage", ESIM_ORDERS_PATH, &[("iccid", esim.iccid.as_str())])
            .await?;
        let subs: Vec<wire::Subscription> = orders
            .into_orders()
            .into_iter()
            .filter_map(|o| o.subscription)
            .collect();
        // A top-up is one more package on the eSIM, queued behind the running one: the
        // allowance is what the running and queued packages give together.
        let live: Vec<Usage> = subs
            .iter()
            .filter(|s| matches!(s.status_upper().as_str(), "ACTIVE" | "PENDING"))
            .map(wire::Subscription::to_usage)
            .collect();
        if let Some(combined) = combine_usage(&live) {
            return Ok(combined);
        }
        subs.last()
            .map(wire::Subscription::to_usage)
            .ok_or_else(|| {
                VendorError::rejected(RejectKind::NotFound, "no_orders", "no package on this eSIM")
            })
    }

    async fn balance(&self) -> Result<Money, VendorError> {
        let profile: wire::Profile = self.get_as("balance", PROFILE_PATH, &[]).await?;
        let amount = profile.balance.ok_or(VendorError::Unsupported)?.0;
        let currency = profile
            .currency
            .as_deref()
            .unwrap_or(assumptions::BALANCE_CURRENCY_DEFAULT)
            .trim()
            .parse::<Currency>()
            .map_err(|e| garbled(&e.to_string()))?;
        Ok(Money::new(amount, currency))
    }

    fn verify_callback(
        &self,
        headers: &CallbackHeaders,
        _raw_body: &[u8],
    ) -> Result<CallbackTrust, VendorError> {
        webhook::verify(self.creds.webhook_token.as_ref(), headers)
    }

    fn parse_callback(
        &self,
        _headers: &CallbackHeaders,
        raw_body: &[u8],
    ) -> Result<Vec<VendorEvent>, VendorError> {
        webhook::parse(raw_body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;

    #[test]
    fn error_table_classifies_every_code() {
        use codes::*;
        let expect = [
            (INVALID_PARAMETER, Some(RejectKind::InvalidRequest)),
            (TOKEN_INVALID, Some(RejectKind::Auth)),
            (BAD_CLIENT_CREDENTIALS, Some(RejectKind::Auth)),
            (RATE_LIMITED, Some(RejectKind::RateLimited)),
            (PRODUCT_NOT_FOUND, Some(RejectKind::NotFound)),
            (PRODUCT_SOLD_OUT, Some(RejectKind::SoldOut)),
            (TOPUP_INCOMPATIBLE, Some(RejectKind::NotAllowed)),
            (INSUFFICIENT_BALANCE, Some(RejectKind::InsufficientBalance)),
            (ORDER_NOT_FOUND, Some(RejectKind::NotFound)),
            (ICCID_NOT_FOUND, Some(RejectKind::NotFound)),
            (IDEMPOTENCY_CONFLICT, Some(RejectKind::InvalidRequest)),
            (WRONG_SUBSCRIPTION_STATE, Some(RejectKind::NotAllowed)),
            (ESIM_NOT_TOPPABLE, Some(RejectKind::NotAllowed)),
            (INTERNAL_ERROR, None),
            (4242, None),
        ];
        for (code, kind) in expect {
            assert_eq!(classify(code), kind, "{code}");
        }
    }

    fn raw(status: u16, body: &str) -> RawResponse {
        RawResponse {
            status: StatusCode::from_u16(status).unwrap(),
            headers: Default::default(),
            body: bytes::Bytes::from(body.to_string()),
        }
    }

    #[test]
    fn non_zero_code_on_http_200_is_an_error() {
        let err = interpret(
            &raw(200, r#"{"code":2002,"message":"sold out","data":null}"#),
            Effect::Money,
        )
        .unwrap_err();
        assert_eq!(err.reject_kind(), Some(RejectKind::SoldOut));
        let ok = interpret(
            &raw(200, r#"{"code":0,"message":"Success","data":{"a":1}}"#),
            Effect::Money,
        );
        assert_eq!(ok.unwrap(), serde_json::json!({"a": 1}));
    }

    #[test]
    fn unknown_codes_are_unknown_only_where_money_moves() {
        let body = r#"{"code":5000,"message":"internal"}"#;
        assert!(matches!(
            interpret(&raw(200, body), Effect::Money),
            Err(VendorError::Unknown(_))
        ));
        assert_eq!(
            interpret(&raw(200, body), Effect::Read)
                .unwrap_err()
                .reject_kind(),
            Some(RejectKind::Other)
        );
        assert!(matches!(
            interpret(&raw(502, "<html>bad gateway</html>"), Effect::Read),
            Err(VendorError::Unknown(_))
        ));
        assert!(matches!(
            interpret(&raw(200, "not json"), Effect::Money),
            Err(VendorError::Unknown(_))
        ));
    }

    #[test]
    fn idempotency_keys_per_esim() {
        assert_eq!(assumptions::idempotency_key("ord_1", 1, 1), "ord_1");
        assert_eq!(assumptions::idempotency_key("ord_1", 2, 3), "ord_1-2");
    }

    #[test]
    fn order_ids_come_from_the_reference_or_the_esims() {
        let r = VendorOrderRef::new("ord_1", chrono::Utc::now())
            .with_vendor_reference(Some("a, b".into()));
        assert_eq!(vendor_order_ids(&r, &[]), vec!["a", "b"]);
        let bare = VendorOrderRef {
            vendor_reference: None,
            ..r
        };
        let esim = EsimRef {
            iccid: "8944".into(),
            vendor_esim_ref: Some("c".into()),
            vendor_reference: None,
        };
        assert_eq!(vendor_order_ids(&bare, &[esim]), vec!["c"]);
        assert!(vendor_order_ids(&bare, &[]).is_empty());
    }
}
