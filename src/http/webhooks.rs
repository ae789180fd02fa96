//! `/webhooks/{vendor}`: one route per line of the vendor table. The handler does what is
//! HTTP (the sender allowlist, the rate limit, the body size), then hands the headers and
//! raw bytes to `callbacks::ingest`, which authenticates the callback the vendor's way before
//! anything is parsed or stored, and answers with the acknowledgement the vendor expects.

use std::{net::SocketAddr, sync::Arc};

use axum::{
    Json,
    body::Bytes,
    extract::{ConnectInfo, Request, State},
    http::HeaderMap,
    response::{IntoResponse, Response},
};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    AppState,
    callbacks::ingest::{self, IngestError, ingest},
    http::error::{ApiError, ApiResult, ErrorBody},
    ordering::Ctx,
    vendors::{CallbackHeaders, VendorId, vendor_table},
};

/// Vendor callbacks are small; anything bigger is not a callback.
pub const MAX_CALLBACK_BYTES: usize = 256 * 1024;

/// Per-vendor budget for the unauthenticated callback routes, checked before the body is
/// read: a flood is answered 429 and costs neither the database nor the vendor's API.
pub struct CallbackLimiter {
    limiter: governor::DefaultKeyedRateLimiter<VendorId>,
}

impl CallbackLimiter {
    pub fn new(per_second: u32) -> Self {
        let rate = std::num::NonZeroU32::new(per_second.max(1)).expect("at least 1");
        let burst = rate.saturating_mul(std::num::NonZeroU32::new(2).expect("2"));
        CallbackLimiter {
            limiter: governor::RateLimiter::keyed(
                governor::Quota::per_second(rate).allow_burst(burst),
            ),
        }
    }

    fn allow(&self, vendor: VendorId) -> bool {
        self.limiter.check_key(&vendor).is_ok()
    }
}

/// The headers as the vendor layer sees them (lower-cased names; values that are not
/// visible ASCII are left out).
impl From<&HeaderMap> for CallbackHeaders {
    fn from(h: &HeaderMap) -> Self {
        h.iter()
            .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
            .collect()
    }
}

async fn handle(state: AppState, vendor: VendorId, request: Request) -> ApiResult<Response> {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if let Some(allowed) = state.config.vendors.callback_ips.get(vendor.as_str()) {
        if !allowed.is_empty() && !peer.is_some_and(|ip| allowed.contains(&ip)) {
            ingest::count(vendor, "forbidden_sender");
            tracing::warn!(%vendor, ?peer, "callback from a sender outside the allowlist");
            return Err(ApiError::forbidden(
                "sender_not_allowed",
                "this sender may not post callbacks",
            ));
        }
    }
    // Answered before the rate limit and the body read, as a disabled vendor costs nothing.
    if state.live_vendors.get(vendor).is_none() && state.test_vendors.get(vendor).is_none() {
        return Err(IngestError::VendorNotEnabled.into());
    }
    let limiter = request.extensions().get::<Arc<CallbackLimiter>>().cloned();
    if limiter.is_some_and(|l| !l.allow(vendor)) {
        ingest::count(vendor, "rate_limited");
        return Err(ApiError::TooManyRequests {
            message: "too many callbacks for this vendor; retry later".into(),
        });
    }
    let (parts, body) = request.into_parts();
    let body: Bytes = axum::body::to_bytes(body, MAX_CALLBACK_BYTES)
        .await
        .map_err(|e| {
            if std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
            {
                ApiError::PayloadTooLarge
            } else {
                ApiError::bad_request("unreadable_body", "callback body could not be read")
            }
        })?;
    let ack = ingest(
        &Ctx::from_state(&state),
        vendor,
        &CallbackHeaders::from(&parts.headers),
        &body,
    )
    .await?;
    Ok(Json(ack).into_response())
}

/// One documented route per line of the vendor table: `POST /webhooks/<vendor>`, named
/// (operation id and handler) after the vendor's module, summarised by its
/// `webhook::ROUTE_SUMMARY`.
macro_rules! define_webhook_routes {
    ($($id:ident $module:ident $name:literal $display:literal $adapter:ident $sim:ident $creds:ident ($topups:expr) ($seed_currency:literal $seed_level:literal);)*) => {
        $(
            #[utoipa::path(
                post, path = concat!("/webhooks/", $name), tag = "webhooks",
                operation_id = $name,
                summary = crate::vendors::$module::webhook::ROUTE_SUMMARY,
                request_body(content = String, description = "The vendor's own callback body, verified over its raw bytes"),
                responses(
                    (status = 200, description = "Accepted (duplicates too)"),
                    (status = 400, description = "`unparseable_callback`: verified but not understood (a sample is kept for admins)", body = ErrorBody),
                    (status = 401, description = "Failed the vendor's authentication: nothing stored", body = ErrorBody),
                    (status = 403, description = "Sender outside `<VENDOR>_CALLBACK_IPS`", body = ErrorBody),
                    (status = 404, description = "Vendor not enabled", body = ErrorBody),
                    (status = 413, description = "Body over 256 KiB", body = ErrorBody),
                    (status = 429, description = "Over `CALLBACK_RATE_LIMIT` for this vendor", body = ErrorBody),
                )
            )]
            async fn $module(State(state): State<AppState>, request: Request) -> ApiResult<Response> {
                handle(state, VendorId::$id, request).await
            }
        )*

        pub fn router() -> OpenApiRouter<AppState> {
            OpenApiRouter::new()
                $(.routes(routes!($module)))*
        }
    };
}

vendor_table!(define_webhook_routes);
