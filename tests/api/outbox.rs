//! Storefront events: signed, retried until delivered, every attempt logged, and several
//! workers never delivering the same event at the same time.

use std::{
    net::{IpAddr, SocketAddr},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{Router, body::Bytes, extract::State, http::HeaderMap, http::StatusCode, routing::post};
use esim_gateway::{store, workers::outbox::OutboxWorker};
use hmac::{Hmac, Mac};
use reqwest::{
    Method,
    dns::{Addrs, Name, Resolve, Resolving},
};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::helpers::TestApp;

#[derive(Clone, Default)]
pub(crate) struct Receiver {
    /// (headers, body) of every request received.
    pub(crate) seen: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
    /// Answer 500 to this many requests first.
    fail_first: Arc<Mutex<usize>>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    r.seen.lock().unwrap().push((headers, body));
    let mut left = r.fail_first.lock().unwrap();
    if *left > 0 {
        *left -= 1;
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::NO_CONTENT
    }
}

pub(crate) async fn start_receiver(fail_first: usize) -> (Receiver, String) {
    let r = Receiver::default();
    *r.fail_first.lock().unwrap() = fail_first;
    let app = Router::new()
        .route("/events", post(receive))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (r, url)
}

async fn storefront_with_webhook(app: &TestApp, url: &str) -> (String, String) {
    let resp = app
        .admin(Method::POST, "/admin/storefronts")
        .json(&json!({"name": "Events Shop", "webhook_url": url}))
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    (
        body["id"].as_str().unwrap().to_string(),
        body["webhook_secret"].as_str().unwrap().to_string(),
    )
}

async fn queue(app: &TestApp, sf: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let mut conn = app.pool.acquire().await.unwrap();
        let id = store::outbox::insert(&mut conn, sf, false, "order.completed", &json!({"n": i}))
            .await
            .unwrap()
            .expect("queued for a storefront with a webhook");
        ids.push(id);
    }
    ids
}

#[tokio::test]
async fn a_failing_receiver_gets_exactly_one_successful_signed_delivery() {
    let app = TestApp::spawn().await;
    let (receiver, url) = start_receiver(3).await;
    let (sf, secret) = storefront_with_webhook(&app, &url).await;
    let ids = queue(&app, &sf, 1).await;
    let worker = OutboxWorker::new(app.pool.clone(), Duration::from_millis(20), true);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        worker.tick().await.unwrap();
        let status: String = sqlx::query_scalar("SELECT status FROM outbox WHERE id = $1")
            .bind(&ids[0])
            .fetch_one(&app.pool)
            .await
            .unwrap();
        if status == "delivered" || tokio::time::Instant::now() > deadline {
            assert_eq!(status, "delivered");
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seen = receiver.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 4, "three failures, then one success");
    // Every attempt is signed: t=<ts>,v1=hex(HMAC(secret, "<ts>.<body>")).
    for (headers, body) in &seen {
        let sig = headers["gateway-signature"].to_str().unwrap();
        let (t, v1) = sig.split_once(",v1=").unwrap();
        let t = t.strip_prefix("t=").unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{t}.").as_bytes());
        mac.update(body);
        assert_eq!(v1, hex::encode(mac.finalize().into_bytes()));
        let event: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(event["id"], ids[0].as_str());
        assert_eq!(event["type"], "order.completed");
        assert_eq!(event["data"], json!({"n": 0}));
    }
    let admin: Value = app.admin_json("/admin/events").await;
    let ev = &admin["data"][0];
    assert_eq!(ev["status"], "delivered");
    assert_eq!(ev["attempts"], 4);
    let codes: Vec<Value> = ev["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["http_status"].clone())
        .collect();
    assert_eq!(codes, [json!(500), json!(500), json!(500), json!(204)]);

    // Replay sends it again on request.
    let resp = app
        .admin(Method::POST, &format!("/admin/events/{}/replay", ids[0]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    worker.tick().await.unwrap();
    assert_eq!(receiver.seen.lock().unwrap().len(), 5);
}

#[tokio::test]
async fn two_workers_never_deliver_the_same_event_concurrently() {
    let app = TestApp::spawn().await;
    let (receiver, url) = start_receiver(0).await;
    let (sf, _) = storefront_with_webhook(&app, &url).await;
    let ids = queue(&app, &sf, 40).await;
    let a = OutboxWorker::new(app.pool.clone(), Duration::from_millis(20), true);
    let b = OutboxWorker::new(app.pool.clone(), Duration::from_millis(20), true);
    let run = |w: OutboxWorker| async move {
        for _ in 0..20 {
            w.tick().await.unwrap();
        }
    };
    tokio::join!(run(a), run(b));
    let seen = receiver.seen.lock().unwrap().clone();
    let mut delivered: Vec<String> = seen
        .iter()
        .map(|(_, body)| {
            serde_json::from_slice::<Value>(body).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    delivered.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(delivered, expected, "each event delivered exactly once");
}

#[tokio::test]
async fn storefronts_without_a_webhook_get_no_events() {
    let app = TestApp::spawn().await;
    let sf = app.create_storefront("No Hooks").await;
    let mut conn = app.pool.acquire().await.unwrap();
    let queued = store::outbox::insert(&mut conn, &sf.id, false, "order.completed", &json!({}))
        .await
        .unwrap();
    assert!(queued.is_none());
}

/// A DNS server answering what its owner chose: the webhook's host, registered while it
/// resolved to a public address, now resolves to these.
struct Rebound(Vec<IpAddr>);

impl Resolve for Rebound {
    fn resolve(&self, _: Name) -> Resolving {
        let addrs: Vec<SocketAddr> = self.0.iter().map(|ip| SocketAddr::new(*ip, 0)).collect();
        Box::pin(async move { Ok(Box::new(addrs.into_iter()) as Addrs) })
    }
}

/// A loopback port that counts the connections made to it (and closes them).
async fn counting_listener() -> (Arc<AtomicUsize>, u16) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
            drop(conn);
        }
    });
    (count, port)
}

async fn outbox_row(app: &TestApp, id: &str) -> (String, i32, Option<String>) {
    sqlx::query_as("SELECT status, attempts, last_error FROM outbox WHERE id = $1")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn live_mode_never_calls_a_webhook_host_that_resolves_inside_the_network() {
    let app = TestApp::spawn().await;
    let (connections, port) = counting_listener().await;
    let loopback = Rebound(vec!["127.0.0.1".parse().unwrap()]);
    let (sf, _) =
        storefront_with_webhook(&app, &format!("https://hooks.shop.example:{port}/events")).await;
    let ids = queue(&app, &sf, 1).await;

    let live = OutboxWorker::new(app.pool.clone(), Duration::from_millis(20), false)
        .with_dns(Arc::new(loopback));
    assert_eq!(live.tick().await.unwrap(), 1);
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "called a loopback address"
    );
    let (status, attempts, error) = outbox_row(&app, &ids[0]).await;
    assert_eq!((status.as_str(), attempts), ("pending", 1), "retried later");
    assert!(error.unwrap().contains("resolves to a loopback, private"));

    // A name with one public and one metadata address is refused too.
    let mixed = Rebound(vec![
        "93.184.215.14".parse().unwrap(),
        "169.254.169.254".parse().unwrap(),
    ]);
    sqlx::query("UPDATE outbox SET next_attempt_at = now() WHERE id = $1")
        .bind(&ids[0])
        .execute(&app.pool)
        .await
        .unwrap();
    let live = OutboxWorker::new(app.pool.clone(), Duration::from_millis(20), false)
        .with_dns(Arc::new(mixed));
    assert_eq!(live.tick().await.unwrap(), 1);
    assert_eq!(outbox_row(&app, &ids[0]).await.1, 2);

    // The same answer in sandbox mode is called: the refusal above is the live-mode check.
    sqlx::query("UPDATE outbox SET next_attempt_at = now() WHERE id = $1")
        .bind(&ids[0])
        .execute(&app.pool)
        .await
        .unwrap();
    let sandbox = OutboxWorker::new(app.pool.clone(), Duration::from_millis(20), true)
        .with_dns(Arc::new(Rebound(vec!["127.0.0.1".parse().unwrap()])));
    sandbox.tick().await.unwrap();
    assert_eq!(connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn live_mode_never_calls_a_stored_webhook_url_naming_an_internal_address() {
    // Registered in sandbox mode (https to loopback is allowed there), delivered by a live
    // worker: the URL is checked again at send time.
    let app = TestApp::spawn().await;
    let (connections, port) = counting_listener().await;
    let (sf, _) = storefront_with_webhook(&app, &format!("https://127.0.0.1:{port}/events")).await;
    let ids = queue(&app, &sf, 1).await;
    let live = OutboxWorker::new(app.pool.clone(), Duration::from_millis(20), false);
    assert_eq!(live.tick().await.unwrap(), 1);
    assert_eq!(connections.load(Ordering::SeqCst), 0);
    let (status, attempts, error) = outbox_row(&app, &ids[0]).await;
    assert_eq!((status.as_str(), attempts), ("pending", 1));
    assert!(error.unwrap().contains("webhook_url is not allowed"));
}

/// Test-mode events go to `test_webhook_url` when the storefront has one (else to
/// `webhook_url`), with `"livemode": false`, signed with the same secret; live events go
/// to `webhook_url`. `/admin/events` filters by mode.
#[tokio::test]
async fn test_events_go_to_the_test_webhook_url_and_carry_livemode() {
    let app = TestApp::spawn().await;
    let (live_rx, live_url) = start_receiver(0).await;
    let (test_rx, test_url) = start_receiver(0).await;
    let resp = app
        .admin(Method::POST, "/admin/storefronts")
        .json(&json!({"name": "Two Hooks", "webhook_url": live_url, "test_webhook_url": test_url}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["test_webhook_url"], test_url.as_str());
    let (sf, secret) = (
        body["id"].as_str().unwrap().to_string(),
        body["webhook_secret"].as_str().unwrap().to_string(),
    );
    // Only a webhook_url: test events go there.
    let (fallback_rx, fallback_url) = start_receiver(0).await;
    let (sf_one, _) = storefront_with_webhook(&app, &fallback_url).await;

    let mut conn = app.pool.acquire().await.unwrap();
    for (sf, livemode) in [(&sf, false), (&sf, true), (&sf_one, false)] {
        store::outbox::insert(
            &mut conn,
            sf,
            livemode,
            "order.completed",
            &json!({"livemode": livemode}),
        )
        .await
        .unwrap()
        .expect("queued");
    }
    drop(conn);
    let worker = OutboxWorker::new(app.pool.clone(), Duration::from_millis(20), true);
    worker.tick().await.unwrap();

    let one = |rx: &Receiver| {
        let seen = rx.seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 1);
        let (headers, body) = seen[0].clone();
        (
            headers,
            body,
            serde_json::from_slice::<Value>(&seen[0].1).unwrap(),
        )
    };
    let (headers, raw, test_event) = one(&test_rx);
    assert_eq!(test_event["livemode"], false);
    assert_eq!(test_event["data"]["livemode"], false);
    let sig = headers["gateway-signature"].to_str().unwrap();
    let (t, v1) = sig.split_once(",v1=").unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{}.", t.strip_prefix("t=").unwrap()).as_bytes());
    mac.update(&raw);
    assert_eq!(
        v1,
        hex::encode(mac.finalize().into_bytes()),
        "signed the same way"
    );
    assert_eq!(one(&live_rx).2["livemode"], true);
    assert_eq!(one(&fallback_rx).2["livemode"], false);

    for livemode in [true, false] {
        let list: Value = app
            .admin_json(&format!("/admin/events?livemode={livemode}"))
            .await;
        let data = list["data"].as_array().unwrap();
        assert_eq!(data.len(), if livemode { 1 } else { 2 });
        assert!(data.iter().all(|e| e["livemode"] == livemode));
    }
}
