//! Test mode beside live mode: every storefront has a test key and a live key, the mode
//! follows the key, and a mode the gateway does not run answers 403 (never the other mode).

use std::sync::Arc;

use esim_gateway::{
    sandbox::SimSettings,
    vendors::{AdapterOptions, registry::Vendors, sandbox::Sandbox},
};
use reqwest::Method;
use serde_json::{Value, json};

use crate::{
    helpers::{TestApp, assert_error_shape},
    test_db::TestDb,
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

    let list = app
        .admin(Method::GET, "/admin/storefronts")
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
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

/// Keys from before test mode carry no mode; the gateway adopts them into the mode the
/// deployment runs in, so a production gateway's existing keys stay live.
#[tokio::test]
async fn legacy_keys_are_adopted_into_the_deployments_mode() {
    let (_sims, live) = stand_in_live_vendors().await;
    let app =
        TestApp::spawn_modes(Arc::new(TestDb::new().await), &[], live, Vendors::default()).await;
    let sf = app.create_storefront("Old Shop").await;
    sqlx::query("UPDATE storefront_api_keys SET livemode = NULL")
        .execute(&app.pool)
        .await
        .unwrap();
    let adopted = esim_gateway::store::modes::adopt_legacy(&app.pool, true)
        .await
        .unwrap();
    assert_eq!(adopted, 2);
    app.state.cache.keys_changed().await;
    let me: Value = probe(&app, &sf.test_api_key).await.json().await.unwrap();
    assert_eq!(
        me["livemode"], true,
        "a legacy key of a live deployment stays live"
    );
}
