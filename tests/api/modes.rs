//! Test mode beside live mode: every storefront has a test key and a live key, the mode
//! follows the key, and a mode the gateway does not run answers 403 (never the other mode).

use std::{sync::Arc, time::Duration};

use base64::{Engine, engine::general_purpose::STANDARD};
use esim_gateway::domain::secret::ExposeSecret;
use esim_gateway::{
    sandbox::SimSettings,
    vendors::{AdapterOptions, registry::Vendors, sandbox::Sandbox},
};
use reqwest::Method;
use serde_json::{Value, json};

use crate::{
    helpers::{TestApp, assert_error_shape},
    sandbox_app::SandboxApp,
    test_db::TestDb,
    webhooks::esimgo_sign,
};

const PROBE: &str = "/v1/storefront";

async fn probe(app: &TestApp, key: &str) -> reqwest::Response {
    app.get(PROBE).bearer_auth(key).send().await.unwrap()
}

/// Simulators standing in for live vendors (the adapters do not know the difference).
async fn stand_in_live_vendors() -> (Sandbox, Vendors) {
    let sims = Sandbox::start(SimSettings::fast(), None).await.unwrap();
    let vendors = sims.vendors(&AdapterOptions::default());
    (sims, vendors)
}

#[tokio::test]
async fn without_live_vendors_the_live_key_is_403_and_api_key_is_the_test_key() {
    let app = TestApp::spawn().await;
    let resp = app
        .admin(Method::POST, "/admin/storefronts")
        .json(&json!({"name": "Two Keys"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.unwrap();
    let test_key = body["test_api_key"].as_str().unwrap();
    let live_key = body["live_api_key"].as_str().unwrap();
    assert!(test_key.starts_with("sk_test_") && live_key.starts_with("sk_live_"));
    assert_eq!(body["api_key"], body["test_api_key"]);
    assert_eq!(body["api_key_id"], body["test_api_key_id"]);

    let resp = probe(&app, test_key).await;
    assert_eq!(resp.status(), 200);
    let me: Value = resp.json().await.unwrap();
    assert_eq!(me["livemode"], false);

    let resp = probe(&app, live_key).await;
    assert_eq!(assert_error_shape(resp, 403).await, "live_mode_unavailable");
}

#[tokio::test]
async fn with_live_vendors_api_key_is_the_live_key_and_each_key_has_its_mode() {
    let (_sims, live) = stand_in_live_vendors().await;
    let app =
        TestApp::spawn_modes(Arc::new(TestDb::new().await), &[], live, Vendors::default()).await;
    let sf = app.create_storefront("Live Shop").await;
    assert_eq!(sf.api_key, sf.live_api_key);
    let me: Value = probe(&app, &sf.live_api_key).await.json().await.unwrap();
    assert_eq!(me["livemode"], true);
    let me: Value = probe(&app, &sf.test_api_key).await.json().await.unwrap();
    assert_eq!(me["livemode"], false);
}

#[tokio::test]
async fn keys_rotate_and_revoke_per_mode() {
    let (_sims, live) = stand_in_live_vendors().await;
    let app =
        TestApp::spawn_modes(Arc::new(TestDb::new().await), &[], live, Vendors::default()).await;
    let sf = app.create_storefront("Rotating Shop").await;
    let keys = format!("/admin/storefronts/{}/keys", sf.id);

    // Rotating the live key leaves the test key alone.
    let resp = app
        .admin(Method::POST, &keys)
        .json(&json!({"livemode": true, "revoke_others": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["livemode"], true);
    assert_eq!(body["revoked"], 1);
    let new_live = body["api_key"].as_str().unwrap().to_string();
    assert!(new_live.starts_with("sk_live_"));
    assert_eq!(probe(&app, &sf.live_api_key).await.status(), 401);
    assert_eq!(probe(&app, &new_live).await.status(), 200);
    assert_eq!(probe(&app, &sf.test_api_key).await.status(), 200);

    // Revoking the test keys leaves the live key alone.
    let resp = app
        .admin(Method::DELETE, &format!("{keys}?livemode=false"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["revoked"], 1);
    assert_eq!(probe(&app, &sf.test_api_key).await.status(), 401);
    assert_eq!(probe(&app, &new_live).await.status(), 200);

    let list = app.admin_json("/admin/storefronts").await;
    assert_eq!(list["data"][0]["active_live_keys"], 1);
    assert_eq!(list["data"][0]["active_test_keys"], 0);
}

#[tokio::test]
async fn test_mode_off_makes_test_keys_403() {
    let (_sims, live) = stand_in_live_vendors().await;
    let app = TestApp::spawn_modes(
        Arc::new(TestDb::new().await),
        &[("ESIMGO_API_KEY", "configured"), ("TEST_MODE", "off")],
        live,
        Vendors::default(),
    )
    .await;
    let sf = app.create_storefront("Live Only").await;
    let resp = probe(&app, &sf.test_api_key).await;
    assert_eq!(assert_error_shape(resp, 403).await, "test_mode_unavailable");
    assert_eq!(probe(&app, &sf.live_api_key).await.status(), 200);
}

/// Rows from before test mode are left in test mode by the migration, which notes that they
/// exist; the first start with live vendors moves them to live mode, so a production
/// gateway's existing keys stay live. Later starts move nothing.
#[tokio::test]
async fn legacy_keys_are_adopted_into_the_deployments_mode() {
    let (_sims, live) = stand_in_live_vendors().await;
    let app =
        TestApp::spawn_modes(Arc::new(TestDb::new().await), &[], live, Vendors::default()).await;
    let sf = app.create_storefront("Old Shop").await;
    // As the migration leaves a database that had storefronts before it.
    sqlx::query("UPDATE storefront_api_keys SET livemode = false")
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO mode_adoption VALUES (true)")
        .execute(&app.pool)
        .await
        .unwrap();
    let adopt = || esim_gateway::store::modes::adopt_legacy(&app.pool, true);
    assert_eq!(adopt().await.unwrap(), 2);
    assert_eq!(adopt().await.unwrap(), 0, "once per database");
    app.state.cache.keys_changed().await;
    let me: Value = probe(&app, &sf.test_api_key).await.json().await.unwrap();
    assert_eq!(
        me["livemode"], true,
        "a legacy key of a live deployment stays live"
    );
}

/// Orders each set of simulators received for this order id (our id is the vendors'
/// reference), summed over the five vendors.
fn orders_at(sims: &Sandbox, order_id: &str) -> usize {
    sims.orders_for(order_id).iter().map(|(_, n)| n).sum()
}

async fn call(s: &SandboxApp, method: Method, path: &str, key: &str) -> reqwest::Response {
    s.app
        .client
        .request(method, s.app.url(path))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
}

async fn order_with(s: &SandboxApp, key: &str, idem: &str, plan: &str) -> Value {
    let resp = s
        .app
        .post("/v1/orders")
        .bearer_auth(key)
        .header("Idempotency-Key", idem)
        .json(&json!({"plan_id": plan}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "order with {}", &key[..8]);
    resp.json().await.unwrap()
}

/// Polls an order with `key` until it is no longer pending/provisioning.
async fn settled(s: &SandboxApp, key: &str, id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let o: Value = call(s, Method::GET, &format!("/v1/orders/{id}"), key)
            .await
            .json()
            .await
            .unwrap();
        let st = o["status"].as_str().unwrap_or("").to_string();
        if !matches!(st.as_str(), "pending" | "provisioning")
            || tokio::time::Instant::now() > deadline
        {
            return o;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// With live vendors and the built-in simulators both configured, a test key's orders only
/// ever reach the simulators and a live key's only the live vendors (counted on each set
/// of simulators); each mode sees only its own catalogue, orders, eSIMs and events; the
/// other mode's ids read as 404; idempotency keys are per mode.
#[tokio::test]
async fn a_test_key_never_reaches_live_vendors_and_a_live_key_never_reaches_the_simulators() {
    let (s, live) = SandboxApp::start_both().await;
    let (test_key, live_key) = (s.sf.test_api_key.clone(), s.sf.live_api_key.clone());
    assert_eq!(
        s.sf.api_key, live_key,
        "live vendors exist: api_key is the live key"
    );

    for (key, livemode) in [(&test_key, false), (&live_key, true)] {
        let plans: Value = call(&s, Method::GET, "/v1/plans?country=JP", key)
            .await
            .json()
            .await
            .unwrap();
        let data = plans["data"].as_array().unwrap();
        assert!(!data.is_empty());
        assert!(data.iter().all(|p| p["livemode"] == livemode), "{plans}");
        let countries: Value = call(&s, Method::GET, "/v1/countries", key)
            .await
            .json()
            .await
            .unwrap();
        assert!(
            countries["data"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c["livemode"] == livemode)
        );
    }

    sqlx::query("UPDATE storefronts SET webhook_url = 'http://127.0.0.1:9/events' WHERE id = $1")
        .bind(&s.sf.id)
        .execute(&s.app.pool)
        .await
        .unwrap();

    // The same idempotency key in both modes: two orders, one per mode.
    let plan = "jp-1gb-7d";
    let test_order = order_with(&s, &test_key, "same-key", plan).await;
    let live_order = order_with(&s, &live_key, "same-key", plan).await;
    let (test_id, live_id) = (
        test_order["id"].as_str().unwrap().to_string(),
        live_order["id"].as_str().unwrap().to_string(),
    );
    assert_ne!(test_id, live_id, "idempotency keys are per mode");
    assert_eq!(test_order["livemode"], false);
    assert_eq!(live_order["livemode"], true);
    let test_order = settled(&s, &test_key, &test_id).await;
    let live_order = settled(&s, &live_key, &live_id).await;
    assert_eq!(test_order["status"], "completed", "{test_order}");
    assert_eq!(live_order["status"], "completed", "{live_order}");

    assert!(orders_at(&s.sandbox, &test_id) >= 1);
    assert_eq!(
        orders_at(&live, &test_id),
        0,
        "a test order reached a live vendor"
    );
    assert!(orders_at(&live, &live_id) >= 1);
    assert_eq!(
        orders_at(&s.sandbox, &live_id),
        0,
        "a live order reached a simulator"
    );

    // Nothing crosses modes: the other mode's order and eSIM are 404.
    let test_iccid = test_order["esims"][0]["iccid"]
        .as_str()
        .unwrap()
        .to_string();
    let live_iccid = live_order["esims"][0]["iccid"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(test_order["esims"][0]["livemode"], false);
    for (key, other_order, other_iccid) in [
        (&live_key, &test_id, &test_iccid),
        (&test_key, &live_id, &live_iccid),
    ] {
        for path in [
            format!("/v1/orders/{other_order}"),
            format!("/v1/esims/{other_iccid}"),
            format!("/v1/esims/{other_iccid}/usage"),
        ] {
            let resp = call(&s, Method::GET, &path, key).await;
            assert_eq!(resp.status(), 404, "{path}");
            assert_error_shape(resp, 404).await;
        }
    }
    let usage: Value = call(
        &s,
        Method::GET,
        &format!("/v1/esims/{live_iccid}/usage"),
        &live_key,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(usage["livemode"], true);
    // Each mode lists only its own orders.
    for (key, id) in [(&test_key, &test_id), (&live_key, &live_id)] {
        let list: Value = call(&s, Method::GET, "/v1/orders", key)
            .await
            .json()
            .await
            .unwrap();
        let ids: Vec<&str> = list["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, vec![id.as_str()]);
    }

    // Events carry their mode, in the envelope and in the object.
    for livemode in [true, false] {
        let events = s
            .admin_get(&format!("/admin/events?livemode={livemode}"))
            .await;
        let data = events["data"].as_array().unwrap();
        assert!(!data.is_empty(), "an order.completed of each mode");
        for e in data {
            assert_eq!(e["livemode"], livemode, "{e}");
            assert_eq!(e["data"]["livemode"], livemode, "{e}");
        }
    }

    // Admin: filtered by mode; the vendors of each mode separately.
    let live_only = s.admin_get("/admin/orders?livemode=true").await;
    let ids: Vec<&str> = live_only["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![live_id.as_str()]);
    assert_eq!(
        s.admin_get("/admin/orders").await["data"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    for (livemode, mode) in [(true, "live"), (false, "sandbox")] {
        let vendors = s
            .admin_get(&format!("/admin/vendors?livemode={livemode}"))
            .await;
        for v in vendors["data"].as_array().unwrap() {
            assert_eq!(v["livemode"], livemode, "{v}");
            assert_eq!(v["mode"], mode, "{v}");
            assert!(v["offer_count"].as_u64().unwrap() > 0, "{v}");
        }
    }
}

/// Both modes' callbacks arrive on the same `/webhooks/<vendor>` route: a signed one belongs
/// to the mode whose credentials verify it (each set of simulators signs with its own), the
/// same event from each mode is stored once per mode, and one signed by neither is 401.
#[tokio::test]
async fn a_signed_callback_belongs_to_the_mode_whose_credentials_verify_it() {
    let (s, live) = SandboxApp::start_both().await;
    let key_of = |sims: &Sandbox| {
        sims.credentials
            .esimgo
            .as_ref()
            .unwrap()
            .api_key
            .expose_secret()
            .to_string()
    };
    let body = br#"{"iccid":"8900000000000000001","alertType":"BundleStarted"}"#;
    let post = |key: String| {
        let sig = STANDARD.encode(esimgo_sign(&key, body));
        s.app
            .post("/webhooks/esimgo")
            .header("content-type", "application/json")
            .header("X-Signature-SHA256", sig)
            .body(body.to_vec())
            .send()
    };
    assert_eq!(post(key_of(&s.sandbox)).await.unwrap().status(), 200);
    assert_eq!(post(key_of(&live)).await.unwrap().status(), 200);
    let resp = post("neither-mode's-key".into()).await.unwrap();
    assert_error_shape(resp, 401).await;
    for livemode in [true, false] {
        let stored = s
            .admin_get(&format!(
                "/admin/vendor-events?vendor=esimgo&livemode={livemode}"
            ))
            .await;
        let data = stored["data"].as_array().unwrap();
        assert_eq!(data.len(), 1, "{stored}");
        assert_eq!(data[0]["livemode"], livemode);
    }
}
