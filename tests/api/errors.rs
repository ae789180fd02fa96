use reqwest::Method;

use crate::helpers::{TestApp, assert_error_shape};

#[tokio::test]
async fn unknown_route_is_a_json_404() {
    let app = TestApp::spawn().await;
    let resp = app.get("/no/such/route").send().await.unwrap();
    assert_eq!(assert_error_shape(resp, 404).await, "not_found");
}

#[tokio::test]
async fn wrong_method_is_a_json_405() {
    let app = TestApp::spawn().await;
    let resp = app.client.delete(app.url("/healthz")).send().await.unwrap();
    assert_eq!(assert_error_shape(resp, 405).await, "method_not_allowed");
}

#[tokio::test]
async fn malformed_json_is_a_json_400() {
    let app = TestApp::spawn().await;
    let resp = app
        .admin(Method::POST, "/admin/storefronts")
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(assert_error_shape(resp, 400).await, "malformed_json");
}

#[tokio::test]
async fn wrong_types_and_missing_fields_are_422() {
    let app = TestApp::spawn().await;
    for body in [
        r#"{"name": 5}"#,
        r#"{}"#,
        r#"{"name": "x", "surprise": true}"#,
    ] {
        let resp = app
            .admin(Method::POST, "/admin/storefronts")
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            assert_error_shape(resp, 422).await,
            "invalid_body",
            "{body}"
        );
    }
}

#[tokio::test]
async fn wrong_content_type_is_a_json_415() {
    let app = TestApp::spawn().await;
    let resp = app
        .admin(Method::POST, "/admin/storefronts")
        .header("content-type", "text/plain")
        .body(r#"{"name": "x"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        assert_error_shape(resp, 415).await,
        "unsupported_media_type"
    );
}

#[tokio::test]
async fn oversized_body_is_a_json_413() {
    let app = TestApp::spawn().await;
    let big = format!(r#"{{"name": "{}"}}"#, "x".repeat(2 * 1024 * 1024));
    let resp = app
        .admin(Method::POST, "/admin/storefronts")
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(assert_error_shape(resp, 413).await, "payload_too_large");
}

#[tokio::test]
async fn client_request_id_is_echoed() {
    let app = TestApp::spawn().await;
    let resp = app
        .get("/nope")
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "trace-me-42");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["request_id"], "trace-me-42");
}
