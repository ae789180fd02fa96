//! The catalogue end to end over the five sandbox vendors: every adapter's offers are
//! synced, normalized and grouped, and overlapping products make routing visible.

use std::collections::HashSet;

use esim_gateway::{
    catalog::pricing::Pricing, sandbox::Fault, vendors::VendorId, workers::catalog_sync::sync_all,
};
use serde_json::Value;

use crate::sandbox_app::SandboxApp;

#[tokio::test]
async fn all_five_sandbox_vendors_sync_into_overlapping_plans() {
    let s = SandboxApp::start().await;
    let vendors = s.admin_get("/admin/vendors").await;
    for v in vendors["data"].as_array().unwrap() {
        assert_eq!(v["enabled"], true, "{v}");
        assert_eq!(v["mode"], "sandbox", "{v}");
        assert_eq!(v["healthy"], true, "{v}");
        assert!(v["offer_count"].as_u64().unwrap() > 50, "{v}");
        assert!(v["balance"]["amount"].is_string(), "{v}");
        assert!(v["last_error"].is_null(), "{v}");
    }
    // The same product at several vendors, in several currencies.
    let offers = s.admin_get("/admin/plans/jp-10gb-30d/offers").await;
    let rows = offers["data"].as_array().unwrap();
    let vendors: HashSet<&str> = rows.iter().map(|r| r["vendor"].as_str().unwrap()).collect();
    let currencies: HashSet<&str> = rows
        .iter()
        .map(|r| r["cost"]["currency"].as_str().unwrap())
        .collect();
    assert!(vendors.len() >= 3, "{offers}");
    assert!(currencies.len() >= 2, "{offers}");
    let costs: Vec<rust_decimal::Decimal> = rows
        .iter()
        .map(|r| {
            r["cost_in_retail"]["amount"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert!(costs.windows(2).all(|w| w[0] <= w[1]), "cheapest first");
    let plan = s.get("/v1/plans/jp-10gb-30d").await;
    assert_eq!(plan["price"], rows[0]["retail_price"]);

    // Multi-country plans get readable ids and a region name.
    let eu = s.get("/v1/plans?country=FR,DE,IT&limit=200").await;
    assert!(!eu["data"].as_array().unwrap().is_empty());

    // Stable ids across a second sync.
    let before = plan_ids(&s).await;
    sync_all(
        &s.app.pool,
        &s.app.state.test_vendors,
        &Pricing::from_config(&s.app.state.config),
    )
    .await;
    assert_eq!(plan_ids(&s).await, before);

    // A vendor failing its catalogue call keeps its offers and hurts no one else.
    s.core(VendorId::EsimGo)
        .faults
        .inject("list", Fault::ServerError { status: 503 });
    let resp = s
        .app
        .admin(reqwest::Method::POST, "/admin/vendors/esimgo/sync")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 502);
    assert_eq!(plan_ids(&s).await, before);
}

async fn plan_ids(s: &SandboxApp) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page: Value = match &cursor {
            Some(c) => s.get(&format!("/v1/plans?limit=200&cursor={c}")).await,
            None => s.get("/v1/plans?limit=200").await,
        };
        ids.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["id"].as_str().unwrap().to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return ids,
        }
    }
}
