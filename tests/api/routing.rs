//! Routing against the sandbox vendors: a near-tie goes to the vendor with the better record
//! (beyond the band the cheaper one still wins), a price rise at eSIM Go is caught by its
//! dry run before anything is bought, a rise known only after buying is a negative-margin
//! alert, the minimum margin keeps a too-expensive offer out, and every order says why.

use std::time::Duration;

use esim_gateway::{
    sandbox::{Fault, SimSettings},
    vendors::VendorId,
};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::{orders::sold_out, sandbox_app::SandboxApp};

/// Vendors whose orders complete straight from the order call.
const SIMPLE: [VendorId; 3] = [VendorId::EsimAccess, VendorId::MicroEsim, VendorId::EsimFx];

async fn start(env: &[(&str, &str)]) -> SandboxApp {
    let mut all = vec![("PROVISION_RETRY_BASE", "100ms"), ("MARKUP_PERCENT", "20")];
    all.extend_from_slice(env);
    SandboxApp::start_with(SimSettings::fast(), &all).await
}

fn dec(v: &Value) -> Decimal {
    v.as_str()
        .map(|s| s.parse().unwrap())
        .unwrap_or_else(|| v.to_string().parse().unwrap())
}

/// Each vendor's cheapest eligible offer for the plan, in ranking order, as
/// `/admin/plans/{id}/offers` shows it: `(vendor, cost in retail)`.
async fn vendor_costs(s: &SandboxApp, plan: &str) -> Vec<(VendorId, Decimal)> {
    let offers = s.admin_get(&format!("/admin/plans/{plan}/offers")).await;
    let mut out: Vec<(VendorId, Decimal)> = Vec::new();
    for o in offers["data"].as_array().unwrap() {
        let v: VendorId = o["vendor"].as_str().unwrap().parse().unwrap();
        if !out.iter().any(|(x, _)| *x == v) {
            out.push((v, dec(&o["cost_in_retail"]["amount"])));
        }
    }
    out
}

async fn plan_ids(s: &SandboxApp) -> Vec<String> {
    let plans = s.get("/v1/plans?limit=200").await;
    plans["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect()
}

async fn order(s: &SandboxApp, key: &str, plan: &str) -> String {
    let (status, order) = s.post_order(key, &json!({"plan_id": plan})).await;
    assert_eq!(status, 201, "{order}");
    order["id"].as_str().unwrap().to_string()
}

async fn admin_order(s: &SandboxApp, id: &str) -> Value {
    s.admin_get(&format!("/admin/orders/{id}")).await
}

fn attempted(order: &Value) -> Vec<String> {
    order["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["vendor"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_near_tie_goes_to_the_more_reliable_vendor_and_beyond_the_band_cost_wins() {
    let band = Decimal::from(5);
    // Breakers stay closed: this is about the record, not the breaker.
    let s = start(&[
        ("ROUTING_NEAR_TIE_PERCENT", "5"),
        ("BREAKER_FAILURES", "1000"),
    ])
    .await;
    let within = |cheapest: Decimal, c: Decimal| {
        c <= cheapest * (Decimal::ONE + band / Decimal::ONE_HUNDRED)
    };
    // For one simple vendor A: a plan P where A is cheapest and one other simple vendor B is
    // a near-tie (nobody else), and a plan Q where A is cheapest and the next is beyond it.
    let mut costs = Vec::new();
    for id in plan_ids(&s).await {
        costs.push((id.clone(), vendor_costs(&s, &id).await));
    }
    let found = SIMPLE.iter().find_map(|&a| {
        let p = costs.iter().find_map(|(id, c)| match c.as_slice() {
            [(x, ca), (b, cb), rest @ ..]
                if *x == a
                    && SIMPLE.contains(b)
                    && cb > ca
                    && within(*ca, *cb)
                    && rest.iter().all(|(_, cr)| !within(*ca, *cr)) =>
            {
                Some((id.clone(), *b))
            }
            _ => None,
        })?;
        let q = costs.iter().find_map(|(id, c)| match c.as_slice() {
            [(x, ca), (_, cn), ..] if *x == a && !within(*ca, *cn) => Some(id.clone()),
            _ => None,
        })?;
        Some((a, p, q))
    });
    let Some((flaky, (near_tie_plan, reliable), beyond_plan)) = found else {
        panic!("no vendor with both a near-tie plan and a plan beyond the band: {costs:?}");
    };

    // The cheaper vendor's orders drop without an answer: unknown outcomes, a bad record
    // (on the plan it leads by far, so both orders go to it whatever the first did).
    s.core(flaky).faults.inject_times(
        "order",
        Fault::Reset {
            after_processing: false,
        },
        None,
    );
    for i in 0..2 {
        let id = order(&s, &format!("k-rt-flaky-{i}"), &beyond_plan).await;
        assert_eq!(attempted(&admin_order(&s, &id).await)[0], flaky.as_str());
    }
    let vendors = s.admin_get("/admin/vendors").await;
    let status = vendors["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == flaky.as_str())
        .unwrap();
    assert!(
        status["attempts"]["unknown"].as_u64().unwrap() >= 2,
        "{status}"
    );

    // The operator view ranks as the order will.
    let offers = s
        .admin_get(&format!("/admin/plans/{near_tie_plan}/offers"))
        .await;
    assert_eq!(offers["data"][0]["vendor"], reliable.as_str(), "{offers}");
    assert_eq!(
        offers["routing"]["rule"], "near_tie_success_rate",
        "{offers}"
    );

    let id = order(&s, "k-rt-near-tie", &near_tie_plan).await;
    let done = s.settle(&id, Duration::from_secs(20)).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(s.vendor_orders_for(&id), [(reliable, 1)]);
    let o = admin_order(&s, &id).await;
    assert_eq!(attempted(&o), [reliable.as_str()]);
    let routing = o["routing"].as_array().unwrap();
    assert_eq!(routing.len(), 1, "{o}");
    let r = &routing[0];
    assert_eq!(r["attempt_seq"], 1, "{r}");
    assert_eq!(r["rule"], "near_tie_success_rate", "{r}");
    assert_eq!(r["window_seconds"], 900, "{r}");
    let candidates = r["candidates"].as_array().unwrap();
    assert_eq!(candidates[0]["vendor"], reliable.as_str(), "{r}");
    assert!(
        candidates[0]["success_rate"].is_null(),
        "no record yet: {r}"
    );
    let bad = candidates
        .iter()
        .find(|c| c["vendor"] == flaky.as_str())
        .unwrap_or_else(|| panic!("{flaky} not among the candidates: {r}"));
    assert!(dec(&bad["success_rate"]) < Decimal::ONE, "{r}");
    assert!(bad["unknown"].as_u64().unwrap() >= 1, "{r}");
    assert_eq!(bad["breaker"], "closed", "{r}");
    for c in candidates {
        for field in [
            "offer_id",
            "sku",
            "cost",
            "cost_in_retail",
            "latency_p50_ms",
        ] {
            assert!(c.get(field).is_some(), "{field} missing: {c}");
        }
    }

    // Beyond the band the cheaper vendor wins, whatever its record.
    s.core(flaky).faults.clear();
    let id = order(&s, "k-rt-beyond", &beyond_plan).await;
    let done = s.settle(&id, Duration::from_secs(20)).await;
    assert_eq!(done["status"], "completed", "{done}");
    let o = admin_order(&s, &id).await;
    assert_eq!(attempted(&o), [flaky.as_str()]);
    assert_eq!(o["routing"][0]["rule"], "cheapest", "{o}");
}

/// A plan whose cheapest vendor is eSIM Go, and the next vendor.
async fn esimgo_first(s: &SandboxApp) -> (String, VendorId) {
    let (plan, ranking) = s.plan_with(2, Some(VendorId::EsimGo)).await;
    let next = ranking
        .into_iter()
        .find(|v| *v != VendorId::EsimGo)
        .unwrap();
    (plan, next)
}

#[tokio::test]
async fn a_price_rise_at_esim_go_is_caught_before_buying_and_the_next_vendor_sells() {
    let s = start(&[("PRICE_TOLERANCE_PERCENT", "2")]).await;
    let (plan, next) = esimgo_first(&s).await;
    let esimgo = s.core(VendorId::EsimGo);
    esimgo.raise_prices(Decimal::from(5));
    let bought_before = esimgo.orders().len();

    let id = order(&s, "k-rt-price-rise", &plan).await;
    let done = s.settle(&id, Duration::from_secs(30)).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        esimgo.orders().len(),
        bought_before,
        "eSIM Go recorded a transaction"
    );
    let o = admin_order(&s, &id).await;
    assert_eq!(attempted(&o), [VendorId::EsimGo.as_str(), next.as_str()]);
    let refused = &o["attempts"][0];
    assert_eq!(refused["outcome"], "rejected", "{o}");
    assert_eq!(refused["error_kind"], "price_changed", "{o}");
    assert_eq!(refused["error_code"], "price_above_expected", "{o}");
    assert_eq!(o["vendor"], next.as_str(), "{o}");
    // One ranking at intake; the next vendor came from it, not from a new one.
    assert_eq!(o["routing"].as_array().unwrap().len(), 1, "{o}");
    assert_eq!(o["routing"][0]["candidates"][0]["vendor"], "esimgo", "{o}");

    // Within the tolerance eSIM Go sells, and its answer tells what it charged.
    esimgo.raise_prices(Decimal::ONE);
    let id = order(&s, "k-rt-price-within", &plan).await;
    let done = s.settle(&id, Duration::from_secs(30)).await;
    assert_eq!(done["status"], "completed", "{done}");
    let o = admin_order(&s, &id).await;
    assert_eq!(attempted(&o), [VendorId::EsimGo.as_str()]);
    let a = &o["attempts"][0];
    let (cost, charged) = (dec(&a["cost"]["amount"]), dec(&a["charged"]["amount"]));
    assert_eq!(charged, (cost * Decimal::new(101, 2)).round_dp(2), "{a}");
    assert!(o["attention"].is_null(), "{o}");

    // A dry run without an answer bought nothing and sent no transaction: the next vendor
    // sells at once, without waiting for a reconcile.
    esimgo.faults.inject(
        "validate_order",
        Fault::Reset {
            after_processing: false,
        },
    );
    let bought_before = esimgo.orders().len();
    let id = order(&s, "k-rt-validate-lost", &plan).await;
    let done = s.settle(&id, Duration::from_secs(30)).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(esimgo.orders().len(), bought_before);
    let o = admin_order(&s, &id).await;
    assert_eq!(attempted(&o), [VendorId::EsimGo.as_str(), next.as_str()]);
    assert_eq!(o["attempts"][0]["outcome"], "unreachable", "{o}");
}

#[tokio::test]
async fn a_price_known_only_after_buying_below_the_retail_price_is_a_negative_margin_alert() {
    // A tolerance wider than the markup lets the dry run pass a price that eats the margin.
    let s = start(&[("PRICE_TOLERANCE_PERCENT", "50")]).await;
    let (plan, _) = esimgo_first(&s).await;
    s.core(VendorId::EsimGo).raise_prices(Decimal::from(30));
    let id = order(&s, "k-rt-negative", &plan).await;
    let done = s.settle(&id, Duration::from_secs(30)).await;
    assert_eq!(done["status"], "completed", "{done}");
    let o = admin_order(&s, &id).await;
    assert_eq!(attempted(&o), [VendorId::EsimGo.as_str()]);
    assert!(!o["attempts"][0]["charged"].is_null(), "{o}");
    assert!(dec(&o["margin"]["amount"]) < Decimal::ZERO, "{o}");
    let reason = o["attention"]["reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with("negative margin"), "{o}");
    // One operator alert for the order, with what it cost against what it sold for.
    let alerts = s
        .admin_get("/admin/alerts?type=order.negative_margin")
        .await;
    let alerts = alerts["data"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["vendor"], "esimgo");
    assert_eq!(alerts[0]["data"]["order_id"], id.as_str());
    assert!(dec(&alerts[0]["data"]["margin"]["amount"]) < Decimal::ZERO);
    let metrics = s.app.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("order_negative_margin_total{")
                && l.contains("vendor=\"esimgo\"")),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("order_margin_ratio_bucket{") && l.contains("vendor=\"esimgo\"")),
        "{metrics}"
    );
}

#[tokio::test]
async fn the_minimum_margin_keeps_a_too_expensive_offer_out() {
    // Price = cheapest × 1.2; keeping 10 % of it allows a cost up to cheapest × 1.08.
    let s = start(&[("MIN_MARGIN_PERCENT", "10")]).await;
    let mut found = None;
    for id in plan_ids(&s).await {
        let offers = s.admin_get(&format!("/admin/plans/{id}/offers")).await;
        let data = offers["data"].as_array().unwrap();
        let Some(first) = data.first() else { continue };
        let v: VendorId = first["vendor"].as_str().unwrap().parse().unwrap();
        let only_one = data.iter().all(|o| o["vendor"] == first["vendor"]);
        let kept_out = offers["routing"]["excluded"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["reason"] == "below_min_margin" && e["vendor"] != first["vendor"])
            .map(|e| e["vendor"].as_str().unwrap().parse::<VendorId>().unwrap());
        if let (true, true, Some(out)) = (SIMPLE.contains(&v), only_one, kept_out) {
            found = Some((id, v, out));
            break;
        }
    }
    let (plan, cheapest, kept_out) = found.expect("a plan with a below-margin second vendor");
    s.core(cheapest)
        .faults
        .inject_times("order", sold_out(cheapest), None);
    let id = order(&s, "k-rt-min-margin", &plan).await;
    let done = s.settle(&id, Duration::from_secs(20)).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(done["failure"]["code"], "sold_out", "{done}");
    assert!(
        s.vendor_orders_for(&id).is_empty(),
        "{kept_out} was called below the minimum margin"
    );
    let o = admin_order(&s, &id).await;
    assert_eq!(attempted(&o), [cheapest.as_str()]);
    let r = &o["routing"][0];
    assert_eq!(r["rule"], "only_candidate", "{r}");
    assert!(
        r["excluded"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["vendor"] == kept_out.as_str() && e["reason"] == "below_min_margin"),
        "{r}"
    );
}
