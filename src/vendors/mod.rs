//! The vendor layer: one trait that hides five wholesale APIs, and the normalized types that
//! cross it. Nothing here knows about HTTP handlers or the database.
//!
//! Everything leaving an adapter is normalized: bytes, days, [`Money`] with an ISO currency,
//! UTC times, ISO 3166 alpha-2 countries (upper case).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use crate::domain::data::{DataAllowance, DataKind, GIB, KIB, MIB};
use crate::domain::money::Money;

pub mod credentials;
pub mod error;
pub mod http_client;
pub mod iccid;
pub mod lpa;
pub mod registry;
pub mod sandbox;
pub mod support;
pub mod topup_cache;

pub mod esimaccess;
pub mod esimfx;
pub mod esimgo;
pub mod microesim;
pub mod multiverse;

pub use error::{RejectKind, VendorError};

/// The one list of vendors ([`vendor_table!`](crate::domain::vendor::vendor_table)) and
/// their ids live in `domain::vendor`; the layer that knows each vendor derives the rest.
pub(crate) use crate::domain::vendor::vendor_table;
pub use crate::domain::vendor::{UnknownVendor, VendorId};

/// The vendor-layer columns of [`vendor_table!`]: what each vendor's folder answers.
macro_rules! define_vendor_methods {
    ($($id:ident $module:ident $name:literal $display:literal $adapter:ident $sim:ident $creds:ident ($topups:expr) ($seed_currency:literal $seed_level:literal);)*) => {
        impl VendorId {
            /// Whether the vendor documents an operation that adds data to an existing eSIM.
            /// Only then does the gateway sell top-ups on its eSIMs: a guessed top-up call
            /// could take money for nothing (MicroEsim has none; Multiverse's is not named by
            /// any document).
            pub fn topups_documented(self) -> bool {
                match self {
                    $(VendorId::$id => $topups,)*
                }
            }

            /// What the vendor expects back from an accepted callback.
            pub fn callback_acknowledgement(self) -> serde_json::Value {
                match self {
                    $(VendorId::$id => $module::webhook::acknowledgement(),)*
                }
            }

            /// Vendor-specific headers worth keeping with a stored callback (lower case;
            /// never an authentication secret).
            pub fn kept_callback_headers(self) -> &'static [&'static str] {
                match self {
                    $(VendorId::$id => $module::webhook::KEPT_HEADERS,)*
                }
            }
        }
    };
}

vendor_table!(define_vendor_methods);

/// The module column of the table, for the test that holds names to module names.
#[cfg(test)]
macro_rules! table_modules {
    ($($id:ident $module:ident $name:literal $display:literal $adapter:ident $sim:ident $creds:ident ($topups:expr) ($seed_currency:literal $seed_level:literal);)*) => {
        [$((VendorId::$id, stringify!($module))),*]
    };
}

/// Callback headers as the vendor layer sees them: lower-cased names to values (the first
/// value of a repeated header; values that are not visible ASCII are left out, as no vendor
/// puts anything it signs or authenticates with in such a value). Built by the HTTP layer,
/// so adapters need no HTTP types.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallbackHeaders(std::collections::BTreeMap<String, String>);

impl CallbackHeaders {
    pub fn new() -> Self {
        CallbackHeaders::default()
    }

    /// Adds a header unless one of that name is already there (the first value wins).
    pub fn insert(&mut self, name: &str, value: &str) {
        self.0
            .entry(name.to_ascii_lowercase())
            .or_insert_with(|| value.to_string());
    }

    /// The same headers with one more (builder style, for tests and stored events).
    pub fn with(mut self, name: &str, value: &str) -> Self {
        self.insert(name, value);
        self
    }

    /// The value of `name`, matched case-insensitively.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(&name.to_ascii_lowercase()).map(String::as_str)
    }
}

impl<'a> FromIterator<(&'a str, &'a str)> for CallbackHeaders {
    fn from_iter<I: IntoIterator<Item = (&'a str, &'a str)>>(iter: I) -> Self {
        let mut h = CallbackHeaders::new();
        for (name, value) in iter {
            h.insert(name, value);
        }
        h
    }
}

/// One radio network an offer can use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Network {
    /// ISO 3166 alpha-2.
    pub country: String,
    pub operator: String,
    /// "3G", "4G", "5G", "LTE" as the vendor names them.
    pub generations: Vec<String>,
}

/// Why an offer must not be sold without special handling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OfferFlag {
    /// The traveller must pass identity verification (eKYC) before the eSIM works.
    EkycRequired,
    /// The validity clock starts at purchase, not at first use.
    ActivatesOnPurchase,
}

/// One vendor product, normalized. The catalogue groups offers into plans.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Offer {
    pub vendor: VendorId,
    /// The vendor's product id, exactly as its order call wants it.
    pub sku: String,
    pub name: String,
    /// ISO 3166 alpha-2, upper case, sorted, no duplicates.
    pub countries: Vec<String>,
    /// The vendor's own label for a multi-country product ("Europe", "Asia 12"), if any.
    pub region_label: Option<String>,
    /// `None` when the vendor's description could not be understood: such an offer is kept
    /// for admins but never sold.
    pub data: Option<DataAllowance>,
    pub validity_days: u32,
    /// Wholesale cost of one unit in the vendor's currency.
    pub cost: Money,
    pub networks: Vec<Network>,
    pub supports_topup: bool,
    /// A top-up package: only sold onto an existing eSIM of the same vendor.
    pub is_topup: bool,
    /// The vendor says the product can be ordered now.
    pub active: bool,
    pub flags: Vec<OfferFlag>,
    /// The vendor's own JSON for this product, kept for admins and re-normalization.
    pub raw: serde_json::Value,
}

/// A new-eSIM purchase.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaceOrder {
    /// Our order id (`ord_…`): the vendor's transaction id / idempotency key / reference.
    pub order_id: String,
    pub sku: String,
    pub quantity: u32,
    /// The unit cost the catalogue saw; vendors that can guard against price changes get it.
    pub expected_unit_cost: Option<Money>,
    /// How far above `expected_unit_cost` (percent) an adapter that checks the price before
    /// buying (eSIM Go's `type: validate`) still buys; above it refuses `PriceChanged`.
    pub price_tolerance_percent: rust_decimal::Decimal,
    /// When the order was first attempted, so reconciliation can search a time window.
    pub placed_at: DateTime<Utc>,
}

/// Where an order lives at a vendor, for polling, reconciliation and cancellation.
///
/// Built by the ordering layer from the attempt row in Postgres (never from process memory),
/// so a restarted or different replica reconciles exactly like the one that sent the order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VendorOrderRef {
    /// Our order id, as sent to the vendor (transaction id, reference, custom order no).
    pub order_id: String,
    /// The vendor's own order number, once known (`orderNo`, `topup_id`, order reference…).
    pub vendor_reference: Option<String>,
    /// When the attempt was sent.
    pub placed_at: DateTime<Utc>,
    /// The vendor SKU the attempt sent; `None` when unknown, and then an adapter that must
    /// match a listing on it cannot pick a candidate (the outcome stays unknown).
    pub sku: Option<String>,
    /// How many eSIMs the attempt asked for.
    pub quantity: u32,
    /// ICCIDs of this vendor that already belong to other orders of ours: a vendor order
    /// holding one of them is not the one this attempt created.
    pub owned_iccids: Vec<String>,
}

impl VendorOrderRef {
    /// A reference by our order id only (no attempt details).
    pub fn new(order_id: impl Into<String>, placed_at: DateTime<Utc>) -> Self {
        VendorOrderRef {
            order_id: order_id.into(),
            placed_at,
            quantity: 1,
            ..VendorOrderRef::default()
        }
    }

    /// The same reference with the vendor's order number.
    pub fn with_vendor_reference(mut self, reference: Option<String>) -> Self {
        self.vendor_reference = reference;
        self
    }

    /// The same reference with what the attempt sent.
    pub fn with_attempt(mut self, sku: impl Into<String>, quantity: u32) -> Self {
        self.sku = Some(sku.into());
        self.quantity = quantity;
        self
    }
}

/// One eSIM at a vendor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EsimRef {
    pub iccid: String,
    /// The vendor's per-eSIM key where it has one (`esimTranNo`, `device_id`, order id).
    pub vendor_esim_ref: Option<String>,
    /// The vendor order the eSIM came from.
    pub vendor_reference: Option<String>,
}

/// A top-up onto an existing eSIM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopUp {
    /// Our order id for the top-up: the vendor's transaction id / idempotency key.
    pub order_id: String,
    pub esim: EsimRef,
    pub sku: String,
    pub placed_at: DateTime<Utc>,
}

/// The lifecycle of one eSIM as the vendor reports it, mapped onto API.md's eSIM statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EsimStatus {
    /// Issued, not installed.
    Ready,
    Installed,
    Active,
    Depleted,
    Expired,
    Cancelled,
}

/// What a traveller needs to install an eSIM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activation {
    /// `LPA:1$<smdp>$<matching id>`.
    pub lpa: String,
    pub smdp_address: String,
    pub matching_id: String,
}

/// One issued eSIM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EsimProfile {
    pub iccid: String,
    pub activation: Activation,
    pub vendor_esim_ref: Option<String>,
    pub status: EsimStatus,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Where a vendor order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VendorOrderStatus {
    /// Accepted; profiles not allocated yet (poll again or wait for the callback).
    Pending,
    /// Every eSIM of the order is issued.
    Completed,
    /// The vendor gave up on the order: nothing will be delivered.
    Failed,
    Cancelled,
}

/// The answer to placing, topping up, fetching or reconciling an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderState {
    pub vendor_reference: Option<String>,
    pub status: VendorOrderStatus,
    /// Issued eSIMs; complete when `status` is `Completed`.
    pub esims: Vec<EsimProfile>,
    /// What the vendor says it charged for the whole order, when its answer says.
    pub charged: Option<Money>,
}

/// What `place_order`/`topup` return: the vendor has accepted the order.
pub type Placed = OrderState;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelOutcome {
    /// Cancelled and the wholesale cost returned to our balance (amount when the vendor says).
    Refunded { amount: Option<Money> },
    /// Cancelled (service stopped) without a refund.
    CancelledWithoutRefund,
}

/// Data usage of one eSIM, in the vendor's exact bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    pub used_bytes: u64,
    /// `None` when unlimited.
    pub total_bytes: Option<u64>,
    pub unlimited: bool,
    pub status: Option<EsimStatus>,
    pub activated_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    /// When the vendor last measured (some vendors lag by hours).
    pub updated_at: Option<DateTime<Utc>>,
}

/// How far a callback can be believed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallbackTrust {
    /// Authenticated by a signature or shared secret: may be applied as is.
    Verified,
    /// The vendor signs nothing: a hint to re-read the order/eSIM from the vendor's API.
    Hint,
}

/// What a callback says happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum VendorEventKind {
    /// The order's profiles are allocated (the callback may carry them in `profile`).
    OrderReady,
    /// The order failed at the vendor.
    OrderFailed,
    EsimStatus {
        status: EsimStatus,
    },
    /// Data running low or used up.
    Usage {
        used_bytes: Option<u64>,
        total_bytes: Option<u64>,
        remaining_bytes: Option<u64>,
        /// Percentage used that crossed a threshold, when the vendor says.
        threshold_percent: Option<u8>,
    },
    /// Validity about to end.
    ValidityEnding {
        expires_at: Option<DateTime<Utc>>,
    },
    /// Our prepaid balance at the vendor is low or exhausted (an account alert, not about
    /// one eSIM): operators must top it up or orders will be refused.
    LowBalance {
        /// True when the vendor says the balance no longer covers orders.
        exhausted: bool,
    },
    /// A vendor's connectivity test: acknowledge, nothing to apply.
    Ping,
    /// Understood as valid but of no interest to the gateway.
    Other {
        name: String,
    },
}

/// One normalized event parsed from a vendor callback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VendorEvent {
    /// Derived from the event's own identity (vendor notification id, or a hash of its
    /// content), so a duplicate delivery yields the same key.
    pub dedupe_key: String,
    pub kind: VendorEventKind,
    /// Our order id when the vendor echoes it (transaction id, custom order no…).
    pub order_id: Option<String>,
    pub vendor_reference: Option<String>,
    pub iccid: Option<String>,
    pub vendor_esim_ref: Option<String>,
    /// The vendor product the event is about, when the callback names it (an unsigned
    /// callback is matched against the SKU our attempt sent).
    #[serde(default)]
    pub sku: Option<String>,
    /// Activation data when the callback carries it.
    pub profile: Option<EsimProfile>,
    pub occurred_at: Option<DateTime<Utc>>,
}

/// One wholesale vendor. Implementations own auth, units and quirks; see the module docs for
/// what "normalized" means.
#[async_trait]
pub trait Vendor: Send + Sync {
    fn id(&self) -> VendorId;

    /// Whether re-sending `place_order` with the same order id is safe (the vendor
    /// deduplicates on it). When true, an unknown outcome is resolved by retrying the same
    /// request; otherwise only by `fetch_order`.
    fn place_is_idempotent(&self) -> bool;

    /// The whole catalogue (pagination handled inside), top-up packages included.
    async fn list_offers(&self) -> Result<Vec<Offer>, VendorError>;

    /// Buys a new eSIM. Errors: `Rejected`/`Unreachable` mean nothing was bought.
    async fn place_order(&self, req: &PlaceOrder) -> Result<Placed, VendorError>;

    /// Polls an order (and reconciles one whose placement outcome is unknown): finds it by
    /// the vendor reference or, without one, by our order id. `Rejected { kind: NotFound }`
    /// means the vendor has no such order.
    async fn fetch_order(&self, r: &VendorOrderRef) -> Result<OrderState, VendorError>;

    /// Top-up packages that fit this eSIM; vendors without such a call answer `Unsupported`
    /// and the catalogue filters its own top-up offers instead.
    async fn topup_offers(&self, _esim: &EsimRef) -> Result<Vec<Offer>, VendorError> {
        Err(VendorError::Unsupported)
    }

    /// Whether the vendor would accept `sku` as a top-up of this eSIM, for vendors that
    /// answer that per product (eSIM Go's compatibility check); others answer `Unsupported`
    /// and the gateway applies the vendor's documented rules alone.
    async fn topup_compatible(&self, _esim: &EsimRef, _sku: &str) -> Result<bool, VendorError> {
        Err(VendorError::Unsupported)
    }

    async fn topup(&self, req: &TopUp) -> Result<Placed, VendorError>;

    /// Cancels an unused order. A vendor refusal because the eSIM was used is
    /// `Rejected { kind: NotAllowed }`.
    async fn cancel(
        &self,
        r: &VendorOrderRef,
        esims: &[EsimRef],
    ) -> Result<CancelOutcome, VendorError>;

    async fn usage(&self, esim: &EsimRef) -> Result<Usage, VendorError>;

    /// Prepaid balance in the vendor's currency.
    async fn balance(&self) -> Result<Money, VendorError>;

    /// Authenticates a callback from its headers and raw bytes, before anything is parsed.
    /// The sender-IP allowlist is applied by the HTTP layer, not here.
    fn verify_callback(
        &self,
        headers: &CallbackHeaders,
        raw_body: &[u8],
    ) -> Result<CallbackTrust, VendorError>;

    /// Whether an unsigned (hint) order-ready event may complete the order `placed` as it is,
    /// because it matches what we placed there in every detail; `Ok` carries the profile to
    /// apply, `Err` why not. Vendors whose hints are re-read from their API instead keep the
    /// default, which never matches.
    fn match_hint(
        &self,
        _ev: &VendorEvent,
        _placed: &VendorOrderRef,
    ) -> Result<EsimProfile, String> {
        Err("this vendor's callbacks are confirmed through its API, not matched".into())
    }

    /// Parses a verified callback. `InvalidCallback` when the body cannot be understood.
    fn parse_callback(
        &self,
        headers: &CallbackHeaders,
        raw_body: &[u8],
    ) -> Result<Vec<VendorEvent>, VendorError>;
}

/// Per-adapter settings that are not credentials.
#[derive(Debug, Clone)]
pub struct AdapterOptions {
    /// Timeout of one HTTP call to the vendor.
    pub timeout: std::time::Duration,
}

impl Default for AdapterOptions {
    fn default() -> Self {
        AdapterOptions {
            timeout: std::time::Duration::from_secs(20),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every adapter reads money from `serde_json` numbers; this fails the build's tests if
    /// `arbitrary_precision` is ever switched off (a number would then be an f64 and lose
    /// digits: `1234567890.1234567891` would read as `1234567890.1234567`).
    #[test]
    fn json_numbers_keep_their_digits() {
        let text = "1234567890.1234567891";
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(v.to_string(), text);
        let d: rust_decimal::Decimal = serde_json::from_str(text).unwrap();
        assert_eq!(d.to_string(), text);
        let d: rust_decimal::Decimal = serde_json::from_value(v).unwrap();
        assert_eq!(d.to_string(), text);
    }

    #[test]
    fn vendor_ids_round_trip() {
        for v in VendorId::ALL {
            assert_eq!(v.as_str().parse::<VendorId>().unwrap(), v);
            assert_eq!(
                serde_json::to_value(v).unwrap(),
                serde_json::json!(v.as_str())
            );
        }
        assert!("acme".parse::<VendorId>().is_err());
    }

    /// The vendor table's name column is what routes, the database and metrics use; the
    /// OpenAPI document derives the same names from the variants, and the folder is named
    /// after it, so all three must agree.
    #[test]
    fn vendor_names_are_the_lower_cased_variants() {
        for v in VendorId::ALL {
            assert_eq!(v.as_str(), format!("{v:?}").to_lowercase());
        }
        for (v, module) in vendor_table!(table_modules) {
            assert_eq!(v.as_str(), module, "the folder of {v:?} is its name");
        }
    }
}
