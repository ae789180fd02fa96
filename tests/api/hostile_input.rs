//! Hostile input at the edge: control characters, oversized and malformed ids never reach
//! Postgres (which rejects NUL in text); every one is a clear 4xx in the error shape.

use base64::{Engine, engine::general_purpose::STANDARD};
use reqwest::Method;
use serde_json::{Value, json};

use crate::{
    helpers::{TestApp, assert_error_shape},
    sandbox_app::SandboxApp,
    webhooks::esimgo_sign,
};

async fn storefront_app() -> (TestApp, String) {
    let app = TestApp::spawn().await;
    let sf = app.create_storefront("Hostile Shop").await;
    (app, sf.api_key)
}

#[tokio::test]
async fn control_characters_in_json_bodies_are_422() {
    let (app, key) = storefront_app().await;
    for body in [
        r#"{"plan_id":"jp-1gb-7d","reference":"a\u0000b"}"#,
        r#"{"plan_id":"jp-1\u0000gb-7d"}"#,
        r#"{"plan_id":"jp-1gb-7d","customer_email":"a@b.co\r\nBcc: x@y.z"}"#,
        r#"{"plan_id":"jp-1gb-7d","reference":"tab\there"}"#,
    ] {
        let resp = app
            .post("/v1/orders")
            .bearer_auth(&key)
            .header("Idempotency-Key", "k-1")
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let code = assert_error_shape(resp, 422).await;
        assert!(code.starts_with("invalid_"), "{body}: {code}");
    }
    let resp = app
        .admin(Method::POST, "/admin/storefronts")
        .header("content-type", "application/json")
        .body(r#"{"name":"Shop\u0000"}"#)
        .send()
        .await
        .unwrap();
    assert_error_shape(resp, 422).await;
    // Trimming does not hide a control character at either end (the documented pattern
    // refuses it anywhere); the operator's failure reason is held to the same rule.
    let resp = app
        .admin(Method::POST, "/admin/storefronts")
        .json(&serde_json::json!({"name": "Shop\r\n"}))
        .send()
        .await
        .unwrap();
    assert_error_shape(resp, 422).await;
    for reason in ["gave up\n", "\u{8e}gave up", " ", &"x".repeat(501)] {
        let resp = app
            .admin(
                Method::POST,
                "/admin/orders/ord_00000000000000000000000000/fail",
            )
            .json(&serde_json::json!({ "reason": reason }))
            .send()
            .await
            .unwrap();
        assert_eq!(
            assert_error_shape(resp, 422).await,
            "invalid_body",
            "{reason:?}"
        );
    }
    // The body of the optional-JSON endpoint is checked too.
    let sf = app.create_storefront("Other").await;
    let resp = app
        .admin(Method::POST, &format!("/admin/storefronts/{}/keys", sf.id))
        .header("content-type", "application/json")
        .body("{\"revoke_others\": \"\\u0000\"}")
        .send()
        .await
        .unwrap();
    assert_error_shape(resp, 422).await;
}

#[tokio::test]
async fn ids_that_cannot_exist_are_404_without_a_query() {
    let (app, key) = storefront_app().await;
    for path in [
        "/v1/orders/%00",
        "/v1/orders/ord_%00",
        "/v1/orders/not-an-order",
        "/v1/esims/%00",
        "/v1/esims/%00/usage",
        "/v1/esims/123/qr.png",
        "/v1/esims/8910300000000000019%00/topup-plans",
        "/v1/plans/%00",
    ] {
        let resp = app.get(path).bearer_auth(&key).send().await.unwrap();
        assert_error_shape(resp, 404).await;
    }
    let resp = app
        .post("/v1/orders/%00/cancel")
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_error_shape(resp, 404).await;
    let resp = app
        .post("/v1/esims/%00/topups")
        .bearer_auth(&key)
        .header("Idempotency-Key", "t-1")
        .json(&json!({"plan_id": "jp-1gb-7d"}))
        .send()
        .await
        .unwrap();
    assert_error_shape(resp, 404).await;
    for (method, path) in [
        (Method::GET, "/admin/plans/%00/offers"),
        (Method::POST, "/admin/orders/%00/reconcile"),
        (Method::POST, "/admin/events/%00/replay"),
        (Method::POST, "/admin/events/evt_nope/replay"),
        (Method::POST, "/admin/storefronts/%00/keys"),
        (Method::DELETE, "/admin/storefronts/sf_%00/keys"),
    ] {
        let resp = app.admin(method.clone(), path).send().await.unwrap();
        assert_error_shape(resp, 404).await;
    }
    // A plan id that is text but not a plan's shape cannot be on sale.
    let resp = app
        .post("/v1/orders")
        .bearer_auth(&key)
        .header("Idempotency-Key", "k-2")
        .json(&json!({"plan_id": "NOT A PLAN"}))
        .send()
        .await
        .unwrap();
    assert_eq!(assert_error_shape(resp, 404).await, "plan_not_found");
}

#[tokio::test]
async fn control_characters_in_queries_and_headers_are_400() {
    let (app, key) = storefront_app().await;
    for path in [
        "/v1/orders?reference=%00",
        "/v1/orders?cursor=a%00b",
        "/v1/plans?country=%00",
    ] {
        let resp = app.get(path).bearer_auth(&key).send().await.unwrap();
        assert_error_shape(resp, 400).await;
    }
    for path in [
        "/admin/events?status=%00",
        "/admin/events?status=whatever",
        "/admin/events?storefront_id=%00",
        "/admin/events?cursor=nope",
        "/admin/vendor-events?status=whatever",
        "/admin/orders?reference=%00",
    ] {
        let resp = app.admin(Method::GET, path).send().await.unwrap();
        assert_error_shape(resp, 400).await;
    }
    let resp = app
        .admin(Method::GET, "/admin/events?status=dead")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    for idem in ["a b", &"k".repeat(256)] {
        let resp = app
            .post("/v1/orders")
            .bearer_auth(&key)
            .header("Idempotency-Key", idem)
            .json(&json!({"plan_id": "jp-1gb-7d"}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            assert_error_shape(resp, 400).await,
            "invalid_idempotency_key"
        );
    }
}

#[tokio::test]
async fn webhook_url_must_be_https_and_public_outside_loopback() {
    let (app, _) = storefront_app().await;
    let create = |url: &'static str| {
        app.admin(Method::POST, "/admin/storefronts")
            .json(&json!({"name": "Hooks", "webhook_url": url}))
            .send()
    };
    // Sandbox mode (this app): http only to loopback.
    assert_eq!(
        create("http://127.0.0.1:9/events").await.unwrap().status(),
        201
    );
    assert_eq!(
        create("https://shop.example.com/e").await.unwrap().status(),
        201
    );
    for bad in [
        "http://shop.example.com/e",
        "ftp://x",
        "https://u:p@shop.example.com/",
    ] {
        let code = assert_error_shape(create(bad).await.unwrap(), 422).await;
        assert_eq!(code, "invalid_webhook_url", "{bad}");
    }
    // Live mode: never loopback, private, link-local or metadata.
    use esim_gateway::http::storefronts::validate_webhook_url;
    for bad in [
        "https://127.0.0.1/e",
        "https://localhost/e",
        "https://10.1.2.3/e",
        "https://192.168.0.1/e",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/e",
        "https://[fe80::1]/e",
        "https://[fd00:ec2::254]/e",
        "https://[::ffff:10.0.0.1]/e",
        "https://metadata.google.internal/computeMetadata",
        "http://shop.example.com/e",
    ] {
        assert!(
            validate_webhook_url(Some(bad.into()), false).is_err(),
            "{bad} accepted in live mode"
        );
    }
    assert!(validate_webhook_url(Some("https://shop.example.com/e".into()), false).is_ok());
}

#[tokio::test]
async fn webhooks_with_control_characters_are_unparseable_400() {
    let s = SandboxApp::start().await;
    let resp = s
        .app
        .post("/webhooks/esimaccess")
        .header("content-type", "application/json")
        .body(r#"{"notifyType":"DATA_USAGE","notifyId":"ab\u0000cd","content":{"orderNo":"B1","iccid":"8943108170001029631","totalVolume":10,"orderUsage":5,"remain":5}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(assert_error_shape(resp, 400).await, "unparseable_callback");

    let key = s.esimgo_api_key();
    let body = br#"{"iccid":"89000000\u000000000001","alertType":"BundleStarted"}"#;
    let resp = s
        .app
        .post("/webhooks/esimgo")
        .header("content-type", "application/json")
        .header(
            "X-Signature-SHA256",
            STANDARD.encode(esimgo_sign(&key, body)),
        )
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(assert_error_shape(resp, 400).await, "unparseable_callback");

    // A 100,000-character id is refused the same way.
    let long = "9".repeat(100_000);
    let resp = s
        .app
        .post("/webhooks/multiverse")
        .json(&json!({"customer_order_id": long, "iccid": "8900000000000000001", "smdp": "x", "activation_code": "y"}))
        .send()
        .await
        .unwrap();
    assert_eq!(assert_error_shape(resp, 400).await, "unparseable_callback");

    // Stored only as samples, the gateway still answers and the log is readable.
    let events: Value = s.admin_get("/admin/vendor-events?status=unparseable").await;
    let data = events["data"].as_array().unwrap();
    assert_eq!(data.len(), 3, "{events}");
    assert!(
        data.iter()
            .all(|e| e["body"].as_str().unwrap().len() <= 4096)
    );
}

/// A top-up plan the eSIM's vendor offers for it.
async fn topup_plan(s: &SandboxApp, iccid: &str) -> String {
    let plans = s.get(&format!("/v1/esims/{iccid}/topup-plans")).await;
    plans["data"][0]["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn topups_on_cancelled_esims_are_409_and_vendor_words_stay_inside() {
    use esim_gateway::{sandbox::Fault, vendors::VendorId};
    let s = SandboxApp::start().await;
    let owner = VendorId::EsimGo;
    let order = crate::orders::buy_at(&s, owner, "k-cancelled-owner").await;
    let iccid = order["esims"][0]["iccid"].as_str().unwrap().to_string();
    let plan = topup_plan(&s, &iccid).await;

    // The vendor refuses with its own text: the storefront sees ours only.
    s.fault(
        owner,
        "topup",
        Fault::Reject {
            code: "out_of_stock".into(),
            message: Some("INTERNAL-VENDOR-DETAIL account 4411 bundle pool".into()),
        },
    );
    let resp = s
        .app
        .post(&format!("/v1/esims/{iccid}/topups"))
        .bearer_auth(&s.sf.api_key)
        .header("Idempotency-Key", "k-topup-refused")
        .json(&json!({"plan_id": plan}))
        .send()
        .await
        .unwrap();
    let text = resp.text().await.unwrap();
    let topup: Value = serde_json::from_str(&text).unwrap();
    let done = s
        .settle(
            topup["id"].as_str().unwrap(),
            std::time::Duration::from_secs(10),
        )
        .await;
    assert_eq!(done["status"], "failed", "{done}");
    assert!(
        !text.contains("INTERNAL-VENDOR-DETAIL")
            && !done.to_string().contains("INTERNAL-VENDOR-DETAIL"),
        "{done}"
    );

    // Cancelled (as a vendor callback would record it): refused before any vendor call.
    sqlx::query("UPDATE esims SET status = 'cancelled' WHERE iccid = $1")
        .bind(&iccid)
        .execute(&s.app.pool)
        .await
        .unwrap();
    let before = s.core(owner).orders().iter().filter(|o| o.topup).count();
    let resp = s
        .app
        .post(&format!("/v1/esims/{iccid}/topups"))
        .bearer_auth(&s.sf.api_key)
        .header("Idempotency-Key", "k-topup-cancelled")
        .json(&json!({"plan_id": plan}))
        .send()
        .await
        .unwrap();
    assert_eq!(assert_error_shape(resp, 409).await, "esim_cancelled");
    let after = s.core(owner).orders().iter().filter(|o| o.topup).count();
    assert_eq!(before, after, "the vendor was asked");
}

#[test]
fn docker_compose_ships_no_default_admin_token() {
    let compose =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docker-compose.yml"))
            .unwrap();
    let line = compose
        .lines()
        .find(|l| l.trim_start().starts_with("ADMIN_TOKEN:"))
        .expect("the gateway takes ADMIN_TOKEN");
    assert!(
        line.contains("${ADMIN_TOKEN:?"),
        "ADMIN_TOKEN must be required, not defaulted: {line}"
    );
}

#[tokio::test]
async fn numbers_are_whole_and_bounded() {
    let (app, key) = storefront_app().await;
    let post = |body: &'static str| {
        app.post("/v1/orders")
            .bearer_auth(&key)
            .header("Idempotency-Key", "k-num")
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    // `2.0` is a JSON Schema integer: it gets as far as the plan lookup.
    let code = assert_error_shape(
        post(r#"{"plan_id":"jp-1gb-7d","quantity":2.0}"#)
            .await
            .unwrap(),
        404,
    )
    .await;
    assert_eq!(code, "plan_not_found");
    for body in [
        r#"{"plan_id":"jp-1gb-7d","quantity":2.5}"#,
        r#"{"plan_id":"jp-1gb-7d","quantity":-1}"#,
        r#"{"plan_id":"jp-1gb-7d","quantity":1e300}"#,
        r#"{"plan_id":"jp-1gb-7d","quantity":73786976294838206464}"#,
        r#"{"plan_id":"jp-1gb-7d","max_price":{"amount":"99999999999999999999999999999999","currency":"USD"}}"#,
        r#"{"plan_id":"jp-1gb-7d","max_price":{"amount":"1.00","currency":"USD","extra":1}}"#,
    ] {
        assert_error_shape(post(body).await.unwrap(), 422).await;
    }
    let resp = app
        .admin(Method::GET, "/admin/vendor-events?cursor=-5")
        .send()
        .await
        .unwrap();
    assert_eq!(assert_error_shape(resp, 400).await, "invalid_cursor");
}

#[tokio::test]
async fn a_signed_callback_with_a_control_character_anywhere_is_refused() {
    let s = SandboxApp::start().await;
    let key = s.esimgo_api_key();
    // An alert type the gateway does not act on is still stored with its name.
    let body = br#"{"iccid":"8944538532008160222","alertType":"Surprise\u0000Alert"}"#;
    let resp = s
        .app
        .post("/webhooks/esimgo")
        .header("content-type", "application/json")
        .header(
            "X-Signature-SHA256",
            STANDARD.encode(esimgo_sign(&key, body)),
        )
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(assert_error_shape(resp, 400).await, "unparseable_callback");
}
