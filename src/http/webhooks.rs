//! `/webhooks/{vendor}`: one route per vendor. Each checks the sender allowlist, then the
//! vendor's own authentication over the raw bytes, before anything is parsed or stored.

use std::{net::SocketAddr, sync::Arc};

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
    domain::ids::check_text,
    error::{ApiError, ApiResult, ErrorBody},
    ordering::Ctx,
    store::{self, events::NewEvent},
    vendors::{CallbackTrust, VendorError, VendorEvent, VendorId},
};

/// Vendor callbacks are small; anything bigger is not a callback.
pub const MAX_CALLBACK_BYTES: usize = 256 * 1024;

/// Of a body that does not parse, only this much is kept for admins.
pub const UNPARSEABLE_SAMPLE_BYTES: usize = 4 * 1024;

/// Unparseable callbacks kept per vendor; beyond it they are counted, not stored, so
/// anonymous junk cannot grow the database (at most this × the sample size per vendor).
pub const MAX_UNPARSEABLE_PER_VENDOR: i64 = 500;

/// Longest id-like field (event id, order number, ICCID) taken from a callback.
pub const MAX_CALLBACK_FIELD_CHARS: usize = 256;

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

/// What a parsed callback carries is stored and looked up: the id-like fields bounded and
/// printable, and no control character in any text at all (an LPA string or a status text
/// with a NUL would make Postgres refuse the row).
fn check_event_fields(events: &[VendorEvent]) -> Result<(), VendorError> {
    for ev in events {
        let any_control = serde_json::to_vec(ev)
            .map(|json| crate::http::extract::json_has_control_escape(&json))
            .unwrap_or(true);
        if any_control {
            return Err(VendorError::InvalidCallback(
                "a text field contains control characters".into(),
            ));
        }
        let fields = [
            ("event id", Some(ev.dedupe_key.as_str())),
            ("order id", ev.order_id.as_deref()),
            ("vendor reference", ev.vendor_reference.as_deref()),
            ("iccid", ev.iccid.as_deref()),
        ];
        for (name, value) in fields {
            if let Some(v) = value {
                check_text(v, MAX_CALLBACK_FIELD_CHARS).map_err(|e| {
                    VendorError::InvalidCallback(format!(
                        "{name} {e} (1–{MAX_CALLBACK_FIELD_CHARS})"
                    ))
                })?;
            }
        }
    }
    Ok(())
}

/// Text from outside that goes into an `error` column or a response: printable and short.
fn printable(s: &str, max_chars: usize) -> String {
    let mut out: String = s
        .chars()
        .filter(|c| !c.is_control())
        .take(max_chars)
        .collect();
    if s.chars().count() > max_chars {
        out.push('…');
    }
    out
}

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
    let limiter = request.extensions().get::<Arc<CallbackLimiter>>().cloned();
    if limiter.is_some_and(|l| !l.allow(vendor)) {
        metrics::counter!("webhook_events_total", "vendor" => vendor.as_str(), "result" => "rate_limited").increment(1);
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
    let trust = match adapter.verify_callback(&parts.headers, &body) {
        Ok(t) => t,
        Err(e) => {
            metrics::counter!("webhook_events_total", "vendor" => vendor.as_str(), "result" => "unauthenticated").increment(1);
            tracing::warn!(%vendor, reason = %e, "callback failed verification");
            return Err(ApiError::unauthorized("callback verification failed"));
        }
    };
    let ctx = Ctx::from_state(&state);
    let parsed = adapter
        .parse_callback(&parts.headers, &body)
        .and_then(|events| check_event_fields(&events).map(|()| events));
    let events = match parsed {
        Ok(events) => events,
        Err(e) => {
            let message = printable(
                &match e {
                    VendorError::InvalidCallback(m) => m,
                    other => other.to_string(),
                },
                500,
            );
            // A sample is kept for admins, within a cap; answered 400 so a vendor that
            // retries on 5xx does not hammer us with a body that will never parse.
            store_unparseable(&state, vendor, &parts.headers, &body, trust, &message).await?;
            return Err(ApiError::bad_request("unparseable_callback", message));
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

async fn store_unparseable(
    state: &AppState,
    vendor: VendorId,
    headers: &HeaderMap,
    body: &[u8],
    trust: CallbackTrust,
    message: &str,
) -> ApiResult<()> {
    let kept: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM vendor_events WHERE vendor = $1 AND status = 'unparseable'",
    )
    .bind(vendor.as_str())
    .fetch_one(&state.pool)
    .await?;
    if kept >= MAX_UNPARSEABLE_PER_VENDOR {
        metrics::counter!("webhook_events_total", "vendor" => vendor.as_str(), "result" => "unparseable_dropped").increment(1);
        return Ok(());
    }
    let key = format!("unparseable:{}", hex::encode(Sha256::digest(body)));
    let sample = &body[..body.len().min(UNPARSEABLE_SAMPLE_BYTES)];
    let error = if sample.len() < body.len() {
        format!(
            "{message} (body of {} bytes, first {} kept)",
            body.len(),
            sample.len()
        )
    } else {
        message.to_string()
    };
    store::events::insert(
        &state.pool,
        &NewEvent {
            vendor: vendor.as_str(),
            dedupe_key: &key,
            kind: None,
            headers: kept_headers(headers),
            body: sample,
            status: "unparseable",
            error: Some(&error),
            order_ref: None,
            iccid: None,
            trusted: trust == CallbackTrust::Verified,
        },
    )
    .await?;
    metrics::counter!("webhook_events_total", "vendor" => vendor.as_str(), "result" => "unparseable").increment(1);
    Ok(())
}

macro_rules! vendor_route {
    ($fn:ident, $vendor:expr, $path:literal, $desc:literal) => {
        #[doc = $desc]
        #[utoipa::path(
            post, path = $path, tag = "webhooks",
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
