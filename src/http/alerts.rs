//! `/admin/alerts`: alerts for the operator (`vendor.balance_low`, …), recorded whether or
//! not an `OPERATOR_WEBHOOK_URL` delivers them.

use axum::{Json, extract::State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    AppState,
    domain::ids::EventId,
    http::{
        auth::Admin,
        error::{ApiError, ApiResult, ErrorBody},
        extract::ApiQuery,
        paging,
    },
    ordering::balances::{BALANCE_LOW_EVENT, BALANCE_RECOVERED_EVENT},
    store,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_alerts))
}

/// Every alert type there is.
const ALERT_TYPES: &[&str] = &[BALANCE_LOW_EVENT, BALANCE_RECOVERED_EVENT];

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AlertQuery {
    /// Only alerts of this type: `vendor.balance_low` or `vendor.balance_recovered`.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub event_type: Option<String>,
    /// 1–200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^evt_[0-9A-HJKMNP-TV-Z]{26}$")]
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OperatorAlert {
    /// The event id, also the `id` of the webhook delivery.
    pub id: String,
    /// `vendor.balance_low` (a balance fell below its threshold) or
    /// `vendor.balance_recovered` (back at or above it); one per crossing.
    #[serde(rename = "type")]
    pub event_type: String,
    pub vendor: Option<String>,
    /// What the webhook delivers as `data`: `vendor`, `balance` and `threshold`
    /// (`{amount, currency}`), `threshold_rule` (`absolute` or `average_orders`), `read_at`.
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
        (status = 400, description = "Unknown type, bad limit or cursor", body = ErrorBody),
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
        && !ALERT_TYPES.contains(&t)
    {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            format!("type: expected one of {}", ALERT_TYPES.join(", ")),
        ));
    }
    let before: Option<EventId> = paging::read_cursor(q.cursor.as_deref())?;
    let rows = store::balances::list_alerts(
        &state.pool,
        q.event_type.as_deref(),
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
