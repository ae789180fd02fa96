//! Catalogue sync, plan building and the plan endpoints, against a real database. The
//! vendors here are scripted (their catalogue is whatever the test says), so sync behaviour
//! can be driven precisely; the sandbox end-to-end path is in `sandbox_catalog.rs`.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use esim_gateway::vendors::CallbackHeaders;
use esim_gateway::{
    catalog::{pricing::Pricing, sync::sync_vendor},
    domain::money::{Currency, Money},
    vendors::{
        CallbackTrust, CancelOutcome, DataAllowance, DataKind, EsimRef, GIB, Offer, OfferFlag,
        OrderState, PlaceOrder, Placed, TopUp, Usage, Vendor, VendorError, VendorEvent, VendorId,
        VendorOrderRef,
        registry::{VendorMode, Vendors},
    },
    workers::catalog_sync::sync_all,
};
use reqwest::Method;
use serde_json::Value;

use crate::helpers::{TestApp, assert_error_shape};

/// A vendor whose catalogue (or failure) the test sets; every other operation is refused.
pub struct ScriptedVendor {
    id: VendorId,
    catalogue: Mutex<Result<Vec<Offer>, VendorError>>,
}

impl ScriptedVendor {
    pub fn new(id: VendorId, offers: Vec<Offer>) -> Arc<Self> {
        Arc::new(ScriptedVendor {
            id,
            catalogue: Mutex::new(Ok(offers)),
        })
    }

    pub fn set(&self, catalogue: Result<Vec<Offer>, VendorError>) {
        *self.catalogue.lock().unwrap() = catalogue;
    }
}

#[async_trait]
impl Vendor for ScriptedVendor {
    fn id(&self) -> VendorId {
        self.id
    }
    fn place_is_idempotent(&self) -> bool {
        false
    }
    async fn list_offers(&self) -> Result<Vec<Offer>, VendorError> {
        self.catalogue.lock().unwrap().clone()
    }
    async fn place_order(&self, _: &PlaceOrder) -> Result<Placed, VendorError> {
        Err(VendorError::Unsupported)
    }
    async fn fetch_order(&self, _: &VendorOrderRef) -> Result<OrderState, VendorError> {
        Err(VendorError::Unsupported)
    }
    async fn topup(&self, _: &TopUp) -> Result<Placed, VendorError> {
        Err(VendorError::Unsupported)
    }
    async fn cancel(
        &self,
        _: &VendorOrderRef,
        _: &[EsimRef],
    ) -> Result<CancelOutcome, VendorError> {
        Err(VendorError::Unsupported)
    }
    async fn usage(&self, _: &EsimRef) -> Result<Usage, VendorError> {
        Err(VendorError::Unsupported)
    }
    async fn balance(&self) -> Result<Money, VendorError> {
        Ok(Money::new(1000.into(), Currency::USD))
    }
    fn verify_callback(&self, _: &CallbackHeaders, _: &[u8]) -> Result<CallbackTrust, VendorError> {
        Err(VendorError::Unsupported)
    }
    fn parse_callback(
        &self,
        _: &CallbackHeaders,
        _: &[u8],
    ) -> Result<Vec<VendorEvent>, VendorError> {
        Err(VendorError::Unsupported)
    }
}

pub fn offer(
    vendor: VendorId,
    sku: &str,
    countries: &[&str],
    data: Option<DataAllowance>,
    days: u32,
    cost: &str,
    currency: &str,
) -> Offer {
    Offer {
        vendor,
        sku: sku.into(),
        name: format!("{sku} product"),
        countries: countries.iter().map(|c| c.to_string()).collect(),
        region_label: (countries.len() > 1).then(|| "Europe".to_string()),
        data,
        validity_days: days,
        cost: Money::new(cost.parse().unwrap(), currency.parse().unwrap()),
        networks: vec![],
        supports_topup: true,
        is_topup: false,
        active: true,
        flags: vec![],
        raw: serde_json::json!({ "sku": sku }),
    }
}

/// `n` binary gigabytes for the whole validity.
pub fn gb(n: u64) -> Option<DataAllowance> {
    Some(DataAllowance::binary(DataKind::Total, n * GIB))
}

struct Catalog {
    app: TestApp,
    key: String,
    a: Arc<ScriptedVendor>,
    b: Arc<ScriptedVendor>,
}

/// Two vendors (eSIM Access in USD, MicroEsim in HKD) with overlapping products.
async fn setup() -> Catalog {
    let a = ScriptedVendor::new(
        VendorId::EsimAccess,
        vec![
            offer(
                VendorId::EsimAccess,
                "A-JP-10",
                &["JP"],
                gb(10),
                7,
                "10.00",
                "USD",
            ),
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
                "A-FR-5",
                &["FR"],
                gb(5),
                30,
                "6.00",
                "USD",
            ),
            offer(
                VendorId::EsimAccess,
                "A-EU-5",
                &["DE", "FR", "IT"],
                gb(5),
                30,
                "9.00",
                "USD",
            ),
            offer(
                VendorId::EsimAccess,
                "A-JP-UL",
                &["JP"],
                Some(DataAllowance::unlimited()),
                15,
                "20.00",
                "USD",
            ),
            offer(
                VendorId::EsimAccess,
                "A-JP-D1",
                &["JP"],
                Some(DataAllowance::binary(DataKind::Daily, GIB)),
                5,
                "7.00",
                "USD",
            ),
        ],
    );
    let b = ScriptedVendor::new(
        VendorId::MicroEsim,
        vec![
            // 70 HKD = 8.96 USD: cheaper than A's 10.00.
            offer(
                VendorId::MicroEsim,
                "M-JP-10",
                &["JP"],
                gb(10),
                7,
                "70",
                "HKD",
            ),
            offer(
                VendorId::MicroEsim,
                "M-JP-3",
                &["JP"],
                gb(3),
                15,
                "30",
                "HKD",
            ),
            offer(
                VendorId::MicroEsim,
                "M-TH-5",
                &["TH"],
                None,
                10,
                "20",
                "HKD",
            ),
            {
                let mut o = offer(
                    VendorId::MicroEsim,
                    "M-CN-5",
                    &["CN"],
                    gb(5),
                    10,
                    "40",
                    "HKD",
                );
                o.flags.push(OfferFlag::EkycRequired);
                o
            },
        ],
    );
    let mut vendors = Vendors::default();
    vendors.insert(a.clone(), VendorMode::Sandbox);
    vendors.insert(b.clone(), VendorMode::Sandbox);
    let app = TestApp::spawn_full(&[("MARKUP_PERCENT", "20")], vendors).await;
    let sf = app.create_storefront("Catalog Shop").await;
    sync_all(
        &app.pool,
        &app.state.test_vendors,
        &Pricing::from_config(&app.state.config),
    )
    .await;
    Catalog {
        app,
        key: sf.api_key,
        a,
        b,
    }
}

impl Catalog {
    async fn get(&self, path: &str) -> reqwest::Response {
        self.app
            .get(path)
            .bearer_auth(&self.key)
            .send()
            .await
            .unwrap()
    }

    async fn plans(&self, query: &str) -> Value {
        let resp = self.get(&format!("/v1/plans{query}")).await;
        assert_eq!(resp.status(), 200, "{query}");
        resp.json().await.unwrap()
    }

    async fn plan_ids(&self, query: &str) -> Vec<String> {
        ids(&self.plans(query).await)
    }

    async fn resync(&self, vendor: &ScriptedVendor) {
        sync_vendor(
            &self.app.pool,
            vendor,
            &self.app.state.test_vendors,
            &Pricing::from_config(&self.app.state.config),
        )
        .await
        .ok();
    }
}

fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn offers_group_into_plans_priced_from_the_cheapest_with_fx_and_markup() {
    let c = setup().await;
    let plan: Value = c.get("/v1/plans/jp-10gb-7d").await.json().await.unwrap();
    // 70 HKD × 0.128 = 8.96 USD × 1.20 = 10.752 → 10.76
    assert_eq!(
        plan["price"],
        serde_json::json!({"amount": "10.76", "currency": "USD"})
    );
    assert_eq!(plan["name"], "Japan 10 GB 7 days");
    assert_eq!(plan["countries"], serde_json::json!(["JP"]));
    assert_eq!(
        plan["data"],
        serde_json::json!({"bytes": 10737418240u64, "unlimited": false, "daily": false})
    );
    // The France plan is priced from the cheaper offer... which is the French one (6.00 < 9.00).
    let fr: Value = c.get("/v1/plans/fr-5gb-30d").await.json().await.unwrap();
    assert_eq!(fr["price"]["amount"], "7.20");

    let offers: Value = c.app.admin_json("/admin/plans/jp-10gb-7d/offers").await;
    let rows = offers["data"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["vendor"], "microesim");
    assert_eq!(
        rows[0]["cost"],
        serde_json::json!({"amount": "70", "currency": "HKD"})
    );
    assert_eq!(rows[0]["cost_in_retail"]["amount"], "8.960");
    assert_eq!(rows[1]["vendor"], "esimaccess");
    assert_eq!(rows[1]["retail_price"]["amount"], "12.00");
}

#[tokio::test]
async fn unsellable_offers_are_kept_counted_and_never_sold() {
    let c = setup().await;
    let ids = c.plan_ids("?limit=200").await;
    assert!(
        !ids.iter()
            .any(|id| id.starts_with("th-") || id.starts_with("cn-")),
        "{ids:?}"
    );
    let stored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM vendor_offers WHERE vendor = 'microesim' AND flags <> '{}'",
    )
    .fetch_one(&c.app.pool)
    .await
    .unwrap();
    assert_eq!(stored, 2);
    let vendors: Value = c.app.admin_json("/admin/vendors").await;
    let micro = vendors["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == "microesim")
        .unwrap();
    assert_eq!(
        micro["unparsed_count"], 1,
        "the eKYC plan is understood, just not sold"
    );
    assert_eq!(micro["offer_count"], 4);
    assert_eq!(micro["enabled"], true);
    assert_eq!(micro["healthy"], true);
    assert_eq!(micro["mode"], "sandbox");
    assert_eq!(micro["balance"]["amount"], "1000");
    let go = vendors["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == "esimgo")
        .unwrap();
    assert_eq!(go["enabled"], false);
}

#[tokio::test]
async fn vanished_offers_go_inactive_and_plan_ids_stay_stable() {
    let c = setup().await;
    let before = c.plan_ids("?limit=200").await;
    // A second identical sync changes nothing.
    c.resync(&c.a).await;
    assert_eq!(c.plan_ids("?limit=200").await, before);

    // The only 1 GB Japan offer disappears: its plan goes, the row stays inactive.
    let mut remaining = c.a.list_offers().await.unwrap();
    remaining.retain(|o| o.sku != "A-JP-1");
    c.a.set(Ok(remaining));
    c.resync(&c.a).await;
    let after = c.plan_ids("?limit=200").await;
    assert!(!after.contains(&"jp-1gb-7d".to_string()));
    assert_eq!(after.len(), before.len() - 1);
    let active: bool = sqlx::query_scalar("SELECT active FROM vendor_offers WHERE sku = 'A-JP-1'")
        .fetch_one(&c.app.pool)
        .await
        .unwrap();
    assert!(!active);
    let resp = c.get("/v1/plans/jp-1gb-7d").await;
    assert_eq!(assert_error_shape(resp, 404).await, "plan_not_found");
}

/// Each active plan's row version (`xmin` changes whenever a row is written).
async fn plan_versions(c: &Catalog) -> std::collections::BTreeMap<String, String> {
    sqlx::query_as::<_, (String, String)>("SELECT id, xmin::text FROM plans WHERE active")
        .fetch_all(&c.app.pool)
        .await
        .unwrap()
        .into_iter()
        .collect()
}

#[tokio::test]
async fn a_resync_writes_only_the_plans_it_changes() {
    let c = setup().await;
    let before = plan_versions(&c).await;
    c.resync(&c.a).await;
    assert_eq!(
        plan_versions(&c).await,
        before,
        "an identical sync writes no plan"
    );

    // The 1 GB Japan offer gets dearer: its plan, and only it, is written and served anew.
    let mut offers = c.a.list_offers().await.unwrap();
    let jp1 = offers.iter_mut().find(|o| o.sku == "A-JP-1").unwrap();
    jp1.cost = Money::new("3.00".parse().unwrap(), jp1.cost.currency);
    c.a.set(Ok(offers));
    c.resync(&c.a).await;
    let after = plan_versions(&c).await;
    let written: Vec<&String> = after
        .iter()
        .filter(|(id, v)| before.get(*id) != Some(v))
        .map(|(id, _)| id)
        .collect();
    assert_eq!(written, ["jp-1gb-7d"]);
    let plan: Value = c.get("/v1/plans/jp-1gb-7d").await.json().await.unwrap();
    // 3.00 USD × 1.20 markup
    assert_eq!(plan["price"]["amount"], "3.60");
}

/// Holds the plan rebuild lock on a connection of its own, as a rebuild elsewhere would.
async fn hold_rebuild_lock(c: &Catalog) -> sqlx::pool::PoolConnection<sqlx::Postgres> {
    let mut conn = c.app.pool.acquire().await.unwrap();
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(esim_gateway::store::plans::PLANS_REBUILD_LOCK)
        .execute(&mut *conn)
        .await
        .unwrap();
    conn
}

#[tokio::test]
async fn a_resync_that_changes_no_offer_rebuilds_no_plan_and_one_that_does_waits_for_its_rebuild() {
    let c = setup().await;
    // Every rebuild needs this lock: a sync that finishes while it is held did not rebuild.
    let mut held = hold_rebuild_lock(&c).await;
    tokio::time::timeout(std::time::Duration::from_secs(10), c.resync(&c.a))
        .await
        .expect("an unchanged sync does not rebuild the plans");

    let mut offers = c.a.list_offers().await.unwrap();
    let jp1 = offers.iter_mut().find(|o| o.sku == "A-JP-1").unwrap();
    jp1.cost = Money::new("3.00".parse().unwrap(), jp1.cost.currency);
    c.a.set(Ok(offers));
    let changed = c.resync(&c.a);
    tokio::pin!(changed);
    assert!(
        tokio::time::timeout(std::time::Duration::from_secs(1), &mut changed)
            .await
            .is_err(),
        "a sync that changed an offer rebuilds the plans"
    );
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(esim_gateway::store::plans::PLANS_REBUILD_LOCK)
        .execute(&mut *held)
        .await
        .unwrap();
    changed.await;
    let plan: Value = c.get("/v1/plans/jp-1gb-7d").await.json().await.unwrap();
    assert_eq!(plan["price"]["amount"], "3.60");
}

#[tokio::test]
async fn a_new_process_rebuilds_on_its_first_sync_though_no_offer_changed() {
    let c = setup().await;
    let fr: Value = c.get("/v1/plans/fr-5gb-30d").await.json().await.unwrap();
    assert_eq!(fr["price"]["amount"], "7.20");
    // Another process (its own pool) priced with a 50% markup: its first sync changes no
    // offer, and still the plans get its prices.
    let options = (*c.app.pool.connect_options()).clone();
    let other = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect_with(options)
        .await
        .unwrap();
    let mut pricing = Pricing::from_config(&c.app.state.config);
    pricing.markup_percent = "50".parse().unwrap();
    sync_vendor(&other, c.a.as_ref(), &c.app.state.test_vendors, &pricing)
        .await
        .unwrap();
    // 6.00 USD × 1.50, on the first replica too (its cache hears of the rebuild).
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let fr: Value = c.get("/v1/plans/fr-5gb-30d").await.json().await.unwrap();
        if fr["price"]["amount"] == "9.00" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{fr}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn one_vendor_failing_keeps_its_offers_and_blocks_no_one() {
    let c = setup().await;
    c.b.set(Err(VendorError::Unknown("connection reset".into())));
    let mut a_offers = c.a.list_offers().await.unwrap();
    a_offers.push(offer(
        VendorId::EsimAccess,
        "A-IT-20",
        &["IT"],
        gb(20),
        30,
        "15.00",
        "USD",
    ));
    c.a.set(Ok(a_offers));
    sync_all(
        &c.app.pool,
        &c.app.state.test_vendors,
        &Pricing::from_config(&c.app.state.config),
    )
    .await;

    // A's new offer is on sale; B's old offers still price the Japan plan.
    assert!(
        c.plan_ids("?country=IT")
            .await
            .contains(&"it-20gb-30d".to_string())
    );
    let plan: Value = c.get("/v1/plans/jp-10gb-7d").await.json().await.unwrap();
    assert_eq!(plan["price"]["amount"], "10.76");

    let resp = c
        .app
        .admin(Method::POST, "/admin/vendors/microesim/sync")
        .send()
        .await
        .unwrap();
    assert_eq!(assert_error_shape(resp, 502).await, "vendor_error");
    let vendors: Value = c.app.admin_json("/admin/vendors").await;
    let micro = vendors["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == "microesim")
        .unwrap();
    assert_eq!(micro["healthy"], false);
    assert!(
        micro["last_error"]
            .as_str()
            .unwrap()
            .contains("connection reset")
    );
    assert_eq!(micro["offer_count"], 4);

    // Recovery through the admin endpoint.
    c.b.set(Ok(vec![offer(
        VendorId::MicroEsim,
        "M-JP-10",
        &["JP"],
        gb(10),
        7,
        "70",
        "HKD",
    )]));
    let resp = c
        .app
        .admin(Method::POST, "/admin/vendors/microesim/sync")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["outcome"], "synced");
    assert_eq!(body["offers"], 1);
    assert_eq!(body["deactivated"], 3);
}

#[tokio::test]
async fn filters_cover_every_parameter() {
    let c = setup().await;
    let all = c.plan_ids("?limit=200").await;
    assert_eq!(all.len(), 7, "{all:?}");
    // The European plan covers FR, DE and IT; France alone has its own plan too.
    assert_eq!(c.plan_ids("?country=FR,DE").await.len(), 1);
    assert_eq!(
        c.plan_ids("?country=FR&country=DE&country=IT").await.len(),
        1
    );
    assert_eq!(c.plan_ids("?country=FR").await.len(), 2);
    assert_eq!(c.plan_ids("?country=fr").await.len(), 2);
    assert!(c.plan_ids("?country=US").await.is_empty());
    assert_eq!(
        c.plan_ids("?country=JP&unlimited=true").await,
        ["jp-unlimited-15d"]
    );
    assert!(
        !c.plan_ids("?unlimited=false")
            .await
            .contains(&"jp-unlimited-15d".to_string())
    );
    // Daily 1 GB × 5 days = 5 GB total; unlimited always qualifies.
    let big = c.plan_ids("?country=JP&min_data_gb=5").await;
    assert_eq!(big.len(), 3, "{big:?}");
    assert_eq!(c.plan_ids("?min_days=30").await.len(), 2);
    assert_eq!(c.plan_ids("?max_days=5").await, ["jp-1gb-daily-5d"]);
    assert_eq!(c.plan_ids("?max_price=3").await, ["jp-1gb-7d"]);
    let by_days = c.plans("?sort=days&limit=200").await;
    let days: Vec<i64> = by_days["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["validity_days"].as_i64().unwrap())
        .collect();
    assert!(days.windows(2).all(|w| w[0] <= w[1]), "{days:?}");
    let by_price = c.plans("?limit=200").await;
    let prices: Vec<rust_decimal::Decimal> = by_price["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["price"]["amount"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(prices.windows(2).all(|w| w[0] <= w[1]), "{prices:?}");
    let by_data = c.plan_ids("?sort=data&limit=200").await;
    assert_eq!(by_data.last().unwrap(), "jp-unlimited-15d");

    for bad in [
        "?country=XX",
        "?limit=0",
        "?sort=colour",
        "?min_data_gb=lots",
        "?cursor=nope",
        "?nope=1",
    ] {
        let resp = c.get(&format!("/v1/plans{bad}")).await;
        assert_eq!(resp.status(), 400, "{bad}");
        assert_error_shape(resp, 400).await;
    }
}

#[tokio::test]
async fn cursor_pagination_walks_every_plan_once() {
    let c = setup().await;
    for sort in ["price", "data", "days"] {
        let all = c.plan_ids(&format!("?sort={sort}&limit=200")).await;
        let mut walked = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let q = match &cursor {
                Some(cur) => format!("?sort={sort}&limit=3&cursor={cur}"),
                None => format!("?sort={sort}&limit=3"),
            };
            let page = c.plans(&q).await;
            walked.extend(ids(&page));
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_string()),
                None => break,
            }
        }
        assert_eq!(walked, all, "sort={sort}");
    }
    // Exactly one full page: no cursor after it.
    let page = c.plans("?limit=7").await;
    assert_eq!(ids(&page).len(), 7);
    assert!(page["next_cursor"].is_null());
    // An empty result is a page too.
    let empty = c.plans("?country=US").await;
    assert!(empty["data"].as_array().unwrap().is_empty() && empty["next_cursor"].is_null());
    // A cursor made for another sort is refused.
    let first = c.plans("?sort=price&limit=2").await;
    let cur = first["next_cursor"].as_str().unwrap();
    let resp = c.get(&format!("/v1/plans?sort=days&cursor={cur}")).await;
    assert_eq!(assert_error_shape(resp, 400).await, "invalid_cursor");
}

#[tokio::test]
async fn countries_list_names_counts_and_from_prices() {
    let c = setup().await;
    let body: Value = c.get("/v1/countries").await.json().await.unwrap();
    let jp = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["code"] == "JP")
        .unwrap();
    assert_eq!(jp["name"], "Japan");
    assert_eq!(jp["plan_count"], 5);
    // Cheapest Japan plan: 1 GB at 2.00 USD × 1.2.
    assert_eq!(
        jp["from_price"],
        serde_json::json!({"amount": "2.40", "currency": "USD"})
    );
    let codes: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["DE", "FR", "IT", "JP"]);
    let resp = c.app.get("/v1/countries").send().await.unwrap();
    assert_error_shape(resp, 401).await;
}

#[tokio::test]
async fn a_vendor_is_synced_by_one_replica_at_a_time() {
    let c = setup().await;
    // Another replica holds eSIM Access's sync lock (same key scheme as the gateway's).
    let mut other = c.app.pool.acquire().await.unwrap();
    let key: i64 = 0x7379_6e63_0000;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(key)
        .fetch_one(&mut *other)
        .await
        .unwrap();
    assert!(locked);
    let outcome = sync_vendor(
        &c.app.pool,
        c.a.as_ref(),
        &c.app.state.test_vendors,
        &Pricing::from_config(&c.app.state.config),
    )
    .await
    .unwrap();
    assert_eq!(outcome, esim_gateway::catalog::sync::SyncOutcome::Skipped);
    let resp = c
        .app
        .admin(Method::POST, "/admin/vendors/esimaccess/sync")
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["outcome"], "skipped");
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(key)
        .execute(&mut *other)
        .await
        .unwrap();
    let outcome = sync_vendor(
        &c.app.pool,
        c.a.as_ref(),
        &c.app.state.test_vendors,
        &Pricing::from_config(&c.app.state.config),
    )
    .await
    .unwrap();
    assert!(matches!(
        outcome,
        esim_gateway::catalog::sync::SyncOutcome::Synced { .. }
    ));
}

/// Prices carry the retail currency's own minor unit, through the store and the snapshot:
/// whole yen, three-decimal dinars.
#[tokio::test]
async fn retail_prices_carry_the_retail_currency_minor_unit() {
    for (currency, extra_fx, want) in [
        // 10.00 USD / 0.0067 = 1492.53… JPY × 1.2 = 1791.04… → 1792
        ("JPY", "", "1792"),
        // 10.00 USD / 3.25 = 3.0769… KWD × 1.2 = 3.6923… → 3.693
        ("KWD", "KWD=3.25", "3.693"),
    ] {
        let a = ScriptedVendor::new(
            VendorId::EsimAccess,
            vec![offer(
                VendorId::EsimAccess,
                "A-JP-10",
                &["JP"],
                gb(10),
                7,
                "10.00",
                "USD",
            )],
        );
        let mut vendors = Vendors::default();
        vendors.insert(a, VendorMode::Sandbox);
        let mut env = vec![("MARKUP_PERCENT", "20"), ("RETAIL_CURRENCY", currency)];
        if !extra_fx.is_empty() {
            env.push(("FX_RATES", extra_fx));
        }
        let app = TestApp::spawn_full(&env, vendors).await;
        let sf = app.create_storefront("Minor Units").await;
        sync_all(
            &app.pool,
            &app.state.test_vendors,
            &Pricing::from_config(&app.state.config),
        )
        .await;
        let plan: Value = app
            .get("/v1/plans/jp-10gb-7d")
            .bearer_auth(&sf.api_key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            plan["price"],
            serde_json::json!({"amount": want, "currency": currency}),
            "{currency}"
        );
    }
}
