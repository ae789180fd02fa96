//! Vendor callbacks on their own routes: each vendor's authentication over the raw bytes,
//! storage before application, duplicates applied once, unsigned callbacks treated as hints.

use esim_gateway::domain::secret::ExposeSecret;
use std::time::Duration;

use base64::{Engine, engine::general_purpose::STANDARD};
use esim_gateway::{sandbox::SimSettings, vendors::VendorId};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::{helpers::assert_error_shape, sandbox_app::SandboxApp};

/// eSIM Go's callback signature: HMAC-SHA256 of the raw body under the API key.
pub(crate) fn esimgo_sign(key: &str, body: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(body);
    mac.finalize().into_bytes().into()
}

async fn events(s: &SandboxApp, vendor: &str) -> Vec<Value> {
    s.admin_get(&format!("/admin/vendor-events?vendor={vendor}"))
        .await["data"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn esimgo_callbacks_are_verified_over_the_raw_body_in_base64_or_hex() {
    let s = SandboxApp::start().await;
    let key = s.esimgo_api_key();
    let body = br#"{"iccid":"8900000000000000001","alertType":"BundleStarted"}"#;
    let sig = esimgo_sign(&key, body);
    let post = |body: Vec<u8>, sig: Option<String>| {
        let mut req = s
            .app
            .post("/webhooks/esimgo")
            .header("content-type", "application/json")
            .body(body);
        if let Some(sig) = sig {
            req = req.header("X-Signature-SHA256", sig);
        }
        req.send()
    };
    let resp = post(body.to_vec(), Some(STANDARD.encode(sig)))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // The hex form of the same signature is accepted too; the same event is stored once.
    let resp = post(body.to_vec(), Some(hex::encode(sig))).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(events(&s, "esimgo").await.len(), 1);

    // Tampered body, missing header, wrong key: 401 and nothing stored.
    let tampered = br#"{"iccid":"8900000000000000002","alertType":"BundleStarted"}"#.to_vec();
    assert_error_shape(
        post(tampered, Some(STANDARD.encode(sig))).await.unwrap(),
        401,
    )
    .await;
    assert_error_shape(post(body.to_vec(), None).await.unwrap(), 401).await;
    let wrong = esimgo_sign("not-the-key", body);
    assert_error_shape(
        post(body.to_vec(), Some(STANDARD.encode(wrong)))
            .await
            .unwrap(),
        401,
    )
    .await;
    assert_eq!(events(&s, "esimgo").await.len(), 1);

    // Signed but not understood: stored for admins, answered 400.
    let garbage = b"not json at all".to_vec();
    let sig = STANDARD.encode(esimgo_sign(&key, &garbage));
    assert_error_shape(post(garbage, Some(sig)).await.unwrap(), 400).await;
    let stored = events(&s, "esimgo").await;
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0]["status"], "unparseable");

    // An account alert: normalized as low balance and applied (logged and counted).
    let alert = br#"{"alertType":"LowBalance","balanceInfo":{"balance":12.5,"threshold":100,"thresholdPercentRemaining":12.5}}"#.to_vec();
    let sig = STANDARD.encode(esimgo_sign(&key, &alert));
    assert_eq!(post(alert, Some(sig)).await.unwrap().status(), 200);
    let stored = events(&s, "esimgo").await;
    assert_eq!(stored[0]["kind"], "low_balance");
    assert_eq!(stored[0]["status"], "applied");
}

#[tokio::test]
async fn esimfx_callbacks_need_the_shared_token() {
    let s = SandboxApp::start().await;
    let token = s
        .sandbox
        .credentials
        .esimfx
        .as_ref()
        .unwrap()
        .webhook_token
        .as_ref()
        .expect("sandbox eSIMfx has a webhook token")
        .expose_secret()
        .to_string();
    let body = json!({"event_type": "DATA_USAGE", "iccid": "8944000000000000001", "threshold": 80,
                      "used_amount": 8589934592u64, "upper_limit_amount": 10737418240u64,
                      "amount_unit": "Byte", "timestamp": "2025-10-01T10:00:00Z"});
    let send = |t: Option<&str>| {
        let mut req = s.app.post("/webhooks/esimfx").json(&body);
        if let Some(t) = t {
            req = req.header("token", t);
        }
        req.send()
    };
    assert_error_shape(send(None).await.unwrap(), 401).await;
    assert_error_shape(send(Some("wrong-token")).await.unwrap(), 401).await;
    assert!(events(&s, "esimfx").await.is_empty());
    let resp = send(Some(&token)).await.unwrap();
    assert_eq!(resp.status(), 200);
    let stored = events(&s, "esimfx").await;
    assert_eq!(stored.len(), 1);
    // The secret header is never stored.
    assert!(!stored[0]["headers"].to_string().contains(&token));
}

/// The sandbox's slow allocation leaves the order `provisioning` long enough to forge.
async fn provisioning_order(s: &SandboxApp, vendor: VendorId) -> Option<(String, Value)> {
    let (plan, _) = tokio::time::timeout(Duration::from_secs(30), s.plan_with(1, Some(vendor)))
        .await
        .ok()?;
    let (_, order) = s
        .post_order(&format!("k-forge-{vendor}"), &json!({"plan_id": plan}))
        .await;
    assert_eq!(order["status"], "provisioning", "{vendor}: {order}");
    Some((order["id"].as_str().unwrap().to_string(), order))
}

#[tokio::test]
async fn unsigned_callbacks_are_hints_that_never_complete_an_order_by_themselves() {
    let settings = SimSettings {
        provisioning_delay: Duration::from_secs(3),
        callbacks_enabled: false,
        ..SimSettings::fast()
    };
    let s = SandboxApp::start_with(settings, &[("PROVISION_RETRY_BASE", "100ms")]).await;
    // Multiverse's asynchronous route (its `/sync` would answer with the eSIM at once).
    s.sandbox.multiverse.set_offered(
        esim_gateway::vendors::multiverse::sim::ops::ORDER_SYNC,
        false,
    );
    let forged_iccid = "8999999999999999999";
    let mut checked = 0;
    for vendor in [
        VendorId::EsimAccess,
        VendorId::MicroEsim,
        VendorId::Multiverse,
    ] {
        let Some((id, _)) = provisioning_order(&s, vendor).await else {
            continue;
        };
        let admin = s.admin_order(&id).await;
        let reference = admin["vendor_reference"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let resp = match vendor {
            VendorId::EsimAccess => s
                .app
                .post("/webhooks/esimaccess")
                .json(&json!({"notifyType": "ORDER_STATUS",
                              "content": {"orderNo": reference, "transactionId": id, "orderStatus": "GOT_RESOURCE"}}))
                .send()
                .await
                .unwrap(),
            VendorId::MicroEsim => s
                .app
                .post("/webhooks/microesim")
                .form(&[("topup_id", reference.as_str()), ("number", "1"), ("device_id", "9000000000000001"),
                        ("lpa_str", "LPA:1$forged.example$FORGED"), ("create_time", "2026-11-23 10:00:00")])
                .send()
                .await
                .unwrap(),
            _ => s
                .app
                .post("/webhooks/multiverse")
                .json(&json!({"customer_order_id": id, "order_id": reference, "iccid": forged_iccid,
                              "smdp": "forged.example", "activation_code": "FORGED", "status": "SUCCESS"}))
                .send()
                .await
                .unwrap(),
        };
        assert_eq!(resp.status(), 200, "{vendor}");
        tokio::time::sleep(Duration::from_millis(400)).await;
        let o = s.get(&format!("/v1/orders/{id}")).await;
        assert_eq!(
            o["status"], "provisioning",
            "{vendor}: a hint alone completed the order: {o}"
        );
        // Once the vendor really allocates, the order completes with the vendor's ICCID.
        let done = s.settle(&id, Duration::from_secs(10)).await;
        assert_eq!(done["status"], "completed", "{vendor}: {done}");
        let iccid = done["esims"][0]["iccid"].as_str().unwrap();
        assert_ne!(iccid, forged_iccid);
        assert!(
            !done["esims"][0]["activation"]["lpa"]
                .as_str()
                .unwrap()
                .contains("forged")
        );
        checked += 1;
    }
    assert!(
        checked >= 1,
        "no asynchronous unsigned vendor was cheapest for any plan"
    );
}

#[tokio::test]
async fn callbacks_from_senders_outside_the_allowlist_are_refused() {
    let s = SandboxApp::start_with(
        SimSettings::fast(),
        &[
            ("ESIMACCESS_CALLBACK_IPS", "3.1.131.226,54.254.74.88"),
            ("PROVISION_RETRY_BASE", "100ms"),
        ],
    )
    .await;
    let resp = s
        .app
        .post("/webhooks/esimaccess")
        .json(&json!({"notifyType": "CHECK_HEALTH", "content": {"orderNo": "1234567890", "orderStatus": "Test"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(assert_error_shape(resp, 403).await, "sender_not_allowed");
    // Other vendors have no allowlist.
    let resp = s
        .app
        .post("/webhooks/multiverse")
        .json(&json!({"customer_order_id": "ord_unknown", "iccid": "8900000000000000001", "smdp": "x", "activation_code": "y"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

/// For each vendor: an order bought there (every other vendor refusing) makes its simulator
/// call back the vendor's way, and the gateway accepts and applies the callback.
#[tokio::test]
async fn every_vendors_own_callbacks_are_accepted_and_applied() {
    let s = SandboxApp::start().await;
    // Multiverse calls back only after its asynchronous purchase (`/sync` answers at once).
    s.sandbox.multiverse.set_offered(
        esim_gateway::vendors::multiverse::sim::ops::ORDER_SYNC,
        false,
    );
    // eSIMfx only calls back when something happens to an eSIM: let it activate itself.
    s.sandbox.esimfx.set_auto_activation(true);
    for vendor in VendorId::ALL {
        s.sandbox.set_settings(SimSettings::fast());
        for other in VendorId::ALL.into_iter().filter(|o| *o != vendor) {
            s.core(other).faults.clear();
            s.core(other)
                .faults
                .inject_times("order", crate::orders::sold_out(other), None);
        }
        s.core(vendor).faults.clear();
        let plan = s.plan_carried_by(vendor).await;
        let (_, order) = s
            .post_order(&format!("k-cb-{vendor}"), &json!({"plan_id": plan}))
            .await;
        let id = order["id"].as_str().unwrap().to_string();
        let done = s.settle(&id, Duration::from_secs(10)).await;
        assert_eq!(done["status"], "completed", "{vendor}: {done}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let evs = events(&s, vendor.as_str()).await;
            let delivered = s.core(vendor).deliveries();
            if !delivered.is_empty() && !evs.is_empty() {
                assert!(
                    delivered.iter().all(|d| d.status == Some(200)),
                    "{vendor}: {delivered:?}"
                );
                assert!(
                    evs.iter().all(|e| matches!(
                        e["status"].as_str(),
                        Some("applied" | "matched_hint" | "ignored" | "waiting")
                    )),
                    "{vendor}: {evs:?}"
                );
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{vendor}: no callback arrived"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn esim_status(s: &SandboxApp, iccid: &str) -> String {
    s.get("/v1/orders?limit=200").await["data"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|o| o["esims"].as_array().unwrap().clone())
        .find(|e| e["iccid"] == iccid)
        .map(|e| e["status"].as_str().unwrap().to_string())
        .unwrap()
}

#[tokio::test]
async fn an_older_event_arriving_after_a_newer_one_never_moves_an_esim_backwards() {
    let s = SandboxApp::start().await;
    for other in VendorId::ALL.into_iter().filter(|v| *v != VendorId::EsimFx) {
        s.core(other)
            .faults
            .inject_times("order", crate::orders::sold_out(other), None);
    }
    let plan = s.plan_carried_by(VendorId::EsimFx).await;
    let (_, order) = s
        .post_order("k-order-of-events", &json!({"plan_id": plan}))
        .await;
    let done = s
        .settle(order["id"].as_str().unwrap(), Duration::from_secs(10))
        .await;
    let iccid = done["esims"][0]["iccid"].as_str().unwrap().to_string();
    let token = s.esimfx_webhook_token();
    let now = chrono::Utc::now();
    let send = |event: &str, at: chrono::DateTime<chrono::Utc>| {
        s.app
            .post("/webhooks/esimfx")
            .header("token", token.clone())
            .json(&json!({"event_type": event, "iccid": iccid, "timestamp": at.to_rfc3339()}))
            .send()
    };
    assert_eq!(
        send("ACTIVATION", now - chrono::Duration::minutes(1))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(esim_status(&s, &iccid).await, "active");
    // An expiry dated before the activation arrives late: it is stored, not applied.
    assert_eq!(
        send("EXPIRATION", now - chrono::Duration::minutes(2))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(esim_status(&s, &iccid).await, "active");
    // The same activation delivered again is acknowledged and stored once.
    assert_eq!(
        send("ACTIVATION", now - chrono::Duration::minutes(1))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(events(&s, "esimfx").await.len(), 2);
}

#[tokio::test]
async fn a_callback_that_races_the_purchase_is_kept_and_applied_when_the_esim_appears() {
    let s = SandboxApp::start().await;
    s.sandbox.esimfx.set_auto_activation(true);
    for other in VendorId::ALL.into_iter().filter(|v| *v != VendorId::EsimFx) {
        s.core(other)
            .faults
            .inject_times("order", crate::orders::sold_out(other), None);
    }
    // eSIMfx takes the order but answers after our timeout; meanwhile its activation
    // callback names an ICCID the gateway has never seen.
    s.fault(
        VendorId::EsimFx,
        "order",
        esim_gateway::sandbox::Fault::Delay { millis: 2500 },
    );
    let plan = s.plan_carried_by(VendorId::EsimFx).await;
    let (_, order) = s.post_order("k-race", &json!({"plan_id": plan})).await;
    let id = order["id"].as_str().unwrap().to_string();
    let evs = events(&s, "esimfx").await;
    assert!(evs.iter().any(|e| e["status"] == "waiting"), "{evs:?}");
    let done = s.settle(&id, Duration::from_secs(15)).await;
    assert_eq!(done["status"], "completed");
    let iccid = done["esims"][0]["iccid"].as_str().unwrap().to_string();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while esim_status(&s, &iccid).await != "active" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the waiting event was never applied"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let evs = events(&s, "esimfx").await;
    assert!(evs.iter().all(|e| e["status"] == "applied"), "{evs:?}");
}
