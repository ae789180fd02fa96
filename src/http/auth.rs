//! Bearer-token extractors: [`Admin`] for `/admin`, [`Storefront`] for `/v1`.

use crate::domain::secret::ExposeSecret;
use axum::{
    extract::FromRequestParts,
    http::{header, request::Parts},
};

use crate::{AppState, domain::api_key, http::error::ApiError};

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer <key> header"))?;
    let value = value
        .to_str()
        .map_err(|_| ApiError::unauthorized("malformed Authorization header"))?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        _ => Err(ApiError::unauthorized(
            "Authorization header must be `Bearer <key>`",
        )),
    }
}

/// Proof that the request carries `ADMIN_TOKEN`.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(expected) = &state.config.admin_token else {
            return Err(ApiError::forbidden(
                "admin_disabled",
                "the admin API is disabled: set ADMIN_TOKEN to enable it",
            ));
        };
        let token = bearer(parts)?;
        if api_key::secrets_equal(token, expected.expose_secret()) {
            Ok(Admin)
        } else {
            Err(ApiError::unauthorized("invalid admin token"))
        }
    }
}

/// The storefront an API key belongs to, in the key's mode. Every `/v1` query filters by
/// this id and this mode: nothing of the other mode is visible.
#[derive(Debug, Clone)]
pub struct Storefront {
    pub id: String,
    /// `sk_live_…` keys: live vendors only; `sk_test_…` keys: the built-in simulators only.
    pub livemode: bool,
}

impl Storefront {
    /// The storefront in its mode: what every `/v1` read and write is scoped to.
    pub fn owner(&self) -> (&str, bool) {
        (&self.id, self.livemode)
    }
}

impl FromRequestParts<AppState> for Storefront {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let presented = bearer(parts)?;
        let invalid = || ApiError::unauthorized("invalid or revoked API key");
        let lookup = api_key::lookup_of(presented).ok_or_else(invalid)?;
        // From this replica's memory once seen; a revocation reaches it within a second.
        let key = state.cache.key(lookup).await?.ok_or_else(invalid)?;
        if !api_key::matches(presented, &key.key_hash) || key.revoked {
            return Err(invalid());
        }
        if !state.mode_available(key.livemode) {
            return Err(mode_unavailable(key.livemode));
        }
        state.cache.mark_used(&key);
        tracing::Span::current().record("storefront_id", key.storefront_id.as_str());
        Ok(Storefront {
            id: key.storefront_id.clone(),
            livemode: key.livemode,
        })
    }
}

/// A valid key of a mode this gateway does not run: never answered from the other mode.
fn mode_unavailable(livemode: bool) -> ApiError {
    if livemode {
        ApiError::forbidden(
            "live_mode_unavailable",
            "this gateway has no live vendor configured: use the storefront's test key \
             (sk_test_…) or configure vendor credentials",
        )
    } else {
        ApiError::forbidden(
            "test_mode_unavailable",
            "test mode is off on this gateway (TEST_MODE=off): use the storefront's live key",
        )
    }
}
