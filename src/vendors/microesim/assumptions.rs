//! Everything this adapter (and its simulator) relies on that MicroEsim does not document.
//! Correct these first when the vendor answers the questions in `README.md`.
//!
//! Guesses the code is built around rather than switched by (correcting one means changing
//! the code named):
//!
//! - **ICCID source** [assumption, from TSIM]: ICCIDs come only from `operator_iccids[]`
//!   (the push: a scalar `operator_iccid`), and only when Luhn-valid. The `device_ids[]`
//!   the collection shows are 16 digits (the docs call them "ICCID No", but they are not
//!   ICCIDs) and are kept as the per-eSIM key, never as an ICCID: without a valid ICCID the
//!   order stays provisioning with a note saying so. Read in `wire.rs` (`topupDetail`) and
//!   `webhook.rs` (the push); the simulator sends the same fields.
//! - **Push URL** [assumption]: the push URL is configured on the account by the vendor
//!   (the request field that would carry it is not documented), so the adapter sends none;
//!   the acknowledgement it expects is `webhook::acknowledgement` (any 2xx may be enough).

use std::time::Duration;

use crate::vendors::RejectKind;

/// [assumption] The documented path family; one client also uses `/microesim/v1`, a
/// separate catalogue (see `README.md`).
pub const PATH_PREFIX: &str = "/allesim/v1";

/// [assumption, from TSIM] Reconciliation by our order id:
/// `POST getOrderInfoByCustomOrderNo {custom_order_no}` answers the `topupDetail` shape.
pub const LOOKUP_ENDPOINT: &str = "getOrderInfoByCustomOrderNo";

/// [assumption] A lookup's "order not found" is believed only this long after our
/// timeout: before that the order may still be in flight at the vendor.
pub const SETTLE_MARGIN: Duration = Duration::from_secs(60);

/// [assumption] `terminate` takes form `{topup_id, device_id}` (one client) and refunds
/// nothing (refund rules are unknown).
pub const TERMINATE_REFUNDS: bool = false;

/// [assumption] No recharge endpoint exists on `/allesim/v1` (not in the collection).
pub const SUPPORTS_TOPUP: bool = false;

/// [assumption] `custom_order_no` is not deduplicated by the vendor, so re-sending an
/// order may buy twice; unknown outcomes are resolved only by lookup.
pub const PLACE_IS_IDEMPOTENT: bool = false;

/// [assumption] How far the vendor lets MICROESIM-TIMESTAMP drift from its clock; it also
/// refuses a nonce seen within this window (replay protection is undocumented).
pub const SIGNATURE_WINDOW: Duration = Duration::from_secs(300);

/// [assumption] MicroEsim publishes no error codes. These follow TSIM where known (1006 =
/// order still processing) and are otherwise ours; every refusal uses HTTP 200 with
/// `{code, msg}`. The simulator answers with exactly these.
pub mod codes {
    /// Documented: success.
    pub const SUCCESS: i64 = 1;
    pub const INVALID_PARAMETER: i64 = 1001;
    pub const UNKNOWN_ACCOUNT: i64 = 1002;
    pub const INVALID_SIGN: i64 = 1003;
    pub const TIMESTAMP_EXPIRED: i64 = 1004;
    pub const NONCE_REUSED: i64 = 1005;
    /// TSIM's `topupDetail` "not ready yet".
    pub const ORDER_PROCESSING: i64 = 1006;
    pub const DATAPLAN_NOT_FOUND: i64 = 1007;
    /// Plan sold out / temporarily unavailable.
    pub const DATAPLAN_UNAVAILABLE: i64 = 1008;
    pub const INSUFFICIENT_BALANCE: i64 = 1009;
    pub const ORDER_NOT_FOUND: i64 = 1010;
    /// Terminate refused: the eSIM is installed or in use.
    pub const TERMINATE_NOT_ALLOWED: i64 = 1011;
    pub const TOO_MANY_REQUESTS: i64 = 1012;
    pub const SYSTEM_ERROR: i64 = 9999;
}

/// The one table from vendor code to rejection class. `Other` (a code not listed here,
/// 9999 included) is unknown on money operations and lookups, see `interpret`.
pub fn classify(code: i64) -> RejectKind {
    match code {
        codes::INVALID_PARAMETER => RejectKind::InvalidRequest,
        codes::UNKNOWN_ACCOUNT
        | codes::INVALID_SIGN
        | codes::TIMESTAMP_EXPIRED
        | codes::NONCE_REUSED => RejectKind::Auth,
        codes::DATAPLAN_NOT_FOUND | codes::ORDER_NOT_FOUND => RejectKind::NotFound,
        codes::DATAPLAN_UNAVAILABLE => RejectKind::SoldOut,
        codes::INSUFFICIENT_BALANCE => RejectKind::InsufficientBalance,
        codes::TERMINATE_NOT_ALLOWED => RejectKind::NotAllowed,
        codes::TOO_MANY_REQUESTS => RejectKind::RateLimited,
        _ => RejectKind::Other,
    }
}

/// The simulator's wording for each code.
pub fn message(code: i64) -> &'static str {
    match code {
        codes::SUCCESS => "Success",
        codes::INVALID_PARAMETER => "Parameter error",
        codes::UNKNOWN_ACCOUNT => "Account does not exist",
        codes::INVALID_SIGN => "Sign error",
        codes::TIMESTAMP_EXPIRED => "Timestamp expired",
        codes::NONCE_REUSED => "Nonce already used",
        codes::ORDER_PROCESSING => "Order is processing, please try again later",
        codes::DATAPLAN_NOT_FOUND => "Data plan does not exist",
        codes::DATAPLAN_UNAVAILABLE => "Data plan is unavailable",
        codes::INSUFFICIENT_BALANCE => "Insufficient balance",
        codes::ORDER_NOT_FOUND => "Order does not exist",
        codes::TERMINATE_NOT_ALLOWED => "eSIM in use, cannot terminate",
        codes::TOO_MANY_REQUESTS => "Too many requests",
        _ => "System error",
    }
}
