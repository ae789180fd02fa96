use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error_shape};

// The simplest storefront-authenticated route: it tells a key's owner who they are.
const PROBE: &str = "/v1/storefront";

#[tokio::test]
async fn admin_routes_reject_missing_and_wrong_tokens() {
    let app = TestApp::spawn().await;
    let resp = app.get("/admin/storefronts").send().await.unwrap();
    assert_eq!(assert_error_shape(resp, 401).await, "unauthorized");
    let resp = app
        .get("/admin/storefronts")
        .bearer_auth("wrong-token-wrong-token")
        .send()
        .await
        .unwrap();
    assert_eq!(assert_error_shape(resp, 401).await, "unauthorized");
    let resp = app
        .get("/admin/storefronts")
        .header("authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await
        .unwrap();
    assert_eq!(assert_error_shape(resp, 401).await, "unauthorized");
}

#[tokio::test]
async fn admin_api_is_disabled_without_admin_token() {
    let app = TestApp::spawn_with(&[("ADMIN_TOKEN", "")]).await;
    let resp = app
        .get("/admin/storefronts")
        .bearer_auth("anything-at-all-here")
        .send()
        .await
        .unwrap();
    assert_eq!(assert_error_shape(resp, 403).await, "admin_disabled");
}

#[tokio::test]
async fn storefront_key_issue_use_revoke() {
    let app = TestApp::spawn().await;
    let sf = app.create_storefront("Shop One").await;
    // No live vendor here: the key to start with is the test key.
    assert!(sf.api_key.starts_with("sk_test_"));
    assert!(sf.webhook_secret.starts_with("whsec_"));

    let resp = app
        .get(PROBE)
        .bearer_auth(&sf.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["storefront_id"], sf.id.as_str());

    // Only the hashes are stored (a test key and a live key).
    let stored: Vec<Vec<u8>> = sqlx::query_scalar("SELECT key_hash FROM storefront_api_keys")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored.len(), 2);
    assert!(stored.iter().all(|h| {
        !h.windows(8)
            .any(|w| sf.api_key.as_bytes().windows(8).any(|k| k == w))
    }));

    // The list never shows keys or secrets.
    let list = app
        .admin(Method::GET, "/admin/storefronts")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(list.contains(&sf.id));
    assert!(!list.contains(&sf.api_key) && !list.contains(&sf.webhook_secret));

    let resp = app
        .admin(
            Method::DELETE,
            &format!("/admin/storefronts/{}/keys", sf.id),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["revoked"], 2, "both modes' keys");

    let resp = app
        .get(PROBE)
        .bearer_auth(&sf.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(assert_error_shape(resp, 401).await, "unauthorized");
}

#[tokio::test]
async fn rotation_issues_a_new_key_and_revokes_the_old() {
    let app = TestApp::spawn().await;
    let sf = app.create_storefront("Shop Two").await;
    let resp = app
        .admin(Method::POST, &format!("/admin/storefronts/{}/keys", sf.id))
        .json(&json!({"revoke_others": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.unwrap();
    let new_key = body["api_key"].as_str().unwrap();
    assert_eq!(body["revoked"], 1);
    let old = app
        .get(PROBE)
        .bearer_auth(&sf.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), 401);
    let new = app.get(PROBE).bearer_auth(new_key).send().await.unwrap();
    assert_eq!(new.status(), 200);

    // A key issued without rotation keeps the others valid.
    let resp = app
        .admin(Method::POST, &format!("/admin/storefronts/{}/keys", sf.id))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let again = app.get(PROBE).bearer_auth(new_key).send().await.unwrap();
    assert_eq!(again.status(), 200);
}

#[tokio::test]
async fn unknown_malformed_and_missing_keys_are_401() {
    let app = TestApp::spawn().await;
    app.create_storefront("Shop").await;
    for key in [
        None,
        Some("sk_0000000000000000000000000000000000000000"),
        Some("not-a-key"),
        Some("sk_short"),
    ] {
        let mut req = app.get(PROBE);
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(
            assert_error_shape(resp, 401).await,
            "unauthorized",
            "{key:?}"
        );
    }
}

#[tokio::test]
async fn storefront_creation_validates_input() {
    let app = TestApp::spawn().await;
    let resp = app
        .admin(Method::POST, "/admin/storefronts")
        .json(&json!({"name": "Shop", "webhook_url": "ftp://x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(assert_error_shape(resp, 422).await, "invalid_webhook_url");
    let resp = app
        .admin(Method::POST, "/admin/storefronts")
        .json(&json!({"name": ""}))
        .send()
        .await
        .unwrap();
    assert_eq!(assert_error_shape(resp, 422).await, "invalid_name");
    let resp = app
        .admin(Method::DELETE, "/admin/storefronts/sf_nope/keys")
        .send()
        .await
        .unwrap();
    assert_eq!(assert_error_shape(resp, 404).await, "storefront_not_found");
}
