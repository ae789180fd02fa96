//! Vendor balances against the sandbox vendors: stored and shown in `/admin/vendors`, a
//! vendor whose last known balance cannot pay an order is skipped for the next one, and a
//! low balance raises `vendor.balance_low` once per crossing, delivered signed to the
//! operator webhook.

use std::time::Duration;

use esim_gateway::{
    ordering::{Ctx, balances},
    sandbox::SimSettings,
    vendors::VendorId,
    workers::{self, outbox::OutboxWorker},
};
use hmac::{Hmac, Mac};
use reqwest::Method;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::{
    breaker::{plan_of_two, vendor_status},
    helpers::assert_error_shape,
    outbox::start_receiver,
    sandbox_app::SandboxApp,
};

/// The sandbox app's vendors are the test-mode simulators.
const TEST: bool = false;

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

#[tokio::test]
async fn balances_are_read_after_each_order_and_on_the_schedule() {
    let s = SandboxApp::start().await;
    let ctx = Ctx::from_state(&s.app.state);
    let (plan, v, _) = plan_of_two(&s).await;
    s.sandbox.set_balance(v, dec("500"));
    balances::refresh(&ctx, TEST, v)
        .await
        .unwrap()
        .expect("enabled");
    let before = vendor_status(&s, v).await;
    assert_eq!(before["balance"]["amount"], "500", "{before}");

    // After an order placed there, the vendor's balance is read again on its own (no
    // refresh asked for): the stored one drops by what the simulator charged.
    let (code, order) = s
        .post_order("balance-after-order", &json!({"plan_id": plan}))
        .await;
    assert_eq!(code, 201, "{order}");
    let id = order["id"].as_str().unwrap();
    let done = s.settle(id, Duration::from_secs(10)).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(s.vendor_orders_for(id), [(v, 1)]);
    let charged = s.sandbox.balance(v);
    assert!(charged < dec("500"), "the simulator charged the order");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let now = vendor_status(&s, v).await;
        if now["balance"]["amount"].as_str().map(dec) == Some(charged) {
            assert!(now["balance_read_at"].as_str() > before["balance_read_at"].as_str());
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "balance not read again after the order: {now}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The scheduled tick reads a vendor only once per interval, across replicas: a second
    // tick within the interval reads nothing, one after it reads the new balance.
    s.sandbox.set_balance(v, dec("321"));
    let interval = Duration::from_secs(1);
    tokio::time::sleep(interval).await;
    workers::balances::tick(&ctx, interval).await.unwrap();
    assert_eq!(vendor_status(&s, v).await["balance"]["amount"], "321");
    s.sandbox.set_balance(v, dec("123"));
    workers::balances::tick(&ctx, Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(
        vendor_status(&s, v).await["balance"]["amount"],
        "321",
        "read within the interval already"
    );
}

#[tokio::test]
async fn a_vendor_whose_balance_cannot_pay_is_skipped_and_the_next_vendor_gets_the_order() {
    let s = SandboxApp::start().await;
    let ctx = Ctx::from_state(&s.app.state);
    let (plan, broke, next) = plan_of_two(&s).await;
    s.sandbox.set_balance(broke, dec("0.01"));
    balances::refresh(&ctx, TEST, broke)
        .await
        .unwrap()
        .expect("enabled");

    // The stored balance, with its read time, is what the admin view shows.
    let status = vendor_status(&s, broke).await;
    assert_eq!(status["balance"]["amount"], "0.01", "{status}");
    assert_eq!(status["balance_status"], "read");
    assert!(status["balance_read_at"].is_string(), "{status}");
    assert!(status["balance_error"].is_null());

    let (code, order) = s
        .post_order("balance-skip-1", &json!({"plan_id": plan}))
        .await;
    assert_eq!(code, 201, "{order}");
    let id = order["id"].as_str().unwrap();
    let order = s.settle(id, Duration::from_secs(10)).await;
    assert_eq!(order["status"], "completed", "{order}");
    let details = s.admin_order(id).await;
    // The order's routing record says why the broke vendor was left out.
    let excluded = details["routing"][0]["excluded"].as_array().unwrap();
    assert!(
        excluded
            .iter()
            .any(|e| e["vendor"] == broke.as_str() && e["reason"] == "balance_below_cost"),
        "{details}"
    );
    let attempts: Vec<String> = details["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["vendor"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        attempts,
        [next.as_str()],
        "the broke vendor is not even tried"
    );
    assert_eq!(s.vendor_orders_for(id), [(next, 1)]);

    // Once the balance is topped up and read again (on demand), the vendor gets orders again.
    s.sandbox.set_balance(broke, dec("1000"));
    let read = s
        .app
        .admin(
            Method::POST,
            &format!("/admin/vendors/{broke}/balance/refresh"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    let read: Value = read.json().await.unwrap();
    assert_eq!(read["vendor"], broke.as_str());
    assert_eq!(read["balance"]["amount"], "1000", "{read}");
    assert_eq!(read["balance_status"], "read");
    let unknown = s
        .app
        .admin(Method::POST, "/admin/vendors/nobody/balance/refresh")
        .send()
        .await
        .unwrap();
    assert_error_shape(unknown, 404).await;
    let (code, order) = s
        .post_order("balance-skip-2", &json!({"plan_id": plan}))
        .await;
    assert_eq!(code, 201, "{order}");
    let id = order["id"].as_str().unwrap();
    s.settle(id, Duration::from_secs(10)).await;
    assert_eq!(s.vendor_orders_for(id), [(broke, 1)]);
}

const OPERATOR_SECRET: &str = "whsec_operator_0123456789";

#[tokio::test]
async fn a_low_balance_alerts_once_per_crossing_signed_to_the_operator_webhook() {
    let (receiver, url) = start_receiver(0).await;
    let s = SandboxApp::start_with(
        SimSettings::fast(),
        &[
            ("PROVISION_RETRY_BASE", "100ms"),
            ("MARKUP_PERCENT", "20"),
            ("BALANCE_LOW_THRESHOLDS", "esimaccess=100"),
            ("OPERATOR_WEBHOOK_URL", url.as_str()),
            ("OPERATOR_WEBHOOK_SECRET", OPERATOR_SECRET),
        ],
    )
    .await;
    let operator = OutboxWorker::new(s.app.pool.clone(), Duration::from_millis(50), true)
        .with_operator(s.app.state.config.operator_webhook.clone())
        .spawn();
    let ctx = Ctx::from_state(&s.app.state);
    let v = VendorId::EsimAccess;
    let set_and_read = |amount: &'static str| {
        let ctx = ctx.clone();
        let s = &s;
        async move {
            s.sandbox.set_balance(v, dec(amount));
            balances::refresh(&ctx, TEST, v).await.unwrap().unwrap()
        }
    };
    let alerts = || async {
        s.admin_get("/admin/alerts").await["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["type"].as_str().unwrap().to_string())
            .rev()
            .collect::<Vec<_>>()
    };

    assert!(!set_and_read("500").await.low);
    assert!(alerts().await.is_empty());
    assert!(set_and_read("50").await.low);
    // Still low, read twice more, once by two replicas at the same moment: no new alert.
    set_and_read("40").await;
    let replica = s.app.spawn_replica().await;
    let mut other = ctx.clone();
    other.pool = replica.pool.clone();
    let (a, b) = tokio::join!(
        balances::refresh(&ctx, TEST, v),
        balances::refresh(&other, TEST, v)
    );
    assert!(a.unwrap().unwrap().low && b.unwrap().unwrap().low);
    assert_eq!(alerts().await, ["vendor.balance_low"]);
    // Back above, then below again: a second crossing, a second alert.
    assert!(!set_and_read("200").await.low);
    assert!(set_and_read("10").await.low);
    assert_eq!(
        alerts().await,
        [
            "vendor.balance_low",
            "vendor.balance_recovered",
            "vendor.balance_low"
        ]
    );
    let low = s.admin_get("/admin/alerts?type=vendor.balance_low").await;
    let newest = &low["data"][0];
    assert_eq!(low["data"].as_array().unwrap().len(), 2);
    assert_eq!(newest["vendor"], "esimaccess");
    // Raised in test mode (the simulators' balance), and listed by mode.
    assert_eq!(newest["livemode"], false);
    let live = s
        .admin_get("/admin/alerts?type=vendor.balance_low&livemode=true")
        .await;
    assert_eq!(live["data"], json!([]), "{live}");
    let test = s
        .admin_get("/admin/alerts?type=vendor.balance_low&livemode=false")
        .await;
    assert_eq!(test["data"].as_array().unwrap().len(), 2, "{test}");
    assert_eq!(
        newest["data"]["balance"],
        json!({"amount": "10", "currency": "USD"})
    );
    assert_eq!(newest["data"]["threshold"]["amount"], "100");
    assert_eq!(newest["data"]["threshold_rule"], "absolute");

    // The three alerts reach the operator webhook, each signed with its secret.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let delivered = |list: &Value| {
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["delivery_status"] == "delivered")
    };
    while !delivered(&s.admin_get("/admin/alerts").await) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "alerts not delivered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seen = receiver.seen.lock().unwrap().clone();
    let mut types = Vec::new();
    for (headers, body) in &seen {
        let sig = headers["gateway-signature"].to_str().unwrap();
        let (t, v1) = sig.split_once(",v1=").unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(OPERATOR_SECRET.as_bytes()).unwrap();
        mac.update(format!("{}.", t.strip_prefix("t=").unwrap()).as_bytes());
        mac.update(body);
        assert_eq!(v1, hex::encode(mac.finalize().into_bytes()));
        let event: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(event["data"]["vendor"], "esimaccess");
        types.push(event["type"].as_str().unwrap().to_string());
    }
    types.sort();
    assert_eq!(
        types,
        [
            "vendor.balance_low",
            "vendor.balance_low",
            "vendor.balance_recovered"
        ]
    );
    // Operator alerts are not storefront events.
    let events = s.admin_get("/admin/events").await;
    assert!(
        events["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| !e["type"].as_str().unwrap().starts_with("vendor.")),
        "{events}"
    );

    // The admin view and the gauges show the stored, low balance.
    let status = vendor_status(&s, v).await;
    assert_eq!(status["balance"]["amount"], "10");
    assert_eq!(status["balance_low"], true);
    assert_eq!(status["balance_low_threshold"]["amount"], "100");
    let metrics = s.app.metrics().await;
    assert!(
        metrics.contains(r#"vendor_balance{mode="test",vendor="esimaccess"}"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"vendor_balance_low{mode="test",vendor="esimaccess"}"#),
        "{metrics}"
    );
    operator.abort();
}
