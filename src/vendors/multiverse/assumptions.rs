//! Every guess this adapter (and the simulator, which mirrors them) relies on. Nothing here
//! is in the vendor's published document; correct it when the vendor answers the open
//! questions in `README.md`.

use std::time::Duration;

/// Every path sits under `/api/v1`, as the seed's PHP sample and the Tel25 client show
/// for `/auth/token` [assumption, strong].
pub const PREFIX: &str = "/api/v1";

/// Token lifetime when the token answer has no `expires_in` [assumption: 1 h, like the
/// access-token header].
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// The package list is not paginated: one `GET /esims/packages` returns everything in
/// `package_list` [assumption; the Tel25 client reads it in one call].
pub const PACKAGES: &str = "/esims/packages";

/// Package fields [assumption; the Tel25 client reads packages as string→string maps]:
/// `package_id`, `name`, `countries` ("JP" or "FR,DE,IT"), `region` (optional label),
/// `data_amount` + `data_unit` ("MB" | "GB"), `unlimited` and `daily` flags
/// ("true"/"false"), `validity_days`, `price` + `currency` (ISO 4217), `topup` (the
/// package can also be added onto an existing eSIM) and `status` ("ACTIVE" when
/// orderable; absent = orderable).
///
/// Data units are binary: 1 GB = 1024 MB = 2^30 bytes [assumption; no vendor document].
pub const BYTES_PER_MB: u64 = 1024 * 1024;
pub const BYTES_PER_GB: u64 = 1024 * BYTES_PER_MB;

/// The purchase body is `{"customer_order_id": "<our order id>"}` and buys exactly one
/// eSIM; a quantity above one is bought with one call per eSIM whose
/// `customer_order_id` is `<order id>-<n>` (n from 1) [assumption].
pub const QUANTITY_SUFFIX_SEPARATOR: char = '-';

/// Our order id from a `customer_order_id`: strips a `-<n>` per-eSIM suffix, but only
/// from ids of our own `<prefix>_<ulid>` form (which never contain `-`), so a foreign
/// reference such as `ORD-123` is left alone.
pub fn our_order_id(customer_order_id: &str) -> &str {
    match customer_order_id.rsplit_once(QUANTITY_SUFFIX_SEPARATOR) {
        Some((base, n))
            if base.contains('_')
                && !base.contains(QUANTITY_SUFFIX_SEPARATOR)
                && !n.is_empty()
                && n.bytes().all(|b| b.is_ascii_digit()) =>
        {
            base
        }
        _ => customer_order_id,
    }
}

/// The purchase answers HTTP 200 with a flat order object (`order_id`,
/// `customer_order_id`, `package_id`, `status`) [assumption]. The same object, with
/// `iccid`, `smdp` and `activation_code` once allocated, is what the callback, the
/// order query and `/purchase/sync` return [assumption, from the Tel25 sync response].
/// Status values: `PROCESSING`, `COMPLETED`, `FAILED` [assumption].
pub const STATUS_COMPLETED: &str = "COMPLETED";
pub const STATUS_FAILED: &str = "FAILED";
pub const STATUS_PROCESSING: &str = "PROCESSING";

/// The vendor does NOT deduplicate on `customer_order_id` (the Tel25 client fills it
/// with an e-mail address) [assumption], so an unknown purchase outcome is resolved by
/// querying, never by re-purchasing.
pub const PLACE_IS_IDEMPOTENT: bool = false;

/// `GET /esims/orders?customer_order_id=…` → `{"order_list":[order…]}` (empty when
/// none) [assumption].
pub const ORDERS: &str = "/esims/orders";
/// `GET /esims/orders/{order_id}` → one order object, `404002` when unknown
/// [assumption].
pub fn order(order_id: &str) -> String {
    format!("{ORDERS}/{}", super::path_segment(order_id))
}

/// An empty order query is "not bought" only this long after the `/sync` timeout.
pub const SETTLE_MARGIN: Duration = Duration::from_secs(60);

/// `/purchase/sync` waits for allocation; its timeout is at least this long.
pub const SYNC_PURCHASE_MIN_TIMEOUT: Duration = Duration::from_secs(60);

/// `POST /esims/packages/{package_id}/purchase` (documented) and its `/sync` variant,
/// which answers with the allocated eSIM (no callback follows) [evidence: the Tel25
/// client buys through it; used first, the asynchronous route when it answers 404001].
pub fn purchase(package_id: &str) -> String {
    format!("{PACKAGES}/{}/purchase", super::path_segment(package_id))
}
pub fn purchase_sync(package_id: &str) -> String {
    format!("{}/sync", purchase(package_id))
}

/// No document names a top-up operation: the call below is a guess (and answers 404001
/// where it is not offered). The gateway therefore sells no top-ups on Multiverse eSIMs
/// ([`crate::vendors::VendorId::topups_documented`]); the adapter keeps the call for an
/// operator who confirms it with the vendor.
pub const TOPUP_DOCUMENTED: bool = false;

/// `POST /esims/{iccid}/packages/{package_id}/topup` with `{"customer_order_id"}`,
/// answered synchronously with a `COMPLETED` order object [assumption].
pub fn topup(iccid: &str, package_id: &str) -> String {
    format!(
        "/esims/{}/packages/{}/topup",
        super::path_segment(iccid),
        super::path_segment(package_id)
    )
}

/// `GET /esims/{iccid}/usage` → `{iccid, status, data_used, data_total, data_unit,
/// unlimited, activated_at, expired_at, updated_at}` with amounts in `data_unit`
/// (decimal strings) and RFC 3339 UTC times [assumption]. eSIM statuses: `READY`,
/// `INSTALLED`, `ACTIVE`, `DEPLETED`, `EXPIRED`, `CANCELLED` [assumption].
pub fn usage(iccid: &str) -> String {
    format!("/esims/{}/usage", super::path_segment(iccid))
}

/// `GET /account/balance` → `{"balance":"…","currency":"EUR"}` [assumption].
pub const BALANCE: &str = "/account/balance";

/// An empty prepaid balance is refused with HTTP 402 `{"code":"402001"}`: the document
/// lists no such code, and 402 follows its "first three digits = HTTP status" rule
/// [assumption].
pub const INSUFFICIENT_BALANCE_CODE: &str = "402001";

// No cancel/refund endpoint is known, so `cancel` answers `Unsupported` [assumption].

/// The callback is the order object above, POSTed as JSON to the URL registered at
/// onboarding, unsigned, retried after these delays when not answered 2xx
/// [assumption; retries are undocumented].
pub const CALLBACK_RETRY_DELAYS: &[Duration] = &[Duration::from_secs(10), Duration::from_secs(30)];

/// The access-token header is accepted within ±1 h of the vendor's clock (the
/// document's "Lifetime: 1 hour") [assumption on the tolerance before `ts`].
pub const ACCESS_TOKEN_TOLERANCE_SECS: i64 = 3600;
