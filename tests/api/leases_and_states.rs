//! Exactly once under races, lapsed leases and interrupted callbacks, in process: fenced,
//! renewed leases; callbacks stored raw and applied by a worker; never-backwards eSIM
//! status and usage; one vendor cancel call; replays of a request still in flight; the
//! attention deadline and the operator's way out. Every "one vendor order / call" is
//! counted at the simulators.

use std::time::Duration;

use esim_gateway::{
    ordering::Ctx,
    sandbox::{Fault, SimSettings},
    store::{self, events::NewEvent},
    vendors::VendorId,
    workers::provisioner,
};
use reqwest::Method;
use serde_json::{Value, json};

use crate::{
    helpers::assert_error_shape,
    orders::{async_plan, buy_at},
    sandbox_app::SandboxApp,
};

/// Storefront events queued for the sandbox storefront, oldest first.
async fn outbox(s: &SandboxApp, event_type: &str) -> Vec<Value> {
    sqlx::query_scalar(
        "SELECT payload FROM outbox WHERE storefront_id = $1 AND event_type = $2
         ORDER BY created_at, id",
    )
    .bind(&s.sf.id)
    .bind(event_type)
    .fetch_all(&s.app.pool)
    .await
    .unwrap()
}

/// Gives the storefront a webhook URL so its events are queued (delivery may fail: the
/// queue is what is checked).
async fn with_webhook(s: &SandboxApp) {
    sqlx::query("UPDATE storefronts SET webhook_url = 'http://127.0.0.1:9/events' WHERE id = $1")
        .bind(&s.sf.id)
        .execute(&s.app.pool)
        .await
        .unwrap();
}

async fn attempts(s: &SandboxApp, order_id: &str) -> Vec<Value> {
    s.admin_order(order_id).await["attempts"]
        .as_array()
        .unwrap()
        .clone()
}

async fn wait_until<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn two_workers_and_a_lease_shorter_than_the_vendors_answer_buy_once() {
    // A 300 ms lease against a vendor answering after 1.2 s: without renewal the second
    // replica's provisioner would take the order over mid-call and look it up at a vendor
    // that has not recorded it yet.
    let env = [("PROVISION_RETRY_BASE", "100ms"), ("ORDER_LEASE", "300ms")];
    let s = SandboxApp::start_with(SimSettings::fast(), &env).await;
    let second_replica = provisioner::spawn(Ctx::from_state(&s.app.state));
    // eSIM Go is not idempotent on our order id: a takeover could only look the order up.
    let (plan, _) = s.plan_with(1, Some(VendorId::EsimGo)).await;
    s.fault(VendorId::EsimGo, "order", Fault::Delay { millis: 1200 });
    let (status, order) = s
        .post_order("k-short-lease", &json!({"plan_id": plan}))
        .await;
    assert_eq!(status, 201, "{order}");
    let id = order["id"].as_str().unwrap().to_string();
    let done = s.settle(&id, Duration::from_secs(10)).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(s.vendor_orders_for(&id), [(VendorId::EsimGo, 1)]);
    let tried = attempts(&s, &id).await;
    assert_eq!(tried.len(), 1, "{tried:?}");
    assert_eq!(tried[0]["outcome"], "placed");
    second_replica.abort();
}

#[tokio::test]
async fn a_worker_whose_lease_was_taken_over_writes_nothing_and_the_new_holder_finishes() {
    let s = SandboxApp::start().await;
    let (plan, _) = s.plan_with(1, Some(VendorId::EsimGo)).await;
    s.fault(VendorId::EsimGo, "order", Fault::Delay { millis: 1000 });
    let body = json!({"plan_id": plan});
    let request = s.post_order("k-fenced", &body);
    // While the vendor is still answering, another worker takes the order over (what a
    // replica does once a lease lapses): it holds a new lease version for 2 s.
    let takeover = async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        sqlx::query_scalar::<_, String>(
            "UPDATE orders SET lease_version = lease_version + 1,
                 lease_until = now() + interval '2 seconds'
             WHERE idempotency_key = 'k-fenced' RETURNING id",
        )
        .fetch_one(&s.app.pool)
        .await
        .unwrap()
    };
    let ((status, answer), id) = tokio::join!(request, takeover);
    assert_eq!(status, 201, "{answer}");
    // The old holder's "placed" was refused by the fence: nothing of its purchase written.
    assert_eq!(answer["status"], "pending", "{answer}");
    assert_eq!(answer["esims"], json!([]));
    let tried = attempts(&s, &id).await;
    assert_eq!(tried.len(), 1);
    assert_eq!(tried[0]["outcome"], "pending", "{tried:?}");
    // The new holder's lease lapses; the provisioner reconciles the open attempt with the
    // vendor, finds the order there and completes it without buying again.
    let done = s.settle(&id, Duration::from_secs(15)).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(s.vendor_orders_for(&id), [(VendorId::EsimGo, 1)]);
    assert_eq!(attempts(&s, &id).await[0]["outcome"], "placed");
}

async fn esimfx_esim(s: &SandboxApp, key: &str) -> String {
    let done = buy_at(s, VendorId::EsimFx, key).await;
    done["esims"][0]["iccid"].as_str().unwrap().to_string()
}

async fn send_esimfx(s: &SandboxApp, body: &Value) -> u16 {
    s.app
        .post("/webhooks/esimfx")
        .header("token", s.esimfx_webhook_token())
        .json(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn esim_row(s: &SandboxApp, iccid: &str) -> store::esims::EsimRow {
    store::esims::get(&s.app.pool, iccid)
        .await
        .unwrap()
        .unwrap()
}

/// Stores a verified eSIMfx callback the way the webhook handler does before applying it
/// (leased to itself for `lease`), as a process that died right after that commit leaves
/// it; `None`: as an earlier try that ended `status` leaves it (no lease).
async fn stored_unapplied(
    s: &SandboxApp,
    body: &Value,
    status: &str,
    lease: Option<Duration>,
) -> i64 {
    let raw = serde_json::to_vec(body).unwrap();
    let dedupe = format!(
        "esimfx:{}:{}:-:-",
        body["event_type"].as_str().unwrap(),
        body["iccid"].as_str().unwrap()
    );
    let event = NewEvent {
        livemode: false,
        vendor: "esimfx",
        dedupe_key: &dedupe,
        kind: Some("esim_status"),
        headers: json!({"content-type": "application/json"}),
        body: &raw,
        status,
        error: None,
        order_ref: None,
        iccid: body["iccid"].as_str(),
        trusted: true,
    };
    store::events::insert(&s.app.pool, &event, lease)
        .await
        .unwrap()
        .expect("new event")
        .id
}

async fn event_status(s: &SandboxApp, id: i64) -> String {
    sqlx::query_scalar("SELECT status FROM vendor_events WHERE id = $1")
        .bind(id)
        .fetch_one(&s.app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_callback_stored_but_never_applied_is_applied_by_the_worker_and_redelivery_applies_once()
{
    let s = SandboxApp::start().await;
    with_webhook(&s).await;
    let iccid = esimfx_esim(&s, "k-stored").await;
    let activation = json!({"event_type": "ACTIVATION", "iccid": iccid,
        "timestamp": chrono::Utc::now().to_rfc3339()});
    // The process died between storing and applying: the worker applies it once the dead
    // request's lease runs out, not before.
    let id = stored_unapplied(&s, &activation, "received", Some(Duration::from_secs(2))).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(event_status(&s, id).await, "received", "still leased");
    wait_until(
        "the stored event is applied",
        Duration::from_secs(10),
        || async { event_status(&s, id).await == "applied" },
    )
    .await;
    assert_eq!(esim_row(&s, &iccid).await.status, "active");
    // The vendor delivers it again: acknowledged, stored once, applied once.
    assert_eq!(send_esimfx(&s, &activation).await, 200);
    let count: i64 =
        sqlx::query_scalar("SELECT count(*) FROM vendor_events WHERE vendor = 'esimfx'")
            .fetch_one(&s.app.pool)
            .await
            .unwrap();
    assert_eq!(count, 1);
    let changes = outbox(&s, "esim.status_changed").await;
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0]["status"], "active");

    // An event a crash left `failed` is retried too.
    let expiry = json!({"event_type": "EXPIRATION", "iccid": iccid,
        "timestamp": (chrono::Utc::now() + chrono::Duration::seconds(1)).to_rfc3339()});
    let id = stored_unapplied(&s, &expiry, "failed", None).await;
    wait_until(
        "the failed event is applied",
        Duration::from_secs(10),
        || async { event_status(&s, id).await == "applied" },
    )
    .await;
    assert_eq!(esim_row(&s, &iccid).await.status, "expired");
}

#[tokio::test]
async fn a_redelivery_of_a_stored_but_unapplied_callback_is_applied_not_dropped() {
    let s = SandboxApp::start().await;
    let iccid = esimfx_esim(&s, "k-redelivered").await;
    let activation = json!({"event_type": "ACTIVATION", "iccid": iccid,
        "timestamp": chrono::Utc::now().to_rfc3339()});
    let id = stored_unapplied(&s, &activation, "received", Some(Duration::from_secs(2))).await;
    // Keep the worker away from it: only the redelivery can apply it now.
    sqlx::query(
        "UPDATE vendor_events SET next_attempt_at = now() + interval '1 hour' WHERE id = $1",
    )
    .bind(id)
    .execute(&s.app.pool)
    .await
    .unwrap();
    // While the request that stored it may still be applying it, a redelivery is
    // acknowledged and leaves it to that request.
    assert_eq!(send_esimfx(&s, &activation).await, 200);
    assert_eq!(event_status(&s, id).await, "received");
    assert_ne!(
        esim_row(&s, &iccid).await.status,
        "active",
        "not applied yet"
    );
    // Once that lease has run out, the next redelivery applies it.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(send_esimfx(&s, &activation).await, 200);
    assert_eq!(event_status(&s, id).await, "applied");
    assert_eq!(esim_row(&s, &iccid).await.status, "active");
}

#[tokio::test]
async fn usage_never_moves_backwards_and_each_threshold_fires_once() {
    let s = SandboxApp::start().await;
    with_webhook(&s).await;
    let iccid = esimfx_esim(&s, "k-usage").await;
    let mib = 1024 * 1024;
    let t0 = chrono::Utc::now();
    // eSIMfx tells readings apart by their threshold field; each carries its own.
    let reading = |used: i64, secs: i64, threshold: u32| {
        json!({"event_type": "DATA_USAGE", "iccid": iccid, "threshold": threshold,
            "used_amount": used, "upper_limit_amount": 1024 * mib, "amount_unit": "Byte",
            "timestamp": (t0 + chrono::Duration::seconds(secs)).to_rfc3339()})
    };
    assert_eq!(send_esimfx(&s, &reading(400 * mib, 20, 39)).await, 200);
    assert_eq!(esim_row(&s, &iccid).await.used_bytes, Some(400 * mib));
    // An older reading arriving late is stored, not applied.
    assert_eq!(send_esimfx(&s, &reading(100 * mib, 10, 9)).await, 200);
    assert_eq!(esim_row(&s, &iccid).await.used_bytes, Some(400 * mib));
    assert!(outbox(&s, "esim.usage_threshold").await.is_empty());
    // 83%: the 80% threshold fires, once, however many readings follow above it.
    assert_eq!(send_esimfx(&s, &reading(850 * mib, 30, 83)).await, 200);
    assert_eq!(send_esimfx(&s, &reading(900 * mib, 40, 87)).await, 200);
    assert_eq!(send_esimfx(&s, &reading(900 * mib, 40, 87)).await, 200);
    let fired = outbox(&s, "esim.usage_threshold").await;
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0]["threshold_percent"], 80);
    assert_eq!(fired[0]["used_bytes"], 850 * mib);
    // Used up: 100% fires once; a stale reading still cannot lower the figure.
    assert_eq!(send_esimfx(&s, &reading(1024 * mib, 50, 100)).await, 200);
    assert_eq!(send_esimfx(&s, &reading(600 * mib, 35, 58)).await, 200);
    let fired: Vec<Value> = outbox(&s, "esim.usage_threshold")
        .await
        .iter()
        .map(|e| e["threshold_percent"].clone())
        .collect();
    assert_eq!(fired, [json!(80), json!(100)]);
    assert_eq!(esim_row(&s, &iccid).await.used_bytes, Some(1024 * mib));
}

#[tokio::test]
async fn status_learned_by_polling_goes_through_the_guard_and_is_announced() {
    // No callbacks: what the gateway learns, it learns by asking.
    let settings = SimSettings {
        callbacks_enabled: false,
        ..SimSettings::fast()
    };
    let s = SandboxApp::start_with(settings, &[("PROVISION_RETRY_BASE", "100ms")]).await;
    with_webhook(&s).await;
    let order = buy_at(&s, VendorId::EsimFx, "k-polled").await;
    let iccid = order["esims"][0]["iccid"].as_str().unwrap().to_string();
    assert!(s.sandbox.esimfx.simulate_usage(&iccid, 10_000_000));
    // Usage is stale (never read): the read asks the vendor, which reports it active.
    let usage = s.get(&format!("/v1/esims/{iccid}/usage")).await;
    assert_eq!(usage["used_bytes"], 10_000_000, "{usage}");
    assert_eq!(esim_row(&s, &iccid).await.status, "active");
    let changes = outbox(&s, "esim.status_changed").await;
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0]["status"], "active");
    // An older, lower reading from the vendor (its counter lagging) changes nothing.
    sqlx::query("UPDATE esims SET usage_updated_at = NULL, used_bytes = 20000000 WHERE iccid = $1")
        .bind(&iccid)
        .execute(&s.app.pool)
        .await
        .unwrap();
    let usage = s.get(&format!("/v1/esims/{iccid}/usage")).await;
    assert_eq!(usage["used_bytes"], 20_000_000, "{usage}");
}

#[tokio::test]
async fn fifteen_parallel_cancels_make_one_vendor_call() {
    let s = SandboxApp::start().await;
    let order = buy_at(&s, VendorId::EsimAccess, "k-cancel-race").await;
    let id = order["id"].as_str().unwrap().to_string();
    // Each vendor cancel call takes one of these (and 300 ms): what is left counts calls.
    s.core(VendorId::EsimAccess).faults.inject_times(
        "cancel",
        Fault::Delay { millis: 300 },
        Some(15),
    );
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..15 {
        let req = s
            .app
            .post(&format!("/v1/orders/{id}/cancel"))
            .bearer_auth(&s.sf.api_key);
        calls.spawn(async move { req.send().await.unwrap() });
    }
    let mut ok = 0;
    let mut codes = Vec::new();
    while let Some(resp) = calls.join_next().await {
        let resp = resp.unwrap();
        if resp.status() == 200 {
            ok += 1;
        } else {
            codes.push(assert_error_shape(resp, 409).await);
        }
    }
    assert_eq!(ok, 1, "{codes:?}");
    assert!(
        codes
            .iter()
            .all(|c| c == "order_busy" || c == "order_not_cancellable"),
        "{codes:?}"
    );
    let mut unused = 0;
    while s.core(VendorId::EsimAccess).faults.take("cancel").is_some() {
        unused += 1;
    }
    assert_eq!(15 - unused, 1, "vendor cancel calls");
    assert_eq!(
        s.get(&format!("/v1/orders/{id}")).await["status"],
        "cancelled"
    );
}

#[tokio::test]
async fn a_replay_while_the_first_request_is_in_flight_is_409_with_retry_after() {
    let env = [("PROVISION_RETRY_BASE", "100ms"), ("ORDER_LEASE", "600ms")];
    let s = SandboxApp::start_with(SimSettings::fast(), &env).await;
    let (plan, _) = s.plan_with(1, Some(VendorId::EsimGo)).await;
    s.fault(VendorId::EsimGo, "order", Fault::Delay { millis: 1300 });
    let body = json!({"plan_id": plan});
    let first = s.post_order("k-in-flight", &body);
    let replay = async {
        // Once the first request is at the vendor.
        wait_until(
            "the first attempt starts",
            Duration::from_secs(5),
            || async {
                sqlx::query_scalar::<_, i64>(
                    "SELECT count(*) FROM order_attempts a JOIN orders o ON o.id = a.order_id
                 WHERE o.idempotency_key = 'k-in-flight'",
                )
                .fetch_one(&s.app.pool)
                .await
                .unwrap()
                    > 0
            },
        )
        .await;
        let started = std::time::Instant::now();
        let resp = s
            .app
            .post("/v1/orders")
            .bearer_auth(&s.sf.api_key)
            .header("Idempotency-Key", "k-in-flight")
            .json(&body)
            .send()
            .await
            .unwrap();
        (resp, started.elapsed())
    };
    let ((status, first), (resp, took)) = tokio::join!(first, replay);
    assert_eq!(status, 201, "{first}");
    let retry_after: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    assert_eq!(
        assert_error_shape(resp, 409).await,
        "idempotency_key_in_use"
    );
    assert!(took < Duration::from_secs(1), "answered after {took:?}");
    // Once answered, the replay is the first answer verbatim.
    let (status, again) = s.post_order("k-in-flight", &body).await;
    assert_eq!(status, 201);
    assert_eq!(again, first);
}

#[tokio::test]
async fn an_order_past_its_deadline_is_flagged_and_an_operator_can_fail_it() {
    let env = [
        ("PROVISION_RETRY_BASE", "100ms"),
        ("ORDER_ATTENTION_AFTER", "1s"),
    ];
    let s = SandboxApp::start_with(SimSettings::fast(), &env).await;
    with_webhook(&s).await;
    // The connection drops before eSIM Go processes the order: the outcome is unknown, and
    // a "no such order" so soon after sending is not believed, so the order waits.
    let (plan, _) = s.plan_with(1, Some(VendorId::EsimGo)).await;
    s.fault(
        VendorId::EsimGo,
        "order",
        Fault::Reset {
            after_processing: false,
        },
    );
    let (_, order) = s.post_order("k-stuck", &json!({"plan_id": plan})).await;
    let id = order["id"].as_str().unwrap().to_string();
    assert_eq!(order["status"], "provisioning", "{order}");
    let flagged = || async {
        s.admin_get("/admin/orders?attention=true").await["data"]
            .as_array()
            .unwrap()
            .clone()
    };
    wait_until("the order is flagged", Duration::from_secs(10), || async {
        !flagged().await.is_empty()
    })
    .await;
    let list = flagged().await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], id.as_str());
    let reason = list[0]["attention"]["reason"].as_str().unwrap();
    assert!(reason.contains("unknown"), "{reason}");
    let others = s.admin_get("/admin/orders?attention=false").await;
    assert!(
        others["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["id"] != id.as_str())
    );
    // The storefront still sees it provisioning; operators see it counted.
    assert_eq!(
        s.get(&format!("/v1/orders/{id}")).await["status"],
        "provisioning"
    );
    let metrics = s.app.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("orders_attention") && l.ends_with(" 1")),
        "{metrics}"
    );

    let fail = |id: String, body: Value| {
        s.app
            .admin(Method::POST, &format!("/admin/orders/{id}/fail"))
            .json(&body)
            .send()
    };
    // A reason is required.
    let resp = fail(id.clone(), json!({"reason": "  "})).await.unwrap();
    assert_eq!(assert_error_shape(resp, 422).await, "invalid_body");
    let resp = fail(id.clone(), json!({})).await.unwrap();
    assert_eq!(assert_error_shape(resp, 422).await, "invalid_body");
    let mut resp = None;
    // The provisioner may be looking at the order right now: busy is retried.
    for _ in 0..50 {
        let r = fail(
            id.clone(),
            json!({"reason": "eSIM Go confirmed it never got the order"}),
        )
        .await
        .unwrap();
        if r.status() != 409 {
            resp = Some(r);
            break;
        }
        assert!(r.headers().contains_key("retry-after"));
        assert_eq!(assert_error_shape(r, 409).await, "order_busy");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let resp = resp.expect("the order stays busy");
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "failed", "{body}");
    assert!(body["attention"].is_null());
    let seen = s.get(&format!("/v1/orders/{id}")).await;
    assert_eq!(seen["failure"]["code"], "operator_failed");
    let failed = outbox(&s, "order.failed").await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["id"], id.as_str());
    assert!(s.vendor_orders_for(&id).is_empty());
    // Failing it again: already finished.
    let resp = fail(id, json!({"reason": "again"})).await.unwrap();
    assert_eq!(assert_error_shape(resp, 409).await, "order_finished");
}

#[tokio::test]
async fn an_operator_cannot_fail_an_order_a_vendor_has() {
    let settings = SimSettings {
        callbacks_enabled: false,
        provisioning_delay: Duration::from_secs(60),
        ..SimSettings::fast()
    };
    let s = SandboxApp::start_with(settings, &[("PROVISION_RETRY_BASE", "100ms")]).await;
    let (plan, vendor) = async_plan(&s).await;
    let (_, order) = s.post_order("k-placed", &json!({"plan_id": plan})).await;
    assert_eq!(order["status"], "provisioning", "{order}");
    let id = order["id"].as_str().unwrap().to_string();
    let mut code = String::new();
    // The provisioner may hold the order for a moment: busy is retried.
    for _ in 0..50 {
        let resp = s
            .app
            .admin(Method::POST, &format!("/admin/orders/{id}/fail"))
            .json(&json!({"reason": "taking too long"}))
            .send()
            .await
            .unwrap();
        code = assert_error_shape(resp, 409).await;
        if code != "order_busy" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(code, "vendor_order_exists");
    assert_eq!(
        s.get(&format!("/v1/orders/{id}")).await["status"],
        "provisioning"
    );
    assert_eq!(s.vendor_orders_for(&id), [(vendor, 1)]);
}

#[tokio::test]
async fn an_outbox_claim_that_lapsed_and_was_taken_over_cannot_record_its_outcome() {
    // No workers: this test is the two workers.
    let app = crate::helpers::TestApp::spawn().await;
    let sf = app.create_storefront("Fenced").await;
    sqlx::query("UPDATE storefronts SET webhook_url = 'http://127.0.0.1:9/events' WHERE id = $1")
        .bind(&sf.id)
        .execute(&app.pool)
        .await
        .unwrap();
    let mut conn = app.pool.acquire().await.unwrap();
    let id = store::outbox::insert(&mut conn, &sf.id, false, "order.completed", &json!({}))
        .await
        .unwrap()
        .unwrap();
    drop(conn);
    // Claim; the claim lapses (its delivery hung) and another worker claims the event.
    let claim = || async {
        sqlx::query("UPDATE outbox SET next_attempt_at = now() - interval '1 second'")
            .execute(&app.pool)
            .await
            .unwrap();
        let mut due = store::outbox::claim_due(&app.pool, 10, 3600, false)
            .await
            .unwrap();
        assert_eq!(due.len(), 1);
        due.remove(0)
    };
    let first = claim().await;
    let second = claim().await;
    assert_eq!(first.id, id);
    assert!(second.lease_version > first.lease_version);
    let status = || async {
        sqlx::query_scalar::<_, String>("SELECT status FROM outbox WHERE id = $1")
            .bind(&id)
            .fetch_one(&app.pool)
            .await
            .unwrap()
    };
    // The first worker's late outcome is not recorded; the current holder's is.
    store::outbox::mark_delivered(&app.pool, &id, first.lease_version)
        .await
        .unwrap();
    assert_eq!(status().await, "pending");
    store::outbox::mark_delivered(&app.pool, &id, second.lease_version)
        .await
        .unwrap();
    assert_eq!(status().await, "delivered");
}

#[tokio::test]
async fn a_vendor_answer_naming_another_orders_purchase_is_not_recorded() {
    use esim_gateway::{
        ordering::{lease::Lease, purchase},
        vendors::{Activation, EsimProfile, EsimStatus, OrderState, VendorOrderStatus},
    };
    let s = SandboxApp::start().await;
    let owner = buy_at(&s, VendorId::EsimGo, "k-owner").await;
    let owner_id = owner["id"].as_str().unwrap().to_string();
    let owner_ref = s.admin_order(&owner_id).await["vendor_reference"]
        .as_str()
        .unwrap()
        .to_string();
    let owner_esim = esim_row(&s, owner["esims"][0]["iccid"].as_str().unwrap()).await;
    // A second order whose eSIM Go outcome is unknown.
    for other in VendorId::ALL.into_iter().filter(|v| *v != VendorId::EsimGo) {
        s.core(other)
            .faults
            .inject_times("order", crate::orders::sold_out(other), None);
    }
    s.fault(
        VendorId::EsimGo,
        "order",
        Fault::Reset {
            after_processing: false,
        },
    );
    let plan = s.plan_carried_by(VendorId::EsimGo).await;
    let (_, second) = s.post_order("k-second", &json!({"plan_id": plan})).await;
    let id = second["id"].as_str().unwrap().to_string();
    assert_eq!(second["status"], "provisioning", "{second}");
    // A reconciliation that matched the wrong vendor order: the first order's purchase.
    let ctx = Ctx::from_state(&s.app.state);
    let mut leased = None;
    for _ in 0..100 {
        leased = store::orders::lease_one(&s.app.pool, &id, ctx.lease)
            .await
            .unwrap();
        if leased.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let order = leased.expect("the order's lease");
    let lease = Lease::hold(&s.app.pool, &order.id, order.lease_version, ctx.lease);
    let attempt = store::orders::attempts(&s.app.pool, &id)
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(attempt.vendor, "esimgo");
    let wrong = OrderState {
        vendor_reference: Some(owner_ref),
        status: VendorOrderStatus::Completed,
        esims: vec![EsimProfile {
            iccid: owner_esim.iccid.clone(),
            activation: Activation {
                lpa: owner_esim.lpa.clone().unwrap(),
                smdp_address: owner_esim.smdp_address.clone().unwrap(),
                matching_id: owner_esim.matching_id.clone().unwrap(),
            },
            vendor_esim_ref: None,
            status: EsimStatus::Ready,
            expires_at: None,
        }],
        charged: None,
    };
    let step = purchase::placed(&ctx, &order, &lease, &attempt, wrong, None, None)
        .await
        .unwrap();
    assert_eq!(step, purchase::Step::Provisioning);
    lease
        .release(&s.app.pool, Duration::from_secs(60))
        .await
        .unwrap();
    // Nothing recorded; the order waits, flagged with the reason.
    let admin = s.admin_order(&id).await;
    assert_eq!(admin["status"], "provisioning");
    let last = admin["attempts"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["outcome"], "unknown", "{admin}");
    assert!(admin["esims"].as_array().unwrap().is_empty());
    let reason = admin["attention"]["reason"].as_str().unwrap();
    assert!(reason.contains(&owner_id), "{reason}");
    assert_eq!(esim_row(&s, &owner_esim.iccid).await.order_id, owner_id);
}

#[tokio::test]
async fn a_topup_starts_a_new_bundle_whose_thresholds_fire_again() {
    let s = SandboxApp::start().await;
    with_webhook(&s).await;
    let iccid = esimfx_esim(&s, "k-bundle").await;
    let mib = 1024 * 1024;
    let t0 = chrono::Utc::now();
    let reading = |used: i64, secs: i64, threshold: u32| {
        json!({"event_type": "DATA_USAGE", "iccid": iccid, "threshold": threshold,
            "used_amount": used, "upper_limit_amount": 1024 * mib, "amount_unit": "Byte",
            "timestamp": (t0 + chrono::Duration::seconds(secs)).to_rfc3339()})
    };
    assert_eq!(send_esimfx(&s, &reading(900 * mib, 10, 87)).await, 200);
    assert_eq!(outbox(&s, "esim.usage_threshold").await.len(), 1);
    let plans = s.get(&format!("/v1/esims/{iccid}/topup-plans")).await;
    let plan_id = plans["data"][0]["id"]
        .as_str()
        .expect("a top-up plan")
        .to_string();
    let resp = s
        .app
        .post(&format!("/v1/esims/{iccid}/topups"))
        .bearer_auth(&s.sf.api_key)
        .header("Idempotency-Key", "k-bundle-topup")
        .json(&json!({"plan_id": plan_id}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let topup: Value = resp.json().await.unwrap();
    let done = s
        .settle(topup["id"].as_str().unwrap(), Duration::from_secs(10))
        .await;
    assert_eq!(done["status"], "completed", "{done}");
    let row = esim_row(&s, &iccid).await;
    assert_eq!(row.usage_bundle, 2);
    assert!(row.thresholds_fired.is_empty());
    // The new bundle's usage starts low and its 80% fires again, once.
    assert_eq!(send_esimfx(&s, &reading(50 * mib, 20, 4)).await, 200);
    assert_eq!(esim_row(&s, &iccid).await.used_bytes, Some(50 * mib));
    assert_eq!(send_esimfx(&s, &reading(850 * mib, 30, 83)).await, 200);
    let fired: Vec<Value> = outbox(&s, "esim.usage_threshold")
        .await
        .iter()
        .map(|e| e["threshold_percent"].clone())
        .collect();
    assert_eq!(fired, [json!(80), json!(80)]);
}

#[tokio::test]
async fn a_holder_that_stops_mid_call_is_taken_over_within_one_lease() {
    use esim_gateway::ordering::place::{NewOrder, place_new};
    let env = [("PROVISION_RETRY_BASE", "100ms"), ("ORDER_LEASE", "1s")];
    let s = SandboxApp::start_with(SimSettings::fast(), &env).await;
    for other in VendorId::ALL.into_iter().filter(|v| *v != VendorId::EsimFx) {
        s.core(other)
            .faults
            .inject_times("order", crate::orders::sold_out(other), None);
    }
    let plan_id = s.plan_carried_by(VendorId::EsimFx).await;
    s.fault(VendorId::EsimFx, "order", Fault::Delay { millis: 1000 });
    // The request's work stops dead while eSIMfx is answering (what a killed process or a
    // timed-out request leaves): its lease is no longer renewed.
    let ctx = Ctx::from_state(&s.app.state);
    let order = NewOrder {
        plan_id,
        quantity: 1,
        reference: None,
        customer_email: None,
        max_price: None,
        test_scenario: None,
    };
    let stopped = tokio::time::timeout(
        Duration::from_millis(300),
        place_new(&ctx, (&s.sf.id, false), "k-stopped", order),
    )
    .await;
    assert!(stopped.is_err(), "the purchase was cut short");
    let at = std::time::Instant::now();
    let id: String =
        sqlx::query_scalar("SELECT id FROM orders WHERE idempotency_key = 'k-stopped'")
            .fetch_one(&s.app.pool)
            .await
            .unwrap();
    let done = s.settle(&id, Duration::from_secs(10)).await;
    let took = at.elapsed();
    assert_eq!(done["status"], "completed", "{done}");
    // One lease (1 s) plus the provisioner's look, not minutes.
    assert!(took < Duration::from_secs(4), "taken over after {took:?}");
    assert_eq!(s.vendor_orders_for(&id), [(VendorId::EsimFx, 1)]);
}
