//! esimgo adapter against its simulator.

use esim_gateway::domain::secret::ExposeSecret;
use std::time::Duration;

use axum::{Router, body::Bytes, http::HeaderMap, http::StatusCode, routing::post};
use chrono::Utc;
use esim_gateway::vendors::CallbackHeaders;
use esim_gateway::{
    domain::money::Money,
    sandbox::{self, Fault, RunningSim, SimSettings, luhn_valid},
    vendors::esimgo::credentials::EsimGoCredentials,
    vendors::esimgo::sim::{EsimGoSim, messages, ops},
    vendors::{
        AdapterOptions, CallbackTrust, CancelOutcome, DataKind, EsimRef, EsimStatus, GIB,
        PlaceOrder, RejectKind, TopUp, Vendor, VendorError, VendorEventKind, VendorOrderRef,
        VendorOrderStatus, esimgo::EsimGo,
    },
};
use rust_decimal::Decimal;
use tokio::sync::mpsc;

struct Env {
    sim: EsimGoSim,
    creds: EsimGoCredentials,
    vendor: EsimGo,
    _running: RunningSim,
}

async fn start() -> Env {
    start_with(AdapterOptions::default()).await
}

async fn start_with(opts: AdapterOptions) -> Env {
    let placeholder = EsimGoSim::sandbox_credentials("http://127.0.0.1:9".parse().unwrap());
    let sim = EsimGoSim::new(&placeholder, SimSettings::fast());
    let running = sandbox::serve(sim.router()).await.unwrap();
    let creds = EsimGoCredentials {
        api_key: placeholder.api_key,
        base_url: EsimGoSim::sandbox_credentials(running.base_url.clone()).base_url,
    };
    let vendor = EsimGo::new(creds.clone(), &opts);
    Env {
        sim,
        creds,
        vendor,
        _running: running,
    }
}

fn short_timeout() -> AdapterOptions {
    AdapterOptions {
        timeout: Duration::from_millis(400),
    }
}

/// A bundle of 1 GB (1000 MB at eSIM Go) for a single country.
fn one_gb_sku(sim: &EsimGoSim) -> String {
    sim.bundle_names()
        .into_iter()
        .find(|n| n.starts_with("esim_1GB_7D_") && n.len() == "esim_1GB_7D_XX_V2".len())
        .expect("the seed catalogue has a 1 GB single-country bundle")
}

fn other_sku(sim: &EsimGoSim, not: &str) -> String {
    sim.bundle_names()
        .into_iter()
        .find(|n| n.starts_with("esim_3GB_") && n != not)
        .expect("a 3 GB bundle")
}

fn order(id: &str, sku: &str) -> PlaceOrder {
    PlaceOrder {
        order_id: id.to_string(),
        sku: sku.to_string(),
        quantity: 1,
        expected_unit_cost: None,
        price_tolerance_percent: rust_decimal::Decimal::ZERO,
        placed_at: Utc::now(),
    }
}

/// The reconciliation key the ordering layer reads from the attempt row.
fn by_our_id(req: &PlaceOrder) -> VendorOrderRef {
    VendorOrderRef::new(req.order_id.clone(), req.placed_at).with_attempt(&req.sku, req.quantity)
}

fn reject_kind(r: Result<impl std::fmt::Debug, VendorError>) -> RejectKind {
    match r {
        Err(VendorError::Rejected { kind, .. }) => kind,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn assert_unknown(r: Result<impl std::fmt::Debug, VendorError>) {
    assert!(matches!(r, Err(VendorError::Unknown(_))), "{r:?}");
}

#[tokio::test]
async fn catalogue_is_listed_across_pages_in_gbp_and_decimal_megabytes() {
    let env = start().await;
    let offers = env.vendor.list_offers().await.unwrap();
    let names = env.sim.bundle_names();
    assert_eq!(offers.len(), names.len());
    assert!(offers.len() > 100, "more than one 100-bundle page");
    assert!(offers.iter().all(|o| o.cost.currency.as_str() == "GBP"));

    let sku = one_gb_sku(&env.sim);
    let o = offers.iter().find(|o| o.sku == sku).unwrap();
    let data = o.data.unwrap();
    assert_eq!(data.kind, DataKind::Total);
    assert_eq!(data.bytes, Some(1_000_000_000));
    assert_eq!(data.marketed_bytes, Some(GIB));
    assert_eq!(o.validity_days, 7);
    assert_eq!(o.cost.amount, env.sim.price(&sku).unwrap());
    assert_eq!(o.countries.len(), 1);
    assert_eq!(o.countries[0], sku[12..14]);

    let regional = offers.iter().find(|o| o.countries.len() > 4).unwrap();
    assert!(regional.region_label.is_some(), "{regional:?}");
    let unlimited = offers.iter().find(|o| o.sku.contains("_UL_")).unwrap();
    assert_eq!(unlimited.data.unwrap().kind, DataKind::Unlimited);
}

#[tokio::test]
async fn order_is_synchronous_debits_the_balance_and_is_tagged_with_our_id() {
    let env = start().await;
    let sku = one_gb_sku(&env.sim);
    let before = env.vendor.balance().await.unwrap();
    assert_eq!(before.currency.as_str(), "GBP");

    let placed = env
        .vendor
        .place_order(&order("ord_sync", &sku))
        .await
        .unwrap();
    assert_eq!(placed.status, VendorOrderStatus::Completed);
    assert_eq!(placed.esims.len(), 1);
    let esim = &placed.esims[0];
    assert!(
        luhn_valid(&esim.iccid) && esim.iccid.len() == 19,
        "{}",
        esim.iccid
    );
    assert_eq!(
        esim.activation.lpa,
        format!(
            "LPA:1${}${}",
            esim.activation.smdp_address, esim.activation.matching_id
        )
    );

    let recorded = env.sim.core().orders();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].client_reference.as_deref(), Some("ord_sync"));
    assert_eq!(
        Some(&recorded[0].vendor_reference),
        placed.vendor_reference.as_ref()
    );
    assert_eq!(
        env.sim.customer_ref(&esim.iccid).as_deref(),
        Some("ord_sync")
    );
    let after = env.vendor.balance().await.unwrap();
    assert_eq!(before.amount - after.amount, env.sim.price(&sku).unwrap());

    // Polling by reference reads the install details from /esims/assignments.
    let r = VendorOrderRef {
        order_id: "ord_sync".into(),
        vendor_reference: placed.vendor_reference.clone(),
        placed_at: Utc::now(),
        ..VendorOrderRef::default()
    };
    let fetched = env.vendor.fetch_order(&r).await.unwrap();
    assert_eq!(fetched.status, VendorOrderStatus::Completed);
    assert_eq!(fetched.esims, placed.esims);
    let missing = VendorOrderRef {
        vendor_reference: Some("no-such-order".into()),
        ..r
    };
    assert_eq!(
        reject_kind(env.vendor.fetch_order(&missing).await),
        RejectKind::NotFound
    );
}

/// `GET /esims/{iccid}/compatible/{bundle}`: a bundle from another of eSIM Go's networks is
/// not compatible, and applying it anyway is refused with nothing charged.
#[tokio::test]
async fn incompatible_bundles_are_reported_and_refused() {
    let env = start().await;
    let sku = one_gb_sku(&env.sim);
    let placed = env.vendor.place_order(&order("ord_c", &sku)).await.unwrap();
    let esim = EsimRef {
        iccid: placed.esims[0].iccid.clone(),
        vendor_esim_ref: None,
        vendor_reference: placed.vendor_reference.clone(),
    };
    let (mut fits, mut misfits) = (Vec::new(), Vec::new());
    for name in env.sim.bundle_names() {
        match env.vendor.topup_compatible(&esim, &name).await.unwrap() {
            true => fits.push(name),
            false => misfits.push(name),
        }
    }
    assert!(fits.contains(&sku) && !misfits.is_empty(), "{misfits:?}");
    let balance = env.sim.balance();
    let refused = env
        .vendor
        .topup(&TopUp {
            order_id: "ord_c_top".into(),
            esim: esim.clone(),
            sku: misfits[0].clone(),
            placed_at: Utc::now(),
        })
        .await
        .unwrap_err();
    assert!(refused.nothing_bought(), "{refused:?}");
    assert_eq!(env.sim.balance(), balance);
    assert_eq!(env.sim.core().orders().len(), 1);
    let unknown = EsimRef {
        iccid: "8944538530000000000".into(),
        ..esim.clone()
    };
    assert!(env.vendor.topup_compatible(&unknown, &sku).await.is_err());
}

#[tokio::test]
async fn topup_usage_and_cancel() {
    let env = start().await;
    let sku = one_gb_sku(&env.sim);
    let placed = env.vendor.place_order(&order("ord_t", &sku)).await.unwrap();
    let iccid = placed.esims[0].iccid.clone();
    let esim = EsimRef {
        iccid: iccid.clone(),
        vendor_esim_ref: None,
        vendor_reference: placed.vendor_reference.clone(),
    };

    let mut topup_sku = other_sku(&env.sim, &sku);
    for name in env.sim.bundle_names() {
        if name.starts_with("esim_3GB_") && env.vendor.topup_compatible(&esim, &name).await.unwrap()
        {
            topup_sku = name;
            break;
        }
    }
    let topped = env
        .vendor
        .topup(&TopUp {
            order_id: "ord_t_top".into(),
            esim: esim.clone(),
            sku: topup_sku.clone(),
            placed_at: Utc::now(),
        })
        .await
        .unwrap();
    assert_eq!(topped.status, VendorOrderStatus::Completed);
    assert_eq!(topped.esims[0].iccid, iccid);
    let orders = env.sim.core().orders();
    assert_eq!(orders.len(), 2);
    assert!(orders[1].topup && orders[1].iccids == vec![iccid.clone()]);

    let usage = env.vendor.usage(&esim).await.unwrap();
    assert_eq!(usage.total_bytes, Some(4_000_000_000));
    assert_eq!(usage.used_bytes, 0);
    assert!(env.sim.consume(&iccid, 250_000_000));
    let usage = env.vendor.usage(&esim).await.unwrap();
    assert_eq!(usage.used_bytes, 250_000_000);
    assert_eq!(usage.status, Some(EsimStatus::Active));
    assert!(usage.activated_at.is_some() && usage.expires_at.is_some());

    // The unused top-up is refunded; the started bundle is not.
    let balance = env.sim.balance();
    let topup_ref = VendorOrderRef {
        order_id: "ord_t_top".into(),
        vendor_reference: topped.vendor_reference.clone(),
        placed_at: Utc::now(),
        ..VendorOrderRef::default()
    };
    let outcome = env
        .vendor
        .cancel(&topup_ref, std::slice::from_ref(&esim))
        .await
        .unwrap();
    let price = env.sim.price(&topup_sku).unwrap();
    assert_eq!(
        outcome,
        CancelOutcome::Refunded {
            amount: Some(Money::new(price, env.sim.currency()))
        }
    );
    assert_eq!(env.sim.balance() - balance, price);
    assert!(env.sim.core().orders()[1].cancelled);

    let first_ref = VendorOrderRef {
        order_id: "ord_t".into(),
        vendor_reference: placed.vendor_reference.clone(),
        placed_at: Utc::now(),
        ..VendorOrderRef::default()
    };
    let refused = env.vendor.cancel(&first_ref, &[esim]).await;
    assert_eq!(reject_kind(refused), RejectKind::NotAllowed);
}

#[tokio::test]
async fn unused_order_cancels_without_a_vendor_reference() {
    let env = start().await;
    let sku = one_gb_sku(&env.sim);
    let placed = env.vendor.place_order(&order("ord_c", &sku)).await.unwrap();
    let balance = env.sim.balance();
    let r = VendorOrderRef {
        order_id: "ord_c".into(),
        vendor_reference: None,
        placed_at: Utc::now(),
        ..VendorOrderRef::default()
    };
    let esims = [EsimRef {
        iccid: placed.esims[0].iccid.clone(),
        vendor_esim_ref: None,
        vendor_reference: None,
    }];
    let outcome = env.vendor.cancel(&r, &esims).await.unwrap();
    assert!(matches!(outcome, CancelOutcome::Refunded { .. }));
    assert_eq!(env.sim.balance() - balance, env.sim.price(&sku).unwrap());
}

#[tokio::test]
async fn vendor_refusals_map_to_reject_kinds_and_buy_nothing() {
    let env = start().await;
    let sku = one_gb_sku(&env.sim);

    env.sim.set_balance(Decimal::ZERO);
    let r = env.vendor.place_order(&order("ord_poor", &sku)).await;
    assert_eq!(reject_kind(r), RejectKind::InsufficientBalance);
    env.sim.set_balance(Decimal::from(100));

    let r = env
        .vendor
        .place_order(&order("ord_x", "esim_NOPE_V2"))
        .await;
    assert_eq!(reject_kind(r), RejectKind::NotFound);

    let faults = &env.sim.core().faults;
    for (code, kind) in [
        ("out_of_stock", RejectKind::SoldOut),
        ("insufficient_balance", RejectKind::InsufficientBalance),
        ("invalid_bundle", RejectKind::NotFound),
        ("400", RejectKind::InvalidRequest),
        ("403", RejectKind::Auth),
    ] {
        faults.inject(
            ops::ORDER,
            Fault::Reject {
                code: code.into(),
                message: None,
            },
        );
        let r = env.vendor.place_order(&order("ord_r", &sku)).await;
        let err = r.unwrap_err();
        assert!(err.nothing_bought(), "{code}: {err:?}");
        assert_eq!(err.reject_kind(), Some(kind), "{code}");
    }
    faults.inject(
        ops::AUTH,
        Fault::Reject {
            code: "401".into(),
            message: None,
        },
    );
    assert_eq!(reject_kind(env.vendor.balance().await), RejectKind::Auth);
    assert!(env.sim.core().orders().is_empty());
}

#[tokio::test]
async fn wrong_or_missing_api_key_is_refused_like_the_vendor() {
    let env = start().await;
    let wrong = EsimGo::new(
        EsimGoCredentials {
            api_key: esim_gateway::domain::secret::SecretString::from("wrong-key"),
            base_url: env.creds.base_url.clone(),
        },
        &AdapterOptions::default(),
    );
    match wrong.balance().await {
        Err(VendorError::Rejected {
            kind,
            code,
            message,
        }) => {
            assert_eq!(
                (kind, code.as_str(), message.as_str()),
                (RejectKind::Auth, "403", "Forbidden")
            );
        }
        other => panic!("{other:?}"),
    }
    let resp = reqwest::get(env.creds.base_url.to_string() + "/organisation")
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"message": "Unauthorized"}));
    // The right key on a path without the version prefix is not the API.
    let bare = reqwest::Client::new()
        .get(env.creds.base_url.join("/organisation").unwrap())
        .header("X-API-Key", env.creds.api_key.expose_secret())
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn transport_failures_and_5xx_are_unknown_and_a_closed_port_is_unreachable() {
    let env = start_with(short_timeout()).await;
    let sku = one_gb_sku(&env.sim);
    let faults = &env.sim.core().faults;

    faults.inject(
        ops::ORDER,
        Fault::Reset {
            after_processing: false,
        },
    );
    assert_unknown(env.vendor.place_order(&order("ord_f1", &sku)).await);
    for status in [500, 503] {
        faults.inject(ops::ORDER, Fault::ServerError { status });
        assert_unknown(env.vendor.place_order(&order("ord_f2", &sku)).await);
    }
    for code in ["429", "503"] {
        faults.inject(
            ops::ORDER,
            Fault::Reject {
                code: code.into(),
                message: None,
            },
        );
        assert_unknown(env.vendor.place_order(&order("ord_f3", &sku)).await);
    }
    assert!(env.sim.core().orders().is_empty(), "none of these acted");

    faults.inject(
        ops::LIST,
        Fault::Reset {
            after_processing: false,
        },
    );
    assert_unknown(env.vendor.list_offers().await);
    faults.inject(ops::USAGE, Fault::ServerError { status: 500 });
    let esim = EsimRef {
        iccid: "8944538532008160222".into(),
        vendor_esim_ref: None,
        vendor_reference: None,
    };
    assert_unknown(env.vendor.usage(&esim).await);

    faults.inject(ops::ORDER, Fault::Delay { millis: 1_200 });
    assert_unknown(env.vendor.place_order(&order("ord_f4", &sku)).await);
    assert_eq!(
        env.sim.core().orders().len(),
        1,
        "the delayed order was placed"
    );

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = listener.local_addr().unwrap();
    drop(listener);
    let gone = EsimGo::new(
        EsimGoSim::sandbox_credentials(format!("http://{closed}").parse().unwrap()),
        &short_timeout(),
    );
    let r = gone.place_order(&order("ord_f5", &sku)).await;
    assert!(matches!(r, Err(VendorError::Unreachable(_))), "{r:?}");
}

#[tokio::test]
async fn unknown_outcome_is_reconciled_from_the_order_list_without_reordering() {
    let env = start_with(short_timeout()).await;
    let sku = one_gb_sku(&env.sim);
    let faults = &env.sim.core().faults;

    // An earlier order of the same bundle, tagged: reconciliation must not take it.
    let earlier = env
        .vendor
        .place_order(&order("ord_ok", &sku))
        .await
        .unwrap();

    for (id, fault) in [
        ("ord_delay", Fault::Delay { millis: 1_200 }),
        (
            "ord_reset",
            Fault::Reset {
                after_processing: true,
            },
        ),
    ] {
        faults.inject(ops::ORDER, fault);
        let req = order(id, &sku);
        assert_unknown(env.vendor.place_order(&req).await);
        let count = env.sim.core().orders().len();
        let recorded = env.sim.core().orders().last().cloned().unwrap();
        assert_eq!(
            recorded.client_reference, None,
            "the vendor has not heard our id yet"
        );

        let found = env
            .vendor
            .fetch_order(&by_our_id(&req))
            .await
            .unwrap_or_else(|e| panic!("{id}: {e:?} {:?}", env.sim.core().orders()));
        assert_eq!(found.status, VendorOrderStatus::Completed);
        assert_eq!(
            found.vendor_reference.as_ref(),
            Some(&recorded.vendor_reference)
        );
        assert_eq!(found.esims.len(), 1);
        assert_eq!(found.esims[0].iccid, recorded.iccids[0]);
        assert_ne!(found.vendor_reference, earlier.vendor_reference);

        // Claimed for us, and no second vendor order.
        let orders = env.sim.core().orders();
        assert_eq!(orders.len(), count);
        assert_eq!(orders.last().unwrap().client_reference.as_deref(), Some(id));
        // Asking again finds the same order through the tag.
        let again = env.vendor.fetch_order(&by_our_id(&req)).await.unwrap();
        assert_eq!(again.vendor_reference, found.vendor_reference);
    }
    assert_eq!(env.sim.core().orders().len(), 3);
}

#[tokio::test]
async fn reconciliation_says_not_found_only_once_settled_and_refuses_to_guess() {
    let env = start_with(short_timeout()).await;
    let sku = one_gb_sku(&env.sim);

    let mut old = order("ord_none", &sku);
    old.placed_at = Utc::now() - chrono::Duration::minutes(10);
    assert_eq!(
        reject_kind(env.vendor.fetch_order(&by_our_id(&old)).await),
        RejectKind::NotFound
    );
    // Just placed: the request might still be in flight at the vendor.
    assert_unknown(
        env.vendor
            .fetch_order(&by_our_id(&order("ord_new", &sku)))
            .await,
    );

    // Two untagged orders of the same bundle: which one is ours is undecidable.
    env.sim
        .core()
        .faults
        .inject_times(ops::ORDER, Fault::Delay { millis: 1_200 }, Some(2));
    let a = order("ord_a", &sku);
    let b = order("ord_b", &sku);
    assert_unknown(env.vendor.place_order(&a).await);
    assert_unknown(env.vendor.place_order(&b).await);
    let r = env.vendor.fetch_order(&by_our_id(&a)).await;
    match r {
        Err(VendorError::Unknown(msg)) => assert!(msg.contains("ambiguous"), "{msg}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(env.sim.core().orders().len(), 2);
}

async fn callback_receiver() -> (
    url::Url,
    mpsc::UnboundedReceiver<(HeaderMap, Bytes)>,
    RunningSim,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = Router::new().route(
        "/webhooks/esimgo",
        post(move |headers: HeaderMap, body: Bytes| {
            let tx = tx.clone();
            async move {
                let _ = tx.send((headers, body));
                StatusCode::OK
            }
        }),
    );
    let running = sandbox::serve(app).await.unwrap();
    let url = running.base_url.join("webhooks/esimgo").unwrap();
    (url, rx, running)
}

async fn next_callback(rx: &mut mpsc::UnboundedReceiver<(HeaderMap, Bytes)>) -> (HeaderMap, Bytes) {
    tokio::time::timeout(Duration::from_secs(3), rx.recv())
        .await
        .expect("a callback within 3 s")
        .expect("receiver open")
}

#[tokio::test]
async fn callbacks_are_signed_with_the_api_key_and_parse() {
    let env = start().await;
    let (url, mut rx, _receiver) = callback_receiver().await;
    env.sim.core().set_callback_url(Some(url));
    let sku = one_gb_sku(&env.sim);

    let placed = env
        .vendor
        .place_order(&order("ord_cb", &sku))
        .await
        .unwrap();
    let iccid = placed.esims[0].iccid.clone();
    let (headers, body) = next_callback(&mut rx).await;
    assert_eq!(
        env.vendor
            .verify_callback(&CallbackHeaders::from(&headers), &body)
            .unwrap(),
        CallbackTrust::Verified
    );
    let events = env
        .vendor
        .parse_callback(&CallbackHeaders::from(&headers), &body)
        .unwrap();
    assert_eq!(events[0].iccid.as_deref(), Some(iccid.as_str()));
    assert_eq!(
        events[0].kind,
        VendorEventKind::EsimStatus {
            status: EsimStatus::Ready
        }
    );

    let mut tampered = body.to_vec();
    tampered.extend_from_slice(b" ");
    let r = env
        .vendor
        .verify_callback(&CallbackHeaders::from(&headers), &tampered);
    assert!(matches!(r, Err(VendorError::Unauthenticated(_))), "{r:?}");
    let r = env
        .vendor
        .verify_callback(&CallbackHeaders::from(&HeaderMap::new()), &body);
    assert!(matches!(r, Err(VendorError::Unauthenticated(_))), "{r:?}");

    // 60 % of 1 GB: FirstUse, then the 1 % and 50 % utilisation alerts.
    assert!(env.sim.consume(&iccid, 600_000_000));
    let mut kinds = Vec::new();
    for _ in 0..3 {
        let (headers, body) = next_callback(&mut rx).await;
        env.vendor
            .verify_callback(&CallbackHeaders::from(&headers), &body)
            .unwrap();
        let e = env
            .vendor
            .parse_callback(&CallbackHeaders::from(&headers), &body)
            .unwrap()
            .remove(0);
        assert_eq!(e.iccid.as_deref(), Some(iccid.as_str()));
        kinds.push(e.kind);
    }
    assert!(kinds.contains(&VendorEventKind::EsimStatus {
        status: EsimStatus::Active
    }));
    assert!(kinds.contains(&VendorEventKind::Usage {
        used_bytes: Some(600_000_000),
        total_bytes: Some(1_000_000_000),
        remaining_bytes: Some(400_000_000),
        threshold_percent: None,
    }));

    // A refused purchase triggers the InsufficientBalance notification.
    env.sim.set_balance(Decimal::ZERO);
    let _ = env.vendor.place_order(&order("ord_cb2", &sku)).await;
    let (headers, body) = next_callback(&mut rx).await;
    env.vendor
        .verify_callback(&CallbackHeaders::from(&headers), &body)
        .unwrap();
    let e = env
        .vendor
        .parse_callback(&CallbackHeaders::from(&headers), &body)
        .unwrap()
        .remove(0);
    assert_eq!(e.kind, VendorEventKind::LowBalance { exhausted: true });
    let _ = messages::INSUFFICIENT_BALANCE;
}

#[tokio::test]
async fn with_an_expected_cost_the_price_is_validated_before_buying() {
    let env = start_with(short_timeout()).await;
    let sku = one_gb_sku(&env.sim);
    let offers = env.vendor.list_offers().await.unwrap();
    let cost = offers.iter().find(|o| o.sku == sku).unwrap().cost;
    let guarded = |id: &str, tolerance: i64| PlaceOrder {
        expected_unit_cost: Some(cost),
        price_tolerance_percent: Decimal::from(tolerance),
        ..order(id, &sku)
    };

    // 5 % above the synced cost, 2 % allowed: refused by the dry run, nothing bought.
    env.sim.core().raise_prices(Decimal::from(5));
    let r = env.vendor.place_order(&guarded("ord-price-1", 2)).await;
    assert_eq!(reject_kind(r), RejectKind::PriceChanged);
    assert!(env.sim.core().orders().is_empty());

    // Within the tolerance it buys, and the answer tells what was charged.
    let placed = env
        .vendor
        .place_order(&guarded("ord-price-2", 10))
        .await
        .unwrap();
    let charged = placed.charged.expect("eSIM Go states the order total");
    assert_eq!(charged.currency, cost.currency);
    assert_eq!(
        charged.amount,
        (cost.amount * Decimal::new(105, 2)).round_dp(2)
    );
    assert_eq!(env.sim.core().orders().len(), 1);

    // A dry run without a usable answer: nothing was bought and no transaction was sent,
    // so it is unreachable (try elsewhere), not unknown.
    env.sim.core().faults.inject(ops::VALIDATE, Fault::Garbled);
    let r = env.vendor.place_order(&guarded("ord-price-3", 10)).await;
    assert!(matches!(r, Err(VendorError::Unreachable(_))), "{r:?}");
    env.sim.core().faults.inject(
        ops::VALIDATE,
        Fault::Delay {
            millis: short_timeout().timeout.as_millis() as u64 + 300,
        },
    );
    let r = env.vendor.place_order(&guarded("ord-price-4", 10)).await;
    assert!(matches!(r, Err(VendorError::Unreachable(_))), "{r:?}");
    assert_eq!(env.sim.core().orders().len(), 1);

    // Without an expected cost (a re-send) there is no dry run.
    env.sim.core().faults.inject(ops::VALIDATE, Fault::Garbled);
    env.vendor
        .place_order(&order("ord-price-5", &sku))
        .await
        .unwrap();
    assert_eq!(env.sim.core().orders().len(), 2);
}
