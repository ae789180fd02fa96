//! eSIM Go credentials: one API key (`X-API-Key`), which also signs its callbacks.

use crate::{
    domain::secret::{ExposeSecret, SecretString},
    vendors::credentials::{CredentialEnv, Credentials, EnvError},
};

pub const API_KEY_VAR: &str = "ESIMGO_API_KEY";
pub const BASE_URL_VAR: &str = "ESIMGO_BASE_URL";
pub const CALLBACK_IPS_VAR: &str = "ESIMGO_CALLBACK_IPS";
/// The base URL carries the API version: paths are appended to it, never joined.
pub const DEFAULT_BASE_URL: &str = "https://api.esim-go.com/v2.4";

#[derive(Debug, Clone)]
pub struct EsimGoCredentials {
    pub api_key: SecretString,
    pub base_url: url::Url,
}

impl Credentials for EsimGoCredentials {
    fn from_env(env: &CredentialEnv<'_>) -> Result<Option<Self>, EnvError> {
        let Some([api_key]) = env.group([API_KEY_VAR])? else {
            return Ok(None);
        };
        Ok(Some(EsimGoCredentials {
            api_key,
            base_url: env.url(BASE_URL_VAR, DEFAULT_BASE_URL)?,
        }))
    }

    fn to_env(&self) -> Vec<(&'static str, String)> {
        vec![
            (API_KEY_VAR, self.api_key.expose_secret().to_string()),
            (BASE_URL_VAR, self.base_url.to_string()),
        ]
    }

    fn base_url(&self) -> &url::Url {
        &self.base_url
    }
}
