//! `/webhooks/{vendor}`: one route per vendor. Each checks the sender allowlist, then the
//! vendor's own authentication over the raw bytes, before anything is parsed or stored.

use std::net::SocketAddr;

use axum::{
    Json,
    body::Bytes,
    extract::{ConnectInfo, Request, State},
    http::HeaderMap,
    response::{IntoResponse, Response},
};
use serde_json::json;
use sha2::{Digest, Sha256};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    AppState, callbacks,
    error::{ApiError, ApiResult, ErrorBody},
    ordering::Ctx,
    store::{self, events::NewEvent},
    vendors::{CallbackTrust, VendorError, VendorId},
};

/// Vendor callbacks are small; anything bigger is not a callback.
pub const MAX_CALLBACK_BYTES: usize = 256 * 1024;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(esimaccess))
        .routes(routes!(esimgo))
        .routes(routes!(esimfx))
        .routes(routes!(microesim))
        .routes(routes!(multiverse))
}

/// Headers worth keeping with a stored event (never auth secrets such as eSIMfx's `token`).
const KEPT_HEADERS: &[&str] = &[
    "content-type",
    "user-agent",
    "x-request-id",
    "x-signature-sha256",
];

fn kept_headers(h: &HeaderMap) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    for name in KEPT_HEADERS {
        if let Some(v) = h.get(*name).and_then(|v| v.to_str().ok()) {
            m.insert((*name).to_string(), json!(v));
        }
    }
    serde_json::Value::Object(m)
}

/// The body each vendor expects back.
fn acknowledgement(vendor: VendorId) -> Response {
    match vendor {
        // [assumption] MicroEsim's push expects its own success envelope.
        VendorId::MicroEsim => Json(json!({"code": 1, "msg": "Success"})).into_response(),
        _ => Json(json!({"received": true})).into_response(),
    }
}

async fn handle(state: AppState, vendor: VendorId, request: Request) -> ApiResult<Response> {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if let Some(allowed) = state.config.vendors.callback_ips.get(vendor.as_str()) {
        if !allowed.is_empty() && !peer.is_some_and(|ip| allowed.contains(&ip)) {
            metrics::counter!("webhook_events_total", "vendor" => vendor.as_str(), "result" => "forbidden_sender").increment(1);
            tracing::warn!(%vendor, ?peer, "callback from a sender outside the allowlist");
            return Err(ApiError::forbidden(
                "sender_not_allowed",
                "this sender may not post callbacks",
            ));
        }
    }
    let Some(adapter) = state.vendors.adapter(vendor) else {
        return Err(ApiError::not_found(
            "vendor_not_enabled",
            "this vendor is not enabled",
        ));
    };
    let (parts, body) = request.into_parts();
    let body: Bytes = axum::body::to_bytes(body, MAX_CALLBACK_BYTES)
        .await
        .map_err(|_| {
            ApiError::bad_request("body_too_large", "callback body too large or unreadable")
        })?;
    let trust = match adapter.verify_callback(&parts.headers, &body) {
        Ok(t) => t,
        Err(e) => {
            metrics::counter!("webhook_events_total", "vendor" => vendor.as_str(), "result" => "unauthenticated").increment(1);
            tracing::warn!(%vendor, reason = %e, "callback failed verification");
            return Err(ApiError::unauthorized("callback verification failed"));
        }
    };
    let ctx = Ctx::from_state(&state);
    let events = match adapter.parse_callback(&parts.headers, &body) {
        Ok(events) => events,
        Err(e) => {
            // Stored for admins; answered 400 so a vendor that retries on 5xx does not
            // hammer us with a body that will never parse.
            let key = format!("unparseable:{}", hex::encode(Sha256::digest(&body)));
            store::events::insert(
                &state.pool,
                &NewEvent {
                    vendor: vendor.as_str(),
                    dedupe_key: &key,
                    kind: None,
                    headers: kept_headers(&parts.headers),
                    body: &body,
                    status: "unparseable",
                    error: Some(&e.to_string()),
                    order_ref: None,
                    iccid: None,
                    trusted: trust == CallbackTrust::Verified,
                },
            )
            .await?;
            metrics::counter!("webhook_events_total", "vendor" => vendor.as_str(), "result" => "unparseable").increment(1);
            return Err(ApiError::bad_request(
                "unparseable_callback",
                match e {
                    VendorError::InvalidCallback(m) => m,
                    other => other.to_string(),
                },
            ));
        }
    };
    // Stored raw first (own commit), then applied; see `callbacks::receive`.
    let results = callbacks::receive(
        &ctx,
        vendor,
        trust,
        kept_headers(&parts.headers),
        &body,
        &events,
    )
    .await?;
    for result in results {
        metrics::counter!("webhook_events_total", "vendor" => vendor.as_str(), "result" => result)
            .increment(1);
    }
    let trust_label = match trust {
        CallbackTrust::Verified => "verified",
        CallbackTrust::Hint => "hint",
    };
    tracing::info!(%vendor, events = events.len(), trust = trust_label, "vendor callback accepted");
    Ok(acknowledgement(vendor))
}

macro_rules! vendor_route {
    ($fn:ident, $vendor:expr, $path:literal, $desc:literal) => {
        #[doc = $desc]
        #[utoipa::path(
            post, path = $path, tag = "webhooks",
            request_body(content = String, description = "The vendor's own callback body, verified over its raw bytes"),
            responses(
                (status = 200, description = "Accepted (duplicates too)"),
                (status = 400, description = "Verified but not understood: stored for admins", body = ErrorBody),
                (status = 401, description = "Failed the vendor's authentication: nothing stored", body = ErrorBody),
                (status = 403, description = "Sender outside `<VENDOR>_CALLBACK_IPS`", body = ErrorBody),
                (status = 404, description = "Vendor not enabled", body = ErrorBody),
            )
        )]
        async fn $fn(State(state): State<AppState>, request: Request) -> ApiResult<Response> {
            handle(state, $vendor, request).await
        }
    };
}

vendor_route!(
    esimaccess,
    VendorId::EsimAccess,
    "/webhooks/esimaccess",
    "eSIM Access notifications (unsigned: a hint to re-read from its API)."
);
vendor_route!(
    esimgo,
    VendorId::EsimGo,
    "/webhooks/esimgo",
    "eSIM Go callbacks, verified with `X-Signature-SHA256` (HMAC-SHA256 of the raw body, base64 or hex)."
);
vendor_route!(
    esimfx,
    VendorId::EsimFx,
    "/webhooks/esimfx",
    "Nomad eSIMfx webhooks, verified with the `token` header."
);
vendor_route!(
    microesim,
    VendorId::MicroEsim,
    "/webhooks/microesim",
    "MicroEsim topupDetail-async push, form or JSON (unsigned: a hint)."
);
vendor_route!(
    multiverse,
    VendorId::Multiverse,
    "/webhooks/multiverse",
    "Multiverse provisioning callback (unsigned: a hint)."
);
