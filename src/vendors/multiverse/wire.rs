//! Multiverse JSON, as documented where it is (error envelope, token answer) and as assumed
//! elsewhere (see [`super::assumptions`]). Every field is optional and read leniently (string,
//! number or boolean), because the only evidence (a Tel25 client) reads packages as
//! string→string maps. Conversion to the normalized types happens here, once.

use std::{str::FromStr, time::Duration};

use chrono::{DateTime, Utc};
use rust_decimal::{Decimal, prelude::ToPrimitive};
use serde::{Deserialize, Deserializer};

use super::assumptions;
use crate::{
    domain::{money::Money, secret::SecretString},
    vendors::{
        DataAllowance, DataKind, EsimProfile, EsimStatus, Offer, OrderState, Usage, VendorError,
        VendorId, VendorOrderStatus, lpa,
        support::{self, TimeFormats},
    },
};

/// A JSON string, number or boolean as text; `null`/absent as `None`.
fn lenient<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match support::lenient::value(d)? {
        serde_json::Value::Null => None,
        // An object or array is kept as its JSON text rather than dropped.
        v => Some(support::lenient::text(&v, true).unwrap_or_else(|| v.to_string())),
    })
}

fn lenient_or_empty<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(lenient(d)?.unwrap_or_default())
}

/// `{"code": "<6 digits>", "message": "…"}` (documented).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ErrorBody {
    #[serde(default, deserialize_with = "lenient_or_empty")]
    pub code: String,
    #[serde(default, deserialize_with = "lenient_or_empty")]
    pub message: String,
}

/// The `POST /auth/token` answer: `token_type` and `access_token` (Tel25 client),
/// `expires_in` seconds when given [assumption: the standard OAuth2 field].
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TokenResponse {
    #[serde(default, deserialize_with = "lenient")]
    pub token_type: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub access_token: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub expires_in: Option<String>,
}

impl TokenResponse {
    /// The `Authorization` value for later calls and how long it lives.
    pub fn into_authorization(self) -> Result<(SecretString, Duration), VendorError> {
        let token = self
            .access_token
            .filter(|t| !t.trim().is_empty())
            // Nothing was bought yet, so this is not an unknown outcome.
            .ok_or_else(|| VendorError::Unreachable("token answer without access_token".into()))?;
        let token_type = self
            .token_type
            .filter(|t| !t.trim().is_empty())
            .unwrap_or_else(|| "Bearer".to_string());
        let lifetime = self
            .expires_in
            .and_then(|s| s.trim().parse::<u64>().ok())
            .filter(|s| *s > 0)
            .map(Duration::from_secs)
            .unwrap_or(assumptions::DEFAULT_TOKEN_LIFETIME);
        Ok((
            SecretString::from(format!("{} {}", token_type.trim(), token.trim())),
            lifetime,
        ))
    }
}

/// `GET /esims/packages` → `{"package_list": [...]}` (Tel25 client). Items are kept raw so
/// one odd package does not hide the rest.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PackageList {
    #[serde(default)]
    pub package_list: Option<Vec<serde_json::Value>>,
}

impl PackageList {
    /// An answer without `package_list` is an error, not an empty catalogue (which would
    /// retire every offer).
    pub fn into_offers(self) -> Result<Vec<Offer>, String> {
        let packages = self
            .package_list
            .ok_or("package list answer without package_list")?;
        Ok(packages
            .into_iter()
            .filter_map(|raw| {
                let offer = serde_json::from_value::<Package>(raw.clone())
                    .ok()
                    .and_then(|p| p.into_offer(raw.clone()));
                if offer.is_none() {
                    tracing::warn!(vendor = "multiverse", package = %snippet(&raw), "package skipped: no id, price or currency");
                }
                offer
            })
            .collect())
    }
}

fn snippet(v: &serde_json::Value) -> String {
    v.to_string().chars().take(200).collect()
}

/// One package; field names and units are [assumption]s (see [`assumptions::BYTES_PER_GB`]).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Package {
    #[serde(default, deserialize_with = "lenient")]
    pub package_id: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub countries: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub region: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub data_amount: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub data_unit: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub unlimited: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub daily: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub validity_days: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub price: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub currency: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub topup: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub status: Option<String>,
}

impl Package {
    /// `None` when the package cannot be bought or priced (no id, price or currency).
    pub fn into_offer(self, raw: serde_json::Value) -> Option<Offer> {
        let sku = self.package_id.clone().filter(|s| !s.trim().is_empty())?;
        let cost = Money::new(
            decimal(self.price.as_deref()?)?,
            self.currency
                .as_deref()?
                .trim()
                .to_ascii_uppercase()
                .parse()
                .ok()?,
        );
        let validity_days = self
            .validity_days
            .as_deref()
            .and_then(|d| d.trim().parse::<u32>().ok());
        let data = self.data_allowance();
        Some(Offer {
            vendor: VendorId::Multiverse,
            name: self.name.clone().unwrap_or_else(|| sku.clone()),
            sku,
            countries: countries(self.countries.as_deref().unwrap_or("")),
            region_label: self.region.clone().filter(|r| !r.trim().is_empty()),
            // Without a validity the data cannot be compared either: keep it unsellable.
            data: data.filter(|_| validity_days.is_some()),
            validity_days: validity_days.unwrap_or(0),
            cost,
            networks: Vec::new(),
            supports_topup: flag(self.topup.as_deref()),
            is_topup: false,
            active: self
                .status
                .as_deref()
                .is_none_or(|s| s.trim().eq_ignore_ascii_case("ACTIVE")),
            flags: Vec::new(),
            raw,
        })
    }

    fn data_allowance(&self) -> Option<DataAllowance> {
        if flag(self.unlimited.as_deref()) {
            return Some(DataAllowance::unlimited());
        }
        let bytes = to_bytes(self.data_amount.as_deref()?, self.data_unit.as_deref()?)?;
        if bytes == 0 {
            return None;
        }
        let kind = if flag(self.daily.as_deref()) {
            DataKind::Daily
        } else {
            DataKind::Total
        };
        // Binary units [assumption]: the vendor's count is the marketed count.
        Some(DataAllowance::binary(kind, bytes))
    }
}

/// "true", "1", "yes" (any case) are true; anything else, or nothing, is false.
pub fn flag(s: Option<&str>) -> bool {
    s.is_some_and(|s| support::lenient::word_in(s, &["true", "1", "yes", "y"]))
}

fn decimal(s: &str) -> Option<Decimal> {
    Decimal::from_str(s.trim()).ok()
}

/// An amount in a data unit as bytes, in binary units [assumption].
pub fn to_bytes(amount: &str, unit: &str) -> Option<u64> {
    let per_unit = match unit.trim().to_ascii_uppercase().as_str() {
        "B" | "BYTE" | "BYTES" => 1,
        "KB" => 1024,
        "MB" => assumptions::BYTES_PER_MB,
        "GB" => assumptions::BYTES_PER_GB,
        "TB" => 1024 * assumptions::BYTES_PER_GB,
        _ => return None,
    };
    let amount = decimal(amount)?;
    if amount.is_sign_negative() {
        return None;
    }
    amount
        .checked_mul(Decimal::from(per_unit))?
        .round()
        .to_u64()
}

/// "FR, de;IT" → ["DE", "FR", "IT"]; anything that is not two letters is dropped.
pub fn countries(s: &str) -> Vec<String> {
    let mut out: Vec<String> = s
        .split([',', ';', '|', ' '])
        .map(|c| c.trim().to_ascii_uppercase())
        .filter(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// RFC 3339, or `YYYY-MM-DD HH:MM:SS` taken as UTC [assumption: the format is unknown].
const TIMES: TimeFormats = TimeFormats {
    rfc3339: true,
    zoned: &[],
    local: &["%Y-%m-%d %H:%M:%S"],
    local_offset_secs: 0,
};

pub fn time(s: Option<&str>) -> Option<DateTime<Utc>> {
    TIMES.parse(s?)
}

/// The order object: the purchase answer, the `/sync` answer, the callback body and the
/// query result all share it [assumption].
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Order {
    #[serde(default, deserialize_with = "lenient")]
    pub order_id: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub customer_order_id: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub package_id: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub iccid: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub smdp: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub activation_code: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub created_at: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub updated_at: Option<String>,
}

impl Order {
    pub fn is_failed(&self) -> bool {
        self.status
            .as_deref()
            .is_some_and(|s| s.trim().eq_ignore_ascii_case(assumptions::STATUS_FAILED))
    }

    /// The eSIM, once the vendor has sent an ICCID, SM-DP+ address and matching id.
    pub fn profile(&self) -> Option<EsimProfile> {
        let nonempty = |s: &Option<String>| s.clone().filter(|s| !s.trim().is_empty());
        let iccid = nonempty(&self.iccid)?;
        let smdp = nonempty(&self.smdp)?;
        let code = nonempty(&self.activation_code)?;
        Some(EsimProfile {
            iccid: iccid.trim().to_string(),
            // The vendor returns address and matching id apart (Tel25 client builds the LPA).
            activation: lpa::build(smdp.trim(), code.trim()),
            vendor_esim_ref: self.order_id.clone(),
            status: EsimStatus::Ready,
            expires_at: None,
        })
    }

    /// A top-up answer: no new profile, only whether it went through.
    pub fn into_topup_state(self) -> OrderState {
        let status = match self.status.as_deref().map(str::trim) {
            _ if self.is_failed() => VendorOrderStatus::Failed,
            Some(s) if s.eq_ignore_ascii_case(assumptions::STATUS_COMPLETED) => {
                VendorOrderStatus::Completed
            }
            _ => VendorOrderStatus::Pending,
        };
        OrderState {
            charged: None,
            vendor_reference: self.order_id,
            status,
            esims: Vec::new(),
        }
    }
}

/// One normalized state for the vendor orders of one of our orders (one per eSIM): done
/// when none is still allocating; failed only when every one failed.
pub fn combine(orders: Vec<Order>) -> OrderState {
    let parts = orders
        .iter()
        .map(|o| OrderState {
            charged: None,
            vendor_reference: o.order_id.clone(),
            status: if o.is_failed() {
                VendorOrderStatus::Failed
            } else {
                VendorOrderStatus::Pending
            },
            esims: o.profile().into_iter().collect(),
        })
        .collect();
    support::combine(parts, |parts| {
        let failed = parts
            .iter()
            .filter(|p| p.status == VendorOrderStatus::Failed)
            .count();
        let esims: usize = parts.iter().map(|p| p.esims.len()).sum();
        if !parts.is_empty() && failed == parts.len() {
            VendorOrderStatus::Failed
        } else if esims > 0 && esims + failed == parts.len() {
            VendorOrderStatus::Completed
        } else {
            VendorOrderStatus::Pending
        }
    })
}

/// `GET /esims/orders?customer_order_id=…` [assumption].
#[derive(Debug, Clone, Default, Deserialize)]
pub struct OrderList {
    #[serde(default)]
    pub order_list: Vec<Order>,
}

/// `GET /esims/{iccid}/usage` [assumption].
#[derive(Debug, Clone, Default, Deserialize)]
pub struct UsageResponse {
    #[serde(default, deserialize_with = "lenient")]
    pub iccid: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub data_used: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub data_total: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub data_unit: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub unlimited: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub activated_at: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub expired_at: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub updated_at: Option<String>,
}

impl UsageResponse {
    pub fn into_usage(self) -> Result<Usage, String> {
        let unit = self.data_unit.as_deref().unwrap_or("MB");
        let used = self.data_used.as_deref().unwrap_or("0");
        let used_bytes =
            to_bytes(used, unit).ok_or_else(|| format!("usage not understood: {used} {unit}"))?;
        let unlimited = flag(self.unlimited.as_deref());
        let total_bytes = match (&self.data_total, unlimited) {
            (Some(total), false) => Some(
                to_bytes(total, unit)
                    .ok_or_else(|| format!("total not understood: {total} {unit}"))?,
            ),
            _ => None,
        };
        Ok(Usage {
            used_bytes,
            total_bytes,
            unlimited,
            status: self.status.as_deref().and_then(esim_status),
            activated_at: time(self.activated_at.as_deref()),
            expires_at: time(self.expired_at.as_deref()),
            updated_at: time(self.updated_at.as_deref()),
        })
    }
}

/// eSIM statuses [assumption].
pub fn esim_status(s: &str) -> Option<EsimStatus> {
    Some(match s.trim().to_ascii_uppercase().as_str() {
        "READY" | "NEW" | "RELEASED" => EsimStatus::Ready,
        "INSTALLED" | "DOWNLOADED" => EsimStatus::Installed,
        "ACTIVE" | "ENABLED" | "IN_USE" => EsimStatus::Active,
        "DEPLETED" | "USED_UP" => EsimStatus::Depleted,
        "EXPIRED" => EsimStatus::Expired,
        "CANCELLED" | "CANCELED" | "TERMINATED" => EsimStatus::Cancelled,
        _ => return None,
    })
}

/// `GET /account/balance` [assumption].
#[derive(Debug, Clone, Default, Deserialize)]
pub struct BalanceResponse {
    #[serde(default, deserialize_with = "lenient")]
    pub balance: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub currency: Option<String>,
}

impl BalanceResponse {
    pub fn into_money(self) -> Result<Money, String> {
        let amount = self
            .balance
            .as_deref()
            .and_then(decimal)
            .ok_or("balance without an amount")?;
        let currency = self
            .currency
            .as_deref()
            .and_then(|c| c.trim().to_ascii_uppercase().parse().ok())
            .ok_or("balance without a currency")?;
        Ok(Money::new(amount, currency))
    }
}

#[cfg(test)]
mod tests {
    use crate::domain::secret::ExposeSecret;
    use chrono::TimeZone;

    /// Prices and balances that an f64 would change arrive exact (parsed from raw text),
    /// as JSON numbers and as strings.
    #[test]
    fn decimals_never_pass_through_f64() {
        for text in ["4.35", "0.07", "12.345", "1234567890.1234567891"] {
            for v in [text.to_string(), format!(r#""{text}""#)] {
                let b: BalanceResponse =
                    serde_json::from_str(&format!(r#"{{"balance": {v}, "currency": "EUR"}}"#))
                        .unwrap();
                assert_eq!(b.into_money().unwrap().amount.to_string(), text);
            }
        }
    }

    use super::*;
    use crate::vendors::{GIB, MIB};

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn token_answer_builds_the_authorization_header() {
        let t: TokenResponse = serde_json::from_str(
            r#"{"token_type":"Bearer","access_token":"abc.def","expires_in":3600}"#,
        )
        .unwrap();
        let (auth, life) = t.into_authorization().unwrap();
        assert_eq!(auth.expose_secret(), "Bearer abc.def");
        assert_eq!(life, Duration::from_secs(3600));
    }

    #[test]
    fn token_answer_without_expiry_lives_an_hour() {
        let t: TokenResponse =
            serde_json::from_str(r#"{"token_type":"bearer","access_token":"x"}"#).unwrap();
        let (auth, life) = t.into_authorization().unwrap();
        assert_eq!(auth.expose_secret(), "bearer x");
        assert_eq!(life, assumptions::DEFAULT_TOKEN_LIFETIME);
        let t: TokenResponse = serde_json::from_str(r#"{"token_type":"Bearer"}"#).unwrap();
        assert!(t.into_authorization().unwrap_err().nothing_bought());
    }

    /// The assumed package shape (strings, as the Tel25 client reads them).
    #[test]
    fn string_valued_packages_become_offers() {
        let list: PackageList = serde_json::from_str(
            r#"{"package_list":[
              {"package_id":"mv_jp-10gb-30d","name":"Japan 10GB 30 Days","countries":"JP",
               "data_amount":"10","data_unit":"GB","unlimited":"false","daily":"false",
               "validity_days":"30","price":"12.34","currency":"EUR","topup":"true","status":"ACTIVE"},
              {"package_id":"mv_eu32-500mb-7d","name":"Europe 500MB 7 Days","countries":"FR, de,IT,FR",
               "region":"Europe","data_amount":500,"data_unit":"MB","validity_days":7,"price":3.5,
               "currency":"eur"},
              {"package_id":"mv_th-1gb-daily-5d","name":"Thailand 1GB/day","countries":"TH",
               "data_amount":"1","data_unit":"GB","daily":"true","validity_days":"5","price":"4.00",
               "currency":"EUR","status":"INACTIVE"},
              {"package_id":"mv_jp-unlimited-7d","name":"Japan Unlimited 7 Days","countries":"JP",
               "unlimited":"true","validity_days":"7","price":"20","currency":"EUR"},
              {"package_id":"mv_bad","name":"no price","countries":"JP"},
              "not an object"
            ]}"#,
        )
        .unwrap();
        let offers = list.into_offers().unwrap();
        assert_eq!(offers.len(), 4);

        let jp = &offers[0];
        assert_eq!(jp.sku, "mv_jp-10gb-30d");
        assert_eq!(jp.name, "Japan 10GB 30 Days");
        assert_eq!(jp.countries, vec!["JP"]);
        assert_eq!(
            jp.data,
            Some(DataAllowance::binary(DataKind::Total, 10 * GIB))
        );
        assert_eq!(jp.validity_days, 30);
        assert_eq!(jp.cost, Money::new(dec("12.34"), "EUR".parse().unwrap()));
        assert!(jp.supports_topup && jp.active && !jp.is_topup);
        assert_eq!(jp.raw["package_id"], "mv_jp-10gb-30d");

        let eu = &offers[1];
        assert_eq!(eu.countries, vec!["DE", "FR", "IT"]);
        assert_eq!(eu.region_label.as_deref(), Some("Europe"));
        assert_eq!(
            eu.data,
            Some(DataAllowance::binary(DataKind::Total, 500 * MIB))
        );
        assert_eq!(eu.cost, Money::new(dec("3.5"), "EUR".parse().unwrap()));
        assert!(!eu.supports_topup && eu.active);

        let th = &offers[2];
        assert_eq!(th.data, Some(DataAllowance::binary(DataKind::Daily, GIB)));
        assert!(!th.active);

        assert_eq!(offers[3].data, Some(DataAllowance::unlimited()));

        let missing: PackageList = serde_json::from_str(r#"{"code":"200000"}"#).unwrap();
        assert!(missing.into_offers().is_err());
    }

    /// The Tel25 `/purchase/sync` answer: SM-DP+ address and matching id apart.
    #[test]
    fn sync_purchase_answer_carries_the_profile() {
        let order: Order = serde_json::from_str(
            r#"{"order_id":"MV123","customer_order_id":"ord_01J","package_id":"mv_jp-10gb-30d",
                "status":"COMPLETED","iccid":"8985200012345678901","smdp":"rsp.example.com",
                "activation_code":"ABC-123"}"#,
        )
        .unwrap();
        let state = combine(vec![order]);
        assert_eq!(state.status, VendorOrderStatus::Completed);
        assert_eq!(state.vendor_reference.as_deref(), Some("MV123"));
        let esim = &state.esims[0];
        assert_eq!(esim.iccid, "8985200012345678901");
        assert_eq!(esim.activation.lpa, "LPA:1$rsp.example.com$ABC-123");
        assert_eq!(esim.activation.smdp_address, "rsp.example.com");
        assert_eq!(esim.activation.matching_id, "ABC-123");
        assert_eq!(esim.vendor_esim_ref.as_deref(), Some("MV123"));
    }

    #[test]
    fn accepted_purchase_is_pending_and_failed_orders_fail() {
        let accepted: Order = serde_json::from_str(
            r#"{"order_id":"MV1","customer_order_id":"ord_01J","package_id":"p","status":"PROCESSING"}"#,
        )
        .unwrap();
        let state = combine(vec![accepted.clone()]);
        assert_eq!(state.status, VendorOrderStatus::Pending);
        assert!(state.esims.is_empty());
        let failed = Order {
            status: Some("FAILED".into()),
            ..accepted
        };
        assert_eq!(combine(vec![failed]).status, VendorOrderStatus::Failed);
    }

    #[test]
    fn order_list_combines_one_order_per_esim() {
        let list: OrderList = serde_json::from_str(
            r#"{"order_list":[
              {"order_id":"MV1","customer_order_id":"ord_01J-1","status":"COMPLETED","iccid":"891",
               "smdp":"rsp.x","activation_code":"A1","created_at":"2025-04-08T10:00:00Z"},
              {"order_id":"MV2","customer_order_id":"ord_01J-2","status":"PROCESSING"}]}"#,
        )
        .unwrap();
        let state = combine(list.order_list.clone());
        assert_eq!(state.vendor_reference.as_deref(), Some("MV1,MV2"));
        assert_eq!(state.status, VendorOrderStatus::Pending);
        assert_eq!(state.esims.len(), 1);
        let empty: OrderList = serde_json::from_str(r#"{"order_list":[]}"#).unwrap();
        assert!(empty.order_list.is_empty());
    }

    #[test]
    fn topup_answer_is_completed_without_a_profile() {
        let order: Order = serde_json::from_str(
            r#"{"order_id":"MV9","customer_order_id":"ord_02","status":"COMPLETED","iccid":"891"}"#,
        )
        .unwrap();
        let state = order.into_topup_state();
        assert_eq!(state.status, VendorOrderStatus::Completed);
        assert_eq!(state.vendor_reference.as_deref(), Some("MV9"));
        assert!(state.esims.is_empty());
    }

    #[test]
    fn usage_in_megabytes_becomes_bytes() {
        let u: UsageResponse = serde_json::from_str(
            r#"{"iccid":"891","status":"ACTIVE","data_used":"1536.5","data_total":"10240",
                "data_unit":"MB","unlimited":"false","activated_at":"2025-04-08T10:00:00Z",
                "expired_at":"2025-05-08 10:00:00","updated_at":"2025-04-09T00:00:00+08:00"}"#,
        )
        .unwrap();
        let usage = u.into_usage().unwrap();
        assert_eq!(usage.used_bytes, 1_611_137_024);
        assert_eq!(usage.total_bytes, Some(10 * GIB));
        assert!(!usage.unlimited);
        assert_eq!(usage.status, Some(EsimStatus::Active));
        assert_eq!(
            usage.activated_at,
            Some(Utc.with_ymd_and_hms(2025, 4, 8, 10, 0, 0).unwrap())
        );
        assert_eq!(
            usage.expires_at,
            Some(Utc.with_ymd_and_hms(2025, 5, 8, 10, 0, 0).unwrap())
        );
        assert_eq!(
            usage.updated_at,
            Some(Utc.with_ymd_and_hms(2025, 4, 8, 16, 0, 0).unwrap())
        );
        let unlimited: UsageResponse =
            serde_json::from_str(r#"{"data_used":"0","unlimited":"true","status":"READY"}"#)
                .unwrap();
        let usage = unlimited.into_usage().unwrap();
        assert!(usage.unlimited && usage.total_bytes.is_none());
        let garbled: UsageResponse = serde_json::from_str(r#"{"data_used":"lots"}"#).unwrap();
        assert!(garbled.into_usage().is_err());
    }

    #[test]
    fn balance_is_decimal_money() {
        let b: BalanceResponse =
            serde_json::from_str(r#"{"balance":"1234.56","currency":"EUR"}"#).unwrap();
        assert_eq!(
            b.into_money().unwrap(),
            Money::new(dec("1234.56"), "EUR".parse().unwrap())
        );
        let b: BalanceResponse = serde_json::from_str(r#"{"balance":"x"}"#).unwrap();
        assert!(b.into_money().is_err());
    }

    #[test]
    fn our_order_id_strips_only_our_own_suffixes() {
        assert_eq!(assumptions::our_order_id("ord_01J-2"), "ord_01J");
        assert_eq!(assumptions::our_order_id("ord_01J"), "ord_01J");
        assert_eq!(assumptions::our_order_id("ORD-123"), "ORD-123");
        assert_eq!(assumptions::our_order_id("ord_01J-x"), "ord_01J-x");
    }
}
