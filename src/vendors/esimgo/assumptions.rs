//! Everything this adapter relies on that the vendor's documents do not settle (the
//! guesses and open questions of `README.md`). Correct it here when
//! eSIM Go confirms otherwise. Beyond the items below:
//!
//! - Coverage is `countries[].iso` only; `roamingEnabled` is not counted (under-claiming is
//!   safe, over-claiming sells eSIMs that do not work).
//! - The activation code is `LPA:1$<smdpAddress>$<matchingId>` (SGP.22).
//! - Unknown order outcomes are reconciled through `GET /orders` as [`super::EsimGo`]'s
//!   `reconcile` describes; the vendor has no idempotency key, so an order is never re-sent.
//!   The match keys (bundle, quantity, time sent, ICCIDs other orders of ours own) come from
//!   the attempt row, never from process memory.
//! - HTTP 404/405 are not in the document: a path not served says nothing about an order, so
//!   it is unknown. A listing with any entry we cannot read (or one whose `orderReference`,
//!   bundle or quantity is missing) is unreadable as a whole, never a shorter list.
//! - `GET /orders` is read as a bare array or `{"orders": [...], "pageCount"}` (the document's
//!   schema is one order object, which is not trusted as a listing).
//! - HTTP 429 on `POST /orders` is not documented to mean "not processed": unknown.
//! - Callbacks must be V3 (signed); the signature is accepted as base64 or hex; usage
//!   quantities are bytes whatever the version; `FirstUse`/`BundleStarted` mean the eSIM is in
//!   use; `esim.deleted` means it expired; events are deduplicated on the SHA-256 of the body.
//! - A revoke with `refundToBalance=true` needs no `offerId` for catalogue bundles.

use std::time::Duration;

use crate::vendors::{EsimStatus, RejectKind, VendorOrderStatus};

/// `profileStatus` values: Released / Downloaded / Installed are documented, the rest and
/// their meaning for our eSIM states are guesses.
pub fn profile_status(s: &str) -> Option<EsimStatus> {
    match s.trim().to_ascii_lowercase().as_str() {
        "released" | "unavailable" | "available" => Some(EsimStatus::Ready),
        "downloaded" | "installed" | "enabled" | "disabled" => Some(EsimStatus::Installed),
        "deleted" => Some(EsimStatus::Cancelled),
        _ => None,
    }
}

/// Documented default: 10 requests/s per IP, fixed window (`/guides/rate_limits/`). Some
/// endpoints cost more than one token; none of the ones used here is documented to.
pub const RATE_LIMIT_PER_SECOND: u32 = 10;

/// `perPage` for `GET /catalogue` (the docs' example is 50; no maximum is documented).
/// Pages are 1-based.
pub const CATALOGUE_PER_PAGE: u32 = 100;
/// `limit` for `GET /orders` and `perPage` for `GET /esims`.
pub const LIST_PAGE_SIZE: u32 = 50;
/// Stops a vendor that ignores `page` from looping us forever.
pub const MAX_PAGES: u32 = 200;

/// Reconciliation searches orders created from this long before our first attempt (the
/// vendor's clock may differ from ours) until now.
pub const WINDOW_BEFORE: Duration = Duration::from_secs(120);
/// No matching order is only proof of "nothing bought" once a request sent at
/// `placed_at` can no longer be in flight at the vendor: our timeout plus this margin.
/// Before that, reconciliation answers `Unknown` and is asked again later.
pub const SETTLE_MARGIN: Duration = Duration::from_secs(60);

/// Every catalogue bundle can be ordered onto an existing eSIM of ours (`POST /orders`
/// with `iccids`); `GET /esims/{iccid}/compatible/{bundle}` has the final word.
pub const BUNDLES_SUPPORT_TOPUP: bool = true;

/// Only `completed` is documented (captured payload); the rest are guesses.
pub fn order_status(status: &str) -> VendorOrderStatus {
    match status.trim().to_ascii_lowercase().as_str() {
        "completed" | "complete" | "success" | "successful" => VendorOrderStatus::Completed,
        "failed" | "error" | "rejected" | "declined" => VendorOrderStatus::Failed,
        "cancelled" | "canceled" | "refunded" | "revoked" => VendorOrderStatus::Cancelled,
        _ => VendorOrderStatus::Pending,
    }
}

/// The exact 400 texts are not documented (open question 2): substrings, checked in this
/// order, decide the kind; any other 400 is an invalid request.
pub const MESSAGE_KINDS: &[(&str, RejectKind)] = &[
    ("insufficient", RejectKind::InsufficientBalance),
    ("balance", RejectKind::InsufficientBalance),
    ("out of stock", RejectKind::SoldOut),
    ("no stock", RejectKind::SoldOut),
    ("sold out", RejectKind::SoldOut),
    ("no esims available", RejectKind::SoldOut),
    ("cannot be refunded", RejectKind::NotAllowed),
    ("not refundable", RejectKind::NotAllowed),
    ("has started", RejectKind::NotAllowed),
    ("refund period", RejectKind::NotAllowed),
    ("incompatible", RejectKind::NotAllowed),
    ("not compatible", RejectKind::NotAllowed),
    ("not found", RejectKind::NotFound),
    ("does not exist", RejectKind::NotFound),
    ("invalid bundle", RejectKind::NotFound),
    ("unknown bundle", RejectKind::NotFound),
    ("rate limit", RejectKind::RateLimited),
];

pub fn kind_of_message(message: &str) -> RejectKind {
    let m = message.to_ascii_lowercase();
    MESSAGE_KINDS
        .iter()
        .find(|(needle, _)| m.contains(needle))
        .map(|(_, kind)| *kind)
        .unwrap_or(RejectKind::InvalidRequest)
}

/// Bundle descriptions read `eSIM, <data>, <n> Days, <coverage>[, <tag>]`
/// (`eSIM, 1GB, 7 Days, Isle of Man, Unthrottled`); the coverage may itself contain
/// commas. Used as the region label of multi-country bundles.
pub fn coverage_from_description(description: &str) -> Option<String> {
    let parts: Vec<&str> = description.split(',').map(str::trim).collect();
    let days = parts.iter().position(|p| {
        let mut words = p.split_whitespace();
        matches!(
            (words.next(), words.next(), words.next()),
            (Some(n), Some("Day" | "Days" | "day" | "days"), None) if n.parse::<u32>().is_ok()
        )
    })?;
    let mut rest: Vec<&str> = parts[days + 1..].to_vec();
    if rest.len() > 1 && rest.last().is_some_and(|t| is_tag(t)) {
        rest.pop();
    }
    let coverage = rest.join(", ");
    (!coverage.is_empty()).then_some(coverage)
}

fn is_tag(s: &str) -> bool {
    let version =
        s.len() >= 2 && s.starts_with(['V', 'v']) && s[1..].bytes().all(|b| b.is_ascii_digit());
    version || matches!(s, "Unthrottled" | "Throttled" | "Standard")
}
