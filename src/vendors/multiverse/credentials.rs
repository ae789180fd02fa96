//! Multiverse credentials: the user id and security token of the per-request access-token
//! header, and the OAuth2 client-credentials pair.

use crate::{
    domain::secret::{ExposeSecret, SecretString},
    vendors::credentials::{CredentialEnv, Credentials, EnvError},
};

pub const USER_ID_VAR: &str = "MULTIVERSE_USER_ID";
pub const SECURITY_TOKEN_VAR: &str = "MULTIVERSE_SECURITY_TOKEN";
pub const CLIENT_ID_VAR: &str = "MULTIVERSE_CLIENT_ID";
pub const CLIENT_SECRET_VAR: &str = "MULTIVERSE_CLIENT_SECRET";
pub const BASE_URL_VAR: &str = "MULTIVERSE_BASE_URL";
pub const CALLBACK_IPS_VAR: &str = "MULTIVERSE_CALLBACK_IPS";
pub const DEFAULT_BASE_URL: &str = "https://multiverse-api.sim-check.info";

#[derive(Debug, Clone)]
pub struct MultiverseCredentials {
    pub user_id: SecretString,
    pub security_token: SecretString,
    pub client_id: SecretString,
    pub client_secret: SecretString,
    pub base_url: url::Url,
}

impl Credentials for MultiverseCredentials {
    fn from_env(env: &CredentialEnv<'_>) -> Result<Option<Self>, EnvError> {
        let Some([user_id, security_token, client_id, client_secret]) = env.group([
            USER_ID_VAR,
            SECURITY_TOKEN_VAR,
            CLIENT_ID_VAR,
            CLIENT_SECRET_VAR,
        ])?
        else {
            return Ok(None);
        };
        Ok(Some(MultiverseCredentials {
            user_id,
            security_token,
            client_id,
            client_secret,
            base_url: env.url(BASE_URL_VAR, DEFAULT_BASE_URL)?,
        }))
    }

    fn to_env(&self) -> Vec<(&'static str, String)> {
        vec![
            (USER_ID_VAR, self.user_id.expose_secret().to_string()),
            (
                SECURITY_TOKEN_VAR,
                self.security_token.expose_secret().to_string(),
            ),
            (CLIENT_ID_VAR, self.client_id.expose_secret().to_string()),
            (
                CLIENT_SECRET_VAR,
                self.client_secret.expose_secret().to_string(),
            ),
            (BASE_URL_VAR, self.base_url.to_string()),
        ]
    }

    fn base_url(&self) -> &url::Url {
        &self.base_url
    }
}
