//! The vendor circuit breaker against the sandbox vendors: timeouts open it and later orders
//! go to the next vendor without calling the broken one; after the cool-down one order
//! probes it and closes it again, while reconciles of the orders it timed out go on; a
//! definite refusal is no failure; in half-open only one of
//! two concurrent orders probes.

use std::time::{Duration, Instant};

use esim_gateway::{
    sandbox::{Fault, SimSettings},
    vendors::VendorId,
};
use serde_json::{Value, json};

use crate::{
    orders::sold_out,
    sandbox_app::{SandboxApp, VENDOR_TIMEOUT},
};

/// Vendors whose orders complete straight from the order call, so the tests time the
/// routing, not a vendor's delivery.
const SIMPLE: [VendorId; 3] = [VendorId::EsimAccess, VendorId::MicroEsim, VendorId::EsimFx];

async fn start(failures: &str, cooldown: &str) -> SandboxApp {
    SandboxApp::start_with(
        SimSettings::fast(),
        &[
            ("PROVISION_RETRY_BASE", "100ms"),
            ("MARKUP_PERCENT", "20"),
            ("BREAKER_FAILURES", failures),
            ("BREAKER_COOLDOWN", cooldown),
        ],
    )
    .await
}

/// A plan whose cheapest vendor is one of [`SIMPLE`], that vendor and the next one.
pub(crate) async fn plan_of_two(s: &SandboxApp) -> (String, VendorId, VendorId) {
    for v in SIMPLE {
        let Ok((plan, ranking)) =
            tokio::time::timeout(Duration::from_secs(30), s.plan_with(2, Some(v))).await
        else {
            continue;
        };
        if let Some(next) = ranking.iter().copied().find(|x| *x != v) {
            return (plan, v, next);
        }
    }
    panic!("no plan with two vendors led by a simple one");
}

/// A plan sold by two or more vendors, all of them [`SIMPLE`], and its vendors cheapest first.
async fn plan_of_simple_vendors(s: &SandboxApp) -> (String, Vec<VendorId>) {
    let plans = s.get("/v1/plans?limit=200").await;
    for p in plans["data"].as_array().unwrap() {
        let id = p["id"].as_str().unwrap();
        let mut seen = std::collections::HashSet::new();
        let vendors: Vec<VendorId> = s
            .ranking(id)
            .await
            .into_iter()
            .filter(|v| seen.insert(*v))
            .collect();
        if vendors.len() >= 2 && vendors.iter().all(|v| SIMPLE.contains(v)) {
            return (id.to_string(), vendors);
        }
    }
    panic!("no plan sold only by simple vendors");
}

pub(crate) async fn vendor_status(s: &SandboxApp, v: VendorId) -> Value {
    let list = s.admin_get("/admin/vendors").await;
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == v.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("{v} not in /admin/vendors: {list}"))
}

async fn order(s: &SandboxApp, key: &str, plan: &str) -> (String, Duration) {
    let started = Instant::now();
    let (status, order) = s.post_order(key, &json!({"plan_id": plan})).await;
    let took = started.elapsed();
    assert_eq!(status, 201, "{order}");
    (order["id"].as_str().unwrap().to_string(), took)
}

/// The vendors this order's attempts went to, in order.
async fn attempted(s: &SandboxApp, id: &str) -> Vec<String> {
    s.admin_order(id).await["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["vendor"].as_str().unwrap().to_string())
        .collect()
}

/// Waits until the breaker's cool-down is over (by the server's own `until`).
async fn wait_out_cooldown(s: &SandboxApp, v: VendorId) {
    let status = vendor_status(s, v).await;
    let until: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(status["breaker"]["until"].clone()).expect("an open breaker");
    let left = (until - chrono::Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(left + Duration::from_millis(200)).await;
}

#[tokio::test]
async fn timeouts_open_the_breaker_later_orders_skip_the_vendor_and_a_probe_closes_it() {
    let s = start("3", "3s").await;
    let (plan, broken, next) = plan_of_two(&s).await;
    // The vendor takes each order but answers after the adapter gave up.
    s.core(broken).faults.inject_times(
        "order",
        Fault::Delay {
            millis: VENDOR_TIMEOUT.as_millis() as u64 + 1000,
        },
        None,
    );
    let mut timed_out = Vec::new();
    for i in 0..3 {
        let (id, _) = order(&s, &format!("k-brk-timeout-{i}"), &plan).await;
        assert_eq!(attempted(&s, &id).await, [broken.as_str()]);
        timed_out.push(id);
    }
    let status = vendor_status(&s, broken).await;
    assert_eq!(status["breaker"]["state"], "open", "{status}");
    assert_eq!(status["breaker"]["consecutive_failures"], 3, "{status}");
    assert_eq!(status["healthy"], false, "{status}");
    let attempts = &status["attempts"];
    assert!(
        attempts["placed"].as_u64().unwrap() + attempts["unknown"].as_u64().unwrap() >= 3,
        "{status}"
    );
    assert!(!attempts["latency_p50_ms"].is_null(), "{status}");

    // Open: the next order goes to the next vendor without calling the broken one, and
    // without waiting out its timeout.
    let calls_before = s.core(broken).orders().len();
    let (id, took) = order(&s, "k-brk-skip", &plan).await;
    assert!(took < VENDOR_TIMEOUT, "waited {took:?} on an open breaker");
    assert_eq!(attempted(&s, &id).await, [next.as_str()]);
    let done = s.settle(&id, Duration::from_secs(20)).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(s.vendor_orders_for(&id), [(next, 1)]);
    assert!(
        s.core(broken).orders().iter().skip(calls_before).all(|o| o
            .client_reference
            .as_deref()
            .is_none_or(|r| !r.starts_with(&id))),
        "the broken vendor heard of {id}"
    );
    // Reconciles go on while the breaker keeps new orders away: once the vendor answers
    // again, each timed-out order is found at the vendor that took it, once, and that does
    // not close the breaker (only a probe order does).
    s.core(broken).faults.clear();
    for id in &timed_out {
        let done = s.settle(id, Duration::from_secs(20)).await;
        assert_eq!(done["status"], "completed", "{done}");
        assert_eq!(s.vendor_orders_for(id), [(broken, 1)]);
    }
    assert_ne!(
        vendor_status(&s, broken).await["breaker"]["state"],
        "closed"
    );

    // After the cool-down, with the vendor mended, one order tries it and closes the breaker.
    wait_out_cooldown(&s, broken).await;
    assert_eq!(
        vendor_status(&s, broken).await["breaker"]["state"],
        "half_open"
    );
    let (id, _) = order(&s, "k-brk-probe", &plan).await;
    assert_eq!(attempted(&s, &id).await, [broken.as_str()]);
    let done = s.settle(&id, Duration::from_secs(20)).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(s.vendor_orders_for(&id), [(broken, 1)]);
    let status = vendor_status(&s, broken).await;
    assert_eq!(status["breaker"]["state"], "closed", "{status}");
    assert_eq!(status["breaker"]["consecutive_failures"], 0, "{status}");
    let metrics = s.app.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("vendor_breaker_state{")
                && l.contains(&format!("vendor=\"{broken}\""))
                && l.contains("state=\"closed\"")
                && l.ends_with(" 1")),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_failed_probe_opens_the_breaker_for_another_cooldown() {
    let s = start("1", "2s").await;
    let (plan, broken, next) = plan_of_two(&s).await;
    let late = Fault::Delay {
        millis: VENDOR_TIMEOUT.as_millis() as u64 + 1000,
    };
    s.core(broken).faults.inject_times("order", late, None);
    let (id, _) = order(&s, "k-brk-reopen-1", &plan).await;
    assert_eq!(attempted(&s, &id).await, [broken.as_str()]);
    let first_until = vendor_status(&s, broken).await["breaker"]["until"].clone();
    wait_out_cooldown(&s, broken).await;
    // The probe times out too: open again, with a later end.
    let (id, _) = order(&s, "k-brk-reopen-2", &plan).await;
    assert_eq!(attempted(&s, &id).await, [broken.as_str()]);
    let status = vendor_status(&s, broken).await;
    assert_eq!(status["breaker"]["state"], "open", "{status}");
    assert_ne!(status["breaker"]["until"], first_until, "{status}");
    let (id, _) = order(&s, "k-brk-reopen-3", &plan).await;
    assert_eq!(attempted(&s, &id).await, [next.as_str()]);
}

#[tokio::test]
async fn definite_refusals_do_not_open_the_breaker() {
    let s = start("3", "60s").await;
    let (plan, refusing, next) = plan_of_two(&s).await;
    s.core(refusing)
        .faults
        .inject_times("order", sold_out(refusing), None);
    for i in 0..4 {
        let (id, _) = order(&s, &format!("k-brk-soldout-{i}"), &plan).await;
        // Every order still asks the refusing vendor first, then buys from the next.
        let tried = attempted(&s, &id).await;
        assert_eq!(tried.first().map(String::as_str), Some(refusing.as_str()));
        assert!(tried.contains(&next.to_string()), "{tried:?}");
    }
    let status = vendor_status(&s, refusing).await;
    assert_eq!(status["breaker"]["state"], "closed", "{status}");
    assert_eq!(status["breaker"]["consecutive_failures"], 0, "{status}");
    assert!(
        status["attempts"]["refused"].as_u64().unwrap() >= 4,
        "{status}"
    );
}

#[tokio::test]
async fn in_half_open_only_one_of_two_concurrent_orders_probes() {
    let s = start("1", "2s").await;
    let (plan, broken, next) = plan_of_two(&s).await;
    s.core(broken).faults.inject(
        "order",
        Fault::Delay {
            millis: VENDOR_TIMEOUT.as_millis() as u64 + 1000,
        },
    );
    let (id, _) = order(&s, "k-brk-half-0", &plan).await;
    assert_eq!(attempted(&s, &id).await, [broken.as_str()]);
    assert_eq!(vendor_status(&s, broken).await["breaker"]["state"], "open");
    wait_out_cooldown(&s, broken).await;
    // Mended but slow: the probe is still running when the second order arrives.
    s.core(broken).faults.inject_times(
        "order",
        Fault::Delay {
            millis: VENDOR_TIMEOUT.as_millis() as u64 / 3,
        },
        None,
    );
    let (a, b) = tokio::join!(
        order(&s, "k-brk-half-a", &plan),
        order(&s, "k-brk-half-b", &plan)
    );
    let mut tried = vec![attempted(&s, &a.0).await, attempted(&s, &b.0).await];
    tried.sort();
    let mut want = vec![vec![broken.to_string()], vec![next.to_string()]];
    want.sort();
    assert_eq!(tried, want, "exactly one order probes {broken}");
    for id in [&a.0, &b.0] {
        let done = s.settle(id, Duration::from_secs(20)).await;
        assert_eq!(done["status"], "completed", "{done}");
    }
    assert_eq!(
        vendor_status(&s, broken).await["breaker"]["state"],
        "closed"
    );
}

#[tokio::test]
async fn with_every_candidate_open_an_order_fails_as_when_every_vendor_refused() {
    let s = start("1", "60s").await;
    let (plan, vendors) = plan_of_simple_vendors(&s).await;
    let late = Fault::Delay {
        millis: VENDOR_TIMEOUT.as_millis() as u64 + 1000,
    };
    for v in &vendors {
        s.core(*v).faults.inject_times("order", late.clone(), None);
    }
    // Each order times out at the cheapest vendor still closed, opening its breaker.
    for (i, v) in vendors.iter().enumerate() {
        let (id, _) = order(&s, &format!("k-brk-all-{i}"), &plan).await;
        assert_eq!(attempted(&s, &id).await, [v.as_str()]);
    }
    let started = Instant::now();
    let (status, body) = s
        .post_order("k-brk-all-last", &json!({"plan_id": plan}))
        .await;
    let took = started.elapsed();
    assert!(
        took < VENDOR_TIMEOUT,
        "waited {took:?} on a broken vendor: {body}"
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["status"], "failed", "{body}");
    assert_eq!(body["failure"]["code"], "sold_out", "{body}");
    let id = body["id"].as_str().unwrap();
    assert!(attempted(&s, id).await.is_empty());
}
