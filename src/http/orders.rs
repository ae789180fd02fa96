//! `/v1/orders`: buy plans, read and cancel orders.

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    AppState,
    domain::scenario::{TestScenario, UnknownScenario},
    domain::{
        ids::{IdempotencyKey, OrderId, PlanId, TextError, check_text},
        money::Money,
    },
    http::error::{ApiError, ApiResult, ErrorBody},
    http::{
        auth::Storefront,
        extract::{ApiJson, ApiPath, ApiQuery},
        paging::{self, Cursor},
    },
    ordering::{
        Ctx, OrderingError, cancel,
        place::{self, NewOrder},
        view::{self, OrderView, order_view},
    },
    store::{
        self,
        orders::{OrderFilter, StoredAnswer},
    },
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_order, list_orders))
        .routes(routes!(get_order))
        .routes(routes!(cancel_order))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrder {
    /// A plan id from `GET /v1/plans`; text that is not a plan id's shape is a 404.
    #[schema(
        example = "jp-10gb-7d",
        pattern = "^[a-z0-9]+(-[a-z0-9]+)*$",
        min_length = 1,
        max_length = 64
    )]
    pub plan_id: String,
    /// 1–10 eSIMs of the plan (default 1).
    #[serde(default = "one", deserialize_with = "whole_number")]
    #[schema(minimum = 1, maximum = 10, default = 1)]
    pub quantity: u32,
    /// Your own reference (1–255 characters, no control characters), searchable with
    /// `GET /v1/orders?reference=`.
    #[schema(
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$",
        min_length = 1,
        max_length = 255
    )]
    pub reference: Option<String>,
    /// One address on one line (`local@domain.tld`), at most 254 characters.
    #[schema(
        pattern = "^[^@\\s\\x00-\\x1f\\x7f-\\x9f]+@[^@\\s\\x00-\\x1f\\x7f-\\x9f.][^@\\s\\x00-\\x1f\\x7f-\\x9f]*\\.[^@\\s\\x00-\\x1f\\x7f-\\x9f]*$",
        max_length = 254,
        example = "traveller@example.com"
    )]
    pub customer_email: Option<String>,
    /// Refuse (409 `price_changed`) if the total price is above this or in another currency.
    pub max_price: Option<PriceLimit>,
    /// Test mode only (`sk_test_` keys; `400 test_scenario_not_allowed` with a live key):
    /// make this order meet a scenario at the simulators, scoped to this order alone. An
    /// unknown name is `400 invalid_test_scenario` listing the allowed ones. Scenario orders
    /// are only routed to vendors whose order call carries our order id (not eSIM Go).
    ///
    /// | scenario | what the order does |
    /// |---|---|
    /// | `sold_out_then_fallback` | the cheapest vendor answers sold out; bought from the next cheapest (`completed`, two attempts); with a single vendor it fails like `all_sold_out` |
    /// | `all_sold_out` | every vendor answers sold out: `failed`, `failure.code` `sold_out`, not charged, `order.failed` |
    /// | `vendor_timeout_then_reconciled` | the vendor takes the order but answers after the gateway's timeout: `pending` (never bought elsewhere) until reconciliation finds it, then `completed` |
    /// | `slow_async_provisioning` | bought from a vendor that delivers asynchronously and takes `TEST_SCENARIO_DELAY` (default 60 s): `provisioning` until its callback (or the gateway's poll) brings the eSIM, then `completed`. Only vendors that deliver asynchronously (the eSIM Access simulator) are tried: pick a plan it sells |
    /// | `usage_80_percent` | completes; `TEST_SCENARIO_DELAY` later the vendor reports 80% used by callback: usage shows it and `esim.usage_threshold` (80) is sent. Only vendors that push usage (the eSIMfx simulator) are tried: pick a plan it sells |
    /// | `callback_lost` | the vendor never delivers its callbacks for this order: an asynchronous delivery completes by polling |
    /// | `cancel_refused` | completes, but `POST /v1/orders/{id}/cancel` answers `409 order_not_cancellable` |
    #[schema(example = "sold_out_then_fallback", pattern = "^[a-z0-9_]{1,64}$")]
    pub test_scenario: Option<String>,
}

/// `max_price`: a non-negative decimal string and an ISO 4217 code, nothing else.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceLimit {
    #[serde(with = "rust_decimal::serde::str")]
    #[schema(value_type = String, pattern = "^[0-9]{1,15}(\\.[0-9]{1,10})?$", example = "14.90")]
    pub amount: rust_decimal::Decimal,
    #[schema(value_type = String, pattern = "^[A-Z]{3}$", example = "USD")]
    pub currency: crate::domain::money::Currency,
}

fn one() -> u32 {
    1
}

/// A JSON Schema `integer` is any number with a zero fraction, so `2.0` is 2; values beyond
/// `u32` saturate (and fail the 1–10 check with its own message).
fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    if let Some(u) = n.as_u64() {
        return Ok(u32::try_from(u).unwrap_or(u32::MAX));
    }
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f >= 0.0 => Ok(if f > f64::from(u32::MAX) {
            u32::MAX
        } else {
            f as u32
        }),
        _ => Err(serde::de::Error::custom(
            "quantity: expected a whole number from 1 to 10",
        )),
    }
}

pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

pub fn idempotency_key(headers: &HeaderMap) -> ApiResult<String> {
    let mut values = headers.get_all(IDEMPOTENCY_HEADER).iter();
    let raw = values.next().ok_or_else(|| {
        ApiError::bad_request(
            "idempotency_key_required",
            "the Idempotency-Key header is required (1–255 characters)",
        )
    })?;
    let key = raw.to_str().ok().map(str::trim).unwrap_or("");
    if values.next().is_some() {
        return Err(ApiError::bad_request(
            "invalid_idempotency_key",
            "send one Idempotency-Key header",
        ));
    }
    IdempotencyKey::parse(key)
        .map(IdempotencyKey::into_string)
        .map_err(|_| {
            ApiError::bad_request(
                "invalid_idempotency_key",
                "Idempotency-Key must be 1–255 visible ASCII characters",
            )
        })
}

fn validate(req: CreateOrder) -> ApiResult<NewOrder> {
    if !(1..=10).contains(&req.quantity) {
        return Err(ApiError::unprocessable(
            "invalid_quantity",
            "quantity must be 1–10",
        ));
    }
    let plan_id = body_plan_id(&req.plan_id)?;
    if let Some(m) = &req.max_price {
        // Same bound as the documented pattern: 15 integer digits, 10 decimals.
        if m.amount.scale() > 10
            || m.amount.abs() >= rust_decimal::Decimal::from(1_000_000_000_000_000i64)
        {
            return Err(ApiError::unprocessable(
                "invalid_max_price",
                "max_price: at most 15 digits before and 10 after the point",
            ));
        }
    }
    if let Some(reference) = &req.reference {
        check_text(reference, 255).map_err(|e| {
            ApiError::unprocessable("invalid_reference", format!("reference {e} (1–255)"))
        })?;
    }
    if let Some(email) = &req.customer_email {
        if !is_email(email) {
            return Err(ApiError::unprocessable(
                "invalid_customer_email",
                "customer_email is not an email address",
            ));
        }
    }
    if req
        .max_price
        .as_ref()
        .is_some_and(|m| m.amount.is_sign_negative())
    {
        return Err(ApiError::unprocessable(
            "invalid_max_price",
            "max_price must not be negative",
        ));
    }
    Ok(NewOrder {
        plan_id,
        quantity: req.quantity,
        reference: req.reference,
        customer_email: req.customer_email,
        max_price: req.max_price.map(|m| Money::new(m.amount, m.currency)),
        test_scenario: None,
    })
}

/// `test_scenario` as the storefront's mode allows it.
fn test_scenario(name: Option<&str>, livemode: bool) -> ApiResult<Option<TestScenario>> {
    let Some(name) = name else {
        return Ok(None);
    };
    if livemode {
        return Err(ApiError::bad_request(
            "test_scenario_not_allowed",
            "test_scenario is only accepted with a test key (sk_test_…)",
        ));
    }
    name.parse()
        .map(Some)
        .map_err(|e: UnknownScenario| ApiError::bad_request("invalid_test_scenario", e.to_string()))
}

/// `local@domain.tld`, one line (it may end up in a mail header), at most 254 characters.
fn is_email(email: &str) -> bool {
    email.chars().count() <= 254
        && !email.chars().any(|c| c.is_control() || c.is_whitespace())
        && email.split_once('@').is_some_and(|(l, d)| {
            !l.is_empty() && d.contains('.') && !d.starts_with('.') && !d.contains('@')
        })
}

/// A `plan_id` in a request body: empty or control characters are invalid (422); any other
/// text that is not a plan id's shape cannot be on sale (404).
pub fn body_plan_id(raw: &str) -> ApiResult<String> {
    match PlanId::parse(raw) {
        Ok(id) => Ok(id.into_string()),
        Err(TextError::Empty | TextError::Control) => Err(ApiError::unprocessable(
            "invalid_plan_id",
            "plan_id is required and must not contain control characters",
        )),
        Err(_) => Err(crate::http::plans::plan_not_found()),
    }
}

/// An order id from a path: anything not shaped like ours cannot exist.
pub fn path_order_id(raw: &str) -> ApiResult<OrderId> {
    OrderId::parse(raw).map_err(|_| order_not_found())
}

/// A stored idempotent answer, sent as it was first sent.
pub fn answer_response(answer: StoredAnswer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::CREATED);
    (status, Json(answer.body)).into_response()
}

/// Buy a plan from the cheapest vendor that has it, exactly once per Idempotency-Key.
///
/// The same key with the same body replays the first answer (same status, same body) and
/// never buys twice, even under concurrent retries; with a different body it is a 409.
/// A `failed` order (every vendor refused) is not charged.
#[utoipa::path(
    post, path = "/v1/orders", tag = "storefront",
    request_body = CreateOrder,
    params(("Idempotency-Key" = String, Header, pattern = "^[!-~]{1,255}$", description = "1–255 visible ASCII characters, unique per purchase")),
    security(("storefront_key" = [])),
    responses(
        (status = 201, description = "Accepted: `completed`, `provisioning` (eSIMs follow) or `failed`", body = OrderView),
        (status = 400, description = "Missing or invalid Idempotency-Key, malformed JSON, `test_scenario_not_allowed` (a test scenario with a live key) or `invalid_test_scenario`", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "No such plan on sale", body = ErrorBody),
        (status = 409, description = "`idempotency_key_reused`, `idempotency_key_in_use` or `price_changed`", body = ErrorBody),
        (status = 413, description = "Body over 256 KiB", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 422, description = "Invalid field", body = ErrorBody),
    )
)]
async fn create_order(
    sf: Storefront,
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<CreateOrder>,
) -> ApiResult<Response> {
    let key = idempotency_key(&headers)?;
    let scenario = test_scenario(req.test_scenario.as_deref(), sf.livemode)?;
    let mut req = validate(req)?;
    req.test_scenario = scenario;
    let ctx = Ctx::from_state(&state);
    Ok(answer_response(
        place::place_new(&ctx, sf.owner(), &key, req).await?,
    ))
}

pub fn order_not_found() -> ApiError {
    OrderingError::OrderNotFound.into()
}

/// One order with its eSIMs.
#[utoipa::path(
    get, path = "/v1/orders/{order_id}", tag = "storefront",
    params(("order_id" = String, Path, pattern = "^ord_[0-9A-HJKMNP-TV-Z]{26}$")),
    security(("storefront_key" = [])),
    responses(
        (status = 200, body = OrderView),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
async fn get_order(
    sf: Storefront,
    State(state): State<AppState>,
    ApiPath(order_id): ApiPath<String>,
) -> ApiResult<Json<OrderView>> {
    let order_id = path_order_id(&order_id)?;
    let ctx = Ctx::from_state(&state);
    Ok(Json(
        view::storefront_order(&ctx, sf.owner(), order_id.as_str()).await?,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct OrderListQuery {
    #[param(value_type = Option<OrderStatus>)]
    pub status: Option<String>,
    /// Exact match on the order's `reference`.
    #[param(pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$", max_length = 255)]
    pub reference: Option<String>,
    /// 1–200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page (opaque).
    #[param(pattern = "^[A-Za-z0-9_-]+$", min_length = 1, max_length = 200)]
    pub cursor: Option<String>,
}

/// An order's status.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // Documents the accepted values of a string filter.
pub enum OrderStatus {
    Pending,
    Provisioning,
    Completed,
    Failed,
    Cancelled,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OrderList {
    pub data: Vec<OrderView>,
    pub next_cursor: Option<String>,
}

pub fn parse_order_filter(q: OrderListQuery) -> ApiResult<OrderFilter> {
    let status = match q.status.as_deref() {
        None => None,
        Some(s @ ("pending" | "provisioning" | "completed" | "failed" | "cancelled")) => {
            Some(s.to_string())
        }
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_parameter",
                "status: expected pending, provisioning, completed, failed or cancelled",
            ));
        }
    };
    let limit = paging::limit(q.limit)?;
    if q.reference
        .as_ref()
        .is_some_and(|r| r.chars().count() > 255)
    {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            "reference: at most 255 characters",
        ));
    }
    let before = paging::read_cursor(q.cursor.as_deref())?;
    Ok(OrderFilter {
        storefront_id: None,
        livemode: None,
        status,
        reference: q.reference,
        attention: None,
        before,
        limit,
    })
}

/// The position after `o` in a newest-first order list.
pub fn order_cursor(o: &store::orders::OrderRow) -> String {
    (o.created_at, o.id.clone()).encode()
}

/// The storefront's orders, newest first.
#[utoipa::path(
    get, path = "/v1/orders", tag = "storefront",
    params(OrderListQuery),
    security(("storefront_key" = [])),
    responses(
        (status = 200, body = OrderList),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
    )
)]
async fn list_orders(
    sf: Storefront,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<OrderListQuery>,
) -> ApiResult<Json<OrderList>> {
    let mut filter = parse_order_filter(q)?;
    filter.livemode = Some(sf.livemode);
    filter.storefront_id = Some(sf.id);
    let rows = store::orders::list(&state.pool, &filter).await?;
    let page = paging::page(rows, filter.limit, order_cursor);
    let ids: Vec<String> = page.data.iter().map(|o| o.id.clone()).collect();
    let esims = store::esims::for_orders(&state.pool, &ids).await?;
    Ok(Json(OrderList {
        data: page.data.iter().map(|o| order_view(o, &esims)).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Cancel an unused order where its vendor allows it (refund to our balance).
#[utoipa::path(
    post, path = "/v1/orders/{order_id}/cancel", tag = "storefront",
    params(("order_id" = String, Path, pattern = "^ord_[0-9A-HJKMNP-TV-Z]{26}$")),
    security(("storefront_key" = [])),
    responses(
        (status = 200, description = "Cancelled", body = OrderView),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`order_not_cancellable`: used, not completed, or the vendor refused", body = ErrorBody),
        (status = 502, description = "The vendor could not be reached; try again", body = ErrorBody),
    )
)]
async fn cancel_order(
    sf: Storefront,
    State(state): State<AppState>,
    ApiPath(order_id): ApiPath<String>,
) -> ApiResult<(StatusCode, Json<OrderView>)> {
    let order_id = path_order_id(&order_id)?;
    let ctx = Ctx::from_state(&state);
    let order = cancel::cancel(&ctx, sf.owner(), order_id.as_str()).await?;
    Ok((StatusCode::OK, Json(order)))
}
