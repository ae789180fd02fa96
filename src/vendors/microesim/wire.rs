//! MicroEsim's JSON exactly as the Postman collection shows it (see `README.md`; its examples are in `examples/`), read
//! tolerantly (strings or numbers, missing fields), and its conversion to normalized types.
//!
//! Units at this edge: prices are HKD decimal strings, data and usage are binary megabytes
//! (1 MB = 1024 KB, checked against `total_usage_kb` in the deviceDetail example), times are
//! UTC+8 wall-clock strings in two formats.

use std::str::FromStr;

use chrono::{DateTime, FixedOffset, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, de::DeserializeOwned};

use crate::{
    domain::money::{Currency, Money},
    vendors::{
        DataAllowance, DataKind, EsimProfile, EsimStatus, GIB, KIB, MIB, Network, Offer, OfferFlag,
        OrderState, Usage, VendorId, VendorOrderStatus, lpa,
        support::{TimeFormats, lenient, lenient::decimal as decimal_from_json},
    },
};

/// `{ "code": 1, "msg": "Success", "result": … }`; the push uses `data` instead of `result`.
#[derive(Debug, Clone, Deserialize)]
pub struct Envelope {
    #[serde(default, deserialize_with = "opt_i64")]
    pub code: Option<i64>,
    #[serde(default, deserialize_with = "string")]
    pub msg: String,
    #[serde(default)]
    pub result: serde_json::Value,
}

/// One plan of `esimDataplanList` / `esimDataplanListPage`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Dataplan {
    #[serde(deserialize_with = "string")]
    pub channel_dataplan_id: String,
    #[serde(deserialize_with = "string")]
    pub channel_dataplan_name: String,
    #[serde(deserialize_with = "string")]
    pub price: String,
    #[serde(deserialize_with = "string")]
    pub currency: String,
    #[serde(deserialize_with = "string")]
    pub status: String,
    #[serde(deserialize_with = "u32_lenient")]
    pub day: u32,
    #[serde(deserialize_with = "string")]
    pub data: String,
    #[serde(deserialize_with = "string")]
    pub apn: String,
    #[serde(deserialize_with = "string")]
    pub active_type: String,
    #[serde(deserialize_with = "string")]
    pub code: String,
    #[serde(deserialize_with = "string")]
    pub networks: String,
    #[serde(deserialize_with = "string")]
    pub ip: String,
    #[serde(deserialize_with = "string")]
    pub rule_desc: String,
    #[serde(deserialize_with = "string")]
    pub validity_period: String,
    #[serde(deserialize_with = "string")]
    pub special_desc: String,
}

/// `result` of `esimDataplanListPage`. Plans stay raw JSON so offers keep the vendor's own.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DataplanPage {
    #[serde(deserialize_with = "u32_lenient")]
    pub page_no: u32,
    #[serde(deserialize_with = "u32_lenient")]
    pub page_size: u32,
    #[serde(deserialize_with = "u32_lenient")]
    pub total: u32,
    #[serde(deserialize_with = "u32_lenient")]
    pub total_pages: u32,
    pub list: Vec<serde_json::Value>,
}

/// `result` of `esimSubscribe`: only the vendor's order number; eSIMs come later.
#[derive(Debug, Clone, Deserialize)]
pub struct SubscribeResult {
    #[serde(deserialize_with = "string")]
    pub topup_id: String,
}

/// `result` of `topupDetail` (and of the lookup by `custom_order_no`): parallel arrays, one
/// entry per eSIM.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TopupDetail {
    #[serde(deserialize_with = "string")]
    pub topup_id: String,
    #[serde(deserialize_with = "u32_lenient")]
    pub number: u32,
    #[serde(deserialize_with = "u32_lenient")]
    pub success_number: u32,
    #[serde(deserialize_with = "string")]
    pub channel_dataplan_id: String,
    #[serde(deserialize_with = "string")]
    pub channel_dataplan_name: String,
    #[serde(deserialize_with = "string")]
    pub create_time: String,
    #[serde(rename = "type", deserialize_with = "string")]
    pub kind: String,
    #[serde(deserialize_with = "strings")]
    pub device_ids: Vec<String>,
    #[serde(deserialize_with = "strings")]
    pub lpa_str: Vec<String>,
    #[serde(deserialize_with = "strings")]
    pub qrcode: Vec<String>,
    #[serde(deserialize_with = "strings")]
    pub ios_esim_install_link: Vec<String>,
    #[serde(deserialize_with = "strings")]
    pub android_esim_install_link: Vec<String>,
    #[serde(deserialize_with = "strings")]
    pub msisdn: Vec<String>,
    #[serde(deserialize_with = "strings")]
    pub cf_code: Vec<String>,
    /// TSIM's real ICCIDs next to its 16-digit device ids; not in MicroEsim's collection.
    #[serde(deserialize_with = "strings")]
    pub operator_iccids: Vec<String>,
}

/// `result` of `deviceDetail`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct DeviceDetail {
    #[serde(deserialize_with = "string")]
    pub topup_id: String,
    #[serde(deserialize_with = "string")]
    pub device_id: String,
    #[serde(rename = "type", deserialize_with = "string")]
    pub kind: String,
    #[serde(deserialize_with = "string")]
    pub channel_dataplan_id: String,
    #[serde(deserialize_with = "string")]
    pub channel_dataplan_name: String,
    #[serde(deserialize_with = "string")]
    pub status: String,
    #[serde(deserialize_with = "string")]
    pub active_time: String,
    #[serde(deserialize_with = "string")]
    pub pause_time: String,
    #[serde(deserialize_with = "string")]
    pub expire_time: String,
    #[serde(deserialize_with = "string")]
    pub terminate_time: String,
    #[serde(deserialize_with = "string")]
    pub create_time: String,
    /// Megabytes (binary), as a decimal string.
    #[serde(deserialize_with = "string")]
    pub data_usage: String,
    pub data_usage_daily: Vec<DailyUsage>,
    /// `"true"` in the collection, a boolean on TSIM.
    #[serde(deserialize_with = "bool_lenient")]
    pub is_daily: bool,
    #[serde(deserialize_with = "string")]
    pub daily_reset_time: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct DailyUsage {
    #[serde(deserialize_with = "string")]
    pub date: String,
    #[serde(deserialize_with = "string")]
    pub total_usage: String,
    #[serde(deserialize_with = "string")]
    pub mcc: String,
    #[serde(deserialize_with = "string")]
    pub mnc: String,
    #[serde(deserialize_with = "string")]
    pub total_usage_kb: String,
}

/// One entry of `eventDetail`'s `result` array.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct DeviceEvent {
    #[serde(deserialize_with = "string")]
    pub event_date: String,
    #[serde(deserialize_with = "string")]
    pub eid: String,
    #[serde(deserialize_with = "string")]
    pub notification_status: String,
    #[serde(deserialize_with = "string")]
    pub notify_type: String,
}

/// `result` of `accountBalance`; `balance` is a JSON number.
#[derive(Debug, Clone, Deserialize)]
pub struct AccountBalance {
    pub balance: serde_json::Value,
    #[serde(default, deserialize_with = "string")]
    pub currency: String,
    #[serde(default, deserialize_with = "string")]
    pub account: String,
}

/// The `topupDetail-async` push: the `data` object of the JSON form, or the form fields.
/// Scalars, one eSIM per push.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Push {
    #[serde(deserialize_with = "string")]
    pub topup_id: String,
    #[serde(deserialize_with = "string")]
    pub number: String,
    #[serde(deserialize_with = "string")]
    pub create_time: String,
    #[serde(deserialize_with = "string")]
    pub device_id: String,
    #[serde(deserialize_with = "string")]
    pub lpa_str: String,
    #[serde(deserialize_with = "string")]
    pub qrcode: String,
    #[serde(deserialize_with = "string")]
    pub ios_esim_install_link: String,
    #[serde(deserialize_with = "string")]
    pub android_esim_install_link: String,
    #[serde(deserialize_with = "string")]
    pub msisdn: String,
    #[serde(deserialize_with = "string")]
    pub cf_code: String,
    /// Scalar counterpart of TSIM's `operator_iccids` (see `assumptions`).
    #[serde(deserialize_with = "string")]
    pub operator_iccid: String,
    /// Not in the collection; taken when a push echoes it.
    #[serde(deserialize_with = "string")]
    pub custom_order_no: String,
}

// ---------------------------------------------------------------------------------------------
// Tolerant field readers: the collection and the TSIM clients disagree on strings vs numbers.

/// A string, number or boolean as text; anything else as `""`.
fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(lenient::text(&lenient::value(d)?, true).unwrap_or_default())
}

/// An array of scalars as texts, or one scalar as a one-entry list (none when empty).
fn strings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(match lenient::value(d)? {
        serde_json::Value::Array(items) => items
            .iter()
            .map(|v| lenient::text(v, true).unwrap_or_default())
            .collect(),
        other => lenient::text(&other, true)
            .filter(|s| !s.is_empty())
            .into_iter()
            .collect(),
    })
}

fn u32_lenient<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let text = string(d)?;
    Ok(text.trim().parse().unwrap_or(0))
}

fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let text = string(d)?;
    Ok(text.trim().parse().ok())
}

fn bool_lenient<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(lenient::word_in(&string(d)?, &["true", "1", "yes"]))
}

/// Deserializes a `result` into `T`, or says briefly why not (no secrets: vendor data only).
pub fn from_result<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, String> {
    let snippet: String = value.to_string().chars().take(200).collect();
    serde_json::from_value(value).map_err(|e| format!("unexpected result ({e}): {snippet}"))
}

// ---------------------------------------------------------------------------------------------
// Units and formats.

/// MicroEsim's server time zone ("System time zone: UTC/GMT+08:00").
const UTC8_SECS: i32 = 8 * 3600;

fn utc8() -> FixedOffset {
    FixedOffset::east_opt(UTC8_SECS).expect("+08:00 is a valid offset")
}

/// `yyyy-MM-dd HH:mm:ss`, the format of most times.
const WALL_CLOCK: &str = "%Y-%m-%d %H:%M:%S";
/// Java's `Date.toString()` as topupDetail's `create_time` has it: `Fri Aug 16 14:00:08 CST
/// 2024`, where CST is China Standard Time (UTC+8), not US Central.
const JAVA_DATE: &str = "%a %b %d %H:%M:%S CST %Y";

const fn utc8_formats(local: &'static [&'static str]) -> TimeFormats {
    TimeFormats {
        rfc3339: false,
        zoned: &[],
        local,
        local_offset_secs: UTC8_SECS,
    }
}

/// `yyyy-MM-dd HH:mm:ss` in UTC+8 → UTC; `None` for `""` or anything else.
pub fn parse_utc8(s: &str) -> Option<DateTime<Utc>> {
    utc8_formats(&[WALL_CLOCK]).parse(s)
}

/// [`JAVA_DATE`] in UTC+8 → UTC.
pub fn parse_java_date(s: &str) -> Option<DateTime<Utc>> {
    utc8_formats(&[JAVA_DATE]).parse(s)
}

/// Either of the vendor's two date formats.
pub fn parse_vendor_time(s: &str) -> Option<DateTime<Utc>> {
    utc8_formats(&[WALL_CLOCK, JAVA_DATE]).parse(s)
}

/// Renders a UTC time the vendor's way (`yyyy-MM-dd HH:mm:ss`, UTC+8); used by the simulator.
pub fn format_utc8(t: DateTime<Utc>) -> String {
    t.with_timezone(&utc8()).format(WALL_CLOCK).to_string()
}

/// Renders a UTC time as Java's `Date.toString()` in China Standard Time.
pub fn format_java_date(t: DateTime<Utc>) -> String {
    t.with_timezone(&utc8()).format(JAVA_DATE).to_string()
}

/// Binary megabytes (a decimal string such as `"17135.6"`) → bytes, rounded to the byte.
pub fn mb_to_bytes(mb: &str) -> Option<u64> {
    let mb = mb.trim();
    if mb.is_empty() {
        return Some(0);
    }
    let d = Decimal::from_str(mb).ok()?;
    if d.is_sign_negative() {
        return None;
    }
    let bytes = (d * Decimal::from(MIB)).round();
    u64::try_from(bytes).ok()
}

/// The free-text `data` field: `unlimited`, `Daily1GB`, `Daily 1GB`, `Total10GB`, `Total 1GB`,
/// `500MB`, `1.5GB`… Units are binary. `None` when the text cannot be understood.
pub fn parse_data(text: &str) -> Option<DataAllowance> {
    let compact: String = text
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
    if compact.is_empty() {
        return None;
    }
    if compact == "unlimited" || compact == "unlimit" {
        return Some(DataAllowance::unlimited());
    }
    let (kind, amount) = if let Some(rest) = compact.strip_prefix("daily") {
        (DataKind::Daily, rest)
    } else if let Some(rest) = compact.strip_prefix("total") {
        (DataKind::Total, rest)
    } else if let Some(rest) = compact
        .strip_suffix("/day")
        .or_else(|| compact.strip_suffix("perday"))
    {
        (DataKind::Daily, rest)
    } else {
        (DataKind::Total, compact.as_str())
    };
    let bytes = amount_to_bytes(amount)?;
    Some(DataAllowance::binary(kind, bytes))
}

/// `10gb`, `500mb`, `1.5g` → bytes (binary units).
fn amount_to_bytes(amount: &str) -> Option<u64> {
    let split = amount
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(amount.len());
    let (number, unit) = amount.split_at(split);
    let unit_bytes = match unit {
        "tb" | "t" => GIB * 1024,
        "gb" | "g" => GIB,
        "mb" | "m" => MIB,
        "kb" | "k" => KIB,
        _ => return None,
    };
    let n = Decimal::from_str(number).ok()?;
    if n <= Decimal::ZERO {
        return None;
    }
    u64::try_from((n * Decimal::from(unit_bytes)).round()).ok()
}

/// `code`: `"JP"` or `"CN,HK,MO,TW"` → sorted, de-duplicated ISO alpha-2.
pub fn parse_countries(code: &str) -> Vec<String> {
    let mut countries: Vec<String> = code
        .split([',', ';', '|', ' '])
        .map(|c| c.trim().to_ascii_uppercase())
        .filter(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()))
        .collect();
    countries.sort_unstable();
    countries.dedup();
    countries
}

/// `networks`: `"JP:Docomo(IIJ)[4G;LTE]|"`, entries `CC:Operator[RAT;RAT]` separated by `|`.
pub fn parse_networks(text: &str) -> Vec<Network> {
    text.split('|')
        .filter_map(|entry| {
            let (country, rest) = entry.trim().split_once(':')?;
            let country = country.trim().to_ascii_uppercase();
            if country.len() != 2 {
                return None;
            }
            let (operator, generations) = match rest.split_once('[') {
                Some((op, rats)) => (
                    op,
                    rats.trim_end_matches(']')
                        .split([';', ',', '/'])
                        .map(str::trim)
                        .filter(|g| !g.is_empty())
                        .map(str::to_string)
                        .collect(),
                ),
                None => (rest, Vec::new()),
            };
            let operator = operator.trim();
            (!operator.is_empty()).then(|| Network {
                country,
                operator: operator.to_string(),
                generations,
            })
        })
        .collect()
}

/// `special_desc` marks plans that need identity checks ("ekyc required esim").
fn needs_ekyc(special_desc: &str) -> bool {
    special_desc.to_ascii_lowercase().contains("kyc")
}

impl Dataplan {
    /// The normalized offer; `None` when the price or currency cannot be read (such a plan
    /// cannot be costed, so it is left out rather than sold at a guessed price).
    pub fn to_offer(&self, raw: serde_json::Value) -> Option<Offer> {
        let amount = Decimal::from_str(self.price.trim()).ok()?;
        let currency = Currency::from_str(self.currency.trim()).ok()?;
        let mut flags = Vec::new();
        if needs_ekyc(&self.special_desc) {
            flags.push(OfferFlag::EkycRequired);
        }
        // The validity clock starts at the order (or `activation_date`) for these plans.
        if self
            .active_type
            .trim()
            .eq_ignore_ascii_case("ACTIVEDBYORDER")
        {
            flags.push(OfferFlag::ActivatesOnPurchase);
        }
        Some(Offer {
            vendor: VendorId::MicroEsim,
            sku: self.channel_dataplan_id.clone(),
            name: self.channel_dataplan_name.clone(),
            countries: parse_countries(&self.code),
            region_label: None,
            data: parse_data(&self.data),
            validity_days: self.day,
            cost: Money::new(amount, currency),
            networks: parse_networks(&self.networks),
            supports_topup: super::assumptions::SUPPORTS_TOPUP,
            is_topup: false,
            active: self.status.trim() == "1",
            flags,
            raw,
        })
    }
}

/// A raw catalogue entry → offer; `None` when it is not a plan we can cost.
pub fn offer_from_raw(raw: serde_json::Value) -> Option<Offer> {
    let plan: Dataplan = serde_json::from_value(raw.clone()).ok()?;
    if plan.channel_dataplan_id.is_empty() {
        return None;
    }
    plan.to_offer(raw)
}

impl TopupDetail {
    /// Complete when every ordered eSIM has its activation code and a valid ICCID. ICCIDs
    /// come only from `operator_iccids` (see "ICCID source" in `assumptions`): the 16-digit
    /// `device_ids` are never used as one. An issued eSIM without a valid ICCID is an error
    /// naming it, so the order stays provisioning with that note instead of storing a fake.
    pub fn to_order_state(&self) -> Result<OrderState, String> {
        let mut esims = Vec::new();
        for (i, lpa_str) in self.lpa_str.iter().enumerate() {
            if lpa_str.trim().is_empty() {
                continue;
            }
            let activation =
                lpa::parse(lpa_str).ok_or_else(|| format!("unreadable lpa_str {lpa_str:?}"))?;
            let device_id = self.device_ids.get(i).cloned().unwrap_or_default();
            let iccid = self
                .operator_iccids
                .get(i)
                .map(|s| s.trim().to_string())
                .filter(|s| crate::vendors::iccid::is_valid(s))
                .ok_or_else(|| {
                    format!(
                        "eSIM {} of MicroEsim order {} is issued without a valid ICCID \
                         (operator_iccids missing or not an ICCID); the order waits for one",
                        if device_id.is_empty() {
                            "?"
                        } else {
                            &device_id
                        },
                        self.topup_id
                    )
                })?;
            esims.push(EsimProfile {
                iccid,
                activation,
                vendor_esim_ref: (!device_id.is_empty()).then_some(device_id),
                status: EsimStatus::Ready,
                expires_at: None,
            });
        }
        let complete = self.number > 0
            && self.success_number == self.number
            && esims.len() == self.number as usize;
        Ok(OrderState {
            charged: None,
            vendor_reference: (!self.topup_id.is_empty()).then(|| self.topup_id.clone()),
            status: if complete {
                VendorOrderStatus::Completed
            } else {
                VendorOrderStatus::Pending
            },
            esims,
        })
    }
}

/// The install state the `eventDetail` history implies: the last successful event wins.
pub fn status_from_events(events: &[DeviceEvent]) -> Option<EsimStatus> {
    let mut executed: Vec<&DeviceEvent> = events
        .iter()
        .filter(|e| {
            let s = e.notification_status.to_ascii_lowercase();
            s.is_empty() || s.contains("success")
        })
        .collect();
    executed.sort_by_key(|e| parse_vendor_time(&e.event_date));
    executed
        .last()
        .and_then(|e| match e.notify_type.to_ascii_uppercase().as_str() {
            // Downloaded but not yet installed still counts as on the device.
            "DOWNLOADED" | "INSTALLED" | "ENABLE" | "DISABLE" | "DELETE" => {
                Some(EsimStatus::Installed)
            }
            _ => None,
        })
}

impl DeviceDetail {
    /// Whether `eventDetail` can tell more than this record (not yet active or ended).
    pub fn wants_events(&self) -> bool {
        self.active_time.trim().is_empty() && self.terminate_time.trim().is_empty()
    }

    /// Usage in bytes. `total_bytes`/`unlimited` are not in deviceDetail (they belong to the
    /// plan), so they stay unknown here.
    pub fn to_usage(
        &self,
        now: DateTime<Utc>,
        events: Option<&[DeviceEvent]>,
    ) -> Result<Usage, String> {
        let used_bytes = mb_to_bytes(&self.data_usage)
            .ok_or_else(|| format!("unreadable data_usage {:?}", self.data_usage))?;
        let activated_at = parse_vendor_time(&self.active_time);
        let expires_at = parse_vendor_time(&self.expire_time);
        let status = if parse_vendor_time(&self.terminate_time).is_some() {
            EsimStatus::Cancelled
        } else if expires_at.is_some_and(|t| t <= now) {
            EsimStatus::Expired
        } else if activated_at.is_some() {
            EsimStatus::Active
        } else {
            events
                .and_then(status_from_events)
                .unwrap_or(EsimStatus::Ready)
        };
        Ok(Usage {
            used_bytes,
            total_bytes: None,
            unlimited: false,
            status: Some(status),
            activated_at,
            expires_at,
            updated_at: None,
        })
    }
}

impl AccountBalance {
    pub fn to_money(&self) -> Result<Money, String> {
        let amount = decimal_from_json(&self.balance)
            .ok_or_else(|| format!("unreadable balance {}", self.balance))?;
        let currency = Currency::from_str(self.currency.trim())
            .map_err(|_| format!("unreadable currency {:?}", self.currency))?;
        Ok(Money::new(amount, currency))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Balances and prices that an f64 would change arrive exact (parsed from raw text).
    #[test]
    fn decimals_never_pass_through_f64() {
        for text in ["4.35", "0.07", "12.345", "1234567890.1234567891"] {
            let b: AccountBalance =
                serde_json::from_str(&format!(r#"{{"balance": {text}, "currency": "HKD"}}"#))
                    .unwrap();
            assert_eq!(b.to_money().unwrap().amount.to_string(), text);
        }
    }

    // Every example response of the Postman collection, verbatim.
    pub(crate) const PLAN_LIST: &str = include_str!("examples/plan_list.json");
    pub(crate) const PLAN_PAGE: &str = include_str!("examples/plan_page.json");
    pub(crate) const SUBSCRIBE: &str = include_str!("examples/subscribe.json");
    pub(crate) const TOPUP_DETAIL: &str = include_str!("examples/topup_detail.json");
    pub(crate) const PUSH: &str = include_str!("examples/push.json");
    pub(crate) const DEVICE_DETAIL: &str = include_str!("examples/device_detail.json");
    pub(crate) const EVENT_DETAIL: &str = include_str!("examples/event_detail.json");
    pub(crate) const ACCOUNT_BALANCE: &str = include_str!("examples/account_balance.json");

    fn envelope(body: &str) -> Envelope {
        let env: Envelope = serde_json::from_str(body).unwrap();
        assert_eq!(env.code, Some(1));
        assert_eq!(env.msg, "Success");
        env
    }

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn hkd(s: &str) -> Money {
        Money::new(dec(s), "HKD".parse().unwrap())
    }

    fn iij() -> Vec<Network> {
        vec![Network {
            country: "JP".into(),
            operator: "Docomo(IIJ)".into(),
            generations: vec!["4G".into(), "LTE".into()],
        }]
    }

    #[test]
    fn plan_list_example_becomes_five_unlimited_japan_offers() {
        let env = envelope(PLAN_LIST);
        let raws: Vec<serde_json::Value> = from_result(env.result).unwrap();
        let offers: Vec<Offer> = raws
            .into_iter()
            .map(|r| offer_from_raw(r).unwrap())
            .collect();
        let summary: Vec<(&str, Money, u32)> = offers
            .iter()
            .map(|o| (o.sku.as_str(), o.cost, o.validity_days))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("b1a926e1-d770-4e03-804e-c527b9397eb9", hkd("524.00"), 30),
                ("202408136e79772A718449EEE9290CAC3", hkd("279.62"), 15),
                ("2024081342489905C36Eee9eA513390E9", hkd("209.00"), 10),
                ("20240813E215A8C7D92367249770119e6", hkd("112.88"), 5),
                ("2024081362C6C4EA4220B2D5224e2ee1E", hkd("71.62"), 3),
            ]
        );
        let first = &offers[0];
        assert_eq!(first.vendor, VendorId::MicroEsim);
        assert_eq!(first.name, "Global 66-Total1GB-7-A0-test");
        assert_eq!(first.countries, vec!["JP"]);
        assert_eq!(first.region_label, None);
        assert_eq!(first.networks, iij());
        assert!(first.active && !first.supports_topup && !first.is_topup);
        assert_eq!(first.raw["apn"], "vmobile.jp");
        for o in &offers {
            assert_eq!(o.data, Some(DataAllowance::unlimited()));
            assert!(o.flags.is_empty(), "{:?}", o.flags);
        }
    }

    #[test]
    fn plan_page_example_flags_ekyc_plans() {
        let env = envelope(PLAN_PAGE);
        let page: DataplanPage = from_result(env.result).unwrap();
        assert_eq!(
            (page.page_no, page.page_size, page.total, page.total_pages),
            (1, 500, 5, 1)
        );
        let offers: Vec<Offer> = page
            .list
            .into_iter()
            .map(|r| offer_from_raw(r).unwrap())
            .collect();
        assert_eq!(offers.len(), 5);
        assert!(offers[0].flags.is_empty());
        for o in &offers[1..] {
            assert_eq!(o.flags, vec![OfferFlag::EkycRequired], "{}", o.sku);
        }
        assert_eq!(offers[4].cost, hkd("71.62"));
        assert_eq!(offers[4].validity_days, 3);
    }

    #[test]
    fn subscribe_example_yields_the_topup_id() {
        let r: SubscribeResult = from_result(envelope(SUBSCRIBE).result).unwrap();
        assert_eq!(r.topup_id, "202308161431187762753800");
    }

    #[test]
    fn topup_detail_example_is_a_completed_order_of_two() {
        let d: TopupDetail = from_result(envelope(TOPUP_DETAIL).result).unwrap();
        assert_eq!(
            parse_java_date(&d.create_time),
            Some(utc("2024-08-16T06:00:08Z"))
        );
        assert_eq!(d.msisdn, vec!["482222233223", "482222233333"]);
        assert_eq!(d.cf_code, vec!["000777", "000888"]);
        // The collection carries no operator_iccids: its 16-digit device ids are not
        // ICCIDs, so the order is not complete and says why.
        let err = d.to_order_state().unwrap_err();
        assert!(
            err.contains("9000024081603874") && err.contains("valid ICCID"),
            "{err}"
        );
        // With the ICCIDs TSIM sends next to them, it is.
        let mut d = d;
        d.operator_iccids = vec!["8985200012345678905".into(), "8985200000000000002".into()];
        let state = d.to_order_state().unwrap();
        assert_eq!(
            state.vendor_reference.as_deref(),
            Some("202308161431187762753800")
        );
        assert_eq!(state.status, VendorOrderStatus::Completed);
        assert_eq!(state.esims.len(), 2);
        let e = &state.esims[0];
        assert_eq!(e.iccid, "8985200012345678905");
        assert_eq!(e.vendor_esim_ref.as_deref(), Some("9000024081603874"));
        assert_eq!(e.activation.smdp_address, "rsp-eu.simlessly.com");
        assert_eq!(e.activation.matching_id, "580FFE02FFEE57965B6EECA132DA088D");
        assert_eq!(e.status, EsimStatus::Ready);
        assert_eq!(
            state.esims[1].activation.lpa,
            "LPA:1$rsp-eu.simlessly.com$56C139A2ED0CA148F9AF57364F6DDDEF"
        );
    }

    #[test]
    fn topup_detail_prefers_operator_iccids_and_waits_for_every_esim() {
        let d: TopupDetail = serde_json::from_value(serde_json::json!({
            "topup_id": "T1", "number": "2", "success_number": 1,
            "device_ids": ["9000024081603874"],
            "lpa_str": ["LPA:1$smdp.example$ABC"],
            "operator_iccids": ["8985200012345678905"]
        }))
        .unwrap();
        let state = d.to_order_state().unwrap();
        assert_eq!(state.status, VendorOrderStatus::Pending);
        assert_eq!(state.esims[0].iccid, "8985200012345678905");
        assert_eq!(
            state.esims[0].vendor_esim_ref.as_deref(),
            Some("9000024081603874")
        );
    }

    #[test]
    fn device_detail_example_converts_binary_megabytes_and_utc8_times() {
        let d: DeviceDetail = from_result(envelope(DEVICE_DETAIL).result).unwrap();
        assert!(d.is_daily);
        assert_eq!(d.data_usage_daily.len(), 3);
        // The collection's own numbers prove 1 MB = 1024 KB (the vendor truncates to cents),
        // and that data_usage is the sum of the days (rounded to one decimal).
        let mut sum = Decimal::ZERO;
        for day in &d.data_usage_daily {
            let mb = (dec(&day.total_usage_kb) / dec("1024"))
                .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::ToZero);
            assert_eq!(mb, dec(&day.total_usage), "{}", day.date);
            sum += mb;
        }
        assert_eq!(sum.round_dp(1), dec(&d.data_usage));
        let usage = d.to_usage(utc("2024-01-01T00:00:00Z"), None).unwrap();
        // 17135.6 MB × 1,048,576 = 17,967,978,905.6 bytes.
        assert_eq!(usage.used_bytes, 17_967_978_906);
        assert_eq!(usage.activated_at, Some(utc("2023-07-05T04:50:46Z")));
        assert_eq!(usage.expires_at, Some(utc("2023-07-08T04:50:45Z")));
        assert_eq!(usage.status, Some(EsimStatus::Expired));
        let before_expiry = d.to_usage(utc("2023-07-06T00:00:00Z"), None).unwrap();
        assert_eq!(before_expiry.status, Some(EsimStatus::Active));
        assert!(!d.wants_events());
    }

    #[test]
    fn event_detail_example_means_installed() {
        let events: Vec<DeviceEvent> = from_result(envelope(EVENT_DETAIL).result).unwrap();
        assert_eq!(events.len(), 5);
        assert_eq!(events[0].eid, "89033023426300000000032653960548");
        assert_eq!(events[4].notify_type, "ENABLE");
        assert_eq!(
            parse_utc8(&events[4].event_date),
            Some(utc("2023-07-05T04:50:46Z"))
        );
        assert_eq!(status_from_events(&events), Some(EsimStatus::Installed));
        let never_active = DeviceDetail {
            data_usage: "0".into(),
            ..DeviceDetail::default()
        };
        assert!(never_active.wants_events());
        let usage = never_active
            .to_usage(Utc::now(), Some(events.as_slice()))
            .unwrap();
        assert_eq!(usage.status, Some(EsimStatus::Installed));
        assert_eq!(usage.used_bytes, 0);
        let fresh = never_active.to_usage(Utc::now(), Some(&[])).unwrap();
        assert_eq!(fresh.status, Some(EsimStatus::Ready));
    }

    #[test]
    fn account_balance_example_is_exact_hkd() {
        let b: AccountBalance = from_result(envelope(ACCOUNT_BALANCE).result).unwrap();
        assert_eq!(b.account, "MicroeSIM");
        assert_eq!(b.to_money().unwrap(), hkd("14860.23"));
        let tricky: AccountBalance =
            serde_json::from_str(r#"{"balance":0.1,"currency":"HKD"}"#).unwrap();
        assert_eq!(tricky.to_money().unwrap(), hkd("0.1"));
        let as_string: AccountBalance =
            serde_json::from_str(r#"{"balance":"12.30","currency":"HKD"}"#).unwrap();
        assert_eq!(as_string.to_money().unwrap(), hkd("12.30"));
    }

    #[test]
    fn data_texts_parse_in_binary_units() {
        let cases = [
            ("unlimited", Some(DataAllowance::unlimited())),
            ("Unlimited", Some(DataAllowance::unlimited())),
            (
                "Daily1GB",
                Some(DataAllowance::binary(DataKind::Daily, GIB)),
            ),
            (
                "Daily 1GB",
                Some(DataAllowance::binary(DataKind::Daily, GIB)),
            ),
            (
                "Daily 500MB",
                Some(DataAllowance::binary(DataKind::Daily, 500 * MIB)),
            ),
            (
                "Total10GB",
                Some(DataAllowance::binary(DataKind::Total, 10 * GIB)),
            ),
            (
                "Total 1GB",
                Some(DataAllowance::binary(DataKind::Total, GIB)),
            ),
            (
                "500MB",
                Some(DataAllowance::binary(DataKind::Total, 500 * MIB)),
            ),
            (
                "1.5GB",
                Some(DataAllowance::binary(DataKind::Total, 3 * GIB / 2)),
            ),
            (
                "2GB/day",
                Some(DataAllowance::binary(DataKind::Daily, 2 * GIB)),
            ),
            ("", None),
            ("lots", None),
            ("Total GB", None),
            ("0GB", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_data(text), want, "{text:?}");
        }
    }

    #[test]
    fn countries_and_networks_parse() {
        assert_eq!(parse_countries("CN,HK,MO,TW"), vec!["CN", "HK", "MO", "TW"]);
        assert_eq!(parse_countries(" tw, CN ,CN,"), vec!["CN", "TW"]);
        assert_eq!(parse_networks("JP:Docomo(IIJ)[4G;LTE]|"), iij());
        let two = parse_networks("HK:CSL[4G;5G]|MO:CTM|bad|");
        assert_eq!(two.len(), 2);
        assert_eq!(two[0].generations, vec!["4G", "5G"]);
        assert_eq!(two[1].operator, "CTM");
        assert!(two[1].generations.is_empty());
    }

    #[test]
    fn times_are_utc8_in_both_formats() {
        assert_eq!(
            parse_vendor_time("2023-04-27 15:39:47"),
            Some(utc("2023-04-27T07:39:47Z"))
        );
        assert_eq!(
            parse_vendor_time("Fri Aug 16 14:00:08 CST 2024"),
            Some(utc("2024-08-16T06:00:08Z"))
        );
        assert_eq!(parse_vendor_time(""), None);
        let t = utc("2024-02-29T20:30:00Z");
        assert_eq!(format_utc8(t), "2024-03-01 04:30:00");
        assert_eq!(parse_java_date(&format_java_date(t)), Some(t));
    }

    #[test]
    fn bad_megabytes_are_refused() {
        assert_eq!(mb_to_bytes("1"), Some(MIB));
        assert_eq!(mb_to_bytes(""), Some(0));
        assert_eq!(mb_to_bytes("-1"), None);
        assert_eq!(mb_to_bytes("abc"), None);
    }
}
