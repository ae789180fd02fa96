//! Cross-cutting request handling: request ids, the error shape for every rejection, metrics.

use std::time::Instant;

use axum::{
    body::Body,
    extract::{MatchedPath, Request},
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use http_body_util::BodyExt;

use crate::http::error::{REQUEST_ID, error_response};

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Longest client-chosen `X-Request-Id` kept; longer or unprintable ones are replaced.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// Longest request target (path and query) served; longer ones are a 414 `uri_too_long`.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Largest header section (names, values and their separators) served; larger ones, or more
/// than `MAX_HEADER_COUNT` headers, are a 431 `headers_too_large`.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
pub const MAX_HEADER_COUNT: usize = 100;

/// Headers that mean one thing: two of them are ambiguous (which `Authorization` wins?), so
/// the request is refused rather than guessed at.
const SINGLETON_HEADERS: &[&str] = &[
    "authorization",
    "content-type",
    "content-length",
    "host",
    "idempotency-key",
];

/// Runs before the request id is assigned: a client's `X-Request-Id` is kept only when it is
/// one visible-ASCII value of at most 128 characters; otherwise a fresh id replaces it, so
/// logs and echoed headers never carry what the client smuggled in.
pub async fn sanitize_request_id(mut req: Request, next: Next) -> Response {
    let headers = req.headers();
    let mut values = headers.get_all(REQUEST_ID_HEADER).iter();
    let keep = match (values.next(), values.next()) {
        (Some(v), None) => is_valid_request_id(v.as_bytes()),
        (None, _) => true,
        _ => false,
    };
    if !keep {
        req.headers_mut().remove(REQUEST_ID_HEADER);
        req.extensions_mut().insert(ReplacedRequestId);
    }
    next.run(req).await
}

/// Marks a request whose client-sent `X-Request-Id` was dropped (several or invalid).
#[derive(Debug, Clone, Copy)]
pub struct ReplacedRequestId;

fn is_valid_request_id(v: &[u8]) -> bool {
    !v.is_empty() && v.len() <= MAX_REQUEST_ID_LEN && v.iter().all(u8::is_ascii_graphic)
}

/// The URI and header limits, checked here rather than by hyper so the answer has the error
/// shape and a request id: hyper's own limits (`http::server`) sit above these and answer
/// with an empty body only for requests beyond both.
fn oversized(req: &Request) -> Option<Response> {
    let uri_len = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if uri_len > MAX_URI_BYTES {
        return Some(error_response(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            format!("the request URI is longer than {MAX_URI_BYTES} bytes"),
        ));
    }
    let headers = req.headers();
    // Each header line is `name: value\r\n`.
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if headers.len() > MAX_HEADER_COUNT || bytes > MAX_HEADER_BYTES {
        return Some(error_response(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!(
                "the request headers exceed {MAX_HEADER_COUNT} fields or {MAX_HEADER_BYTES} bytes"
            ),
        ));
    }
    None
}

fn duplicated_singleton(req: &Request) -> Option<&'static str> {
    SINGLETON_HEADERS
        .iter()
        .copied()
        .find(|name| req.headers().get_all(*name).iter().nth(1).is_some())
}

/// Runs every request inside its request id's scope, turns any non-JSON error response
/// (axum's plain-text rejections, 404/405 fallbacks, timeouts, body limits, caught panics)
/// into the contract's JSON error shape, and records request metrics.
pub async fn request_context(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = method_label(req.method());

    let response = REQUEST_ID
        .scope(request_id.clone(), async move {
            if let Some(refused) = oversized(&req) {
                return refused;
            }
            if let Some(name) = duplicated_singleton(&req) {
                return crate::http::error::ApiError::bad_request(
                    "duplicate_header",
                    format!("the {name} header may be sent only once"),
                )
                .into_response();
            }
            let response = next.run(req).await;
            shape_error(response).await
        })
        .await;

    let status = response.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "method" => method, "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

fn is_json(resp: &Response) -> bool {
    resp.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"))
}

async fn shape_error(resp: Response) -> Response {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(&resp) {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    // Rejection bodies are short plain text; cap what we read from anything else.
    let text = match http_body_util::Limited::new(body, 4096).collect().await {
        Ok(b) => String::from_utf8_lossy(&b.to_bytes()).trim().to_string(),
        Err(_) => String::new(),
    };
    let (code, default_message) = classify(status);
    let message = if text.is_empty() || status.is_server_error() {
        default_message.to_string()
    } else {
        text
    };
    let mut shaped = error_response(status, code, message);
    // Keep headers such as `Allow` on 405.
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            shaped.headers_mut().insert(name.clone(), value.clone());
        }
    }
    shaped
}

fn classify(status: StatusCode) -> (&'static str, &'static str) {
    match status {
        StatusCode::BAD_REQUEST => ("bad_request", "the request is malformed"),
        StatusCode::UNAUTHORIZED => ("unauthorized", "missing or invalid credentials"),
        StatusCode::FORBIDDEN => ("forbidden", "not allowed"),
        StatusCode::NOT_FOUND => ("not_found", "no such resource"),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this method is not allowed on this path",
        ),
        StatusCode::REQUEST_TIMEOUT => ("request_timeout", "the request took too long"),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "the request body is too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ("unsupported_media_type", "unsupported Content-Type")
        }
        StatusCode::UNPROCESSABLE_ENTITY => ("invalid_body", "the request body is invalid"),
        StatusCode::TOO_MANY_REQUESTS => ("rate_limited", "too many requests"),
        StatusCode::SERVICE_UNAVAILABLE => ("service_unavailable", "temporarily unavailable"),
        StatusCode::GATEWAY_TIMEOUT => ("timeout", "the request took too long to process"),
        s if s.is_server_error() => (
            "internal_error",
            "internal error; quote the request_id when reporting it",
        ),
        _ => ("error", "the request failed"),
    }
}

/// Metric label for a method: the standard ones by name, anything else `other`, so a client
/// cannot create label values (and series) at will.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

/// Answer for a panicking handler: the panic is logged, the client gets a shaped 500.
pub fn panic_response(err: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = err
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| err.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    tracing::error!(panic = detail, "handler panicked");
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    resp
}

/// Router fallback: unknown paths.
pub async fn not_found() -> crate::http::error::ApiError {
    crate::http::error::ApiError::not_found("not_found", "no route for this path")
}
