//! The `topupDetail-async` push (see `README.md`): one eSIM per request, unsigned, sent as
//! JSON `{"code":1,"msg":"Success","data":{…}}` in the collection's example but listed as
//! form fields too, so both are read.

use super::wire::{self, Push};
use crate::vendors::{
    CallbackHeaders, CallbackTrust, EsimProfile, EsimStatus, VendorError, VendorEvent,
    VendorEventKind, lpa,
};

/// The summary of `POST /webhooks/microesim` in the OpenAPI document.
pub const ROUTE_SUMMARY: &str =
    "MicroEsim topupDetail-async push, form or JSON (unsigned: a hint).";

/// Headers worth keeping with a stored event beyond the common ones: none.
pub const KEPT_HEADERS: &[&str] = &[];

/// [assumption] The push expects MicroEsim's own success envelope back (the collection shows
/// no answer; every MicroEsim API answer has this shape, and any 2xx may be enough).
pub fn acknowledgement() -> serde_json::Value {
    serde_json::json!({"code": 1, "msg": "Success"})
}

/// The push carries no signature or token: it can only prompt a signed `topupDetail` read.
pub fn verify_callback(
    _headers: &CallbackHeaders,
    _raw_body: &[u8],
) -> Result<CallbackTrust, VendorError> {
    Ok(CallbackTrust::Hint)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Form,
}

/// The Content-Type decides; without a usable one, a body starting with `{` is JSON.
fn format_of(headers: &CallbackHeaders, raw_body: &[u8]) -> Format {
    let content_type = headers
        .get("content-type")
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.contains("json") {
        Format::Json
    } else if content_type.contains("x-www-form-urlencoded") {
        Format::Form
    } else if raw_body.trim_ascii_start().starts_with(b"{") {
        Format::Json
    } else {
        Format::Form
    }
}

/// The push's fields and, for the JSON form, its envelope code.
fn read(headers: &CallbackHeaders, raw_body: &[u8]) -> Result<(Option<i64>, Push), String> {
    match format_of(headers, raw_body) {
        Format::Json => {
            let value: serde_json::Value =
                serde_json::from_slice(raw_body).map_err(|e| format!("not JSON: {e}"))?;
            let code = value.get("code").and_then(|c| match c {
                serde_json::Value::Number(n) => n.as_i64(),
                serde_json::Value::String(s) => s.trim().parse().ok(),
                _ => None,
            });
            // Tolerate a bare object without the envelope.
            let data = value.get("data").cloned().unwrap_or(value);
            let push = serde_json::from_value(data).map_err(|e| format!("bad data: {e}"))?;
            Ok((code, push))
        }
        Format::Form => {
            let push =
                serde_urlencoded::from_bytes(raw_body).map_err(|e| format!("bad form: {e}"))?;
            Ok((None, push))
        }
    }
}

pub fn parse_callback(
    headers: &CallbackHeaders,
    raw_body: &[u8],
) -> Result<Vec<VendorEvent>, VendorError> {
    let (code, push) = read(headers, raw_body).map_err(VendorError::InvalidCallback)?;
    let topup_id = push.topup_id.trim().to_string();
    if topup_id.is_empty() {
        return Err(VendorError::InvalidCallback("push without topup_id".into()));
    }
    let device_id = push.device_id.trim().to_string();
    let nonempty = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_string());
    // Only a valid ICCID is one: the device id is the per-eSIM key (see
    // "ICCID source" in `assumptions`), and without an ICCID the push carries no profile.
    let iccid = nonempty(&push.operator_iccid).filter(|i| crate::vendors::iccid::is_valid(i));
    let profile = match (lpa::parse(&push.lpa_str), &iccid) {
        (Some(activation), Some(iccid)) => Some(EsimProfile {
            iccid: iccid.clone(),
            activation,
            vendor_esim_ref: nonempty(&device_id),
            status: EsimStatus::Ready,
            expires_at: None,
        }),
        _ => None,
    };
    // Pushes are sent on "Success" only; a different code would be an undocumented failure.
    let kind = match code {
        Some(c) if c != super::assumptions::codes::SUCCESS => VendorEventKind::OrderFailed,
        _ => VendorEventKind::OrderReady,
    };
    Ok(vec![VendorEvent {
        dedupe_key: format!("topup:{topup_id}:{device_id}"),
        kind,
        order_id: nonempty(&push.custom_order_no),
        vendor_reference: Some(topup_id),
        iccid,
        vendor_esim_ref: nonempty(&device_id),
        sku: None,
        profile,
        // `create_time` is when the order was made, not when this event happened.
        occurred_at: None,
    }])
}

/// When the order behind a push was created (UTC), for logs and admins.
pub fn created_at(push: &Push) -> Option<chrono::DateTime<chrono::Utc>> {
    wire::parse_vendor_time(&push.create_time)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendors::microesim::wire::tests::PUSH;

    fn headers(content_type: Option<&'static str>) -> CallbackHeaders {
        let mut h = CallbackHeaders::new();
        if let Some(ct) = content_type {
            h.insert("content-type", ct);
        }
        h
    }

    #[test]
    fn pushes_are_hints_whatever_they_carry() {
        assert_eq!(
            verify_callback(&headers(None), b"anything").unwrap(),
            CallbackTrust::Hint
        );
    }

    fn assert_example_event(events: Vec<VendorEvent>) {
        assert_eq!(events.len(), 1);
        let e = &events[0];
        assert_eq!(
            e.dedupe_key,
            "topup:202308161431187762753800:9000024081603874"
        );
        assert_eq!(e.kind, VendorEventKind::OrderReady);
        assert_eq!(
            e.vendor_reference.as_deref(),
            Some("202308161431187762753800")
        );
        assert_eq!(e.vendor_esim_ref.as_deref(), Some("9000024081603874"));
        // The example's 16-digit device id is not an ICCID: no ICCID, no profile; the hint
        // still makes the gateway re-read the order.
        assert_eq!(e.iccid, None);
        assert_eq!(e.order_id, None);
        assert!(e.profile.is_none());
    }

    #[test]
    fn json_push_example_is_an_order_ready_event() {
        assert_example_event(
            parse_callback(&headers(Some("application/json")), PUSH.as_bytes()).unwrap(),
        );
        // Without a Content-Type the body is sniffed.
        assert_example_event(parse_callback(&headers(None), PUSH.as_bytes()).unwrap());
        let value: serde_json::Value = serde_json::from_str(PUSH).unwrap();
        let push: Push = serde_json::from_value(value["data"].clone()).unwrap();
        assert_eq!(push.number, "1");
        assert_eq!(push.msisdn, "482222233223");
        assert_eq!(push.cf_code, "000888");
        assert_eq!(
            created_at(&push).map(|t| t.to_rfc3339()),
            Some("2023-04-27T07:39:47+00:00".into())
        );
    }

    #[test]
    fn form_push_with_the_same_fields_parses_the_same() {
        let value: serde_json::Value = serde_json::from_str(PUSH).unwrap();
        let fields: Vec<(String, String)> = value["data"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect();
        let body = serde_urlencoded::to_string(&fields).unwrap();
        let form = Some("application/x-www-form-urlencoded; charset=UTF-8");
        assert_example_event(parse_callback(&headers(form), body.as_bytes()).unwrap());
        assert_example_event(
            parse_callback(&headers(Some("text/plain")), body.as_bytes()).unwrap(),
        );
    }

    #[test]
    fn operator_iccid_and_custom_order_no_are_used_when_present() {
        let body = "topup_id=T9&device_id=9000000000000001&lpa_str=LPA%3A1%24smdp.example%24XYZ\
                    &operator_iccid=8985200000000000002&custom_order_no=ord_1";
        let events = parse_callback(&headers(None), body.as_bytes()).unwrap();
        let e = &events[0];
        assert_eq!(e.iccid.as_deref(), Some("8985200000000000002"));
        assert_eq!(e.profile.as_ref().unwrap().iccid, "8985200000000000002");
        assert_eq!(e.order_id.as_deref(), Some("ord_1"));
        assert_eq!(e.dedupe_key, "topup:T9:9000000000000001");
    }

    #[test]
    fn pushes_without_an_order_or_unreadable_are_invalid() {
        for body in [&b"{\"code\":1,\"data\":{}}"[..], b"{not json", b"number=1"] {
            let err = parse_callback(&headers(None), body).unwrap_err();
            assert!(matches!(err, VendorError::InvalidCallback(_)), "{err:?}");
        }
        let failed =
            parse_callback(&headers(None), br#"{"code":1010,"data":{"topup_id":"T"}}"#).unwrap();
        assert_eq!(failed[0].kind, VendorEventKind::OrderFailed);
        assert_eq!(failed[0].profile, None);
    }
}
