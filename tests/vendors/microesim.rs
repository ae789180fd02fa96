//! MicroEsim adapter against its simulator: every operation, every fault class, signature and
//! replay refusal, reconciliation by our order id, and the push with its retry.

use std::{
    str::FromStr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::post,
};
use chrono::Utc;
use esim_gateway::vendors::CallbackHeaders;
use esim_gateway::{
    domain::secret::{ExposeSecret, SecretString},
    sandbox::{self, Fault, RunningSim, SimSettings, luhn_valid},
    vendors::microesim::credentials::MicroEsimCredentials,
    vendors::microesim::sim::{MicroEsimSim, PushFormat, ops},
    vendors::{
        AdapterOptions, CallbackTrust, CancelOutcome, DataKind, EsimRef, EsimStatus, MIB,
        OfferFlag, OrderState, PlaceOrder, RejectKind, TopUp, Vendor, VendorError, VendorEventKind,
        VendorOrderRef, VendorOrderStatus,
        microesim::{MicroEsim, Signer, assumptions::codes},
    },
};
use rust_decimal::Decimal;

struct Harness {
    sim: MicroEsimSim,
    running: RunningSim,
    creds: MicroEsimCredentials,
    adapter: MicroEsim,
}

async fn start() -> Harness {
    let (listener, base_url) = sandbox::bind_loopback().await.unwrap();
    let creds = MicroEsimSim::sandbox_credentials(base_url);
    let sim = MicroEsimSim::new(&creds, SimSettings::fast());
    let running = sandbox::serve_on(listener, sim.router()).unwrap();
    let adapter = adapter_with(&creds, Duration::from_secs(5));
    Harness {
        sim,
        running,
        creds,
        adapter,
    }
}

fn adapter_with(creds: &MicroEsimCredentials, timeout: Duration) -> MicroEsim {
    MicroEsim::new(creds.clone(), &AdapterOptions { timeout })
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

/// A plan without flags, so ordering it is unremarkable.
async fn plain_sku(h: &Harness) -> String {
    let offers = h.adapter.list_offers().await.unwrap();
    offers
        .into_iter()
        .find(|o| o.flags.is_empty() && o.data.is_some_and(|d| d.kind == DataKind::Total))
        .unwrap()
        .sku
}

fn order(order_id: &str, sku: &str) -> PlaceOrder {
    PlaceOrder {
        order_id: order_id.into(),
        sku: sku.into(),
        quantity: 1,
        expected_unit_cost: None,
        price_tolerance_percent: rust_decimal::Decimal::ZERO,
        placed_at: Utc::now(),
    }
}

fn by_ref(order_id: &str, vendor_reference: Option<String>) -> VendorOrderRef {
    VendorOrderRef {
        order_id: order_id.into(),
        vendor_reference,
        placed_at: Utc::now(),
        ..VendorOrderRef::default()
    }
}

async fn until_complete(adapter: &MicroEsim, r: &VendorOrderRef) -> OrderState {
    for _ in 0..100 {
        let state = adapter.fetch_order(r).await.unwrap();
        if state.status == VendorOrderStatus::Completed {
            return state;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("order never completed");
}

fn esim_ref(state: &OrderState) -> EsimRef {
    let e = &state.esims[0];
    EsimRef {
        iccid: e.iccid.clone(),
        vendor_esim_ref: e.vendor_esim_ref.clone(),
        vendor_reference: state.vendor_reference.clone(),
    }
}

#[tokio::test]
async fn catalogue_is_read_across_every_page_with_flags_and_hkd_prices() {
    let h = start().await;
    h.sim.set_max_page_size(40);
    let offers = h.adapter.list_offers().await.unwrap();
    assert!(h.sim.plan_count() > 80, "several pages of 40");
    assert_eq!(offers.len(), h.sim.plan_count());
    for o in &offers {
        assert_eq!(o.cost.currency.as_str(), "HKD");
        assert_eq!(Some(o.cost.amount), h.sim.price_of(&o.sku));
        assert!(o.active && !o.supports_topup);
        assert!(o.data.is_some(), "{}", o.raw["data"]);
        assert!(!o.countries.is_empty() && !o.networks.is_empty());
    }
    let ekyc: Vec<_> = offers
        .iter()
        .filter(|o| o.flags.contains(&OfferFlag::EkycRequired))
        .collect();
    assert!(!ekyc.is_empty());
    assert!(ekyc.iter().all(|o| o.countries == ["CN"]));
    assert!(
        offers
            .iter()
            .any(|o| o.flags.contains(&OfferFlag::ActivatesOnPurchase))
    );
    let daily = offers
        .iter()
        .find(|o| o.data.is_some_and(|d| d.kind == DataKind::Daily))
        .unwrap();
    assert!(daily.data.unwrap().bytes.unwrap() % MIB == 0);
}

#[tokio::test]
async fn order_is_pending_then_polled_to_a_luhn_valid_esim_and_debits_the_balance() {
    let h = start().await;
    let sku = plain_sku(&h).await;
    let before = h.adapter.balance().await.unwrap();
    assert_eq!(before.currency.as_str(), "HKD");
    assert_eq!(before.amount, h.sim.balance());

    let placed = h
        .adapter
        .place_order(&order("ord_poll", &sku))
        .await
        .unwrap();
    assert_eq!(placed.status, VendorOrderStatus::Pending);
    assert!(placed.esims.is_empty());
    let topup_id = placed.vendor_reference.clone().unwrap();
    assert_eq!(topup_id.len(), 24);
    // Right after ordering the vendor says "processing" (1006): still pending.
    let early = h
        .adapter
        .fetch_order(&by_ref("ord_poll", Some(topup_id.clone())))
        .await
        .unwrap();
    assert_eq!(early.status, VendorOrderStatus::Pending);

    let done = until_complete(&h.adapter, &by_ref("ord_poll", Some(topup_id.clone()))).await;
    assert_eq!(done.vendor_reference.as_deref(), Some(topup_id.as_str()));
    assert_eq!(done.esims.len(), 1);
    let esim = &done.esims[0];
    assert!(
        luhn_valid(&esim.iccid) && esim.iccid.len() == 20,
        "{}",
        esim.iccid
    );
    let device_id = esim.vendor_esim_ref.as_deref().unwrap();
    assert_eq!(device_id.len(), 16);
    assert!(
        esim.activation
            .lpa
            .starts_with("LPA:1$rsp-eu.simlessly.com$")
    );
    assert_eq!(esim.status, EsimStatus::Ready);

    let after = h.adapter.balance().await.unwrap();
    assert_eq!(after.amount, before.amount - h.sim.price_of(&sku).unwrap());
    let records = h.sim.core().orders();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].client_reference.as_deref(), Some("ord_poll"));
    assert_eq!(records[0].iccids, vec![esim.iccid.clone()]);
}

#[tokio::test]
async fn unknown_outcome_is_reconciled_by_custom_order_no_without_a_second_order() {
    let h = start().await;
    let sku = plain_sku(&h).await;
    h.sim.core().faults.inject(
        ops::ORDER,
        Fault::Reset {
            after_processing: true,
        },
    );
    let err = h
        .adapter
        .place_order(&order("ord_lost", &sku))
        .await
        .unwrap_err();
    assert!(matches!(err, VendorError::Unknown(_)), "{err:?}");
    assert!(!h.adapter.place_is_idempotent());

    let found = h
        .adapter
        .fetch_order(&by_ref("ord_lost", None))
        .await
        .unwrap();
    let topup_id = found.vendor_reference.clone().unwrap();
    let done = until_complete(&h.adapter, &by_ref("ord_lost", None)).await;
    assert_eq!(done.vendor_reference.as_deref(), Some(topup_id.as_str()));
    assert_eq!(done.esims.len(), 1);
    let records = h.sim.core().orders();
    assert_eq!(records.len(), 1, "no second vendor order");
    assert_eq!(records[0].vendor_reference, topup_id);

    // "No such order" is believed only once nothing sent can still be in flight.
    let fresh = h.adapter.fetch_order(&by_ref("ord_never", None)).await;
    assert!(matches!(fresh, Err(VendorError::Unknown(_))), "{fresh:?}");
    let old = VendorOrderRef {
        placed_at: Utc::now() - chrono::Duration::minutes(10),
        ..by_ref("ord_never", None)
    };
    let missing = h.adapter.fetch_order(&old).await;
    assert_eq!(
        missing.unwrap_err().reject_kind(),
        Some(RejectKind::NotFound)
    );
}

#[tokio::test]
async fn refusals_map_to_reject_kinds_and_buy_nothing() {
    let h = start().await;
    let sku = plain_sku(&h).await;
    let faults = &h.sim.core().faults;
    let cases = [
        (codes::DATAPLAN_UNAVAILABLE, RejectKind::SoldOut),
        (codes::INSUFFICIENT_BALANCE, RejectKind::InsufficientBalance),
        (codes::TOO_MANY_REQUESTS, RejectKind::RateLimited),
    ];
    for (code, kind) in cases {
        faults.inject(
            ops::ORDER,
            Fault::Reject {
                code: code.to_string(),
                message: None,
            },
        );
        let err = h
            .adapter
            .place_order(&order("ord_r", &sku))
            .await
            .unwrap_err();
        assert_eq!(err.reject_kind(), Some(kind), "{code}: {err:?}");
        assert!(err.nothing_bought());
    }
    // A system error or a code nobody documented may have bought: unknown, not refused.
    for code in [codes::SYSTEM_ERROR, 4242] {
        faults.inject(
            ops::ORDER,
            Fault::Reject {
                code: code.to_string(),
                message: None,
            },
        );
        let err = h
            .adapter
            .place_order(&order("ord_r", &sku))
            .await
            .unwrap_err();
        assert!(matches!(err, VendorError::Unknown(_)), "{code}: {err:?}");
    }
    // The real checks, not injected: an empty balance and an unknown plan.
    h.sim.set_balance(Decimal::ZERO);
    let err = h
        .adapter
        .place_order(&order("ord_poor", &sku))
        .await
        .unwrap_err();
    assert_eq!(err.reject_kind(), Some(RejectKind::InsufficientBalance));
    h.sim.set_balance(dec("1000"));
    let err = h
        .adapter
        .place_order(&order("ord_stale", "NO-SUCH-PLAN"))
        .await
        .unwrap_err();
    assert_eq!(err.reject_kind(), Some(RejectKind::NotFound));
    assert!(h.sim.core().orders().is_empty());
    assert_eq!(h.sim.balance(), dec("1000"));
}

#[tokio::test]
async fn transport_failures_are_unknown_and_a_closed_port_is_unreachable() {
    let h = start().await;
    let sku = plain_sku(&h).await;
    let faults = &h.sim.core().faults;

    faults.inject(ops::ORDER, Fault::ServerError { status: 502 });
    let err = h
        .adapter
        .place_order(&order("ord_5xx", &sku))
        .await
        .unwrap_err();
    assert!(matches!(err, VendorError::Unknown(_)), "{err:?}");

    faults.inject(
        ops::ORDER,
        Fault::Reset {
            after_processing: false,
        },
    );
    let err = h
        .adapter
        .place_order(&order("ord_rst", &sku))
        .await
        .unwrap_err();
    assert!(matches!(err, VendorError::Unknown(_)), "{err:?}");
    assert!(h.sim.core().orders().is_empty(), "neither fault acted");

    let impatient = adapter_with(&h.creds, Duration::from_millis(300));
    faults.inject(ops::ORDER, Fault::Delay { millis: 1_000 });
    let err = impatient
        .place_order(&order("ord_slow", &sku))
        .await
        .unwrap_err();
    assert!(matches!(err, VendorError::Unknown(_)), "{err:?}");
    assert_eq!(h.sim.core().orders().len(), 1, "the late answer had bought");

    faults.inject(ops::BALANCE, Fault::ServerError { status: 500 });
    assert!(matches!(
        h.adapter.balance().await.unwrap_err(),
        VendorError::Unknown(_)
    ));

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = url::Url::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
    drop(listener);
    let nowhere = adapter_with(
        &MicroEsimCredentials {
            base_url: closed,
            ..h.creds.clone()
        },
        Duration::from_secs(2),
    );
    let err = nowhere
        .place_order(&order("ord_off", &sku))
        .await
        .unwrap_err();
    assert!(matches!(err, VendorError::Unreachable(_)), "{err:?}");
}

#[tokio::test]
async fn wrong_credentials_are_refused_by_the_simulator() {
    let h = start().await;
    let wrong_secret = MicroEsimCredentials {
        secret: SecretString::from("not-the-secret"),
        ..h.creds.clone()
    };
    let wrong_salt = MicroEsimCredentials {
        salt_hex: SecretString::from("00112233"),
        ..h.creds.clone()
    };
    let wrong_account = MicroEsimCredentials {
        account: SecretString::from("someone_else"),
        ..h.creds.clone()
    };
    for (creds, code) in [
        (wrong_secret, codes::INVALID_SIGN),
        (wrong_salt, codes::INVALID_SIGN),
        (wrong_account, codes::UNKNOWN_ACCOUNT),
    ] {
        let err = adapter_with(&creds, Duration::from_secs(2))
            .balance()
            .await
            .unwrap_err();
        assert_eq!(err.reject_kind(), Some(RejectKind::Auth), "{err:?}");
        assert!(matches!(&err, VendorError::Rejected { code: c, .. } if *c == code.to_string()));
    }
    h.sim.core().faults.inject(
        ops::AUTH,
        Fault::Reject {
            code: codes::INVALID_SIGN.to_string(),
            message: None,
        },
    );
    let err = h.adapter.list_offers().await.unwrap_err();
    assert_eq!(err.reject_kind(), Some(RejectKind::Auth));
}

/// A raw signed call, to show what the adapter never does: replays, stale clocks, JSON bodies.
async fn raw_call(
    h: &Harness,
    endpoint: &str,
    nonce: &str,
    timestamp: &str,
    json_body: Option<serde_json::Value>,
) -> serde_json::Value {
    let signer = Signer::new(
        h.creds.account.expose_secret(),
        h.creds.secret.expose_secret(),
        h.creds.salt_hex.expose_secret(),
    )
    .unwrap();
    let url = format!("{}allesim/v1/{endpoint}", h.running.base_url);
    let mut req = reqwest::Client::new()
        .post(url)
        .header("MICROESIM-ACCOUNT", signer.account())
        .header("MICROESIM-NONCE", nonce)
        .header("MICROESIM-TIMESTAMP", timestamp)
        .header("MICROESIM-SIGN", signer.sign(nonce, timestamp));
    req = match json_body {
        Some(body) => req.json(&body),
        None => req.form(&[] as &[(&str, &str)]),
    };
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.unwrap()
}

#[tokio::test]
async fn simulator_refuses_replayed_nonces_and_stale_timestamps_and_reads_json_bodies() {
    let h = start().await;
    let now = Utc::now().timestamp_millis().to_string();
    let first = raw_call(&h, "accountBalance", "replay0001", &now, None).await;
    assert_eq!(first["code"], 1);
    assert_eq!(first["result"]["currency"], "HKD");
    let again = raw_call(&h, "accountBalance", "replay0001", &now, None).await;
    assert_eq!(again["code"], codes::NONCE_REUSED);

    let stale = (Utc::now().timestamp_millis() - 3_600_000).to_string();
    let old = raw_call(&h, "accountBalance", "stale00001", &stale, None).await;
    assert_eq!(old["code"], codes::TIMESTAMP_EXPIRED);
    let seconds = Utc::now().timestamp().to_string();
    let short = raw_call(&h, "accountBalance", "secs000001", &seconds, None).await;
    assert_eq!(
        short["code"],
        codes::TIMESTAMP_EXPIRED,
        "10-digit seconds are refused"
    );
    let tiny = raw_call(&h, "accountBalance", "abc", &now, None).await;
    assert_eq!(
        tiny["code"],
        codes::INVALID_PARAMETER,
        "nonce under 6 characters"
    );

    // One client posts JSON to topupDetail; the vendor reads it like form data.
    let sku = plain_sku(&h).await;
    let placed = h
        .adapter
        .place_order(&order("ord_json", &sku))
        .await
        .unwrap();
    let topup_id = placed.vendor_reference.unwrap();
    until_complete(&h.adapter, &by_ref("ord_json", Some(topup_id.clone()))).await;
    let now = Utc::now().timestamp_millis().to_string();
    let body = serde_json::json!({ "topup_id": topup_id });
    let detail = raw_call(&h, "topupDetail", "jsonbody01", &now, Some(body)).await;
    assert_eq!(detail["code"], 1);
    assert_eq!(detail["result"]["success_number"], 1);
    assert_eq!(detail["result"]["device_ids"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn usage_follows_install_and_use_and_topup_is_unsupported() {
    let h = start().await;
    let sku = plain_sku(&h).await;
    let placed = h
        .adapter
        .place_order(&order("ord_use", &sku))
        .await
        .unwrap();
    let done = until_complete(&h.adapter, &by_ref("ord_use", placed.vendor_reference)).await;
    let esim = esim_ref(&done);
    let device_id = esim.vendor_esim_ref.clone().unwrap();

    let fresh = h.adapter.usage(&esim).await.unwrap();
    assert_eq!(fresh.used_bytes, 0);
    assert_eq!(fresh.status, Some(EsimStatus::Ready));

    assert!(h.sim.install(&device_id));
    let installed = h.adapter.usage(&esim).await.unwrap();
    assert_eq!(
        installed.status,
        Some(EsimStatus::Installed),
        "from eventDetail"
    );

    assert!(h.sim.consume(&device_id, dec("1536.5")));
    let used = h.adapter.usage(&esim).await.unwrap();
    assert_eq!(used.used_bytes, 1536 * MIB + MIB / 2);
    assert_eq!(used.status, Some(EsimStatus::Active));
    let activated = used.activated_at.unwrap();
    assert!(
        (Utc::now() - activated).num_seconds().abs() < 5,
        "UTC+8 read back as UTC"
    );
    assert!(used.expires_at.unwrap() > activated);

    h.sim.core().faults.inject(
        ops::USAGE,
        Fault::Reset {
            after_processing: false,
        },
    );
    assert!(matches!(
        h.adapter.usage(&esim).await.unwrap_err(),
        VendorError::Unknown(_)
    ));
    let no_ref = EsimRef {
        vendor_reference: None,
        ..esim.clone()
    };
    assert_eq!(
        h.adapter.usage(&no_ref).await.unwrap_err().reject_kind(),
        Some(RejectKind::InvalidRequest)
    );

    let topup = TopUp {
        order_id: "ord_top".into(),
        esim,
        sku,
        placed_at: Utc::now(),
    };
    assert_eq!(h.adapter.topup(&topup).await, Err(VendorError::Unsupported));
}

#[tokio::test]
async fn unused_esims_terminate_without_refund_and_used_ones_refuse() {
    let h = start().await;
    let sku = plain_sku(&h).await;
    let unused = h.adapter.place_order(&order("ord_c1", &sku)).await.unwrap();
    let used = h.adapter.place_order(&order("ord_c2", &sku)).await.unwrap();
    let unused = until_complete(&h.adapter, &by_ref("ord_c1", unused.vendor_reference)).await;
    let used = until_complete(&h.adapter, &by_ref("ord_c2", used.vendor_reference)).await;
    let balance = h.sim.balance();

    // Without a topup_id or eSIM refs the adapter finds both by our order id.
    let outcome = h
        .adapter
        .cancel(&by_ref("ord_c1", None), &[])
        .await
        .unwrap();
    assert_eq!(outcome, CancelOutcome::CancelledWithoutRefund);
    assert_eq!(h.sim.balance(), balance, "no refund");
    let records = h.sim.core().orders();
    assert!(records[0].cancelled && !records[1].cancelled);
    let gone = h.adapter.usage(&esim_ref(&unused)).await.unwrap();
    assert_eq!(gone.status, Some(EsimStatus::Cancelled));

    let used_ref = esim_ref(&used);
    h.sim.install(used_ref.vendor_esim_ref.as_deref().unwrap());
    let err = h
        .adapter
        .cancel(
            &by_ref("ord_c2", used.vendor_reference.clone()),
            &[used_ref],
        )
        .await
        .unwrap_err();
    assert_eq!(err.reject_kind(), Some(RejectKind::NotAllowed));

    h.sim
        .core()
        .faults
        .inject(ops::CANCEL, Fault::ServerError { status: 503 });
    let err = h
        .adapter
        .cancel(&by_ref("ord_c2", used.vendor_reference), &[])
        .await
        .unwrap_err();
    assert!(matches!(err, VendorError::Unknown(_)), "{err:?}");
}

#[derive(Clone, Default)]
struct Received {
    pushes: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
}

/// Answers 500 to the first push, then 200: the vendor must retry.
async fn receiver(State(r): State<Received>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let mut pushes = r.pushes.lock().unwrap();
    pushes.push((headers, body));
    if pushes.len() == 1 {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    }
}

async fn push_round(format: PushFormat) {
    let h = start().await;
    h.sim.set_push_format(format);
    let received = Received::default();
    let app = Router::new()
        .route("/webhooks/microesim", post(receiver))
        .with_state(received.clone());
    let hook = sandbox::serve(app).await.unwrap();
    h.sim
        .core()
        .set_callback_url(Some(hook.base_url.join("/webhooks/microesim").unwrap()));

    let sku = plain_sku(&h).await;
    let placed = h
        .adapter
        .place_order(&order("ord_push", &sku))
        .await
        .unwrap();
    let topup_id = placed.vendor_reference.clone().unwrap();
    for _ in 0..100 {
        // The simulator records an attempt only after the receiver has answered it.
        if h.sim.core().deliveries().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pushes = received.pushes.lock().unwrap().clone();
    assert_eq!(pushes.len(), 2, "one failed attempt, one retry");
    assert_eq!(pushes[0].1, pushes[1].1, "the retry resends the same push");
    let deliveries = h.sim.core().deliveries();
    let statuses: Vec<_> = deliveries.iter().map(|d| (d.attempt, d.status)).collect();
    assert_eq!(statuses, vec![(1, Some(500)), (2, Some(200))]);

    let (headers, body) = &pushes[1];
    assert!(
        headers.get("MICROESIM-SIGN").is_none(),
        "pushes are unsigned"
    );
    assert_eq!(
        h.adapter
            .verify_callback(&CallbackHeaders::from(headers), body)
            .unwrap(),
        CallbackTrust::Hint
    );
    let events = h
        .adapter
        .parse_callback(&CallbackHeaders::from(headers), body)
        .unwrap();
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(event.kind, VendorEventKind::OrderReady);
    assert_eq!(event.vendor_reference.as_deref(), Some(topup_id.as_str()));

    // The push agrees with a signed topupDetail read, which is what the gateway trusts.
    let polled = h
        .adapter
        .fetch_order(&by_ref("ord_push", Some(topup_id.clone())))
        .await
        .unwrap();
    let esim = &polled.esims[0];
    let device_id = esim.vendor_esim_ref.clone().unwrap();
    assert_eq!(event.vendor_esim_ref.as_ref(), Some(&device_id));
    assert_eq!(event.dedupe_key, format!("topup:{topup_id}:{device_id}"));
    let profile = event.profile.as_ref().unwrap();
    assert_eq!(profile.iccid, esim.iccid);
    assert_eq!(profile.activation, esim.activation);
}

#[tokio::test]
async fn json_push_is_retried_after_a_500_and_parses_to_order_ready() {
    push_round(PushFormat::Json).await;
}

#[tokio::test]
async fn form_push_is_retried_after_a_500_and_parses_to_order_ready() {
    push_round(PushFormat::Form).await;
}
