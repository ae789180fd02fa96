//! Multiverse's two auth layers: the per-request `X-Multiverse-Access-Token` (a hash of the
//! time and the security token) and an OAuth2 client-credentials token from
//! `POST /auth/token`, cached for every caller and refreshed a little before it expires; a
//! call refused with 401001 fetches it again once (see `Multiverse::call_with`).

use std::time::Duration;

use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{Multiverse, check_status, parse, wire};
use crate::{
    domain::secret::{ExposeSecret, SecretString},
    vendors::VendorError,
};

/// `X-Multiverse-Access-Token` for a 10-digit unix-seconds timestamp.
pub fn access_token(user_id: &str, security_token: &str, timestamp: &str) -> String {
    let hash = hex::encode(Sha256::digest(format!("{timestamp}{security_token}")));
    format!(
        "Bearer {}",
        BASE64.encode(format!("{user_id}/{timestamp}/{hash}"))
    )
}

/// `Authorization` for `POST /auth/token`.
pub fn basic_auth(client_id: &str, client_secret: &str) -> String {
    format!(
        "Basic {}",
        BASE64.encode(format!("{client_id}:{client_secret}"))
    )
}

/// Refresh a little before the vendor's expiry so a token never dies in flight.
pub(super) fn refresh_margin(lifetime: Duration) -> Duration {
    let margin = (lifetime / 10).min(Duration::from_secs(60));
    lifetime - margin
}

fn token_call_not_a_purchase(e: VendorError) -> VendorError {
    match e {
        VendorError::Unknown(msg) => VendorError::Unreachable(format!("token request: {msg}")),
        other => other,
    }
}

impl Multiverse {
    pub(super) fn current_access_token(&self) -> String {
        let ts = chrono::Utc::now().timestamp().to_string();
        access_token(
            self.creds.user_id.expose_secret(),
            self.creds.security_token.expose_secret(),
            &ts,
        )
    }

    /// The OAuth `Authorization` value and its generation (for
    /// [`crate::vendors::support::TokenCache::invalidate`]), fetching a token when none is
    /// cached or the cached one is due for refresh.
    pub(super) async fn authorization(&self) -> Result<(SecretString, u64), VendorError> {
        self.tokens
            .get(|| async {
                let (authorization, lifetime) = self.request_token().await?;
                Ok((authorization, refresh_margin(lifetime)))
            })
            .await
    }

    async fn request_token(&self) -> Result<(SecretString, Duration), VendorError> {
        let request = self
            .http
            .client()
            .post(self.url("/auth/token")?)
            .header(
                "Authorization",
                basic_auth(
                    self.creds.client_id.expose_secret(),
                    self.creds.client_secret.expose_secret(),
                ),
            )
            .header("X-Multiverse-Access-Token", self.current_access_token())
            .json(&json!({"grant_type": "client_credentials"}));
        // No purchase has been sent yet, so a lost token answer cannot have bought anything.
        let raw = self
            .http
            .send("auth", request)
            .await
            .map_err(token_call_not_a_purchase)?;
        let raw = check_status(raw).map_err(token_call_not_a_purchase)?;
        let token: wire::TokenResponse = parse(&raw).map_err(token_call_not_a_purchase)?;
        token.into_authorization()
    }
}
