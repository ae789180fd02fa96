//! Typed configuration read from the environment once at start (the README's configuration
//! table). A bad value stops the program with one line naming the variable; secret values are
//! never echoed back.
//!
//! Read by hand rather than with an env-deserializing crate (`envy`, `config`): variables come
//! in groups checked together (server limits, each vendor's credentials), and such crates echo
//! the offending value in their errors, secrets included.

use std::{net::SocketAddr, str::FromStr, time::Duration};

use rust_decimal::Decimal;

use crate::{
    catalog::pricing::Pricing,
    domain::{
        money::{Currency, FxRates},
        secret::{ExposeSecret, SecretString},
        webhook_url,
    },
    vendors::{
        VendorId,
        credentials::{CredentialEnv, EnvError, parse_http_url},
    },
};

/// Every vendor's credentials, read by the vendor table (`vendors::credentials`).
pub use crate::vendors::credentials::VendorCredentials;

pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/esim_gateway";

#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: SecretString,
    pub bind_addr: SocketAddr,
    pub public_base_url: url::Url,
    pub admin_token: Option<SecretString>,
    pub retail_currency: Currency,
    pub fx_rates: FxRates,
    pub markup_percent: Decimal,
    /// `SANDBOX`: no live vendors even when credentials are set (every key is then served
    /// by test mode); also relaxes the storefront `webhook_url` rules to allow loopback.
    pub sandbox: bool,
    /// `TEST_MODE`: run the built-in simulators as the test-mode vendors (default on);
    /// `off` makes test keys answer 403.
    pub test_mode: bool,
    /// `TEST_SCENARIO_DELAY`: how long the slow test scenarios take (`slow_async_provisioning`
    /// delivers after it, `usage_80_percent` reports usage after it).
    pub test_scenario_delay: Duration,
    /// `SANDBOX_CATALOG_SIZE`: offers per simulated vendor; unset = the hand-written seed
    /// catalogue.
    pub sandbox_catalog_size: Option<usize>,
    pub log_format: LogFormat,
    pub request_timeout: Duration,
    pub catalog_sync_interval: Duration,
    pub usage_max_age: Duration,
    /// `PROVISION_RETRY_BASE`: first delay before the provisioner re-checks an unfinished
    /// order (doubling per check, at most a minute).
    pub provision_retry_base: Duration,
    /// `ORDER_LEASE`: how long a worker holds an order it calls a vendor for (renewed while
    /// it works; a dead worker's orders are taken over after this).
    pub order_lease: Duration,
    /// `ORDER_ATTENTION_AFTER`: an order unfinished this long is flagged for an operator.
    pub order_attention_after: Duration,
    /// `USAGE_THRESHOLDS`: percentages of a bundle that fire `esim.usage_threshold`.
    pub usage_thresholds: Vec<u8>,
    /// `BREAKER_FAILURES`: unknown/unreachable order outcomes in a row that open a vendor's
    /// circuit breaker.
    pub breaker_failures: u32,
    /// `BREAKER_COOLDOWN`: how long an open breaker keeps new orders away from its vendor.
    pub breaker_cooldown: Duration,
    /// `ROUTING_NEAR_TIE_PERCENT`: offers costing at most this much more than the cheapest
    /// eligible one are near-ties, decided by success rate, then latency.
    pub near_tie_percent: Decimal,
    /// `VENDOR_HEALTH_WINDOW`: how far back vendors' order attempts count for routing and
    /// `/admin/vendors`.
    pub vendor_health_window: Duration,
    /// `PRICE_TOLERANCE_PERCENT`: how far above the synced cost a vendor's price check may
    /// answer before the purchase is refused there (`price_changed`).
    pub price_tolerance_percent: Decimal,
    /// `MIN_MARGIN_PERCENT`: the least margin, as a share of the retail price, a plan is
    /// priced at and an order is bought at.
    pub min_margin_percent: Decimal,
    /// Vendor balances and their low-balance alerts.
    pub balances: BalanceConfig,
    /// `OPERATOR_WEBHOOK_URL` and `OPERATOR_WEBHOOK_SECRET`: where operator alerts go.
    pub operator_webhook: Option<OperatorWebhook>,
    pub server: ServerLimits,
    /// `CALLBACK_RATE_LIMIT`: callbacks per second accepted per vendor route (burst of twice
    /// that); beyond it a 429, before the body is read.
    pub callback_rate_limit: u32,
    pub vendors: VendorCredentials,
}

/// How vendor balances are read and when they count as low.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceConfig {
    /// `BALANCE_REFRESH_INTERVAL`: how often each vendor's balance is read.
    pub refresh_interval: Duration,
    /// `BALANCE_LOW_THRESHOLDS=esimgo=50,esimaccess=20`: a vendor's balance is low below its
    /// amount, in the currency of that vendor's balance.
    pub low_thresholds: Vec<(VendorId, Decimal)>,
    /// `BALANCE_LOW_ORDERS`: for a vendor without an absolute threshold, low is less than
    /// this many average orders (from its recent placed orders); 0 turns it off.
    pub low_orders: u32,
}

impl Default for BalanceConfig {
    fn default() -> Self {
        BalanceConfig {
            refresh_interval: Duration::from_secs(5 * 60),
            low_thresholds: Vec::new(),
            low_orders: 20,
        }
    }
}

/// Where operator alerts (`vendor.balance_low`, …) are sent, signed like storefront events.
#[derive(Debug, Clone)]
pub struct OperatorWebhook {
    pub url: String,
    pub secret: SecretString,
}

/// `esimgo=50,esimaccess=20`: one non-negative amount per vendor, each vendor once.
fn parse_low_thresholds(s: &str) -> Result<Vec<(VendorId, Decimal)>, String> {
    let mut out: Vec<(VendorId, Decimal)> = Vec::new();
    for pair in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (vendor, amount) = pair
            .split_once('=')
            .ok_or_else(|| format!("expected vendor=amount pairs, got {pair:?}"))?;
        let vendor: VendorId = vendor
            .trim()
            .parse()
            .map_err(|_| format!("unknown vendor {:?}", vendor.trim()))?;
        let amount = Decimal::from_str(amount.trim())
            .ok()
            .filter(|a| *a >= Decimal::ZERO)
            .ok_or_else(|| format!("threshold for {vendor} is not a non-negative decimal"))?;
        if out.iter().any(|(v, _)| *v == vendor) {
            return Err(format!("{vendor} is given twice"));
        }
        out.push((vendor, amount));
    }
    Ok(out)
}

/// Connection limits of the HTTP server (slow or idle clients cannot hold sockets forever).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// `HEADER_READ_TIMEOUT`: a request's headers must arrive within this, counted from its
    /// first byte (or from the connection opening).
    pub header_read_timeout: Duration,
    /// `KEEP_ALIVE_TIMEOUT`: an idle keep-alive connection is closed after this.
    pub keep_alive_timeout: Duration,
    /// `MAX_CONNECTIONS`: connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            header_read_timeout: Duration::from_secs(10),
            keep_alive_timeout: Duration::from_secs(60),
            max_connections: 4096,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

impl Pricing {
    /// The retail price settings of this configuration.
    pub fn from_config(config: &Config) -> Self {
        Pricing {
            fx: config.fx_rates.clone(),
            retail_currency: config.retail_currency,
            markup_percent: config.markup_percent,
            min_margin_percent: config.min_margin_percent,
        }
    }
}

/// `FX_RATES=HKD=0.128,EUR=1.08`: the built-in rates with these entries replaced or added.
fn parse_fx_rates(s: &str) -> Result<FxRates, String> {
    let mut rates = FxRates::builtin();
    for pair in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (cur, rate) = pair
            .split_once('=')
            .ok_or_else(|| format!("expected CUR=rate pairs, got {pair:?}"))?;
        let cur: Currency = cur.trim().parse().map_err(|e| format!("{e}"))?;
        let rate = Decimal::from_str(rate.trim())
            .map_err(|_| format!("rate for {cur} is not a decimal number: {rate:?}"))?;
        if rate <= Decimal::ZERO {
            return Err(format!("rate for {cur} must be positive"));
        }
        rates.set(cur, rate);
    }
    Ok(rates)
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("configuration error: {var}: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub reason: String,
}

/// Reads variables through a lookup function so tests need not touch the process environment.
struct Env<'a> {
    get: &'a dyn Fn(&str) -> Option<String>,
}

impl Env<'_> {
    fn raw(&self, var: &'static str) -> Option<String> {
        (self.get)(var).filter(|v| !v.trim().is_empty())
    }

    fn parse<T>(
        &self,
        var: &'static str,
        default: T,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        match self.raw(var) {
            None => Ok(default),
            Some(v) => parse(v.trim()).map_err(|reason| ConfigError {
                var,
                reason: format!("{reason} (got {v:?})"),
            }),
        }
    }

    fn secret(&self, var: &'static str) -> Option<SecretString> {
        self.raw(var).map(SecretString::from)
    }

    fn url(&self, var: &'static str, default: &str) -> Result<url::Url, ConfigError> {
        let d = url::Url::parse(default).expect("valid default url");
        self.parse(var, d, parse_http_url)
    }
}

fn parse_bool(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err("expected true/false".into()),
    }
}

/// `80,100`: distinct percentages from 1 to 100, or empty for none.
fn parse_thresholds(s: &str) -> Result<Vec<u8>, String> {
    let mut v = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.parse::<u8>() {
            Ok(n) if (1..=100).contains(&n) => v.push(n),
            _ => return Err("expected comma-separated percentages from 1 to 100".into()),
        }
    }
    v.sort_unstable();
    v.dedup();
    Ok(v)
}

/// A decimal percentage from 0 to `max`.
fn percent(s: &str, max: Decimal) -> Result<Decimal, String> {
    let d = Decimal::from_str(s).map_err(|_| "expected a decimal number".to_string())?;
    if d < Decimal::ZERO || d > max {
        return Err(format!("must be between 0 and {max}"));
    }
    Ok(d)
}

/// `90` (seconds), `90s`, `15m`, `2h`, `500ms`, `1m 30s`: humantime durations.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        Duration::from_secs(
            s.parse()
                .map_err(|_| "expected a duration such as 30s, 15m or 1h".to_string())?,
        )
    } else {
        humantime::parse_duration(s)
            .map_err(|_| "expected a duration such as 30s, 15m or 1h".to_string())?
    };
    if d.is_zero() {
        return Err("duration must be positive".into());
    }
    Ok(d)
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(&|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env { get };
        let database_url = env.parse("DATABASE_URL", DEFAULT_DATABASE_URL.to_string(), |s| {
            match url::Url::parse(s) {
                Ok(u) if matches!(u.scheme(), "postgres" | "postgresql") => Ok(s.to_string()),
                // The value may hold a password: never echo it.
                _ => Err("must be a postgres:// URL".into()),
            }
        });
        let database_url = database_url.map_err(|e| ConfigError {
            var: e.var,
            reason: "must be a postgres:// URL".into(),
        })?;
        let bind_addr: SocketAddr =
            env.parse("BIND_ADDR", SocketAddr::from(([127, 0, 0, 1], 8080)), |s| {
                s.parse()
                    .map_err(|_| "expected host:port, e.g. 127.0.0.1:8080".into())
            })?;
        let public_base_url = env.url("PUBLIC_BASE_URL", &format!("http://{bind_addr}"))?;
        let admin_token = env.secret("ADMIN_TOKEN");
        if let Some(t) = &admin_token {
            if t.expose_secret().len() < 16 {
                return Err(ConfigError {
                    var: "ADMIN_TOKEN",
                    reason: "must be at least 16 characters".into(),
                });
            }
        }
        let retail_currency = env.parse("RETAIL_CURRENCY", Currency::USD, |s| {
            s.parse().map_err(|e| format!("{e}"))
        })?;
        let fx_rates = env.parse("FX_RATES", FxRates::builtin(), parse_fx_rates)?;
        if fx_rates.usd_per_unit(retail_currency).is_none() {
            return Err(ConfigError {
                var: "FX_RATES",
                reason: format!("no rate for the retail currency {retail_currency}"),
            });
        }
        let markup_percent = env.parse("MARKUP_PERCENT", Decimal::from(20), |s| {
            let d = Decimal::from_str(s).map_err(|_| "expected a decimal number".to_string())?;
            if d < Decimal::ZERO || d > Decimal::from(1000) {
                return Err("must be between 0 and 1000".into());
            }
            Ok(d)
        })?;
        let log_format = env.parse("LOG_FORMAT", LogFormat::Human, |s| match s {
            "human" | "text" => Ok(LogFormat::Human),
            "json" => Ok(LogFormat::Json),
            _ => Err("expected human or json".into()),
        })?;
        let request_timeout =
            env.parse("REQUEST_TIMEOUT", Duration::from_secs(30), parse_duration)?;
        let catalog_sync_interval = env.parse(
            "CATALOG_SYNC_INTERVAL",
            Duration::from_secs(15 * 60),
            parse_duration,
        )?;
        let usage_max_age =
            env.parse("USAGE_MAX_AGE", Duration::from_secs(5 * 60), parse_duration)?;
        let provision_retry_base = env.parse(
            "PROVISION_RETRY_BASE",
            Duration::from_secs(2),
            parse_duration,
        )?;
        let order_lease = env.parse("ORDER_LEASE", Duration::from_secs(15), |s| {
            let d = parse_duration(s)?;
            if d < Duration::from_millis(100) || d > Duration::from_secs(600) {
                return Err("must be between 100ms and 10m".into());
            }
            Ok(d)
        })?;
        let order_attention_after = env.parse(
            "ORDER_ATTENTION_AFTER",
            Duration::from_secs(30 * 60),
            parse_duration,
        )?;
        let usage_thresholds = env.parse("USAGE_THRESHOLDS", vec![80, 100], parse_thresholds)?;
        let breaker_failures = env.parse("BREAKER_FAILURES", 3, |s| match s.parse::<u32>() {
            Ok(n) if (1..=1000).contains(&n) => Ok(n),
            _ => Err("expected a number of failures from 1 to 1000".into()),
        })?;
        let breaker_cooldown =
            env.parse("BREAKER_COOLDOWN", Duration::from_secs(60), parse_duration)?;
        let near_tie_percent = env.parse("ROUTING_NEAR_TIE_PERCENT", Decimal::ONE, |s| {
            percent(s, Decimal::ONE_HUNDRED)
        })?;
        let vendor_health_window =
            env.parse("VENDOR_HEALTH_WINDOW", Duration::from_secs(15 * 60), |s| {
                let d = parse_duration(s)?;
                if d < Duration::from_secs(1) || d > Duration::from_secs(7 * 24 * 3600) {
                    return Err("must be between 1s and 7 days".into());
                }
                Ok(d)
            })?;
        let price_tolerance_percent =
            env.parse("PRICE_TOLERANCE_PERCENT", Decimal::from(2), |s| {
                percent(s, Decimal::ONE_HUNDRED)
            })?;
        // Below 100: a margin of the whole price would leave nothing for the cost.
        let min_margin_percent = env.parse("MIN_MARGIN_PERCENT", Decimal::ZERO, |s| {
            percent(s, Decimal::from(90))
        })?;

        let defaults = ServerLimits::default();
        let server = ServerLimits {
            header_read_timeout: env.parse(
                "HEADER_READ_TIMEOUT",
                defaults.header_read_timeout,
                parse_duration,
            )?,
            keep_alive_timeout: env.parse(
                "KEEP_ALIVE_TIMEOUT",
                defaults.keep_alive_timeout,
                parse_duration,
            )?,
            max_connections: env.parse("MAX_CONNECTIONS", defaults.max_connections, |s| match s
                .parse::<usize>(
            ) {
                Ok(n) if (1..=1_000_000).contains(&n) => Ok(n),
                _ => Err("expected a number of connections from 1 to 1000000".into()),
            })?,
        };
        let callback_rate_limit =
            env.parse("CALLBACK_RATE_LIMIT", 20, |s| match s.parse::<u32>() {
                Ok(n) if (1..=100_000).contains(&n) => Ok(n),
                _ => Err("expected callbacks per second per vendor, 1 to 100000".into()),
            })?;

        let defaults_b = BalanceConfig::default();
        let balances = BalanceConfig {
            refresh_interval: env.parse(
                "BALANCE_REFRESH_INTERVAL",
                defaults_b.refresh_interval,
                |s| {
                    let d = parse_duration(s)?;
                    if d < Duration::from_secs(1) {
                        return Err("must be at least 1s".into());
                    }
                    Ok(d)
                },
            )?,
            low_thresholds: env.parse(
                "BALANCE_LOW_THRESHOLDS",
                Vec::new(),
                parse_low_thresholds,
            )?,
            low_orders: env.parse("BALANCE_LOW_ORDERS", defaults_b.low_orders, |s| {
                match s.parse::<u32>() {
                    Ok(n) if n <= 100_000 => Ok(n),
                    _ => Err("expected a number of orders from 0 to 100000".into()),
                }
            })?,
        };

        let vendors = Self::vendor_credentials(&env)?;
        let sandbox = env.parse("SANDBOX", !vendors.any_live(), parse_bool)?;
        let operator_webhook = Self::operator_webhook(&env, sandbox)?;
        let test_mode = env.parse("TEST_MODE", true, parse_bool)?;
        let test_scenario_delay =
            env.parse("TEST_SCENARIO_DELAY", Duration::from_secs(60), |s| {
                let d = parse_duration(s)?;
                if d > Duration::from_secs(3600) {
                    return Err("must be at most 1h".into());
                }
                Ok(d)
            })?;
        if !test_mode && sandbox {
            return Err(ConfigError {
                var: "TEST_MODE",
                reason: "cannot be off without live vendors (SANDBOX is on, or no vendor \
                         has credentials): nothing could be sold"
                    .into(),
            });
        }
        let sandbox_catalog_size =
            env.parse("SANDBOX_CATALOG_SIZE", None, |s| match s.parse::<usize>() {
                Ok(n) if (1..=30_000).contains(&n) => Ok(Some(n)),
                _ => Err("expected a number of offers per vendor from 1 to 30000".into()),
            })?;

        Ok(Config {
            database_url: SecretString::from(database_url),
            bind_addr,
            public_base_url,
            admin_token,
            retail_currency,
            fx_rates,
            markup_percent,
            sandbox,
            test_mode,
            test_scenario_delay,
            sandbox_catalog_size,
            log_format,
            request_timeout,
            catalog_sync_interval,
            usage_max_age,
            provision_retry_base,
            order_lease,
            order_attention_after,
            usage_thresholds,
            breaker_failures,
            breaker_cooldown,
            near_tie_percent,
            vendor_health_window,
            price_tolerance_percent,
            min_margin_percent,
            balances,
            operator_webhook,
            server,
            callback_rate_limit,
            vendors,
        })
    }

    /// `OPERATOR_WEBHOOK_URL` under the storefront webhook rules of this mode, with its
    /// `OPERATOR_WEBHOOK_SECRET` (required with it, at least 16 characters, never echoed).
    fn operator_webhook(
        env: &Env<'_>,
        sandbox: bool,
    ) -> Result<Option<OperatorWebhook>, ConfigError> {
        let secret = env.secret("OPERATOR_WEBHOOK_SECRET");
        let Some(url) = env.raw("OPERATOR_WEBHOOK_URL") else {
            return match secret {
                Some(_) => Err(ConfigError {
                    var: "OPERATOR_WEBHOOK_SECRET",
                    reason: "set without OPERATOR_WEBHOOK_URL".into(),
                }),
                None => Ok(None),
            };
        };
        let url =
            webhook_url::validate(url.trim().to_string(), sandbox).map_err(|e| ConfigError {
                var: "OPERATOR_WEBHOOK_URL",
                reason: e.to_string().replacen("webhook_url", "the URL", 1),
            })?;
        let secret = secret
            .filter(|s| s.expose_secret().len() >= 16)
            .ok_or_else(|| ConfigError {
                var: "OPERATOR_WEBHOOK_SECRET",
                reason: "required with OPERATOR_WEBHOOK_URL, at least 16 characters".into(),
            })?;
        Ok(Some(OperatorWebhook { url, secret }))
    }

    /// The vendor table reads each vendor's own variables (`vendors::<vendor>::credentials`).
    fn vendor_credentials(env: &Env<'_>) -> Result<VendorCredentials, ConfigError> {
        VendorCredentials::from_env(&CredentialEnv::new(env.get))
            .map_err(|EnvError { var, reason }| ConfigError { var, reason })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(&move |k| map.get(k).cloned())
    }

    #[test]
    fn defaults_match_the_contract() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.database_url.expose_secret(), DEFAULT_DATABASE_URL);
        assert_eq!(c.bind_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(c.public_base_url.as_str(), "http://127.0.0.1:8080/");
        assert!(c.admin_token.is_none());
        assert_eq!(c.retail_currency, Currency::USD);
        assert_eq!(c.markup_percent, Decimal::from(20));
        assert!(c.sandbox, "sandbox is on when no vendor has credentials");
        assert_eq!(c.catalog_sync_interval, Duration::from_secs(900));
        assert_eq!(c.usage_max_age, Duration::from_secs(300));
        assert_eq!(c.breaker_failures, 3);
        assert_eq!(c.breaker_cooldown, Duration::from_secs(60));
        assert_eq!(c.near_tie_percent, Decimal::ONE);
        assert_eq!(c.vendor_health_window, Duration::from_secs(900));
        assert_eq!(c.price_tolerance_percent, Decimal::from(2));
        assert_eq!(c.min_margin_percent, Decimal::ZERO);
        let c = cfg(&[
            ("VENDOR_HEALTH_WINDOW", "5m"),
            ("MIN_MARGIN_PERCENT", "7.5"),
        ])
        .unwrap();
        assert_eq!(c.vendor_health_window, Duration::from_secs(300));
        assert_eq!(c.min_margin_percent, "7.5".parse::<Decimal>().unwrap());
        for (var, bad) in [
            ("ROUTING_NEAR_TIE_PERCENT", "-1"),
            ("VENDOR_HEALTH_WINDOW", "0s"),
            ("PRICE_TOLERANCE_PERCENT", "lots"),
            ("MIN_MARGIN_PERCENT", "100"),
        ] {
            assert_eq!(cfg(&[(var, bad)]).unwrap_err().var, var);
        }
        assert_eq!(c.balances, BalanceConfig::default());
        assert!(c.operator_webhook.is_none());
    }

    #[test]
    fn balance_thresholds_and_the_operator_webhook_parse() {
        let c = cfg(&[
            ("BALANCE_LOW_THRESHOLDS", "esimgo=50, esimaccess=20.5"),
            ("BALANCE_LOW_ORDERS", "0"),
            ("BALANCE_REFRESH_INTERVAL", "2m"),
            ("OPERATOR_WEBHOOK_URL", "https://ops.example.com/alerts"),
            ("OPERATOR_WEBHOOK_SECRET", "0123456789abcdefXYZ"),
        ])
        .unwrap();
        let dec = |s: &str| Decimal::from_str(s).unwrap();
        assert_eq!(
            c.balances.low_thresholds,
            [
                (VendorId::EsimGo, dec("50")),
                (VendorId::EsimAccess, dec("20.5"))
            ]
        );
        assert_eq!(c.balances.low_orders, 0);
        assert_eq!(c.balances.refresh_interval, Duration::from_secs(120));
        assert!(!format!("{c:?}").contains("0123456789abcdefXYZ"));
        for bad in ["esimgo:50", "nobody=5", "esimgo=-1", "esimgo=1,esimgo=2"] {
            let e = cfg(&[("BALANCE_LOW_THRESHOLDS", bad)]).unwrap_err();
            assert_eq!(e.var, "BALANCE_LOW_THRESHOLDS", "{bad}");
        }
        let e = cfg(&[("OPERATOR_WEBHOOK_URL", "https://ops.example.com/a")]).unwrap_err();
        assert_eq!(e.var, "OPERATOR_WEBHOOK_SECRET");
        let e = cfg(&[("OPERATOR_WEBHOOK_SECRET", "0123456789abcdefXYZ")]).unwrap_err();
        assert_eq!(e.var, "OPERATOR_WEBHOOK_SECRET");
        // Live mode: no internal hosts, as for storefront webhooks.
        let e = cfg(&[
            ("ESIMGO_API_KEY", "k"),
            ("OPERATOR_WEBHOOK_URL", "https://127.0.0.1/a"),
            ("OPERATOR_WEBHOOK_SECRET", "0123456789abcdefXYZ"),
        ])
        .unwrap_err();
        assert_eq!(e.var, "OPERATOR_WEBHOOK_URL");
    }

    #[test]
    fn bad_values_name_the_variable() {
        let e = cfg(&[("BIND_ADDR", "nope")]).unwrap_err();
        assert_eq!(e.var, "BIND_ADDR");
        let e = cfg(&[("MARKUP_PERCENT", "twenty")]).unwrap_err();
        assert_eq!(e.var, "MARKUP_PERCENT");
        let e = cfg(&[("FX_RATES", "HKD:0.1")]).unwrap_err();
        assert_eq!(e.var, "FX_RATES");
        let e = cfg(&[("RETAIL_CURRENCY", "usd")]).unwrap_err();
        assert_eq!(e.var, "RETAIL_CURRENCY");
        let e = cfg(&[("SANDBOX", "maybe")]).unwrap_err();
        assert_eq!(e.var, "SANDBOX");
        assert!(e.to_string().starts_with("configuration error: SANDBOX:"));
    }

    #[test]
    fn secrets_are_not_echoed_in_errors() {
        let e = cfg(&[("DATABASE_URL", "mysql://u:topsecret@h/db")]).unwrap_err();
        assert_eq!(e.var, "DATABASE_URL");
        assert!(!e.to_string().contains("topsecret"));
        let e = cfg(&[("ESIMACCESS_ACCESS_CODE", "abc123secret")]).unwrap_err();
        assert_eq!(e.var, "ESIMACCESS_SECRET_KEY");
        assert!(!e.to_string().contains("abc123secret"));
        let c = cfg(&[("ADMIN_TOKEN", "0123456789abcdefXYZ")]).unwrap();
        assert!(!format!("{c:?}").contains("0123456789abcdefXYZ"));
    }

    #[test]
    fn credentials_turn_sandbox_off_unless_forced() {
        let c = cfg(&[("ESIMGO_API_KEY", "k")]).unwrap();
        assert!(!c.sandbox);
        assert!(c.vendors.esimgo.is_some());
        let c = cfg(&[("ESIMGO_API_KEY", "k"), ("SANDBOX", "true")]).unwrap();
        assert!(c.sandbox);
    }

    #[test]
    fn test_mode_is_on_unless_turned_off_beside_live_vendors() {
        assert!(cfg(&[]).unwrap().test_mode);
        let c = cfg(&[("ESIMGO_API_KEY", "k"), ("TEST_MODE", "off")]).unwrap();
        assert!(!c.test_mode);
        let e = cfg(&[("TEST_MODE", "off")]).unwrap_err();
        assert_eq!(e.var, "TEST_MODE");
    }

    #[test]
    fn fx_overrides_extend_the_builtin_table() {
        let c = cfg(&[("FX_RATES", "HKD=0.13, XAF=0.0016")]).unwrap();
        assert_eq!(
            c.fx_rates.usd_per_unit("HKD".parse().unwrap()),
            Some(Decimal::from_str("0.13").unwrap())
        );
        assert!(c.fx_rates.usd_per_unit("EUR".parse().unwrap()).is_some());
        let hkd: Currency = "HKD".parse().unwrap();
        assert_eq!(
            c.fx_rates.convert(Decimal::from(100), hkd, Currency::USD),
            Some(Decimal::from(13))
        );
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("0s").is_err());
        assert_eq!(parse_duration("1m 30s").unwrap(), Duration::from_secs(90));
        assert!(parse_duration("5 fortnights").is_err());
        let e = cfg(&[("HEADER_READ_TIMEOUT", "soon")]).unwrap_err();
        assert_eq!(e.var, "HEADER_READ_TIMEOUT");
        let c = cfg(&[("KEEP_ALIVE_TIMEOUT", "2m"), ("MAX_CONNECTIONS", "100")]).unwrap();
        assert_eq!(c.server.keep_alive_timeout, Duration::from_secs(120));
        assert_eq!(c.server.max_connections, 100);
        assert!(cfg(&[("MAX_CONNECTIONS", "0")]).is_err());
    }
}
