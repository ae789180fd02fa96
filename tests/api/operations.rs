use crate::helpers::{TestApp, assert_error_shape};

#[tokio::test]
async fn healthz_answers_ok() {
    let app = TestApp::spawn().await;
    let resp = app.get("/healthz").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("x-request-id"));
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn readyz_checks_the_database() {
    let app = TestApp::spawn().await;
    let resp = app.get("/readyz").send().await.unwrap();
    assert_eq!(resp.status(), 200);

    // A missing migration makes the service not ready.
    sqlx::query(
        "DELETE FROM _sqlx_migrations WHERE version = (SELECT max(version) FROM _sqlx_migrations)",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let resp = app.get("/readyz").send().await.unwrap();
    assert_eq!(assert_error_shape(resp, 503).await, "not_ready");

    // And so does a database that has gone away.
    app.pool.close().await;
    let resp = app.get("/readyz").send().await.unwrap();
    assert_eq!(assert_error_shape(resp, 503).await, "not_ready");
}

#[tokio::test]
async fn metrics_are_prometheus_text_with_request_counts() {
    let app = TestApp::spawn().await;
    app.get("/healthz").send().await.unwrap();
    let resp = app.get("/metrics").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = resp.text().await.unwrap();
    assert!(text.contains("http_requests_total{"), "{text}");
    assert!(text.contains(r#"route="/healthz""#), "{text}");
}
