//! Exactly once against an honest vendor, end to end (real Postgres, sandbox simulators):
//! a lost eSIM Go answer is reconciled to exactly that vendor order even while a lookup
//! answers 404 or lists an entry nobody can read, and across a restart; Multiverse orders
//! complete through `/purchase/sync`, and through a matched callback when the vendor offers
//! only its documented operations.

use std::time::Duration;

use esim_gateway::{sandbox::Fault, vendors::VendorId};
use serde_json::{Value, json};

use crate::{orders::sold_out, sandbox_app::SandboxApp};

/// The vendor's own record of the eSIMs it issued for our order id.
fn vendor_iccids(s: &SandboxApp, vendor: VendorId, order_id: &str) -> Vec<String> {
    s.core(vendor)
        .orders()
        .iter()
        .filter(|o| o.is_for(order_id))
        .flat_map(|o| o.iccids.clone())
        .collect()
}

/// How many orders each simulator recorded (eSIM Go takes no reference of ours with an
/// order, so its records are counted, not matched).
fn orders_per_vendor(s: &SandboxApp) -> Vec<(VendorId, usize)> {
    VendorId::ALL
        .into_iter()
        .map(|v| (v, s.core(v).orders().len()))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// eSIM Go records the order, then its answer is lost; while `lookup_fault` is armed on every
/// lookup the order waits (never bought elsewhere); once lookups answer normally it
/// completes with eSIM Go's own eSIM.
async fn esimgo_lost_answer_waits_out(lookup_fault: Fault, restart: bool) {
    let s = SandboxApp::start().await;
    let (plan, ranking) = s.plan_with(2, Some(VendorId::EsimGo)).await;
    assert_eq!(ranking[0], VendorId::EsimGo);
    s.fault(VendorId::EsimGo, "order", Fault::Delay { millis: 2500 });
    s.core(VendorId::EsimGo)
        .faults
        .inject_times("query", lookup_fault.clone(), None);
    let (status, order) = s
        .post_order(
            &format!("k-esimgo-{lookup_fault:?}-{restart}")
                .replace(|c: char| !c.is_ascii_alphanumeric(), "-"),
            &json!({"plan_id": plan}),
        )
        .await;
    assert_eq!(status, 201, "{order}");
    let id = order["id"].as_str().unwrap().to_string();
    // Well past the lost answer and several reconciliation rounds.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let waiting = s.get(&format!("/v1/orders/{id}")).await;
    assert_eq!(waiting["status"], "provisioning", "{waiting}");
    assert_eq!(orders_per_vendor(&s), [(VendorId::EsimGo, 1)]);

    let s = if restart { s.restart().await } else { s };
    s.core(VendorId::EsimGo).faults.clear();
    let done = s.settle(&id, Duration::from_secs(20)).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(orders_per_vendor(&s), [(VendorId::EsimGo, 1)]);
    let iccids = s.core(VendorId::EsimGo).orders()[0].iccids.clone();
    assert_eq!(iccids.len(), 1);
    assert_eq!(done["esims"][0]["iccid"], iccids[0].as_str());
    assert!(
        done["esims"][0]["activation"]["lpa"]
            .as_str()
            .is_some_and(|l| l.starts_with("LPA:1$")),
        "{done}"
    );
}

#[tokio::test]
async fn esimgo_lost_answer_while_a_lookup_answers_404_waits_then_completes_once() {
    esimgo_lost_answer_waits_out(Fault::PathNotFound, false).await;
}

/// A lookup refused (here HTTP 400) is not "nothing bought" either.
#[tokio::test]
async fn esimgo_lost_answer_while_a_lookup_is_refused_waits_then_completes_once() {
    esimgo_lost_answer_waits_out(
        Fault::Reject {
            code: "400".into(),
            message: None,
        },
        false,
    )
    .await;
}

#[tokio::test]
async fn esimgo_lost_answer_with_an_unreadable_listing_entry_waits_then_completes_once() {
    esimgo_lost_answer_waits_out(Fault::UnreadableEntry, false).await;
}

#[tokio::test]
async fn esimgo_lost_answer_is_reconciled_by_a_restarted_gateway() {
    esimgo_lost_answer_waits_out(Fault::PathNotFound, true).await;
}

/// Orders a plan Multiverse carries while every other vendor refuses.
async fn order_at_multiverse(s: &SandboxApp, key: &str) -> String {
    for other in VendorId::ALL {
        if other != VendorId::Multiverse {
            s.core(other)
                .faults
                .inject_times("order", sold_out(other), None);
        }
    }
    let plan = s.plan_carried_by(VendorId::Multiverse).await;
    let (status, order) = s.post_order(key, &json!({"plan_id": plan})).await;
    assert_eq!(status, 201, "{order}");
    order["id"].as_str().unwrap().to_string()
}

fn multiverse_events(events: &Value) -> Vec<(String, String)> {
    events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["status"].as_str().unwrap_or("").to_string(),
                e["order_ref"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn multiverse_completes_through_purchase_sync() {
    let s = SandboxApp::start().await;
    let id = order_at_multiverse(&s, "k-mv-sync").await;
    let done = s.settle(&id, Duration::from_secs(10)).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(s.vendor_orders_for(&id), [(VendorId::Multiverse, 1)]);
    let iccids = vendor_iccids(&s, VendorId::Multiverse, &id);
    assert_eq!(done["esims"][0]["iccid"], iccids[0].as_str());
    // `/sync` answered with the eSIM: no callback was needed.
    assert!(s.core(VendorId::Multiverse).deliveries().is_empty());
}

#[tokio::test]
async fn multiverse_with_documented_operations_only_completes_through_a_matched_callback() {
    let s = SandboxApp::start().await;
    s.sandbox.multiverse.documented_only();
    let id = order_at_multiverse(&s, "k-mv-callback").await;
    let done = s.settle(&id, Duration::from_secs(10)).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(s.vendor_orders_for(&id), [(VendorId::Multiverse, 1)]);
    let iccids = vendor_iccids(&s, VendorId::Multiverse, &id);
    assert_eq!(done["esims"][0]["iccid"], iccids[0].as_str());
    // The event's own status is written just after the order it completed commits.
    let mut events = Value::Null;
    for _ in 0..50 {
        events = s.admin_get("/admin/vendor-events?vendor=multiverse").await;
        if multiverse_events(&events)
            .iter()
            .any(|(status, r)| status == "matched_hint" && *r == id)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        multiverse_events(&events)
            .iter()
            .any(|(status, r)| status == "matched_hint" && *r == id),
        "{events}"
    );

    // A callback that does not match what we placed (another package, a made-up ICCID) is
    // stored and ignored: it completes nothing.
    let id2 = order_at_multiverse(&s, "k-mv-forged").await;
    s.sandbox.multiverse.core().set_callback_url(None);
    let forged = json!({
        "customer_order_id": id2, "order_id": "MVFORGED", "package_id": "mv_other",
        "iccid": "8944538532008160222", "smdp": "rsp.example.com",
        "activation_code": "ABCD-1234", "status": "COMPLETED",
    });
    let resp = s
        .app
        .post("/webhooks/multiverse")
        .json(&forged)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let still = s.get(&format!("/v1/orders/{id2}")).await;
    assert_eq!(still["status"], "provisioning", "{still}");
}

/// Multiverse with only its documented operations: a purchase whose answer is lost and whose
/// callback never comes leaves the order waiting; nothing is bought anywhere else.
#[tokio::test]
async fn multiverse_lost_answer_without_a_callback_is_never_bought_elsewhere() {
    let settings = esim_gateway::sandbox::SimSettings {
        callbacks_enabled: false,
        ..esim_gateway::sandbox::SimSettings::fast()
    };
    let s = SandboxApp::start_with(settings, &[("PROVISION_RETRY_BASE", "100ms")]).await;
    s.sandbox.multiverse.documented_only();
    s.fault(VendorId::Multiverse, "order", Fault::Delay { millis: 2500 });
    let id = order_at_multiverse(&s, "k-mv-lost").await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let waiting = s.get(&format!("/v1/orders/{id}")).await;
    assert_eq!(waiting["status"], "provisioning", "{waiting}");
    assert_eq!(orders_per_vendor(&s), [(VendorId::Multiverse, 1)]);
}

/// A placed order whose eSIMs the vendor does not hand over yet (a failing lookup here; an
/// eSIM without a valid ICCID for MicroEsim) stays provisioning and says why in its attempt,
/// then completes once the vendor answers.
#[tokio::test]
async fn a_placed_order_waiting_on_its_vendor_says_why_in_its_attempt() {
    let s = SandboxApp::start().await;
    let (plan, _) = s.plan_with(1, Some(VendorId::EsimAccess)).await;
    s.core(VendorId::EsimAccess).faults.inject_times(
        "query",
        Fault::ServerError { status: 503 },
        None,
    );
    let (status, order) = s.post_order("k-note-1", &json!({"plan_id": plan})).await;
    assert_eq!(status, 201, "{order}");
    let id = order["id"].as_str().unwrap().to_string();
    let mut note = None;
    for _ in 0..100 {
        let admin = s.admin_get("/admin/orders?limit=10").await;
        let mine = admin["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["id"] == id.as_str())
            .cloned()
            .expect("the order is listed");
        let last = mine["attempts"]
            .as_array()
            .unwrap()
            .last()
            .cloned()
            .unwrap();
        if last["outcome"] == "placed" {
            if let Some(m) = last["error_message"].as_str() {
                note = Some(m.to_string());
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let note = note.expect("the attempt says why the order waits");
    assert!(note.starts_with("not delivered yet"), "{note}");
    let order_now = s.get(&format!("/v1/orders/{id}")).await;
    assert_eq!(order_now["status"], "provisioning", "{order_now}");
    s.core(VendorId::EsimAccess).faults.clear();
    let mut done = Value::Null;
    for _ in 0..150 {
        done = s.get(&format!("/v1/orders/{id}")).await;
        if done["status"] == "completed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(orders_per_vendor(&s), vec![(VendorId::EsimAccess, 1)]);
}
