//! The provisioning callback: POSTed to the URL registered at onboarding once an order's
//! eSIM is allocated ("within 1 minute", seed §eSIM Purchase API Workflow). Its payload is
//! undocumented; we read the order object of [`super::assumptions`]. Nothing signs it, so it
//! is only ever a hint: the gateway matches it to an order it placed and re-reads the order.

use axum::http::HeaderMap;

use super::{assumptions, wire};
use crate::vendors::{CallbackTrust, VendorError, VendorEvent, VendorEventKind};

/// The vendor signs nothing (no signature, secret or token is documented); the sender-IP
/// allowlist is applied by the HTTP layer. So every callback is a [`CallbackTrust::Hint`].
pub fn verify_callback(
    _headers: &HeaderMap,
    _raw_body: &[u8],
) -> Result<CallbackTrust, VendorError> {
    Ok(CallbackTrust::Hint)
}

pub fn parse_callback(raw_body: &[u8]) -> Result<Vec<VendorEvent>, VendorError> {
    let order: wire::Order = serde_json::from_slice(raw_body)
        .map_err(|e| VendorError::InvalidCallback(format!("not a Multiverse order object: {e}")))?;
    let customer_order_id = order
        .customer_order_id
        .clone()
        .filter(|s| !s.trim().is_empty());
    let vendor_order_id = order.order_id.clone().filter(|s| !s.trim().is_empty());
    let Some(identity) = vendor_order_id
        .clone()
        .or_else(|| customer_order_id.clone())
    else {
        return Err(VendorError::InvalidCallback(
            "callback names no order (neither order_id nor customer_order_id)".into(),
        ));
    };
    let profile = order.profile();
    let kind = if order.is_failed() {
        VendorEventKind::OrderFailed
    } else if profile.is_some() {
        // Activation data present means allocated, whatever the (unknown) status word says.
        VendorEventKind::OrderReady
    } else {
        VendorEventKind::Other {
            name: order.status.clone().unwrap_or_else(|| "unknown".into()),
        }
    };
    let iccid = order.iccid.clone().filter(|s| !s.trim().is_empty());
    let discriminator = iccid
        .clone()
        .or_else(|| order.status.clone())
        .unwrap_or_default();
    Ok(vec![VendorEvent {
        dedupe_key: format!("order:{identity}:{discriminator}"),
        kind,
        order_id: customer_order_id
            .as_deref()
            .map(|c| assumptions::our_order_id(c).to_string()),
        vendor_reference: vendor_order_id,
        iccid,
        vendor_esim_ref: order.order_id.clone(),
        profile,
        occurred_at: wire::time(order.updated_at.as_deref()),
    }])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendors::EsimStatus;

    /// The plausible payload in `shared/vendors/multiverse.md` §4, verbatim.
    #[test]
    fn vendor_file_callback_example_is_an_order_ready_hint() {
        let body = br#"{ "customer_order_id": "ORD-123", "order_id": "...", "package_id": "...",
  "iccid": "89...", "smdp": "rsp.example.com", "activation_code": "ABC-123", "status": "..." }"#;
        assert_eq!(
            verify_callback(&HeaderMap::new(), body).unwrap(),
            CallbackTrust::Hint
        );
        let events = parse_callback(body).unwrap();
        assert_eq!(events.len(), 1);
        let e = &events[0];
        assert_eq!(e.kind, VendorEventKind::OrderReady);
        assert_eq!(e.dedupe_key, "order:...:89...");
        // A foreign reference is not mistaken for one of our suffixed ids.
        assert_eq!(e.order_id.as_deref(), Some("ORD-123"));
        assert_eq!(e.vendor_reference.as_deref(), Some("..."));
        assert_eq!(e.iccid.as_deref(), Some("89..."));
        let p = e.profile.as_ref().unwrap();
        assert_eq!(p.iccid, "89...");
        assert_eq!(p.activation.lpa, "LPA:1$rsp.example.com$ABC-123");
        assert_eq!(p.activation.smdp_address, "rsp.example.com");
        assert_eq!(p.activation.matching_id, "ABC-123");
        assert_eq!(p.status, EsimStatus::Ready);
    }

    #[test]
    fn per_esim_suffix_is_stripped_to_our_order_id() {
        let body = br#"{"customer_order_id":"ord_01JABC-2","order_id":"MV7","package_id":"p",
            "iccid":"8985200000000000017","smdp":"rsp.x","activation_code":"K-1","status":"COMPLETED"}"#;
        let e = &parse_callback(body).unwrap()[0];
        assert_eq!(e.order_id.as_deref(), Some("ord_01JABC"));
        assert_eq!(e.dedupe_key, "order:MV7:8985200000000000017");
    }

    #[test]
    fn failed_and_odd_callbacks() {
        let e =
            &parse_callback(br#"{"customer_order_id":"ord_1","order_id":"MV8","status":"FAILED"}"#)
                .unwrap()[0];
        assert_eq!(e.kind, VendorEventKind::OrderFailed);
        assert!(e.profile.is_none());
        assert_eq!(e.dedupe_key, "order:MV8:FAILED");
        assert!(matches!(
            parse_callback(b"not json"),
            Err(VendorError::InvalidCallback(_))
        ));
        assert!(matches!(
            parse_callback(br#"{"status":"COMPLETED"}"#),
            Err(VendorError::InvalidCallback(_))
        ));
    }
}
