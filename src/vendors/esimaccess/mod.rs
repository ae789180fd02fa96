//! eSIM Access (white label of Redtea Mobile); its facts, sources and guesses:
//! `src/vendors/esimaccess/README.md`.
//!
//! Every call is a signed JSON `POST` under `/api/v1/open/…`; answers come in one envelope
//! whose `errorCode` is mapped in [`classify`]. Orders are asynchronous: `/esim/order`
//! returns an `orderNo` only and `/esim/query` answers 200010 until the SM-DP+ has allocated
//! the profiles. `transactionId` (our order id) is the vendor's idempotency key.

use crate::domain::secret::ExposeSecret;
use crate::vendors::CallbackHeaders;
use async_trait::async_trait;
use chrono::Utc;
use hmac::{Hmac, Mac};
use serde::{Serialize, de::DeserializeOwned};
use sha2::Sha256;

use crate::{
    domain::money::Money,
    vendors::esimaccess::credentials::EsimAccessCredentials,
    vendors::{
        AdapterOptions, CallbackTrust, CancelOutcome, EsimRef, Offer, OrderState, PlaceOrder,
        Placed, RejectKind, TopUp, Usage, Vendor, VendorError, VendorEvent, VendorId,
        VendorOrderRef, VendorOrderStatus,
        http_client::VendorHttp,
        support::{self, CodeMeaning, Effect},
    },
};

pub mod assumptions;
pub mod credentials;
pub mod sim;
pub mod webhook;
pub mod wire;

use wire::{EsimTarget, Pager, QueryRequest};

/// eSIM Access allows 8 requests per second [seed "Rate Limit"].
pub const MAX_REQUESTS_PER_SECOND: u32 = 8;

/// Profiles still being allocated: a query-time "not ready", not a failure.
pub const NOT_READY: &str = "200010";

/// Longest `transactionId` the vendor takes.
pub const MAX_TRANSACTION_ID: usize = 50;
const QUERY_PAGE_SIZE: u32 = 100;
/// Safety stop for a vendor that keeps answering full pages.
const MAX_QUERY_PAGES: u32 = 100;

type HmacSha256 = Hmac<Sha256>;

/// `RT-Signature`: lowercase hex HMAC-SHA256(SecretKey, Timestamp + RequestID + AccessCode +
/// exact request body) [EA-docs "HMAC Signature"].
pub fn sign(
    secret_key: &str,
    timestamp: &str,
    request_id: &str,
    access_code: &str,
    body: &[u8],
) -> String {
    let mut mac =
        HmacSha256::new_from_slice(secret_key.as_bytes()).expect("HMAC accepts any key length");
    mac.update(timestamp.as_bytes());
    mac.update(request_id.as_bytes());
    mac.update(access_code.as_bytes());
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// What an error code means: the one table of every code in the docs' error list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeClass {
    /// The vendor refused before acting.
    Reject(RejectKind),
    /// The vendor failed or is busy: it may or may not have acted.
    Transient,
}

pub fn classify(code: &str) -> Option<CodeClass> {
    use CodeClass::{Reject, Transient};
    use RejectKind::*;
    Some(match code {
        "000001" | "900001" => Transient,
        // Missing or malformed auth headers.
        "000101" | "000102" => Reject(Auth),
        "000103" | "000104" | "000105" | "000106" | "000107" => Reject(InvalidRequest),
        "101001" | "101002" | "101003" => Reject(Auth),
        "200002" | "200009" => Reject(NotAllowed),
        "200005" | "200006" => Reject(PriceChanged),
        "200007" => Reject(InsufficientBalance),
        "200008" => Reject(InvalidRequest),
        // Profiles still being allocated: nothing to cancel/query yet.
        NOT_READY => Reject(NotAllowed),
        "200011" => Reject(SoldOut),
        "310201" | "310211" | "310221" | "310231" | "310241" | "310243" | "310251" | "310272"
        | "310403" => Reject(NotFound),
        assumptions::THROTTLED_CODE => Reject(RateLimited),
        _ => return None,
    })
}

pub struct EsimAccess {
    creds: EsimAccessCredentials,
    http: VendorHttp,
}

impl EsimAccess {
    pub fn new(creds: EsimAccessCredentials, opts: &AdapterOptions) -> Self {
        EsimAccess {
            http: VendorHttp::new(
                VendorId::EsimAccess,
                opts.timeout,
                Some(MAX_REQUESTS_PER_SECOND),
            ),
            creds,
        }
    }

    fn url(&self, path: &str) -> Result<url::Url, VendorError> {
        support::join_url(&self.creds.base_url, &format!("/api/v1/open{path}"))
    }

    /// Serializes once, signs those bytes, sends those bytes, and opens the envelope.
    async fn call<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        path: &str,
        body: &impl Serialize,
        effect: Effect,
    ) -> Result<T, VendorError> {
        let body = serde_json::to_vec(body)
            .map_err(|e| VendorError::Unreachable(format!("request not serializable: {e}")))?;
        let timestamp = if assumptions::TIMESTAMP_IN_MILLIS {
            Utc::now().timestamp_millis()
        } else {
            Utc::now().timestamp()
        }
        .to_string();
        let request_id = uuid::Uuid::new_v4().simple().to_string();
        let access_code = self.creds.access_code.expose_secret();
        let signature = sign(
            self.creds.secret_key.expose_secret(),
            &timestamp,
            &request_id,
            access_code,
            &body,
        );
        let request = self
            .http
            .client()
            .post(self.url(path)?)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("RT-AccessCode", access_code)
            .header("RT-RequestID", request_id)
            .header("RT-Timestamp", timestamp)
            .header("RT-Signature", signature)
            .body(body);
        let response = self.http.send(operation, request).await?;
        open_envelope(&response, effect)
    }

    /// All pages of an `/esim/query`: a short page, or as many entries as the pager's
    /// `total`, is the last; the page cap ends it too.
    async fn query(&self, filter: QueryRequest<'_>) -> Result<Vec<wire::Esim>, VendorError> {
        let pages = support::collect_pages(
            1,
            MAX_QUERY_PAGES,
            |page_num| {
                let req = QueryRequest {
                    pager: Pager {
                        page_num,
                        page_size: QUERY_PAGE_SIZE,
                    },
                    ..filter.clone()
                };
                async move {
                    self.call::<wire::QueryResponse>("query", "/esim/query", &req, Effect::Lookup)
                        .await
                }
            },
            |page_num, page, all| {
                let got = page.esim_list.len();
                all.extend(page.esim_list);
                let total = page.pager.and_then(|p| p.total).unwrap_or(0);
                let last = got < QUERY_PAGE_SIZE as usize || all.len() as i64 >= total;
                (!last).then_some(page_num + 1)
            },
        )
        .await?;
        Ok(pages.items)
    }

    async fn fetch_by_order_no(&self, order_no: &str) -> Result<OrderState, VendorError> {
        let filter = QueryRequest {
            order_no: Some(order_no),
            ..QueryRequest::default()
        };
        match self.query(filter).await {
            Err(VendorError::Rejected { code, .. }) if code == NOT_READY => {
                Ok(pending(Some(order_no.to_string())))
            }
            Err(e) => Err(e),
            Ok(esims) if esims.is_empty() => Ok(pending(Some(order_no.to_string()))),
            Ok(esims) => order_state(order_no, &esims),
        }
    }

    /// No `orderNo` (the placement outcome was unknown): the documented fallback is the
    /// date-range query, matched on `transactionId`.
    async fn fetch_by_transaction_id(&self, r: &VendorOrderRef) -> Result<OrderState, VendorError> {
        let margin = chrono::Duration::from_std(assumptions::RECONCILE_WINDOW_MARGIN)
            .unwrap_or(chrono::Duration::minutes(10));
        let now = Utc::now();
        let filter = QueryRequest {
            start_time: Some(wire::format_time(r.placed_at - margin)),
            end_time: Some(wire::format_time(now.max(r.placed_at) + margin)),
            ..QueryRequest::default()
        };
        let esims = match self.query(filter).await {
            Err(VendorError::Rejected { code, .. }) if code == NOT_READY => Vec::new(),
            other => other?,
        };
        let mine: Vec<wire::Esim> = esims
            .into_iter()
            .filter(|e| e.transaction_id.as_deref() == Some(r.order_id.as_str()))
            .collect();
        let mut order_nos: Vec<String> = mine.iter().filter_map(|e| e.order_no.clone()).collect();
        order_nos.sort_unstable();
        order_nos.dedup();
        match order_nos.as_slice() {
            [order_no] => return order_state(order_no, &mine),
            [] if !mine.is_empty() => {
                return Err(VendorError::Unknown(format!(
                    "eSIMs with transactionId {} but no orderNo",
                    r.order_id
                )));
            }
            [] => {}
            several => {
                return Err(VendorError::Unknown(format!(
                    "{} eSIM Access orders carry transactionId {} (needs an operator)",
                    several.len(),
                    r.order_id
                )));
            }
        }
        let grace = chrono::Duration::from_std(assumptions::RECONCILE_NOT_FOUND_GRACE)
            .unwrap_or(chrono::Duration::minutes(2));
        if now - r.placed_at < grace {
            return Ok(pending(None));
        }
        Err(VendorError::rejected(
            RejectKind::NotFound,
            "310272",
            format!(
                "no eSIM Access order with transactionId {} around {}",
                r.order_id, r.placed_at
            ),
        ))
    }

    /// The per-eSIM key the newer calls want; looked up by ICCID when we lack it.
    async fn esim_tran_no(&self, esim: &EsimRef) -> Result<String, VendorError> {
        if let Some(tran_no) = &esim.vendor_esim_ref {
            return Ok(tran_no.clone());
        }
        let filter = QueryRequest {
            iccid: Some(&esim.iccid),
            ..QueryRequest::default()
        };
        self.query(filter)
            .await?
            .into_iter()
            .rev()
            .find_map(|e| e.esim_tran_no)
            .ok_or_else(|| {
                VendorError::rejected(RejectKind::NotFound, "310403", "no esimTranNo for ICCID")
            })
    }

    async fn cancel_one(&self, esim: &EsimRef) -> Result<(), VendorError> {
        let target = EsimTarget {
            esim_tran_no: esim.vendor_esim_ref.as_deref(),
            iccid: esim
                .vendor_esim_ref
                .is_none()
                .then_some(esim.iccid.as_str()),
        };
        let _: serde_json::Value = self
            .call("cancel", "/esim/cancel", &target, Effect::Money)
            .await?;
        Ok(())
    }

    async fn package_list(
        &self,
        kind: &'static str,
        iccid: Option<&str>,
    ) -> Result<Vec<Offer>, VendorError> {
        let req = wire::PackageListRequest { kind, iccid };
        let list: wire::PackageList = self
            .call("list", "/package/list", &req, Effect::Read)
            .await?;
        Ok(list
            .package_list
            .into_iter()
            .filter_map(|raw| wire::offer(raw, kind == "TOPUP"))
            .collect())
    }
}

fn pending(vendor_reference: Option<String>) -> OrderState {
    OrderState {
        charged: None,
        vendor_reference,
        status: VendorOrderStatus::Pending,
        esims: Vec::new(),
    }
}

fn order_state(order_no: &str, esims: &[wire::Esim]) -> Result<OrderState, VendorError> {
    let profiles = esims
        .iter()
        .map(wire::Esim::profile)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| VendorError::Unknown(format!("eSIM Access order {order_no}: {e}")))?;
    let all_cancelled = profiles
        .iter()
        .all(|p| p.status == crate::vendors::EsimStatus::Cancelled);
    Ok(OrderState {
        charged: None,
        vendor_reference: Some(order_no.to_string()),
        status: if all_cancelled {
            VendorOrderStatus::Cancelled
        } else {
            VendorOrderStatus::Completed
        },
        esims: profiles,
    })
}

/// HTTP status and envelope → the object or a classified error.
fn open_envelope<T: DeserializeOwned>(
    response: &crate::vendors::http_client::RawResponse,
    effect: Effect,
) -> Result<T, VendorError> {
    let status = response.status;
    if status.is_server_error() {
        return Err(VendorError::Unknown(format!(
            "HTTP {status}: {}",
            response.snippet()
        )));
    }
    if status == reqwest::StatusCode::TOO_MANY_REQUESTS && effect.unclear_is_unknown() {
        // An HTTP-level throttle is not documented to mean "not processed".
        return Err(VendorError::Unknown(format!(
            "HTTP 429 (outcome unknown): {}",
            response.snippet()
        )));
    }
    if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        return Err(VendorError::rejected(
            RejectKind::RateLimited,
            status.as_str(),
            "HTTP 429",
        ));
    }
    let envelope: wire::Envelope = match response.json() {
        Ok(e) => e,
        Err(_) if status.is_client_error() => {
            return Err(http_client_error(status, response, effect));
        }
        Err(e) => {
            return Err(VendorError::Unknown(format!(
                "unreadable reply ({e}): {}",
                response.snippet()
            )));
        }
    };
    if envelope.succeeded() {
        return serde_json::from_value(envelope.obj).map_err(|e| {
            VendorError::Unknown(format!("unexpected obj ({e}): {}", response.snippet()))
        });
    }
    Err(envelope_error(&envelope.code(), envelope.message(), effect))
}

fn envelope_error(code: &str, message: String, effect: Effect) -> VendorError {
    let meaning = match classify(code) {
        Some(CodeClass::Reject(kind)) => CodeMeaning::Refused(kind),
        Some(CodeClass::Transient) => CodeMeaning::MayHaveActed,
        None => CodeMeaning::Unlisted,
    };
    let what = format!("eSIM Access error {code}");
    support::refusal_or_unknown(effect, meaning, &what, code, message)
}

fn http_client_error(
    status: reqwest::StatusCode,
    response: &crate::vendors::http_client::RawResponse,
    effect: Effect,
) -> VendorError {
    use reqwest::StatusCode as S;
    let (meaning, what) = match status {
        S::UNAUTHORIZED | S::FORBIDDEN => (CodeMeaning::Refused(RejectKind::Auth), String::new()),
        // The path is not served (a routing change, an outage page): no evidence either way.
        S::NOT_FOUND | S::METHOD_NOT_ALLOWED => (
            CodeMeaning::MayHaveActed,
            format!("HTTP {status} from the path"),
        ),
        _ => (CodeMeaning::Unlisted, format!("HTTP {status}")),
    };
    support::refusal_or_unknown(effect, meaning, &what, status.as_str(), response.snippet())
}

#[async_trait]
impl Vendor for EsimAccess {
    fn id(&self) -> VendorId {
        VendorId::EsimAccess
    }

    fn place_is_idempotent(&self) -> bool {
        assumptions::DUPLICATE_TRANSACTION_RETURNS_SAME_ORDER
    }

    /// The vendor returns the whole catalogue in one answer (it ignores paging), base
    /// packages and top-up packages in two lists.
    async fn list_offers(&self) -> Result<Vec<Offer>, VendorError> {
        let mut offers = self.package_list("BASE", None).await?;
        for topup in self.package_list("TOPUP", None).await? {
            if !offers.iter().any(|o| o.sku == topup.sku) {
                offers.push(topup);
            }
        }
        Ok(offers)
    }

    async fn place_order(&self, req: &PlaceOrder) -> Result<Placed, VendorError> {
        if req.order_id.is_empty() || req.order_id.chars().count() > MAX_TRANSACTION_ID {
            return Err(VendorError::rejected(
                RejectKind::InvalidRequest,
                "000107",
                "transactionId must be 1 to 50 characters",
            ));
        }
        // Sending the price lets the vendor refuse (200005/200006) instead of charging a
        // changed price.
        let price = req
            .expected_unit_cost
            .as_ref()
            .and_then(wire::units_from_money);
        let body = wire::OrderRequest {
            transaction_id: &req.order_id,
            package_info_list: vec![wire::PackageInfo {
                package_code: &req.sku,
                count: req.quantity,
                price,
            }],
            amount: price.map(|p| p * i64::from(req.quantity)),
        };
        let placed: wire::OrderResponse = self
            .call("order", "/esim/order", &body, Effect::Money)
            .await?;
        let order_no = placed
            .order_no
            .filter(|o| !o.is_empty())
            .ok_or_else(|| VendorError::Unknown("order accepted without an orderNo".to_string()))?;
        Ok(pending(Some(order_no)))
    }

    async fn fetch_order(&self, r: &VendorOrderRef) -> Result<OrderState, VendorError> {
        match &r.vendor_reference {
            Some(order_no) => self.fetch_by_order_no(order_no).await,
            None => self.fetch_by_transaction_id(r).await,
        }
    }

    async fn topup_offers(&self, esim: &EsimRef) -> Result<Vec<Offer>, VendorError> {
        self.package_list("TOPUP", Some(&esim.iccid)).await
    }

    async fn topup(&self, req: &TopUp) -> Result<Placed, VendorError> {
        if req.order_id.is_empty() || req.order_id.chars().count() > MAX_TRANSACTION_ID {
            return Err(VendorError::rejected(
                RejectKind::InvalidRequest,
                "000107",
                "transactionId must be 1 to 50 characters",
            ));
        }
        let body = wire::TopupRequest {
            // `iccid` is deprecated for top-ups but still accepted when we lack esimTranNo.
            target: EsimTarget {
                esim_tran_no: req.esim.vendor_esim_ref.as_deref(),
                iccid: req
                    .esim
                    .vendor_esim_ref
                    .is_none()
                    .then_some(req.esim.iccid.as_str()),
            },
            package_code: &req.sku,
            transaction_id: &req.order_id,
        };
        let done: wire::TopupResponse = self
            .call("topup", "/esim/topup", &body, Effect::Money)
            .await?;
        Ok(OrderState {
            charged: None,
            vendor_reference: Some(done.transaction_id.unwrap_or_else(|| req.order_id.clone())),
            status: VendorOrderStatus::Completed,
            esims: Vec::new(),
        })
    }

    async fn cancel(
        &self,
        r: &VendorOrderRef,
        esims: &[EsimRef],
    ) -> Result<CancelOutcome, VendorError> {
        let targets: Vec<EsimRef> = if esims.is_empty() {
            self.fetch_order(r)
                .await?
                .esims
                .into_iter()
                .map(|p| EsimRef {
                    iccid: p.iccid,
                    vendor_esim_ref: p.vendor_esim_ref,
                    vendor_reference: r.vendor_reference.clone(),
                })
                .collect()
        } else {
            esims.to_vec()
        };
        if targets.is_empty() {
            return Err(VendorError::rejected(
                RejectKind::NotAllowed,
                NOT_READY,
                "profiles not allocated yet: nothing to cancel",
            ));
        }
        for esim in &targets {
            self.cancel_one(esim).await?;
        }
        // The vendor refunds the price to the balance but does not say how much.
        Ok(CancelOutcome::Refunded { amount: None })
    }

    async fn usage(&self, esim: &EsimRef) -> Result<Usage, VendorError> {
        let tran_no = self.esim_tran_no(esim).await?;
        let body = wire::UsageRequest {
            esim_tran_no_list: vec![&tran_no],
        };
        let answer: wire::UsageResponse = self
            .call("usage", "/esim/usage/query", &body, Effect::Read)
            .await?;
        let item = answer
            .esim_usage_list
            .into_iter()
            .find(|u| u.esim_tran_no.as_deref().is_none_or(|t| t == tran_no))
            .ok_or_else(|| {
                VendorError::rejected(RejectKind::NotFound, "310403", "no usage for this eSIM")
            })?;
        let total = item.total_data.and_then(|t| u64::try_from(t).ok());
        Ok(Usage {
            used_bytes: item
                .data_usage
                .and_then(|u| u64::try_from(u).ok())
                .unwrap_or(0),
            total_bytes: total,
            unlimited: item.total_data == Some(assumptions::UNLIMITED_VOLUME),
            status: None,
            activated_at: None,
            expires_at: None,
            updated_at: item.last_update_time.as_deref().and_then(wire::parse_time),
        })
    }

    async fn balance(&self) -> Result<Money, VendorError> {
        let answer: wire::BalanceResponse = self
            .call(
                "balance",
                "/balance/query",
                &serde_json::json!({}),
                Effect::Read,
            )
            .await?;
        answer
            .balance
            .map(wire::money_from_units)
            .ok_or_else(|| VendorError::Unknown("balance answer without balance".to_string()))
    }

    fn verify_callback(
        &self,
        headers: &CallbackHeaders,
        raw_body: &[u8],
    ) -> Result<CallbackTrust, VendorError> {
        webhook::verify(headers, raw_body)
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

    #[derive(serde::Deserialize)]
    struct Case {
        timestamp: String,
        request_id: String,
        access_code: String,
        secret_key: String,
        raw_body: String,
        signature: String,
    }

    fn vectors() -> Vec<Case> {
        #[derive(serde::Deserialize)]
        struct Group {
            cases: Vec<Case>,
        }
        // Signature vectors computed from the documented algorithm (see `README.md`).
        let json = r#"{"cases": [
          {"timestamp": "1628670421", "request_id": "4ce9d9cdac9e4e17b3a2c66c358c1ce2",
           "access_code": "11111", "secret_key": "1111", "raw_body": "{\"imsi\":\"326543826\"}",
           "signature": "7eb765e27df5373dea2dbc8c41a7d9557743e46c8054750f3d851b3fd01d0835"},
          {"timestamp": "1732270000123", "request_id": "0b7f4f1e9c2d4a8e9f3a6b5c4d3e2f10",
           "access_code": "acc-demo", "secret_key": "sk-demo-5f2c",
           "raw_body": "{\"transactionId\":\"ord_01JDEMO\",\"packageInfoList\":[{\"packageCode\":\"JC016\",\"count\":1,\"price\":75000}],\"amount\":75000}",
           "signature": "7fc235aa9bed8d746ff157a5b89461231e4ebf8a7cf29b8a0054e4fc2f6ef5fe"}
        ]}"#;
        serde_json::from_str::<Group>(json).unwrap().cases
    }

    #[test]
    fn signature_matches_the_vendors_worked_example() {
        let c = &vectors()[0];
        let sig = sign(
            &c.secret_key,
            &c.timestamp,
            &c.request_id,
            &c.access_code,
            c.raw_body.as_bytes(),
        );
        assert_eq!(sig, c.signature);
        // The docs print it upper case; same bytes.
        assert_eq!(
            sig.to_uppercase(),
            "7EB765E27DF5373DEA2DBC8C41A7D9557743E46C8054750F3D851B3FD01D0835"
        );
    }

    #[test]
    fn signature_matches_every_test_vector() {
        for c in vectors() {
            let sig = sign(
                &c.secret_key,
                &c.timestamp,
                &c.request_id,
                &c.access_code,
                c.raw_body.as_bytes(),
            );
            assert_eq!(sig, c.signature, "{}", c.request_id);
        }
    }

    #[test]
    fn the_order_body_we_sign_is_the_second_vectors_body() {
        let c = &vectors()[1];
        let body = wire::OrderRequest {
            transaction_id: "ord_01JDEMO",
            package_info_list: vec![wire::PackageInfo {
                package_code: "JC016",
                count: 1,
                price: Some(75_000),
            }],
            amount: Some(75_000),
        };
        let bytes = serde_json::to_vec(&body).unwrap();
        assert_eq!(bytes, c.raw_body.as_bytes());
        assert_eq!(
            sign(
                &c.secret_key,
                &c.timestamp,
                &c.request_id,
                &c.access_code,
                &bytes
            ),
            c.signature
        );
    }

    fn reply(status: u16, body: &str) -> crate::vendors::http_client::RawResponse {
        crate::vendors::http_client::RawResponse {
            status: reqwest::StatusCode::from_u16(status).unwrap(),
            headers: reqwest::header::HeaderMap::new(),
            body: body.to_string().into(),
        }
    }

    /// The collection's order flow: orderNo, then 200010 while allocating, then the profile.
    #[test]
    fn documented_order_and_query_replies() {
        let placed: wire::OrderResponse = open_envelope(
            &reply(
                200,
                r#"{"success":true,"errorCode":"0","errorMsg":null,"obj":{"orderNo":"B2508091406000X","transactionId":"ref-1"}}"#,
            ),
            Effect::Money,
        )
        .unwrap();
        assert_eq!(placed.order_no.as_deref(), Some("B2508091406000X"));

        let not_ready = open_envelope::<wire::QueryResponse>(
            &reply(
                200,
                r#"{"success":false,"errorCode":"200010","errorMessage":"Profile is being downloaded for the order.","obj":null}"#,
            ),
            Effect::Read,
        )
        .unwrap_err();
        assert!(
            matches!(&not_ready, VendorError::Rejected { code, .. } if code == NOT_READY),
            "{not_ready:?}"
        );

        let ready: wire::QueryResponse = open_envelope(
            &reply(
                200,
                r#"{"success":true,"errorCode":"0","errorMsg":null,"obj":{"esimList":[{"esimTranNo":"25080914060005","orderNo":"B2508091406000X","iccid":"8985224528000135401","ac":"LPA:1$rsp-eu.simlessly.com$MATCHING123","qrCodeUrl":"https://p.qrsim.net/abc.png","smdpStatus":"RELEASED","esimStatus":"GOT_RESOURCE","totalVolume":1073741824,"orderUsage":0,"expiredTime":"2026-10-07T14:21:37+0000"}],"pager":{"pageSize":20,"pageNum":1,"total":1}}}"#,
            ),
            Effect::Read,
        )
        .unwrap();
        assert_eq!(ready.pager.as_ref().and_then(|p| p.total), Some(1));
        let state = order_state("B2508091406000X", &ready.esim_list).unwrap();
        assert_eq!(state.status, VendorOrderStatus::Completed);
        let p = &state.esims[0];
        assert_eq!(p.iccid, "8985224528000135401");
        assert_eq!(p.activation.smdp_address, "rsp-eu.simlessly.com");
        assert_eq!(p.activation.matching_id, "MATCHING123");
        assert_eq!(p.vendor_esim_ref.as_deref(), Some("25080914060005"));
        assert_eq!(p.status, crate::vendors::EsimStatus::Ready);
        assert_eq!(
            p.expires_at.map(|t| t.to_rfc3339()),
            Some("2026-10-07T14:21:37+00:00".to_string())
        );
    }

    #[test]
    fn garbled_or_failed_transport_replies_are_classified() {
        let html = "<html><body>502 Bad Gateway</body></html>";
        let e = open_envelope::<wire::OrderResponse>(&reply(502, html), Effect::Money);
        assert!(matches!(e, Err(VendorError::Unknown(_))));
        let e = open_envelope::<wire::OrderResponse>(&reply(200, "{not json"), Effect::Money);
        assert!(matches!(e, Err(VendorError::Unknown(_))));
        let e = open_envelope::<wire::BalanceResponse>(&reply(429, ""), Effect::Read);
        assert_eq!(e.unwrap_err().reject_kind(), Some(RejectKind::RateLimited));
        let e = open_envelope::<wire::OrderResponse>(&reply(418, "teapot"), Effect::Money);
        assert!(matches!(e, Err(VendorError::Unknown(_))));
        let e = open_envelope::<wire::BalanceResponse>(&reply(401, "no"), Effect::Read);
        assert_eq!(e.unwrap_err().reject_kind(), Some(RejectKind::Auth));
        // Success with an obj of the wrong shape is not a success we can use.
        let e = open_envelope::<wire::PackageList>(
            &reply(200, r#"{"success":true,"obj":{"packageList":"oops"}}"#),
            Effect::Read,
        );
        assert!(matches!(e, Err(VendorError::Unknown(_))));
    }

    #[test]
    fn every_documented_code_is_classified() {
        use CodeClass::*;
        use RejectKind::*;
        let table = [
            ("000001", Transient),
            ("000101", Reject(Auth)),
            ("000102", Reject(Auth)),
            ("000103", Reject(InvalidRequest)),
            ("000104", Reject(InvalidRequest)),
            ("000105", Reject(InvalidRequest)),
            ("000106", Reject(InvalidRequest)),
            ("000107", Reject(InvalidRequest)),
            ("101001", Reject(Auth)),
            ("101002", Reject(Auth)),
            ("101003", Reject(Auth)),
            ("200002", Reject(NotAllowed)),
            ("200005", Reject(PriceChanged)),
            ("200006", Reject(PriceChanged)),
            ("200007", Reject(InsufficientBalance)),
            ("200008", Reject(InvalidRequest)),
            ("200009", Reject(NotAllowed)),
            ("200010", Reject(NotAllowed)),
            ("200011", Reject(SoldOut)),
            ("310201", Reject(NotFound)),
            ("310211", Reject(NotFound)),
            ("310221", Reject(NotFound)),
            ("310231", Reject(NotFound)),
            ("310241", Reject(NotFound)),
            ("310243", Reject(NotFound)),
            ("310251", Reject(NotFound)),
            ("310272", Reject(NotFound)),
            ("310403", Reject(NotFound)),
            ("900001", Transient),
        ];
        for (code, want) in table {
            assert_eq!(classify(code), Some(want), "{code}");
        }
        assert_eq!(classify("123456"), None);
    }

    #[test]
    fn unknown_codes_are_unknown_only_where_money_may_move() {
        let e = envelope_error("987654", "new".into(), Effect::Money);
        assert!(matches!(e, VendorError::Unknown(_)));
        let e = envelope_error("987654", "new".into(), Effect::Read);
        assert_eq!(e.reject_kind(), Some(RejectKind::Other));
        let e = envelope_error("900001", "busy".into(), Effect::Read);
        assert!(matches!(e, VendorError::Unknown(_)));
        let e = envelope_error("200011", "no profiles".into(), Effect::Money);
        assert_eq!(e.reject_kind(), Some(RejectKind::SoldOut));
        assert!(e.nothing_bought());
    }
}
