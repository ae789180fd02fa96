//! eSIMfx JSON as its docs show it (see `README.md`),
//! and the one-way conversions to the normalized vendor types.
//!
//! The doc examples are hand-written (comments, trailing commas), so every field is optional
//! and numbers are accepted as JSON numbers or strings.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use rust_decimal::{Decimal, prelude::ToPrimitive};
use serde::{Deserialize, Deserializer, Serialize};

use crate::{
    domain::money::{Currency, Money},
    vendors::{
        DataAllowance, DataKind, EsimProfile, EsimStatus, GIB, KIB, MIB, Network, Offer,
        OrderState, Usage, VendorId, VendorOrderStatus, lpa, support::lenient,
    },
};

/// `{code, message, data}`: success iff `code == 0`, whatever the HTTP status.
#[derive(Debug, Clone, Deserialize)]
pub struct Envelope {
    pub code: Num,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub data: serde_json::Value,
}

impl Envelope {
    /// The code as the vendor wrote it (`"0"`, `"1002"`), for error messages and the table.
    pub fn code_text(&self) -> String {
        self.code.0.normalize().to_string()
    }

    pub fn is_success(&self) -> bool {
        self.code.0.is_zero()
    }
}

/// A number the vendor may send as a JSON number or a string. Parsed from its decimal text:
/// serde_json is built with `arbitrary_precision`, so a JSON number keeps the vendor's digits
/// and is never an f64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Num(pub Decimal);

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        lenient::decimal(&v)
            .map(Num)
            .ok_or_else(|| serde::de::Error::custom(format!("not a number: {v}")))
    }
}

impl Num {
    pub fn to_u64(self) -> Option<u64> {
        (self.0.fract().is_zero() && !self.0.is_sign_negative())
            .then(|| self.0.to_u64())
            .flatten()
    }
}

/// `true`/`false`, `"true"`, `1`/`0`: one client's JSON serializer sends booleans as strings.
fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(lenient::flag(&lenient::value(d)?, &["true", "1"]))
}

// ---------------------------------------------------------------------------------------------
// Auth
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize)]
pub struct AuthRequest<'a> {
    pub client_id: &'a str,
    pub client_key: &'a str,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AuthData {
    pub access_token: String,
}

// ---------------------------------------------------------------------------------------------
// Catalogue
// ---------------------------------------------------------------------------------------------

/// `POST /product/api/v2/get_products`. `page_start` is the previous page's
/// `last_evaluated_key`, passed back unchanged (`{}` for the first page).
#[derive(Debug, Clone, Serialize)]
pub struct GetProductsRequest {
    pub page_start: serde_json::Value,
    pub page_size: u32,
}

/// `data` of `get_products` and `get_available_topups`. Products stay raw so each offer can
/// keep the vendor's own JSON and one bad product does not hide the rest.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ProductsPage {
    #[serde(default)]
    pub products: Vec<serde_json::Value>,
    /// Non-empty object = there is another page.
    #[serde(default)]
    pub last_evaluated_key: Option<serde_json::Value>,
}

impl ProductsPage {
    /// The `page_start` for the next page, or `None` on the last page.
    pub fn next_page_start(&self) -> Option<serde_json::Value> {
        match &self.last_evaluated_key {
            Some(serde_json::Value::Object(m)) if !m.is_empty() => self.last_evaluated_key.clone(),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Product {
    pub id: String,
    pub meta_product_id: Option<String>,
    pub name: String,
    pub duration: Option<Num>,
    pub duration_unit: Option<String>,
    pub amount: Option<Num>,
    pub amount_unit: Option<String>,
    pub coverage: Vec<String>,
    pub networks: Vec<WireNetwork>,
    pub imsi_profile: Option<String>,
    pub price: Option<Num>,
    pub price_unit: Option<String>,
    #[serde(deserialize_with = "lenient_bool")]
    pub is_unlimited: bool,
    pub high_speed: Option<Num>,
    pub high_speed_unit: Option<String>,
    pub unlimited_speed: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct WireNetwork {
    pub mccmnc: Option<String>,
    pub name: String,
    pub speed: Option<String>,
    pub country_iso: Option<String>,
}

/// Bytes of `amount` `unit` (`GB` = 2^30 per the doc's 10 GB = 10737418240 example).
/// `None` for units that are not data (unlimited plans count in days).
pub fn bytes_of(amount: Decimal, unit: &str) -> Option<u64> {
    let factor = match unit.trim().to_ascii_uppercase().as_str() {
        "B" | "BYTE" | "BYTES" => 1,
        "KB" => KIB,
        "MB" => MIB,
        "GB" => GIB,
        "TB" => GIB * 1024,
        _ => return None,
    };
    (amount * Decimal::from(factor)).round().to_u64()
}

fn is_day_unit(unit: &str) -> bool {
    matches!(unit.trim().to_ascii_uppercase().as_str(), "DAY" | "DAYS")
}

/// Validity in days; `None` when the unit is not understood.
fn validity_days(duration: Decimal, unit: &str) -> Option<u32> {
    let days = match unit.trim().to_ascii_uppercase().as_str() {
        "DAY" | "DAYS" | "" => duration,
        "HOUR" | "HOURS" => (duration / Decimal::from(24)).ceil(),
        // [assumption] calendar months are sold as 30 days.
        "MONTH" | "MONTHS" => duration * Decimal::from(30),
        _ => return None,
    };
    days.to_u32()
}

impl Product {
    /// The plan's data. An unlimited product with a `high_speed` amount is a daily
    /// high-speed allowance, throttled to `unlimited_speed` after it is used
    /// ([assumption], see `super::assumptions::DAILY_HIGH_SPEED`).
    pub fn data_allowance(&self) -> Option<DataAllowance> {
        let unit = self.amount_unit.as_deref().unwrap_or("");
        if self.is_unlimited || is_day_unit(unit) {
            let daily = self.high_speed.zip(self.high_speed_unit.as_deref());
            return match daily {
                Some((amount, unit))
                    if super::assumptions::DAILY_HIGH_SPEED && !amount.0.is_zero() =>
                {
                    bytes_of(amount.0, unit).map(|b| DataAllowance::binary(DataKind::Daily, b))
                }
                _ => Some(DataAllowance::unlimited()),
            };
        }
        let bytes = bytes_of(self.amount?.0, unit)?;
        Some(DataAllowance::binary(DataKind::Total, bytes))
    }

    fn countries(&self) -> Vec<String> {
        let mut c: Vec<String> = self
            .coverage
            .iter()
            .map(|c| c.trim().to_ascii_uppercase())
            .filter(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()))
            .collect();
        c.sort();
        c.dedup();
        c
    }

    fn networks(&self, countries: &[String]) -> Vec<Network> {
        self.networks
            .iter()
            .map(|n| Network {
                // The v1 example omits `country_iso`; a single-country product implies it.
                country: n
                    .country_iso
                    .as_deref()
                    .map(|c| c.trim().to_ascii_uppercase())
                    .or_else(|| (countries.len() == 1).then(|| countries[0].clone()))
                    .unwrap_or_default(),
                operator: n.name.trim().to_string(),
                generations: n
                    .speed
                    .as_deref()
                    .unwrap_or("")
                    .split(['/', ',', ' '])
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
            })
            .collect()
    }

    /// The normalized offer; `Err` says why the product cannot be offered at all.
    pub fn to_offer(&self, raw: serde_json::Value) -> Result<Offer, String> {
        if self.id.trim().is_empty() {
            return Err("product without id".into());
        }
        let price = self.price.ok_or("product without price")?.0;
        let currency = Currency::from_str(self.price_unit.as_deref().unwrap_or("USD").trim())
            .map_err(|e| e.to_string())?;
        let duration = self.duration.map(|d| d.0).unwrap_or_default();
        let days = validity_days(duration, self.duration_unit.as_deref().unwrap_or("DAY"));
        let countries = self.countries();
        Ok(Offer {
            vendor: VendorId::EsimFx,
            sku: self.id.trim().to_string(),
            name: if self.name.is_empty() {
                self.id.clone()
            } else {
                self.name.clone()
            },
            networks: self.networks(&countries),
            region_label: None,
            data: self.data_allowance(),
            validity_days: days.unwrap_or(0),
            cost: Money::new(price, currency),
            supports_topup: super::assumptions::EVERY_PRODUCT_TOPS_UP,
            is_topup: false,
            // A product whose validity we cannot read is kept for admins but never sold.
            active: days.is_some_and(|d| d > 0) && !countries.is_empty(),
            flags: Vec::new(),
            countries,
            raw,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Orders
// ---------------------------------------------------------------------------------------------

/// `POST /order/api/v1/create_order` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateOrderRequest {
    pub operation_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iccid: Option<String>,
    pub product: ProductRef,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductRef {
    pub id: String,
}

/// `data` of `create_order` (with `esim`) and of `get_order` (with `iccid` and `product`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Order {
    pub id: String,
    pub status: Option<String>,
    pub creation_time: Option<DateTime<Utc>>,
    pub iccid: Option<String>,
    pub product: Option<OrderProduct>,
    pub subscription: Option<Subscription>,
    pub esim: Option<Esim>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct OrderProduct {
    pub id: String,
    pub name: Option<String>,
    pub duration: Option<Num>,
    pub duration_unit: Option<String>,
    pub imsi_profile: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Subscription {
    pub upper_limit_amount: Option<Num>,
    pub used_amount: Option<Num>,
    pub amount_unit: Option<String>,
    pub status: Option<String>,
    pub activation_time: Option<DateTime<Utc>>,
    pub expiry: Option<DateTime<Utc>>,
    pub activate_by: Option<DateTime<Utc>>,
}

/// `data.esim` of `create_order`, and `data` of `get_esim_status`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Esim {
    pub iccid: String,
    pub esim_qr: Option<String>,
    pub status: Option<String>,
}

/// `data` of `get_esim_orders`: the context file says `{orders: [...]}`, one client types it
/// as a bare array.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum EsimOrders {
    List(Vec<Order>),
    Wrapped {
        #[serde(default)]
        orders: Vec<Order>,
    },
}

impl EsimOrders {
    pub fn into_orders(self) -> Vec<Order> {
        match self {
            EsimOrders::List(o) | EsimOrders::Wrapped { orders: o } => o,
        }
    }
}

/// `POST /order/api/v1/terminate_subscription` `data`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TerminateData {
    pub refund: Option<Refund>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Refund {
    #[serde(deserialize_with = "lenient_bool")]
    pub need_refund: bool,
}

/// `GET /account/api/v1/reseller/get_profile` `data`: only "reseller profile details" are
/// documented; see `super::assumptions::PROFILE_BALANCE`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Profile {
    #[serde(alias = "account_balance", alias = "available_balance")]
    pub balance: Option<Num>,
    #[serde(alias = "balance_unit", alias = "currency_code")]
    pub currency: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Statuses and conversions
// ---------------------------------------------------------------------------------------------

fn upper(s: Option<&str>) -> String {
    s.unwrap_or("").trim().to_ascii_uppercase()
}

/// `esim.status`: PROVISIONED, Installed (mixed case in the doc), ACTIVE, EXPIRED, BLOCKED,
/// DEACTIVATED. Unknown values read as issued-not-installed.
pub fn esim_status(status: Option<&str>) -> EsimStatus {
    match upper(status).as_str() {
        "INSTALLED" => EsimStatus::Installed,
        "ACTIVE" => EsimStatus::Active,
        // Blocked = expired for 60 days.
        "EXPIRED" | "BLOCKED" => EsimStatus::Expired,
        "DEACTIVATED" => EsimStatus::Cancelled,
        _ => EsimStatus::Ready,
    }
}

impl Subscription {
    pub fn status_upper(&self) -> String {
        upper(self.status.as_deref())
    }

    /// Unlimited subscriptions count in days, not bytes.
    pub fn counts_days(&self) -> bool {
        is_day_unit(self.amount_unit.as_deref().unwrap_or(""))
    }

    fn bytes(&self, n: Option<Num>) -> Option<u64> {
        if self.counts_days() {
            return None;
        }
        bytes_of(n?.0, self.amount_unit.as_deref().unwrap_or("Byte"))
    }

    pub fn total_bytes(&self) -> Option<u64> {
        self.bytes(self.upper_limit_amount)
    }

    pub fn used_bytes(&self) -> Option<u64> {
        self.bytes(self.used_amount)
    }

    /// PENDING / ACTIVE / EXPIRED (data used up or validity over) / TERMINATED.
    pub fn esim_status(&self) -> Option<EsimStatus> {
        Some(match self.status_upper().as_str() {
            "PENDING" => EsimStatus::Ready,
            "ACTIVE" => EsimStatus::Active,
            "EXPIRED" => match (self.used_bytes(), self.total_bytes()) {
                (Some(used), Some(total)) if total > 0 && used >= total => EsimStatus::Depleted,
                _ => EsimStatus::Expired,
            },
            "TERMINATED" => EsimStatus::Cancelled,
            _ => return None,
        })
    }

    /// `activation_time` is filled in (with the planned date) even while PENDING.
    pub fn activated_at(&self) -> Option<DateTime<Utc>> {
        matches!(self.status_upper().as_str(), "ACTIVE" | "EXPIRED")
            .then_some(self.activation_time)
            .flatten()
    }

    pub fn to_usage(&self) -> Usage {
        let unlimited = self.counts_days();
        Usage {
            used_bytes: self.used_bytes().unwrap_or(0),
            total_bytes: if unlimited { None } else { self.total_bytes() },
            unlimited,
            status: self.esim_status(),
            activated_at: self.activated_at(),
            expires_at: self.expiry,
            updated_at: None,
        }
    }
}

/// An eSIM with its activation code; `None` when the LPA string is missing or malformed.
pub fn esim_profile(
    esim: &Esim,
    vendor_order_id: &str,
    subscription: Option<&Subscription>,
) -> Option<EsimProfile> {
    let activation = lpa::parse(esim.esim_qr.as_deref()?)?;
    if esim.iccid.trim().is_empty() {
        return None;
    }
    Some(EsimProfile {
        iccid: esim.iccid.trim().to_string(),
        activation,
        // Terminate and get_order work per vendor order id.
        vendor_esim_ref: Some(vendor_order_id.to_string()),
        status: esim_status(esim.status.as_deref()),
        expires_at: subscription.and_then(|s| s.expiry),
    })
}

/// Order `status`: the doc shows only COMPLETED; the others are guesses at the obvious names.
pub fn order_status(status: Option<&str>) -> VendorOrderStatus {
    match upper(status).as_str() {
        "COMPLETED" | "SUCCESS" | "" => VendorOrderStatus::Completed,
        "FAILED" | "FAIL" | "ERROR" => VendorOrderStatus::Failed,
        "CANCELLED" | "CANCELED" | "REFUNDED" | "TERMINATED" => VendorOrderStatus::Cancelled,
        _ => VendorOrderStatus::Pending,
    }
}

impl Order {
    /// The normalized answer of `create_order`, which carries the eSIM itself.
    pub fn to_placed(&self) -> Result<OrderState, String> {
        if self.id.trim().is_empty() {
            return Err("order without id".into());
        }
        let status = order_status(self.status.as_deref());
        let esims = match &self.esim {
            Some(e) => vec![
                esim_profile(e, &self.id, self.subscription.as_ref())
                    .ok_or("eSIM without ICCID or LPA")?,
            ],
            None if status == VendorOrderStatus::Completed => {
                return Err("completed order without eSIM".into());
            }
            None => Vec::new(),
        };
        Ok(OrderState {
            charged: None,
            vendor_reference: Some(self.id.clone()),
            status,
            esims,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Prices and balances that an f64 would change arrive exact (parsed from raw text).
    #[test]
    fn decimals_never_pass_through_f64() {
        for text in ["4.35", "0.07", "12.345", "1234567890.1234567891"] {
            let p: Profile =
                serde_json::from_str(&format!(r#"{{"balance": {text}, "currency": "USD"}}"#))
                    .unwrap();
            assert_eq!(p.balance.unwrap().0.to_string(), text);
            let n: Num = serde_json::from_str(&format!(r#""{text}""#)).unwrap();
            assert_eq!(n.0.to_string(), text);
        }
        let three: Num = serde_json::from_str("0.07").unwrap();
        assert_eq!((three.0 * Decimal::from(3)).to_string(), "0.21");
    }

    fn data<T: serde::de::DeserializeOwned>(body: &str) -> T {
        let env: Envelope = serde_json::from_str(body).unwrap();
        assert!(env.is_success(), "{}", env.code_text());
        serde_json::from_value(env.data).unwrap()
    }

    fn ts(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    // Doc examples below are the seed's, minus its `//` comments, trailing commas and the
    // stray closing brace in the top-up list, which no JSON parser accepts.

    #[test]
    fn auth_response() {
        let d: AuthData = data(
            r#"{"code":0,"message":"Success","data":{"access_token":"eyJhbGciOiJIUzI1NiJ9.e30.sig"}}"#,
        );
        assert_eq!(d.access_token, "eyJhbGciOiJIUzI1NiJ9.e30.sig");
    }

    const V1_PRODUCTS: &str = r#"{
      "code": 0, "message": "Success",
      "data": {
        "products": [{
            "id": "ca7e9da3-ca97-47cc-9d40-a77610c2xxxx",
            "name": "japan_10GB_7Day", "duration": 7, "duration_unit": "DAY",
            "amount": 10, "amount_unit": "GB", "coverage": ["JP"],
            "networks": [
              {"mccmnc": "44020", "name": "SOFTBANK", "speed": "5G"},
              {"mccmnc": "44051", "name": "KDDI au", "speed": "5G"}
            ],
            "imsi_profile": "Green", "price": 12, "price_unit": "USD"
        }],
        "last_evaluated_key": {}
      }
    }"#;

    #[test]
    fn catalogue_example_becomes_an_offer() {
        let page: ProductsPage = data(V1_PRODUCTS);
        assert_eq!(page.next_page_start(), None);
        let raw = page.products[0].clone();
        let p: Product = serde_json::from_value(raw.clone()).unwrap();
        let o = p.to_offer(raw.clone()).unwrap();
        assert_eq!(o.sku, "ca7e9da3-ca97-47cc-9d40-a77610c2xxxx");
        assert_eq!(o.name, "japan_10GB_7Day");
        assert_eq!(o.countries, vec!["JP"]);
        assert_eq!(o.validity_days, 7);
        assert_eq!(
            o.data,
            Some(DataAllowance::binary(DataKind::Total, 10_737_418_240))
        );
        assert_eq!(o.cost, Money::new(Decimal::from(12), Currency::USD));
        assert_eq!(
            o.networks,
            vec![
                Network {
                    country: "JP".into(),
                    operator: "SOFTBANK".into(),
                    generations: vec!["5G".into()]
                },
                Network {
                    country: "JP".into(),
                    operator: "KDDI au".into(),
                    generations: vec!["5G".into()]
                },
            ]
        );
        assert!(o.active && o.supports_topup && !o.is_topup);
        assert_eq!(o.raw, raw);
    }

    #[test]
    fn v2_product_with_pagination_key_and_decimal_price() {
        let page: ProductsPage = data(
            r#"{"code":0,"message":"Success","data":{"products":[{
                "id":"esimfx_10G_7D_BR","meta_product_id":"m-1","name":"brazil_10GB_7Day",
                "duration":"7","duration_unit":"DAY","amount":"10","amount_unit":"GB",
                "is_unlimited":false,"coverage":["br"],
                "networks":[{"mccmnc":"72405","name":"Claro","speed":"4G/5G","country_iso":"br"}],
                "price":14.35,"price_unit":"USD"}],
              "last_evaluated_key":{"id":"esimfx_10G_7D_BR"}}}"#,
        );
        assert_eq!(
            page.next_page_start(),
            Some(serde_json::json!({"id": "esimfx_10G_7D_BR"}))
        );
        let p: Product = serde_json::from_value(page.products[0].clone()).unwrap();
        let o = p.to_offer(serde_json::Value::Null).unwrap();
        assert_eq!(o.sku, "esimfx_10G_7D_BR");
        assert_eq!(o.countries, vec!["BR"]);
        assert_eq!(o.cost.amount, Decimal::from_str("14.35").unwrap());
        assert_eq!(o.networks[0].country, "BR");
        assert_eq!(o.networks[0].generations, vec!["4G", "5G"]);
    }

    #[test]
    fn megabytes_daily_and_unlimited_products() {
        let mb: Product = serde_json::from_value(serde_json::json!({
            "id":"a","amount":500,"amount_unit":"MB","duration":7,"duration_unit":"DAY",
            "coverage":["TH"],"price":"2.5"}))
        .unwrap();
        assert_eq!(
            mb.data_allowance(),
            Some(DataAllowance::binary(DataKind::Total, 500 * MIB))
        );
        let unlimited: Product = serde_json::from_value(serde_json::json!({
            "id":"b","amount":7,"amount_unit":"DAY","is_unlimited":true,"duration":7}))
        .unwrap();
        assert_eq!(unlimited.data_allowance(), Some(DataAllowance::unlimited()));
        let daily: Product = serde_json::from_value(serde_json::json!({
            "id":"c","is_unlimited":"true","high_speed":1,"high_speed_unit":"GB",
            "unlimited_speed":"512kbps","duration":5}))
        .unwrap();
        assert_eq!(
            daily.data_allowance(),
            Some(DataAllowance::binary(DataKind::Daily, GIB))
        );
        let odd: Product = serde_json::from_value(serde_json::json!({
            "id":"d","amount":1,"amount_unit":"GB","duration":1,"duration_unit":"FORTNIGHT",
            "coverage":["JP"],"price":1}))
        .unwrap();
        let o = odd.to_offer(serde_json::Value::Null).unwrap();
        assert!(!o.active, "unreadable validity is never sold");
        assert!(
            serde_json::from_value::<Product>(serde_json::json!({"id":"e"}))
                .unwrap()
                .to_offer(serde_json::Value::Null)
                .is_err()
        );
    }

    #[test]
    fn available_topups_example() {
        let page: ProductsPage = data(
            r#"{"code":0,"message":"Success","data":{"products":[{
                "id":"ca7e9da3-ca97-47cc-9d40-a77610c2xxxx","name":"Japan_10GB_7Day",
                "duration":7,"duration_unit":"DAY","amount":10,"amount_unit":"GB","coverage":[],
                "networks":[{"mccmnc":"44020","name":"SOFTBANK","speed":"5G"},
                            {"mccmnc":"44051","name":"KDDI au","speed":"5G"}],
                "imsi_profile":"Green","price":12,"price_unit":"USD"}]}}"#,
        );
        assert_eq!(page.next_page_start(), None);
        let p: Product = serde_json::from_value(page.products[0].clone()).unwrap();
        assert_eq!(p.imsi_profile.as_deref(), Some("Green"));
        let o = p.to_offer(serde_json::Value::Null).unwrap();
        assert_eq!(o.name, "Japan_10GB_7Day");
        assert_eq!(o.data.unwrap().bytes, Some(10 * GIB));
        assert!(o.countries.is_empty());
        // No coverage and a single-country guess is impossible: the country stays unknown.
        assert_eq!(o.networks[0].country, "");
    }

    const CREATE_NEW: &str = r#"{
      "code": 0, "message": "Success",
      "data": {
        "id": "01b47ffa-4a74-4209-87e2-d282e274xxxx", "status": "COMPLETED",
        "subscription": {
          "upper_limit_amount": 10737418240, "amount_unit": "Byte", "status": "PENDING",
          "activation_time": "2025-09-30T03:07:11Z", "expiry": "2025-10-07T03:07:11Z",
          "activate_by": "2025-09-30T03:07:11Z"
        },
        "creation_time": "2025-08-01T03:07:11Z",
        "esim": {
          "iccid": "89440000000000000000",
          "esim_qr": "LPA:1$rsp.truphone.com$JQ-2D51JC-XXXXXX", "status": "PROVISIONED"
        }
      }
    }"#;

    #[test]
    fn create_order_example_is_a_completed_order_with_its_esim() {
        let order: Order = data(CREATE_NEW);
        assert_eq!(order.creation_time, Some(ts("2025-08-01T03:07:11Z")));
        let placed = order.to_placed().unwrap();
        assert_eq!(
            placed.vendor_reference.as_deref(),
            Some("01b47ffa-4a74-4209-87e2-d282e274xxxx")
        );
        assert_eq!(placed.status, VendorOrderStatus::Completed);
        let e = &placed.esims[0];
        assert_eq!(e.iccid, "89440000000000000000");
        assert_eq!(e.activation.lpa, "LPA:1$rsp.truphone.com$JQ-2D51JC-XXXXXX");
        assert_eq!(e.activation.smdp_address, "rsp.truphone.com");
        assert_eq!(e.activation.matching_id, "JQ-2D51JC-XXXXXX");
        assert_eq!(e.status, EsimStatus::Ready);
        assert_eq!(e.expires_at, Some(ts("2025-10-07T03:07:11Z")));
        assert_eq!(
            e.vendor_esim_ref.as_deref(),
            Some("01b47ffa-4a74-4209-87e2-d282e274xxxx")
        );
        let sub = order.subscription.unwrap();
        assert_eq!(sub.total_bytes(), Some(10_737_418_240));
        assert_eq!(
            sub.activated_at(),
            None,
            "PENDING carries a planned time only"
        );
    }

    #[test]
    fn topup_create_example_keeps_the_active_esim() {
        let order: Order = data(
            r#"{"code":0,"message":"Success","data":{
                "id":"13bd78f-4a74-4873-87e2-d234y475xxxx","status":"COMPLETED",
                "subscription":{"upper_limit_amount":10737418240,"amount_unit":"Byte",
                  "status":"PENDING","activation_time":"2025-10-08T03:07:11Z",
                  "expiry":"2025-10-14T03:07:11Z","activate_by":"2025-10-08T03:07:11Z"},
                "creation_time":"2025-08-01T03:07:11Z",
                "esim":{"iccid":"89440000000000000000",
                  "esim_qr":"LPA:1$rsp.truphone.com$JQ-2D51JC-XXXXXX","status":"ACTIVE"}}}"#,
        );
        let placed = order.to_placed().unwrap();
        assert_eq!(
            placed.vendor_reference.as_deref(),
            Some("13bd78f-4a74-4873-87e2-d234y475xxxx")
        );
        assert_eq!(placed.esims[0].status, EsimStatus::Active);
        assert_eq!(placed.esims[0].expires_at, Some(ts("2025-10-14T03:07:11Z")));
    }

    #[test]
    fn garbled_orders_are_refused() {
        let no_lpa: Order = serde_json::from_value(serde_json::json!({
            "id":"x","status":"COMPLETED","esim":{"iccid":"8944","esim_qr":"nope"}}))
        .unwrap();
        assert!(no_lpa.to_placed().is_err());
        let no_esim: Order =
            serde_json::from_value(serde_json::json!({"id":"x","status":"COMPLETED"})).unwrap();
        assert!(no_esim.to_placed().is_err());
        let pending: Order =
            serde_json::from_value(serde_json::json!({"id":"x","status":"PROCESSING"})).unwrap();
        assert_eq!(
            pending.to_placed().unwrap().status,
            VendorOrderStatus::Pending
        );
    }

    const GET_ORDER: &str = r#"{
      "code": 0, "message": "Success",
      "data": {
        "id": "01b47ffa-4a74-4209-87e2-d282e274xxxx", "iccid": "89440000000000000000",
        "product": {"id": "ca7e9da3-ca97-47cc-9d40-a77610c2xxxx", "name": "japan_10GB_7Day",
                    "duration": 7, "duration_unit": "DAY", "imsi_profile": "Green"},
        "subscription": {
          "upper_limit_amount": 10737418240, "used_amount": 0, "amount_unit": "Byte",
          "activation_time": "2025-09-30T05:20:12Z", "expiry": "2025-10-07T05:20:12Z",
          "status": "PENDING", "activate_by": "2025-09-30T05:20:12Z"
        },
        "status": "COMPLETED", "creation_time": "2025-09-24T05:20:12Z"
      }
    }"#;

    #[test]
    fn get_order_example() {
        let order: Order = data(GET_ORDER);
        assert_eq!(order.iccid.as_deref(), Some("89440000000000000000"));
        assert_eq!(
            order.product.as_ref().unwrap().name.as_deref(),
            Some("japan_10GB_7Day")
        );
        assert_eq!(
            order_status(order.status.as_deref()),
            VendorOrderStatus::Completed
        );
        let usage = order.subscription.unwrap().to_usage();
        assert_eq!(
            usage,
            Usage {
                used_bytes: 0,
                total_bytes: Some(10_737_418_240),
                unlimited: false,
                status: Some(EsimStatus::Ready),
                activated_at: None,
                expires_at: Some(ts("2025-10-07T05:20:12Z")),
                updated_at: None,
            }
        );
    }

    #[test]
    fn get_esim_status_example() {
        let esim: Esim = data(
            r#"{"code":0,"message":"Success","data":{"iccid":"89440000000000000000",
                "esim_qr":"LPA:1$rsp.truphone.com$JQ-2D1JE2-XXXXXX","status":"PROVISIONED"}}"#,
        );
        let p = esim_profile(&esim, "o-1", None).unwrap();
        assert_eq!(p.iccid, "89440000000000000000");
        assert_eq!(p.activation.matching_id, "JQ-2D1JE2-XXXXXX");
        assert_eq!(p.status, EsimStatus::Ready);
        assert_eq!(esim_status(Some("Installed")), EsimStatus::Installed);
        assert_eq!(esim_status(Some("BLOCKED")), EsimStatus::Expired);
        assert_eq!(esim_status(Some("DEACTIVATED")), EsimStatus::Cancelled);
    }

    #[test]
    fn esim_orders_as_array_or_wrapped() {
        let entry = r#"{"id":"o-1","iccid":"8944","status":"COMPLETED","subscription":{
            "upper_limit_amount":10737418240,"used_amount":8589934592,"amount_unit":"Byte",
            "activation_time":"2025-09-30T05:20:12Z","expiry":"2025-10-07T05:20:12Z",
            "status":"ACTIVE"}}"#;
        let wrapped: EsimOrders = data(&format!(
            r#"{{"code":0,"message":"Success","data":{{"orders":[{entry}]}}}}"#
        ));
        let bare: EsimOrders = data(&format!(
            r#"{{"code":0,"message":"Success","data":[{entry}]}}"#
        ));
        for orders in [wrapped.into_orders(), bare.into_orders()] {
            assert_eq!(orders.len(), 1);
            let u = orders[0].subscription.as_ref().unwrap().to_usage();
            assert_eq!(u.used_bytes, 8_589_934_592);
            assert_eq!(u.total_bytes, Some(10_737_418_240));
            assert_eq!(u.status, Some(EsimStatus::Active));
            assert_eq!(u.activated_at, Some(ts("2025-09-30T05:20:12Z")));
        }
    }

    #[test]
    fn exhausted_and_unlimited_subscriptions() {
        let used_up: Subscription = serde_json::from_value(serde_json::json!({
            "upper_limit_amount":100,"used_amount":100,"amount_unit":"Byte","status":"EXPIRED"}))
        .unwrap();
        assert_eq!(used_up.esim_status(), Some(EsimStatus::Depleted));
        let unlimited: Subscription = serde_json::from_value(serde_json::json!({
            "upper_limit_amount":7,"used_amount":2,"amount_unit":"Days","status":"ACTIVE"}))
        .unwrap();
        let u = unlimited.to_usage();
        assert!(u.unlimited);
        assert_eq!((u.used_bytes, u.total_bytes), (0, None));
    }

    #[test]
    fn terminate_and_profile() {
        let t: TerminateData =
            data(r#"{"code":0,"message":"Success","data":{"refund":{"need_refund":true}}}"#);
        assert!(t.refund.unwrap().need_refund);
        let p: Profile = data(
            r#"{"code":0,"message":"Success","data":{"reseller_id":"r1","balance":"987.65","currency":"USD"}}"#,
        );
        assert_eq!(p.balance.unwrap().0, Decimal::from_str("987.65").unwrap());
        assert_eq!(p.currency.as_deref(), Some("USD"));
    }

    #[test]
    fn error_envelope_codes_as_numbers_or_strings() {
        let e: Envelope =
            serde_json::from_str(r#"{"code":"3001","message":"insufficient balance"}"#).unwrap();
        assert!(!e.is_success());
        assert_eq!(e.code_text(), "3001");
        assert_eq!(e.data, serde_json::Value::Null);
        let ok: Envelope = serde_json::from_str(r#"{"code":0,"data":null}"#).unwrap();
        assert!(ok.is_success());
        assert_eq!(ok.code_text(), "0");
    }
}
