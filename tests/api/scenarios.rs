//! Storefront test scenarios (`test_scenario` on `POST /v1/orders`, test mode only): each
//! makes that one order meet its hard path at the simulators, end to end, while an
//! ordinary order on the same plan is untouched.

use std::time::Duration;

use esim_gateway::vendors::VendorId;
use reqwest::Method;
use serde_json::{Value, json};

use crate::{helpers::assert_error_shape, sandbox_app::SandboxApp};

/// eSIM Go's order request names no reference of ours: scenario orders never go there.
fn eligible(ranking: &[VendorId]) -> Vec<VendorId> {
    let mut v: Vec<VendorId> = ranking
        .iter()
        .copied()
        .filter(|v| *v != VendorId::EsimGo)
        .collect();
    v.dedup();
    v
}

/// A plan whose scenario-eligible vendors, cheapest first, satisfy `want`.
async fn plan_where(s: &SandboxApp, want: impl Fn(&[VendorId]) -> bool) -> (String, Vec<VendorId>) {
    let plans = s.get("/v1/plans?limit=200").await;
    for p in plans["data"].as_array().unwrap() {
        let id = p["id"].as_str().unwrap();
        let vendors = eligible(&s.ranking(id).await);
        if want(&vendors) {
            return (id.to_string(), vendors);
        }
    }
    panic!("no plan fits");
}

async fn scenario_order(s: &SandboxApp, key: &str, plan: &str, scenario: &str) -> Value {
    let (status, order) = s
        .post_order(key, &json!({"plan_id": plan, "test_scenario": scenario}))
        .await;
    assert_eq!(status, 201, "{order}");
    order
}

fn outcomes(admin: &Value) -> Vec<(String, String)> {
    admin["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["vendor"].as_str().unwrap().to_string(),
                a["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// An ordinary order on the same plan meets nothing: the scenario was scoped to its order.
async fn ordinary_order_is_untouched(s: &SandboxApp, plan: &str) {
    let (status, order) = s.post_order("k-ordinary", &json!({"plan_id": plan})).await;
    assert_eq!(status, 201, "{order}");
    let id = order["id"].as_str().unwrap();
    let done = s.settle(id, Duration::from_secs(15)).await;
    assert_eq!(done["status"], "completed", "{done}");
    let admin = s.admin_order(id).await;
    let attempts = outcomes(&admin);
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    assert_eq!(attempts[0].1, "placed");
}

#[tokio::test]
async fn sold_out_then_fallback_buys_from_the_next_vendor() {
    let s = SandboxApp::start().await;
    let (plan, vendors) = plan_where(&s, |v| v.len() >= 2).await;
    let order = scenario_order(&s, "k-fallback", &plan, "sold_out_then_fallback").await;
    let id = order["id"].as_str().unwrap();
    let done = s.settle(id, Duration::from_secs(15)).await;
    assert_eq!(done["status"], "completed", "{done}");
    let attempts = outcomes(&s.admin_order(id).await);
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert_eq!(
        attempts[0],
        (vendors[0].to_string(), "rejected".to_string())
    );
    assert_eq!(attempts[1].1, "placed");
    assert_ne!(attempts[1].0, vendors[0].to_string());
    ordinary_order_is_untouched(&s, &plan).await;
}

#[tokio::test]
async fn all_sold_out_fails_the_order_without_charge() {
    let s = SandboxApp::start().await;
    let (plan, vendors) = plan_where(&s, |v| !v.is_empty()).await;
    let order = scenario_order(&s, "k-all-sold-out", &plan, "all_sold_out").await;
    let id = order["id"].as_str().unwrap();
    let done = s.settle(id, Duration::from_secs(15)).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(done["failure"]["code"], "sold_out", "{done}");
    // Every offer of every eligible vendor was tried and refused.
    let attempts = outcomes(&s.admin_order(id).await);
    let tried: std::collections::BTreeSet<String> =
        attempts.iter().map(|(v, _)| v.clone()).collect();
    let offered: std::collections::BTreeSet<String> =
        vendors.iter().map(|v| v.to_string()).collect();
    assert_eq!(tried, offered, "{attempts:?}");
    assert!(
        attempts.iter().all(|(_, o)| o == "rejected"),
        "{attempts:?}"
    );
    assert!(s.vendor_orders_for(id).is_empty(), "nothing was bought");
    ordinary_order_is_untouched(&s, &plan).await;
}

#[tokio::test]
async fn vendor_timeout_then_reconciled_completes_from_the_same_vendor_once() {
    let s = SandboxApp::start().await;
    let (plan, vendors) = plan_where(&s, |v| !v.is_empty()).await;
    let order = scenario_order(&s, "k-timeout", &plan, "vendor_timeout_then_reconciled").await;
    let id = order["id"].as_str().unwrap();
    assert_ne!(
        order["status"], "completed",
        "the answer came after the timeout: {order}"
    );
    let done = s.settle(id, Duration::from_secs(30)).await;
    assert_eq!(done["status"], "completed", "{done}");
    let bought = s.vendor_orders_for(id);
    assert_eq!(bought.len(), 1, "one vendor: {bought:?}");
    assert_eq!(bought[0].0, vendors[0]);
    let attempts = outcomes(&s.admin_order(id).await);
    assert!(
        attempts.iter().all(|(v, _)| *v == vendors[0].to_string()),
        "{attempts:?}"
    );
}

#[tokio::test]
async fn callback_lost_completes_by_polling() {
    let s = SandboxApp::start().await;
    // eSIM Access delivers asynchronously (its callback, or our poll, brings the profile).
    let (plan, _) = plan_where(&s, |v| v.first() == Some(&VendorId::EsimAccess)).await;
    let before = s.core(VendorId::EsimAccess).deliveries().len();
    let order = scenario_order(&s, "k-callback-lost", &plan, "callback_lost").await;
    let id = order["id"].as_str().unwrap();
    let done = s.settle(id, Duration::from_secs(15)).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert!(done["esims"][0]["iccid"].is_string());
    // Let any callback that would have gone out go out: none did for this order.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.core(VendorId::EsimAccess).deliveries().len(), before);
    // An ordinary order's callbacks still arrive.
    let (_, plain) = s
        .post_order("k-callback-plain", &json!({"plan_id": plan}))
        .await;
    s.settle(plain["id"].as_str().unwrap(), Duration::from_secs(15))
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while s.core(VendorId::EsimAccess).deliveries().len() == before {
        assert!(
            tokio::time::Instant::now() < deadline,
            "ordinary callbacks still flow"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn cancel_refused_answers_409_and_keeps_the_order() {
    let s = SandboxApp::start().await;
    let (plan, _) = plan_where(&s, |v| {
        matches!(
            v.first(),
            Some(VendorId::EsimAccess | VendorId::MicroEsim | VendorId::EsimFx)
        )
    })
    .await;
    let order = scenario_order(&s, "k-cancel-refused", &plan, "cancel_refused").await;
    let id = order["id"].as_str().unwrap();
    let done = s.settle(id, Duration::from_secs(15)).await;
    assert_eq!(done["status"], "completed", "{done}");
    let resp = s
        .app
        .post(&format!("/v1/orders/{id}/cancel"))
        .bearer_auth(&s.sf.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(assert_error_shape(resp, 409).await, "order_not_cancellable");
    assert_eq!(
        s.get(&format!("/v1/orders/{id}")).await["status"],
        "completed"
    );
}

#[tokio::test]
async fn unknown_scenarios_list_the_allowed_ones_and_live_keys_may_not_use_them() {
    let (s, _live) = SandboxApp::start_both().await;
    let resp = s
        .app
        .post("/v1/orders")
        .bearer_auth(&s.sf.test_api_key)
        .header("Idempotency-Key", "k-unknown")
        .json(&json!({"plan_id": "jp-1gb-7d", "test_scenario": "meteor_strike"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_test_scenario");
    let message = body["error"]["message"].as_str().unwrap();
    for name in ["sold_out_then_fallback", "all_sold_out", "cancel_refused"] {
        assert!(message.contains(name), "{message}");
    }
    let resp = s
        .app
        .client
        .request(Method::POST, s.app.url("/v1/orders"))
        .bearer_auth(&s.sf.live_api_key)
        .header("Idempotency-Key", "k-live-scenario")
        .json(&json!({"plan_id": "jp-1gb-7d", "test_scenario": "all_sold_out"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        assert_error_shape(resp, 400).await,
        "test_scenario_not_allowed"
    );
}

const SLOW: &[(&str, &str)] = &[
    ("PROVISION_RETRY_BASE", "100ms"),
    ("MARKUP_PERCENT", "20"),
    ("TEST_SCENARIO_DELAY", "2s"),
];

#[tokio::test]
async fn slow_async_provisioning_completes_after_the_delay_by_callback() {
    let s = SandboxApp::start_with(esim_gateway::sandbox::SimSettings::fast(), SLOW).await;
    let (plan, _) = plan_where(&s, |v| v.contains(&VendorId::EsimAccess)).await;
    let before = s.core(VendorId::EsimAccess).deliveries().len();
    let started = std::time::Instant::now();
    let order = scenario_order(&s, "k-slow", &plan, "slow_async_provisioning").await;
    let id = order["id"].as_str().unwrap();
    assert_eq!(order["status"], "provisioning", "{order}");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        s.get(&format!("/v1/orders/{id}")).await["status"],
        "provisioning"
    );
    let done = s.settle(id, Duration::from_secs(15)).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(s.vendor_orders_for(id), vec![(VendorId::EsimAccess, 1)]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while s.core(VendorId::EsimAccess).deliveries().len() == before {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the vendor's callback was sent"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn usage_80_percent_reports_usage_by_callback_and_fires_the_threshold_event() {
    let s = SandboxApp::start_with(esim_gateway::sandbox::SimSettings::fast(), SLOW).await;
    sqlx::query("UPDATE storefronts SET webhook_url = 'http://127.0.0.1:9/events' WHERE id = $1")
        .bind(&s.sf.id)
        .execute(&s.app.pool)
        .await
        .unwrap();
    let (plan, _) = plan_where(&s, |v| v.contains(&VendorId::EsimFx)).await;
    let order = scenario_order(&s, "k-usage", &plan, "usage_80_percent").await;
    let id = order["id"].as_str().unwrap();
    let done = s.settle(id, Duration::from_secs(15)).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(s.vendor_orders_for(id), vec![(VendorId::EsimFx, 1)]);
    let iccid = done["esims"][0]["iccid"].as_str().unwrap().to_string();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let event = loop {
        let events = s.admin_get("/admin/events?livemode=false&limit=200").await;
        let found = events["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["type"] == "esim.usage_threshold" && e["data"]["iccid"] == iccid.as_str())
            .cloned();
        if let Some(e) = found {
            break e;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no esim.usage_threshold: {events}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(event["data"]["threshold_percent"], 80, "{event}");
    assert_eq!(event["livemode"], false);
    let usage = s.get(&format!("/v1/esims/{iccid}/usage")).await;
    let (used, total) = (
        usage["used_bytes"].as_u64().unwrap(),
        usage["total_bytes"].as_u64().unwrap(),
    );
    assert!(used * 100 >= total * 79 && used < total, "{usage}");
}
