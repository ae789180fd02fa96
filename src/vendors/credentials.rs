//! Vendor credentials from the environment. Each vendor's own variables and their parsing
//! live in its folder (`<vendor>/credentials.rs`); this module holds the reader they share
//! and [`VendorCredentials`], which the vendor table fills with one field per vendor.

use std::{collections::BTreeMap, net::IpAddr};

use crate::domain::secret::SecretString;

/// A bad vendor variable: which one, and why (the value itself is never quoted when it
/// may be a secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvError {
    pub var: &'static str,
    pub reason: String,
}

/// Reads variables through a lookup function so tests need not touch the process
/// environment. Blank values count as unset.
#[derive(Clone, Copy)]
pub struct CredentialEnv<'a> {
    get: &'a dyn Fn(&str) -> Option<String>,
}

impl<'a> CredentialEnv<'a> {
    pub fn new(get: &'a dyn Fn(&str) -> Option<String>) -> Self {
        CredentialEnv { get }
    }

    fn raw(&self, var: &'static str) -> Option<String> {
        (self.get)(var).filter(|v| !v.trim().is_empty())
    }

    pub fn secret(&self, var: &'static str) -> Option<SecretString> {
        self.raw(var).map(SecretString::from)
    }

    /// An http(s) base URL, `default` when unset.
    pub fn url(&self, var: &'static str, default: &str) -> Result<url::Url, EnvError> {
        match self.raw(var) {
            None => Ok(url::Url::parse(default).expect("valid default url")),
            Some(v) => parse_http_url(v.trim()).map_err(|reason| EnvError {
                var,
                reason: format!("{reason} (got {v:?})"),
            }),
        }
    }

    /// All-or-nothing credential groups: a half-configured vendor is an error, not a silent
    /// fallback to the sandbox.
    pub fn group<const N: usize>(
        &self,
        vars: [&'static str; N],
    ) -> Result<Option<[SecretString; N]>, EnvError> {
        let values = vars.map(|v| self.secret(v));
        if values.iter().all(Option::is_none) {
            return Ok(None);
        }
        if let Some(i) = values.iter().position(Option::is_none) {
            let set: Vec<&str> = vars
                .iter()
                .zip(&values)
                .filter(|(_, v)| v.is_some())
                .map(|(n, _)| *n)
                .collect();
            return Err(EnvError {
                var: vars[i],
                reason: format!("must be set together with {}", set.join(", ")),
            });
        }
        Ok(Some(values.map(|v| v.expect("checked above"))))
    }

    /// `<VENDOR>_CALLBACK_IPS`: comma-separated sender addresses; empty when unset.
    pub fn ip_list(&self, var: &'static str) -> Result<Vec<IpAddr>, EnvError> {
        let Some(v) = self.raw(var) else {
            return Ok(Vec::new());
        };
        v.trim()
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                p.parse().map_err(|_| EnvError {
                    var,
                    reason: format!("not an IP address: {p:?} (got {v:?})"),
                })
            })
            .collect()
    }
}

/// An `http` or `https` URL.
pub fn parse_http_url(s: &str) -> Result<url::Url, String> {
    let u = url::Url::parse(s).map_err(|e| format!("not a URL: {e}"))?;
    match u.scheme() {
        "http" | "https" => Ok(u),
        other => Err(format!("scheme must be http or https, not {other}")),
    }
}

/// What every vendor's credentials type offers the table: read from and written back to the
/// same variables, and the base URL its adapter calls.
pub trait Credentials: Sized + Clone + std::fmt::Debug + Send + Sync + 'static {
    /// `None` when none of the vendor's credential variables is set.
    fn from_env(env: &CredentialEnv<'_>) -> Result<Option<Self>, EnvError>;
    /// The variables [`Credentials::from_env`] reads, set to these values (the
    /// `vendors.env` a gateway in another process sources).
    fn to_env(&self) -> Vec<(&'static str, String)>;
    fn base_url(&self) -> &url::Url;
}

/// Fills [`VendorCredentials`] from the vendor table: one `Option` field per vendor, named
/// by its module, so `creds.esimgo` is eSIM Go's.
macro_rules! define_credentials {
    ($($id:ident $module:ident $name:literal $display:literal $adapter:ident $sim:ident $creds:ident ($topups:expr) ($seed_currency:literal $seed_level:literal);)*) => {
        /// Credentials per vendor; `None` when the vendor is not configured for live use.
        #[derive(Debug, Clone, Default)]
        pub struct VendorCredentials {
            $(pub $module: Option<super::$module::credentials::$creds>,)*
            /// `<VENDOR>_CALLBACK_IPS`: optional sender allowlists, keyed by vendor id.
            pub callback_ips: BTreeMap<&'static str, Vec<IpAddr>>,
        }

        impl VendorCredentials {
            /// Every vendor's credentials and sender allowlist, in the table's order (so
            /// the first bad variable reported is the same from run to run).
            pub fn from_env(env: &CredentialEnv<'_>) -> Result<VendorCredentials, EnvError> {
                let mut v = VendorCredentials::default();
                $(v.$module = Credentials::from_env(env)?;)*
                $(
                    let ips = env.ip_list(super::$module::credentials::CALLBACK_IPS_VAR)?;
                    if !ips.is_empty() {
                        v.callback_ips.insert($name, ips);
                    }
                )*
                Ok(v)
            }

            pub fn any_live(&self) -> bool {
                false $(|| self.$module.is_some())*
            }

            /// The base URL of `vendor`'s adapter, when it has credentials.
            pub fn base_url(&self, vendor: super::VendorId) -> Option<&url::Url> {
                match vendor {
                    $(super::VendorId::$id => self.$module.as_ref().map(Credentials::base_url),)*
                }
            }

            /// The variables `from_env` reads, set to these credentials.
            pub fn to_env(&self) -> BTreeMap<String, String> {
                let mut env = BTreeMap::new();
                $(
                    if let Some(c) = &self.$module {
                        env.extend(c.to_env().into_iter().map(|(k, v)| (k.to_string(), v)));
                    }
                )*
                env
            }
        }
    };
}

super::vendor_table!(define_credentials);

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn read(vars: &[(&str, &str)]) -> Result<VendorCredentials, EnvError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = move |k: &str| map.get(k).cloned();
        VendorCredentials::from_env(&CredentialEnv::new(&lookup))
    }

    #[test]
    fn nothing_set_is_no_vendor() {
        let c = read(&[]).unwrap();
        assert!(!c.any_live());
        assert!(c.callback_ips.is_empty());
        assert!(c.to_env().is_empty());
    }

    #[test]
    fn a_half_set_group_names_the_missing_variable() {
        let e = read(&[("MULTIVERSE_USER_ID", "u"), ("MULTIVERSE_CLIENT_ID", "c")]).unwrap_err();
        assert_eq!(e.var, "MULTIVERSE_SECURITY_TOKEN");
        assert_eq!(
            e.reason,
            "must be set together with MULTIVERSE_USER_ID, MULTIVERSE_CLIENT_ID"
        );
        let e = read(&[
            ("MICROESIM_ACCOUNT", "a"),
            ("MICROESIM_SECRET", "s"),
            ("MICROESIM_SALT_HEX", "xyz"),
        ])
        .unwrap_err();
        assert_eq!(
            (e.var, e.reason.as_str()),
            ("MICROESIM_SALT_HEX", "must be hex")
        );
    }

    #[test]
    fn base_urls_default_to_the_vendor_and_must_be_http() {
        let c = read(&[("ESIMGO_API_KEY", "k")]).unwrap();
        assert!(c.any_live());
        assert_eq!(
            c.base_url(crate::vendors::VendorId::EsimGo)
                .map(url::Url::as_str),
            Some("https://api.esim-go.com/v2.4")
        );
        let e = read(&[("ESIMGO_API_KEY", "k"), ("ESIMGO_BASE_URL", "ftp://x")]).unwrap_err();
        assert_eq!(e.var, "ESIMGO_BASE_URL");
        assert_eq!(
            e.reason,
            "scheme must be http or https, not ftp (got \"ftp://x\")"
        );
    }

    #[test]
    fn callback_allowlists_are_keyed_by_vendor_name() {
        let c = read(&[("ESIMACCESS_CALLBACK_IPS", " 10.0.0.1, ::1 ,")]).unwrap();
        assert_eq!(
            c.callback_ips.get("esimaccess").map(Vec::len),
            Some(2),
            "{:?}",
            c.callback_ips
        );
        let e = read(&[("MICROESIM_CALLBACK_IPS", "10.0.0.1,nope")]).unwrap_err();
        assert_eq!(e.var, "MICROESIM_CALLBACK_IPS");
        assert_eq!(
            e.reason,
            "not an IP address: \"nope\" (got \"10.0.0.1,nope\")"
        );
    }
}
