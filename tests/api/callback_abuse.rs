//! Unauthenticated callback routes are bounded: forged hints cannot make the gateway hammer
//! a vendor or starve real purchases, floods are rate limited, and junk bodies cannot grow
//! the database beyond a cap.

use std::time::{Duration, Instant};

use esim_gateway::{sandbox::SimSettings, vendors::VendorId};
use serde_json::json;

use crate::sandbox_app::SandboxApp;

const ENV: &[(&str, &str)] = &[
    ("PROVISION_RETRY_BASE", "100ms"),
    // High enough that every forged hint reaches the hint gate (the gate is under test).
    ("CALLBACK_RATE_LIMIT", "100000"),
];

fn esimaccess_calls(s: &SandboxApp) -> usize {
    s.sandbox
        .esimaccess
        .max_requests_within(Duration::from_secs(3600))
}

#[tokio::test]
async fn a_thousand_forged_hints_cost_a_bounded_number_of_vendor_calls_and_never_delay_orders() {
    let s = SandboxApp::start_with(SimSettings::fast(), ENV).await;
    for other in VendorId::ALL
        .into_iter()
        .filter(|v| *v != VendorId::EsimAccess)
    {
        s.core(other)
            .faults
            .inject_times("order", crate::orders::sold_out(other), None);
    }
    let plan = s.plan_carried_by(VendorId::EsimAccess).await;
    let started = Instant::now();
    let (_, order) = s.post_order("k-real-1", &json!({"plan_id": plan})).await;
    let done = s
        .settle(order["id"].as_str().unwrap(), Duration::from_secs(10))
        .await;
    let normal = started.elapsed();
    assert_eq!(done["status"], "completed", "{done}");
    let iccid = done["esims"][0]["iccid"].as_str().unwrap().to_string();

    let before = esimaccess_calls(&s);
    let url = s.app.url("/webhooks/esimaccess");
    let client = s.app.client.clone();
    let forged = tokio::spawn(async move {
        let mut statuses = Vec::new();
        for batch in 0..20 {
            let mut sends = Vec::new();
            for i in 0..50 {
                let body = json!({"notifyType": "DATA_USAGE", "notifyId": format!("forged-{batch}-{i}"),
                    "content": {"orderNo": "B1", "iccid": iccid, "totalVolume": 10737418240u64,
                                "orderUsage": 1, "remain": 10737418239u64}});
                let req = client.post(&url).json(&body);
                sends.push(tokio::spawn(async move {
                    req.send().await.map(|r| r.status().as_u16()).unwrap_or(0)
                }));
            }
            for h in sends {
                statuses.push(h.await.unwrap());
            }
        }
        statuses
    });
    // A real order placed while the hints pour in completes within its normal time.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    let (status, order) = s.post_order("k-real-2", &json!({"plan_id": plan})).await;
    assert_eq!(status, 201, "{order}");
    let done = s
        .settle(order["id"].as_str().unwrap(), Duration::from_secs(10))
        .await;
    let during = started.elapsed();
    assert_eq!(done["status"], "completed", "{done}");
    assert!(
        during <= normal + Duration::from_secs(2),
        "order took {during:?} under the flood, {normal:?} normally"
    );
    let statuses = forged.await.unwrap();
    assert_eq!(statuses.len(), 1000);
    assert!(statuses.iter().all(|s| *s == 200), "hints are acknowledged");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let calls = esimaccess_calls(&s) - before;
    // The second order's own calls plus at most a couple of coalesced usage re-reads.
    eprintln!(
        "1,000 forged hints: {calls} eSIM Access calls; order {during:?} (normally {normal:?})"
    );
    assert!(
        calls <= 12,
        "{calls} eSIM Access calls for 1,000 forged hints"
    );
}

#[tokio::test]
async fn callback_floods_are_rate_limited_per_vendor() {
    let s = SandboxApp::start_with(SimSettings::fast(), &[("CALLBACK_RATE_LIMIT", "5")]).await;
    let mut limited = 0;
    for i in 0..40 {
        let resp = s
            .app
            .post("/webhooks/multiverse")
            .json(&json!({"customer_order_id": format!("ord_x{i}"), "iccid": "8900000000000000001", "smdp": "x", "activation_code": "y"}))
            .send()
            .await
            .unwrap();
        if resp.status() == 429 {
            assert_eq!(
                crate::helpers::assert_error_shape(resp, 429).await,
                "rate_limited"
            );
            limited += 1;
        }
    }
    assert!(limited >= 25, "only {limited} of 40 were limited");
    // Another vendor's route has its own budget.
    let resp = s
        .app
        .post("/webhooks/esimaccess")
        .json(&json!({"notifyType": "CHECK_HEALTH", "content": {"orderNo": "1", "orderStatus": "Test"}}))
        .send()
        .await
        .unwrap();
    assert_ne!(resp.status(), 429);
}

#[tokio::test]
async fn unparseable_bodies_are_kept_as_capped_samples() {
    let s = SandboxApp::start_with(SimSettings::fast(), ENV).await;
    let junk = |i: usize| format!("{i:08}-{}", "x".repeat(20_000)).into_bytes();
    for i in 0..520 {
        let resp = s
            .app
            .post("/webhooks/multiverse")
            .header("content-type", "application/json")
            .body(junk(i))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400);
    }
    let (rows, bytes): (i64, i64) = sqlx::query_as(
        "SELECT count(*), coalesce(sum(octet_length(body)), 0)::bigint FROM vendor_events
         WHERE vendor = 'multiverse' AND status = 'unparseable'",
    )
    .fetch_one(&s.app.pool)
    .await
    .unwrap();
    assert_eq!(rows, 500, "stored beyond the cap");
    assert!(bytes <= 500 * 4096, "{bytes} bytes stored");
}

#[tokio::test]
async fn hints_about_unknown_orders_expire() {
    let s = SandboxApp::start_with(SimSettings::fast(), ENV).await;
    let resp = s
        .app
        .post("/webhooks/multiverse")
        .json(&json!({"customer_order_id": "ord_01JD3QZ6V6W2Y2C6ZC9W8K7T1M", "iccid": "8900000000000000001", "smdp": "x", "activation_code": "y"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // Applied inline or by the callbacks worker, whichever leases it first.
    let mut row: (i64, String) = (0, String::new());
    for _ in 0..50 {
        row = sqlx::query_as("SELECT id, status FROM vendor_events WHERE vendor = 'multiverse'")
            .fetch_one(&s.app.pool)
            .await
            .unwrap();
        if row.1 != "received" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (id, status) = row;
    assert_eq!(status, "waiting");
    // Fresh: kept waiting. Older than the TTL: given up.
    let ctx = esim_gateway::ordering::Ctx::from_state(&s.app.state);
    sqlx::query(
        "UPDATE vendor_events SET received_at = now() - interval '1 hour', next_attempt_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .execute(&s.app.pool)
    .await
    .unwrap();
    esim_gateway::callbacks::apply_due(&ctx, 50).await.unwrap();
    let (status, error): (String, Option<String>) =
        sqlx::query_as("SELECT status, error FROM vendor_events WHERE id = $1")
            .bind(id)
            .fetch_one(&s.app.pool)
            .await
            .unwrap();
    assert_eq!(status, "ignored");
    assert!(error.unwrap_or_default().starts_with("expired"));
}

#[tokio::test]
async fn forged_order_hints_do_not_multiply_vendor_queries() {
    let settings = SimSettings {
        provisioning_delay: Duration::from_secs(6),
        callbacks_enabled: false,
        ..SimSettings::fast()
    };
    // The provisioner wakes every 100 ms but backs off per order (0.1, 0.2, 0.4, 0.8, 1.6 s):
    // a hint that made it re-check at every wake-up would show.
    let s = SandboxApp::start_with(
        settings,
        &[
            ("PROVISION_RETRY_BASE", "100ms"),
            ("CALLBACK_RATE_LIMIT", "100000"),
        ],
    )
    .await;
    for other in VendorId::ALL
        .into_iter()
        .filter(|v| *v != VendorId::EsimAccess)
    {
        s.core(other)
            .faults
            .inject_times("order", crate::orders::sold_out(other), None);
    }
    let plan = s.plan_carried_by(VendorId::EsimAccess).await;
    let (_, order) = s.post_order("k-prov", &json!({"plan_id": plan})).await;
    assert_eq!(order["status"], "provisioning", "{order}");
    let id = order["id"].as_str().unwrap().to_string();
    let reference = s.admin_order(&id).await["vendor_reference"]
        .as_str()
        .unwrap()
        .to_string();
    let before = esimaccess_calls(&s);
    let flood_started = Instant::now();
    let mut sent = 0;
    while flood_started.elapsed() < Duration::from_secs(3) {
        let resp = s
            .app
            .post("/webhooks/esimaccess")
            .json(&json!({"notifyType": "ORDER_STATUS", "notifyId": format!("forged-order-{sent}"),
                          "content": {"orderNo": reference, "transactionId": id, "orderStatus": "GOT_RESOURCE"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        sent += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let calls = esimaccess_calls(&s) - before;
    eprintln!("{sent} forged order hints in 3 s: {calls} eSIM Access calls");
    // The provisioner's own back-off plus at most one hint-driven check per 5 s.
    assert!(
        calls <= 8,
        "{calls} vendor calls for {sent} forged order hints"
    );
}
