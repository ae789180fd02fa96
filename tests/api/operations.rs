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

#[tokio::test]
async fn metric_labels_come_from_closed_sets_whatever_the_method() {
    let app = TestApp::spawn().await;
    let mut methods = Vec::new();
    for i in 0..50 {
        methods.push(format!("RANDOM{i}X{}", ulid::Ulid::new()));
    }
    methods.push("Q".repeat(20_000));
    for m in &methods {
        let method = reqwest::Method::from_bytes(m.as_bytes()).unwrap();
        // Whatever the server answers (405, 404, 400 or a closed connection), the method
        // must not become a label.
        let _ = app
            .client
            .request(
                method,
                app.url(&format!("/nowhere/{}", &m[..m.len().min(30)])),
            )
            .send()
            .await;
    }
    let text = app.metrics().await;
    assert!(
        text.contains(r#"method="other""#),
        "{}",
        &text[..text.len().min(2000)]
    );
    for m in &methods {
        assert!(
            !text.contains(&m[..m.len().min(30)]),
            "method {} became a label",
            &m[..30]
        );
    }
    assert!(text.contains(r#"route="unmatched""#));
    assert!(
        !text.contains("/nowhere/"),
        "raw paths must not become labels"
    );
    assert!(
        text.len() < 2_000_000,
        "metrics grew to {} bytes",
        text.len()
    );
}
