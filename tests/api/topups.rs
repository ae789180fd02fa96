//! Top-ups end to end against the simulators: whatever `topup-plans` lists for an eSIM, its
//! vendor accepts; vendors without a documented top-up list nothing and are never asked.

use std::time::Duration;

use esim_gateway::{
    sandbox::{Fault, SimSettings},
    vendors::VendorId,
};
use serde_json::{Value, json};

use crate::{helpers::assert_error_shape, orders::sold_out, sandbox_app::SandboxApp};

/// Usage is re-read from the vendor on every request, so each top-up shows at once.
const ENV: &[(&str, &str)] = &[
    ("PROVISION_RETRY_BASE", "100ms"),
    ("MARKUP_PERCENT", "20"),
    ("USAGE_MAX_AGE", "1ms"),
];

async fn start() -> SandboxApp {
    SandboxApp::start_with(SimSettings::fast(), ENV).await
}

/// Plans with a data total (Japan first) that `vendor` can fill.
async fn plans_carried_by(s: &SandboxApp, vendor: VendorId) -> Vec<String> {
    let mut out = Vec::new();
    for path in ["/v1/plans?country=JP&limit=200", "/v1/plans?limit=200"] {
        for p in s.get(path).await["data"].as_array().unwrap() {
            if p["data"]["unlimited"] == true || p["data"]["daily"] == true {
                continue;
            }
            let id = p["id"].as_str().unwrap().to_string();
            if !out.contains(&id) && s.ranking(&id).await.contains(&vendor) {
                out.push(id);
            }
        }
    }
    out
}

/// Buys `plan` at exactly `vendor` (every other vendor refuses orders); the eSIM's ICCID.
async fn buy_at(s: &SandboxApp, vendor: VendorId, plan: &str, key: &str) -> String {
    for other in VendorId::ALL.into_iter().filter(|v| *v != vendor) {
        s.core(other)
            .faults
            .inject_times("order", sold_out(other), None);
    }
    let (status, order) = s.post_order(key, &json!({"plan_id": plan})).await;
    assert_eq!(status, 201, "{order}");
    let done = s
        .settle(order["id"].as_str().unwrap(), Duration::from_secs(10))
        .await;
    for other in VendorId::ALL {
        s.core(other).faults.clear();
    }
    assert_eq!(done["status"], "completed", "{vendor}: {done}");
    done["esims"][0]["iccid"].as_str().unwrap().to_string()
}

async fn topup_plans(s: &SandboxApp, iccid: &str) -> Vec<Value> {
    s.get(&format!("/v1/esims/{iccid}/topup-plans")).await["data"]
        .as_array()
        .unwrap()
        .clone()
}

async fn post_topup(s: &SandboxApp, iccid: &str, plan: &str, key: &str) -> reqwest::Response {
    s.app
        .post(&format!("/v1/esims/{iccid}/topups"))
        .bearer_auth(&s.sf.api_key)
        .header("Idempotency-Key", key)
        .json(&json!({"plan_id": plan}))
        .send()
        .await
        .unwrap()
}

/// An eSIM of `vendor` that takes at least one top-up, with its listed top-up plans.
async fn topuppable_esim(s: &SandboxApp, vendor: VendorId) -> (String, String, Vec<Value>) {
    for (n, plan) in plans_carried_by(s, vendor).await.iter().take(8).enumerate() {
        let iccid = buy_at(s, vendor, plan, &format!("k-buy-{vendor}-{n}")).await;
        let listed = topup_plans(s, &iccid).await;
        if !listed.is_empty() {
            return (plan.clone(), iccid, listed);
        }
    }
    panic!("{vendor}: no eSIM with top-ups among its first plans");
}

/// Buys every listed top-up plan; each must complete at the vendor and add its allowance.
async fn every_listed_topup_completes(vendor: VendorId) {
    let s = start().await;
    let (plan, iccid, mut listed) = topuppable_esim(&s, vendor).await;
    // Data totals first: once an unlimited top-up is on, totals no longer add up.
    listed.sort_by_key(|p| p["data"]["unlimited"] == true);
    let before_sim = s.core(vendor).orders().len();
    let mut total = s.get(&format!("/v1/esims/{iccid}/usage")).await["total_bytes"]
        .as_u64()
        .unwrap_or(0);
    let mut completed = 0;
    for (n, p) in listed.iter().enumerate() {
        let id = p["id"].as_str().unwrap();
        assert_eq!(p["supports_topup"], true);
        let resp = post_topup(&s, &iccid, id, &format!("k-topup-{vendor}-{n}")).await;
        assert_eq!(resp.status(), 201, "{vendor} {id}");
        let topup: Value = resp.json().await.unwrap();
        assert_eq!(topup["kind"], "topup");
        let order_id = topup["id"].as_str().unwrap().to_string();
        let done = s.settle(&order_id, Duration::from_secs(10)).await;
        assert_eq!(done["status"], "completed", "{vendor} {id}: {done}");

        // The vendor's own records: one top-up of this eSIM with the SKU the gateway sent.
        let admin = s.admin_order(&order_id).await;
        assert_eq!(admin["vendor"], vendor.as_str());
        let sku = admin["attempts"][0]["sku"].as_str().unwrap().to_string();
        let records = s.core(vendor).orders();
        let at_vendor: Vec<_> = records
            .iter()
            .skip(before_sim)
            .filter(|o| o.topup && o.iccids == [iccid.clone()] && o.sku == sku)
            .collect();
        assert_eq!(at_vendor.len(), 1, "{vendor} {id}: {records:?}");

        // The eSIM's usage grew by the top-up's allowance (the vendor's exact bytes: a
        // decimal-megabyte vendor gives a little less than the marketed binary amount).
        let usage = s.get(&format!("/v1/esims/{iccid}/usage")).await;
        let now = usage["total_bytes"].as_u64().unwrap_or(0);
        match p["data"]["bytes"].as_u64() {
            Some(marketed) if p["data"]["unlimited"] == false => {
                let added = now.saturating_sub(total);
                assert!(
                    added <= marketed && added * 100 >= marketed * 90,
                    "{vendor} {id}: usage went from {total} to {now}, the plan adds {marketed}: \
                     {usage}"
                );
            }
            _ => assert_eq!(usage["unlimited"], true, "{vendor} {id}: {usage}"),
        }
        total = now;
        completed += 1;
    }
    let eprint = listed
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect::<Vec<_>>();
    eprintln!(
        "TOPUP-TABLE | {vendor} (`{plan}`) | {} listed | {} tried | {completed} completed | {eprint:?}",
        listed.len(),
        listed.len()
    );
    assert_eq!(completed, listed.len());
}

#[tokio::test]
async fn every_listed_esimaccess_topup_completes() {
    every_listed_topup_completes(VendorId::EsimAccess).await;
}

#[tokio::test]
async fn every_listed_esimgo_topup_completes() {
    every_listed_topup_completes(VendorId::EsimGo).await;
}

#[tokio::test]
async fn every_listed_esimfx_topup_completes() {
    every_listed_topup_completes(VendorId::EsimFx).await;
}

/// MicroEsim has no top-up operation and Multiverse's is named by no document: their eSIMs
/// list nothing, their plans say so, and a top-up is refused without asking them.
#[tokio::test]
async fn vendors_without_documented_topups_list_none_and_are_never_asked() {
    let s = start().await;
    for vendor in [VendorId::MicroEsim, VendorId::Multiverse] {
        let plan = plans_carried_by(&s, vendor).await.remove(0);
        let listed = s.get(&format!("/v1/plans/{plan}")).await;
        assert_eq!(listed["supports_topup"], false, "{vendor}: {listed}");
        let iccid = buy_at(&s, vendor, &plan, &format!("k-buy-{vendor}")).await;
        assert!(topup_plans(&s, &iccid).await.is_empty(), "{vendor}");

        // A fault armed on the vendor's top-up call would be used up by any call.
        s.fault(vendor, "topup", Fault::ServerError { status: 500 });
        let before = s.core(vendor).orders().len();
        let resp = post_topup(&s, &iccid, &plan, &format!("k-topup-{vendor}")).await;
        assert_eq!(
            assert_error_shape(resp, 409).await,
            "topup_not_supported",
            "{vendor}"
        );
        assert_eq!(s.core(vendor).orders().len(), before, "{vendor} was asked");
        if vendor == VendorId::Multiverse {
            assert!(s.core(vendor).faults.take("topup").is_some(), "{vendor}");
        }
        eprintln!("TOPUP-TABLE | {vendor} (`{plan}`) | 0 listed | 1 tried | 0 completed | 409");
    }
}

/// An expired eSIM takes nothing; a top-up plan the vendor did not list for this eSIM is
/// refused by us (404) before the vendor is asked; another storefront's eSIM is not found.
#[tokio::test]
async fn expired_foreign_and_unlisted_topups_are_refused_before_any_vendor_call() {
    let s = start().await;
    let vendor = VendorId::EsimAccess;
    let (plan, iccid, listed) = topuppable_esim(&s, vendor).await;
    let before = s.core(vendor).orders().len();

    // A plan the vendor did not list for this eSIM (a new-eSIM plan of another country).
    let listed_ids: Vec<&str> = listed.iter().map(|p| p["id"].as_str().unwrap()).collect();
    let other = s.get("/v1/plans?country=FR&limit=1").await["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!listed_ids.contains(&other.as_str()));
    let resp = post_topup(&s, &iccid, &other, "k-unlisted").await;
    assert_eq!(assert_error_shape(resp, 404).await, "topup_plan_not_found");

    let stranger = s.app.create_storefront("Other Shop").await;
    let resp = s
        .app
        .post(&format!("/v1/esims/{iccid}/topups"))
        .bearer_auth(&stranger.api_key)
        .header("Idempotency-Key", "k-foreign")
        .json(&json!({"plan_id": listed_ids[0]}))
        .send()
        .await
        .unwrap();
    assert_eq!(assert_error_shape(resp, 404).await, "esim_not_found");

    // Expired (its validity ended, as the vendor's status report would record it).
    sqlx::query("UPDATE esims SET expires_at = now() - interval '1 hour' WHERE iccid = $1")
        .bind(&iccid)
        .execute(&s.app.pool)
        .await
        .unwrap();
    let resp = post_topup(&s, &iccid, listed_ids[0], "k-expired").await;
    assert_eq!(assert_error_shape(resp, 409).await, "esim_expired");
    assert!(topup_plans(&s, &iccid).await.is_empty());
    assert_eq!(
        s.core(vendor).orders().len(),
        before,
        "{plan}: the vendor was asked"
    );
}

/// The vendor's answer is kept a short while: a second listing does not ask again. A vendor
/// that cannot be asked gives 503, never a guessed list.
#[tokio::test]
async fn the_vendor_is_asked_once_per_esim_and_an_unreachable_vendor_is_503() {
    let s = start().await;
    let vendor = VendorId::EsimFx;
    let plan = plans_carried_by(&s, vendor).await.remove(0);
    let iccid = buy_at(&s, vendor, &plan, "k-buy-cache").await;

    s.fault(vendor, "topup_offers", Fault::ServerError { status: 503 });
    let resp = s
        .app
        .get(&format!("/v1/esims/{iccid}/topup-plans"))
        .bearer_auth(&s.sf.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        assert_error_shape(resp, 503).await,
        "topup_plans_unavailable"
    );

    let first = topup_plans(&s, &iccid).await;
    // Any further call to the vendor's list would use this fault up.
    s.fault(vendor, "topup_offers", Fault::ServerError { status: 503 });
    assert_eq!(topup_plans(&s, &iccid).await, first);
    assert!(s.core(vendor).faults.take("topup_offers").is_some());
}
