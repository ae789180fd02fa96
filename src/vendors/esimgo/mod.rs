//! Adapter for eSIM Go (API v2.4): its facts and guesses are in `src/vendors/esimgo/README.md`,
//! the vendor's OpenAPI document is `src/vendors/esimgo/openapi-v2.4.yaml`.
//!
//! - Auth: `X-API-Key` on every call; no request signing.
//! - Base URL carries the version (`https://api.esim-go.com/v2.4`): paths are appended to it,
//!   never joined (`Url::join("orders")` would drop `/v2.4`).
//! - Money: decimal amounts in the organisation's currency, read once from `GET /organisation`.
//!   Data: catalogue `dataAmount` in decimal MB, usage quantities in bytes.
//! - Orders are synchronous (`assign: true` returns the eSIMs) but have **no idempotency key**:
//!   an unknown outcome is resolved only by reading the order list, never by ordering again
//!   (see [`EsimGo::reconcile`]). After a success the eSIMs are tagged with our order id as
//!   `customerRef`, which marks them as claimed for later reconciliations.
//! - Errors are `{"message": ...}` with an HTTP status and no machine code: [`classify`] is
//!   the one table that maps them.

use std::{collections::HashSet, sync::OnceLock};

use crate::vendors::CallbackHeaders;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::{Method, RequestBuilder, StatusCode, header};
use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{
    domain::{
        money::{Currency, Money},
        secret::{ExposeSecret, SecretString},
    },
    vendors::esimgo::credentials::EsimGoCredentials,
    vendors::{
        AdapterOptions, CallbackTrust, CancelOutcome, EsimProfile, EsimRef, Offer, OrderState,
        PlaceOrder, Placed, RejectKind, TopUp, Usage, Vendor, VendorError, VendorEvent, VendorId,
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

use wire::{CatalogueBundle, CataloguePage, EsimBundles, Order, OrderRequest, OrderRequestLine};

/// The one table: what an eSIM Go error status (and message, for 400) means for buying.
///
/// - 400 Bad Request / 401 Unauthorized / 403 Forbidden: refused before anything was bought.
/// - 404 / 405 (not in the docs): the vendor does not serve that path right now (a routing
///   change, a version prefix, an outage page). That says nothing about an order, so it is
///   unknown, never "not found".
/// - 429 "Rate limit exceeded": the docs do not say a throttled request was not processed,
///   so for an order it stays unknown.
/// - 500, 503 ("processing, come back later") and anything else: unknown.
pub fn classify(status: StatusCode, message: &str) -> VendorError {
    let code = status.as_u16().to_string();
    let (meaning, what) = match status.as_u16() {
        400 => (
            CodeMeaning::Refused(assumptions::kind_of_message(message)),
            String::new(),
        ),
        401 | 403 => (CodeMeaning::Refused(RejectKind::Auth), String::new()),
        404 | 405 => (
            CodeMeaning::MayHaveActed,
            format!("HTTP {code} from the path (no evidence about the order)"),
        ),
        429 => (
            CodeMeaning::MayHaveActed,
            "HTTP 429 (rate limited, outcome unknown)".to_string(),
        ),
        _ => (CodeMeaning::MayHaveActed, format!("HTTP {code}")),
    };
    // Every status is in the table above, so the call's effect never decides.
    support::refusal_or_unknown(Effect::Money, meaning, &what, &code, message)
}

pub struct EsimGo {
    api_key: SecretString,
    base_url: url::Url,
    http: VendorHttp,
    timeout: std::time::Duration,
    currency: OnceLock<Currency>,
}

impl EsimGo {
    pub fn new(creds: EsimGoCredentials, opts: &AdapterOptions) -> Self {
        EsimGo {
            api_key: creds.api_key,
            base_url: creds.base_url,
            http: VendorHttp::new(
                VendorId::EsimGo,
                opts.timeout,
                Some(assumptions::RATE_LIMIT_PER_SECOND),
            ),
            timeout: opts.timeout,
            currency: OnceLock::new(),
        }
    }

    /// `<base>/<segments…>`, each segment percent-encoded.
    fn url(&self, segments: &[&str]) -> Result<url::Url, VendorError> {
        let path: Vec<String> = segments.iter().map(|s| support::segment(s)).collect();
        support::join_url(&self.base_url, &path.join("/"))
    }

    fn request(&self, method: Method, url: url::Url) -> RequestBuilder {
        self.http
            .client()
            .request(method, url)
            .header("X-API-Key", self.api_key.expose_secret())
            // `/esims/assignments` answers CSV unless JSON is asked for.
            .header(header::ACCEPT, "application/json")
    }

    /// Sends and turns every non-2xx answer into a [`VendorError`] via [`classify`].
    async fn call(
        &self,
        operation: &'static str,
        request: RequestBuilder,
    ) -> Result<RawResponse, VendorError> {
        let resp = self.http.send(operation, request).await?;
        if resp.status.is_success() {
            return Ok(resp);
        }
        let message = resp
            .json::<wire::ErrorBody>()
            .ok()
            .and_then(|b| b.message)
            .unwrap_or_else(|| resp.snippet());
        Err(classify(resp.status, &message))
    }

    async fn get_json<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        url: url::Url,
    ) -> Result<T, VendorError> {
        let resp = self.call(operation, self.request(Method::GET, url)).await?;
        parse(operation, &resp)
    }

    /// Currency and balance from `GET /organisation`; caches the currency.
    async fn organisation(&self) -> Result<(Currency, Option<Decimal>), VendorError> {
        let resp = self
            .call(
                "balance",
                self.request(Method::GET, self.url(&["organisation"])?),
            )
            .await?;
        // No snippet: this body echoes the API key.
        let org: wire::OrganisationResponse = resp
            .json()
            .map_err(|e| VendorError::Unknown(format!("unexpected /organisation body: {e}")))?;
        let (currency, balance) = org.account().ok_or_else(|| {
            VendorError::Unknown("/organisation names no ISO 4217 currency".into())
        })?;
        let _ = self.currency.set(currency);
        Ok((currency, balance))
    }

    async fn currency(&self) -> Result<Currency, VendorError> {
        match self.currency.get() {
            Some(c) => Ok(*c),
            None => Ok(self.organisation().await?.0),
        }
    }

    async fn catalogue_page(&self, page: u32) -> Result<CataloguePage, VendorError> {
        let mut url = self.url(&["catalogue"])?;
        url.query_pairs_mut()
            .append_pair("page", &page.to_string())
            .append_pair("perPage", &assumptions::CATALOGUE_PER_PAGE.to_string());
        let value: Value = self.get_json("list_offers", url).await?;
        CataloguePage::parse(value)
            .ok_or_else(|| VendorError::Unknown("unexpected /catalogue body".into()))
    }

    async fn post_order(
        &self,
        operation: &'static str,
        body: &OrderRequest,
    ) -> Result<Order, VendorError> {
        let url = self.url(&["orders"])?;
        let resp = self
            .call(operation, self.request(Method::POST, url).json(body))
            .await?;
        let order: Order = parse(operation, &resp)?;
        if order.order_reference.is_none() {
            return Err(VendorError::Unknown(format!(
                "order answer without orderReference: {}",
                resp.snippet()
            )));
        }
        Ok(order)
    }

    /// Before buying with an expected cost: `POST /orders` `type: validate` (a documented
    /// dry run that answers the `total` and buys nothing). A total above expected ×
    /// quantity × (1 + tolerance) is refused as `PriceChanged`; the transaction is not
    /// sent. Any other failure of the dry run (timeout, dropped connection, 5xx, an answer
    /// we cannot read) is `Unreachable`: validate buys nothing and the transaction was
    /// never sent, so nothing was bought, and the next vendor may be tried.
    async fn check_price(&self, req: &PlaceOrder) -> Result<(), VendorError> {
        let Some(expected) = req.expected_unit_cost else {
            return Ok(());
        };
        let body = OrderRequest {
            kind: "validate",
            assign: true,
            order: vec![line(&req.sku, req.quantity, Vec::new())],
        };
        let answer = async {
            let url = self.url(&["orders"])?;
            let resp = self
                .call(
                    "validate_order",
                    self.request(Method::POST, url).json(&body),
                )
                .await?;
            parse::<Order>("validate_order", &resp)
        }
        .await;
        let order = match answer {
            Ok(order) => order,
            // A 400/401/403 to the dry run is the vendor's definite answer (balance, bundle).
            Err(e @ VendorError::Rejected { .. }) => return Err(e),
            Err(e) => {
                return Err(VendorError::Unreachable(format!(
                    "price check (type: validate) failed, no transaction sent: {e}"
                )));
            }
        };
        if order.valid == Some(false) {
            return Err(VendorError::rejected(
                RejectKind::InvalidRequest,
                "validate_invalid",
                "the price check (type: validate) answered valid: false",
            ));
        }
        let Some(total) = order.total else {
            return Err(VendorError::Unreachable(
                "price check (type: validate) answered no total; no transaction sent".into(),
            ));
        };
        let currency = order
            .currency
            .as_deref()
            .and_then(|c| c.trim().parse::<Currency>().ok())
            .unwrap_or(expected.currency);
        let quantity = Decimal::from(req.quantity);
        let limit = expected.amount
            * quantity
            * (Decimal::ONE + req.price_tolerance_percent / Decimal::ONE_HUNDRED);
        if currency != expected.currency || total > limit {
            return Err(VendorError::rejected(
                RejectKind::PriceChanged,
                "price_above_expected",
                format!(
                    "price check: {total} {currency} for {} × {}, expected {} {} each \
                     (+{}% tolerance); not bought",
                    req.quantity,
                    req.sku,
                    expected.amount,
                    expected.currency,
                    req.price_tolerance_percent
                ),
            ));
        }
        Ok(())
    }

    async fn get_order(&self, reference: &str) -> Result<Order, VendorError> {
        self.get_json("fetch_order", self.url(&["orders", reference])?)
            .await
    }

    /// Install details of an order's eSIMs (`GET /esims/assignments?reference=`).
    async fn assignments(&self, reference: &str) -> Result<Vec<EsimProfile>, VendorError> {
        let mut url = self.url(&["esims", "assignments"])?;
        url.query_pairs_mut().append_pair("reference", reference);
        let value: Value = self.get_json("fetch_order", url).await?;
        let list = wire::parse_assignments(value).map_err(|e| {
            VendorError::Unknown(format!("unreadable /esims/assignments body: {e}"))
        })?;
        Ok(list
            .iter()
            .filter_map(wire::EsimDetails::to_profile)
            .collect())
    }

    /// The order's state with its eSIMs, reading `/esims/assignments` when the order body
    /// lacks them. A failed follow-up leaves the order pending (the reference is known, so
    /// polling finishes it) rather than failing a purchase that happened.
    async fn state_of(&self, order: &Order) -> OrderState {
        let mut esims = order.profiles();
        let missing = (esims.len() as u32) < order.expected_esims().max(1);
        if let (true, Some(reference)) = (missing, order.order_reference.as_deref()) {
            match self.assignments(reference).await {
                Ok(found) => {
                    let known: HashSet<String> = esims.iter().map(|e| e.iccid.clone()).collect();
                    esims.extend(found.into_iter().filter(|e| !known.contains(&e.iccid)));
                }
                Err(e) => {
                    tracing::warn!(vendor = "esimgo", error = %e, "reading eSIM assignments failed")
                }
            }
        }
        order.to_state(esims)
    }

    /// Tags eSIMs with our order id (`PUT /esims`). Best effort: the purchase stands anyway.
    async fn tag(&self, iccids: &[String], order_id: &str) {
        for iccid in iccids {
            let body = wire::UpdateEsim {
                iccid: iccid.clone(),
                customer_ref: order_id.to_string(),
            };
            let result = match self.url(&["esims"]) {
                Ok(url) => {
                    self.call("tag_esim", self.request(Method::PUT, url).json(&body))
                        .await
                }
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                tracing::warn!(vendor = "esimgo", order_id, error = %e, "tagging the eSIM with customerRef failed");
            }
        }
    }

    /// `GET /esims?filterBy=<column>&filter=<value>`, all pages. Any entry that does not
    /// parse, or a listing that never ends, makes the whole answer `Unknown`.
    async fn esims_where(
        &self,
        column: &str,
        value: &str,
    ) -> Result<Vec<wire::EsimListEntry>, VendorError> {
        let pages = support::collect_pages(
            1,
            assumptions::MAX_PAGES,
            |page| async move {
                let mut url = self.url(&["esims"])?;
                url.query_pairs_mut()
                    .append_pair("page", &page.to_string())
                    .append_pair("perPage", &assumptions::LIST_PAGE_SIZE.to_string())
                    .append_pair("filterBy", column)
                    .append_pair("filter", value);
                let v: Value = self.get_json("fetch_order", url).await?;
                wire::parse_esim_list(v)
                    .map_err(|e| VendorError::Unknown(format!("unreadable /esims listing: {e}")))
            },
            next_page,
        )
        .await?;
        if !pages.ended {
            return Err(VendorError::Unknown(
                "/esims listing did not end within the page limit".into(),
            ));
        }
        Ok(pages.items)
    }

    /// `GET /orders?createdAt=gte:…&createdAt=lte:…&includeIccids=true`, all pages. Any entry
    /// that does not parse, or a listing that never ends, makes the whole answer `Unknown`.
    async fn orders_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Order>, VendorError> {
        let pages = support::collect_pages(
            1,
            assumptions::MAX_PAGES,
            |page| async move {
                let mut url = self.url(&["orders"])?;
                url.query_pairs_mut()
                    .append_pair("createdAt", &format!("gte:{}", api_time(from)))
                    .append_pair("createdAt", &format!("lte:{}", api_time(to)))
                    .append_pair("includeIccids", "true")
                    .append_pair("page", &page.to_string())
                    .append_pair("limit", &assumptions::LIST_PAGE_SIZE.to_string());
                let v: Value = self.get_json("fetch_order", url).await?;
                wire::parse_order_list(v)
                    .map_err(|e| VendorError::Unknown(format!("unreadable /orders listing: {e}")))
            },
            next_page,
        )
        .await?;
        if !pages.ended {
            return Err(VendorError::Unknown(
                "/orders listing did not end within the page limit".into(),
            ));
        }
        let mut out = pages.items;
        // The vendor filters already; this guards against one that ignores the filter.
        out.retain(|o| o.created_date.is_none_or(|t| from <= t && t <= to));
        Ok(out)
    }

    /// Whether any eSIM of the order is tagged (`customerRef`) for another order of ours.
    async fn claimed_by_other(&self, order: &Order, order_id: &str) -> Result<bool, VendorError> {
        for iccid in order.iccids() {
            let entries = self.esims_where("iccid", &iccid).await?;
            let other = entries.iter().any(|e| {
                e.iccid.as_deref() == Some(iccid.as_str())
                    && e.customer_ref
                        .as_deref()
                        .is_some_and(|r| !r.trim().is_empty() && r != order_id)
            });
            if other {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Finds the order an unknown-outcome placement created, without ever ordering again.
    /// Every input comes from the attempt row (`r`), none from process memory:
    /// 1. eSIMs tagged with our order id → the one order that holds them;
    /// 2. otherwise orders created in [placed_at − 2 min, now] for the attempt's bundle and
    ///    quantity, minus those holding an ICCID that another order of ours owns (in our
    ///    database, `r.owned_iccids`, or tagged at the vendor): exactly one → that order
    ///    (claimed by tagging it); none → `Rejected{NotFound}`, but only once no request can
    ///    still be in flight and only from complete, fully parsed listings; several →
    ///    `Unknown` (an operator must decide).
    ///
    /// Any lookup that fails, answers 404, or holds an entry we cannot read → `Unknown`.
    async fn reconcile(&self, r: &VendorOrderRef) -> Result<OrderState, VendorError> {
        let now = Utc::now();
        let from = r.placed_at
            - chrono::Duration::from_std(assumptions::WINDOW_BEFORE).unwrap_or_default();
        // The filter has millisecond precision: a bound of "now" truncated would miss an
        // order created in this very millisecond.
        let orders = self
            .orders_between(from, now + chrono::Duration::seconds(1))
            .await?;

        let tagged: HashSet<String> = self
            .esims_where("customerRef", &r.order_id)
            .await?
            .into_iter()
            .filter(|e| e.customer_ref.as_deref() == Some(r.order_id.as_str()))
            .filter_map(|e| e.iccid)
            .collect();
        if !tagged.is_empty() {
            let holding: Vec<&Order> = orders
                .iter()
                .filter(|o| o.iccids().iter().any(|i| tagged.contains(i)))
                .collect();
            return match holding.as_slice() {
                [order] => Ok(self.state_of(order).await),
                [] => Err(VendorError::Unknown(format!(
                    "eSIMs tagged {} exist but their order is outside the search window",
                    r.order_id
                ))),
                several => Err(VendorError::Unknown(format!(
                    "eSIMs tagged {} appear in {} orders (needs an operator)",
                    r.order_id,
                    several.len()
                ))),
            };
        }

        let Some(sku) = r.sku.as_deref().filter(|s| !s.is_empty()) else {
            return Err(VendorError::Unknown(format!(
                "the attempt of {} has no recorded bundle: its order cannot be told apart",
                r.order_id
            )));
        };
        let owned: HashSet<&str> = r.owned_iccids.iter().map(String::as_str).collect();
        let mut candidates = Vec::new();
        for order in orders.iter().filter(|o| {
            matches_attempt(o, sku, r.quantity.max(1))
                && !o.iccids().iter().any(|i| owned.contains(i.as_str()))
        }) {
            if !self.claimed_by_other(order, &r.order_id).await? {
                candidates.push(order);
            }
        }
        match candidates.as_slice() {
            [order] => {
                self.tag(&order.iccids(), &r.order_id).await;
                Ok(self.state_of(order).await)
            }
            [] if self.settled(r.placed_at, now) => Err(VendorError::rejected(
                RejectKind::NotFound,
                "no_matching_order",
                format!("no eSIM Go order matches {} in its time window", r.order_id),
            )),
            [] => Err(VendorError::Unknown(
                "no matching order yet; the request may still be in flight".into(),
            )),
            several => Err(VendorError::Unknown(format!(
                "ambiguous: {} unclaimed eSIM Go orders match {} (needs an operator)",
                several.len(),
                r.order_id
            ))),
        }
    }

    fn settled(&self, placed_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        let wait = chrono::Duration::from_std(self.timeout + assumptions::SETTLE_MARGIN)
            .unwrap_or_else(|_| chrono::Duration::minutes(5));
        now - placed_at >= wait
    }

    /// The bundle an order bought: from the order when its reference is known, else the
    /// eSIM's first-assigned bundle (top-ups come later).
    async fn bundle_to_cancel(
        &self,
        order: Option<&Order>,
        iccid: &str,
    ) -> Result<String, VendorError> {
        if let Some(item) = order.and_then(|o| o.order.iter().find_map(|l| l.item.clone())) {
            return Ok(item);
        }
        let bundles = self.esim_bundles(iccid, "cancel").await?;
        bundles
            .bundles
            .iter()
            .filter_map(|b| {
                let first = b
                    .assignments
                    .iter()
                    .filter_map(|a| a.assignment_date_time)
                    .min();
                Some((first, b.name.clone()?))
            })
            .min()
            .map(|(_, name)| name)
            .ok_or_else(|| {
                VendorError::rejected(RejectKind::NotFound, "no_bundle", "no bundle on this eSIM")
            })
    }

    async fn esim_bundles(
        &self,
        iccid: &str,
        operation: &'static str,
    ) -> Result<EsimBundles, VendorError> {
        let mut url = self.url(&["esims", iccid, "bundles"])?;
        url.query_pairs_mut()
            .append_pair("includeUsed", "true")
            .append_pair("limit", "200");
        self.get_json(operation, url).await
    }
}

/// Does this listed order look like what the attempt asked for: one line, same bundle, same
/// quantity, not failed?
fn matches_attempt(order: &Order, sku: &str, quantity: u32) -> bool {
    order.status() != VendorOrderStatus::Failed
        && order.order.len() == 1
        && order.order[0].item.as_deref() == Some(sku)
        && order.order[0].quantity == Some(quantity)
}

/// The stop rule of `GET /orders` and `GET /esims`: the last page by `pageCount` when the
/// vendor states it, else by a short page.
fn next_page<T>(page: &u32, list: wire::Listing<T>, all: &mut Vec<T>) -> Option<u32> {
    let last = list.is_last_page(*page, list.items.len() as u32, assumptions::LIST_PAGE_SIZE);
    all.extend(list.items);
    (!last).then_some(page + 1)
}

/// `2024-03-01T00:00:00.000Z`, the form the `createdAt` filter documents.
fn api_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// A 2xx body that does not parse: the vendor may have acted, so the outcome is unknown.
fn parse<T: DeserializeOwned>(operation: &str, resp: &RawResponse) -> Result<T, VendorError> {
    resp.json().map_err(|e| {
        VendorError::Unknown(format!(
            "unexpected {operation} answer ({e}): {}",
            resp.snippet()
        ))
    })
}

fn line(sku: &str, quantity: u32, iccids: Vec<String>) -> OrderRequestLine {
    OrderRequestLine {
        kind: "bundle",
        item: sku.to_string(),
        quantity,
        iccids,
        allow_reassign: None,
    }
}

/// Catalogue pages in flight at once during a sync. The documented 10 requests/s is what
/// paces a sync (every request waits for the rate limiter, which also keeps purchases
/// ahead of them); reading one page at a time would add each page's round trip and
/// parsing to that, a quarter more on a busy 2-core machine. Five cover a page's latency
/// up to five times the limiter's interval.
const CATALOGUE_PAGES_AHEAD: u32 = 5;

#[async_trait]
impl Vendor for EsimGo {
    fn id(&self) -> VendorId {
        VendorId::EsimGo
    }

    /// No idempotency key exists on `POST /orders`.
    fn place_is_idempotent(&self) -> bool {
        false
    }

    async fn list_offers(&self) -> Result<Vec<Offer>, VendorError> {
        let currency = self.currency().await?;
        let mut seen = HashSet::new();
        // Last page: by `pageCount`, else a short page; an empty page or one with nothing new
        // (a vendor that ignores `page`) ends it too. The page cap ends it without an error.
        let pages = support::collect_pages_ahead(
            1,
            assumptions::MAX_PAGES,
            CATALOGUE_PAGES_AHEAD,
            |page| self.catalogue_page(page),
            |page, p: CataloguePage, offers| {
                let count = p.bundles.len() as u32;
                let mut fresh = 0;
                for raw in p.bundles {
                    match serde_json::from_value::<CatalogueBundle>(raw.clone()) {
                        Ok(b) if seen.insert(b.name.clone()) => {
                            fresh += 1;
                            offers.extend(b.to_offer(currency, raw));
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(vendor = "esimgo", error = %e, "skipping unreadable catalogue bundle")
                        }
                    }
                }
                let last = match p.page_count {
                    Some(pages) => *page >= pages,
                    None => count < assumptions::CATALOGUE_PER_PAGE,
                };
                (!(last || count == 0 || fresh == 0)).then_some(page + 1)
            },
        )
        .await?;
        Ok(pages.items)
    }

    async fn place_order(&self, req: &PlaceOrder) -> Result<Placed, VendorError> {
        self.check_price(req).await?;
        let body = OrderRequest {
            kind: "transaction",
            assign: true,
            order: vec![line(&req.sku, req.quantity, Vec::new())],
        };
        let order = self.post_order("place_order", &body).await?;
        let state = self.state_of(&order).await;
        self.tag(&order.iccids(), &req.order_id).await;
        Ok(state)
    }

    async fn fetch_order(&self, r: &VendorOrderRef) -> Result<OrderState, VendorError> {
        match r.vendor_reference.as_deref() {
            Some(reference) => {
                let order = self.get_order(reference).await?;
                Ok(self.state_of(&order).await)
            }
            None => self.reconcile(r).await,
        }
    }

    /// `GET /esims/{iccid}/compatible/{bundle}` (OpenAPI v2.4): eSIM Go buys from several
    /// networks, and a bundle from another one cannot be applied to this eSIM.
    async fn topup_compatible(&self, esim: &EsimRef, sku: &str) -> Result<bool, VendorError> {
        #[derive(serde::Deserialize)]
        struct Compatibility {
            compatible: bool,
        }
        let url = self.url(&["esims", &esim.iccid, "compatible", sku])?;
        let answer: Compatibility = self.get_json("topup_compatible", url).await?;
        Ok(answer.compatible)
    }

    async fn topup(&self, req: &TopUp) -> Result<Placed, VendorError> {
        let body = OrderRequest {
            kind: "transaction",
            assign: true,
            order: vec![line(&req.sku, 1, vec![req.esim.iccid.clone()])],
        };
        let order = self.post_order("topup", &body).await?;
        Ok(self.state_of(&order).await)
    }

    async fn cancel(
        &self,
        r: &VendorOrderRef,
        esims: &[EsimRef],
    ) -> Result<CancelOutcome, VendorError> {
        let order = match r.vendor_reference.as_deref() {
            Some(reference) => Some(self.get_order(reference).await?),
            None => None,
        };
        let iccids: Vec<String> = if esims.is_empty() {
            order.as_ref().map(Order::iccids).unwrap_or_default()
        } else {
            esims.iter().map(|e| e.iccid.clone()).collect()
        };
        let Some(first) = iccids.first() else {
            return Err(VendorError::rejected(
                RejectKind::NotFound,
                "no_esims",
                "no eSIM to cancel",
            ));
        };
        let bundle = self.bundle_to_cancel(order.as_ref(), first).await?;
        for iccid in &iccids {
            let mut url = self.url(&["esims", iccid, "bundles", &bundle])?;
            url.query_pairs_mut()
                .append_pair("type", "transaction")
                .append_pair("refundToBalance", "true");
            let resp = self
                .call("cancel", self.request(Method::DELETE, url))
                .await?;
            let _: wire::RevokeResponse = parse("cancel", &resp)?;
        }
        let amount = refund_amount(order.as_ref(), &bundle, iccids.len(), self.currency.get());
        Ok(CancelOutcome::Refunded { amount })
    }

    async fn usage(&self, esim: &EsimRef) -> Result<Usage, VendorError> {
        self.esim_bundles(&esim.iccid, "usage")
            .await?
            .to_usage()
            .ok_or_else(|| {
                VendorError::rejected(RejectKind::NotFound, "no_bundle", "no bundle on this eSIM")
            })
    }

    async fn balance(&self) -> Result<Money, VendorError> {
        let (currency, balance) = self.organisation().await?;
        let balance = balance
            .ok_or_else(|| VendorError::Unknown("/organisation states no balance".into()))?;
        Ok(Money::new(balance, currency))
    }

    fn verify_callback(
        &self,
        headers: &CallbackHeaders,
        raw_body: &[u8],
    ) -> Result<CallbackTrust, VendorError> {
        webhook::verify(self.api_key.expose_secret(), headers, raw_body)?;
        Ok(CallbackTrust::Verified)
    }

    fn parse_callback(
        &self,
        _headers: &CallbackHeaders,
        raw_body: &[u8],
    ) -> Result<Vec<VendorEvent>, VendorError> {
        webhook::parse(raw_body)
    }
}

/// The refund is the bundle's unit price per revoked eSIM, when the order states it.
fn refund_amount(
    order: Option<&Order>,
    bundle: &str,
    count: usize,
    cached: Option<&Currency>,
) -> Option<Money> {
    let order = order?;
    let line = order
        .order
        .iter()
        .find(|l| l.item.as_deref() == Some(bundle))?;
    let unit = line.price_per_unit?;
    let currency = order
        .currency
        .as_deref()
        .and_then(|c| c.parse().ok())
        .or(cached.copied())?;
    Some(Money::new(unit * Decimal::from(count as u64), currency))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_table() {
        let kind = |s: u16, m: &str| classify(StatusCode::from_u16(s).unwrap(), m).reject_kind();
        assert_eq!(
            kind(400, "Insufficient balance to complete this order"),
            Some(RejectKind::InsufficientBalance)
        );
        assert_eq!(
            kind(400, "Bundle is out of stock"),
            Some(RejectKind::SoldOut)
        );
        assert_eq!(
            kind(
                400,
                "Invalid bundle: esim_X is not available to your organisation"
            ),
            Some(RejectKind::NotFound)
        );
        assert_eq!(
            kind(400, "Bundle assignment has started and cannot be refunded"),
            Some(RejectKind::NotAllowed)
        );
        assert_eq!(
            kind(400, "Quantity must match the number of ICCIDs"),
            Some(RejectKind::InvalidRequest)
        );
        assert_eq!(kind(401, "Unauthorized"), Some(RejectKind::Auth));
        assert_eq!(kind(403, "Forbidden"), Some(RejectKind::Auth));
        for s in [404, 405, 429, 500, 502, 503, 504, 409] {
            let e = classify(StatusCode::from_u16(s).unwrap(), "x");
            assert!(matches!(e, VendorError::Unknown(_)), "{s}: {e:?}");
        }
        assert!(classify(StatusCode::BAD_REQUEST, "x").nothing_bought());
    }

    #[test]
    fn coverage_is_read_from_descriptions() {
        use assumptions::coverage_from_description as c;
        assert_eq!(
            c("eSIM, 1GB, 7 Days, Isle of Man, Unthrottled").as_deref(),
            Some("Isle of Man")
        );
        assert_eq!(
            c("eSIM, 1GB, 7 Days, Europe, V2").as_deref(),
            Some("Europe")
        );
        assert_eq!(c("eSIM, 1GB, 1 Day, Asia").as_deref(), Some("Asia"));
        assert_eq!(c("eSIM, 1GB, 7 Days").as_deref(), None);
        assert_eq!(c("Europe pack").as_deref(), None);
    }

    #[test]
    fn urls_keep_the_version_prefix_and_encode_segments() {
        for base in [
            "https://api.esim-go.com/v2.4",
            "https://api.esim-go.com/v2.4/",
        ] {
            let g = EsimGo::new(
                EsimGoCredentials {
                    api_key: SecretString::from("k"),
                    base_url: base.parse().unwrap(),
                },
                &AdapterOptions::default(),
            );
            assert_eq!(
                g.url(&["esims", "89", "bundles", "a b/c"])
                    .unwrap()
                    .as_str(),
                "https://api.esim-go.com/v2.4/esims/89/bundles/a%20b%2Fc"
            );
        }
    }

    #[test]
    fn order_list_matching_uses_bundle_and_quantity() {
        let o: Order = serde_json::from_str(wire::tests::CAPTURED_ORDER).unwrap();
        assert!(matches_attempt(&o, "esim_1GB_7D_GB_V2", 1));
        assert!(!matches_attempt(&o, "esim_1GB_7D_GB_V2", 2));
        assert!(!matches_attempt(&o, "esim_3GB_7D_GB_V2", 1));
        assert_eq!(
            api_time(wire::parse_time("2024-03-01T00:00:00Z").unwrap()),
            "2024-03-01T00:00:00.000Z"
        );
    }

    #[test]
    fn refund_amount_comes_from_the_order_line() {
        let o: Order = serde_json::from_str(wire::tests::CAPTURED_ORDER).unwrap();
        let m = refund_amount(Some(&o), "esim_1GB_7D_GB_V2", 1, None).unwrap();
        assert_eq!(m, Money::new("1.36".parse().unwrap(), Currency::USD));
        assert_eq!(refund_amount(None, "x", 1, None), None);
    }
}
