//! esimfx adapter against its simulator.

use std::{sync::Arc, time::Duration};

use axum::{Router, body::Bytes, extract::State, http::HeaderMap, routing::post};
use chrono::Utc;
use esim_gateway::vendors::CallbackHeaders;
use esim_gateway::{
    domain::{
        money::{Currency, Money},
        secret::SecretString,
    },
    sandbox::{
        self, Fault, RunningSim, SimSettings,
        catalog::{SeedData, vendor_products},
        luhn_valid,
    },
    vendors::esimfx::credentials::EsimFxCredentials,
    vendors::esimfx::sim::{EsimFxSim, ops, sku_of},
    vendors::{
        AdapterOptions, CallbackTrust, CancelOutcome, DataAllowance, DataKind, EsimRef, EsimStatus,
        GIB, PlaceOrder, RejectKind, TopUp, Vendor, VendorError, VendorEventKind, VendorId,
        VendorOrderRef, VendorOrderStatus, esimfx::EsimFx,
    },
};
use rust_decimal::Decimal;
use tokio::sync::mpsc;

struct Env {
    sim: EsimFxSim,
    creds: EsimFxCredentials,
    fx: EsimFx,
    _running: RunningSim,
}

async fn start() -> Env {
    start_with(Duration::from_secs(5)).await
}

async fn start_with(timeout: Duration) -> Env {
    let placeholder = url::Url::parse("http://127.0.0.1:9").unwrap();
    let sim_creds = EsimFxSim::sandbox_credentials(placeholder);
    let sim = EsimFxSim::new(&sim_creds, SimSettings::fast());
    let running = sandbox::serve(sim.router()).await.unwrap();
    let creds = EsimFxCredentials {
        base_url: running.base_url.clone(),
        ..sim_creds
    };
    let fx = adapter(&creds, timeout);
    Env {
        sim,
        creds,
        fx,
        _running: running,
    }
}

fn adapter(creds: &EsimFxCredentials, timeout: Duration) -> EsimFx {
    EsimFx::new(creds.clone(), &AdapterOptions { timeout })
}

fn order(id: &str, sku: &str, quantity: u32) -> PlaceOrder {
    PlaceOrder {
        order_id: id.to_string(),
        sku: sku.to_string(),
        quantity,
        expected_unit_cost: None,
        price_tolerance_percent: rust_decimal::Decimal::ZERO,
        placed_at: Utc::now(),
    }
}

fn by_ref(order_id: &str, vendor_reference: Option<&str>) -> VendorOrderRef {
    VendorOrderRef {
        order_id: order_id.to_string(),
        vendor_reference: vendor_reference.map(str::to_string),
        placed_at: Utc::now(),
        ..VendorOrderRef::default()
    }
}

fn esim(iccid: &str) -> EsimRef {
    EsimRef {
        iccid: iccid.to_string(),
        vendor_esim_ref: None,
        vendor_reference: None,
    }
}

/// A 10 GB single-country product the simulator also sells as a top-up, and its price.
fn topup_able_product() -> (String, Decimal) {
    let p = vendor_products(VendorId::EsimFx)
        .into_iter()
        .find(|p| p.topup && p.plan.region.is_none() && p.plan.data == SeedData::gb(10))
        .expect("the seed has a 10 GB top-up-able product");
    (sku_of(&p.plan), p.price)
}

fn reject(code: &str) -> Fault {
    Fault::Reject {
        code: code.to_string(),
        message: None,
    }
}

fn assert_unknown<T: std::fmt::Debug>(r: Result<T, VendorError>) {
    assert!(matches!(r, Err(VendorError::Unknown(_))), "{r:?}");
}

fn assert_rejected<T: std::fmt::Debug>(r: Result<T, VendorError>, kind: RejectKind) {
    match r {
        Err(VendorError::Rejected { kind: k, .. }) if k == kind => {}
        other => panic!("expected Rejected({kind:?}), got {other:?}"),
    }
}

#[tokio::test]
async fn lists_the_whole_catalogue_across_pages() {
    let env = start().await;
    let offers = env.fx.list_offers().await.unwrap();
    let skus: Vec<String> = offers.iter().map(|o| o.sku.clone()).collect();
    assert!(skus.len() > 100, "needs several pages of 100");
    assert_eq!(skus, env.sim.skus());

    let seed = vendor_products(VendorId::EsimFx)
        .into_iter()
        .find(|p| p.plan.region.is_none() && p.plan.data == SeedData::gb(10))
        .unwrap();
    let offer = offers.iter().find(|o| o.sku == sku_of(&seed.plan)).unwrap();
    assert_eq!(offer.vendor, VendorId::EsimFx);
    assert_eq!(offer.countries, seed.plan.countries);
    assert_eq!(offer.validity_days, seed.plan.days);
    assert_eq!(
        offer.data,
        Some(DataAllowance::binary(DataKind::Total, 10 * GIB))
    );
    assert_eq!(offer.cost, Money::new(seed.price, Currency::USD));
    assert!(!offer.networks.is_empty());
    assert_eq!(offer.networks[0].country, seed.plan.countries[0]);
    assert!(offer.active && offer.supports_topup && !offer.is_topup);

    let daily = offers.iter().find(|o| o.sku.contains("_1GD_")).unwrap();
    assert_eq!(
        daily.data,
        Some(DataAllowance::binary(DataKind::Daily, GIB))
    );
    let unlimited = offers.iter().find(|o| o.sku.contains("_UL_")).unwrap();
    assert_eq!(unlimited.data, Some(DataAllowance::unlimited()));
}

#[tokio::test]
async fn places_an_order_synchronously_and_fetches_it_by_vendor_reference() {
    let env = start().await;
    let (sku, price) = topup_able_product();
    let placed = env.fx.place_order(&order("ord_A1", &sku, 1)).await.unwrap();
    assert_eq!(placed.status, VendorOrderStatus::Completed);
    let profile = &placed.esims[0];
    assert_eq!(profile.iccid.len(), 20);
    assert!(luhn_valid(&profile.iccid));
    assert_eq!(profile.activation.smdp_address, "rsp.truphone.com");
    assert!(
        profile
            .activation
            .lpa
            .starts_with("LPA:1$rsp.truphone.com$JQ-")
    );
    assert_eq!(profile.status, EsimStatus::Ready);
    assert_eq!(env.sim.balance(), Decimal::from(1000) - price);

    let records = env.sim.core().orders();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].client_reference.as_deref(), Some("ord_A1"));
    assert_eq!(
        Some(&records[0].vendor_reference),
        placed.vendor_reference.as_ref()
    );

    let fetched = env
        .fx
        .fetch_order(&by_ref("ord_A1", placed.vendor_reference.as_deref()))
        .await
        .unwrap();
    assert_eq!(fetched, placed);
}

#[tokio::test]
async fn quantity_above_one_buys_one_vendor_order_per_esim() {
    let env = start().await;
    let (sku, _) = topup_able_product();
    let placed = env.fx.place_order(&order("ord_Q", &sku, 2)).await.unwrap();
    assert_eq!(placed.esims.len(), 2);
    let keys: Vec<_> = env
        .sim
        .core()
        .orders()
        .into_iter()
        .map(|o| o.client_reference.unwrap())
        .collect();
    assert_eq!(keys, vec!["ord_Q-1", "ord_Q-2"]);
    let reference = placed.vendor_reference.clone().unwrap();
    assert_eq!(reference.split(',').count(), 2);
    let fetched = env
        .fx
        .fetch_order(&by_ref("ord_Q", Some(&reference)))
        .await
        .unwrap();
    assert_eq!(fetched, placed);
}

#[tokio::test]
async fn unknown_outcome_is_resolved_by_resending_with_the_same_key() {
    let env = start_with(Duration::from_millis(300)).await;
    let (sku, price) = topup_able_product();
    let faults = [
        Fault::Delay { millis: 700 },
        Fault::Reset {
            after_processing: true,
        },
    ];
    for (i, fault) in faults.into_iter().enumerate() {
        let id = format!("ord_U{i}");
        env.sim.core().faults.inject(ops::ORDER, fault);
        assert_unknown(env.fx.place_order(&order(&id, &sku, 1)).await);
        // eSIMfx has no lookup by our id: only the replay can tell.
        assert_unknown(env.fx.fetch_order(&by_ref(&id, None)).await);
        let placed = env.fx.place_order(&order(&id, &sku, 1)).await.unwrap();
        let records = env.sim.core().orders();
        assert_eq!(records.len(), i + 1, "no second vendor order");
        assert_eq!(records[i].iccids, vec![placed.esims[0].iccid.clone()]);
        assert_eq!(records[i].client_reference.as_deref(), Some(id.as_str()));
    }
    assert_eq!(
        env.sim.balance(),
        Decimal::from(1000) - price * Decimal::from(2)
    );
}

#[tokio::test]
async fn failures_before_processing_are_unknown_and_buy_nothing() {
    let env = start_with(Duration::from_millis(300)).await;
    let (sku, _) = topup_able_product();
    for fault in [
        Fault::Reset {
            after_processing: false,
        },
        Fault::ServerError { status: 502 },
    ] {
        env.sim.core().faults.inject(ops::ORDER, fault);
        assert_unknown(env.fx.place_order(&order("ord_F", &sku, 1)).await);
    }
    assert!(env.sim.core().orders().is_empty());
    env.fx.place_order(&order("ord_F", &sku, 1)).await.unwrap();
    assert_eq!(env.sim.core().orders().len(), 1);
}

#[tokio::test]
async fn vendor_refusals_map_to_reject_kinds() {
    let env = start().await;
    let (sku, _) = topup_able_product();
    let cases = [
        ("2002", RejectKind::SoldOut),
        ("3001", RejectKind::InsufficientBalance),
        ("2001", RejectKind::NotFound),
        ("1001", RejectKind::InvalidRequest),
        ("1004", RejectKind::RateLimited),
    ];
    for (code, kind) in cases {
        env.sim.core().faults.inject(ops::ORDER, reject(code));
        assert_rejected(env.fx.place_order(&order("ord_R", &sku, 1)).await, kind);
    }
    // A code outside the table on a purchase: nobody knows what happened.
    env.sim.core().faults.inject(ops::ORDER, reject("9999"));
    assert_unknown(env.fx.place_order(&order("ord_R", &sku, 1)).await);
    // The same on a read is only a refusal.
    env.sim.core().faults.inject(ops::LIST, reject("9999"));
    assert_rejected(env.fx.list_offers().await, RejectKind::Other);
    assert!(env.sim.core().orders().is_empty());

    // The simulator's own refusals, not injected ones.
    assert_rejected(
        env.fx.place_order(&order("ord_R2", "esimfx_NOPE", 1)).await,
        RejectKind::NotFound,
    );
    env.sim.set_balance(Decimal::ZERO);
    assert_rejected(
        env.fx.place_order(&order("ord_R3", &sku, 1)).await,
        RejectKind::InsufficientBalance,
    );
    assert!(env.sim.core().orders().is_empty());
}

#[tokio::test]
async fn reusing_an_order_id_for_another_product_is_refused() {
    let env = start().await;
    let (sku, _) = topup_able_product();
    env.fx.place_order(&order("ord_K", &sku, 1)).await.unwrap();
    let other = env.sim.skus().into_iter().find(|s| *s != sku).unwrap();
    assert_rejected(
        env.fx.place_order(&order("ord_K", &other, 1)).await,
        RejectKind::InvalidRequest,
    );
    assert_eq!(env.sim.core().orders().len(), 1);
}

#[tokio::test]
async fn reads_and_cancel_map_transport_faults_to_unknown() {
    let env = start_with(Duration::from_millis(300)).await;
    let (sku, _) = topup_able_product();
    let placed = env.fx.place_order(&order("ord_T", &sku, 1)).await.unwrap();
    let r = by_ref("ord_T", placed.vendor_reference.as_deref());
    let iccid = placed.esims[0].iccid.clone();

    env.sim
        .core()
        .faults
        .inject(ops::QUERY, Fault::ServerError { status: 503 });
    assert_unknown(env.fx.fetch_order(&r).await);
    env.sim.core().faults.inject(
        ops::USAGE,
        Fault::Reset {
            after_processing: false,
        },
    );
    assert_unknown(env.fx.usage(&esim(&iccid)).await);
    env.sim
        .core()
        .faults
        .inject(ops::BALANCE, Fault::Delay { millis: 700 });
    assert_unknown(env.fx.balance().await);
    env.sim
        .core()
        .faults
        .inject(ops::LIST, Fault::ServerError { status: 500 });
    assert_unknown(env.fx.list_offers().await);
    env.sim.core().faults.inject(ops::CANCEL, reject("5000"));
    assert_unknown(env.fx.cancel(&r, &[]).await);
    env.sim
        .core()
        .faults
        .inject(ops::TOPUP_OFFERS, reject("3003"));
    assert_rejected(
        env.fx.topup_offers(&esim(&iccid)).await,
        RejectKind::NotFound,
    );
}

#[tokio::test]
async fn closed_port_is_unreachable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let creds = EsimFxSim::sandbox_credentials(format!("http://{addr}").parse().unwrap());
    let fx = adapter(&creds, Duration::from_secs(2));
    let err = fx
        .place_order(&order("ord_C", "esimfx_1G_7D_JP", 1))
        .await
        .unwrap_err();
    assert!(matches!(err, VendorError::Unreachable(_)), "{err:?}");
    assert!(err.nothing_bought());
}

#[tokio::test]
async fn a_failed_authentication_buys_nothing() {
    let env = start().await;
    let (sku, _) = topup_able_product();
    env.sim
        .core()
        .faults
        .inject(ops::AUTH, Fault::ServerError { status: 500 });
    let err = env
        .fx
        .place_order(&order("ord_AU", &sku, 1))
        .await
        .unwrap_err();
    assert!(matches!(err, VendorError::Unreachable(_)), "{err:?}");
    assert!(env.sim.core().orders().is_empty());
}

#[tokio::test]
async fn wrong_credentials_and_missing_tokens_are_refused() {
    let env = start().await;
    let wrong = EsimFxCredentials {
        client_key: SecretString::from("not-the-key"),
        ..env.creds.clone()
    };
    assert_rejected(
        adapter(&wrong, Duration::from_secs(2)).balance().await,
        RejectKind::Auth,
    );

    let url = format!("{}order/api/v1/create_order", env.creds.base_url);
    let body = serde_json::json!({"operation_type":"NEW","product":{"id":"esimfx_1G_7D_JP"}});
    let client = reqwest::Client::new();
    for auth in [None, Some("Bearer forged.token.sig"), Some("Bearer ")] {
        let mut req = client
            .post(&url)
            .header("X-Idempotency-Key", "k1")
            .json(&body);
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 401);
        let v: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(v["code"], 1002);
    }
    assert!(env.sim.core().orders().is_empty());
}

#[tokio::test]
async fn token_is_cached_across_calls() {
    let env = start().await;
    env.fx.balance().await.unwrap();
    env.fx.list_offers().await.unwrap();
    env.fx.balance().await.unwrap();
    assert_eq!(env.sim.auth_calls(), 1);
    assert_eq!(env.sim.refused_token_calls(), 0);
}

#[tokio::test]
async fn revoked_or_expired_token_is_replaced_once() {
    let env = start().await;
    let (sku, _) = topup_able_product();
    env.fx.balance().await.unwrap();
    env.sim.revoke_tokens();
    // The retried create_order carries the same key: still one order.
    env.fx.place_order(&order("ord_TK", &sku, 1)).await.unwrap();
    assert_eq!(
        (env.sim.auth_calls(), env.sim.refused_token_calls()),
        (2, 1)
    );
    assert_eq!(env.sim.core().orders().len(), 1);

    env.sim.set_token_lifetime(Duration::from_millis(100));
    env.sim.revoke_tokens();
    env.fx.balance().await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    env.fx.balance().await.unwrap();
    assert_eq!(
        (env.sim.auth_calls(), env.sim.refused_token_calls()),
        (4, 3)
    );
}

#[tokio::test]
async fn token_is_refreshed_before_it_expires() {
    let env = start().await;
    let fx = adapter(&env.creds, Duration::from_secs(2))
        .with_token_refresh_after(Duration::from_millis(100));
    fx.balance().await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    fx.balance().await.unwrap();
    assert_eq!(env.sim.auth_calls(), 2);
    assert_eq!(env.sim.refused_token_calls(), 0, "refreshed, not refused");
}

#[tokio::test]
async fn concurrent_callers_share_one_authentication() {
    let env = start().await;
    let fx = Arc::new(adapter(&env.creds, Duration::from_secs(5)));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let fx = fx.clone();
        tasks.spawn(async move { fx.balance().await });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap().unwrap();
    }
    assert_eq!(env.sim.auth_calls(), 1);
}

#[tokio::test]
async fn tops_up_with_an_available_product() {
    let env = start().await;
    let (sku, _) = topup_able_product();
    let placed = env.fx.place_order(&order("ord_B", &sku, 1)).await.unwrap();
    let iccid = placed.esims[0].iccid.clone();

    let offers = env.fx.topup_offers(&esim(&iccid)).await.unwrap();
    assert!(offers.iter().all(|o| o.is_topup));
    assert!(offers.iter().any(|o| o.sku == sku));
    let req = TopUp {
        order_id: "ord_TU".into(),
        esim: esim(&iccid),
        sku: sku.clone(),
        placed_at: Utc::now(),
    };
    let topped = env.fx.topup(&req).await.unwrap();
    assert_eq!(topped.status, VendorOrderStatus::Completed);
    assert_eq!(topped.esims[0].iccid, iccid);
    assert_ne!(topped.vendor_reference, placed.vendor_reference);
    // Retried after an unknown outcome: the same top-up.
    env.fx.topup(&req).await.unwrap();
    let records = env.sim.core().orders();
    assert_eq!(records.len(), 2);
    assert!(records[1].topup);
    assert_eq!(records[1].client_reference.as_deref(), Some("ord_TU"));

    let incompatible = env
        .sim
        .skus()
        .into_iter()
        .find(|s| s.ends_with("_EU32"))
        .unwrap();
    let bad = TopUp {
        order_id: "ord_TU2".into(),
        sku: incompatible,
        ..req.clone()
    };
    assert_rejected(env.fx.topup(&bad).await, RejectKind::NotAllowed);
    env.sim.core().faults.inject(ops::TOPUP, reject("3006"));
    assert_rejected(
        env.fx
            .topup(&TopUp {
                order_id: "ord_TU3".into(),
                ..req
            })
            .await,
        RejectKind::NotAllowed,
    );
}

#[tokio::test]
async fn cancel_refunds_a_pending_package_only() {
    let env = start().await;
    let (sku, _) = topup_able_product();
    let a = env.fx.place_order(&order("ord_X1", &sku, 1)).await.unwrap();
    let ra = by_ref("ord_X1", a.vendor_reference.as_deref());
    assert_eq!(
        env.fx.cancel(&ra, &[]).await.unwrap(),
        CancelOutcome::Refunded { amount: None }
    );
    assert_eq!(env.sim.balance(), Decimal::from(1000));
    assert!(env.sim.core().orders()[0].cancelled);
    assert_rejected(env.fx.cancel(&ra, &[]).await, RejectKind::NotAllowed);

    let b = env.fx.place_order(&order("ord_X2", &sku, 1)).await.unwrap();
    assert!(env.sim.simulate_usage(&b.esims[0].iccid, 1024));
    // Found through the eSIM when the order reference was lost.
    let via_esim = EsimRef {
        iccid: b.esims[0].iccid.clone(),
        vendor_esim_ref: b.esims[0].vendor_esim_ref.clone(),
        vendor_reference: None,
    };
    assert_eq!(
        env.fx
            .cancel(&by_ref("ord_X2", None), &[via_esim])
            .await
            .unwrap(),
        CancelOutcome::CancelledWithoutRefund
    );
    assert_rejected(
        env.fx.cancel(&by_ref("ord_X3", None), &[]).await,
        RejectKind::InvalidRequest,
    );
}

#[tokio::test]
async fn usage_reads_the_current_package_in_bytes() {
    let env = start().await;
    let (sku, _) = topup_able_product();
    let placed = env.fx.place_order(&order("ord_US", &sku, 1)).await.unwrap();
    let iccid = placed.esims[0].iccid.clone();

    let fresh = env.fx.usage(&esim(&iccid)).await.unwrap();
    assert_eq!((fresh.used_bytes, fresh.total_bytes), (0, Some(10 * GIB)));
    assert_eq!(fresh.status, Some(EsimStatus::Ready));
    assert_eq!(fresh.activated_at, None);

    env.sim.simulate_usage(&iccid, 3 * GIB);
    let used = env.fx.usage(&esim(&iccid)).await.unwrap();
    assert_eq!(
        (used.used_bytes, used.total_bytes),
        (3 * GIB, Some(10 * GIB))
    );
    assert_eq!(used.status, Some(EsimStatus::Active));
    assert!(used.activated_at.is_some() && used.expires_at > used.activated_at);
    assert!(!used.unlimited);

    assert_rejected(
        env.fx.usage(&esim("8944000000000000000")).await,
        RejectKind::NotFound,
    );
}

#[tokio::test]
async fn balance_is_the_profile_balance_in_usd() {
    let env = start().await;
    env.sim.set_balance("123.45".parse().unwrap());
    assert_eq!(
        env.fx.balance().await.unwrap(),
        Money::new("123.45".parse().unwrap(), Currency::USD)
    );
}

type Received = mpsc::UnboundedReceiver<(HeaderMap, Bytes)>;

async fn callback_receiver(env: &Env) -> (RunningSim, Received) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = Router::new()
        .route(
            "/webhooks/esimfx",
            post(
                |State(tx): State<mpsc::UnboundedSender<(HeaderMap, Bytes)>>,
                 headers: HeaderMap,
                 body: Bytes| async move {
                    let _ = tx.send((headers, body));
                },
            ),
        )
        .with_state(tx);
    let running = sandbox::serve(app).await.unwrap();
    let url = running.base_url.join("/webhooks/esimfx").unwrap();
    env.sim.core().set_callback_url(Some(url));
    (running, rx)
}

async fn next(rx: &mut Received) -> (HeaderMap, Bytes) {
    tokio::time::timeout(Duration::from_secs(2), rx.recv())
        .await
        .expect("callback within 2 s")
        .unwrap()
}

#[tokio::test]
async fn callbacks_carry_the_token_and_parse_into_events() {
    let env = start().await;
    let (_receiver, mut rx) = callback_receiver(&env).await;
    let (sku, _) = topup_able_product();
    let placed = env.fx.place_order(&order("ord_CB", &sku, 1)).await.unwrap();
    let iccid = placed.esims[0].iccid.clone();
    env.sim.simulate_usage(&iccid, 85 * GIB / 10);

    let mut kinds = Vec::new();
    for _ in 0..3 {
        let (headers, body) = next(&mut rx).await;
        assert_eq!(
            env.fx
                .verify_callback(&CallbackHeaders::from(&headers), &body)
                .unwrap(),
            CallbackTrust::Verified
        );
        let events = env
            .fx
            .parse_callback(&CallbackHeaders::from(&headers), &body)
            .unwrap();
        assert_eq!(events[0].iccid.as_deref(), Some(iccid.as_str()));
        assert_eq!(events[0].vendor_reference, placed.vendor_reference);
        kinds.push(events[0].kind.clone());

        let mut tampered = headers.clone();
        tampered.insert("token", "guess".parse().unwrap());
        assert!(matches!(
            env.fx
                .verify_callback(&CallbackHeaders::from(&tampered), &body),
            Err(VendorError::Unauthenticated(_))
        ));
        let untrusting = adapter(
            &EsimFxCredentials {
                webhook_token: None,
                ..env.creds.clone()
            },
            Duration::from_secs(1),
        );
        assert!(
            untrusting
                .verify_callback(&CallbackHeaders::from(&headers), &body)
                .is_err()
        );
    }
    assert!(kinds.contains(&VendorEventKind::EsimStatus {
        status: EsimStatus::Active
    }));
    for threshold in [50, 80] {
        assert!(kinds.iter().any(|k| matches!(
            k,
            VendorEventKind::Usage { threshold_percent: Some(t), used_bytes: Some(u), total_bytes: Some(t_b), .. }
                if *t == threshold && *u == 85 * GIB / 10 && *t_b == 10 * GIB
        )), "{kinds:?}");
    }
}

#[tokio::test]
async fn auto_activation_sends_an_activation_callback() {
    let env = start().await;
    let (_receiver, mut rx) = callback_receiver(&env).await;
    env.sim.set_auto_activation(true);
    let (sku, _) = topup_able_product();
    let placed = env.fx.place_order(&order("ord_AA", &sku, 1)).await.unwrap();
    let (headers, body) = next(&mut rx).await;
    env.fx
        .verify_callback(&CallbackHeaders::from(&headers), &body)
        .unwrap();
    let event = env
        .fx
        .parse_callback(&CallbackHeaders::from(&headers), &body)
        .unwrap()
        .remove(0);
    assert_eq!(
        event.kind,
        VendorEventKind::EsimStatus {
            status: EsimStatus::Active
        }
    );
    assert_eq!(event.iccid.as_deref(), Some(placed.esims[0].iccid.as_str()));
    let usage = env.fx.usage(&esim(&placed.esims[0].iccid)).await.unwrap();
    assert_eq!(usage.status, Some(EsimStatus::Active));
}
