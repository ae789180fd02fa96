//! eSIM Access JSON, named as the vendor names it (see `README.md`), and
//! the conversions to normalized types. Deserialization is tolerant: every field is optional
//! and numbers may arrive as strings, because the docs type most fields as `String` while live
//! responses use JSON numbers and booleans.

use chrono::{DateTime, Utc};
use rust_decimal::{Decimal, prelude::ToPrimitive};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::assumptions;
use crate::{
    domain::money::{Currency, Money},
    vendors::{
        DataAllowance, DataKind, EsimProfile, EsimStatus, Network, Offer, VendorId, lpa,
        support::{
            TimeFormats,
            lenient,
            // Integers and decimals as numbers or numeric strings, ids and codes as strings
            // or numbers: the docs type most fields as `String`, live answers use numbers.
            lenient::{
                opt_decimal as lenient_decimal, opt_i64 as lenient_i64, opt_text as lenient_string,
            },
        },
    },
};

/// Prices, amounts and balances are integers of 1/10,000 USD (`10000` = $1.00).
pub const UNITS_PER_USD: u32 = 4;

pub fn money_from_units(units: i64) -> Money {
    Money::new(
        Decimal::new(units, UNITS_PER_USD).normalize(),
        Currency::USD,
    )
}

/// `None` when the amount is not USD or has more precision than the vendor can take.
pub fn units_from_money(m: &Money) -> Option<i64> {
    if m.currency != Currency::USD {
        return None;
    }
    let units = m.amount * Decimal::from(10_000);
    (units.fract().is_zero()).then(|| units.to_i64()).flatten()
}

/// The vendor's times: `2026-09-28T09:47:00+0000`, `2025-08-09T00:23:45Z` or RFC 3339;
/// documented as UTC, so a bare timestamp is UTC.
const TIMES: TimeFormats = TimeFormats {
    rfc3339: true,
    zoned: &[
        "%Y-%m-%dT%H:%M:%S%z",
        "%Y-%m-%dT%H:%M%z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
    ],
    local: &["%Y-%m-%dT%H:%M:%S"],
    local_offset_secs: 0,
};

pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    TIMES.parse(s)
}

/// How we send times (query windows): ISO 8601 UTC, as in the docs' example.
pub fn format_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
}

// ---------------------------------------------------------------------------------------
// Envelope

/// Every answer: `{"success", "errorCode", "errorMsg"|"errorMessage", "obj"}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    #[serde(default)]
    pub success: Value,
    #[serde(default, deserialize_with = "lenient_string")]
    pub error_code: Option<String>,
    #[serde(default)]
    pub error_msg: Option<String>,
    #[serde(default)]
    pub error_message: Option<String>,
    #[serde(default)]
    pub obj: Value,
}

impl Envelope {
    /// Docs type `success` as the string "true"; live answers use a boolean.
    pub fn succeeded(&self) -> bool {
        lenient::flag(&self.success, &["true"])
    }

    /// The error code, left-padded to six digits when it arrived as a bare number.
    pub fn code(&self) -> String {
        match self.error_code.as_deref().map(str::trim) {
            Some(c) if !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit()) && c.len() < 6 => {
                format!("{c:0>6}")
            }
            Some(c) => c.to_string(),
            None => String::new(),
        }
    }

    pub fn message(&self) -> String {
        self.error_msg
            .clone()
            .or_else(|| self.error_message.clone())
            .unwrap_or_default()
    }
}

// ---------------------------------------------------------------------------------------
// Requests (serialized once, signed, sent)

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PackageListRequest<'a> {
    #[serde(rename = "type")]
    pub kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iccid: Option<&'a str>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderRequest<'a> {
    pub transaction_id: &'a str,
    pub package_info_list: Vec<PackageInfo<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<i64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PackageInfo<'a> {
    pub package_code: &'a str,
    pub count: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price: Option<i64>,
}

#[derive(Debug, Default, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryRequest<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_no: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iccid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub esim_tran_no: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    pub pager: Pager,
}

#[derive(Debug, Default, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pager {
    pub page_num: u32,
    pub page_size: u32,
}

/// `/esim/cancel` and the other per-eSIM calls: esimTranNo preferred, iccid otherwise.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EsimTarget<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub esim_tran_no: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iccid: Option<&'a str>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TopupRequest<'a> {
    #[serde(flatten)]
    pub target: EsimTarget<'a>,
    pub package_code: &'a str,
    pub transaction_id: &'a str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageRequest<'a> {
    pub esim_tran_no_list: Vec<&'a str>,
}

// ---------------------------------------------------------------------------------------
// Responses

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PackageList {
    /// Kept as raw JSON so each offer carries the vendor's own object.
    #[serde(default)]
    pub package_list: Vec<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Package {
    pub package_code: Option<String>,
    pub slug: Option<String>,
    pub name: Option<String>,
    #[serde(deserialize_with = "lenient_i64")]
    pub price: Option<i64>,
    pub currency_code: Option<String>,
    #[serde(deserialize_with = "lenient_i64")]
    pub volume: Option<i64>,
    #[serde(deserialize_with = "lenient_i64")]
    pub data_type: Option<i64>,
    #[serde(deserialize_with = "lenient_i64")]
    pub duration: Option<i64>,
    pub duration_unit: Option<String>,
    pub location: Option<String>,
    pub location_network_list: Vec<LocationNetwork>,
    #[serde(deserialize_with = "lenient_i64")]
    pub support_top_up_type: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LocationNetwork {
    pub location_name: Option<String>,
    pub location_code: Option<String>,
    pub operator_list: Vec<Operator>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Operator {
    pub operator_name: Option<String>,
    pub network_type: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OrderResponse {
    pub order_no: Option<String>,
    pub transaction_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct QueryResponse {
    pub esim_list: Vec<Esim>,
    pub pager: Option<PagerOut>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PagerOut {
    #[serde(deserialize_with = "lenient_i64")]
    pub page_size: Option<i64>,
    #[serde(deserialize_with = "lenient_i64")]
    pub page_num: Option<i64>,
    #[serde(deserialize_with = "lenient_i64")]
    pub total: Option<i64>,
}

/// One profile of `/esim/query`'s `esimList`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Esim {
    #[serde(deserialize_with = "lenient_string")]
    pub esim_tran_no: Option<String>,
    pub order_no: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub transaction_id: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub iccid: Option<String>,
    pub ac: Option<String>,
    pub smdp_status: Option<String>,
    pub esim_status: Option<String>,
    pub expired_time: Option<String>,
    #[serde(deserialize_with = "lenient_i64")]
    pub total_volume: Option<i64>,
    #[serde(deserialize_with = "lenient_i64")]
    pub order_usage: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TopupResponse {
    #[serde(deserialize_with = "lenient_string")]
    pub transaction_id: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub iccid: Option<String>,
    pub expired_time: Option<String>,
    #[serde(deserialize_with = "lenient_i64")]
    pub total_volume: Option<i64>,
    #[serde(deserialize_with = "lenient_i64")]
    pub total_duration: Option<i64>,
    #[serde(deserialize_with = "lenient_i64")]
    pub order_usage: Option<i64>,
}

/// `/esim/usage/query`: the container is named `esimUsageList` (not in the vendor file;
/// every client in the code corpus reads that name).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct UsageResponse {
    pub esim_usage_list: Vec<UsageItem>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct UsageItem {
    #[serde(deserialize_with = "lenient_string")]
    pub esim_tran_no: Option<String>,
    #[serde(deserialize_with = "lenient_i64")]
    pub data_usage: Option<i64>,
    #[serde(deserialize_with = "lenient_i64")]
    pub total_data: Option<i64>,
    pub last_update_time: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BalanceResponse {
    #[serde(deserialize_with = "lenient_i64")]
    pub balance: Option<i64>,
}

/// A webhook delivery: `{notifyType, content, [eventGenerateTime, notifyId]}`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Notification {
    pub notify_type: Option<String>,
    pub event_generate_time: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub notify_id: Option<String>,
    pub content: NotifyContent,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NotifyContent {
    pub order_no: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub transaction_id: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub esim_tran_no: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub iccid: Option<String>,
    pub order_status: Option<String>,
    pub esim_status: Option<String>,
    pub smdp_status: Option<String>,
    #[serde(deserialize_with = "lenient_i64")]
    pub total_volume: Option<i64>,
    #[serde(deserialize_with = "lenient_i64")]
    pub order_usage: Option<i64>,
    #[serde(deserialize_with = "lenient_i64")]
    pub remain: Option<i64>,
    #[serde(deserialize_with = "lenient_decimal")]
    pub remain_threshold: Option<Decimal>,
    pub expired_time: Option<String>,
}

// ---------------------------------------------------------------------------------------
// Conversions

/// `location` is `"JP"` or `"CN,HK,ID,JP"`: ISO alpha-2 codes, upper case, sorted, unique.
pub fn countries(location: &str) -> Vec<String> {
    let mut out: Vec<String> = location
        .split(',')
        .map(|c| c.trim().to_ascii_uppercase())
        .filter(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()))
        .collect();
    out.sort();
    out.dedup();
    out
}

fn data_allowance(p: &Package) -> Option<DataAllowance> {
    let volume = p.volume?;
    if volume == assumptions::UNLIMITED_VOLUME {
        return Some(DataAllowance::unlimited());
    }
    let bytes = u64::try_from(volume).ok().filter(|b| *b > 0)?;
    match p.data_type.unwrap_or(1) {
        1 => Some(DataAllowance::binary(DataKind::Total, bytes)),
        2 => Some(DataAllowance::binary(DataKind::Daily, bytes)),
        _ => None,
    }
}

fn validity_days(p: &Package) -> Option<u32> {
    let n = u32::try_from(p.duration?).ok()?;
    match p
        .duration_unit
        .as_deref()
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
        None | Some("DAY") | Some("DAYS") => Some(n),
        _ => None,
    }
}

fn networks(p: &Package) -> Vec<Network> {
    p.location_network_list
        .iter()
        .filter_map(|l| Some((countries(l.location_code.as_deref()?).pop()?, l)))
        .flat_map(|(country, l)| {
            l.operator_list.iter().filter_map(move |o| {
                Some(Network {
                    country: country.clone(),
                    operator: o.operator_name.clone()?.trim().to_string(),
                    generations: o
                        .network_type
                        .as_deref()
                        .unwrap_or("")
                        .split(['/', ','])
                        .map(str::trim)
                        .filter(|g| !g.is_empty())
                        .map(str::to_string)
                        .collect(),
                })
            })
        })
        .collect()
}

/// One package as an offer. `None` when it has no code (it could not be ordered anyway).
pub fn offer(raw: Value, from_topup_list: bool) -> Option<Offer> {
    let p: Package = serde_json::from_value(raw.clone()).ok()?;
    let sku = p.package_code.clone().filter(|c| !c.trim().is_empty())?;
    let data = data_allowance(&p);
    let validity = validity_days(&p);
    let usd = p
        .currency_code
        .as_deref()
        .is_none_or(|c| c.eq_ignore_ascii_case("USD"));
    let cost = p.price.filter(|_| usd).map(money_from_units);
    Some(Offer {
        vendor: VendorId::EsimAccess,
        is_topup: from_topup_list || sku.starts_with("TOPUP_"),
        name: p.name.clone().unwrap_or_else(|| sku.clone()),
        countries: countries(p.location.as_deref().unwrap_or("")),
        region_label: None,
        active: data.is_some() && validity.is_some() && cost.is_some(),
        data,
        validity_days: validity.unwrap_or(0),
        cost: cost.unwrap_or(Money::new(Decimal::ZERO, Currency::USD)),
        networks: networks(&p),
        supports_topup: p
            .support_top_up_type
            .is_some_and(|t| assumptions::TOPUP_SUPPORTED_TYPES.contains(&t)),
        flags: Vec::new(),
        sku,
        raw,
    })
}

/// The state matrix of the docs (§2): esimStatus first, smdpStatus to tell New from Onboard.
pub fn esim_status(esim_status: &str, smdp_status: &str, used: Option<i64>) -> Option<EsimStatus> {
    Some(match esim_status.trim().to_ascii_uppercase().as_str() {
        "GOT_RESOURCE" => match smdp_status.trim().to_ascii_uppercase().as_str() {
            "" | "RELEASED" => EsimStatus::Ready,
            _ => EsimStatus::Installed,
        },
        "IN_USE" if used.unwrap_or(1) == 0 => EsimStatus::Installed,
        "IN_USE" | "SUSPENDED" => EsimStatus::Active,
        "USED_UP" => EsimStatus::Depleted,
        "USED_EXPIRED" | "UNUSED_EXPIRED" => EsimStatus::Expired,
        "CANCEL" | "REVOKED" => EsimStatus::Cancelled,
        _ => return None,
    })
}

impl Esim {
    /// The profile a traveller installs. Errors name the missing field (no secrets inside).
    pub fn profile(&self) -> Result<EsimProfile, String> {
        let iccid = self
            .iccid
            .clone()
            .filter(|i| !i.trim().is_empty())
            .ok_or("profile without iccid")?;
        let activation = self
            .ac
            .as_deref()
            .and_then(lpa::parse)
            .ok_or("profile without a valid activation code (ac)")?;
        Ok(EsimProfile {
            iccid,
            activation,
            vendor_esim_ref: self.esim_tran_no.clone(),
            status: esim_status(
                self.esim_status.as_deref().unwrap_or(""),
                self.smdp_status.as_deref().unwrap_or(""),
                self.order_usage,
            )
            .unwrap_or(EsimStatus::Ready),
            expires_at: self.expired_time.as_deref().and_then(parse_time),
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    /// Values an f64 would change (or that only survive as text) arrive exact: the raw
    /// JSON is parsed from text, never built with `json!` (which would hold floats).
    #[test]
    fn decimals_never_pass_through_f64() {
        #[derive(Deserialize)]
        struct T {
            #[serde(deserialize_with = "lenient_decimal")]
            v: Option<Decimal>,
        }
        for text in ["4.35", "0.07", "12.345", "1234567890.1234567891"] {
            let t: T = serde_json::from_str(&format!(r#"{{"v": {text}}}"#)).unwrap();
            assert_eq!(t.v.unwrap().to_string(), text);
            let t: T = serde_json::from_str(&format!(r#"{{"v": "{text}"}}"#)).unwrap();
            assert_eq!(t.v.unwrap().to_string(), text);
        }
        // Prices are integer ten-thousandths of a dollar: 43500 is exactly 4.35.
        assert_eq!(money_from_units(43_500).amount.to_string(), "4.35");
        assert_eq!(money_from_units(700).amount.to_string(), "0.07");
        assert_eq!(money_from_units(123_450).amount.to_string(), "12.345");
    }

    use super::*;
    use crate::vendors::GIB;

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn units_are_ten_thousandths_of_a_dollar() {
        assert_eq!(money_from_units(112_500).amount, dec("11.25"));
        assert_eq!(money_from_units(10_000).amount, dec("1"));
        assert_eq!(money_from_units(9000).amount, dec("0.9"));
        assert_eq!(money_from_units(940_000).currency, Currency::USD);
        let m = Money::new(dec("7.50"), Currency::USD);
        assert_eq!(units_from_money(&m), Some(75_000));
        assert_eq!(
            units_from_money(&Money::new(dec("0.00001"), Currency::USD)),
            None
        );
        assert_eq!(
            units_from_money(&Money::new(dec("7.5"), "EUR".parse().unwrap())),
            None
        );
    }

    #[test]
    fn parses_every_time_format_the_vendor_uses() {
        let t = Utc.with_ymd_and_hms(2026, 9, 28, 9, 47, 0).unwrap();
        assert_eq!(parse_time("2026-09-28T09:47:00+0000"), Some(t));
        assert_eq!(parse_time("2026-09-28T09:47:00Z"), Some(t));
        assert_eq!(parse_time("2026-09-28T09:47:00+00:00"), Some(t));
        assert_eq!(parse_time("2026-09-28T17:47:00+0800"), Some(t));
        assert_eq!(parse_time("2026-09-28T09:47+00:00"), Some(t));
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(format_time(t), "2026-09-28T09:47:00+00:00");
    }

    #[test]
    fn envelope_accepts_boolean_or_string_success_and_either_message_field() {
        let e: Envelope = serde_json::from_str(
            r#"{"success":true,"errorCode":"0","errorMsg":null,"obj":{"balance":940000}}"#,
        )
        .unwrap();
        assert!(e.succeeded());
        let e: Envelope = serde_json::from_str(
            r#"{"success":"false","errorCode":"310241","errorMessage":"The packageCode does not exist.","obj":null}"#,
        )
        .unwrap();
        assert!(!e.succeeded());
        assert_eq!(e.code(), "310241");
        assert_eq!(e.message(), "The packageCode does not exist.");
        let e: Envelope =
            serde_json::from_str(r#"{"success":false,"errorCode":1,"errorMsg":"Server error"}"#)
                .unwrap();
        assert_eq!(e.code(), "000001");
    }

    /// The catalogue example of the collection (Slovenia) and the regional one.
    #[test]
    fn parses_documented_packages_into_offers() {
        let raw = serde_json::json!({
            "packageCode": "CKH139", "slug": "SI_5_30", "name": "Slovenia 5GB 30Days",
            "price": 112500, "currencyCode": "USD", "volume": 5368709120u64, "duration": 30,
            "durationUnit": "DAY", "location": "SI", "supportTopUpType": 2,
            "locationNetworkList": [{"locationName": "Slovenia"}]
        });
        let o = offer(raw.clone(), false).unwrap();
        assert_eq!(o.sku, "CKH139");
        assert_eq!(o.name, "Slovenia 5GB 30Days");
        assert_eq!(o.countries, vec!["SI"]);
        assert_eq!(
            o.data,
            Some(DataAllowance::binary(DataKind::Total, 5 * GIB))
        );
        assert_eq!(o.validity_days, 30);
        assert_eq!(o.cost, Money::new(dec("11.25"), Currency::USD));
        assert!(o.supports_topup && !o.is_topup && o.active);
        assert_eq!(o.raw, raw);

        let o = offer(
            serde_json::json!({"packageCode": "X2", "name": "Asia 11", "price": 10000,
                "volume": 1073741824, "duration": 7, "location": "CN,HK,ID,JP", "supportTopUpType": 1}),
            false,
        )
        .unwrap();
        assert_eq!(o.countries, vec!["CN", "HK", "ID", "JP"]);
        assert_eq!(o.cost.amount, dec("1"));
        assert!(!o.supports_topup);
    }

    #[test]
    fn daily_topup_and_networks_are_read() {
        let o = offer(
            serde_json::json!({"packageCode": "TOPUP_JC172", "slug": "JP_1_Daily", "name": "Japan 1GB/Day",
                "price": "7000", "currencyCode": "USD", "volume": "1073741824", "dataType": 2,
                "duration": 5, "durationUnit": "DAY", "location": "JP", "supportTopUpType": 3,
                "locationNetworkList": [{"locationName": "Japan", "locationCode": "JP",
                    "operatorList": [{"operatorName": "SoftBank", "networkType": "4G/5G"}]}]}),
            false,
        )
        .unwrap();
        assert!(o.is_topup);
        assert_eq!(o.data, Some(DataAllowance::binary(DataKind::Daily, GIB)));
        assert_eq!(o.cost.amount, dec("0.7"));
        assert!(!o.supports_topup, "supportTopUpType 3 is undocumented");
        assert_eq!(
            o.networks,
            vec![Network {
                country: "JP".into(),
                operator: "SoftBank".into(),
                generations: vec!["4G".into(), "5G".into()],
            }]
        );
    }

    #[test]
    fn a_package_without_price_is_kept_but_not_sold() {
        let o = offer(
            serde_json::json!({"packageCode": "Z1", "volume": 1, "duration": 1}),
            false,
        )
        .unwrap();
        assert!(!o.active);
        assert!(offer(serde_json::json!({"name": "no code"}), false).is_none());
    }

    /// The live profile of the integration notes.
    #[test]
    fn parses_the_live_profile_example() {
        let e: Esim = serde_json::from_value(serde_json::json!({
            "esimTranNo": "26040109460026", "orderNo": "B26040109460024",
            "transactionId": "6ffdae4a-baf9-40f4-bf2d-f1a206b181a4", "iccid": "8910300000040030312",
            "imsi": "310840115441965", "ac": "LPA:1$rsp-eu.simlessly.com$20FDE2B61DDD4DEF9CBE89C55EADFC22",
            "qrCodeUrl": "https://p.qrsim.net/0f0a6ce01d9643b690a7b2046159331d.png",
            "shortUrl": "https://p.qrsim.net/0f0a6ce01d9643b690a7b2046159331d",
            "smdpStatus": "RELEASED", "esimStatus": "GOT_RESOURCE", "pin": "7668", "puk": "72330085",
            "apn": "isp", "totalVolume": 1073741824, "totalDuration": 1, "durationUnit": "DAY",
            "orderUsage": 0, "expiredTime": "2026-09-28T09:47:00+0000", "supportTopUpType": 3,
            "fupPolicy": "1 Mbps"
        }))
        .unwrap();
        let p = e.profile().unwrap();
        assert_eq!(p.iccid, "8910300000040030312");
        assert_eq!(p.activation.smdp_address, "rsp-eu.simlessly.com");
        assert_eq!(p.activation.matching_id, "20FDE2B61DDD4DEF9CBE89C55EADFC22");
        assert_eq!(p.vendor_esim_ref.as_deref(), Some("26040109460026"));
        assert_eq!(p.status, EsimStatus::Ready);
        assert_eq!(
            p.expires_at,
            Some(Utc.with_ymd_and_hms(2026, 9, 28, 9, 47, 0).unwrap())
        );
        assert_eq!(
            e.transaction_id.as_deref(),
            Some("6ffdae4a-baf9-40f4-bf2d-f1a206b181a4")
        );
    }

    #[test]
    fn a_profile_without_activation_code_is_an_error() {
        let e = Esim {
            iccid: Some("1".into()),
            ..Esim::default()
        };
        assert!(e.profile().unwrap_err().contains("ac"));
    }

    #[test]
    fn state_matrix_of_the_docs() {
        let cases = [
            ("GOT_RESOURCE", "RELEASED", Some(0), EsimStatus::Ready),
            ("GOT_RESOURCE", "DOWNLOAD", None, EsimStatus::Installed),
            ("IN_USE", "ENABLED", Some(0), EsimStatus::Installed),
            ("IN_USE", "ENABLED", Some(123), EsimStatus::Active),
            ("IN_USE", "DISABLED", Some(123), EsimStatus::Active),
            ("USED_UP", "ENABLED", Some(999), EsimStatus::Depleted),
            ("USED_EXPIRED", "ENABLED", None, EsimStatus::Expired),
            ("UNUSED_EXPIRED", "RELEASED", None, EsimStatus::Expired),
            ("CANCEL", "RELEASED", None, EsimStatus::Cancelled),
            ("REVOKED", "DELETED", None, EsimStatus::Cancelled),
        ];
        for (e, s, used, want) in cases {
            assert_eq!(esim_status(e, s, used), Some(want), "{e}/{s}");
        }
        assert_eq!(esim_status("SOMETHING_NEW", "", None), None);
    }

    #[test]
    fn parses_usage_topup_and_balance_examples() {
        let u: UsageResponse = serde_json::from_value(serde_json::json!({"esimUsageList": [
            {"esimTranNo": "23072017992029", "dataUsage": 1453344832, "totalData": 5368709120u64,
             "lastUpdateTime": "2025-03-19T18:00:00+0000"}]}))
        .unwrap();
        let item = &u.esim_usage_list[0];
        assert_eq!(item.data_usage, Some(1_453_344_832));
        assert_eq!(item.total_data, Some(5_368_709_120));
        assert_eq!(
            item.last_update_time.as_deref().and_then(parse_time),
            Some(Utc.with_ymd_and_hms(2025, 3, 19, 18, 0, 0).unwrap())
        );

        let t: TopupResponse = serde_json::from_value(serde_json::json!({
            "transactionId": "TXN-123", "iccid": "89852245280001354019",
            "expiredTime": "2023-08-17T17:01:37+0000", "totalVolume": 4294967296u64,
            "totalDuration": 28, "orderUsage": 207239584}))
        .unwrap();
        assert_eq!(t.transaction_id.as_deref(), Some("TXN-123"));
        assert_eq!(t.total_volume, Some(4 * GIB as i64));
        assert_eq!(t.total_duration, Some(28));

        let b: BalanceResponse =
            serde_json::from_value(serde_json::json!({"balance": 100000})).unwrap();
        assert_eq!(money_from_units(b.balance.unwrap()).amount, dec("10"));

        let o: OrderResponse =
            serde_json::from_value(serde_json::json!({"orderNo": "B22102010075311"})).unwrap();
        assert_eq!(o.order_no.as_deref(), Some("B22102010075311"));
    }

    #[test]
    fn requests_serialize_as_documented() {
        let body = OrderRequest {
            transaction_id: "ord_01JDEMO",
            package_info_list: vec![PackageInfo {
                package_code: "JC016",
                count: 1,
                price: Some(75_000),
            }],
            amount: Some(75_000),
        };
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"transactionId":"ord_01JDEMO","packageInfoList":[{"packageCode":"JC016","count":1,"price":75000}],"amount":75000}"#
        );
        let q = QueryRequest {
            order_no: Some("B25080914060004"),
            pager: Pager {
                page_num: 1,
                page_size: 50,
            },
            ..QueryRequest::default()
        };
        assert_eq!(
            serde_json::to_string(&q).unwrap(),
            r#"{"orderNo":"B25080914060004","pager":{"pageNum":1,"pageSize":50}}"#
        );
        let t = TopupRequest {
            target: EsimTarget {
                esim_tran_no: Some("24111319542101"),
                iccid: None,
            },
            package_code: "TOPUP_JC172",
            transaction_id: "1747191693771_topup_partner7",
        };
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            r#"{"esimTranNo":"24111319542101","packageCode":"TOPUP_JC172","transactionId":"1747191693771_topup_partner7"}"#
        );
    }
}
