//! esimaccess adapter against its simulator.

use std::time::{Duration, Instant};

use axum::{Router, body::Bytes, http::HeaderMap, routing::post};
use chrono::Utc;
use esim_gateway::vendors::CallbackHeaders;
use esim_gateway::{
    domain::{
        money::Currency,
        secret::{ExposeSecret, SecretString},
    },
    sandbox::{
        self, Fault, RunningSim, SimSettings,
        catalog::{SeedData, VendorProduct, vendor_products},
        luhn_valid,
    },
    vendors::esimaccess::credentials::EsimAccessCredentials,
    vendors::esimaccess::sim::{EsimAccessSim, ops},
    vendors::{
        AdapterOptions, CallbackTrust, CancelOutcome, DataKind, EsimRef, EsimStatus, MIB,
        OrderState, PlaceOrder, RejectKind, TopUp, Vendor, VendorError, VendorEventKind, VendorId,
        VendorOrderRef, VendorOrderStatus,
        esimaccess::{EsimAccess, assumptions, sign},
    },
};
use rust_decimal::Decimal;
use serde_json::Value;
use tokio::sync::mpsc;

struct Env {
    sim: EsimAccessSim,
    creds: EsimAccessCredentials,
    adapter: EsimAccess,
    _running: RunningSim,
}

async fn start() -> Env {
    start_with(SimSettings::fast()).await
}

async fn start_with(settings: SimSettings) -> Env {
    let placeholder = url::Url::parse("http://127.0.0.1:9").unwrap();
    let mut creds = EsimAccessSim::sandbox_credentials(placeholder);
    let sim = EsimAccessSim::new(&creds, settings);
    let running = sandbox::serve(sim.router()).await.unwrap();
    creds.base_url = running.base_url.clone();
    Env {
        adapter: adapter(&creds, Duration::from_secs(5)),
        sim,
        creds,
        _running: running,
    }
}

fn adapter(creds: &EsimAccessCredentials, timeout: Duration) -> EsimAccess {
    EsimAccess::new(creds.clone(), &AdapterOptions { timeout })
}

fn new_order_id() -> String {
    format!("ord_{}", ulid::Ulid::new())
}

fn order(sku: &str) -> PlaceOrder {
    PlaceOrder {
        order_id: new_order_id(),
        sku: sku.to_string(),
        quantity: 1,
        expected_unit_cost: None,
        price_tolerance_percent: rust_decimal::Decimal::ZERO,
        placed_at: Utc::now(),
    }
}

fn by_order_no(req: &PlaceOrder, state: &OrderState) -> VendorOrderRef {
    VendorOrderRef {
        order_id: req.order_id.clone(),
        vendor_reference: state.vendor_reference.clone(),
        placed_at: req.placed_at,
        ..VendorOrderRef::default()
    }
}

fn by_order_id(req: &PlaceOrder) -> VendorOrderRef {
    VendorOrderRef {
        order_id: req.order_id.clone(),
        vendor_reference: None,
        placed_at: req.placed_at,
        ..VendorOrderRef::default()
    }
}

async fn until_completed(adapter: &EsimAccess, r: &VendorOrderRef) -> OrderState {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let state = adapter.fetch_order(r).await.unwrap();
        if state.status != VendorOrderStatus::Pending {
            return state;
        }
        assert!(Instant::now() < deadline, "order never completed");
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

/// A base package the simulator sells, chosen from the seed catalogue (listing offers in
/// every test would cost two rate-limited calls).
fn sku_where(env: &Env, want: impl Fn(&VendorProduct) -> bool) -> String {
    let product = vendor_products(VendorId::EsimAccess)
        .into_iter()
        .find(|p| want(p))
        .expect("the catalogue has such a product");
    env.sim.package_code(&product.plan.key).unwrap()
}

async fn place_and_complete(env: &Env, sku: &str) -> (PlaceOrder, OrderState) {
    let req = order(sku);
    let placed = env.adapter.place_order(&req).await.unwrap();
    let state = until_completed(&env.adapter, &by_order_no(&req, &placed)).await;
    (req, state)
}

fn esim_ref(state: &OrderState) -> EsimRef {
    let p = &state.esims[0];
    EsimRef {
        iccid: p.iccid.clone(),
        vendor_esim_ref: p.vendor_esim_ref.clone(),
        vendor_reference: state.vendor_reference.clone(),
    }
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

#[tokio::test]
async fn lists_the_whole_catalogue_in_dollars_and_bytes_with_topups() {
    let env = start().await;
    let offers = env.adapter.list_offers().await.unwrap();
    let products = vendor_products(VendorId::EsimAccess);
    let topups = products.iter().filter(|p| p.topup).count();
    assert_eq!(
        offers.len(),
        products.len() + topups,
        "one answer, whole catalogue"
    );

    for product in &products {
        let o = offers
            .iter()
            .find(|o| !o.is_topup && o.raw["slug"] == product.plan.key.as_str())
            .unwrap();
        assert_eq!(o.vendor, VendorId::EsimAccess);
        assert_eq!(o.cost.currency, Currency::USD);
        assert_eq!(o.cost.amount, product.price, "{}", product.plan.key);
        assert_eq!(o.validity_days, product.plan.days);
        assert_eq!(o.countries, product.plan.countries);
        assert_eq!(o.supports_topup, product.topup);
        assert!(o.active);
        let data = o.data.unwrap();
        match product.plan.data {
            SeedData::TotalMb(mb) => {
                assert_eq!((data.kind, data.bytes), (DataKind::Total, Some(mb * MIB)))
            }
            SeedData::DailyMb(mb) => {
                assert_eq!((data.kind, data.bytes), (DataKind::Daily, Some(mb * MIB)))
            }
            SeedData::Unlimited => assert_eq!(data.kind, DataKind::Unlimited),
        }
    }
    let topup_offers: Vec<_> = offers.iter().filter(|o| o.is_topup).collect();
    assert_eq!(topup_offers.len(), topups);
    assert!(topup_offers.iter().all(|o| o.sku.starts_with("TOPUP_")));
    let jp = offers.iter().find(|o| o.countries == ["JP"]).unwrap();
    assert!(jp.networks.iter().any(|n| n.operator == "SoftBank"));

    // The package codes are the same on every run.
    let again = start().await.adapter.list_offers().await.unwrap();
    assert_eq!(
        offers.iter().map(|o| &o.sku).collect::<Vec<_>>(),
        again.iter().map(|o| &o.sku).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn an_order_is_pending_until_profiles_are_allocated_then_completes() {
    let env = start_with(SimSettings {
        provisioning_delay: Duration::from_millis(400),
        ..SimSettings::fast()
    })
    .await;
    let offers = env.adapter.list_offers().await.unwrap();
    let offer = offers
        .iter()
        .find(|o| !o.is_topup && o.countries == ["JP"])
        .unwrap();
    let mut req = order(&offer.sku);
    req.expected_unit_cost = Some(offer.cost);
    let balance_before = env.sim.balance();

    let placed = env.adapter.place_order(&req).await.unwrap();
    assert_eq!(placed.status, VendorOrderStatus::Pending);
    let order_no = placed.vendor_reference.clone().unwrap();
    assert!(
        order_no.starts_with('B') && order_no.len() == 15,
        "{order_no}"
    );
    let r = by_order_no(&req, &placed);
    assert_eq!(
        env.adapter.fetch_order(&r).await.unwrap().status,
        VendorOrderStatus::Pending,
        "200010 while the SM-DP+ allocates"
    );

    let done = until_completed(&env.adapter, &r).await;
    assert_eq!(done.status, VendorOrderStatus::Completed);
    assert_eq!(done.vendor_reference.as_deref(), Some(order_no.as_str()));
    let esim = &done.esims[0];
    assert!(
        luhn_valid(&esim.iccid) && esim.iccid.len() == 20,
        "{}",
        esim.iccid
    );
    assert_eq!(esim.activation.smdp_address, "rsp-eu.simlessly.com");
    assert_eq!(
        esim.activation.lpa,
        format!("LPA:1$rsp-eu.simlessly.com${}", esim.activation.matching_id)
    );
    assert_eq!(esim.status, EsimStatus::Ready);
    assert!(
        esim.vendor_esim_ref
            .as_deref()
            .is_some_and(|t| t.len() == 14)
    );
    assert!(esim.expires_at.is_some_and(|t| t > Utc::now()));

    let records = env.sim.core().orders();
    assert_eq!(records.len(), 1);
    assert_eq!(
        records[0].client_reference.as_deref(),
        Some(req.order_id.as_str())
    );
    assert_eq!(records[0].vendor_reference, order_no);
    assert_eq!(records[0].iccids, vec![esim.iccid.clone()]);
    assert_eq!(env.sim.balance(), balance_before - offer.cost.amount);
    let balance = env.adapter.balance().await.unwrap();
    assert_eq!(
        (balance.amount, balance.currency),
        (env.sim.balance(), Currency::USD)
    );
}

#[tokio::test]
async fn a_changed_price_or_empty_balance_is_refused_and_nothing_is_bought() {
    let env = start().await;
    let sku = sku_where(&env, |p| p.plan.countries == ["FR"]);
    let mut req = order(&sku);
    req.expected_unit_cost = Some(esim_gateway::domain::money::Money::new(
        dec("0.01"),
        Currency::USD,
    ));
    let err = env.adapter.place_order(&req).await.unwrap_err();
    assert_eq!(err.reject_kind(), Some(RejectKind::PriceChanged), "{err:?}");

    env.sim.set_balance(dec("0.50"));
    let err = env.adapter.place_order(&order(&sku)).await.unwrap_err();
    assert_eq!(
        err.reject_kind(),
        Some(RejectKind::InsufficientBalance),
        "{err:?}"
    );

    let err = env.adapter.place_order(&order("NOPE1")).await.unwrap_err();
    assert_eq!(err.reject_kind(), Some(RejectKind::NotFound), "{err:?}");
    assert!(env.sim.core().orders().is_empty());
    assert_eq!(env.sim.balance(), dec("0.50"));
}

#[tokio::test]
async fn injected_vendor_codes_map_to_their_classes() {
    let env = start().await;
    let sku = sku_where(&env, |_| true);
    let cases = [
        ("200011", Some(RejectKind::SoldOut)),
        ("200007", Some(RejectKind::InsufficientBalance)),
        ("200005", Some(RejectKind::PriceChanged)),
        ("101003", Some(RejectKind::Auth)),
        ("310241", Some(RejectKind::NotFound)),
        (assumptions::THROTTLED_CODE, Some(RejectKind::RateLimited)),
        ("900001", None),
        ("555555", None),
    ];
    for (code, want) in cases {
        env.sim.core().faults.inject(
            ops::ORDER,
            Fault::Reject {
                code: code.into(),
                message: None,
            },
        );
        let err = env.adapter.place_order(&order(&sku)).await.unwrap_err();
        match want {
            Some(kind) => {
                assert_eq!(err.reject_kind(), Some(kind), "{code}: {err:?}");
                assert!(err.nothing_bought());
            }
            None => assert!(matches!(err, VendorError::Unknown(_)), "{code}: {err:?}"),
        }
    }
    assert!(env.sim.core().orders().is_empty());

    // The same table for calls that buy nothing: an unrecognised code is a plain refusal.
    env.sim.core().faults.inject(
        ops::BALANCE,
        Fault::Reject {
            code: "555555".into(),
            message: None,
        },
    );
    let err = env.adapter.balance().await.unwrap_err();
    assert_eq!(err.reject_kind(), Some(RejectKind::Other));
    env.sim.core().faults.inject(
        ops::AUTH,
        Fault::Reject {
            code: "101002".into(),
            message: None,
        },
    );
    let err = env.adapter.list_offers().await.unwrap_err();
    assert_eq!(err.reject_kind(), Some(RejectKind::Auth));
}

#[tokio::test]
async fn transport_faults_are_unknown_and_a_closed_port_is_unreachable() {
    let env = start().await;
    let sku = sku_where(&env, |_| true);
    let short = adapter(&env.creds, Duration::from_millis(300));
    let faults = [
        Fault::Reset {
            after_processing: false,
        },
        Fault::ServerError { status: 502 },
        Fault::Delay { millis: 1_000 },
    ];
    for fault in faults {
        env.sim.core().faults.inject(ops::ORDER, fault.clone());
        let err = short.place_order(&order(&sku)).await.unwrap_err();
        assert!(matches!(err, VendorError::Unknown(_)), "{fault:?}: {err:?}");
        assert!(!err.nothing_bought());
    }
    // Only the delayed one was accepted (the vendor acted, then answered too late).
    assert_eq!(env.sim.core().orders().len(), 1);

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut closed = env.creds.clone();
    closed.base_url =
        url::Url::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
    drop(listener);
    let err = adapter(&closed, Duration::from_secs(1))
        .place_order(&order(&sku))
        .await
        .unwrap_err();
    assert!(matches!(err, VendorError::Unreachable(_)), "{err:?}");
    assert!(err.nothing_bought());
}

#[tokio::test]
async fn an_unknown_outcome_is_reconciled_by_transaction_id_without_a_second_order() {
    let env = start().await;
    let sku = sku_where(&env, |_| true);
    let short = adapter(&env.creds, Duration::from_millis(300));
    let balance_before = env.sim.balance();

    // Accepted, then the answer is lost.
    env.sim.core().faults.inject(
        ops::ORDER,
        Fault::Reset {
            after_processing: true,
        },
    );
    let req = order(&sku);
    let err = short.place_order(&req).await.unwrap_err();
    assert!(matches!(err, VendorError::Unknown(_)), "{err:?}");

    // The documented fallback: the date-range query, matched on our transactionId.
    let found = until_completed(&env.adapter, &by_order_id(&req)).await;
    assert_eq!(found.status, VendorOrderStatus::Completed);
    let order_no = found.vendor_reference.clone().unwrap();
    assert_eq!(found.esims.len(), 1);

    // Retrying the order with the same transactionId is the same request.
    assert!(env.adapter.place_is_idempotent());
    let again = env.adapter.place_order(&req).await.unwrap();
    assert_eq!(again.vendor_reference.as_deref(), Some(order_no.as_str()));

    let records = env.sim.core().orders();
    assert_eq!(records.len(), 1, "exactly one vendor order");
    assert_eq!(
        records[0].client_reference.as_deref(),
        Some(req.order_id.as_str())
    );
    let price = vendor_products(VendorId::EsimAccess)[0].price;
    assert_eq!(env.sim.balance(), balance_before - price, "charged once");
}

#[tokio::test]
async fn a_timed_out_order_is_retried_with_the_same_transaction_id() {
    let env = start().await;
    let sku = sku_where(&env, |_| true);
    let short = adapter(&env.creds, Duration::from_millis(300));
    env.sim
        .core()
        .faults
        .inject(ops::ORDER, Fault::Delay { millis: 1_000 });
    let req = order(&sku);
    assert!(matches!(
        short.place_order(&req).await,
        Err(VendorError::Unknown(_))
    ));
    let retried = short.place_order(&req).await.unwrap();
    let done = until_completed(&env.adapter, &by_order_no(&req, &retried)).await;
    assert_eq!(done.esims.len(), 1);
    assert_eq!(env.sim.core().orders().len(), 1);
}

#[tokio::test]
async fn an_order_the_vendor_never_received_is_not_found() {
    let env = start().await;
    let mut req = order("ANY01");
    // Within the grace period the date-range query may simply not list it yet.
    assert_eq!(
        env.adapter
            .fetch_order(&by_order_id(&req))
            .await
            .unwrap()
            .status,
        VendorOrderStatus::Pending
    );
    req.placed_at = Utc::now() - chrono::Duration::minutes(10);
    let err = env
        .adapter
        .fetch_order(&by_order_id(&req))
        .await
        .unwrap_err();
    assert_eq!(err.reject_kind(), Some(RejectKind::NotFound), "{err:?}");

    let unknown = VendorOrderRef {
        vendor_reference: Some("B99999999999999".into()),
        ..by_order_id(&req)
    };
    let err = env.adapter.fetch_order(&unknown).await.unwrap_err();
    assert_eq!(err.reject_kind(), Some(RejectKind::NotFound), "{err:?}");
}

#[tokio::test]
async fn reconciliation_pages_through_the_date_range_query() {
    let env = start().await;
    let sku = sku_where(&env, |_| true);
    env.sim.set_balance(dec("100000"));
    // 4 × 30 profiles before ours: the adapter's 100-per-page window query needs page 2.
    let mut batches = Vec::new();
    for _ in 0..4 {
        let mut batch = order(&sku);
        batch.quantity = 30;
        env.adapter.place_order(&batch).await.unwrap();
        batches.push(batch);
    }
    let mine = order(&sku);
    let placed = env.adapter.place_order(&mine).await.unwrap();
    let found = until_completed(&env.adapter, &by_order_id(&mine)).await;
    assert_eq!(found.esims.len(), 1);
    assert_eq!(found.vendor_reference, placed.vendor_reference);
    let batch = until_completed(&env.adapter, &by_order_id(&batches[3])).await;
    assert_eq!(batch.esims.len(), 30);
    assert_eq!(env.sim.core().orders().len(), 5);
}

#[tokio::test]
async fn tops_up_an_esim_once_per_transaction_id() {
    let env = start().await;
    let sku = sku_where(&env, |p| p.topup);
    let (_, state) = place_and_complete(&env, &sku).await;
    let esim = esim_ref(&state);

    let topups = env.adapter.topup_offers(&esim).await.unwrap();
    assert!(!topups.is_empty());
    assert!(
        topups
            .iter()
            .all(|o| o.is_topup && o.sku.starts_with("TOPUP_"))
    );
    let topup = &topups[0];
    let before = env.adapter.usage(&esim).await.unwrap();
    let balance = env.sim.balance();

    let req = TopUp {
        order_id: new_order_id(),
        esim: esim.clone(),
        sku: topup.sku.clone(),
        placed_at: Utc::now(),
    };
    let done = env.adapter.topup(&req).await.unwrap();
    assert_eq!(done.status, VendorOrderStatus::Completed);
    assert_eq!(
        done.vendor_reference.as_deref(),
        Some(req.order_id.as_str())
    );
    let again = env.adapter.topup(&req).await.unwrap();
    assert_eq!(again, done);

    let after = env.adapter.usage(&esim).await.unwrap();
    let added = topup.data.unwrap().bytes.unwrap();
    assert_eq!(after.total_bytes, Some(before.total_bytes.unwrap() + added));
    assert_eq!(
        env.sim.balance(),
        balance - topup.cost.amount,
        "charged once"
    );
    let records = env.sim.core().orders();
    assert_eq!(records.iter().filter(|r| r.topup).count(), 1);
}

#[tokio::test]
async fn cancels_an_unused_esim_with_a_refund_but_not_a_used_one() {
    let env = start().await;
    let sku = sku_where(&env, |_| true);
    let balance = env.sim.balance();
    let (req, state) = place_and_complete(&env, &sku).await;
    let r = by_order_no(&req, &state);
    // No eSIM list given: the adapter looks the order's profiles up itself.
    let outcome = env.adapter.cancel(&r, &[]).await.unwrap();
    assert_eq!(outcome, CancelOutcome::Refunded { amount: None });
    assert_eq!(env.sim.balance(), balance, "refunded");
    assert!(env.sim.core().orders()[0].cancelled);
    let after = env.adapter.fetch_order(&r).await.unwrap();
    assert_eq!(after.status, VendorOrderStatus::Cancelled);
    assert_eq!(after.esims[0].status, EsimStatus::Cancelled);

    let (req, state) = place_and_complete(&env, &sku).await;
    env.sim.use_data(&state.esims[0].iccid, 10 * MIB);
    let err = env
        .adapter
        .cancel(&by_order_no(&req, &state), &[esim_ref(&state)])
        .await
        .unwrap_err();
    assert_eq!(err.reject_kind(), Some(RejectKind::NotAllowed), "{err:?}");
}

#[tokio::test]
async fn reports_usage_in_bytes() {
    let env = start().await;
    let sku = sku_where(
        &env,
        |p| matches!(p.plan.data, SeedData::TotalMb(mb) if mb >= 1024),
    );
    let (_, state) = place_and_complete(&env, &sku).await;
    env.sim.use_data(&state.esims[0].iccid, 300 * MIB);
    let mut esim = esim_ref(&state);
    let usage = env.adapter.usage(&esim).await.unwrap();
    assert_eq!(usage.used_bytes, 300 * MIB);
    assert!(usage.total_bytes.is_some_and(|t| t >= 1024 * MIB));
    assert!(!usage.unlimited);
    assert!(usage.updated_at.is_some());
    // Without esimTranNo the adapter finds it by ICCID first.
    esim.vendor_esim_ref = None;
    assert_eq!(
        env.adapter.usage(&esim).await.unwrap().used_bytes,
        300 * MIB
    );
}

#[tokio::test]
async fn wrong_credentials_are_refused_by_the_simulator() {
    let env = start().await;
    let mut wrong_secret = env.creds.clone();
    wrong_secret.secret_key = SecretString::from("not-the-secret");
    let err = adapter(&wrong_secret, Duration::from_secs(2))
        .balance()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, VendorError::Rejected { kind: RejectKind::Auth, code, .. } if code == "101003"),
        "{err:?}"
    );

    let mut wrong_code = env.creds.clone();
    wrong_code.access_code = SecretString::from("someone-else");
    let err = adapter(&wrong_code, Duration::from_secs(2))
        .balance()
        .await
        .unwrap_err();
    assert_eq!(err.reject_kind(), Some(RejectKind::Auth), "{err:?}");

    let base = &env.creds.base_url;
    let access = env.creds.access_code.expose_secret().to_string();
    let secret = env.creds.secret_key.expose_secret();
    // The quick-start's key-only call: this sandbox account requires signatures.
    let only_key = raw(base, "POST", &[("RT-AccessCode", access.clone())], "").await;
    assert_eq!(only_key["errorCode"], "000101");
    assert_eq!(only_key["success"], false);

    let signed = |ts: String, sig_case_upper: bool| {
        let rid = uuid::Uuid::new_v4().simple().to_string();
        let mut sig = sign(secret, &ts, &rid, &access, b"{}");
        if sig_case_upper {
            sig = sig.to_uppercase();
        }
        vec![
            ("RT-AccessCode", access.clone()),
            ("RT-RequestID", rid),
            ("RT-Timestamp", ts),
            ("RT-Signature", sig),
        ]
    };
    let stale = (Utc::now() - chrono::Duration::minutes(10)).timestamp_millis();
    let reply = raw(base, "POST", &signed(stale.to_string(), false), "{}").await;
    assert_eq!(reply["errorCode"], "101001");
    let now_ms = Utc::now().timestamp_millis().to_string();
    let reply = raw(base, "POST", &signed(now_ms.clone(), true), "{}").await;
    assert_eq!(reply["success"], true, "upper-case hex accepted: {reply}");
    let now_s = Utc::now().timestamp().to_string();
    let reply = raw(base, "POST", &signed(now_s, false), "{}").await;
    assert_eq!(reply["success"], true, "seconds accepted: {reply}");
    // Signed over one body, sent with another.
    let reply = raw(base, "POST", &signed(now_ms.clone(), false), "{ }").await;
    assert_eq!(reply["errorCode"], "101003");
    let reply = raw(base, "GET", &signed(now_ms, false), "").await;
    assert_eq!(reply["errorCode"], "000103");
}

async fn raw(base: &url::Url, method: &str, headers: &[(&str, String)], body: &str) -> Value {
    // Sequential raw calls stay under the simulator's 8/s; concurrent ones burst past it.
    tokio::time::sleep(Duration::from_millis(130)).await;
    let url = format!("{}api/v1/open/balance/query", base);
    let mut req = reqwest::Client::new()
        .request(method.parse().unwrap(), url)
        .header("content-type", "application/json")
        .body(body.to_string());
    for (name, value) in headers {
        req = req.header(*name, value);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

#[tokio::test]
async fn the_adapter_stays_within_eight_requests_per_second_and_the_simulator_enforces_it() {
    let env = start().await;
    let started = Instant::now();
    let calls = (0..16).map(|_| env.adapter.balance());
    let results = futures_join_all(calls).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(1_750),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(env.sim.throttled(), 0);
    // 0.9 s rather than 1 s leaves room for scheduling jitter on a busy machine.
    assert!(env.sim.max_requests_within(Duration::from_millis(900)) <= 8);

    // A client without the limiter is throttled by the simulator...
    let burst = (0..16).map(|_| raw(&env.creds.base_url, "POST", &[], "{}"));
    let replies = futures_join_all(burst).await;
    let throttled = replies
        .iter()
        .filter(|r| r["errorCode"] == assumptions::THROTTLED_CODE)
        .count();
    assert!(throttled >= 4, "{throttled} of 16 throttled");
}

/// `join_all` without the futures crate: spawn-free, polls all futures concurrently.
async fn futures_join_all<F: std::future::Future>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futures {
        set.push(Box::pin(f));
    }
    let mut outputs: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, out) in set.iter_mut().zip(outputs.iter_mut()) {
            if out.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *out = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().map(Option::unwrap).collect()
}

#[tokio::test]
async fn callbacks_arrive_unsigned_and_parse_into_events() {
    let env = start().await;
    let (tx, mut rx) = mpsc::unbounded_channel::<(HeaderMap, Bytes)>();
    let receiver = Router::new().route(
        "/webhooks/esimaccess",
        post(move |headers: HeaderMap, body: Bytes| {
            let tx = tx.clone();
            async move {
                tx.send((headers, body)).ok();
                "ok"
            }
        }),
    );
    let gateway = sandbox::serve(receiver).await.unwrap();
    env.sim
        .core()
        .set_callback_url(Some(gateway.base_url.join("/webhooks/esimaccess").unwrap()));

    let sku = sku_where(&env, |_| true);
    let (req, state) = place_and_complete(&env, &sku).await;
    let (headers, body) = next_callback(&mut rx).await;
    assert_eq!(
        env.adapter
            .verify_callback(&CallbackHeaders::from(&headers), &body)
            .unwrap(),
        CallbackTrust::Hint
    );
    let events = env
        .adapter
        .parse_callback(&CallbackHeaders::from(&headers), &body)
        .unwrap();
    assert_eq!(events[0].kind, VendorEventKind::OrderReady);
    assert_eq!(events[0].order_id.as_deref(), Some(req.order_id.as_str()));
    assert_eq!(events[0].vendor_reference, state.vendor_reference);

    env.adapter
        .cancel(&by_order_no(&req, &state), &[esim_ref(&state)])
        .await
        .unwrap();
    let (headers, body) = next_callback(&mut rx).await;
    let events = env
        .adapter
        .parse_callback(&CallbackHeaders::from(&headers), &body)
        .unwrap();
    assert_eq!(
        events[0].kind,
        VendorEventKind::EsimStatus {
            status: EsimStatus::Cancelled
        }
    );
    assert_eq!(
        events[0].iccid.as_deref(),
        Some(state.esims[0].iccid.as_str())
    );
    assert_eq!(events[0].vendor_esim_ref, state.esims[0].vendor_esim_ref);
    assert!(events[0].occurred_at.is_some());
    let redelivered = env
        .adapter
        .parse_callback(&CallbackHeaders::from(&headers), &body)
        .unwrap();
    assert_eq!(redelivered[0].dedupe_key, events[0].dedupe_key);

    // eSIM Access signs nothing, so a tampered body can never be more than a hint.
    let mut tampered = body.to_vec();
    tampered.extend_from_slice(b" ");
    assert_eq!(
        env.adapter
            .verify_callback(&CallbackHeaders::from(&headers), &tampered)
            .unwrap(),
        CallbackTrust::Hint
    );
}

async fn next_callback(rx: &mut mpsc::UnboundedReceiver<(HeaderMap, Bytes)>) -> (HeaderMap, Bytes) {
    tokio::time::timeout(Duration::from_secs(3), rx.recv())
        .await
        .expect("a callback within 3 s")
        .expect("receiver alive")
}
