//! eSIM Access webhooks (see `README.md`): a JSON POST
//! `{notifyType, content, [eventGenerateTime, notifyId]}` with no signature at all. The only
//! control the vendor offers is a sender-IP allowlist (applied by the HTTP layer), so every
//! callback is a hint to re-read the order or eSIM through the API.

use rust_decimal::{Decimal, prelude::ToPrimitive};
use sha2::{Digest, Sha256};

use super::wire::{self, Notification, NotifyContent};
use crate::vendors::{CallbackHeaders, CallbackTrust, VendorError, VendorEvent, VendorEventKind};

/// The summary of `POST /webhooks/esimaccess` in the OpenAPI document.
pub const ROUTE_SUMMARY: &str =
    "eSIM Access notifications (unsigned: a hint to re-read from its API).";

/// Headers of this vendor's callbacks worth keeping with a stored event, beyond the ones
/// kept for every vendor: none (it sends nothing of its own).
pub const KEPT_HEADERS: &[&str] = &[];

/// What the HTTP route answers an accepted callback with (also for a duplicate).
pub fn acknowledgement() -> serde_json::Value {
    serde_json::json!({"received": true})
}

/// Nothing to check: the vendor signs nothing. Never `Verified`.
pub fn verify(_headers: &CallbackHeaders, _raw_body: &[u8]) -> Result<CallbackTrust, VendorError> {
    Ok(CallbackTrust::Hint)
}

pub fn parse(raw_body: &[u8]) -> Result<Vec<VendorEvent>, VendorError> {
    let n: Notification = serde_json::from_slice(raw_body).map_err(|e| {
        VendorError::InvalidCallback(format!("not an eSIM Access notification: {e}"))
    })?;
    let notify_type = n
        .notify_type
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| VendorError::InvalidCallback("notifyType missing".to_string()))?
        .to_ascii_uppercase();
    let c = &n.content;
    Ok(vec![VendorEvent {
        // Only the newer events carry notifyId; a redelivered older one has the same bytes.
        dedupe_key: match n.notify_id.as_deref().filter(|i| !i.is_empty()) {
            Some(id) => format!("esimaccess:{id}"),
            None => format!(
                "esimaccess:sha256:{}",
                hex::encode(Sha256::digest(raw_body))
            ),
        },
        kind: kind(&notify_type, c),
        order_id: c.transaction_id.clone(),
        vendor_reference: c.order_no.clone(),
        iccid: c.iccid.clone(),
        vendor_esim_ref: c.esim_tran_no.clone(),
        sku: None,
        profile: None,
        occurred_at: n.event_generate_time.as_deref().and_then(wire::parse_time),
    }])
}

fn kind(notify_type: &str, c: &NotifyContent) -> VendorEventKind {
    let other = || VendorEventKind::Other {
        name: notify_type.to_string(),
    };
    match notify_type {
        "ORDER_STATUS" => match c.order_status.as_deref() {
            Some(s) if s.eq_ignore_ascii_case("GOT_RESOURCE") => VendorEventKind::OrderReady,
            _ => other(),
        },
        "ESIM_STATUS" | "SMDP_EVENT" => wire::esim_status(
            c.esim_status.as_deref().unwrap_or(""),
            c.smdp_status.as_deref().unwrap_or(""),
            c.order_usage,
        )
        .map_or_else(other, |status| VendorEventKind::EsimStatus { status }),
        "DATA_USAGE" => VendorEventKind::Usage {
            used_bytes: non_negative(c.order_usage),
            total_bytes: non_negative(c.total_volume),
            remaining_bytes: non_negative(c.remain),
            threshold_percent: c.remain_threshold.and_then(percent_used),
        },
        "VALIDITY_USAGE" => VendorEventKind::ValidityEnding {
            expires_at: c.expired_time.as_deref().and_then(wire::parse_time),
        },
        "CHECK_HEALTH" => VendorEventKind::Ping,
        _ => other(),
    }
}

fn non_negative(v: Option<i64>) -> Option<u64> {
    v.and_then(|v| u64::try_from(v).ok())
}

/// `remainThreshold` is the fraction left (0.1 = 10 % left = 90 % used). The docs disagree
/// on which thresholds exist, so any fraction in [0, 1] is accepted.
fn percent_used(remain_fraction: Decimal) -> Option<u8> {
    if remain_fraction < Decimal::ZERO || remain_fraction > Decimal::ONE {
        return None;
    }
    ((Decimal::ONE - remain_fraction) * Decimal::from(100))
        .round()
        .to_u8()
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::vendors::EsimStatus;

    fn one(body: &str) -> VendorEvent {
        let mut events = parse(body.as_bytes()).unwrap();
        assert_eq!(events.len(), 1);
        events.remove(0)
    }

    #[test]
    fn order_status_got_resource_is_order_ready() {
        let e = one(
            r#"{"notifyType":"ORDER_STATUS","content":{"orderNo":"B23072016497499","orderStatus":"GOT_RESOURCE"}}"#,
        );
        assert_eq!(e.kind, VendorEventKind::OrderReady);
        assert_eq!(e.vendor_reference.as_deref(), Some("B23072016497499"));
        assert_eq!(e.order_id, None);
        assert!(e.dedupe_key.starts_with("esimaccess:sha256:"));
        // The help page's version carries our transactionId.
        let e = one(
            r#"{"notifyType":"ORDER_STATUS","content":{"orderNo":"B23072016497499","transactionId":"ord_1","orderStatus":"GOT_RESOURCE"}}"#,
        );
        assert_eq!(e.order_id.as_deref(), Some("ord_1"));
    }

    #[test]
    fn esim_status_cancel_example() {
        let e = one(
            r#"{"notifyType":"ESIM_STATUS","eventGenerateTime":"2025-08-09T00:23:45Z","notifyId":"4038b3dfb1b050bf9f02501df67284f3","content":{"orderNo":"B25080823490018","esimTranNo":"25080323490020","transactionId":"e23111e4d07746889c7bce41cf3f1b16","iccid":"89852000263413436720","esimStatus":"CANCEL","smdpStatus":"RELEASED"}}"#,
        );
        assert_eq!(
            e.kind,
            VendorEventKind::EsimStatus {
                status: EsimStatus::Cancelled
            }
        );
        assert_eq!(e.dedupe_key, "esimaccess:4038b3dfb1b050bf9f02501df67284f3");
        assert_eq!(
            e.order_id.as_deref(),
            Some("e23111e4d07746889c7bce41cf3f1b16")
        );
        assert_eq!(e.vendor_reference.as_deref(), Some("B25080823490018"));
        assert_eq!(e.iccid.as_deref(), Some("89852000263413436720"));
        assert_eq!(e.vendor_esim_ref.as_deref(), Some("25080323490020"));
        assert_eq!(
            e.occurred_at,
            Some(Utc.with_ymd_and_hms(2025, 8, 9, 0, 23, 45).unwrap())
        );
    }

    #[test]
    fn smdp_event_download_is_installed() {
        let e = one(
            r#"{"notifyType":"SMDP_EVENT","eventGenerateTime":"2025-09-11T13:28:09+0000","notifyId":"5fcc219e32dc484598d3fd700cf3738d","content":{"eid":"89049032007108882600137544319616","iccid":"8997250230000292199","esimStatus":"GOT_RESOURCE","smdpStatus":"DOWNLOAD","orderNo":"B25091113270004","esimTranNo":"25091113270004","transactionId":"12068951785848-1-1"}}"#,
        );
        assert_eq!(
            e.kind,
            VendorEventKind::EsimStatus {
                status: EsimStatus::Installed
            }
        );
        assert_eq!(e.dedupe_key, "esimaccess:5fcc219e32dc484598d3fd700cf3738d");
        assert_eq!(e.iccid.as_deref(), Some("8997250230000292199"));
        assert_eq!(e.order_id.as_deref(), Some("12068951785848-1-1"));
        assert_eq!(e.vendor_esim_ref.as_deref(), Some("25091113270004"));
        assert_eq!(
            e.occurred_at,
            Some(Utc.with_ymd_and_hms(2025, 9, 11, 13, 28, 9).unwrap())
        );
    }

    #[test]
    fn data_usage_example() {
        let e = one(
            r#"{"notifyType":"DATA_USAGE","eventGenerateTime":"2025-07-21T10:57:28Z","notifyId":"f776267e8d6745db8cc316e4c146ea0c","content":{"orderNo":"B25052822150009","transactionId":"unique_id_from_partner","esimTranNo":"25052822150009","iccid":"8943108170001029631","totalVolume":53687091200,"orderUsage":48335585458,"remain":5351505742,"lastUpdateTime":"2025-07-21T09:38:25Z","remainThreshold":0.1}}"#,
        );
        assert_eq!(
            e.kind,
            VendorEventKind::Usage {
                used_bytes: Some(48_335_585_458),
                total_bytes: Some(53_687_091_200),
                remaining_bytes: Some(5_351_505_742),
                threshold_percent: Some(90),
            }
        );
        assert_eq!(e.order_id.as_deref(), Some("unique_id_from_partner"));
        assert_eq!(e.iccid.as_deref(), Some("8943108170001029631"));
        assert_eq!(e.dedupe_key, "esimaccess:f776267e8d6745db8cc316e4c146ea0c");
    }

    #[test]
    fn validity_usage_example() {
        let e = one(
            r#"{"notifyType":"VALIDITY_USAGE","content":{"orderNo":"B23072016497499","transactionId":"Your_txn_id","iccid":"894310817000000003","durationUnit":"DAY","totalDuration":30,"expiredTime":"2024-01-11T08:10:19Z","remain":1}}"#,
        );
        assert_eq!(
            e.kind,
            VendorEventKind::ValidityEnding {
                expires_at: Some(Utc.with_ymd_and_hms(2024, 1, 11, 8, 10, 19).unwrap())
            }
        );
        assert_eq!(e.order_id.as_deref(), Some("Your_txn_id"));
        assert_eq!(e.iccid.as_deref(), Some("894310817000000003"));
    }

    #[test]
    fn check_health_is_a_ping() {
        let body = r#"{"notifyType":"CHECK_HEALTH","content":{"orderNo":"1234567890","orderStatus":"Test"}}"#;
        let e = one(body);
        assert_eq!(e.kind, VendorEventKind::Ping);
        // Same bytes, same key: a redelivery is recognised.
        assert_eq!(one(body).dedupe_key, e.dedupe_key);
    }

    #[test]
    fn every_callback_is_only_a_hint() {
        let h = CallbackHeaders::new();
        assert_eq!(verify(&h, b"{}").unwrap(), CallbackTrust::Hint);
        assert_eq!(verify(&h, b"tampered").unwrap(), CallbackTrust::Hint);
    }

    #[test]
    fn garbage_and_unknown_types() {
        assert!(matches!(
            parse(b"not json"),
            Err(VendorError::InvalidCallback(_))
        ));
        assert!(matches!(
            parse(br#"{"content":{}}"#),
            Err(VendorError::InvalidCallback(_))
        ));
        let e = one(r#"{"notifyType":"NEW_THING","content":{}}"#);
        assert_eq!(
            e.kind,
            VendorEventKind::Other {
                name: "NEW_THING".into()
            }
        );
    }

    #[test]
    fn thresholds_are_read_generically() {
        assert_eq!(percent_used("0.5".parse().unwrap()), Some(50));
        assert_eq!(percent_used("0.25".parse().unwrap()), Some(75));
        assert_eq!(percent_used("0.2".parse().unwrap()), Some(80));
        assert_eq!(percent_used("1.5".parse().unwrap()), None);
    }
}
