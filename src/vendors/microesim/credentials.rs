//! MicroEsim credentials: an account, a secret and the hex salt from which the request
//! signing key is derived.

use crate::{
    domain::secret::{ExposeSecret, SecretString},
    vendors::credentials::{CredentialEnv, Credentials, EnvError},
};

pub const ACCOUNT_VAR: &str = "MICROESIM_ACCOUNT";
pub const SECRET_VAR: &str = "MICROESIM_SECRET";
pub const SALT_HEX_VAR: &str = "MICROESIM_SALT_HEX";
pub const BASE_URL_VAR: &str = "MICROESIM_BASE_URL";
pub const CALLBACK_IPS_VAR: &str = "MICROESIM_CALLBACK_IPS";
pub const DEFAULT_BASE_URL: &str = "https://www.microesim.top";

#[derive(Debug, Clone)]
pub struct MicroEsimCredentials {
    pub account: SecretString,
    pub secret: SecretString,
    pub salt_hex: SecretString,
    pub base_url: url::Url,
}

impl Credentials for MicroEsimCredentials {
    fn from_env(env: &CredentialEnv<'_>) -> Result<Option<Self>, EnvError> {
        let Some([account, secret, salt_hex]) =
            env.group([ACCOUNT_VAR, SECRET_VAR, SALT_HEX_VAR])?
        else {
            return Ok(None);
        };
        if hex::decode(salt_hex.expose_secret()).is_err() {
            return Err(EnvError {
                var: SALT_HEX_VAR,
                reason: "must be hex".into(),
            });
        }
        Ok(Some(MicroEsimCredentials {
            account,
            secret,
            salt_hex,
            base_url: env.url(BASE_URL_VAR, DEFAULT_BASE_URL)?,
        }))
    }

    fn to_env(&self) -> Vec<(&'static str, String)> {
        vec![
            (ACCOUNT_VAR, self.account.expose_secret().to_string()),
            (SECRET_VAR, self.secret.expose_secret().to_string()),
            (SALT_HEX_VAR, self.salt_hex.expose_secret().to_string()),
            (BASE_URL_VAR, self.base_url.to_string()),
        ]
    }

    fn base_url(&self) -> &url::Url {
        &self.base_url
    }
}
