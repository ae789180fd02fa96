//! Storefront reads from each replica's memory: a sync is served by the next request on the
//! replica that ran it and by another replica (its own pool and caches, same database)
//! within a second; warm reads need no database at all; a revoked key is refused everywhere
//! within a second; validators, gzip and hostile query strings.

use std::{
    io::Read,
    sync::Arc,
    time::{Duration, Instant},
};

use esim_gateway::{
    catalog::{pricing::Pricing, sync::sync_vendor},
    vendors::{
        VendorId,
        registry::{VendorMode, Vendors},
    },
};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use sqlx::Executor;

use crate::{
    catalog::{ScriptedVendor, gb, offer},
    helpers::{Storefront, TestApp, assert_error_shape},
};

const WITHIN: Duration = Duration::from_secs(1);

struct Setup {
    app: TestApp,
    sf: Storefront,
    vendor: Arc<ScriptedVendor>,
}

async fn setup() -> Setup {
    let vendor = ScriptedVendor::new(
        VendorId::EsimAccess,
        vec![
            offer(
                VendorId::EsimAccess,
                "A-JP-1",
                &["JP"],
                gb(1),
                7,
                "2.00",
                "USD",
            ),
            offer(
                VendorId::EsimAccess,
                "A-JP-10",
                &["JP"],
                gb(10),
                30,
                "9.00",
                "USD",
            ),
        ],
    );
    let mut vendors = Vendors::default();
    vendors.insert(vendor.clone(), VendorMode::Sandbox);
    let app = TestApp::spawn_full(&[], vendors).await;
    let sf = app.create_storefront("Cache Shop").await;
    let s = Setup { app, sf, vendor };
    s.sync().await;
    s
}

impl Setup {
    async fn sync(&self) {
        sync_vendor(
            &self.app.pool,
            self.vendor.as_ref(),
            &self.app.state.test_vendors,
            &Pricing::from_config(&self.app.state.config),
        )
        .await
        .unwrap();
    }
}

async fn get(app: &TestApp, key: &str, path: &str) -> reqwest::Response {
    app.get(path).bearer_auth(key).send().await.unwrap()
}

async fn ids(app: &TestApp, key: &str, query: &str) -> Vec<String> {
    let resp = get(app, key, &format!("/v1/plans{query}")).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect()
}

/// Polls `check` until it holds; returns how long that took, failing after `WITHIN`
/// (plus a little slack for the test's own polling).
async fn within_a_second<F, Fut>(what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if check().await {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < WITHIN,
            "{what}: not seen within {WITHIN:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_sync_is_served_by_the_next_request_and_by_a_second_replica_within_a_second() {
    let s = setup().await;
    let key = &s.sf.api_key;
    let replica = s.app.spawn_replica().await;
    // Both replicas warm, both serving the same catalogue.
    let before = ids(&s.app, key, "?limit=200").await;
    assert_eq!(before, ["jp-1gb-7d", "jp-10gb-30d"]);
    assert_eq!(ids(&replica, key, "?limit=200").await, before);

    // A new offer and a price change.
    s.vendor.set(Ok(vec![
        offer(
            VendorId::EsimAccess,
            "A-JP-1",
            &["JP"],
            gb(1),
            7,
            "1.00",
            "USD",
        ),
        offer(
            VendorId::EsimAccess,
            "A-JP-10",
            &["JP"],
            gb(10),
            30,
            "9.00",
            "USD",
        ),
        offer(
            VendorId::EsimAccess,
            "A-FR-5",
            &["FR"],
            gb(5),
            15,
            "4.00",
            "USD",
        ),
    ]));
    s.sync().await;
    // The replica that synced: the very next request, no waiting.
    let after = ids(&s.app, key, "?limit=200").await;
    assert_eq!(after, ["jp-1gb-7d", "fr-5gb-15d", "jp-10gb-30d"]);
    let plan: Value = get(&s.app, key, "/v1/plans/jp-1gb-7d")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(plan["price"]["amount"], "1.20");

    // The other replica within a second, on every read path.
    let took = within_a_second("second replica sees the sync", || async {
        ids(&replica, key, "?limit=200").await == after
    })
    .await;
    let plan: Value = get(&replica, key, "/v1/plans/fr-5gb-15d")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(plan["price"]["amount"], "4.80");
    let countries: Value = get(&replica, key, "/v1/countries")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(countries["data"][0]["code"], "FR");
    eprintln!("second replica followed the sync after {took:?}");

    // A plan that goes away is gone from both.
    s.vendor.set(Ok(vec![offer(
        VendorId::EsimAccess,
        "A-FR-5",
        &["FR"],
        gb(5),
        15,
        "4.00",
        "USD",
    )]));
    s.sync().await;
    let resp = get(&s.app, key, "/v1/plans/jp-1gb-7d").await;
    assert_eq!(assert_error_shape(resp, 404).await, "plan_not_found");
    within_a_second("second replica drops the plan", || async {
        get(&replica, key, "/v1/plans/jp-1gb-7d").await.status() == 404
    })
    .await;
}

#[tokio::test]
async fn without_a_notification_the_version_poll_still_catches_up_within_a_second() {
    let s = setup().await;
    let key = &s.sf.api_key;
    let replica = s.app.spawn_replica().await;
    assert_eq!(ids(&replica, key, "?country=JP").await.len(), 2);
    // A change whose NOTIFY never comes (as if the listener's connection had dropped):
    // triggers off, the version bumped by hand.
    let mut tx = s.app.pool.begin().await.unwrap();
    tx.execute("ALTER TABLE plans DISABLE TRIGGER USER")
        .await
        .unwrap();
    tx.execute("UPDATE plans SET active = false WHERE id = 'jp-1gb-7d'")
        .await
        .unwrap();
    tx.execute("UPDATE cache_versions SET version = version + 1 WHERE name = 'plans'")
        .await
        .unwrap();
    tx.execute("ALTER TABLE plans ENABLE TRIGGER USER")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    within_a_second("second replica polls the version", || async {
        ids(&replica, key, "?country=JP").await == ["jp-10gb-30d"]
    })
    .await;
}

#[tokio::test]
async fn warm_reads_send_no_statement_to_postgres() {
    let s = setup().await;
    let key = &s.sf.api_key;
    let paths = [
        "/v1/plans?country=JP",
        "/v1/plans?limit=1",
        "/v1/plans/jp-10gb-30d",
        "/v1/countries",
    ];
    let mut warm = Vec::new();
    for p in paths {
        let resp = get(&s.app, key, p).await;
        assert_eq!(resp.status(), 200, "{p}");
        warm.push(resp.bytes().await.unwrap());
    }

    // Cut the database off: no connection open, none accepted. A read that sent any
    // statement would fail.
    s.app.allow_database(false).await;

    for round in 0..50 {
        for (p, body) in paths.iter().zip(&warm) {
            let resp = get(&s.app, key, p).await;
            assert_eq!(resp.status(), 200, "{p} (round {round})");
            assert_eq!(&resp.bytes().await.unwrap(), body, "{p}");
        }
    }
    // And the database really was unreachable.
    assert!(sqlx::query("SELECT 1").execute(&s.app.pool).await.is_err());
    s.app.allow_database(true).await;
}

#[tokio::test]
async fn a_revoked_key_is_refused_within_a_second_on_a_second_replica() {
    let s = setup().await;
    let replica = s.app.spawn_replica().await;
    let old = s.sf.api_key.clone();
    assert_eq!(get(&replica, &old, "/v1/countries").await.status(), 200);
    assert_eq!(get(&s.app, &old, "/v1/countries").await.status(), 200);

    // Rotation on the first replica: the old key stops everywhere, the new one works
    // everywhere at once.
    let resp = s
        .app
        .admin(
            Method::POST,
            &format!("/admin/storefronts/{}/keys", s.sf.id),
        )
        .json(&serde_json::json!({"revoke_others": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let new = resp.json::<Value>().await.unwrap()["api_key"]
        .as_str()
        .unwrap()
        .to_string();
    let resp = get(&s.app, &old, "/v1/countries").await;
    assert_eq!(assert_error_shape(resp, 401).await, "unauthorized");
    let took = within_a_second("second replica refuses the rotated key", || async {
        get(&replica, &old, "/v1/countries").await.status() == StatusCode::UNAUTHORIZED
    })
    .await;
    eprintln!("second replica refused the rotated key after {took:?}");
    assert_eq!(get(&replica, &new, "/v1/countries").await.status(), 200);
    assert_eq!(get(&s.app, &new, "/v1/countries").await.status(), 200);

    // Revocation of every key.
    let resp = s
        .app
        .admin(
            Method::DELETE,
            &format!("/admin/storefronts/{}/keys", s.sf.id),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(get(&s.app, &new, "/v1/plans").await.status(), 401);
    within_a_second("second replica refuses the revoked key", || async {
        get(&replica, &new, "/v1/plans").await.status() == StatusCode::UNAUTHORIZED
    })
    .await;
}

#[tokio::test]
async fn key_use_is_recorded_off_the_request_path() {
    let s = setup().await;
    for _ in 0..20 {
        assert_eq!(
            get(&s.app, &s.sf.api_key, "/v1/countries").await.status(),
            200
        );
    }
    let started = Instant::now();
    loop {
        let used: Option<chrono::DateTime<chrono::Utc>> = sqlx::query_scalar(
            "SELECT last_used_at FROM storefront_api_keys WHERE storefront_id = $1",
        )
        .bind(&s.sf.id)
        .fetch_one(&s.app.pool)
        .await
        .unwrap();
        if used.is_some() {
            break;
        }
        assert!(
            started.elapsed() < esim_gateway::cache::USAGE_FLUSH_INTERVAL * 3,
            "last_used_at never written"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn etags_answer_304_and_gzip_is_served_when_asked() {
    let s = setup().await;
    let key = &s.sf.api_key;
    for path in [
        "/v1/plans?country=JP",
        "/v1/plans/jp-10gb-30d",
        "/v1/countries",
    ] {
        let plain = get(&s.app, key, path).await;
        assert_eq!(plain.status(), 200);
        assert!(plain.headers().get("content-encoding").is_none());
        let etag = plain.headers()["etag"].to_str().unwrap().to_string();
        assert!(etag.starts_with("W/\""), "{etag}");
        let body = plain.bytes().await.unwrap();

        let again = s
            .app
            .get(path)
            .bearer_auth(key)
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{path}");
        assert_eq!(again.headers()["etag"], etag.as_str());
        assert!(again.bytes().await.unwrap().is_empty());

        let other = s
            .app
            .get(path)
            .bearer_auth(key)
            .header("if-none-match", "W/\"0000\"")
            .send()
            .await
            .unwrap();
        assert_eq!(other.status(), 200);

        let zipped = s
            .app
            .get(path)
            .bearer_auth(key)
            .header("accept-encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(zipped.status(), 200);
        assert_eq!(zipped.headers()["content-encoding"], "gzip");
        assert_eq!(zipped.headers()["etag"], etag.as_str());
        let gz = zipped.bytes().await.unwrap();
        let mut unzipped = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut unzipped)
            .unwrap();
        assert_eq!(unzipped, body, "{path}");
    }

    // A sync that changes nothing keeps the validator; one that changes the page moves it.
    let etag = |r: reqwest::Response| r.headers()["etag"].to_str().unwrap().to_string();
    let first = etag(get(&s.app, key, "/v1/plans?country=JP").await);
    s.sync().await;
    assert_eq!(etag(get(&s.app, key, "/v1/plans?country=JP").await), first);
    s.vendor.set(Ok(vec![offer(
        VendorId::EsimAccess,
        "A-JP-1",
        &["JP"],
        gb(1),
        7,
        "3.00",
        "USD",
    )]));
    s.sync().await;
    assert_ne!(etag(get(&s.app, key, "/v1/plans?country=JP").await), first);
}

#[tokio::test]
async fn hostile_plan_queries_are_4xx_never_500() {
    let s = setup().await;
    let key = &s.sf.api_key;
    for (path, status, code) in [
        (
            "/v1/plans?min_data_gb=73786976294838206464",
            400,
            "invalid_parameter",
        ),
        ("/v1/plans?min_data_gb=", 400, "invalid_parameter"),
        ("/v1/plans?cursor=", 400, "invalid_parameter"),
        (
            "/v1/plans?sort=days&cursor=ZGF5c3wyMTQ3NDgzNjQ4fGE",
            400,
            "invalid_cursor",
        ),
        // data|9223372036854775808|a
        (
            "/v1/plans?sort=data&cursor=ZGF0YXw5MjIzMzcyMDM2ODU0Nzc1ODA4fGE",
            400,
            "invalid_cursor",
        ),
        ("/v1/plans?country=%00", 400, "invalid_parameter"),
        ("/v1/plans?sort=%00", 400, "invalid_parameter"),
        ("/v1/plans?%00=1", 400, "unknown_parameter"),
        ("/v1/plans?limit=1&limit=2", 400, "invalid_parameter"),
        // Refused by the path guard before any lookup, as for every resource.
        ("/v1/plans/%00", 404, "not_found"),
        ("/v1/plans/jp%0010gb-30d", 404, "not_found"),
    ] {
        let resp = get(&s.app, key, path).await;
        assert_eq!(assert_error_shape(resp, status).await, code, "{path}");
    }
}
