//! One error type for every HTTP answer that is not a success, rendered as the contract's
//! shape: `{"error": {"code", "message", "request_id"}}`.

use std::borrow::Cow;

use axum::{
    Json,
    extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    callbacks::{CallbackError, ingest::IngestError},
    ordering::{OrderingError, place::REPLAY_RETRY_AFTER_SECS},
};

tokio::task_local! {
    /// The current request's id, set by the request-context middleware so that errors built
    /// deep inside a handler can carry it.
    pub static REQUEST_ID: String;
}

pub fn current_request_id() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_default()
}

type Text = Cow<'static, str>;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest { code: &'static str, message: Text },
    #[error("{message}")]
    Unprocessable { code: &'static str, message: Text },
    #[error("{message}")]
    UnsupportedMediaType { message: Text },
    #[error("the request body is too large")]
    PayloadTooLarge,
    #[error("{message}")]
    TooManyRequests { message: Text },
    #[error("{message}")]
    Unauthorized { code: &'static str, message: Text },
    #[error("{message}")]
    Forbidden { code: &'static str, message: Text },
    #[error("{message}")]
    NotFound { code: &'static str, message: Text },
    #[error("this method is not allowed on this path")]
    MethodNotAllowed,
    #[error("{message}")]
    Conflict { code: &'static str, message: Text },
    /// 409 with `Retry-After`: the resource is being worked on right now.
    #[error("{message}")]
    Busy {
        code: &'static str,
        message: Text,
        retry_after_secs: u32,
    },
    #[error("{message}")]
    Unavailable { code: &'static str, message: Text },
    /// A vendor failed while we were acting for the caller.
    #[error("{message}")]
    BadGateway { code: &'static str, message: Text },
    /// Anything unexpected. The detail is logged, never sent to the client.
    #[error("internal error: {0}")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<Text>) -> Self {
        Self::BadRequest {
            code,
            message: message.into(),
        }
    }
    pub fn unprocessable(code: &'static str, message: impl Into<Text>) -> Self {
        Self::Unprocessable {
            code,
            message: message.into(),
        }
    }
    pub fn unauthorized(message: impl Into<Text>) -> Self {
        Self::Unauthorized {
            code: "unauthorized",
            message: message.into(),
        }
    }
    pub fn forbidden(code: &'static str, message: impl Into<Text>) -> Self {
        Self::Forbidden {
            code,
            message: message.into(),
        }
    }
    pub fn not_found(code: &'static str, message: impl Into<Text>) -> Self {
        Self::NotFound {
            code,
            message: message.into(),
        }
    }
    pub fn conflict(code: &'static str, message: impl Into<Text>) -> Self {
        Self::Conflict {
            code,
            message: message.into(),
        }
    }
    pub fn busy(code: &'static str, message: impl Into<Text>, retry_after_secs: u32) -> Self {
        Self::Busy {
            code,
            message: message.into(),
            retry_after_secs,
        }
    }
    pub fn unavailable(code: &'static str, message: impl Into<Text>) -> Self {
        Self::Unavailable {
            code,
            message: message.into(),
        }
    }

    pub fn bad_gateway(code: &'static str, message: impl Into<Text>) -> Self {
        Self::BadGateway {
            code,
            message: message.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict { .. } | Self::Busy { .. } => StatusCode::CONFLICT,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::BadGateway { .. } => StatusCode::BAD_GATEWAY,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { code, .. }
            | Self::Unprocessable { code, .. }
            | Self::Unauthorized { code, .. }
            | Self::Forbidden { code, .. }
            | Self::NotFound { code, .. }
            | Self::Conflict { code, .. }
            | Self::Busy { code, .. }
            | Self::Unavailable { code, .. }
            | Self::BadGateway { code, .. } => code,
            Self::UnsupportedMediaType { .. } => "unsupported_media_type",
            Self::PayloadTooLarge => "payload_too_large",
            Self::TooManyRequests { .. } => "rate_limited",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Internal(_) => "internal_error",
        }
    }

    fn public_message(&self) -> String {
        match self {
            Self::Internal(_) => "internal error; quote the request_id when reporting it".into(),
            other => other.to_string(),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut => {
                Self::unavailable("database_unavailable", "the database is not reachable")
            }
            other => Self::Internal(anyhow::Error::new(other)),
        }
    }
}

/// The error shape of the contract, also used to document every error in OpenAPI.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable snake_case identifier, e.g. `plan_not_found`.
    #[schema(example = "plan_not_found")]
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// Equals the `X-Request-Id` response header.
    pub request_id: String,
}

/// Builds the JSON error response every error path goes through.
pub fn error_response(status: StatusCode, code: &str, message: String) -> Response {
    let body = ErrorBody {
        error: ErrorDetail {
            code: code.to_string(),
            message,
            request_id: current_request_id(),
        },
    };
    let mut resp = (status, Json(body)).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Internal(e) = &self {
            tracing::error!(error = format!("{e:#}"), "internal error");
        }
        let mut resp = error_response(self.status(), self.code(), self.public_message());
        let retry_after = match &self {
            Self::Busy {
                retry_after_secs, ..
            } => Some(HeaderValue::from(*retry_after_secs)),
            Self::TooManyRequests { .. } => Some(HeaderValue::from_static("1")),
            _ => None,
        };
        if let Some(v) = retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::JsonDataError(e) => Self::unprocessable("invalid_body", e.body_text()),
            JsonRejection::JsonSyntaxError(e) => Self::bad_request("malformed_json", e.body_text()),
            JsonRejection::MissingJsonContentType(_) => Self::UnsupportedMediaType {
                message: "expected a request body with Content-Type: application/json".into(),
            },
            // A chunked body over the limit is only found out while reading it.
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => Self::PayloadTooLarge,
            other => Self::bad_request("invalid_body", other.body_text()),
        }
    }
}

impl From<BytesRejection> for ApiError {
    fn from(r: BytesRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Self::PayloadTooLarge
        } else {
            Self::bad_request("invalid_body", r.body_text())
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::bad_request("invalid_query", r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        Self::bad_request("invalid_path", r.body_text())
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Every refusal of the ordering services as its HTTP answer: the status and `code` here,
/// the sentence from the service.
impl From<OrderingError> for ApiError {
    fn from(e: OrderingError) -> Self {
        let message = e.to_string();
        match e {
            OrderingError::IdempotencyKeyReused => {
                Self::conflict("idempotency_key_reused", message)
            }
            OrderingError::IdempotencyKeyInUse => {
                Self::busy("idempotency_key_in_use", message, REPLAY_RETRY_AFTER_SECS)
            }
            OrderingError::PlanNotFound => Self::not_found("plan_not_found", message),
            OrderingError::PriceChanged(_) => Self::conflict("price_changed", message),
            OrderingError::OrderNotFound => Self::not_found("order_not_found", message),
            OrderingError::EsimNotFound => Self::not_found("esim_not_found", message),
            OrderingError::TopupRefused(r) => Self::conflict(r.code(), message),
            OrderingError::TopupPlanNotFound => Self::not_found("topup_plan_not_found", message),
            OrderingError::TopupPlansUnavailable => {
                Self::unavailable("topup_plans_unavailable", message)
            }
            OrderingError::NotCancellable(_) => Self::conflict("order_not_cancellable", message),
            OrderingError::OrderBusy(_) => Self::busy("order_busy", message, 1),
            OrderingError::OrderFinished(_) => Self::conflict("order_finished", message),
            OrderingError::VendorOrderExists { .. } => {
                Self::conflict("vendor_order_exists", message)
            }
            OrderingError::VendorDisabled => Self::unavailable("vendor_disabled", message),
            OrderingError::Vendor(_) => Self::bad_gateway("vendor_error", message),
            OrderingError::Database(e) => e.into(),
            OrderingError::Internal(e) => Self::Internal(e),
        }
    }
}

/// A callback that could not be applied: stored already, so the answer is a plain error
/// and the vendor's redelivery (or the callback worker) applies it later.
impl From<CallbackError> for ApiError {
    fn from(e: CallbackError) -> Self {
        match e {
            CallbackError::Database(e) => e.into(),
            other => Self::Internal(other.into()),
        }
    }
}

/// A callback refused before it was stored, or stored and not applied yet.
impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::VendorNotEnabled => {
                ApiError::not_found("vendor_not_enabled", "this vendor is not enabled")
            }
            IngestError::Unauthenticated => ApiError::unauthorized("callback verification failed"),
            IngestError::Unparseable(message) => {
                ApiError::bad_request("unparseable_callback", message)
            }
            IngestError::Store(e) => e.into(),
            IngestError::Apply(e) => e.into(),
        }
    }
}
