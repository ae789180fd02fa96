//! Every guess about eSIM Access this adapter and its simulator rely on, in one place.
//! None is in the vendor's documents (see `README.md`); correct them here.

use std::time::Duration;

/// `RT-Timestamp` is sent in milliseconds (header table) although the worked example
/// uses seconds; the simulator accepts both.
pub const TIMESTAMP_IN_MILLIS: bool = true;

/// How far `RT-Timestamp` may be from the vendor's clock before 101001.
pub const TIMESTAMP_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// Sources disagree on the signature's hex case; the vendor is taken to compare
/// case-insensitively. We send lowercase (as the docs' text says).
pub const SIGNATURE_CASE_INSENSITIVE: bool = true;

/// The error code when the 8 requests/s limit is exceeded (undocumented).
pub const THROTTLED_CODE: &str = "900002";

/// The error code for an `RT-AccessCode` the vendor does not know (undocumented; a
/// missing header is the documented 000101).
pub const UNKNOWN_ACCESS_CODE: &str = "000102";

/// Business errors come with HTTP 200 and `success: false`.
pub const ERRORS_USE_HTTP_200: bool = true;

/// Re-sending `/esim/order` with the same `transactionId` returns the first order's
/// `orderNo` and charges nothing (the docs only say it "is identified as the same
/// request"). The same holds for `/esim/topup`.
pub const DUPLICATE_TRANSACTION_RETURNS_SAME_ORDER: bool = true;

/// `supportTopUpType` values meaning "top-up supported" (3 is seen live, undocumented).
pub const TOPUP_SUPPORTED_TYPES: &[i64] = &[2];

/// How an unlimited package states its volume (undocumented).
pub const UNLIMITED_VOLUME: i64 = -1;

/// Reconciling without an `orderNo` searches `/esim/query` from this long before the
/// first attempt until this long after now.
pub const RECONCILE_WINDOW_MARGIN: Duration = Duration::from_secs(10 * 60);

/// The date-range query may not list an order whose profiles are still being
/// allocated; until this long after the first attempt, "not found" means "not yet".
pub const RECONCILE_NOT_FOUND_GRACE: Duration = Duration::from_secs(2 * 60);

/// Webhook retry schedule of the simulator (the vendor documents none).
pub const CALLBACK_RETRIES: &[Duration] = &[
    Duration::from_secs(1),
    Duration::from_secs(10),
    Duration::from_secs(60),
];
