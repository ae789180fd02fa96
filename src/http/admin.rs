//! Admin views of vendors and the routing decision behind each plan.

use axum::{Json, extract::State};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    AppState,
    catalog::{
        pricing::Pricing,
        sync::{SyncError, SyncOutcome, sync_vendor},
    },
    domain::{
        ids::{EventId, PlanId, StorefrontId, has_control},
        money::Money,
    },
    http::error::{ApiError, ApiResult, ErrorBody},
    http::{
        auth::Admin,
        balances::VendorBalance,
        extract::{ApiPath, ApiQuery},
        paging::{self, Cursor},
        plans::plan_not_found,
    },
    ordering::{
        Ctx, breaker::BreakerState, choice::RoutingChoice, health, provision, purchase, view,
    },
    store,
    vendors::{VendorId, registry::VendorMode},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_vendors))
        .routes(routes!(sync_now))
        .routes(routes!(plan_offers))
        .routes(routes!(list_orders))
        .routes(routes!(get_order))
        .routes(routes!(reconcile_order))
        .routes(routes!(fail_order))
        .routes(routes!(list_vendor_events))
        .routes(routes!(list_events))
        .routes(routes!(replay_event))
}

/// Which mode an admin view is about.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ModeQuery {
    /// `true`: the live vendors (real credentials), `false`: the test-mode simulators.
    /// Default: live when this gateway has live vendors, else test.
    pub livemode: Option<bool>,
}

/// A vendor named in a path: `404 vendor_not_found` when there is no such vendor.
pub(crate) fn path_vendor(name: &str) -> ApiResult<VendorId> {
    name.parse().map_err(|e: crate::vendors::UnknownVendor| {
        ApiError::not_found("vendor_not_found", e.to_string())
    })
}

/// `409 vendor_disabled`: the vendor exists but is not enabled in the asked mode.
pub(crate) fn vendor_disabled(id: VendorId) -> ApiError {
    ApiError::conflict(
        "vendor_disabled",
        format!("{id} is not enabled in this mode"),
    )
}

impl ModeQuery {
    pub(crate) fn or_default(&self, state: &AppState) -> bool {
        self.livemode.unwrap_or_else(|| state.mode_available(true))
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VendorStatus {
    pub id: VendorId,
    /// The mode this entry is about: live vendors and the test-mode simulators are listed
    /// separately (`?livemode=`), never mixed.
    pub livemode: bool,
    pub name: String,
    pub enabled: bool,
    /// `live` or `sandbox`; null when disabled.
    pub mode: Option<VendorMode>,
    /// The last catalogue sync succeeded (and no error came after it) and the circuit
    /// breaker is closed.
    pub healthy: bool,
    /// The vendor's circuit breaker: new orders skip the vendor while it is open.
    pub breaker: VendorBreaker,
    /// The vendor's real order attempts over the last `window_seconds`.
    pub attempts: VendorAttempts,
    /// Active offers in the stored catalogue.
    pub offer_count: u64,
    /// Offers in the last sync the normalizer could not understand (never sold).
    pub unparsed_count: u64,
    pub last_sync_at: Option<DateTime<Utc>>,
    pub last_sync_duration_ms: Option<i64>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    /// The prepaid balance as last read and stored.
    #[serde(flatten)]
    pub balance: VendorBalance,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BreakerStatus {
    /// Orders go to the vendor.
    Closed,
    /// New orders skip the vendor until `until`.
    Open,
    /// The cool-down is over: one order at a time tries the vendor; its answer closes the
    /// breaker, its failure opens it again.
    HalfOpen,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VendorBreaker {
    pub state: BreakerStatus,
    /// When the breaker last opened; null when closed.
    pub opened_at: Option<DateTime<Utc>>,
    /// The end of the cool-down; null when closed.
    pub until: Option<DateTime<Utc>>,
    /// Unknown or unreachable order outcomes in a row (an answer resets it).
    pub consecutive_failures: u32,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VendorAttempts {
    pub window_seconds: u64,
    /// The vendor has the order.
    pub placed: u64,
    /// Definite refusals (sold out, insufficient balance, …).
    pub refused: u64,
    /// No usable answer (timeout, dropped connection, unreachable), as reconciled so far.
    pub unknown: u64,
    /// Median latency of the window's vendor calls, in milliseconds.
    pub latency_p50_ms: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VendorList {
    pub data: Vec<VendorStatus>,
    pub next_cursor: Option<String>,
}

/// Every vendor of one mode (`livemode`): enabled or not, sync health, offers and balance.
#[utoipa::path(
    get, path = "/admin/vendors", tag = "admin",
    params(ModeQuery),
    security(("admin_token" = [])),
    responses(
        (status = 200, body = VendorList),
        (status = 400, description = "`livemode` is not a boolean", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
    )
)]
async fn list_vendors(
    _: Admin,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ModeQuery>,
) -> ApiResult<Json<VendorList>> {
    let livemode = q.or_default(&state);
    let ctx = Ctx::from_state(&state);
    let reports = health::vendors_status(&ctx, livemode).await?;
    let data = reports
        .into_iter()
        .map(|r| {
            let sync = r.sync.as_ref();
            VendorStatus {
                id: r.id,
                livemode,
                name: r.id.display_name().to_string(),
                enabled: r.mode.is_some(),
                mode: r.mode,
                healthy: r.healthy,
                breaker: VendorBreaker {
                    state: match r.breaker.state {
                        BreakerState::Closed => BreakerStatus::Closed,
                        BreakerState::Open => BreakerStatus::Open,
                        BreakerState::HalfOpen => BreakerStatus::HalfOpen,
                    },
                    opened_at: r.breaker.opened_at,
                    until: r.breaker.until,
                    consecutive_failures: r.breaker.consecutive_failures,
                },
                attempts: VendorAttempts {
                    window_seconds: ctx.routing.health_window.as_secs(),
                    placed: r.attempts.placed.max(0) as u64,
                    refused: r.attempts.refused.max(0) as u64,
                    unknown: r.attempts.unknown.max(0) as u64,
                    latency_p50_ms: r.attempts.latency_p50_ms,
                },
                offer_count: r.offer_count,
                unparsed_count: sync.map_or(0, |s| s.unparsed_count as u64),
                last_sync_at: sync.and_then(|s| s.last_success_at),
                last_sync_duration_ms: sync.and_then(|s| s.last_duration_ms),
                last_error: sync.and_then(|s| s.last_error.clone()),
                last_error_at: sync.and_then(|s| s.last_error_at),
                balance: VendorBalance::of(r.balance.as_ref()),
            }
        })
        .collect();
    Ok(Json(VendorList {
        data,
        next_cursor: None,
    }))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SyncResult {
    pub vendor: VendorId,
    /// `synced`, or `skipped` when another replica is syncing this vendor right now.
    pub outcome: String,
    pub offers: u64,
    pub unparsed: u64,
    /// Offers that vanished from the vendor's catalogue and were marked inactive.
    pub deactivated: u64,
}

/// Re-read one vendor's catalogue (of one mode) now and rebuild that mode's plans.
#[utoipa::path(
    post, path = "/admin/vendors/{vendor}/sync", tag = "admin",
    params(("vendor" = VendorId, Path), ModeQuery),
    security(("admin_token" = [])),
    responses(
        (status = 200, body = SyncResult),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "Unknown vendor", body = ErrorBody),
        (status = 409, description = "Vendor not enabled", body = ErrorBody),
        (status = 502, description = "The vendor failed; the stored catalogue is unchanged", body = ErrorBody),
    )
)]
async fn sync_now(
    _: Admin,
    State(state): State<AppState>,
    ApiPath(vendor): ApiPath<String>,
    ApiQuery(q): ApiQuery<ModeQuery>,
) -> ApiResult<Json<SyncResult>> {
    let vendors = state.vendors(q.or_default(&state));
    let id = path_vendor(&vendor)?;
    let adapter = vendors.adapter(id).ok_or_else(|| vendor_disabled(id))?;
    let pricing = Pricing::from_config(&state.config);
    match sync_vendor(&state.pool, adapter.as_ref(), vendors, &pricing).await {
        Ok(SyncOutcome::Synced {
            offers,
            unparsed,
            deactivated,
        }) => Ok(Json(SyncResult {
            vendor: id,
            outcome: "synced".into(),
            offers: offers as u64,
            unparsed: unparsed as u64,
            deactivated,
        })),
        Ok(SyncOutcome::Skipped) => Ok(Json(SyncResult {
            vendor: id,
            outcome: "skipped".into(),
            offers: 0,
            unparsed: 0,
            deactivated: 0,
        })),
        Err(SyncError::Vendor(e)) => Err(ApiError::bad_gateway(
            "vendor_error",
            format!("{id} catalogue could not be read: {e}"),
        )),
        Err(SyncError::Database(e)) => Err(e.into()),
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PlanOffer {
    /// 1 = what the next order would buy.
    pub rank: u32,
    pub vendor: VendorId,
    pub sku: String,
    pub name: String,
    pub countries: Vec<String>,
    pub region_label: Option<String>,
    /// The vendor's exact byte count (per day when daily); null when unlimited.
    pub data_bytes: Option<i64>,
    pub validity_days: u32,
    /// Wholesale cost in the vendor's currency.
    pub cost: Money,
    /// Wholesale cost converted into the retail currency (unrounded).
    pub cost_in_retail: Money,
    /// Retail price if this offer were the cheapest.
    pub retail_price: Money,
    pub vendor_healthy: bool,
    pub supports_topup: bool,
    pub last_seen_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PlanOffers {
    pub plan_id: String,
    pub price: Money,
    pub markup_percent: Decimal,
    /// The offers an order for one unit would try now, in order (offers left out are in
    /// `routing.excluded`).
    pub data: Vec<PlanOffer>,
    /// The ranking as an order would record it: candidates with their records, exclusions,
    /// and the rule that decided.
    pub routing: RoutingChoice,
}

/// The vendor offers behind a plan in the order an order would try them now (same vendor
/// records, breakers, near-tie rule and minimum margin): the routing decision made visible.
#[utoipa::path(
    get, path = "/admin/plans/{plan_id}/offers", tag = "admin",
    params(("plan_id" = String, Path, example = "jp-10gb-7d", pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 64), ModeQuery),
    security(("admin_token" = [])),
    responses(
        (status = 200, body = PlanOffers),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
async fn plan_offers(
    _: Admin,
    State(state): State<AppState>,
    ApiPath(plan_id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ModeQuery>,
) -> ApiResult<Json<PlanOffers>> {
    let plan_id = PlanId::parse(&plan_id).map_err(|_| plan_not_found())?;
    let ctx = Ctx::from_state(&state);
    let (plan, offers, routing) =
        purchase::plan_offers(&ctx, q.or_default(&state), plan_id.as_str()).await?;
    let pricing = &ctx.pricing;
    let data = offers
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let o = c.detail;
            PlanOffer {
                rank: i as u32 + 1,
                vendor: o.routable.vendor,
                sku: o.routable.sku.clone(),
                name: o.name,
                countries: o.routable.countries.to_vec(),
                region_label: o.region_label,
                data_bytes: o.data_bytes,
                validity_days: o.routable.validity_days,
                cost: Money::new(o.routable.cost_amount, o.routable.cost_currency),
                cost_in_retail: Money::new(c.cost_in_retail, pricing.retail_currency),
                retail_price: pricing.retail_from_retail_cost(c.cost_in_retail),
                vendor_healthy: c.vendor_healthy,
                supports_topup: o.supports_topup,
                last_seen_at: o.last_seen_at,
            }
        })
        .collect();
    Ok(Json(PlanOffers {
        plan_id: plan.id,
        price: Money::new(
            plan.price_amount,
            plan.price_currency
                .parse()
                .unwrap_or(crate::domain::money::Currency::USD),
        ),
        markup_percent: pricing.markup_percent,
        data,
        routing,
    }))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AttemptView {
    pub seq: i32,
    pub vendor: String,
    pub sku: Option<String>,
    /// `pending`, `placed`, `rejected`, `unreachable`, `unknown` or `not_found`.
    pub outcome: String,
    pub vendor_reference: Option<String>,
    pub error_kind: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub cost: Option<Money>,
    /// What the vendor said it charged, when its answer says (eSIM Go's order total).
    pub charged: Option<Money>,
    pub latency_ms: Option<i64>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AdminOrder {
    #[serde(flatten)]
    pub order: crate::ordering::view::OrderView,
    pub storefront_id: String,
    pub vendor: Option<String>,
    pub vendor_reference: Option<String>,
    /// Wholesale cost in the vendor's currency.
    pub cost: Option<Money>,
    /// Wholesale cost in the retail currency at purchase time.
    pub cost_in_retail: Option<Money>,
    /// Retail price minus cost, in the retail currency.
    pub margin: Option<Money>,
    /// Set when the order was still unfinished `ORDER_ATTENTION_AFTER` after it was placed:
    /// an operator should reconcile it (or fail it). Storefronts keep seeing `provisioning`.
    pub attention: Option<AttentionView>,
    pub attempts: Vec<AttemptView>,
    /// Why each vendor was chosen: one entry per ranking (at intake, and each time the
    /// purchase loop ranked again), oldest first.
    pub routing: Vec<RoutingRecord>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RoutingRecord {
    /// The attempt this ranking led to (`attempts[].seq`); null when nothing was left.
    pub attempt_seq: Option<i32>,
    pub ranked_at: DateTime<Utc>,
    #[serde(flatten)]
    pub choice: RoutingChoice,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AttentionView {
    pub reason: String,
    pub since: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AdminOrderList {
    pub data: Vec<AdminOrder>,
    pub next_cursor: Option<String>,
}

fn money(amount: Option<Decimal>, currency: Option<&str>) -> Option<Money> {
    Some(Money::new(
        amount?.normalize(),
        currency?.trim().parse().ok()?,
    ))
}

/// The admin views of `orders` (see [`view::details`]).
async fn admin_orders(
    state: &AppState,
    orders: &[store::orders::OrderRow],
) -> ApiResult<Vec<AdminOrder>> {
    let details = view::details(&Ctx::from_state(state), orders).await?;
    Ok(details.into_iter().map(admin_order).collect())
}

fn admin_order(details: view::OrderDetails) -> AdminOrder {
    let view::OrderDetails {
        order,
        esims,
        attempts,
        routings,
    } = details;
    let o = &order;
    let retail_currency = o.price_currency.trim();
    let cost_in_retail = money(o.retail_cost_amount, Some(retail_currency));
    let margin = cost_in_retail
        .map(|c| Money::new(o.price_amount - c.amount, c.currency).round_up_to_minor_unit());
    AdminOrder {
        order: view::order_view(o, &esims),
        storefront_id: o.storefront_id.clone(),
        vendor: o.vendor.clone(),
        vendor_reference: o.vendor_reference.clone(),
        cost: money(o.cost_amount, o.cost_currency.as_deref()),
        cost_in_retail,
        margin,
        routing: routings
            .into_iter()
            .filter_map(|r| {
                Some(RoutingRecord {
                    attempt_seq: r
                        .attempt_id
                        .and_then(|id| attempts.iter().find(|a| a.id == id))
                        .map(|a| a.seq),
                    ranked_at: r.created_at,
                    choice: serde_json::from_value(r.choice).ok()?,
                })
            })
            .collect(),
        // A finished order keeps a flag only when it sold below cost.
        attention: match (&o.attention_reason, o.attention_at) {
            (Some(reason), Some(since))
                if o.status.is_unfinished()
                    || margin.is_some_and(|m| m.amount.is_sign_negative()) =>
            {
                Some(AttentionView {
                    reason: reason.clone(),
                    since,
                })
            }
            _ => None,
        },
        attempts: attempts
            .into_iter()
            .map(|a| AttemptView {
                seq: a.seq,
                cost: money(a.cost_amount, a.cost_currency.as_deref()),
                charged: money(a.charged_amount, a.charged_currency.as_deref()),
                vendor: a.vendor,
                sku: a.sku,
                outcome: a.outcome.as_str().to_string(),
                vendor_reference: a.vendor_reference,
                error_kind: a.error_kind,
                error_code: a.error_code,
                error_message: a.error_message,
                latency_ms: a.latency_ms,
                started_at: a.started_at,
                finished_at: a.finished_at,
            })
            .collect(),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AdminOrderQuery {
    /// `pending`, `provisioning`, `completed`, `failed` or `cancelled`.
    pub status: Option<String>,
    pub reference: Option<String>,
    /// `true`: only unfinished orders flagged for attention; `false`: only the others.
    pub attention: Option<bool>,
    /// `true`: only live orders, `false`: only test orders; absent: both.
    pub livemode: Option<bool>,
    /// 1–200, default 50.
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// All storefronts' orders, newest first, with vendor, cost, margin and every routing attempt.
#[utoipa::path(
    get, path = "/admin/orders", tag = "admin",
    params(AdminOrderQuery),
    security(("admin_token" = [])),
    responses(
        (status = 200, body = AdminOrderList),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
    )
)]
async fn list_orders(
    _: Admin,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<AdminOrderQuery>,
) -> ApiResult<Json<AdminOrderList>> {
    let mut filter =
        crate::http::orders::parse_order_filter(crate::http::orders::OrderListQuery {
            status: q.status,
            reference: q.reference,
            limit: q.limit,
            cursor: q.cursor,
        })?;
    filter.attention = q.attention;
    filter.livemode = q.livemode;
    let rows = store::orders::list(&state.pool, &filter).await?;
    let page = paging::page(rows, filter.limit, crate::http::orders::order_cursor);
    let data = admin_orders(&state, &page.data).await?;
    Ok(Json(AdminOrderList {
        data,
        next_cursor: page.next_cursor,
    }))
}

/// One order of any storefront with everything an operator sees: vendor, cost, margin,
/// attempts and why each vendor was chosen (`routing`).
#[utoipa::path(
    get, path = "/admin/orders/{order_id}", tag = "admin",
    params(("order_id" = String, Path, pattern = "^ord_[0-9A-HJKMNP-TV-Z]{26}$")),
    security(("admin_token" = [])),
    responses(
        (status = 200, body = AdminOrder),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
async fn get_order(
    _: Admin,
    State(state): State<AppState>,
    ApiPath(order_id): ApiPath<String>,
) -> ApiResult<Json<AdminOrder>> {
    let order_id = crate::http::orders::path_order_id(&order_id)?.into_string();
    admin_order_by_id(&state, &order_id).await
}

/// Ask the vendor now what happened to an unfinished order (unknown outcome, or eSIMs not
/// delivered yet) and apply the answer: the same work the provisioner does, under the
/// order's lease.
#[utoipa::path(
    post, path = "/admin/orders/{order_id}/reconcile", tag = "admin",
    params(("order_id" = String, Path, pattern = "^ord_[0-9A-HJKMNP-TV-Z]{26}$")),
    security(("admin_token" = [])),
    responses(
        (status = 200, body = AdminOrder),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`order_busy`: being worked on right now; retry after `Retry-After` seconds", body = ErrorBody),
    )
)]
async fn reconcile_order(
    _: Admin,
    State(state): State<AppState>,
    ApiPath(order_id): ApiPath<String>,
) -> ApiResult<Json<AdminOrder>> {
    let order_id = crate::http::orders::path_order_id(&order_id)?.into_string();
    provision::provision_now(&Ctx::from_state(&state), &order_id).await?;
    admin_order_by_id(&state, &order_id).await
}

async fn admin_order_by_id(state: &AppState, order_id: &str) -> ApiResult<Json<AdminOrder>> {
    let details = view::details_of(&Ctx::from_state(state), order_id).await?;
    Ok(Json(admin_order(details)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FailOrder {
    /// Why the operator gives up on the order (1–500 characters, not blank, no control
    /// characters; stored trimmed); becomes the failure message the storefront sees.
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    pub reason: String,
}

/// Give up on an unfinished order: it fails (`order.failed`, code `operator_failed`) and
/// the storefront is not charged. Refused while a vendor order is known to exist.
#[utoipa::path(
    post, path = "/admin/orders/{order_id}/fail", tag = "admin",
    params(("order_id" = String, Path, pattern = "^ord_[0-9A-HJKMNP-TV-Z]{26}$")),
    request_body = FailOrder,
    security(("admin_token" = [])),
    responses(
        (status = 200, body = AdminOrder),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`order_finished`; `vendor_order_exists`: a vendor has the order, reconcile it instead; `order_busy`: being worked on, retry after `Retry-After` seconds", body = ErrorBody),
        (status = 413, description = "Body over 256 KiB", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 422, body = ErrorBody),
    )
)]
async fn fail_order(
    _: Admin,
    State(state): State<AppState>,
    ApiPath(order_id): ApiPath<String>,
    crate::http::extract::ApiJson(req): crate::http::extract::ApiJson<FailOrder>,
) -> ApiResult<Json<AdminOrder>> {
    let order_id = crate::http::orders::path_order_id(&order_id)?.into_string();
    // Limits apply to the text as sent (as documented); the stored reason is trimmed.
    let reason = req.reason.trim();
    if reason.is_empty() || req.reason.chars().count() > 500 || has_control(&req.reason) {
        return Err(ApiError::unprocessable(
            "invalid_body",
            "reason: expected 1 to 500 characters, no control characters",
        ));
    }
    provision::fail_by_operator(&Ctx::from_state(&state), &order_id, reason).await?;
    admin_order_by_id(&state, &order_id).await
}

pub const VENDOR_EVENT_STATUSES: &[&str] = &[
    "received",
    "applied",
    "matched_hint",
    "waiting",
    "ignored",
    "unparseable",
    "failed",
];
pub const OUTBOX_STATUSES: &[&str] = &["pending", "delivered", "dead"];

/// A filter that must be one of a closed set (an unknown value is a 400, not an empty page).
fn one_of(name: &str, value: Option<&str>, allowed: &[&str]) -> ApiResult<()> {
    match value {
        Some(v) if !allowed.contains(&v) => Err(ApiError::bad_request(
            "invalid_parameter",
            format!("{name}: expected one of {}", allowed.join(", ")),
        )),
        _ => Ok(()),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct VendorEventQuery {
    #[param(value_type = Option<VendorId>)]
    pub vendor: Option<String>,
    /// `received`, `applied`, `matched_hint` (an unsigned callback applied because it matched
    /// the order we placed), `waiting`, `ignored`, `unparseable` or `failed`.
    #[param(value_type = Option<VendorEventStatus>)]
    pub status: Option<String>,
    /// `true`: only callbacks attributed to live vendors, `false`: only the simulators'.
    pub livemode: Option<bool>,
    /// 1–200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[0-9]{1,18}$")]
    pub cursor: Option<String>,
}

/// What became of a stored vendor callback.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // Documents the accepted values of a string filter.
pub enum VendorEventStatus {
    Received,
    Applied,
    MatchedHint,
    Waiting,
    Ignored,
    Unparseable,
    Failed,
}

/// Delivery state of a storefront event.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // Documents the accepted values of a string filter.
pub enum OutboxStatus {
    Pending,
    Delivered,
    Dead,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VendorEventView {
    pub id: i64,
    /// The mode the callback was attributed to.
    pub livemode: bool,
    pub vendor: String,
    pub dedupe_key: String,
    pub kind: Option<String>,
    pub status: String,
    pub error: Option<String>,
    pub order_ref: Option<String>,
    pub iccid: Option<String>,
    pub headers: serde_json::Value,
    /// The raw body as received (UTF-8, lossy).
    pub body: String,
    pub received_at: DateTime<Utc>,
    pub applied_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VendorEventList {
    pub data: Vec<VendorEventView>,
    pub next_cursor: Option<String>,
}

/// The raw vendor callback log, newest first.
#[utoipa::path(
    get, path = "/admin/vendor-events", tag = "admin",
    params(VendorEventQuery),
    security(("admin_token" = [])),
    responses(
        (status = 200, body = VendorEventList),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
    )
)]
async fn list_vendor_events(
    _: Admin,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<VendorEventQuery>,
) -> ApiResult<Json<VendorEventList>> {
    let limit = paging::limit(q.limit)?;
    let before: Option<i64> = paging::read_cursor(q.cursor.as_deref())?;
    if let Some(v) = &q.vendor {
        v.parse::<VendorId>()
            .map_err(|e| ApiError::bad_request("invalid_parameter", e.to_string()))?;
    }
    one_of("status", q.status.as_deref(), VENDOR_EVENT_STATUSES)?;
    let rows = store::events::list(
        &state.pool,
        q.livemode,
        q.vendor.as_deref(),
        q.status.as_deref(),
        before,
        limit,
    )
    .await?;
    let page = paging::page(rows, limit, |r| r.id.encode());
    Ok(Json(VendorEventList {
        data: page
            .data
            .into_iter()
            .map(|r| VendorEventView {
                id: r.id,
                livemode: r.livemode,
                vendor: r.vendor,
                dedupe_key: r.dedupe_key,
                kind: r.kind,
                status: r.status,
                error: r.error,
                order_ref: r.order_ref,
                iccid: r.iccid,
                headers: r.headers,
                body: String::from_utf8_lossy(&r.body).into_owned(),
                received_at: r.received_at,
                applied_at: r.applied_at,
            })
            .collect(),
        next_cursor: page.next_cursor,
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventQuery {
    #[param(pattern = "^sf_[0-9A-HJKMNP-TV-Z]{26}$")]
    pub storefront_id: Option<String>,
    #[param(value_type = Option<OutboxStatus>)]
    pub status: Option<String>,
    /// `true`: only live-mode events, `false`: only test-mode ones; absent: both.
    pub livemode: Option<bool>,
    /// 1–200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^evt_[0-9A-HJKMNP-TV-Z]{26}$")]
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeliveryAttempt {
    pub attempted_at: DateTime<Utc>,
    pub http_status: Option<i32>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StorefrontEvent {
    pub id: String,
    pub storefront_id: String,
    pub livemode: bool,
    #[serde(rename = "type")]
    pub event_type: String,
    pub data: serde_json::Value,
    /// `pending`, `delivered` or `dead` (gave up after the retry window).
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub deliveries: Vec<DeliveryAttempt>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StorefrontEventList {
    pub data: Vec<StorefrontEvent>,
    pub next_cursor: Option<String>,
}

/// Events sent (or to be sent) to storefronts, newest first, with every delivery attempt.
#[utoipa::path(
    get, path = "/admin/events", tag = "admin",
    params(EventQuery),
    security(("admin_token" = [])),
    responses(
        (status = 200, body = StorefrontEventList),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
    )
)]
async fn list_events(
    _: Admin,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<EventQuery>,
) -> ApiResult<Json<StorefrontEventList>> {
    let limit = paging::limit(q.limit)?;
    one_of("status", q.status.as_deref(), OUTBOX_STATUSES)?;
    if let Some(id) = &q.storefront_id {
        StorefrontId::parse(id).map_err(|_| {
            ApiError::bad_request("invalid_parameter", "storefront_id: not a storefront id")
        })?;
    }
    let before: Option<EventId> = paging::read_cursor(q.cursor.as_deref())?;
    let rows = store::outbox::list(
        &state.pool,
        q.storefront_id.as_deref(),
        q.livemode,
        q.status.as_deref(),
        before.as_ref().map(EventId::as_str),
        limit,
    )
    .await?;
    // Stored ids are event ids: handed out bare, as `EventId` reads them back.
    let page = paging::page(rows, limit, |r| r.id.clone());
    let ids: Vec<String> = page.data.iter().map(|r| r.id.clone()).collect();
    let attempts = store::outbox::attempts(&state.pool, &ids).await?;
    let data = page
        .data
        .into_iter()
        .map(|r| StorefrontEvent {
            livemode: r.livemode,
            deliveries: attempts
                .iter()
                .filter(|a| a.outbox_id == r.id)
                .map(|a| DeliveryAttempt {
                    attempted_at: a.attempted_at,
                    http_status: a.http_status,
                    error: a.error.clone(),
                    duration_ms: a.duration_ms,
                })
                .collect(),
            id: r.id,
            storefront_id: r.storefront_id,
            event_type: r.event_type,
            data: r.payload,
            status: r.status,
            attempts: r.attempts,
            next_attempt_at: r.next_attempt_at,
            last_error: r.last_error,
            created_at: r.created_at,
            delivered_at: r.delivered_at,
        })
        .collect();
    Ok(Json(StorefrontEventList {
        data,
        next_cursor: page.next_cursor,
    }))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Replayed {
    pub id: String,
    pub status: String,
}

/// Send an event again now (e.g. after a storefront fixed its endpoint).
#[utoipa::path(
    post, path = "/admin/events/{event_id}/replay", tag = "admin",
    params(("event_id" = String, Path, pattern = "^evt_[0-9A-HJKMNP-TV-Z]{26}$")),
    security(("admin_token" = [])),
    responses(
        (status = 200, body = Replayed),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
async fn replay_event(
    _: Admin,
    State(state): State<AppState>,
    ApiPath(event_id): ApiPath<String>,
) -> ApiResult<Json<Replayed>> {
    let event_not_found = || ApiError::not_found("event_not_found", "no such event");
    let event_id = EventId::parse(&event_id)
        .map_err(|_| event_not_found())?
        .into_string();
    if !store::outbox::replay(&state.pool, &event_id).await? {
        return Err(ApiError::not_found("event_not_found", "no such event"));
    }
    Ok(Json(Replayed {
        id: event_id,
        status: "pending".into(),
    }))
}
