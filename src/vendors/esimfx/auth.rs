//! eSIMfx's JWT: `POST /account/api/v1/auth` with the client id and key gives a token that
//! lives 1 h; it is cached for every caller, refreshed before it expires, and fetched again
//! once when a call answers 401/403 (see `EsimFx::send`).

use reqwest::StatusCode;

use super::{AUTH_PATH, EsimFx, decode, interpret, wire};
use crate::{
    domain::secret::{ExposeSecret, SecretString},
    vendors::{RejectKind, VendorError, support::Effect},
};

/// The statuses with which eSIMfx refuses a token.
pub(super) fn token_refused(status: StatusCode) -> bool {
    matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN)
}

impl EsimFx {
    /// The cached token and its generation (for [`crate::vendors::support::TokenCache::invalidate`]),
    /// fetching one when none is cached or the cached one is due.
    pub(super) async fn access_token(&self) -> Result<(SecretString, u64), VendorError> {
        self.token
            .get(|| async { Ok((self.authenticate().await?, self.refresh_after)) })
            .await
    }

    /// Fetches a token. Nothing else has been sent yet, so a failure here bought nothing:
    /// transport trouble is `Unreachable` even when the auth call itself timed out.
    async fn authenticate(&self) -> Result<SecretString, VendorError> {
        let body = wire::AuthRequest {
            client_id: self.creds.client_id.expose_secret(),
            client_key: self.creds.client_key.expose_secret(),
        };
        let request = self.http.client().post(self.url(AUTH_PATH)?).json(&body);
        let response = self.http.send("auth", request).await.map_err(|e| match e {
            VendorError::Unknown(m) | VendorError::Unreachable(m) => {
                VendorError::Unreachable(format!("authentication failed: {m}"))
            }
            other => other,
        })?;
        if token_refused(response.status) {
            return Err(VendorError::rejected(
                RejectKind::Auth,
                response.status.as_str(),
                "eSIMfx refused the client id / client key",
            ));
        }
        let data: wire::AuthData = match interpret(&response, Effect::Read) {
            Ok(data) => decode(data, &response)?,
            Err(VendorError::Rejected { code, message, .. }) => {
                return Err(VendorError::rejected(RejectKind::Auth, code, message));
            }
            Err(e) => {
                return Err(VendorError::Unreachable(format!(
                    "authentication failed: {e}"
                )));
            }
        };
        if data.access_token.trim().is_empty() {
            return Err(VendorError::Unreachable(
                "authentication returned no token".into(),
            ));
        }
        Ok(SecretString::from(data.access_token))
    }
}
