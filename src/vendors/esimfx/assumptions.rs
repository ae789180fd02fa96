//! Every guess this adapter and its simulator rely on, in one place, so each is easy to
//! correct once eSIMfx answers the questions in `README.md`.
//!
//! Guesses the code is built around rather than switched by (a constant would change
//! nothing; correcting one of these means changing the code named):
//!
//! - [assumption] Replaying an `X-Idempotency-Key` with the same body returns the original
//!   answer and charges once; the same key with a different body is refused with
//!   [`super::codes::IDEMPOTENCY_CONFLICT`]. Only accepted orders are remembered, so a
//!   refused order may be retried under its key. The adapter relies on it by re-sending
//!   an order whose outcome is unknown (`place_is_idempotent`); the simulator behaves so.
//! - [assumption] Business errors come with HTTP 200 and a non-zero `code`; bad or expired
//!   tokens with HTTP 401 and [`super::codes::TOKEN_INVALID`]. The adapter reads `code`
//!   whatever the HTTP status, so either way it classifies the same.

use std::time::Duration;

/// The token lives exactly 1 h and no `expires_in` is returned; refresh 5 min early.
pub const TOKEN_REFRESH_AFTER: Duration = Duration::from_secs(55 * 60);

/// [assumption] `get_products` accepts pages of 100 (one client asks for 99).
pub const PAGE_SIZE: u32 = 100;

/// [assumption] The docs ask for a UUID in `X-Idempotency-Key`; our ids are `ord_<ULID>`
/// and are sent as they are. A quantity above one is bought as one `create_order` per
/// eSIM (the order has no `count` field in the seed) keyed `<order id>-<n>`, n from 1.
pub fn idempotency_key(order_id: &str, n: u32, quantity: u32) -> String {
    if quantity <= 1 {
        order_id.to_string()
    } else {
        format!("{order_id}-{n}")
    }
}

/// [assumption] Every eSIM can be topped up with the products `get_available_topups`
/// lists for it; the catalogue has no per-product flag.
pub const EVERY_PRODUCT_TOPS_UP: bool = true;

/// [assumption] An `is_unlimited` product with `high_speed` + `high_speed_unit` gives that
/// much high-speed data per day, then `unlimited_speed`; without them it is unmetered.
pub const DAILY_HIGH_SPEED: bool = true;

/// [assumption] `reseller/get_profile` carries the prepaid balance as `balance` (or
/// `account_balance` / `available_balance`) and its currency as `currency` (or
/// `balance_unit`), USD when absent. Without a balance field `balance()` is `Unsupported`.
pub const BALANCE_CURRENCY_DEFAULT: &str = "USD";

/// [assumption] Webhook payloads were never published: `super::webhook` parses the shape
/// proposed by an open-source client defensively (see `README.md`); eSIMfx's retry
/// schedule is unknown, the simulator retries after these delays.
pub const CALLBACK_RETRIES: &[Duration] = &[
    Duration::from_secs(1),
    Duration::from_secs(5),
    Duration::from_secs(30),
];

/// [assumption] eSIMfx publishes no error table. These are the codes the simulator answers
/// and how the adapter classifies them; any other non-zero code is unknown: on calls that may
/// have bought or refunded something (`create_order`, `terminate_subscription`) it is
/// [`VendorError::Unknown`](crate::vendors::VendorError::Unknown), on reads `Rejected { Other }`.
pub mod codes {
    use crate::vendors::RejectKind;

    pub const SUCCESS: i64 = 0;
    pub const INVALID_PARAMETER: i64 = 1001;
    pub const TOKEN_INVALID: i64 = 1002;
    pub const BAD_CLIENT_CREDENTIALS: i64 = 1003;
    pub const RATE_LIMITED: i64 = 1004;
    pub const PRODUCT_NOT_FOUND: i64 = 2001;
    pub const PRODUCT_SOLD_OUT: i64 = 2002;
    pub const TOPUP_INCOMPATIBLE: i64 = 2003;
    pub const INSUFFICIENT_BALANCE: i64 = 3001;
    pub const ORDER_NOT_FOUND: i64 = 3002;
    pub const ICCID_NOT_FOUND: i64 = 3003;
    pub const IDEMPOTENCY_CONFLICT: i64 = 3004;
    pub const WRONG_SUBSCRIPTION_STATE: i64 = 3005;
    pub const ESIM_NOT_TOPPABLE: i64 = 3006;
    pub const INTERNAL_ERROR: i64 = 5000;

    /// `None`: not a refusal we understand (the outcome of a purchase is unknown).
    pub fn classify(code: i64) -> Option<RejectKind> {
        Some(match code {
            INVALID_PARAMETER | IDEMPOTENCY_CONFLICT => RejectKind::InvalidRequest,
            TOKEN_INVALID | BAD_CLIENT_CREDENTIALS => RejectKind::Auth,
            RATE_LIMITED => RejectKind::RateLimited,
            PRODUCT_NOT_FOUND | ORDER_NOT_FOUND | ICCID_NOT_FOUND => RejectKind::NotFound,
            PRODUCT_SOLD_OUT => RejectKind::SoldOut,
            TOPUP_INCOMPATIBLE | WRONG_SUBSCRIPTION_STATE | ESIM_NOT_TOPPABLE => {
                RejectKind::NotAllowed
            }
            INSUFFICIENT_BALANCE => RejectKind::InsufficientBalance,
            _ => return None,
        })
    }
}
