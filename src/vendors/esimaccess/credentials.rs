//! eSIM Access credentials: an access code and a secret key (the HMAC key of every request).

use crate::{
    domain::secret::{ExposeSecret, SecretString},
    vendors::credentials::{CredentialEnv, Credentials, EnvError},
};

pub const ACCESS_CODE_VAR: &str = "ESIMACCESS_ACCESS_CODE";
pub const SECRET_KEY_VAR: &str = "ESIMACCESS_SECRET_KEY";
pub const BASE_URL_VAR: &str = "ESIMACCESS_BASE_URL";
pub const CALLBACK_IPS_VAR: &str = "ESIMACCESS_CALLBACK_IPS";
pub const DEFAULT_BASE_URL: &str = "https://api.esimaccess.com";

#[derive(Debug, Clone)]
pub struct EsimAccessCredentials {
    pub access_code: SecretString,
    pub secret_key: SecretString,
    pub base_url: url::Url,
}

impl Credentials for EsimAccessCredentials {
    fn from_env(env: &CredentialEnv<'_>) -> Result<Option<Self>, EnvError> {
        let Some([access_code, secret_key]) = env.group([ACCESS_CODE_VAR, SECRET_KEY_VAR])? else {
            return Ok(None);
        };
        Ok(Some(EsimAccessCredentials {
            access_code,
            secret_key,
            base_url: env.url(BASE_URL_VAR, DEFAULT_BASE_URL)?,
        }))
    }

    fn to_env(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                ACCESS_CODE_VAR,
                self.access_code.expose_secret().to_string(),
            ),
            (SECRET_KEY_VAR, self.secret_key.expose_secret().to_string()),
            (BASE_URL_VAR, self.base_url.to_string()),
        ]
    }

    fn base_url(&self) -> &url::Url {
        &self.base_url
    }
}
