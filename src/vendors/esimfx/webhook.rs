//! eSIMfx webhooks: a `token` header equal to the webhook's "Secret Key" (no body signature),
//! and a payload eSIMfx never published, parsed defensively from the shape proposed in
//! an open-source client (`README.md`; [assumption], see `super::assumptions::CALLBACK_RETRIES`).

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::{
    domain::{
        api_key::secrets_equal,
        secret::{ExposeSecret, SecretString},
    },
    vendors::{
        CallbackHeaders, CallbackTrust, EsimStatus, VendorError, VendorEvent, VendorEventKind,
    },
};

use super::wire::{Num, bytes_of};

/// The header eSIMfx puts the webhook's secret key in.
pub const TOKEN_HEADER: &str = "token";

/// The summary of `POST /webhooks/esimfx` in the OpenAPI document.
pub const ROUTE_SUMMARY: &str = "Nomad eSIMfx webhooks, verified with the `token` header.";

/// Headers worth keeping with a stored event beyond the common ones: none. Never
/// [`TOKEN_HEADER`]: it is the shared secret itself.
pub const KEPT_HEADERS: &[&str] = &[];

/// What the HTTP route answers an accepted callback with (also for a duplicate).
pub fn acknowledgement() -> serde_json::Value {
    serde_json::json!({"received": true})
}

/// Without a configured token every callback is refused: an unauthenticated eSIMfx callback
/// is indistinguishable from a forged one.
pub fn verify(
    expected: Option<&SecretString>,
    headers: &CallbackHeaders,
) -> Result<CallbackTrust, VendorError> {
    let Some(expected) = expected.filter(|t| !t.expose_secret().is_empty()) else {
        return Err(VendorError::Unauthenticated(
            "no eSIMfx webhook token is configured".into(),
        ));
    };
    let presented = headers
        .get(TOKEN_HEADER)
        .ok_or_else(|| VendorError::Unauthenticated("missing token header".into()))?;
    if secrets_equal(presented.trim(), expected.expose_secret()) {
        Ok(CallbackTrust::Verified)
    } else {
        Err(VendorError::Unauthenticated("wrong token header".into()))
    }
}

/// One object, an array of them, or either wrapped in `data`.
pub fn parse(raw_body: &[u8]) -> Result<Vec<VendorEvent>, VendorError> {
    let value: Value = serde_json::from_slice(raw_body)
        .map_err(|e| VendorError::InvalidCallback(format!("not JSON: {e}")))?;
    let items = match value {
        Value::Array(items) => items,
        Value::Object(ref m) if event_name(&value).is_none() && m.contains_key("data") => {
            match m["data"].clone() {
                Value::Array(items) => items,
                other => vec![other],
            }
        }
        other => vec![other],
    };
    if items.is_empty() {
        return Err(VendorError::InvalidCallback("no events".into()));
    }
    items.iter().map(parse_event).collect()
}

const EVENT_KEYS: &[&str] = &[
    "event_type",
    "eventType",
    "event",
    "type",
    "notification_type",
];
const ICCID_KEYS: &[&str] = &["iccid", "ICCID", "esim.iccid", "data.iccid"];
const ORDER_KEYS: &[&str] = &[
    "order_id",
    "orderId",
    "subscription.order_id",
    "data.order_id",
];
const THRESHOLD_KEYS: &[&str] = &[
    "threshold",
    "threshold_percent",
    "usage_percent",
    "percentage",
];
const USED_KEYS: &[&str] = &[
    "used_amount",
    "subscription.used_amount",
    "usage.used_amount",
];
const LIMIT_KEYS: &[&str] = &[
    "upper_limit_amount",
    "subscription.upper_limit_amount",
    "usage.upper_limit_amount",
];
const UNIT_KEYS: &[&str] = &[
    "amount_unit",
    "subscription.amount_unit",
    "usage.amount_unit",
];
const TIME_KEYS: &[&str] = &[
    "timestamp",
    "event_time",
    "time",
    "created_at",
    "occurred_at",
];

/// The first of `keys` (dotted = nested) that holds a non-null value.
fn find<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a Value> {
    keys.iter()
        .filter_map(|k| k.split('.').try_fold(v, |cur, part| cur.get(part)))
        .find(|x| !x.is_null())
}

fn text(v: &Value, keys: &[&str]) -> Option<String> {
    match find(v, keys)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn number(v: &Value, keys: &[&str]) -> Option<Num> {
    let value = match find(v, keys)? {
        // "80%" as well as 80.
        Value::String(s) => Value::String(s.trim().trim_end_matches('%').to_string()),
        other => other.clone(),
    };
    serde_json::from_value(value).ok()
}

fn event_name(v: &Value) -> Option<String> {
    text(v, EVENT_KEYS).map(|s| s.to_ascii_uppercase())
}

fn parse_event(v: &Value) -> Result<VendorEvent, VendorError> {
    let name = event_name(v).ok_or_else(|| VendorError::InvalidCallback("no event type".into()))?;
    let iccid = text(v, ICCID_KEYS);
    let vendor_order = text(v, ORDER_KEYS);
    if iccid.is_none() && vendor_order.is_none() {
        return Err(VendorError::InvalidCallback(format!(
            "{name} names neither an ICCID nor an order"
        )));
    }
    let threshold = number(v, THRESHOLD_KEYS).and_then(|n| n.to_u64());
    let kind = match name.as_str() {
        "ACTIVATION" => VendorEventKind::EsimStatus {
            status: EsimStatus::Active,
        },
        "EXPIRATION" => VendorEventKind::EsimStatus {
            status: EsimStatus::Expired,
        },
        "DATA_USAGE" => usage_event(v, threshold),
        _ => VendorEventKind::Other { name: name.clone() },
    };
    let occurred_at = text(v, TIME_KEYS).and_then(|t| t.parse::<DateTime<Utc>>().ok());
    Ok(VendorEvent {
        // Duplicates are documented; these four identify one notification ([assumption]).
        dedupe_key: format!(
            "esimfx:{name}:{}:{}:{}",
            iccid.as_deref().unwrap_or("-"),
            vendor_order.as_deref().unwrap_or("-"),
            threshold.map_or_else(|| "-".to_string(), |t| t.to_string()),
        ),
        kind,
        // eSIMfx's order id is its own; it never echoes ours.
        order_id: None,
        vendor_reference: vendor_order,
        iccid,
        vendor_esim_ref: None,
        sku: None,
        profile: None,
        occurred_at,
    })
}

fn usage_event(v: &Value, threshold: Option<u64>) -> VendorEventKind {
    let unit = text(v, UNIT_KEYS).unwrap_or_else(|| "Byte".into());
    let bytes = |keys: &[&str]| number(v, keys).and_then(|n| bytes_of(n.0, &unit));
    let used = bytes(USED_KEYS);
    let total = bytes(LIMIT_KEYS);
    VendorEventKind::Usage {
        used_bytes: used,
        total_bytes: total,
        remaining_bytes: used.zip(total).map(|(u, t)| t.saturating_sub(u)),
        threshold_percent: threshold.and_then(|t| u8::try_from(t).ok()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(token: Option<&str>) -> CallbackHeaders {
        let mut h = CallbackHeaders::new();
        if let Some(t) = token {
            h.insert(TOKEN_HEADER, t);
        }
        h
    }

    #[test]
    fn token_header_must_match_the_configured_secret() {
        let secret = SecretString::from("s3cr3t-webhook".to_string());
        assert_eq!(
            verify(Some(&secret), &headers(Some("s3cr3t-webhook"))).unwrap(),
            CallbackTrust::Verified
        );
        for bad in [Some("s3cr3t-webhooK"), Some(""), None] {
            assert!(matches!(
                verify(Some(&secret), &headers(bad)),
                Err(VendorError::Unauthenticated(_))
            ));
        }
    }

    #[test]
    fn without_a_configured_token_everything_is_refused() {
        assert!(matches!(
            verify(None, &headers(Some("anything"))),
            Err(VendorError::Unauthenticated(_))
        ));
        let empty = SecretString::from(String::new());
        assert!(verify(Some(&empty), &headers(Some(""))).is_err());
    }

    #[test]
    fn proposed_data_usage_payload() {
        let body = br#"{"event_type":"DATA_USAGE","iccid":"89440000000000000000",
            "order_id":"01b47ffa-4a74-4209-87e2-d282e274xxxx","threshold":80,
            "used_amount":8589934592,"upper_limit_amount":10737418240,"amount_unit":"Byte",
            "timestamp":"2025-10-01T10:00:00Z"}"#;
        let events = parse(body).unwrap();
        assert_eq!(
            events,
            vec![VendorEvent {
                dedupe_key:
                    "esimfx:DATA_USAGE:89440000000000000000:01b47ffa-4a74-4209-87e2-d282e274xxxx:80"
                        .into(),
                kind: VendorEventKind::Usage {
                    used_bytes: Some(8_589_934_592),
                    total_bytes: Some(10_737_418_240),
                    remaining_bytes: Some(2_147_483_648),
                    threshold_percent: Some(80),
                },
                order_id: None,
                vendor_reference: Some("01b47ffa-4a74-4209-87e2-d282e274xxxx".into()),
                iccid: Some("89440000000000000000".into()),
                vendor_esim_ref: None,
                sku: None,
                profile: None,
                occurred_at: Some("2025-10-01T10:00:00Z".parse().unwrap()),
            }]
        );
        // A redelivery dedupes to the same key.
        assert_eq!(parse(body).unwrap()[0].dedupe_key, events[0].dedupe_key);
    }

    #[test]
    fn activation_and_expiration_under_alternative_keys() {
        let events = parse(
            br#"[{"eventType":"activation","ICCID":"8944","time":"2025-10-01T10:00:00Z"},
                 {"event":"EXPIRATION","orderId":"o-9"}]"#,
        )
        .unwrap();
        assert_eq!(
            events[0].kind,
            VendorEventKind::EsimStatus {
                status: EsimStatus::Active
            }
        );
        assert_eq!(events[0].iccid.as_deref(), Some("8944"));
        assert_eq!(events[0].dedupe_key, "esimfx:ACTIVATION:8944:-:-");
        assert_eq!(
            events[1].kind,
            VendorEventKind::EsimStatus {
                status: EsimStatus::Expired
            }
        );
        assert_eq!(events[1].vendor_reference.as_deref(), Some("o-9"));
    }

    #[test]
    fn wrapped_payload_string_numbers_and_unknown_events() {
        let events = parse(
            br#"{"data":{"event_type":"DATA_USAGE","esim":{"iccid":"8944"},"threshold":"90%",
                 "subscription":{"used_amount":"9","upper_limit_amount":"10","amount_unit":"GB"}}}"#,
        )
        .unwrap();
        assert_eq!(
            events[0].kind,
            VendorEventKind::Usage {
                used_bytes: Some(9 * crate::vendors::GIB),
                total_bytes: Some(10 * crate::vendors::GIB),
                remaining_bytes: Some(crate::vendors::GIB),
                threshold_percent: Some(90),
            }
        );
        let other = parse(br#"{"event_type":"LOW_BALANCE","iccid":"8944"}"#).unwrap();
        assert_eq!(
            other[0].kind,
            VendorEventKind::Other {
                name: "LOW_BALANCE".into()
            }
        );
    }

    #[test]
    fn unusable_payloads_are_invalid() {
        for body in [
            &b"nope"[..],
            b"[]",
            br#"{"iccid":"8944"}"#,
            br#"{"event_type":"ACTIVATION"}"#,
        ] {
            assert!(
                matches!(parse(body), Err(VendorError::InvalidCallback(_))),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
