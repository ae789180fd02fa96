//! Multiverse adapter against its simulator: both auth layers (token caching, refresh,
//! no stampede), every operation, the provisioning callback, every fault class, and
//! reconciliation by query (the vendor does not deduplicate purchases).

use std::{sync::Arc, time::Duration};

use axum::{Router, body::Bytes, http::HeaderMap, routing::post};
use chrono::Utc;
use esim_gateway::vendors::CallbackHeaders;
use esim_gateway::{
    domain::secret::{ExposeSecret, SecretString},
    sandbox::{Fault, RunningSim, SimSettings, catalog::SeedData, serve},
    vendors::multiverse::credentials::MultiverseCredentials,
    vendors::multiverse::sim::{MultiverseSim, ops},
    vendors::{
        AdapterOptions, CallbackTrust, DataAllowance, DataKind, EsimRef, GIB, MIB, OrderState,
        PlaceOrder, RejectKind, TopUp, Vendor, VendorError, VendorEventKind, VendorOrderRef,
        VendorOrderStatus, multiverse::Multiverse,
    },
};
use rust_decimal::Decimal;
use tokio::sync::{Mutex, mpsc};

struct Env {
    sim: MultiverseSim,
    running: RunningSim,
    creds: MultiverseCredentials,
    adapter: Arc<Multiverse>,
}

impl Env {
    async fn start() -> Env {
        Env::start_with(Duration::from_secs(5)).await
    }

    async fn start_with(timeout: Duration) -> Env {
        let sim_creds = MultiverseSim::sandbox_credentials("http://127.0.0.1:1".parse().unwrap());
        let sim = MultiverseSim::new(&sim_creds, SimSettings::fast());
        let running = serve(sim.router()).await.unwrap();
        let creds = MultiverseCredentials {
            base_url: running.base_url.clone(),
            ..sim_creds
        };
        let adapter = Arc::new(Multiverse::new(creds.clone(), &AdapterOptions { timeout }));
        Env {
            sim,
            running,
            creds,
            adapter,
        }
    }

    fn adapter_with(&self, creds: MultiverseCredentials) -> Multiverse {
        Multiverse::new(creds, &AdapterOptions::default())
    }

    /// A carried product of the given data shape: (package id, price).
    fn product(&self, pick: impl Fn(&SeedData) -> bool) -> (String, Decimal) {
        self.sim
            .products()
            .into_iter()
            .find(|(_, p)| pick(&p.plan.data))
            .map(|(id, p)| (id, p.price))
            .unwrap()
    }

    fn any_sku(&self) -> String {
        self.product(|d| matches!(d, SeedData::TotalMb(_))).0
    }
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

/// A reference by our order id, placed long enough ago that no purchase can still be in
/// flight (so an empty query may say "not found").
fn by_our_id(id: &str) -> VendorOrderRef {
    VendorOrderRef {
        order_id: id.to_string(),
        vendor_reference: None,
        placed_at: Utc::now() - chrono::Duration::minutes(10),
        ..VendorOrderRef::default()
    }
}

fn new_order_id() -> String {
    format!("ord_{}", ulid::Ulid::new())
}

async fn until_completed(adapter: &Multiverse, r: &VendorOrderRef) -> OrderState {
    for _ in 0..200 {
        let state = adapter.fetch_order(r).await.unwrap();
        if state.status == VendorOrderStatus::Completed {
            return state;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("order {} never completed", r.order_id);
}

/// A stand-in for the gateway's `/webhooks/multiverse` that hands over what it receives.
async fn callback_receiver() -> (RunningSim, mpsc::UnboundedReceiver<(HeaderMap, Bytes)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let tx = Arc::new(Mutex::new(tx));
    let app = Router::new().route(
        "/webhooks/multiverse",
        post(move |headers: HeaderMap, body: Bytes| {
            let tx = tx.clone();
            async move {
                let _ = tx.lock().await.send((headers, body));
                "{}"
            }
        }),
    );
    (serve(app).await.unwrap(), rx)
}

fn assert_rejected(err: VendorError, kind: RejectKind, code: &str) {
    match &err {
        VendorError::Rejected {
            kind: k, code: c, ..
        } => {
            assert_eq!((*k, c.as_str()), (kind, code), "{err:?}")
        }
        other => panic!("expected Rejected {kind:?}, got {other:?}"),
    }
}

#[tokio::test]
async fn list_offers_returns_the_whole_catalogue_in_euros_and_binary_units() {
    let env = Env::start().await;
    let offers = env.adapter.list_offers().await.unwrap();
    let products = env.sim.products();
    // No pagination is known [assumption]: one call returns every package.
    assert_eq!(offers.len(), products.len());
    for (id, p) in &products {
        let offer = offers.iter().find(|o| &o.sku == id).unwrap();
        assert_eq!(offer.cost.amount, p.price, "{id}");
        assert_eq!(offer.cost.currency.as_str(), "EUR");
        assert_eq!(offer.validity_days, p.plan.days);
        assert_eq!(offer.countries, p.plan.countries);
        assert_eq!(offer.region_label.as_deref(), p.plan.region);
        assert_eq!(offer.supports_topup, p.topup);
        assert!(offer.active && !offer.is_topup);
        let expected = match p.plan.data {
            SeedData::TotalMb(mb) => DataAllowance::binary(DataKind::Total, mb * MIB),
            SeedData::DailyMb(mb) => DataAllowance::binary(DataKind::Daily, mb * MIB),
            SeedData::Unlimited => DataAllowance::unlimited(),
        };
        assert_eq!(offer.data, Some(expected), "{id}");
    }
    assert!(
        offers
            .iter()
            .any(|o| o.data.unwrap().bytes == Some(10 * GIB))
    );
}

#[tokio::test]
async fn order_is_pending_until_the_callback_then_fetch_order_completes_it() {
    let env = Env::start().await;
    // The asynchronous purchase route (with `/sync` it would answer at once).
    env.sim.set_offered(ops::ORDER_SYNC, false);
    let (receiver, mut received) = callback_receiver().await;
    env.sim.core().set_callback_url(Some(
        receiver.base_url.join("/webhooks/multiverse").unwrap(),
    ));
    let (sku, price) = env.product(|d| matches!(d, SeedData::TotalMb(_)));
    let before = env.sim.balance();
    let id = new_order_id();

    let placed = env.adapter.place_order(&order(&id, &sku, 1)).await.unwrap();
    assert_eq!(placed.status, VendorOrderStatus::Pending);
    assert!(placed.esims.is_empty());
    let vendor_ref = placed.vendor_reference.clone().unwrap();

    let (headers, body) = tokio::time::timeout(Duration::from_secs(3), received.recv())
        .await
        .unwrap()
        .unwrap();
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
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(event.kind, VendorEventKind::OrderReady);
    assert_eq!(event.order_id.as_deref(), Some(id.as_str()));
    assert_eq!(event.vendor_reference.as_deref(), Some(vendor_ref.as_str()));
    let profile = event.profile.clone().unwrap();
    let iccid = event.iccid.clone().unwrap();
    assert_eq!(profile.iccid, iccid);
    assert!(profile.activation.lpa.starts_with("LPA:1$"));
    assert_eq!(event.dedupe_key, format!("order:{vendor_ref}:{iccid}"));

    let by_ref = VendorOrderRef {
        vendor_reference: Some(vendor_ref.clone()),
        ..by_our_id(&id)
    };
    let state = env.adapter.fetch_order(&by_ref).await.unwrap();
    assert_eq!(state.status, VendorOrderStatus::Completed);
    assert_eq!(state.esims, vec![profile.clone()]);
    let state = env.adapter.fetch_order(&by_our_id(&id)).await.unwrap();
    assert_eq!(state.esims[0].iccid, iccid);

    let orders = env.sim.core().orders();
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0].client_reference.as_deref(), Some(id.as_str()));
    assert_eq!(orders[0].iccids, vec![iccid]);
    assert_eq!(env.sim.balance(), before - price);
}

#[tokio::test]
async fn quantity_two_buys_one_esim_per_call_with_suffixed_references() {
    let env = Env::start().await;
    // The asynchronous purchase route (with `/sync` it would answer at once).
    env.sim.set_offered(ops::ORDER_SYNC, false);
    let sku = env.any_sku();
    let id = new_order_id();
    let placed = env.adapter.place_order(&order(&id, &sku, 2)).await.unwrap();
    assert_eq!(placed.status, VendorOrderStatus::Pending);
    // Bought concurrently: in whichever order the vendor took them.
    let mut refs: Vec<_> = env
        .sim
        .core()
        .orders()
        .into_iter()
        .map(|o| o.client_reference.unwrap())
        .collect();
    refs.sort();
    assert_eq!(refs, vec![format!("{id}-1"), format!("{id}-2")]);
    let two = VendorOrderRef {
        quantity: 2,
        ..by_our_id(&id)
    };
    let state = until_completed(&env.adapter, &two).await;
    assert_eq!(state.esims.len(), 2);
    assert_ne!(state.esims[0].iccid, state.esims[1].iccid);
    // The combined reference finds the same two orders.
    let by_ref = VendorOrderRef {
        vendor_reference: placed.vendor_reference,
        ..two
    };
    assert_eq!(env.adapter.fetch_order(&by_ref).await.unwrap(), state);
}

#[tokio::test]
async fn place_order_buys_through_purchase_sync_and_answers_with_the_esim() {
    let env = Env::start().await;
    let id = new_order_id();
    let state = env
        .adapter
        .place_order(&order(&id, &env.any_sku(), 1))
        .await
        .unwrap();
    assert_eq!(state.status, VendorOrderStatus::Completed);
    assert_eq!(state.esims.len(), 1);
    let orders = env.sim.core().orders();
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0].iccids, vec![state.esims[0].iccid.clone()]);
}

#[tokio::test]
async fn an_empty_query_is_not_evidence_while_a_purchase_may_be_in_flight() {
    let env = Env::start().await;
    let fresh = VendorOrderRef {
        placed_at: Utc::now(),
        ..by_our_id(&new_order_id())
    };
    let err = env.adapter.fetch_order(&fresh).await.unwrap_err();
    assert!(matches!(err, VendorError::Unknown(_)), "{err:?}");
}

/// Where `/purchase/sync` and every guessed endpoint answer 404001, buying falls back to the
/// documented asynchronous route, polling is `Unknown` (never "not found", never
/// "unsupported", which would read as "nothing bought"), and balance is `Unsupported`.
#[tokio::test]
async fn documented_operations_only_fall_back_and_degrade() {
    let env = Env::start().await;
    env.sim.documented_only();
    let id = new_order_id();
    let placed = env
        .adapter
        .place_order(&order(&id, &env.any_sku(), 1))
        .await
        .unwrap();
    assert_eq!(placed.status, VendorOrderStatus::Pending);
    assert!(placed.vendor_reference.is_some());
    assert_eq!(env.sim.core().orders().len(), 1);
    for r in [
        by_our_id(&id),
        VendorOrderRef {
            vendor_reference: placed.vendor_reference.clone(),
            ..by_our_id(&id)
        },
    ] {
        let err = env.adapter.fetch_order(&r).await.unwrap_err();
        assert!(matches!(err, VendorError::Unknown(_)), "{err:?}");
        assert!(!err.nothing_bought());
    }
    assert_eq!(
        env.adapter.balance().await.unwrap_err(),
        VendorError::Unsupported
    );
    // Usage and top-up are not offered either: `Unsupported`, and no top-up is offered.
    let esim = EsimRef {
        iccid: "8944538532008160222".into(),
        vendor_esim_ref: None,
        vendor_reference: None,
    };
    assert_eq!(
        env.adapter.usage(&esim).await.unwrap_err(),
        VendorError::Unsupported
    );
    let topup = TopUp {
        order_id: new_order_id(),
        esim: esim.clone(),
        sku: env.any_sku(),
        placed_at: Utc::now(),
    };
    assert_eq!(
        env.adapter.topup(&topup).await.unwrap_err(),
        VendorError::Unsupported
    );
    assert_eq!(
        env.adapter.topup_offers(&esim).await.unwrap_err(),
        VendorError::Unsupported
    );
    // A second order goes straight to the asynchronous route.
    env.adapter
        .place_order(&order(&new_order_id(), &env.any_sku(), 1))
        .await
        .unwrap();
    assert_eq!(env.sim.core().orders().len(), 2);
}

#[tokio::test]
async fn topup_usage_balance_and_cancel() {
    let env = Env::start().await;
    let (sku, _) = env.product(|d| *d == SeedData::TotalMb(1024));
    let id = new_order_id();
    env.adapter.place_order(&order(&id, &sku, 1)).await.unwrap();
    let iccid = until_completed(&env.adapter, &by_our_id(&id)).await.esims[0]
        .iccid
        .clone();
    let esim = EsimRef {
        iccid: iccid.clone(),
        vendor_esim_ref: None,
        vendor_reference: None,
    };

    let usage = env.adapter.usage(&esim).await.unwrap();
    assert_eq!((usage.used_bytes, usage.total_bytes), (0, Some(GIB)));
    env.sim.set_usage(&iccid, "512.5".parse().unwrap());
    let usage = env.adapter.usage(&esim).await.unwrap();
    assert_eq!(usage.used_bytes, 512 * MIB + MIB / 2);
    assert_eq!(
        usage.status,
        Some(esim_gateway::vendors::EsimStatus::Active)
    );
    assert!(usage.activated_at.is_some() && usage.expires_at.is_some());

    let topups = env.adapter.topup_offers(&esim).await.unwrap();
    assert!(!topups.is_empty() && topups.iter().all(|o| o.is_topup && o.supports_topup));
    let topup_sku = topups[0].sku.clone();
    let balance_before = env.adapter.balance().await.unwrap();
    assert_eq!(balance_before.currency.as_str(), "EUR");
    assert_eq!(balance_before.amount, env.sim.balance());
    let topup_id = new_order_id();
    let placed = env
        .adapter
        .topup(&TopUp {
            order_id: topup_id.clone(),
            esim: esim.clone(),
            sku: topup_sku.clone(),
            placed_at: Utc::now(),
        })
        .await
        .unwrap();
    assert_eq!(placed.status, VendorOrderStatus::Completed);
    let record = env.sim.core().orders().pop().unwrap();
    assert!(record.topup);
    assert_eq!(record.iccids, vec![iccid.clone()]);
    assert_eq!(record.client_reference.as_deref(), Some(topup_id.as_str()));
    assert_eq!(
        env.adapter.balance().await.unwrap().amount,
        balance_before.amount - topups[0].cost.amount
    );
    let usage = env.adapter.usage(&esim).await.unwrap();
    assert!(usage.total_bytes.unwrap() > GIB);

    // A package without top-up support is refused as an invalid request.
    let not_topup = env
        .sim
        .products()
        .into_iter()
        .find(|(_, p)| !p.topup)
        .unwrap()
        .0;
    let err = env
        .adapter
        .topup(&TopUp {
            order_id: new_order_id(),
            esim: esim.clone(),
            sku: not_topup,
            placed_at: Utc::now(),
        })
        .await
        .unwrap_err();
    assert_rejected(err, RejectKind::InvalidRequest, "400001");

    let unknown = EsimRef {
        iccid: "8900000000000000000".into(),
        ..esim.clone()
    };
    assert_rejected(
        env.adapter.usage(&unknown).await.unwrap_err(),
        RejectKind::NotFound,
        "404002",
    );
    assert_eq!(
        env.adapter.cancel(&by_our_id(&id), &[esim]).await,
        Err(VendorError::Unsupported)
    );
}

#[tokio::test]
async fn rejections_map_to_their_kind_and_buy_nothing() {
    let env = Env::start().await;
    // The asynchronous purchase route (with `/sync` it would answer at once).
    env.sim.set_offered(ops::ORDER_SYNC, false);
    let sku = env.any_sku();
    for (code, kind) in [
        ("500002", RejectKind::SoldOut),
        ("400001", RejectKind::InvalidRequest),
        ("404002", RejectKind::NotFound),
        ("402001", RejectKind::InsufficientBalance),
    ] {
        env.sim.core().faults.inject(
            ops::ORDER,
            Fault::Reject {
                code: code.into(),
                message: None,
            },
        );
        let err = env
            .adapter
            .place_order(&order(&new_order_id(), &sku, 1))
            .await
            .unwrap_err();
        assert!(err.nothing_bought());
        assert_rejected(err, kind, code);
    }
    // The same refusals from the simulator's own state, not injected.
    env.sim.set_sold_out(&sku, true);
    let err = env
        .adapter
        .place_order(&order(&new_order_id(), &sku, 1))
        .await;
    assert_rejected(err.unwrap_err(), RejectKind::SoldOut, "500002");
    env.sim.set_sold_out(&sku, false);
    env.sim.set_balance(Decimal::ZERO);
    let err = env
        .adapter
        .place_order(&order(&new_order_id(), &sku, 1))
        .await;
    assert_rejected(err.unwrap_err(), RejectKind::InsufficientBalance, "402001");
    env.sim.set_balance(Decimal::from(100));
    let err = env
        .adapter
        .place_order(&order(&new_order_id(), "mv_nope", 1))
        .await;
    assert_rejected(err.unwrap_err(), RejectKind::NotFound, "404002");
    let err = env.adapter.fetch_order(&by_our_id(&new_order_id())).await;
    assert_rejected(err.unwrap_err(), RejectKind::NotFound, "404002");
    assert!(env.sim.core().orders().is_empty());
}

#[tokio::test]
async fn ambiguous_failures_are_unknown() {
    let env = Env::start_with(Duration::from_millis(300)).await;
    // The asynchronous purchase route (with `/sync` it would answer at once).
    env.sim.set_offered(ops::ORDER_SYNC, false);
    let sku = env.any_sku();
    for fault in [
        Fault::Reject {
            code: "500001".into(),
            message: None,
        },
        Fault::Reject {
            code: "500003".into(),
            message: None,
        },
        Fault::ServerError { status: 502 },
        Fault::Reset {
            after_processing: false,
        },
        Fault::Reset {
            after_processing: true,
        },
        Fault::Delay { millis: 1000 },
    ] {
        env.sim.core().faults.inject(ops::ORDER, fault.clone());
        let err = env
            .adapter
            .place_order(&order(&new_order_id(), &sku, 1))
            .await
            .unwrap_err();
        assert!(matches!(err, VendorError::Unknown(_)), "{fault:?}: {err:?}");
    }
    env.sim
        .core()
        .faults
        .inject(ops::LIST, Fault::ServerError { status: 500 });
    let err = env.adapter.list_offers().await.unwrap_err();
    assert!(matches!(err, VendorError::Unknown(_)), "{err:?}");
    env.sim.core().faults.inject(
        ops::BALANCE,
        Fault::Reset {
            after_processing: false,
        },
    );
    let err = env.adapter.balance().await.unwrap_err();
    assert!(matches!(err, VendorError::Unknown(_)), "{err:?}");
}

#[tokio::test]
async fn unknown_outcome_is_reconciled_by_query_without_a_second_purchase() {
    let env = Env::start_with(Duration::from_millis(300)).await;
    // The asynchronous purchase route (with `/sync` it would answer at once).
    env.sim.set_offered(ops::ORDER_SYNC, false);
    assert!(!env.adapter.place_is_idempotent());
    let id = new_order_id();
    env.sim
        .core()
        .faults
        .inject(ops::ORDER, Fault::Delay { millis: 1000 });
    let err = env
        .adapter
        .place_order(&order(&id, &env.any_sku(), 1))
        .await
        .unwrap_err();
    assert!(matches!(err, VendorError::Unknown(_)), "{err:?}");

    let state = until_completed(&env.adapter, &by_our_id(&id)).await;
    assert_eq!(state.esims.len(), 1);
    let orders = env.sim.core().orders();
    assert_eq!(orders.len(), 1, "reconciliation must not buy again");
    assert_eq!(orders[0].client_reference.as_deref(), Some(id.as_str()));
    assert_eq!(orders[0].iccids, vec![state.esims[0].iccid.clone()]);

    // An outcome that was really "nothing bought" is found as such.
    let lost = new_order_id();
    env.sim.core().faults.inject(
        ops::ORDER,
        Fault::Reset {
            after_processing: false,
        },
    );
    let sku = env.any_sku();
    assert!(matches!(
        env.adapter.place_order(&order(&lost, &sku, 1)).await,
        Err(VendorError::Unknown(_))
    ));
    assert_rejected(
        env.adapter
            .fetch_order(&by_our_id(&lost))
            .await
            .unwrap_err(),
        RejectKind::NotFound,
        "404002",
    );
    assert_eq!(env.sim.core().orders().len(), 1);
}

#[tokio::test]
async fn closed_port_and_token_failures_are_unreachable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let env = Env::start().await;
    let adapter = env.adapter_with(MultiverseCredentials {
        base_url: format!("http://{addr}").parse().unwrap(),
        ..env.creds.clone()
    });
    let err = adapter
        .place_order(&order(&new_order_id(), "mv_x", 1))
        .await
        .unwrap_err();
    assert!(matches!(err, VendorError::Unreachable(_)), "{err:?}");

    // The purchase never leaves when the token call fails, so nothing can have been bought.
    env.sim
        .core()
        .faults
        .inject(ops::AUTH, Fault::ServerError { status: 503 });
    let err = env
        .adapter
        .place_order(&order(&new_order_id(), &env.any_sku(), 1))
        .await
        .unwrap_err();
    assert!(matches!(err, VendorError::Unreachable(_)), "{err:?}");
    assert!(env.sim.core().orders().is_empty());
}

#[tokio::test]
async fn wrong_credentials_are_refused_with_401001() {
    let env = Env::start().await;
    let wrong = |f: fn(&mut MultiverseCredentials)| {
        let mut c = env.creds.clone();
        f(&mut c);
        env.adapter_with(c)
    };
    for adapter in [
        wrong(|c| c.client_secret = SecretString::from("nope")),
        wrong(|c| c.client_id = SecretString::from("nope")),
        wrong(|c| c.security_token = SecretString::from("nope")),
        wrong(|c| c.user_id = SecretString::from("nope")),
    ] {
        let err = adapter.balance().await.unwrap_err();
        assert_rejected(err, RejectKind::Auth, "401001");
    }
    assert_eq!(env.sim.token_requests(), 0);

    // The documented answer, byte for byte, for a call without the OAuth token.
    let url = env
        .running
        .base_url
        .join("/api/v1/account/balance")
        .unwrap();
    let ts = Utc::now().timestamp().to_string();
    let resp = reqwest::Client::new()
        .get(url.clone())
        .header(
            "X-Multiverse-Access-Token",
            esim_gateway::vendors::multiverse::access_token(
                env.creds.user_id.expose_secret(),
                env.creds.security_token.expose_secret(),
                &ts,
            ),
        )
        .header("Authorization", "Bearer made-up")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"code": "401001", "message": "Unauthorized"})
    );
    // A stale timestamp is refused even with a valid OAuth token.
    env.adapter.balance().await.unwrap();
    let stale = (Utc::now().timestamp() - 7200).to_string();
    let resp = reqwest::Client::new()
        .post(env.running.base_url.join("/api/v1/auth/token").unwrap())
        .header(
            "X-Multiverse-Access-Token",
            esim_gateway::vendors::multiverse::access_token(
                env.creds.user_id.expose_secret(),
                env.creds.security_token.expose_secret(),
                &stale,
            ),
        )
        .header(
            "Authorization",
            esim_gateway::vendors::multiverse::basic_auth(
                env.creds.client_id.expose_secret(),
                env.creds.client_secret.expose_secret(),
            ),
        )
        .json(&serde_json::json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    // Unknown paths answer the documented 404001.
    let resp = reqwest::get(env.running.base_url.join("/api/v1/nope").unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "404001");
}

#[tokio::test]
async fn oauth_token_is_cached_shared_and_refreshed() {
    let env = Env::start().await;
    // Concurrent first calls wait for one token instead of each fetching their own.
    let calls: Vec<_> = (0..16)
        .map(|_| {
            let adapter = env.adapter.clone();
            tokio::spawn(async move { adapter.balance().await })
        })
        .collect();
    for c in calls {
        c.await.unwrap().unwrap();
    }
    assert_eq!(env.sim.token_requests(), 1);

    // The vendor forgets the token: one 401001, one refresh, and the call still succeeds.
    env.sim.expire_tokens();
    env.adapter.balance().await.unwrap();
    assert_eq!(env.sim.token_requests(), 2);
    env.adapter.list_offers().await.unwrap();
    assert_eq!(env.sim.token_requests(), 2);

    // A short `expires_in` is refreshed before it runs out.
    env.sim.set_token_lifetime(Duration::from_secs(1));
    env.sim.expire_tokens();
    env.adapter.balance().await.unwrap();
    assert_eq!(env.sim.token_requests(), 3);
    tokio::time::sleep(Duration::from_millis(950)).await;
    env.adapter.balance().await.unwrap();
    assert_eq!(env.sim.token_requests(), 4);
}
