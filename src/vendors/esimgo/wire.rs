//! eSIM Go's JSON, exactly as documented (API v2.4, see `README.md` and `openapi-v2.4.yaml`), and its
//! conversion to the normalized vendor types.
//!
//! Tolerant on purpose: every field is optional, money and quantities are read as strings or
//! numbers (the OpenAPI text says `<integer>` where real payloads carry decimals), ICCIDs as
//! strings or bare integers, and timestamps that do not parse become `None`.

use chrono::{DateTime, Utc};
use rust_decimal::{Decimal, prelude::ToPrimitive};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::{
    domain::money::{Currency, Money},
    vendors::{
        DataAllowance, DataKind, EsimProfile, EsimStatus, Offer, OrderState, Usage, VendorId,
        VendorOrderStatus, lpa,
    },
};

use super::assumptions;

// ---------------------------------------------------------------------------------------
// Lenient scalars
// ---------------------------------------------------------------------------------------

pub(crate) use crate::vendors::support::lenient::opt_decimal;
use crate::vendors::support::{TimeFormats, lenient, lenient::decimal as decimal_from_json};

/// ICCIDs arrive as strings, but a notification example writes one as a bare number. With
/// `arbitrary_precision` a number keeps its digits as text, so even a 20-digit ICCID past
/// `u64` is kept digit for digit. Anything else (an object, a fraction) is an error: an entry
/// whose ICCID we cannot read could be the very eSIM we look for.
fn iccid_of(v: Value) -> Result<Option<String>, String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => Ok(Some(s.trim().to_string())),
        Value::Number(n) => {
            let text = n.to_string();
            if text.bytes().all(|b| b.is_ascii_digit()) {
                Ok(Some(text))
            } else {
                Err(format!("ICCID {text} is not a whole number"))
            }
        }
        other => Err(format!("ICCID is not a string or number: {other}")),
    }
}

pub(crate) fn opt_iccid<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Option::<Value>::deserialize(d)?.unwrap_or(Value::Null);
    iccid_of(v).map_err(serde::de::Error::custom)
}

pub(crate) fn iccid_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let v = Option::<Vec<Value>>::deserialize(d)?.unwrap_or_default();
    let mut out = Vec::new();
    for x in v {
        if let Some(iccid) = iccid_of(x).map_err(serde::de::Error::custom)? {
            out.push(iccid);
        }
    }
    Ok(out)
}

/// RFC 3339 timestamps (`2024-05-02T10:57:30.858475018Z`); some payloads omit the zone, and
/// the API works in UTC.
const TIMES: TimeFormats = TimeFormats {
    rfc3339: true,
    zoned: &[],
    local: &["%Y-%m-%dT%H:%M:%S%.f"],
    local_offset_secs: 0,
};

/// A time field; empty or odd values become `None`.
pub(crate) fn opt_time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    Ok(lenient::value(d)?.as_str().and_then(parse_time))
}

pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    TIMES.parse(s)
}

/// `true` or `"true"` (any case); anything else is false.
fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(lenient::flag(&lenient::value(d)?, &["true"]))
}

/// A whole number as a JSON number or numeric string.
fn lenient_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    Ok(decimal_from_json(&lenient::value(d)?)
        .filter(|d| d.fract().is_zero())
        .and_then(|d| d.to_u32()))
}

/// A non-negative decimal quantity as whole units (bytes, MB), rounded down.
pub fn whole_units(d: Decimal) -> Option<u64> {
    if d.is_sign_negative() {
        return None;
    }
    d.trunc().to_u64()
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// Every error body: `{"message": "<text>"}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ErrorBody {
    #[serde(default)]
    pub message: Option<String>,
}

// ---------------------------------------------------------------------------------------
// Catalogue
// ---------------------------------------------------------------------------------------

/// `countries[]` / `roamingEnabled[]` entries of a bundle.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Country {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub iso: Option<String>,
}

/// One `GET /catalogue` entry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CatalogueBundle {
    /// The order key, case-sensitive (`esim_1GB_7D_GB_V2`).
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub countries: Vec<Country>,
    /// Megabytes, decimal (1 GB = 1000).
    #[serde(default, deserialize_with = "opt_decimal")]
    pub data_amount: Option<Decimal>,
    /// Days.
    #[serde(default, deserialize_with = "lenient_u32")]
    pub duration: Option<u32>,
    #[serde(default)]
    pub speed: Vec<String>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub autostart: bool,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub unlimited: bool,
    #[serde(default)]
    pub roaming_enabled: Vec<Country>,
    /// In the organisation's currency.
    #[serde(default, deserialize_with = "opt_decimal")]
    pub price: Option<Decimal>,
    #[serde(default)]
    pub billing_type: Option<String>,
}

/// One page of `GET /catalogue`: the OpenAPI text shows a bare array, real clients read a
/// `{"bundles": [...], "pageCount", "rows", "pageSize"}` wrapper. Both are accepted.
#[derive(Debug, Clone, Default)]
pub struct CataloguePage {
    pub bundles: Vec<Value>,
    pub page_count: Option<u32>,
}

impl CataloguePage {
    pub fn parse(v: Value) -> Option<CataloguePage> {
        match v {
            Value::Array(items) => Some(CataloguePage {
                bundles: items,
                page_count: None,
            }),
            Value::Object(mut obj) => {
                let bundles = match obj.remove("bundles") {
                    Some(Value::Array(items)) => items,
                    Some(Value::Null) | None => Vec::new(),
                    Some(_) => return None,
                };
                let page_count = obj
                    .get("pageCount")
                    .and_then(decimal_from_json)
                    .and_then(whole_units)
                    .and_then(|n| u32::try_from(n).ok());
                Some(CataloguePage {
                    bundles,
                    page_count,
                })
            }
            _ => None,
        }
    }
}

/// ISO 3166 alpha-2 codes, upper case, sorted, no duplicates; anything else is skipped.
pub fn iso_countries(countries: &[Country]) -> Vec<String> {
    let mut out: Vec<String> = countries
        .iter()
        .filter_map(|c| c.iso.as_deref())
        .map(|iso| iso.trim().to_ascii_uppercase())
        .filter(|iso| iso.len() == 2 && iso.bytes().all(|b| b.is_ascii_uppercase()))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// The label of a multi-country bundle: the coverage named in the description
/// (`eSIM, 1GB, 7 Days, Europe, V2` → `Europe`), else the region every country shares.
pub fn region_label(bundle: &CatalogueBundle, countries: &[String]) -> Option<String> {
    if countries.len() < 2 {
        return None;
    }
    bundle
        .description
        .as_deref()
        .and_then(assumptions::coverage_from_description)
        .or_else(|| {
            let mut regions = bundle
                .countries
                .iter()
                .filter_map(|c| c.region.as_deref().map(str::trim))
                .filter(|r| !r.is_empty());
            let first = regions.next()?;
            regions.all(|r| r == first).then(|| first.to_string())
        })
}

fn data_allowance(bundle: &CatalogueBundle) -> Option<DataAllowance> {
    if bundle.unlimited {
        return Some(DataAllowance::unlimited());
    }
    let mb = bundle.data_amount?;
    // Fractional megabytes would need a byte count `decimal_mb` cannot express; such an offer
    // is kept for admins but not sold.
    if !mb.fract().is_zero() || mb <= Decimal::ZERO {
        return None;
    }
    Some(DataAllowance::decimal_mb(DataKind::Total, whole_units(mb)?))
}

impl CatalogueBundle {
    /// `None` when the bundle has no name or price (nothing we could order or price).
    pub fn to_offer(&self, currency: Currency, raw: Value) -> Option<Offer> {
        if self.name.trim().is_empty() {
            return None;
        }
        let price = self.price?;
        let countries = iso_countries(&self.countries);
        let region_label = region_label(self, &countries);
        Some(Offer {
            vendor: VendorId::EsimGo,
            sku: self.name.clone(),
            name: self
                .description
                .clone()
                .filter(|d| !d.trim().is_empty())
                .unwrap_or_else(|| self.name.clone()),
            countries,
            region_label,
            data: data_allowance(self),
            validity_days: self.duration.unwrap_or(0),
            cost: Money::new(price, currency),
            // The catalogue names no operators; `/networks` would, per country only.
            networks: Vec::new(),
            supports_topup: assumptions::BUNDLES_SUPPORT_TOPUP,
            is_topup: false,
            active: self.duration.is_some_and(|d| d > 0),
            flags: Vec::new(),
            raw,
        })
    }
}

// ---------------------------------------------------------------------------------------
// Organisation
// ---------------------------------------------------------------------------------------

/// `GET /organisation`. The body also carries the API key (`apiKey`): never log it. The
/// OpenAPI schema shows the organisation's fields at the top level; clients and the live
/// service wrap them as `{"organisations": [...]}`. Both are read.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct OrganisationResponse {
    #[serde(default)]
    pub organisations: Vec<Organisation>,
    #[serde(flatten)]
    pub flat: Organisation,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Organisation {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default, deserialize_with = "opt_decimal")]
    pub balance: Option<Decimal>,
}

impl OrganisationResponse {
    /// The organisation's currency, and its balance when stated.
    pub fn account(&self) -> Option<(Currency, Option<Decimal>)> {
        let org = self.organisations.first().unwrap_or(&self.flat);
        let currency = org
            .currency
            .as_deref()?
            .trim()
            .to_ascii_uppercase()
            .parse()
            .ok()?;
        Some((currency, org.balance))
    }
}

// ---------------------------------------------------------------------------------------
// Orders
// ---------------------------------------------------------------------------------------

/// `POST /orders` body.
#[derive(Debug, Clone, Serialize)]
pub struct OrderRequest {
    /// `validate` (dry run) or `transaction`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub assign: bool,
    pub order: Vec<OrderRequestLine>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderRequestLine {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub item: String,
    pub quantity: u32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub iccids: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_reassign: Option<bool>,
}

/// Install details of one eSIM, in order lines and `/esims/assignments` (JSON).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EsimDetails {
    #[serde(default, deserialize_with = "opt_iccid")]
    pub iccid: Option<String>,
    #[serde(default)]
    pub matching_id: Option<String>,
    #[serde(default)]
    pub smdp_address: Option<String>,
    #[serde(default)]
    pub profile_status: Option<String>,
}

impl EsimDetails {
    /// A normalized profile, or `None` while the activation data is incomplete.
    pub fn to_profile(&self) -> Option<EsimProfile> {
        let iccid = self.iccid.clone()?;
        // The OpenAPI examples write the address as a URL (`http://smdp.example.com`); the
        // LPA string wants the bare host, as live answers give it.
        let smdp = self.smdp_address.as_deref()?.trim();
        let smdp = smdp
            .strip_prefix("https://")
            .or_else(|| smdp.strip_prefix("http://"))
            .unwrap_or(smdp)
            .trim_end_matches('/');
        let matching_id = self.matching_id.as_deref()?.trim();
        if smdp.is_empty() || matching_id.is_empty() {
            return None;
        }
        Some(EsimProfile {
            iccid,
            activation: lpa::build(smdp, matching_id),
            vendor_esim_ref: None,
            status: self
                .profile_status
                .as_deref()
                .and_then(profile_status)
                .unwrap_or(EsimStatus::Ready),
            expires_at: None,
        })
    }
}

/// `profileStatus` of an eSIM, see [`assumptions::profile_status`].
pub fn profile_status(s: &str) -> Option<EsimStatus> {
    assumptions::profile_status(s)
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderLine {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub item: Option<String>,
    #[serde(default, deserialize_with = "lenient_u32")]
    pub quantity: Option<u32>,
    #[serde(default, deserialize_with = "iccid_list")]
    pub iccids: Vec<String>,
    #[serde(default)]
    pub esims: Vec<EsimDetails>,
    #[serde(default, deserialize_with = "opt_decimal")]
    pub sub_total: Option<Decimal>,
    #[serde(default, deserialize_with = "opt_decimal")]
    pub price_per_unit: Option<Decimal>,
}

/// An order as `POST /orders`, `GET /orders/{ref}` and `GET /orders` describe it. The
/// create answer says `createdDate`, the read answers `createDate`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    #[serde(default)]
    pub order: Vec<OrderLine>,
    #[serde(default, deserialize_with = "opt_decimal")]
    pub total: Option<Decimal>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub status_message: Option<String>,
    #[serde(default)]
    pub order_reference: Option<String>,
    #[serde(default, alias = "createDate", deserialize_with = "opt_time")]
    pub created_date: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub assigned: bool,
    /// Only in `validate` answers.
    #[serde(default)]
    pub valid: Option<bool>,
}

impl Order {
    /// Every eSIM the order lines carry with complete activation data.
    pub fn profiles(&self) -> Vec<EsimProfile> {
        self.order
            .iter()
            .flat_map(|l| l.esims.iter())
            .filter_map(EsimDetails::to_profile)
            .collect()
    }

    /// ICCIDs the order names (`iccids` arrays or `esims[].iccid`).
    pub fn iccids(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .order
            .iter()
            .flat_map(|l| {
                l.iccids
                    .iter()
                    .cloned()
                    .chain(l.esims.iter().filter_map(|e| e.iccid.clone()))
            })
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// How many eSIMs the order should yield.
    pub fn expected_esims(&self) -> u32 {
        self.order.iter().map(|l| l.quantity.unwrap_or(0)).sum()
    }

    pub fn status(&self) -> VendorOrderStatus {
        assumptions::order_status(self.status.as_deref().unwrap_or(""))
    }

    /// What the order cost, as its answer states it (`total` in `currency`).
    pub fn charged(&self) -> Option<Money> {
        let currency = self.currency.as_deref()?.trim().parse().ok()?;
        Some(Money::new(self.total?, currency))
    }

    /// The normalized state, given the profiles found (in the order or by a follow-up call).
    pub fn to_state(&self, esims: Vec<EsimProfile>) -> OrderState {
        let complete = esims.len() as u32 >= self.expected_esims().max(1);
        let status = match self.status() {
            // A "completed" order whose eSIMs we could not read yet is still pending for us.
            VendorOrderStatus::Completed if !complete => VendorOrderStatus::Pending,
            s => s,
        };
        OrderState {
            charged: self.charged(),
            vendor_reference: self.order_reference.clone(),
            status,
            esims,
        }
    }
}

/// One page of a listing, every entry read.
#[derive(Debug, Clone, Default)]
pub struct Listing<T> {
    pub items: Vec<T>,
    /// `pageCount` of the wrapper form, when stated.
    pub page_count: Option<u32>,
}

impl<T> Listing<T> {
    /// Whether `page` (1-based), holding `n` entries, is the last: by `pageCount` when the
    /// vendor states it, else by a short page.
    pub fn is_last_page(&self, page: u32, n: u32, page_size: u32) -> bool {
        match self.page_count {
            Some(pages) => page >= pages || n == 0,
            None => n < page_size,
        }
    }
}

/// Reads a listing that comes either as a bare array or as `{"<key>": [...], "pageCount"…}`.
/// Every entry must parse: one entry we cannot read could be the very order we look for, so
/// the whole page is then unreadable (never silently shorter).
fn parse_listing<T: serde::de::DeserializeOwned>(
    v: Value,
    key: &str,
    empty_when_missing: bool,
) -> Result<Listing<T>, String> {
    let (items, page_count) = match v {
        Value::Array(items) => (items, None),
        Value::Object(mut obj) => {
            let page_count = obj
                .get("pageCount")
                .and_then(decimal_from_json)
                .and_then(whole_units)
                .and_then(|n| u32::try_from(n).ok());
            let items = match obj.remove(key) {
                Some(Value::Array(items)) => items,
                Some(Value::Null) | None if empty_when_missing => Vec::new(),
                Some(_) => return Err(format!("`{key}` is not an array")),
                None => return Err(format!("neither an array nor an object with `{key}`")),
            };
            (items, page_count)
        }
        _ => return Err("neither an array nor an object".into()),
    };
    let items = items
        .into_iter()
        .enumerate()
        .map(|(i, item)| serde_json::from_value(item).map_err(|e| format!("entry {i}: {e}")))
        .collect::<Result<Vec<T>, String>>()?;
    Ok(Listing { items, page_count })
}

/// `GET /orders`: the OpenAPI document shows a bare array, the live service wraps it as
/// `{"orders": [...], "pageCount": 1, "rows": 2}`; both are read. An entry without an
/// `orderReference`, or with a line lacking its bundle or quantity, cannot be matched or
/// excluded, so it makes the listing unreadable.
pub fn parse_order_list(v: Value) -> Result<Listing<Order>, String> {
    let list: Listing<Order> = parse_listing(v, "orders", false)?;
    for (i, o) in list.items.iter().enumerate() {
        if o.order_reference
            .as_deref()
            .is_none_or(|r| r.trim().is_empty())
        {
            return Err(format!("entry {i} has no orderReference"));
        }
        if o.order.is_empty()
            || o.order
                .iter()
                .any(|l| l.item.as_deref().is_none_or(str::is_empty) || l.quantity.is_none())
        {
            return Err(format!("entry {i} has a line without bundle or quantity"));
        }
    }
    Ok(list)
}

/// `GET /esims/assignments` with `Accept: application/json`. Whether several eSIMs come as an
/// array or wrapped is not documented: arrays, single objects and `{"esims"|"assignments":
/// [...]}` are all read. Every entry must parse.
pub fn parse_assignments(v: Value) -> Result<Vec<EsimDetails>, String> {
    match v {
        Value::Object(obj) if obj.contains_key("iccid") => {
            serde_json::from_value(Value::Object(obj))
                .map(|e| vec![e])
                .map_err(|e| e.to_string())
        }
        Value::Object(obj) if obj.contains_key("assignments") => {
            parse_listing(Value::Object(obj), "assignments", false).map(|l| l.items)
        }
        v => parse_listing(v, "esims", false).map(|l| l.items),
    }
}

// ---------------------------------------------------------------------------------------
// eSIMs
// ---------------------------------------------------------------------------------------

/// `PUT /esims` body: tags an eSIM with our reference.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateEsim {
    pub iccid: String,
    pub customer_ref: String,
}

/// `GET /esims` entries.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EsimListEntry {
    #[serde(default, deserialize_with = "opt_iccid")]
    pub iccid: Option<String>,
    #[serde(default)]
    pub customer_ref: Option<String>,
    #[serde(default)]
    pub last_action: Option<String>,
    #[serde(default)]
    pub action_date: Option<String>,
    #[serde(default)]
    pub physical: Option<bool>,
    #[serde(default)]
    pub assigned_date: Option<String>,
}

/// `GET /esims` is documented as `{"esims": [...]}`; a bare array is accepted too. Every
/// entry must parse.
pub fn parse_esim_list(v: Value) -> Result<Listing<EsimListEntry>, String> {
    parse_listing(v, "esims", true)
}

/// One assignment of a bundle to an eSIM (`GET /esims/{iccid}/bundles`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Assignment {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub call_type_group: Option<String>,
    /// Bytes.
    #[serde(default, deserialize_with = "opt_decimal")]
    pub initial_quantity: Option<Decimal>,
    /// Bytes.
    #[serde(default, deserialize_with = "opt_decimal")]
    pub remaining_quantity: Option<Decimal>,
    #[serde(default, deserialize_with = "opt_time")]
    pub start_time: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "opt_time")]
    pub end_time: Option<DateTime<Utc>>,
    #[serde(default)]
    pub bundle_state: Option<String>,
    #[serde(default, deserialize_with = "opt_time")]
    pub assignment_date_time: Option<DateTime<Utc>>,
    #[serde(default)]
    pub assignment_reference: Option<String>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub unlimited: bool,
}

/// Bundle assignment states (`/guides/bundle_status/`), lower-cased.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleState {
    Processing,
    Queued,
    Active,
    Depleted,
    Expired,
    Revoked,
    Lapsed,
    Other,
}

impl BundleState {
    pub fn parse(s: &str) -> BundleState {
        match s.trim().to_ascii_lowercase().as_str() {
            "processing" => BundleState::Processing,
            "queued" => BundleState::Queued,
            "active" => BundleState::Active,
            "depleted" => BundleState::Depleted,
            "expired" => BundleState::Expired,
            "revoked" => BundleState::Revoked,
            "lapsed" => BundleState::Lapsed,
            _ => BundleState::Other,
        }
    }

    /// Still on the eSIM (used, usable or about to be).
    fn is_live(self) -> bool {
        matches!(
            self,
            BundleState::Processing
                | BundleState::Queued
                | BundleState::Active
                | BundleState::Depleted
        )
    }

    fn esim_status(self) -> Option<EsimStatus> {
        match self {
            BundleState::Processing | BundleState::Queued => Some(EsimStatus::Ready),
            BundleState::Active => Some(EsimStatus::Active),
            BundleState::Depleted => Some(EsimStatus::Depleted),
            BundleState::Expired | BundleState::Lapsed => Some(EsimStatus::Expired),
            BundleState::Revoked => Some(EsimStatus::Cancelled),
            BundleState::Other => None,
        }
    }
}

impl Assignment {
    pub fn state(&self) -> BundleState {
        BundleState::parse(self.bundle_state.as_deref().unwrap_or(""))
    }

    /// Whether data was used or the validity clock started: no refund any more.
    pub fn started(&self) -> bool {
        matches!(self.state(), BundleState::Active | BundleState::Depleted)
            || matches!((self.initial_quantity, self.remaining_quantity), (Some(i), Some(r)) if r < i)
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct AppliedBundle {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub assignments: Vec<Assignment>,
}

/// `GET /esims/{iccid}/bundles`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct EsimBundles {
    #[serde(default)]
    pub bundles: Vec<AppliedBundle>,
}

impl EsimBundles {
    /// Usage across the bundles still on the eSIM (top-ups add up); when none is live, the
    /// most recent assignment says how it ended.
    pub fn to_usage(&self) -> Option<Usage> {
        let all: Vec<&Assignment> = self.bundles.iter().flat_map(|b| &b.assignments).collect();
        let live: Vec<&Assignment> = all
            .iter()
            .copied()
            .filter(|a| a.state().is_live())
            .collect();
        let considered = if live.is_empty() {
            let latest = all
                .iter()
                .copied()
                .max_by_key(|a| (a.assignment_date_time, a.start_time))?;
            vec![latest]
        } else {
            live
        };
        let unlimited = considered.iter().any(|a| a.unlimited);
        let total: u64 = considered
            .iter()
            .filter_map(|a| a.initial_quantity.and_then(whole_units))
            .sum();
        let remaining: u64 = considered
            .iter()
            .filter_map(|a| a.remaining_quantity.and_then(whole_units))
            .sum();
        Some(Usage {
            used_bytes: total.saturating_sub(remaining),
            total_bytes: (!unlimited).then_some(total),
            unlimited,
            status: best_status(&considered),
            activated_at: considered.iter().filter_map(|a| a.start_time).min(),
            expires_at: considered.iter().filter_map(|a| a.end_time).max(),
            updated_at: None,
        })
    }

    /// The latest live assignment of `bundle_name`.
    pub fn latest_assignment(&self, bundle_name: &str) -> Option<&Assignment> {
        self.bundles
            .iter()
            .filter(|b| b.name.as_deref() == Some(bundle_name))
            .flat_map(|b| &b.assignments)
            .filter(|a| a.state() != BundleState::Revoked)
            .max_by_key(|a| (a.assignment_date_time, a.start_time))
    }
}

/// The eSIM's state as its most advanced live bundle shows it.
fn best_status(assignments: &[&Assignment]) -> Option<EsimStatus> {
    let states: Vec<BundleState> = assignments.iter().map(|a| a.state()).collect();
    let pick = [
        BundleState::Active,
        BundleState::Queued,
        BundleState::Processing,
        BundleState::Depleted,
        BundleState::Expired,
        BundleState::Lapsed,
        BundleState::Revoked,
    ]
    .into_iter()
    .find(|s| states.contains(s))?;
    pick.esim_status()
}

/// `DELETE /esims/{iccid}/bundles/{name}` answer.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RevokeResponse {
    #[serde(default)]
    pub status: Option<String>,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::vendors::{GIB, MIB};
    use serde_json::json;

    fn gbp() -> Currency {
        "GBP".parse().unwrap()
    }

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    /// The documented catalogue entry shape with real values (seed + gen client fields).
    fn uk_bundle() -> Value {
        json!({
            "name": "esim_1GB_7D_GB_V2",
            "description": "eSIM, 1GB, 7 Days, United Kingdom, V2",
            "groups": ["Standard eSIM Bundles"],
            "countries": [{"name": "United Kingdom", "region": "Europe", "iso": "GB"}],
            "dataAmount": 1000,
            "duration": 7,
            "speed": ["4G", "5G"],
            "autostart": true,
            "unlimited": false,
            "roamingEnabled": [],
            "price": 1.36,
            "billingType": "FixedCost",
            "imageUrl": "https://example.invalid/uk.png"
        })
    }

    #[test]
    fn catalogue_bundle_becomes_an_offer_in_decimal_megabytes() {
        let raw = uk_bundle();
        let b: CatalogueBundle = serde_json::from_value(raw.clone()).unwrap();
        let o = b.to_offer(gbp(), raw.clone()).unwrap();
        assert_eq!(o.sku, "esim_1GB_7D_GB_V2");
        assert_eq!(o.name, "eSIM, 1GB, 7 Days, United Kingdom, V2");
        assert_eq!(o.countries, vec!["GB"]);
        assert_eq!(o.region_label, None);
        let data = o.data.unwrap();
        assert_eq!(data.kind, DataKind::Total);
        assert_eq!(data.bytes, Some(1_000_000_000));
        assert_eq!(data.marketed_bytes, Some(GIB));
        assert_eq!(o.validity_days, 7);
        assert_eq!(o.cost, Money::new(dec("1.36"), gbp()));
        assert!(o.active && o.supports_topup && !o.is_topup);
        assert_eq!(o.raw, raw);
    }

    #[test]
    fn regional_and_unlimited_bundles() {
        let raw = json!({
            "name": "esim_ULE_7D_REUP_V2",
            "description": "eSIM, Unlimited Essential, 7 Days, Europe+, V2",
            "countries": [
                {"name": "France", "region": "Europe", "iso": "fr"},
                {"name": "Germany", "region": "Europe", "iso": "DE"},
                {"name": "Nowhere", "region": "Europe", "iso": "ZZZ"}
            ],
            "dataAmount": -1, "duration": "7", "unlimited": true, "price": "23.5"
        });
        let b: CatalogueBundle = serde_json::from_value(raw.clone()).unwrap();
        let o = b.to_offer(gbp(), raw).unwrap();
        assert_eq!(o.countries, vec!["DE", "FR"]);
        assert_eq!(o.region_label.as_deref(), Some("Europe+"));
        assert_eq!(o.data, Some(DataAllowance::unlimited()));
        assert_eq!(o.validity_days, 7);
        assert_eq!(o.cost.amount, dec("23.5"));
    }

    #[test]
    fn region_label_keeps_commas_inside_the_coverage_name() {
        let b = CatalogueBundle {
            name: "x".into(),
            description: Some(
                "eSIM, 500MB, 7 Days, China Mainland, Hong Kong, Macao & Taiwan, V2".into(),
            ),
            ..Default::default()
        };
        let cs = vec!["CN".to_string(), "HK".to_string()];
        assert_eq!(
            region_label(&b, &cs).as_deref(),
            Some("China Mainland, Hong Kong, Macao & Taiwan")
        );
        // No usable description: the shared region of the countries.
        let b = CatalogueBundle {
            name: "x".into(),
            description: Some("Asia pack".into()),
            countries: vec![
                Country {
                    region: Some("Asia".into()),
                    iso: Some("JP".into()),
                    name: None,
                },
                Country {
                    region: Some("Asia".into()),
                    iso: Some("KR".into()),
                    name: None,
                },
            ],
            ..Default::default()
        };
        assert_eq!(
            region_label(&b, &["JP".into(), "KR".into()]).as_deref(),
            Some("Asia")
        );
    }

    #[test]
    fn small_bundles_are_marketed_in_megabytes() {
        let raw =
            json!({"name": "esim_500MB_7D_JP_V2", "dataAmount": 500, "duration": 7, "price": 0.99});
        let b: CatalogueBundle = serde_json::from_value(raw.clone()).unwrap();
        let d = b.to_offer(gbp(), raw).unwrap().data.unwrap();
        assert_eq!(d.bytes, Some(500_000_000));
        assert_eq!(d.marketed_bytes, Some(500 * MIB));
    }

    #[test]
    fn catalogue_pages_are_read_wrapped_or_bare() {
        let wrapped =
            json!({"bundles": [uk_bundle()], "pageCount": 3, "rows": 250, "pageSize": 100});
        let p = CataloguePage::parse(wrapped).unwrap();
        assert_eq!((p.bundles.len(), p.page_count), (1, Some(3)));
        let bare = json!([uk_bundle(), uk_bundle()]);
        let p = CataloguePage::parse(bare).unwrap();
        assert_eq!((p.bundles.len(), p.page_count), (2, None));
        assert!(CataloguePage::parse(json!("nope")).is_none());
    }

    #[test]
    fn organisation_gives_currency_and_decimal_balance() {
        let body = json!({"organisations": [{
            "name": "Acme Travel", "apiKey": "k", "taxLiable": "false", "addr1": "1 Road",
            "addr2": "", "city": "London", "country": "GB", "postcode": "E1", "callbackUrl": "",
            "notes": "", "groups": ["Standard eSIM Bundles"], "currency": "USD",
            "balance": 1299.3, "testCredit": 0, "testCreditExpiry": "", "businessType": "",
            "website": "", "productDescription": "", "users": []
        }]});
        let org: OrganisationResponse = serde_json::from_value(body).unwrap();
        assert_eq!(org.account(), Some((Currency::USD, Some(dec("1299.3")))));
        assert_eq!(OrganisationResponse::default().account(), None);
    }

    /// The captured `POST /orders` answer from the vendor file.
    pub(crate) const CAPTURED_ORDER: &str = r#"{"order":[{"esims":[{"iccid":"8943108165005471086","matchingId":"JQ-1Z351U-1U6E44B","smdpAddress":"rsp.truphone.com"}],
  "type":"bundle","item":"esim_1GB_7D_GB_V2","iccids":["8943108165005471086"],"quantity":1,"subTotal":1.36,"pricePerUnit":1.36}],
 "total":1.36,"currency":"USD","status":"completed","statusMessage":"Order completed: 1 eSIMs assigned",
 "orderReference":"de54db6c-5efc-46e4-986b-3eb7f175c5b3","createdDate":"2024-05-02T10:57:30.858475018Z","assigned":true}"#;

    #[test]
    fn captured_order_response_is_complete_with_its_esim() {
        let o: Order = serde_json::from_str(CAPTURED_ORDER).unwrap();
        assert_eq!(o.total, Some(dec("1.36")));
        assert_eq!(o.order[0].price_per_unit, Some(dec("1.36")));
        assert_eq!(o.order[0].item.as_deref(), Some("esim_1GB_7D_GB_V2"));
        assert_eq!(
            o.created_date,
            Some(parse_time("2024-05-02T10:57:30.858475018Z").unwrap())
        );
        let state = o.to_state(o.profiles());
        assert_eq!(
            state.vendor_reference.as_deref(),
            Some("de54db6c-5efc-46e4-986b-3eb7f175c5b3")
        );
        assert_eq!(state.status, VendorOrderStatus::Completed);
        assert_eq!(state.esims.len(), 1);
        let e = &state.esims[0];
        assert_eq!(e.iccid, "8943108165005471086");
        assert_eq!(e.activation.lpa, "LPA:1$rsp.truphone.com$JQ-1Z351U-1U6E44B");
        assert_eq!(e.status, EsimStatus::Ready);
        assert_eq!(o.iccids(), vec!["8943108165005471086"]);
    }

    #[test]
    fn order_detail_without_esims_is_pending_until_they_are_read() {
        // GET /orders/{ref} as the OpenAPI text shows it: no eSIM data, `createDate`.
        let body = json!({
            "order": [{"type": "bundle", "item": "esim_1GB_7D_GB_V2", "quantity": 2, "subTotal": 2.72, "pricePerUnit": 1.36}],
            "total": 2.72, "currency": "GBP", "status": "completed",
            "statusMessage": "Order completed: 2 eSIMs assigned",
            "orderReference": "ref-1", "createDate": "2024-05-02T10:57:30Z"
        });
        let o: Order = serde_json::from_value(body).unwrap();
        assert_eq!(o.expected_esims(), 2);
        assert!(o.created_date.is_some());
        assert_eq!(o.to_state(vec![]).status, VendorOrderStatus::Pending);
    }

    #[test]
    fn order_list_is_read_bare_or_wrapped() {
        let one = json!({"order": [{"type": "bundle", "item": "b", "quantity": 1, "subTotal": 1, "pricePerUnit": 1, "invoiceLink": "x"}],
            "total": 1, "currency": "GBP", "status": "completed", "statusMessage": "", "orderReference": "r1", "createDate": "2024-01-01T00:00:00Z"});
        assert_eq!(
            parse_order_list(json!([one.clone(), one.clone()]))
                .unwrap()
                .items
                .len(),
            2
        );
        assert_eq!(
            parse_order_list(json!({"orders": [one]}))
                .unwrap()
                .items
                .len(),
            1
        );
        assert!(parse_order_list(json!({"x": 1})).is_err());
    }

    /// The wrapped shape the live service answers (numbers as numbers, `createdDate`).
    pub const WRAPPED_ORDER_LIST: &str = r#"{"orders":[{"order":[{"type":"bundle","item":"esim_1GB_7D_GB_V2","quantity":1,"subTotal":7.0,"pricePerUnit":7.0,"esims":[{"iccid":"8944538532008160222","matchingId":"M-1","smdpAddress":"rsp.example"}],"iccids":["8944538532008160222"]}],"total":7.0,"currency":"USD","status":"completed","orderReference":"0b9e3c3a-6f2b-4c1e-9c57-1d3f1b6a2e10","createdDate":"2026-12-01T07:48:06.232Z","assigned":true}],"pageCount":1,"rows":2}"#;

    #[test]
    fn wrapped_order_list_with_page_count_parses() {
        let list = parse_order_list(serde_json::from_str(WRAPPED_ORDER_LIST).unwrap()).unwrap();
        assert_eq!(list.page_count, Some(1));
        assert!(list.is_last_page(1, 1, 50));
        let o = &list.items[0];
        assert_eq!(o.iccids(), vec!["8944538532008160222".to_string()]);
        assert_eq!(o.total, Some(Decimal::new(70, 1)));
        assert_eq!(
            o.created_date.unwrap(),
            parse_time("2026-12-01T07:48:06.232Z").unwrap()
        );
        assert!(o.assigned);
        // The same with numbers as strings and `createDate`.
        let strings = WRAPPED_ORDER_LIST
            .replace(r#""quantity":1"#, r#""quantity":"1""#)
            .replace(r#""total":7.0"#, r#""total":"7.0""#)
            .replace("createdDate", "createDate");
        let list = parse_order_list(serde_json::from_str(&strings).unwrap()).unwrap();
        assert_eq!(list.items[0].order[0].quantity, Some(1));
        assert_eq!(list.items[0].total, Some(Decimal::new(70, 1)));
        assert!(list.items[0].created_date.is_some());
    }

    #[test]
    fn one_unreadable_entry_makes_the_whole_listing_unreadable() {
        let good = json!({"order": [{"type": "bundle", "item": "b", "quantity": 1}], "orderReference": "r1"});
        for bad in [
            json!({"order": "not a list", "orderReference": "r2"}),
            json!({"order": [{"type": "bundle", "item": "b", "quantity": 1}]}),
            json!({"order": [{"type": "bundle", "quantity": 1}], "orderReference": "r3"}),
            json!({"order": [{"type": "bundle", "item": "b", "quantity": 1.5}], "orderReference": "r4"}),
            json!("garbage"),
        ] {
            assert!(
                parse_order_list(json!([good.clone(), bad.clone()])).is_err(),
                "{bad}"
            );
        }
        assert!(
            parse_esim_list(
                json!({"esims": [{"iccid": "8944538532008160222"}, {"iccid": {"x": 1}}]})
            )
            .is_err()
        );
        assert!(
            parse_assignments(json!([{"iccid": "8944538532008160222"}, {"matchingId": 5}]))
                .is_err()
        );
    }

    /// Money values that an f64 round trip would change (or print differently) arrive exact.
    #[test]
    fn money_is_read_exactly_never_through_f64() {
        let body = r#"{"order":[{"type":"bundle","item":"b","quantity":3,"subTotal":13.05,"pricePerUnit":4.35}],"total":12.345,"currency":"USD","status":"completed","orderReference":"r"}"#;
        let o: Order = serde_json::from_str(body).unwrap();
        assert_eq!(o.total.unwrap().to_string(), "12.345");
        assert_eq!(o.order[0].price_per_unit.unwrap().to_string(), "4.35");
        assert_eq!(o.order[0].sub_total.unwrap().to_string(), "13.05");
        // 0.1 + 0.2 style sums stay exact, and 17+ significant digits survive.
        let b: CatalogueBundle =
            serde_json::from_str(r#"{"name":"x","price":0.07,"dataAmount":1000,"duration":7}"#)
                .unwrap();
        assert_eq!(b.price.unwrap() * Decimal::from(3), "0.21".parse().unwrap());
        let v: Value = serde_json::from_str(r#"{"balance": 1234567890.123456789}"#).unwrap();
        assert_eq!(
            decimal_from_json(&v["balance"]).unwrap().to_string(),
            "1234567890.123456789"
        );
    }

    #[test]
    fn assignments_are_read_as_array_object_or_wrapper() {
        let e = json!({"iccid": "8944538532008160222", "matchingId": "M-1", "smdpAddress": "rsp.example", "profileStatus": "Released"});
        for body in [json!([e.clone()]), e.clone(), json!({"esims": [e.clone()]})] {
            let list = parse_assignments(body).unwrap();
            let p = list[0].to_profile().unwrap();
            assert_eq!(p.iccid, "8944538532008160222");
            assert_eq!(p.activation.matching_id, "M-1");
        }
    }

    #[test]
    fn esim_list_reads_customer_refs() {
        let body = json!({"esims": [{"iccid": "8944538532008160222", "customerRef": "ord_1", "lastAction": "Bundle Applied",
            "actionDate": "2024-01-01", "physical": false, "assignedDate": "2024-01-01"}]});
        let l = parse_esim_list(body).unwrap();
        assert_eq!(l.items[0].customer_ref.as_deref(), Some("ord_1"));
    }

    #[test]
    fn bundle_usage_is_in_bytes_and_adds_up_live_assignments() {
        let body = json!({"bundles": [
            {"name": "esim_1GB_7D_GB_V2", "assignments": [{
                "id": "1", "callTypeGroup": "data", "initialQuantity": 1000000000, "remainingQuantity": 400000000,
                "startTime": "2024-01-01T00:00:00Z", "endTime": "2024-01-08T00:00:00Z", "bundleState": "Active",
                "assignmentDateTime": "2023-12-31T00:00:00Z", "assignmentReference": "r1", "unlimited": false}]},
            {"name": "esim_1GB_7D_GB_V2", "assignments": [{
                "id": "2", "callTypeGroup": "data", "initialQuantity": 1000000000, "remainingQuantity": 1000000000,
                "startTime": "", "endTime": null, "bundleState": "Queued",
                "assignmentDateTime": "2024-01-02T00:00:00Z", "assignmentReference": "r2", "unlimited": false}]},
            {"name": "old", "assignments": [{"id": "0", "initialQuantity": 5, "remainingQuantity": 0, "bundleState": "Expired"}]}
        ]});
        let b: EsimBundles = serde_json::from_value(body).unwrap();
        let u = b.to_usage().unwrap();
        assert_eq!(u.total_bytes, Some(2_000_000_000));
        assert_eq!(u.used_bytes, 600_000_000);
        assert!(!u.unlimited);
        assert_eq!(u.status, Some(EsimStatus::Active));
        assert_eq!(u.activated_at, parse_time("2024-01-01T00:00:00Z"));
        assert_eq!(u.expires_at, parse_time("2024-01-08T00:00:00Z"));
        let latest = b.latest_assignment("esim_1GB_7D_GB_V2").unwrap();
        assert_eq!(latest.id.as_deref(), Some("2"));
        assert!(!latest.started());
        assert!(b.bundles[0].assignments[0].started());
    }

    #[test]
    fn ended_esim_reports_its_last_assignment() {
        let body = json!({"bundles": [{"name": "b", "assignments": [
            {"id": "1", "initialQuantity": 1000, "remainingQuantity": 0, "bundleState": "Expired",
             "assignmentDateTime": "2024-01-01T00:00:00Z"}]}]});
        let u = serde_json::from_value::<EsimBundles>(body)
            .unwrap()
            .to_usage()
            .unwrap();
        assert_eq!((u.used_bytes, u.status), (1000, Some(EsimStatus::Expired)));
        assert!(EsimBundles::default().to_usage().is_none());
    }

    #[test]
    fn lenient_scalars() {
        assert_eq!(decimal_from_json(&json!(1.36)), Some(dec("1.36")));
        assert_eq!(decimal_from_json(&json!("0.10")), Some(dec("0.10")));
        assert_eq!(decimal_from_json(&json!(1e-2)), Some(dec("0.01")));
        assert_eq!(decimal_from_json(&json!(true)), None);
        let e: EsimDetails =
            serde_json::from_value(json!({"iccid": 8944538532008160222u64})).unwrap();
        assert_eq!(e.iccid.as_deref(), Some("8944538532008160222"));
        // A 20-digit ICCID as a bare number keeps every digit (arbitrary precision)…
        let e: EsimDetails = serde_json::from_str(r#"{"iccid": 89445385320081602227}"#).unwrap();
        assert_eq!(e.iccid.as_deref(), Some("89445385320081602227"));
        // …and one that is not a whole number is refused rather than guessed.
        assert!(serde_json::from_str::<EsimDetails>(r#"{"iccid": 8.9e19}"#).is_err());
        assert_eq!(whole_units(dec("1000000000.9")), Some(1_000_000_000));
        assert_eq!(whole_units(dec("-1")), None);
    }

    #[test]
    fn order_request_serializes_as_documented() {
        let r = OrderRequest {
            kind: "transaction",
            assign: true,
            order: vec![OrderRequestLine {
                kind: "bundle",
                item: "esim_1GB_7D_GB_V2".into(),
                quantity: 1,
                iccids: vec![],
                allow_reassign: None,
            }],
        };
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"type": "transaction", "assign": true, "order": [{"type": "bundle", "item": "esim_1GB_7D_GB_V2", "quantity": 1}]})
        );
    }
}
