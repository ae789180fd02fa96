//! Extractors whose rejections use the contract's error shape instead of axum's plain text,
//! and which refuse control characters before any handler sees them: Postgres rejects NUL in
//! `text`, so a `\u0000` that got through would be a 500 instead of a clear 4xx.

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Request},
    http::{HeaderMap, header, request::Parts},
};
use serde::de::DeserializeOwned;

use crate::{
    domain::ids::{self, has_control},
    http::error::ApiError,
};

/// Longest query parameter value any endpoint takes (cursors are the longest, < 200).
pub const MAX_QUERY_VALUE_CHARS: usize = 1024;

/// A JSON body (`Content-Type: application/json`) with no control character in any string.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json_content_type(req.headers()) {
            return Err(ApiError::UnsupportedMediaType {
                message: "expected a request body with Content-Type: application/json".into(),
            });
        }
        let body = Bytes::from_request(req, state).await?;
        if json_has_control_escape(&body) {
            return Err(control_in_body());
        }
        let axum::Json(value) = axum::Json::<T>::from_bytes(&body)?;
        Ok(ApiJson(value))
    }
}

fn is_json_content_type(headers: &HeaderMap) -> bool {
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = ct.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
        || (essence.len() > 5
            && essence[..essence.len() - 5].contains('/')
            && essence[essence.len() - 5..].eq_ignore_ascii_case("+json"))
}

fn control_in_body() -> ApiError {
    ApiError::unprocessable(
        "invalid_body",
        "text fields must not contain control characters",
    )
}

/// Raw control characters are invalid inside JSON strings, so in valid JSON they can only
/// arrive escaped: `\n`, `\r`, `\t`, `\b`, `\f` or `\uXXXX` naming one.
pub fn json_has_control_escape(body: &[u8]) -> bool {
    let mut i = 0;
    while i < body.len() {
        if body[i] != b'\\' {
            i += 1;
            continue;
        }
        match body.get(i + 1) {
            Some(b'n' | b'r' | b't' | b'b' | b'f') => return true,
            Some(b'u') => {
                let code = body
                    .get(i + 2..i + 6)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u32::from_str_radix(h, 16).ok());
                if code
                    .and_then(char::from_u32)
                    .is_some_and(|c| c.is_control())
                {
                    return true;
                }
                i += 6;
            }
            _ => i += 2,
        }
    }
    false
}

/// Query parameters, each value bounded and free of control characters (`%00` is a 400).
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            if has_control(&name) || has_control(&value) {
                return Err(ApiError::bad_request(
                    "invalid_query",
                    format!("{}: must not contain control characters", printable(&name)),
                ));
            }
            if value.chars().count() > MAX_QUERY_VALUE_CHARS {
                return Err(ApiError::bad_request(
                    "invalid_query",
                    format!(
                        "{}: at most {MAX_QUERY_VALUE_CHARS} characters",
                        printable(&name)
                    ),
                ));
            }
        }
        let axum::extract::Query(value) = axum::extract::Query::<T>::try_from_uri(&parts.uri)?;
        Ok(ApiQuery(value))
    }
}

/// A parameter name safe to echo in a message.
fn printable(s: &str) -> String {
    ids::printable(s, 64)
}

/// Path parameters. A path with a control character names nothing we could have stored,
/// so it is a 404 before any lookup.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<Vec<(String, String)>>::from_request_parts(parts, state).await?;
        if raw.iter().any(|(_, v)| has_control(v)) {
            return Err(ApiError::not_found("not_found", "no such resource"));
        }
        let axum::extract::Path(value) =
            axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(ApiPath(value))
    }
}

/// For endpoints whose JSON body is optional: an empty body is `None`.
pub fn optional_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<Option<T>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    if json_has_control_escape(body) {
        return Err(control_in_body());
    }
    serde_json::from_slice(body).map(Some).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            ApiError::bad_request("malformed_json", format!("malformed JSON: {e}"))
        } else {
            ApiError::unprocessable("invalid_body", format!("invalid body: {e}"))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_escapes_are_found_in_json_strings() {
        assert!(json_has_control_escape(br#"{"a":"x\u0000y"}"#));
        assert!(json_has_control_escape(br#"{"a":"x\u001Fy"}"#));
        assert!(json_has_control_escape(br#"{"a":"x\u0085y"}"#));
        assert!(json_has_control_escape(br#"{"a":"x\r\ny"}"#));
        assert!(
            !json_has_control_escape(br#"{"a":"x\\ny"}"#),
            "an escaped backslash then n"
        );
        assert!(!json_has_control_escape(br#"{"a":"caf\u00e9 \"q\" \/"}"#));
    }
}
