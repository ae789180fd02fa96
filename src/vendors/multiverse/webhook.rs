//! The provisioning callback: POSTed to the URL registered at onboarding once an order's
//! eSIM is allocated ("within 1 minute", seed §eSIM Purchase API Workflow). Its payload is
//! undocumented; we read the order object of [`super::assumptions`]. Nothing signs it, so it
//! is only ever a hint: the gateway matches it to an order it placed and re-reads the order.

use super::{assumptions, wire};
use crate::vendors::{
    CallbackHeaders, CallbackTrust, EsimProfile, VendorError, VendorEvent, VendorEventKind,
    VendorOrderRef, iccid,
};

/// The summary of `POST /webhooks/multiverse` in the OpenAPI document.
pub const ROUTE_SUMMARY: &str = "Multiverse provisioning callback (unsigned: a hint).";

/// Headers worth keeping with a stored event beyond the common ones: none.
pub const KEPT_HEADERS: &[&str] = &[];

/// What the HTTP route answers an accepted callback with (also for a duplicate).
pub fn acknowledgement() -> serde_json::Value {
    serde_json::json!({"received": true})
}

/// The vendor signs nothing (no signature, secret or token is documented); the sender-IP
/// allowlist is applied by the HTTP layer. So every callback is a [`CallbackTrust::Hint`].
pub fn verify_callback(
    _headers: &CallbackHeaders,
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
        sku: order.package_id.clone().filter(|s| !s.trim().is_empty()),
        profile,
        occurred_at: wire::time(order.updated_at.as_deref()),
    }])
}

/// Multiverse documents no order query, so an unsigned provisioning callback is the only
/// news of an allocated eSIM. It may complete an order only when it matches what we placed
/// in every detail; `Ok` carries the profile to apply, `Err` the first mismatch:
///
/// - it is an "order ready" event for our order id (`customer_order_id`, per-eSIM suffix
///   removed) and the package our attempt bought;
/// - when our purchase answer gave us vendor order ids, its `order_id` is one of them;
/// - its ICCID is a valid ICCID that no other order of ours owns (`placed.owned_iccids`;
///   the caller also checks the database);
/// - its SM-DP+ address is a plausible host name and its matching id a plausible code, and
///   the LPA string is built from exactly those two.
///
/// The order still being provisioning is the caller's check.
pub fn matches_placed(ev: &VendorEvent, placed: &VendorOrderRef) -> Result<EsimProfile, String> {
    if ev.kind != VendorEventKind::OrderReady {
        return Err("not an order-ready event".into());
    }
    if ev.order_id.as_deref() != Some(placed.order_id.as_str()) {
        return Err(format!(
            "customer_order_id {:?} is not order {}",
            ev.order_id, placed.order_id
        ));
    }
    match (ev.sku.as_deref(), placed.sku.as_deref()) {
        (Some(got), Some(sent)) if got == sent => {}
        (got, sent) => {
            return Err(format!("package {got:?} is not the one bought ({sent:?})"));
        }
    }
    let known: Vec<&str> = placed
        .vendor_reference
        .iter()
        .flat_map(|r| r.split(','))
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .collect();
    if !known.is_empty()
        && !ev
            .vendor_reference
            .as_deref()
            .is_some_and(|r| known.contains(&r.trim()))
    {
        return Err(format!(
            "vendor order {:?} is not one our purchase was answered with",
            ev.vendor_reference
        ));
    }
    let profile = ev
        .profile
        .clone()
        .ok_or_else(|| "no activation data".to_string())?;
    if !iccid::is_valid(&profile.iccid) || ev.iccid.as_deref() != Some(profile.iccid.as_str()) {
        return Err(format!("{:?} is not a valid ICCID", profile.iccid));
    }
    if placed.owned_iccids.contains(&profile.iccid) {
        return Err(format!(
            "ICCID {} already belongs to another order",
            profile.iccid
        ));
    }
    let a = &profile.activation;
    if !plausible_host(&a.smdp_address) {
        return Err(format!(
            "{:?} is not a plausible SM-DP+ address",
            a.smdp_address
        ));
    }
    if !plausible_matching_id(&a.matching_id) {
        return Err(format!(
            "{:?} is not a plausible matching id",
            a.matching_id
        ));
    }
    if a.lpa != format!("LPA:1${}${}", a.smdp_address, a.matching_id) {
        return Err("the LPA string does not match its address and matching id".into());
    }
    Ok(profile)
}

/// A DNS host name: dot-separated labels of letters, digits and inner hyphens, a letter in
/// the last label.
fn plausible_host(host: &str) -> bool {
    let labels: Vec<&str> = host.split('.').collect();
    host.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
        && labels
            .last()
            .is_some_and(|l| l.bytes().any(|b| b.is_ascii_alphabetic()))
}

/// SGP.22 matching ids are short codes of letters, digits and hyphens.
fn plausible_matching_id(id: &str) -> bool {
    (4..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(iccid: &str, smdp: &str, code: &str, package: &str, order: &str) -> VendorEvent {
        let body = serde_json::json!({
            "customer_order_id": "ord_01J", "order_id": order, "package_id": package,
            "iccid": iccid, "smdp": smdp, "activation_code": code, "status": "COMPLETED",
        });
        parse_callback(body.to_string().as_bytes())
            .unwrap()
            .remove(0)
    }

    fn placed() -> VendorOrderRef {
        VendorOrderRef::new("ord_01J", chrono::Utc::now())
            .with_attempt("mv_jp_1gb", 1)
            .with_vendor_reference(Some("MV1".into()))
    }

    #[test]
    fn a_callback_completes_an_order_only_when_it_matches_what_we_placed() {
        let good = ready(
            "8944538532008160222",
            "rsp.example.com",
            "ABCD-1234",
            "mv_jp_1gb",
            "MV1",
        );
        let p = matches_placed(&good, &placed()).unwrap();
        assert_eq!(p.iccid, "8944538532008160222");
        assert_eq!(p.activation.lpa, "LPA:1$rsp.example.com$ABCD-1234");
        // Without a vendor order id from the purchase answer (it was lost), the rest decides.
        let lost = placed().with_vendor_reference(None);
        assert!(matches_placed(&good, &lost).is_ok());
        let mismatches = [
            ready(
                "8944538532008160222",
                "rsp.example.com",
                "ABCD-1234",
                "mv_fr_1gb",
                "MV1",
            ),
            ready(
                "8944538532008160222",
                "rsp.example.com",
                "ABCD-1234",
                "mv_jp_1gb",
                "MV2",
            ),
            ready(
                "8944538532008160223",
                "rsp.example.com",
                "ABCD-1234",
                "mv_jp_1gb",
                "MV1",
            ),
            ready(
                "9000024081603874",
                "rsp.example.com",
                "ABCD-1234",
                "mv_jp_1gb",
                "MV1",
            ),
            ready(
                "8944538532008160222",
                "localhost",
                "ABCD-1234",
                "mv_jp_1gb",
                "MV1",
            ),
            ready(
                "8944538532008160222",
                "rsp example.com",
                "ABCD-1234",
                "mv_jp_1gb",
                "MV1",
            ),
            ready(
                "8944538532008160222",
                "rsp.example.com",
                "A$B",
                "mv_jp_1gb",
                "MV1",
            ),
        ];
        for ev in &mismatches {
            assert!(matches_placed(ev, &placed()).is_err(), "{ev:?}");
        }
        let mut other = placed();
        other.order_id = "ord_other".into();
        assert!(matches_placed(&good, &other).is_err());
        let mut owned = placed();
        owned.owned_iccids = vec!["8944538532008160222".into()];
        assert!(matches_placed(&good, &owned).is_err());
    }
    use crate::vendors::EsimStatus;

    /// The plausible payload `README.md` describes.
    #[test]
    fn vendor_file_callback_example_is_an_order_ready_hint() {
        let body = br#"{ "customer_order_id": "ORD-123", "order_id": "...", "package_id": "...",
  "iccid": "89...", "smdp": "rsp.example.com", "activation_code": "ABC-123", "status": "..." }"#;
        assert_eq!(
            verify_callback(&CallbackHeaders::new(), body).unwrap(),
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
