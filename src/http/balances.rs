//! Vendor balances as operators see them: the stored balance (part of `/admin/vendors`,
//! read now with `POST /admin/vendors/{vendor}/balance/refresh`) and `/admin/alerts`, the
//! alerts for the operator (`vendor.balance_low`, …), recorded whether or not an
//! `OPERATOR_WEBHOOK_URL` delivers them.

use axum::{Json, extract::State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    AppState,
    domain::{ids::EventId, money::Money},
    http::{
        admin::{ModeQuery, path_vendor, vendor_disabled},
        auth::Admin,
        error::{ApiError, ApiResult, ErrorBody},
        extract::{ApiPath, ApiQuery},
        paging,
    },
    ordering::{Ctx, alerts, balances},
    store::{self, balances::BalanceRow},
    vendors::VendorId,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(refresh_balance))
        .routes(routes!(list_alerts))
}

/// A vendor's prepaid balance as stored (flattened into [`super::admin::VendorStatus`]).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VendorBalance {
    /// Prepaid balance at the vendor as last read (every `BALANCE_REFRESH_INTERVAL`,
    /// shortly after each order placed there, and on the first look at a vendor never
    /// read), in the vendor's currency; null when not read yet, or when the vendor's API
    /// has no balance operation.
    pub balance: Option<Money>,
    /// When `balance` was read.
    pub balance_read_at: Option<DateTime<Utc>>,
    /// Why the latest read failed (`balance` is then the last known one); null after a
    /// good read.
    pub balance_error: Option<String>,
    pub balance_error_at: Option<DateTime<Utc>>,
    pub balance_status: BalanceStatus,
    /// Below its low threshold: `vendor.balance_low` was raised when it fell below. New
    /// orders skip the vendor only when the balance is below their cost.
    pub balance_low: bool,
    /// The threshold the last read was judged by; null when none applies.
    pub balance_low_threshold: Option<Money>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BalanceStatus {
    /// `balance` holds the last balance read.
    Read,
    /// Not read successfully yet (or the vendor is not enabled).
    NotRead,
    /// The vendor's API offers no balance operation: routing never skips it for balance.
    NotOffered,
}

impl VendorBalance {
    pub fn of(row: Option<&BalanceRow>) -> VendorBalance {
        let balance = row.and_then(balances::known);
        VendorBalance {
            balance_status: match row {
                Some(r) if !r.supported => BalanceStatus::NotOffered,
                _ if balance.is_some() => BalanceStatus::Read,
                _ => BalanceStatus::NotRead,
            },
            balance_read_at: balance.and(row.and_then(|r| r.read_at)),
            balance_low_threshold: balance
                .zip(row.and_then(|r| r.threshold))
                .map(|(m, t)| Money::new(t, m.currency)),
            balance,
            balance_error: row.and_then(|r| r.last_error.clone()),
            balance_error_at: row.and_then(|r| r.last_error_at),
            balance_low: row.is_some_and(|r| r.low),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VendorBalanceRead {
    pub vendor: VendorId,
    /// The mode whose vendor was read (`?livemode=`; default: live when this gateway has
    /// live vendors, else test).
    pub livemode: bool,
    #[serde(flatten)]
    pub balance: VendorBalance,
}

/// Read one vendor's balance now (at most 10 s) and store it, as the schedule would:
/// routing and the low-balance alert use it at once (e.g. after a top-up at the vendor).
/// A failed read is stored as the `balance_error` and answered with 200 too.
#[utoipa::path(
    post, path = "/admin/vendors/{vendor}/balance/refresh", tag = "admin",
    params(("vendor" = VendorId, Path), ModeQuery),
    security(("admin_token" = [])),
    responses(
        (status = 200, body = VendorBalanceRead),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 400, description = "`livemode` is not a boolean", body = ErrorBody),
        (status = 404, description = "Unknown vendor", body = ErrorBody),
        (status = 409, description = "Vendor not enabled", body = ErrorBody),
    )
)]
async fn refresh_balance(
    _: Admin,
    State(state): State<AppState>,
    ApiPath(vendor): ApiPath<String>,
    ApiQuery(q): ApiQuery<ModeQuery>,
) -> ApiResult<Json<VendorBalanceRead>> {
    let id = path_vendor(&vendor)?;
    let livemode = q.or_default(&state);
    let row = balances::refresh(&Ctx::from_state(&state), livemode, id)
        .await?
        .ok_or_else(|| vendor_disabled(id))?;
    Ok(Json(VendorBalanceRead {
        vendor: id,
        livemode,
        balance: VendorBalance::of(Some(&row)),
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AlertQuery {
    /// Only alerts of this type: `vendor.balance_low`, `vendor.balance_recovered` or
    /// `order.negative_margin`.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub event_type: Option<String>,
    /// Only alerts raised in this mode (`false`: the test-mode simulators and test orders);
    /// both when absent.
    pub livemode: Option<bool>,
    /// 1–200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^evt_[0-9A-HJKMNP-TV-Z]{26}$")]
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OperatorAlert {
    /// The event id, also the `id` of the webhook delivery; a delivered or dead alert is
    /// sent again with `POST /admin/events/{event_id}/replay`.
    pub id: String,
    /// `vendor.balance_low` (a balance fell below its threshold) or
    /// `vendor.balance_recovered` (back at or above it), one per crossing; or
    /// `order.negative_margin` (a vendor charged more than the order's price), one per order.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The mode that raised it: a test-mode simulator's balance or a test order's margin
    /// is `false`.
    pub livemode: bool,
    pub vendor: Option<String>,
    /// What the webhook delivers as `data`. Balance alerts: `vendor`, `balance` and
    /// `threshold` (`{amount, currency}`), `threshold_rule` (`absolute` or
    /// `average_orders`), `read_at`. `order.negative_margin`: `order_id`, `vendor`, `price`
    /// and `charged` (`{amount, currency}`, `charged` in the retail currency), `margin`.
    pub data: serde_json::Value,
    pub created_at: DateTime<Utc>,
    /// Its delivery to `OPERATOR_WEBHOOK_URL`: `pending`, `delivered` or `dead`; null when
    /// no operator webhook was configured when it was raised.
    pub delivery_status: Option<String>,
    pub delivery_attempts: Option<i32>,
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OperatorAlertList {
    pub data: Vec<OperatorAlert>,
    pub next_cursor: Option<String>,
}

/// Alerts for the operator, newest first, with their webhook delivery state.
#[utoipa::path(
    get, path = "/admin/alerts", tag = "admin",
    params(AlertQuery),
    security(("admin_token" = [])),
    responses(
        (status = 200, body = OperatorAlertList),
        (status = 400, description = "Unknown type, `livemode` not a boolean, bad limit or cursor", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
    )
)]
async fn list_alerts(
    _: Admin,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<AlertQuery>,
) -> ApiResult<Json<OperatorAlertList>> {
    let limit = paging::limit(q.limit)?;
    if let Some(t) = q.event_type.as_deref()
        && !alerts::TYPES.contains(&t)
    {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            format!("type: expected one of {}", alerts::TYPES.join(", ")),
        ));
    }
    let before: Option<EventId> = paging::read_cursor(q.cursor.as_deref())?;
    let rows = store::balances::list_alerts(
        &state.pool,
        q.event_type.as_deref(),
        q.livemode,
        before.as_ref().map(EventId::as_str),
        limit,
    )
    .await?;
    let page = paging::page(rows, limit, |r| r.id.clone());
    Ok(Json(OperatorAlertList {
        data: page
            .data
            .into_iter()
            .map(|r| OperatorAlert {
                id: r.id,
                event_type: r.event_type,
                livemode: r.livemode,
                vendor: r.vendor,
                data: r.payload,
                created_at: r.created_at,
                delivery_status: r.delivery_status,
                delivery_attempts: r.delivery_attempts,
                last_error: r.last_error,
                delivered_at: r.delivered_at,
            })
            .collect(),
        next_cursor: page.next_cursor,
    }))
}
