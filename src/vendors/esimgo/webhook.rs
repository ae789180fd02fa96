//! eSIM Go callbacks ("notifications"): V3 signature check and parsing.
//!
//! V3 signs the raw body: `X-Signature-SHA256` = HMAC-SHA256(key = API key, raw body). The API
//! reference encodes the digest as base64, the newer guide as hex; both are accepted, compared
//! in constant time, before anything is parsed. V2 callbacks carry no signature and are
//! refused: the portal must be set to V3 (`/guides/webhooks/`).
//!
//! The body is one JSON object, told apart by `alertType` (Utilisation, FirstUse, LowBalance,
//! …) or `event` (`esim.deletion_scheduled`, `esim.deleted`), or a profile status change
//! (`profileStatus`). There is no event id, so the dedupe key is the SHA-256 of the raw body.

use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use rust_decimal::Decimal;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::vendors::{CallbackHeaders, EsimStatus, VendorError, VendorEvent, VendorEventKind};

use super::wire::{self, opt_decimal, opt_iccid, opt_time};

pub const SIGNATURE_HEADER: &str = "X-Signature-SHA256";

/// HMAC-SHA256 of the raw body keyed with the API key.
pub fn digest(api_key: &str, raw_body: &[u8]) -> [u8; 32] {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(api_key.as_bytes()).expect("HMAC accepts any key length");
    mac.update(raw_body);
    mac.finalize().into_bytes().into()
}

/// The header value the vendor sends (base64, as the API reference shows).
pub fn sign_base64(api_key: &str, raw_body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(digest(api_key, raw_body))
}

/// The summary of `POST /webhooks/esimgo` in the OpenAPI document.
pub const ROUTE_SUMMARY: &str = "eSIM Go callbacks, verified with `X-Signature-SHA256` (HMAC-SHA256 of the raw body, base64 or hex).";

/// Kept with a stored event: the signature, so an admin can see what was verified (it is
/// derived from the body, not a secret).
pub const KEPT_HEADERS: &[&str] = &["x-signature-sha256"];

/// What the HTTP route answers an accepted callback with (also for a duplicate).
pub fn acknowledgement() -> serde_json::Value {
    serde_json::json!({"received": true})
}

/// Checks `X-Signature-SHA256` against the body, as base64 or as hex.
pub fn verify(
    api_key: &str,
    headers: &CallbackHeaders,
    raw_body: &[u8],
) -> Result<(), VendorError> {
    let header = headers
        .get(SIGNATURE_HEADER)
        .ok_or_else(|| VendorError::Unauthenticated(format!("missing {SIGNATURE_HEADER}")))?
        .trim();
    let expected = digest(api_key, raw_body);
    let given = decode_signature(header)
        .ok_or_else(|| VendorError::Unauthenticated(format!("malformed {SIGNATURE_HEADER}")))?;
    if bool::from(given.as_slice().ct_eq(expected.as_slice())) {
        Ok(())
    } else {
        Err(VendorError::Unauthenticated(format!(
            "{SIGNATURE_HEADER} does not match the body"
        )))
    }
}

/// 64 hex digits, or standard base64 (padded or not). A 32-byte digest cannot be confused
/// between the two: its base64 form is 43–44 characters.
fn decode_signature(s: &str) -> Option<Vec<u8>> {
    if s.len() == 64 {
        return hex::decode(s).ok();
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    b64.decode(s)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(s))
        .ok()
        .filter(|d| d.len() == 32)
}

/// The bundle inside usage alerts. Quantities are bytes in V3; the v2.1 example shows MB
/// floats, which are read as they come (see `assumptions`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AlertBundle {
    #[serde(default, deserialize_with = "opt_decimal")]
    initial_quantity: Option<Decimal>,
    #[serde(default, deserialize_with = "opt_decimal")]
    remaining_quantity: Option<Decimal>,
    #[serde(default, deserialize_with = "opt_time")]
    start_time: Option<DateTime<Utc>>,
    #[serde(default)]
    unlimited: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Notification {
    #[serde(default, deserialize_with = "opt_iccid")]
    iccid: Option<String>,
    #[serde(default)]
    alert_type: Option<String>,
    #[serde(default)]
    event: Option<String>,
    #[serde(default)]
    profile_status: Option<String>,
    #[serde(default)]
    bundle: Option<AlertBundle>,
    #[serde(default, deserialize_with = "opt_time")]
    date: Option<DateTime<Utc>>,
}

/// Parses a verified callback body into one event.
pub fn parse(raw_body: &[u8]) -> Result<Vec<VendorEvent>, VendorError> {
    let n: Notification = serde_json::from_slice(raw_body)
        .map_err(|e| VendorError::InvalidCallback(format!("not an eSIM Go notification: {e}")))?;
    let kind = kind_of(&n)?;
    let occurred_at = n.date.or_else(|| {
        started_now(&n)
            .then(|| n.bundle.as_ref()?.start_time)
            .flatten()
    });
    Ok(vec![VendorEvent {
        dedupe_key: hex::encode(Sha256::digest(raw_body)),
        kind,
        order_id: None,
        vendor_reference: None,
        iccid: n.iccid,
        vendor_esim_ref: None,
        sku: None,
        profile: None,
        occurred_at,
    }])
}

fn started_now(n: &Notification) -> bool {
    matches!(
        n.alert_type
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("firstuse" | "bundlestarted")
    )
}

fn kind_of(n: &Notification) -> Result<VendorEventKind, VendorError> {
    if let Some(alert) = n.alert_type.as_deref() {
        return Ok(alert_kind(alert, n));
    }
    if let Some(event) = n.event.as_deref() {
        return Ok(match event {
            // 180 days without a bundle: the vendor took the eSIM back.
            "esim.deleted" => VendorEventKind::EsimStatus {
                status: EsimStatus::Expired,
            },
            other => VendorEventKind::Other {
                name: other.to_string(),
            },
        });
    }
    if let Some(status) = n.profile_status.as_deref() {
        return Ok(match wire::profile_status(status) {
            Some(status) => VendorEventKind::EsimStatus { status },
            None => VendorEventKind::Other {
                name: format!("profileStatus:{status}"),
            },
        });
    }
    Err(VendorError::InvalidCallback(
        "neither alertType, event nor profileStatus".into(),
    ))
}

fn alert_kind(alert: &str, n: &Notification) -> VendorEventKind {
    match alert.to_ascii_lowercase().as_str() {
        "utilisation" | "utilization" => usage_kind(n.bundle.as_ref()),
        "firstuse" | "bundlestarted" => VendorEventKind::EsimStatus {
            status: EsimStatus::Active,
        },
        _ if n.profile_status.is_some() => {
            match n.profile_status.as_deref().and_then(wire::profile_status) {
                Some(status) => VendorEventKind::EsimStatus { status },
                None => VendorEventKind::Other {
                    name: alert.to_string(),
                },
            }
        }
        "lowbalance" => VendorEventKind::LowBalance { exhausted: false },
        "insufficientbalance" => VendorEventKind::LowBalance { exhausted: true },
        // MSISDNDisabled: about a phone number we do not sell; nothing to apply.
        _ => VendorEventKind::Other {
            name: alert.to_string(),
        },
    }
}

fn usage_kind(bundle: Option<&AlertBundle>) -> VendorEventKind {
    let Some(b) = bundle else {
        return VendorEventKind::Usage {
            used_bytes: None,
            total_bytes: None,
            remaining_bytes: None,
            threshold_percent: None,
        };
    };
    let unlimited = b.unlimited.unwrap_or(false);
    let total = b.initial_quantity.and_then(wire::whole_units);
    let remaining = b.remaining_quantity.and_then(wire::whole_units);
    VendorEventKind::Usage {
        used_bytes: total.zip(remaining).map(|(t, r)| t.saturating_sub(r)),
        total_bytes: total.filter(|_| !unlimited),
        remaining_bytes: remaining.filter(|_| !unlimited),
        // The alert fires at 1/50/80/100 % but does not say which threshold it is.
        threshold_percent: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    fn headers(sig: &str) -> CallbackHeaders {
        CallbackHeaders::new().with(SIGNATURE_HEADER, sig)
    }

    struct Vector {
        api_key: &'static str,
        body: &'static str,
        base64: &'static str,
        hex: &'static str,
    }

    /// Signature vectors computed from the documented algorithm.
    const VECTORS: [Vector; 2] = [
        Vector {
            api_key: "test-api-key-123",
            body: r#"{"iccid":"8944538532008160222","alertType":"Utilisation","bundle":{"id":"1","reference":"ref","name":"esim_1GB_7D_IM_U","description":"eSIM, 1GB, 7 Days, Isle of Man, Unthrottled","initialQuantity":1000000000,"remainingQuantity":500000000,"startTime":"2024-01-01T00:00:00Z","endTime":"2024-01-08T00:00:00Z","unlimited":false}}"#,
            base64: "2xXTBVw9DGht0FKTZQR6BSmHtbyrtMXXSahOVk9s8gQ=",
            hex: "db15d3055c3d0c686dd0529365047a052987b5bcabb4c5d749a84e564f6cf204",
        },
        Vector {
            api_key: "another-key",
            body: r#"{"iccid":"8900000000000000001","alertType":"BundleStarted"}"#,
            base64: "nDNi96Vr45XOAhAvSbmMXOpUOPPI+CToWZq1rnLvL5M=",
            hex: "9c3362f7a56be395ce02102f49b98c5cea5438f3c8f824e8599ab5ae72ef2f93",
        },
    ];

    #[test]
    fn test_vectors_verify_as_base64_and_as_hex() {
        for v in &VECTORS {
            assert_eq!(sign_base64(v.api_key, v.body.as_bytes()), v.base64);
            assert_eq!(hex::encode(digest(v.api_key, v.body.as_bytes())), v.hex);
            verify(v.api_key, &headers(v.base64), v.body.as_bytes()).unwrap();
            verify(v.api_key, &headers(v.hex), v.body.as_bytes()).unwrap();
            verify(
                v.api_key,
                &headers(v.base64.trim_end_matches('=')),
                v.body.as_bytes(),
            )
            .unwrap();
        }
    }

    #[test]
    fn wrong_key_tampered_body_or_missing_header_is_refused() {
        let v = &VECTORS[0];
        let unauth = |r: Result<(), VendorError>| {
            assert!(matches!(r, Err(VendorError::Unauthenticated(_))), "{r:?}")
        };
        unauth(verify("wrong", &headers(v.base64), v.body.as_bytes()));
        let tampered = v.body.replace("500000000", "900000000");
        unauth(verify(v.api_key, &headers(v.base64), tampered.as_bytes()));
        unauth(verify(
            v.api_key,
            &CallbackHeaders::new(),
            v.body.as_bytes(),
        ));
        unauth(verify(
            v.api_key,
            &headers("not a signature"),
            v.body.as_bytes(),
        ));
        unauth(verify(
            v.api_key,
            &headers(VECTORS[1].hex),
            v.body.as_bytes(),
        ));
    }

    fn one(body: &str) -> VendorEvent {
        let mut events = parse(body.as_bytes()).unwrap();
        assert_eq!(events.len(), 1);
        events.remove(0)
    }

    #[test]
    fn utilisation_vector_is_a_usage_event_in_bytes() {
        let e = one(VECTORS[0].body);
        assert_eq!(e.iccid.as_deref(), Some("8944538532008160222"));
        assert_eq!(
            e.kind,
            VendorEventKind::Usage {
                used_bytes: Some(500_000_000),
                total_bytes: Some(1_000_000_000),
                remaining_bytes: Some(500_000_000),
                threshold_percent: None,
            }
        );
        assert_eq!(e.dedupe_key, hex::encode(Sha256::digest(VECTORS[0].body)));
        assert_eq!(e.dedupe_key.len(), 64);
    }

    #[test]
    fn bundle_started_vector_marks_the_esim_active() {
        let e = one(VECTORS[1].body);
        assert_eq!(e.iccid.as_deref(), Some("8900000000000000001"));
        assert_eq!(
            e.kind,
            VendorEventKind::EsimStatus {
                status: EsimStatus::Active
            }
        );
    }

    #[test]
    fn documented_utilisation_example() {
        let e = one(
            r#"{"iccid":"8944538532008160222","alertType":"Utilisation","bundle":{"name":"A_BUNDLE_1GB","initialQuantity":1000000000,"remainingQuantity":1000000000,"startTime":"2006-01-02T15:04:05Z","endTime":"2007-01-02T15:04:05Z","unlimited":false}}"#,
        );
        assert_eq!(
            e.kind,
            VendorEventKind::Usage {
                used_bytes: Some(0),
                total_bytes: Some(1_000_000_000),
                remaining_bytes: Some(1_000_000_000),
                threshold_percent: None,
            }
        );
    }

    #[test]
    fn first_use_example_with_a_numeric_iccid() {
        let e = one(
            r#"{"iccid":8944538532008160222,"alertType":"FirstUse","bundle":{"name":"A_BUNDLE_1GB","initialQuantity":1000000000,"remainingQuantity":1000000000,"startTime":"2006-01-02T15:04:05Z","endTime":"2007-01-02T15:04:05Z","unlimited":false}}"#,
        );
        assert_eq!(e.iccid.as_deref(), Some("8944538532008160222"));
        assert_eq!(
            e.kind,
            VendorEventKind::EsimStatus {
                status: EsimStatus::Active
            }
        );
        assert_eq!(e.occurred_at, wire::parse_time("2006-01-02T15:04:05Z"));
    }

    #[test]
    fn v21_usage_example_in_megabyte_floats() {
        let e = one(
            r#"{"iccid":"8944538532008160222","alertType":"Utilisation","bundle":{"name":"A_BUNDLE_1GB","initialQuantity":1000.00,"remainingQuantity":90.00,"unlimited":false}}"#,
        );
        let VendorEventKind::Usage { used_bytes, .. } = e.kind else {
            panic!("{e:?}")
        };
        assert_eq!(used_bytes, Some(910));
    }

    #[test]
    fn balance_alerts_are_low_balance_and_msisdn_alerts_other() {
        assert_eq!(
            one(r#"{"alertType":"LowBalance","balanceInfo":{"balance":1299.3,"threshold":2600,"thresholdPercentRemaining":49.973}}"#).kind,
            VendorEventKind::LowBalance { exhausted: false }
        );
        assert_eq!(
            one(r#"{"alertType":"InsufficientBalance","balanceInfo":{"balance":0.5,"threshold":100,"thresholdPercentRemaining":0.5}}"#).kind,
            VendorEventKind::LowBalance { exhausted: true }
        );
        assert_eq!(
            one(r#"{"alertType":"MSISDNDisabled","iccid":"8944538532008160222","msisdn":"447700900000","reason":"Bundle expired"}"#).kind,
            VendorEventKind::Other {
                name: "MSISDNDisabled".into()
            }
        );
    }

    #[test]
    fn profile_status_changes() {
        let e = one(
            r#"{"iccid":"8944538532008160222","profileStatus":"Installed","date":"2024-03-01T10:00:00Z","device":{"imei":"356938035643809","eid":"89049032000001000000000000000000","tac":"35693803","make":"Apple","model":"iPhone 15"}}"#,
        );
        assert_eq!(
            e.kind,
            VendorEventKind::EsimStatus {
                status: EsimStatus::Installed
            }
        );
        assert_eq!(e.occurred_at, wire::parse_time("2024-03-01T10:00:00Z"));
        let e = one(
            r#"{"iccid":"8944538532008160222","profileStatus":"Released","date":"2024-03-01T10:00:00Z"}"#,
        );
        assert_eq!(
            e.kind,
            VendorEventKind::EsimStatus {
                status: EsimStatus::Ready
            }
        );
    }

    #[test]
    fn esim_lifecycle_events() {
        let e = one(
            r#"{"date":"2026-06-22T13:03:31Z","event":"esim.deletion_scheduled","iccid":"8943108161000670038"}"#,
        );
        assert_eq!(
            e.kind,
            VendorEventKind::Other {
                name: "esim.deletion_scheduled".into()
            }
        );
        assert_eq!(e.iccid.as_deref(), Some("8943108161000670038"));
        let e = one(
            r#"{"date":"2026-06-29T13:03:31Z","event":"esim.deleted","iccid":"8943108161000670038"}"#,
        );
        assert_eq!(
            e.kind,
            VendorEventKind::EsimStatus {
                status: EsimStatus::Expired
            }
        );
    }

    #[test]
    fn unknown_shapes_are_invalid() {
        for body in ["not json", "[]", r#"{"iccid":"1"}"#] {
            assert!(
                matches!(parse(body.as_bytes()), Err(VendorError::InvalidCallback(_))),
                "{body}"
            );
        }
    }
}
