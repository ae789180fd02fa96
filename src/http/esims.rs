//! `/v1/esims/{iccid}`: one eSIM, its usage, its QR code and its top-ups.

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, header},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    AppState,
    domain::{ids::Iccid, qr},
    http::error::{ApiError, ApiResult, ErrorBody},
    http::{
        auth::Storefront,
        extract::{ApiJson, ApiPath},
        orders::{answer_response, body_plan_id, idempotency_key},
        plans::{Plan, PlanData},
    },
    ordering::{
        Ctx, OrderingError, place,
        topup::{self, topup_plan_name},
        usage,
        view::{ActivationView, esim_view},
    },
    store::esims::EsimRow,
    vendors::DataKind,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_esim))
        .routes(routes!(get_usage))
        .routes(routes!(qr_png))
        .routes(routes!(qr_svg))
        .routes(routes!(topup_plans))
        .routes(routes!(create_topup))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UsageView {
    /// The eSIM's mode (`false`: a simulated eSIM of test mode).
    pub livemode: bool,
    pub used_bytes: u64,
    /// Null when unlimited or not yet known.
    pub total_bytes: Option<u64>,
    pub remaining_bytes: Option<u64>,
    pub unlimited: bool,
    pub status: String,
    pub activated_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    /// When the vendor last reported these figures (some vendors lag by hours).
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EsimDetail {
    pub iccid: String,
    /// `true` for a real eSIM, `false` for a test-mode one.
    pub livemode: bool,
    pub status: String,
    pub order_id: String,
    pub plan_id: String,
    pub activation: Option<ActivationView>,
    pub expires_at: Option<DateTime<Utc>>,
    pub usage: UsageView,
    pub created_at: DateTime<Utc>,
}

fn usage_view(e: &EsimRow) -> UsageView {
    let used = e.used_bytes.unwrap_or(0).max(0) as u64;
    let total = if e.unlimited {
        None
    } else {
        e.total_bytes.map(|t| t.max(0) as u64)
    };
    UsageView {
        livemode: e.livemode,
        used_bytes: used,
        total_bytes: total,
        remaining_bytes: total.map(|t| t.saturating_sub(used)),
        unlimited: e.unlimited,
        status: e.status.to_string(),
        activated_at: e.activated_at,
        expires_at: e.expires_at,
        updated_at: e.usage_updated_at,
    }
}

fn esim_not_found() -> ApiError {
    OrderingError::EsimNotFound.into()
}

/// An ICCID from a path: anything not shaped like one cannot be one of ours.
fn path_iccid(raw: &str) -> ApiResult<Iccid> {
    Iccid::parse(raw).map_err(|_| esim_not_found())
}

async fn own_esim(state: &AppState, owner: (&str, bool), iccid: &str) -> ApiResult<EsimRow> {
    let iccid = path_iccid(iccid)?;
    Ok(usage::own_esim(&Ctx::from_state(state), owner, iccid.as_str()).await?)
}

/// One eSIM: status, activation details and current usage.
#[utoipa::path(
    get, path = "/v1/esims/{iccid}", tag = "storefront",
    params(("iccid" = String, Path, pattern = "^[0-9]{18,22}$")),
    security(("storefront_key" = [])),
    responses(
        (status = 200, body = EsimDetail),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
async fn get_esim(
    sf: Storefront,
    State(state): State<AppState>,
    ApiPath(iccid): ApiPath<String>,
) -> ApiResult<Json<EsimDetail>> {
    let iccid = path_iccid(&iccid)?;
    let e = usage::current(&Ctx::from_state(&state), sf.owner(), iccid.as_str()).await?;
    let v = esim_view(&e);
    Ok(Json(EsimDetail {
        iccid: e.iccid.clone(),
        livemode: e.livemode,
        status: e.status.to_string(),
        order_id: e.order_id.clone(),
        plan_id: e.plan_id.clone(),
        activation: v.activation,
        expires_at: e.expires_at,
        usage: usage_view(&e),
        created_at: e.created_at,
    }))
}

/// Data usage, refreshed from the vendor when older than `USAGE_MAX_AGE`.
#[utoipa::path(
    get, path = "/v1/esims/{iccid}/usage", tag = "storefront",
    params(("iccid" = String, Path, pattern = "^[0-9]{18,22}$")),
    security(("storefront_key" = [])),
    responses(
        (status = 200, body = UsageView),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
async fn get_usage(
    sf: Storefront,
    State(state): State<AppState>,
    ApiPath(iccid): ApiPath<String>,
) -> ApiResult<Json<UsageView>> {
    let iccid = path_iccid(&iccid)?;
    let e = usage::current(&Ctx::from_state(&state), sf.owner(), iccid.as_str()).await?;
    Ok(Json(usage_view(&e)))
}

fn lpa_of(e: &EsimRow) -> ApiResult<&str> {
    e.lpa.as_deref().ok_or_else(|| {
        ApiError::not_found(
            "activation_not_ready",
            "this eSIM has no activation code yet",
        )
    })
}

/// The activation QR code as a PNG, rendered locally from the LPA string.
#[utoipa::path(
    get, path = "/v1/esims/{iccid}/qr.png", tag = "storefront",
    params(("iccid" = String, Path, pattern = "^[0-9]{18,22}$")),
    security(("storefront_key" = [])),
    responses(
        (status = 200, content_type = "image/png", body = Vec<u8>),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
async fn qr_png(
    sf: Storefront,
    State(state): State<AppState>,
    ApiPath(iccid): ApiPath<String>,
) -> ApiResult<Response> {
    let e = own_esim(&state, sf.owner(), &iccid).await?;
    let png = qr::png(lpa_of(&e)?).map_err(anyhow::Error::from)?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/png"),
            (header::CACHE_CONTROL, "private, max-age=3600"),
        ],
        png,
    )
        .into_response())
}

/// The activation QR code as SVG.
#[utoipa::path(
    get, path = "/v1/esims/{iccid}/qr.svg", tag = "storefront",
    params(("iccid" = String, Path, pattern = "^[0-9]{18,22}$")),
    security(("storefront_key" = [])),
    responses(
        (status = 200, content_type = "image/svg+xml", body = String),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
async fn qr_svg(
    sf: Storefront,
    State(state): State<AppState>,
    ApiPath(iccid): ApiPath<String>,
) -> ApiResult<Response> {
    let e = own_esim(&state, sf.owner(), &iccid).await?;
    let svg = qr::svg(lpa_of(&e)?).map_err(anyhow::Error::from)?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "private, max-age=3600"),
        ],
        svg,
    )
        .into_response())
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TopupPlanList {
    pub data: Vec<Plan>,
    pub next_cursor: Option<String>,
}

/// Plans that can be added to this eSIM: only offers of the vendor that issued it which that
/// vendor accepts for this very eSIM (it is asked where it can say: eSIM Access's top-up
/// packages for the ICCID, eSIM Go's compatibility check, eSIMfx's available top-ups; the
/// answer is kept about a minute). Each keeps covering the eSIM's countries. Empty for an
/// eSIM whose vendor documents no top-up (MicroEsim, Multiverse) and for a cancelled or
/// expired eSIM.
#[utoipa::path(
    get, path = "/v1/esims/{iccid}/topup-plans", tag = "storefront",
    params(("iccid" = String, Path, pattern = "^[0-9]{18,22}$")),
    security(("storefront_key" = [])),
    responses(
        (status = 200, body = TopupPlanList),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 503, description = "`topup_plans_unavailable`: the vendor could not be asked; try again", body = ErrorBody),
    )
)]
async fn topup_plans(
    sf: Storefront,
    State(state): State<AppState>,
    ApiPath(iccid): ApiPath<String>,
) -> ApiResult<Json<TopupPlanList>> {
    let iccid = path_iccid(&iccid)?;
    let plans = topup::plans_for_esim(&Ctx::from_state(&state), sf.owner(), iccid.as_str()).await?;
    let data = plans
        .into_iter()
        .map(|p| Plan {
            livemode: sf.livemode,
            id: p.plan_id,
            name: topup_plan_name(&p.key),
            countries: p.key.countries.clone(),
            region: p.offer.region_label.clone(),
            data: PlanData {
                bytes: p.key.bytes,
                unlimited: p.key.kind == DataKind::Unlimited,
                daily: p.key.kind == DataKind::Daily,
            },
            validity_days: p.key.validity_days,
            price: p.price,
            networks: vec![],
            supports_topup: true,
        })
        .collect();
    Ok(Json(TopupPlanList {
        data,
        next_cursor: None,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTopup {
    /// One of the eSIM's `topup-plans`.
    #[schema(
        example = "jp-3gb-15d",
        pattern = "^[a-z0-9]+(-[a-z0-9]+)*$",
        min_length = 1,
        max_length = 64
    )]
    pub plan_id: String,
}

/// Add a plan to this eSIM; same Idempotency-Key rules as orders. Answers with the top-up
/// order. An eSIM whose vendor documents no top-up, or that is cancelled or expired, is
/// refused before any vendor is called. A vendor's refusal fails the order with a stable
/// `failure.code` (`vendor_rejected`, `sold_out`, `vendor_unavailable`) and our own message;
/// the vendor's words are only in `/admin`.
#[utoipa::path(
    post, path = "/v1/esims/{iccid}/topups", tag = "storefront",
    params(
        ("iccid" = String, Path, pattern = "^[0-9]{18,22}$"),
        ("Idempotency-Key" = String, Header, pattern = "^[!-~]{1,255}$", description = "1–255 visible ASCII characters, unique per top-up"),
    ),
    request_body = CreateTopup,
    security(("storefront_key" = [])),
    responses(
        (status = 201, body = crate::ordering::view::OrderView),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "No such eSIM, or the plan cannot be added to it", body = ErrorBody),
        (status = 409, description = "`topup_not_supported` (the eSIM's vendor documents no top-up), `esim_cancelled`, `esim_expired`, `idempotency_key_reused` or `idempotency_key_in_use`", body = ErrorBody),
        (status = 413, description = "Body over 256 KiB", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 503, description = "`topup_plans_unavailable`: the vendor could not say which top-ups fit; try again", body = ErrorBody),
    )
)]
async fn create_topup(
    sf: Storefront,
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(iccid): ApiPath<String>,
    ApiJson(req): ApiJson<CreateTopup>,
) -> ApiResult<Response> {
    let key = idempotency_key(&headers)?;
    let iccid = path_iccid(&iccid)?;
    let plan_id = body_plan_id(&req.plan_id)?;
    let ctx = Ctx::from_state(&state);
    let answer = place::place_topup(&ctx, sf.owner(), &key, iccid.as_str(), &plan_id).await?;
    Ok(answer_response(answer))
}
