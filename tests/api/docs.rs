use crate::helpers::TestApp;

#[tokio::test]
async fn docs_page_references_only_local_assets_that_load() {
    let app = TestApp::spawn().await;
    let resp = app.get("/docs").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = resp.text().await.unwrap();
    let refs: Vec<&str> = html
        .split(['"', '\''])
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s)
        .filter(|s| s.starts_with('/') || s.contains("://"))
        .collect();
    assert!(refs.len() >= 3, "{refs:?}");
    for r in refs {
        assert!(
            r.starts_with('/') && !r.starts_with("//"),
            "non-local reference {r}"
        );
        let asset = app.get(r).send().await.unwrap();
        assert_eq!(asset.status(), 200, "{r}");
        assert!(!asset.bytes().await.unwrap().is_empty(), "{r}");
    }
    // The initializer must not call Swagger's public validator.
    let init = app
        .get("/docs/assets/init.js")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(init.contains("validatorUrl: null") && init.contains("/openapi.json"));
}

#[tokio::test]
async fn openapi_json_is_openapi_3_1_and_matches_the_committed_file() {
    let app = TestApp::spawn().await;
    let resp = app.get("/openapi.json").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let served: serde_json::Value = resp.json().await.unwrap();
    assert!(served["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = served["paths"].as_object().unwrap();
    for p in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/docs",
        "/openapi.json",
        "/admin/storefronts",
        "/admin/vendors",
        "/admin/vendors/{vendor}/sync",
        "/admin/plans/{plan_id}/offers",
        "/admin/orders",
        "/admin/orders/{order_id}/reconcile",
        "/admin/vendor-events",
        "/admin/events",
        "/v1/storefront",
        "/v1/plans",
        "/v1/plans/{plan_id}",
        "/v1/countries",
        "/v1/orders",
        "/v1/orders/{order_id}",
        "/v1/orders/{order_id}/cancel",
        "/v1/esims/{iccid}",
        "/v1/esims/{iccid}/usage",
        "/v1/esims/{iccid}/qr.png",
        "/v1/esims/{iccid}/qr.svg",
        "/v1/esims/{iccid}/topup-plans",
        "/v1/esims/{iccid}/topups",
        "/webhooks/esimaccess",
        "/webhooks/esimgo",
        "/webhooks/esimfx",
        "/webhooks/microesim",
        "/webhooks/multiverse",
    ] {
        assert!(paths.contains_key(p), "{p} missing from the spec");
    }
    assert!(served["components"]["schemas"]["ErrorBody"].is_object());
    // Every operation documents its error answers with the error shape.
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            let documents_errors = responses.iter().any(|(code, r)| {
                (code.starts_with('4') || code.starts_with('5'))
                    && r.to_string().contains("ErrorBody")
            });
            let public = matches!(
                path.as_str(),
                "/healthz" | "/metrics" | "/docs" | "/openapi.json"
            );
            assert!(
                public || documents_errors,
                "{method} {path} documents no error"
            );
        }
    }

    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json"))
            .expect("openapi/openapi.json is committed");
    let generated = esim_gateway::http::openapi_json();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(
            concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json"),
            format!("{generated}\n"),
        )
        .unwrap();
        return;
    }
    let first_difference = committed
        .trim_end()
        .lines()
        .zip(generated.lines())
        .position(|(a, b)| a != b);
    assert!(
        committed.trim_end() == generated,
        "first differing line: {first_difference:?}; openapi/openapi.json is stale: run `cargo run -- openapi > openapi/openapi.json` (or UPDATE_OPENAPI=1 cargo test)"
    );
}
