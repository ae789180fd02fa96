//! Nomad eSIMfx credentials: an OAuth client id and key, and the optional shared token its
//! webhooks carry in the `token` header.

use crate::{
    domain::secret::{ExposeSecret, SecretString},
    vendors::credentials::{CredentialEnv, Credentials, EnvError},
};

pub const CLIENT_ID_VAR: &str = "ESIMFX_CLIENT_ID";
pub const CLIENT_KEY_VAR: &str = "ESIMFX_CLIENT_KEY";
/// Optional: without it every webhook is refused.
pub const WEBHOOK_TOKEN_VAR: &str = "ESIMFX_WEBHOOK_TOKEN";
pub const BASE_URL_VAR: &str = "ESIMFX_BASE_URL";
pub const CALLBACK_IPS_VAR: &str = "ESIMFX_CALLBACK_IPS";
pub const DEFAULT_BASE_URL: &str = "https://api.esimfx.com";

#[derive(Debug, Clone)]
pub struct EsimFxCredentials {
    pub client_id: SecretString,
    pub client_key: SecretString,
    pub webhook_token: Option<SecretString>,
    pub base_url: url::Url,
}

impl Credentials for EsimFxCredentials {
    fn from_env(env: &CredentialEnv<'_>) -> Result<Option<Self>, EnvError> {
        let Some([client_id, client_key]) = env.group([CLIENT_ID_VAR, CLIENT_KEY_VAR])? else {
            return Ok(None);
        };
        Ok(Some(EsimFxCredentials {
            client_id,
            client_key,
            webhook_token: env.secret(WEBHOOK_TOKEN_VAR),
            base_url: env.url(BASE_URL_VAR, DEFAULT_BASE_URL)?,
        }))
    }

    fn to_env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            (CLIENT_ID_VAR, self.client_id.expose_secret().to_string()),
            (CLIENT_KEY_VAR, self.client_key.expose_secret().to_string()),
        ];
        if let Some(t) = &self.webhook_token {
            env.push((WEBHOOK_TOKEN_VAR, t.expose_secret().to_string()));
        }
        env.push((BASE_URL_VAR, self.base_url.to_string()));
        env
    }

    fn base_url(&self) -> &url::Url {
        &self.base_url
    }
}
