//! Buying through the sandbox vendors: cheapest routing, fallback, exactly-once under
//! timeouts, concurrency and restarts, asynchronous delivery, top-ups, cancellation and
//! tenant isolation. Every "exactly one vendor order" is checked against the simulators' own
//! record of the orders they received.

use std::{collections::HashSet, time::Duration};

use esim_gateway::{
    sandbox::{Fault, SimSettings},
    vendors::VendorId,
};
use serde_json::{Value, json};

use crate::{helpers::assert_error_shape, sandbox_app::SandboxApp};

/// The vendor's own "out of stock" refusal, as its simulator renders it.
pub(crate) fn sold_out(v: VendorId) -> Fault {
    let code = match v {
        VendorId::EsimAccess => "200011",
        // eSIM Go answers HTTP 400 with a message; its simulator names the message.
        VendorId::EsimGo => "out_of_stock",
        // eSIMfx and MicroEsim publish no codes: the adapters' assumed tables.
        VendorId::EsimFx => "2002",
        VendorId::MicroEsim => "1008",
        VendorId::Multiverse => "500002",
    };
    Fault::Reject {
        code: code.into(),
        message: None,
    }
}

fn distinct(v: &[VendorId]) -> Vec<VendorId> {
    let mut seen = HashSet::new();
    v.iter().copied().filter(|x| seen.insert(*x)).collect()
}

#[tokio::test]
async fn a_plan_sold_by_three_vendors_is_bought_from_the_cheapest() {
    let s = SandboxApp::start().await;
    let (plan, ranking) = s.plan_with(3, None).await;
    let (status, order) = s.post_order("k-cheapest", &json!({"plan_id": plan})).await;
    assert_eq!(status, 201, "{order}");
    let id = order["id"].as_str().unwrap().to_string();
    let done = s.settle(&id, Duration::from_secs(10)).await;
    assert_eq!(done["status"], "completed", "{done}");
    let esim = &done["esims"][0];
    assert!(esim["iccid"].as_str().unwrap().len() >= 19);
    assert!(
        esim["activation"]["lpa"]
            .as_str()
            .unwrap()
            .starts_with("LPA:1$")
    );
    let admin = s.admin_order(&id).await;
    assert_eq!(admin["vendor"], ranking[0].as_str());
    assert_eq!(admin["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(s.vendor_orders_for(&id), [(ranking[0], 1)]);
    // Margin is retail minus cost in the retail currency, and positive at 20% markup.
    let margin: rust_decimal::Decimal =
        admin["margin"]["amount"].as_str().unwrap().parse().unwrap();
    assert!(margin > rust_decimal::Decimal::ZERO);
}

#[tokio::test]
async fn cheapest_sold_out_falls_back_to_the_second_with_both_attempts_recorded() {
    let s = SandboxApp::start().await;
    let (plan, ranking) = s.plan_with(2, None).await;
    let vendors = distinct(&ranking);
    s.fault(vendors[0], "order", sold_out(vendors[0]));
    let (status, order) = s.post_order("k-fallback", &json!({"plan_id": plan})).await;
    assert_eq!(status, 201);
    let id = order["id"].as_str().unwrap().to_string();
    let done = s.settle(&id, Duration::from_secs(10)).await;
    assert_eq!(done["status"], "completed", "{done}");
    let admin = s.admin_order(&id).await;
    let attempts = admin["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert_eq!(attempts[0]["vendor"], vendors[0].as_str());
    assert_eq!(attempts[0]["outcome"], "rejected");
    assert_eq!(attempts[0]["error_kind"], "sold_out");
    assert_eq!(attempts[1]["outcome"], "placed");
    assert_eq!(admin["vendor"], attempts[1]["vendor"]);
    assert_eq!(s.vendor_orders_for(&id).len(), 1);
}

#[tokio::test]
async fn every_vendor_refusing_fails_the_order_without_charging() {
    let s = SandboxApp::start().await;
    let (plan, ranking) = s.plan_with(2, None).await;
    for v in distinct(&ranking) {
        s.core(v).faults.inject_times("order", sold_out(v), None);
    }
    let (status, order) = s.post_order("k-soldout", &json!({"plan_id": plan})).await;
    assert_eq!(status, 201);
    assert_eq!(order["status"], "failed");
    assert_eq!(order["failure"]["code"], "sold_out");
    assert!(order["esims"].as_array().unwrap().is_empty());
    let admin = s.admin_order(order["id"].as_str().unwrap()).await;
    assert!(admin["cost"].is_null() && admin["vendor"].is_null());
}

#[tokio::test]
async fn a_timeout_after_the_vendor_accepted_is_reconciled_never_bought_twice() {
    let s = SandboxApp::start().await;
    for cheapest in VendorId::ALL {
        let Ok((plan, ranking)) =
            tokio::time::timeout(Duration::from_secs(30), s.plan_with(2, Some(cheapest))).await
        else {
            continue;
        };
        // The vendor takes the order but answers after the adapter gave up.
        s.fault(cheapest, "order", Fault::Delay { millis: 2500 });
        let key = format!("k-timeout-{cheapest}");
        let (status, order) = s.post_order(&key, &json!({"plan_id": plan})).await;
        assert_eq!(status, 201, "{order}");
        let id = order["id"].as_str().unwrap().to_string();
        let done = s.settle(&id, Duration::from_secs(20)).await;
        assert_eq!(done["status"], "completed", "{cheapest}: {done}");
        // Exactly one vendor order exists, at the vendor that timed out.
        assert_eq!(s.vendor_orders_for(&id), [(ranking[0], 1)], "{cheapest}");
        let iccid = done["esims"][0]["iccid"].as_str().unwrap();
        let at_vendor: Vec<String> = s
            .core(cheapest)
            .orders()
            .iter()
            .filter(|o| {
                o.client_reference
                    .as_deref()
                    .is_some_and(|r| r.starts_with(&id))
            })
            .flat_map(|o| o.iccids.clone())
            .collect();
        assert!(
            at_vendor.iter().any(|i| i == iccid),
            "{cheapest}: {iccid} not in {at_vendor:?}"
        );
        let admin = s.admin_order(&id).await;
        assert_eq!(
            admin["attempts"][0]["outcome"], "placed",
            "{cheapest}: {admin}"
        );
    }
}

#[tokio::test]
async fn fifty_concurrent_posts_with_one_key_buy_once_and_answer_identically() {
    let s = SandboxApp::start().await;
    let (plan, _) = s.plan_with(1, None).await;
    let body = json!({"plan_id": plan, "reference": "shop-1"});
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let req = s
            .app
            .post("/v1/orders")
            .bearer_auth(&s.sf.api_key)
            .header("Idempotency-Key", "k-concurrent")
            .json(&body);
        set.spawn(async move {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap())
        });
    }
    let answers = set.join_all().await;
    assert_eq!(answers.len(), 50);
    let first = &answers[0];
    assert_eq!(first.0, 201);
    for a in &answers {
        assert_eq!(a, first);
    }
    let id = first.1["id"].as_str().unwrap();
    let total: usize = s.vendor_orders_for(id).iter().map(|(_, n)| n).sum();
    assert_eq!(total, 1);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM orders")
        .fetch_one(&s.app.pool)
        .await
        .unwrap();
    assert_eq!(count, 1);
}

#[tokio::test]
async fn a_reused_key_with_another_body_is_a_conflict_and_a_missing_key_a_400() {
    let s = SandboxApp::start().await;
    let (plan, _) = s.plan_with(1, None).await;
    let (status, first) = s.post_order("k-reuse", &json!({"plan_id": plan})).await;
    assert_eq!(status, 201);
    let (status, again) = s.post_order("k-reuse", &json!({"plan_id": plan})).await;
    assert_eq!((status, &again), (201, &first), "replay is identical");
    let resp = s
        .app
        .post("/v1/orders")
        .bearer_auth(&s.sf.api_key)
        .header("Idempotency-Key", "k-reuse")
        .json(&json!({"plan_id": plan, "quantity": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        assert_error_shape(resp, 409).await,
        "idempotency_key_reused"
    );
    let resp = s
        .app
        .post("/v1/orders")
        .bearer_auth(&s.sf.api_key)
        .json(&json!({"plan_id": plan}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        assert_error_shape(resp, 400).await,
        "idempotency_key_required"
    );
    for bad in [
        json!({"plan_id": plan, "quantity": 0}),
        json!({"plan_id": plan, "quantity": 11}),
    ] {
        let resp = s
            .app
            .post("/v1/orders")
            .bearer_auth(&s.sf.api_key)
            .header("Idempotency-Key", "k-bad")
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(assert_error_shape(resp, 422).await, "invalid_quantity");
    }
    let (status, body) = s
        .post_order(
            "k-price",
            &json!({"plan_id": plan, "max_price": {"amount": "0.01", "currency": "USD"}}),
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["code"], "price_changed");
    let (status, body) = s
        .post_order("k-noplan", &json!({"plan_id": "xx-1gb-1d"}))
        .await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "plan_not_found");
}

/// The cheapest asynchronous vendor's plan: its eSIMs arrive later.
async fn async_plan(s: &SandboxApp) -> (String, VendorId) {
    for v in [
        VendorId::EsimAccess,
        VendorId::MicroEsim,
        VendorId::Multiverse,
    ] {
        if let Ok((plan, _)) =
            tokio::time::timeout(Duration::from_secs(30), s.plan_with(1, Some(v))).await
        {
            return (plan, v);
        }
    }
    panic!("no plan whose cheapest vendor is asynchronous");
}

#[tokio::test]
async fn an_asynchronous_vendor_completes_through_its_callback() {
    // Polls are far apart: only the callback can complete the order in time.
    let settings = SimSettings {
        provisioning_delay: Duration::from_millis(300),
        ..SimSettings::fast()
    };
    let s = SandboxApp::start_with(settings, &[("PROVISION_RETRY_BASE", "30s")]).await;
    let (plan, vendor) = async_plan(&s).await;
    let (_, order) = s.post_order("k-callback", &json!({"plan_id": plan})).await;
    assert_eq!(order["status"], "provisioning", "{order}");
    let id = order["id"].as_str().unwrap().to_string();
    let done = s.settle(&id, Duration::from_secs(10)).await;
    assert_eq!(done["status"], "completed", "{vendor}: {done}");
    let events = s
        .admin_get(&format!("/admin/vendor-events?vendor={vendor}"))
        .await;
    assert!(
        !events["data"].as_array().unwrap().is_empty(),
        "a callback was received"
    );
}

#[tokio::test]
async fn an_asynchronous_vendor_completes_by_polling_when_no_callback_comes() {
    let settings = SimSettings {
        callbacks_enabled: false,
        provisioning_delay: Duration::from_millis(300),
        ..SimSettings::fast()
    };
    let s = SandboxApp::start_with(settings, &[("PROVISION_RETRY_BASE", "100ms")]).await;
    let (plan, vendor) = async_plan(&s).await;
    let (_, order) = s.post_order("k-poll", &json!({"plan_id": plan})).await;
    let id = order["id"].as_str().unwrap().to_string();
    let done = s.settle(&id, Duration::from_secs(10)).await;
    assert_eq!(done["status"], "completed", "{vendor}: {done}");
    assert_eq!(s.core(vendor).deliveries().len(), 0);
}

#[tokio::test]
async fn an_order_in_flight_survives_a_restart() {
    let settings = SimSettings {
        callbacks_enabled: false,
        provisioning_delay: Duration::from_millis(1500),
        ..SimSettings::fast()
    };
    let s = SandboxApp::start_with(settings, &[("PROVISION_RETRY_BASE", "100ms")]).await;
    let (plan, vendor) = async_plan(&s).await;
    let (_, order) = s.post_order("k-restart", &json!({"plan_id": plan})).await;
    assert_eq!(order["status"], "provisioning");
    let id = order["id"].as_str().unwrap().to_string();
    let s = s.restart().await;
    let done = s.settle(&id, Duration::from_secs(15)).await;
    assert_eq!(done["status"], "completed", "{vendor}: {done}");
    assert_eq!(s.vendor_orders_for(&id), [(vendor, 1)]);
}

#[tokio::test]
async fn other_storefronts_see_404_for_orders_and_esims() {
    let s = SandboxApp::start().await;
    let (plan, _) = s.plan_with(1, None).await;
    let (_, order) = s.post_order("k-mine", &json!({"plan_id": plan})).await;
    let id = order["id"].as_str().unwrap().to_string();
    let done = s.settle(&id, Duration::from_secs(10)).await;
    let iccid = done["esims"][0]["iccid"].as_str().unwrap().to_string();
    let other = s.app.create_storefront("Other Shop").await;
    for path in [
        format!("/v1/orders/{id}"),
        format!("/v1/esims/{iccid}"),
        format!("/v1/esims/{iccid}/usage"),
        format!("/v1/esims/{iccid}/qr.png"),
        format!("/v1/esims/{iccid}/topup-plans"),
    ] {
        let resp = s
            .app
            .get(&path)
            .bearer_auth(&other.api_key)
            .send()
            .await
            .unwrap();
        assert_error_shape(resp, 404).await;
    }
    let resp = s
        .app
        .post(&format!("/v1/orders/{id}/cancel"))
        .bearer_auth(&other.api_key)
        .send()
        .await
        .unwrap();
    assert_error_shape(resp, 404).await;
    let list = s
        .app
        .get("/v1/orders")
        .bearer_auth(&other.api_key)
        .send()
        .await
        .unwrap();
    let list: Value = list.json().await.unwrap();
    assert!(list["data"].as_array().unwrap().is_empty());
    // The owner sees it, with a QR code that is a real PNG.
    let resp = s
        .app
        .get(&format!("/v1/esims/{iccid}/qr.png"))
        .bearer_auth(&s.sf.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "image/png");
    assert_eq!(&resp.bytes().await.unwrap()[..4], b"\x89PNG");
    let mine = s.get("/v1/orders?reference=nope").await;
    assert!(mine["data"].as_array().unwrap().is_empty());
    let mine = s.get("/v1/orders?status=completed").await;
    assert_eq!(mine["data"][0]["id"], id.as_str());
}

/// Buys `plan_id`-like Japan plan at exactly `vendor` (every other vendor refuses orders).
pub(crate) async fn buy_at(s: &SandboxApp, vendor: VendorId, key: &str) -> Value {
    for other in VendorId::ALL {
        s.core(other).faults.clear();
        if other != vendor {
            s.core(other)
                .faults
                .inject_times("order", sold_out(other), None);
        }
    }
    let plan = s.plan_carried_by(vendor).await;
    let (_, order) = s.post_order(key, &json!({"plan_id": plan})).await;
    let id = order["id"].as_str().unwrap().to_string();
    let done = s.settle(&id, Duration::from_secs(10)).await;
    assert_eq!(done["status"], "completed", "{vendor}: {done}");
    for other in VendorId::ALL {
        s.core(other).faults.clear();
    }
    done
}

#[tokio::test]
async fn a_topup_goes_to_the_owning_vendor_even_when_another_is_cheaper() {
    let s = SandboxApp::start().await;
    let mut checked = false;
    for owner in [VendorId::EsimGo, VendorId::EsimFx, VendorId::EsimAccess] {
        let order = buy_at(&s, owner, &format!("k-owner-{owner}")).await;
        let iccid = order["esims"][0]["iccid"].as_str().unwrap().to_string();
        let plans = s.get(&format!("/v1/esims/{iccid}/topup-plans")).await;
        let plans = plans["data"].as_array().unwrap().clone();
        assert!(!plans.is_empty(), "{owner} offers top-ups");
        // A top-up plan that another vendor sells cheaper as a new eSIM.
        let mut chosen = None;
        for p in &plans {
            let id = p["id"].as_str().unwrap();
            let resp = s
                .app
                .get(&format!("/admin/plans/{id}/offers"))
                .bearer_auth(crate::helpers::ADMIN_TOKEN)
                .send()
                .await
                .unwrap();
            if resp.status() != 200 {
                continue;
            }
            let ranking = s.ranking(id).await;
            if ranking.first().is_some_and(|v| *v != owner) {
                chosen = Some(id.to_string());
                break;
            }
        }
        let Some(plan_id) = chosen else { continue };
        let resp = s
            .app
            .post(&format!("/v1/esims/{iccid}/topups"))
            .bearer_auth(&s.sf.api_key)
            .header("Idempotency-Key", format!("k-topup-{owner}"))
            .json(&json!({"plan_id": plan_id}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
        let topup: Value = resp.json().await.unwrap();
        assert_eq!(topup["kind"], "topup");
        assert_eq!(topup["iccid"], iccid.as_str());
        let id = topup["id"].as_str().unwrap().to_string();
        let done = s.settle(&id, Duration::from_secs(10)).await;
        assert_eq!(done["status"], "completed", "{owner}: {done}");
        let admin = s.admin_order(&id).await;
        assert_eq!(admin["vendor"], owner.as_str());
        let at_owner = s
            .core(owner)
            .orders()
            .into_iter()
            .filter(|o| o.topup)
            .count();
        assert_eq!(at_owner, 1, "{owner}");
        for other in VendorId::ALL.into_iter().filter(|v| *v != owner) {
            assert!(
                s.core(other).orders().iter().all(|o| !o.topup),
                "{other} got a top-up"
            );
        }
        checked = true;
        break;
    }
    assert!(checked, "no owner had a top-up plan sold cheaper elsewhere");
}

#[tokio::test]
async fn cancellation_follows_what_each_vendor_allows() {
    let s = SandboxApp::start().await;
    let cancel = |id: String| {
        s.app
            .post(&format!("/v1/orders/{id}/cancel"))
            .bearer_auth(&s.sf.api_key)
            .send()
    };
    // Unused eSIM at a vendor with refunds: cancelled, eSIM cancelled, refund recorded.
    let order = buy_at(&s, VendorId::EsimAccess, "k-cancel-ok").await;
    let id = order["id"].as_str().unwrap().to_string();
    let resp = cancel(id.clone()).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "cancelled");
    assert_eq!(body["esims"][0]["status"], "cancelled");
    let note: Option<String> =
        sqlx::query_scalar("SELECT failure_message FROM orders WHERE id = $1")
            .bind(&id)
            .fetch_one(&s.app.pool)
            .await
            .unwrap();
    assert!(note.unwrap().contains("refunded"));
    // Twice is a conflict, not a second refund.
    assert_eq!(
        assert_error_shape(cancel(id).await.unwrap(), 409).await,
        "order_not_cancellable"
    );

    // Used eSIM: the vendor refuses.
    let order = buy_at(&s, VendorId::EsimAccess, "k-cancel-used").await;
    let iccid = order["esims"][0]["iccid"].as_str().unwrap();
    s.sandbox.esimaccess.use_data(iccid, 10_000_000);
    let resp = cancel(order["id"].as_str().unwrap().to_string())
        .await
        .unwrap();
    assert_eq!(assert_error_shape(resp, 409).await, "order_not_cancellable");

    // A vendor without cancellation.
    let order = buy_at(&s, VendorId::Multiverse, "k-cancel-unsupported").await;
    let resp = cancel(order["id"].as_str().unwrap().to_string())
        .await
        .unwrap();
    assert_eq!(assert_error_shape(resp, 409).await, "order_not_cancellable");

    // A failed order has nothing to cancel.
    for v in VendorId::ALL {
        s.core(v).faults.inject_times("order", sold_out(v), None);
    }
    let (plan, _) = s.plan_with(1, None).await;
    let (_, failed) = s
        .post_order("k-cancel-failed", &json!({"plan_id": plan}))
        .await;
    assert_eq!(failed["status"], "failed");
    let resp = cancel(failed["id"].as_str().unwrap().to_string())
        .await
        .unwrap();
    assert_eq!(assert_error_shape(resp, 409).await, "order_not_cancellable");
}

#[tokio::test]
async fn usage_is_served_from_the_vendor_and_cached() {
    let s = SandboxApp::start().await;
    let order = buy_at(&s, VendorId::EsimAccess, "k-usage").await;
    let iccid = order["esims"][0]["iccid"].as_str().unwrap();
    s.sandbox.esimaccess.use_data(iccid, 123_456_789);
    let usage = s.get(&format!("/v1/esims/{iccid}/usage")).await;
    assert_eq!(usage["used_bytes"], 123_456_789);
    assert!(usage["updated_at"].is_string());
    if let Some(total) = usage["total_bytes"].as_u64() {
        assert_eq!(
            usage["remaining_bytes"].as_u64().unwrap(),
            total - 123_456_789
        );
    }
    let esim = s.get(&format!("/v1/esims/{iccid}")).await;
    assert_eq!(esim["usage"]["used_bytes"], 123_456_789);
    assert_eq!(esim["order_id"], order["id"]);
}

#[tokio::test]
async fn an_admin_can_reconcile_an_unknown_outcome_on_demand() {
    // The provisioner waits long between looks, so only the admin call resolves the order.
    let s = SandboxApp::start_with(SimSettings::fast(), &[("PROVISION_RETRY_BASE", "60s")]).await;
    let (plan, ranking) = s.plan_with(1, Some(VendorId::EsimGo)).await;
    s.fault(
        ranking[0],
        "order",
        Fault::Reset {
            after_processing: true,
        },
    );
    let (_, order) = s
        .post_order("k-admin-reconcile", &json!({"plan_id": plan}))
        .await;
    assert_eq!(order["status"], "provisioning", "{order}");
    let id = order["id"].as_str().unwrap().to_string();
    let admin = s.admin_order(&id).await;
    assert_eq!(admin["attempts"][0]["outcome"], "unknown");
    let resp = s
        .app
        .admin(
            reqwest::Method::POST,
            &format!("/admin/orders/{id}/reconcile"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "completed", "{body}");
    assert_eq!(body["attempts"][0]["outcome"], "placed");
    assert_eq!(s.vendor_orders_for(&id), [(VendorId::EsimGo, 1)]);
}
