//! The order path's reads from each replica's memory (`cache::routing`): a warm order is
//! ranked with the database cut off, an offer change reaches the next ranking on every
//! replica within a second, and a failure recorded here is seen by the next order here;
//! the outcome's one commit saves the answer made from the rows it wrote.

use std::{
    collections::HashSet,
    sync::Arc,
    time::{Duration, Instant},
};

use esim_gateway::{
    domain::money::Money,
    ordering::{
        Ctx,
        breaker::{self, Signal},
        purchase,
    },
    store,
    vendors::VendorId,
};
use serde_json::{Value, json};

use crate::{helpers::TestApp, sandbox_app::SandboxApp};

/// The plan's key and one unit's price, as an order of it asks routing.
async fn demand_of(app: &TestApp, plan_id: &str) -> (esim_gateway::domain::plan::PlanKey, Money) {
    let plan = store::plans::get(&app.pool, false, plan_id)
        .await
        .unwrap()
        .expect("plan stored");
    let key = purchase::key_of(&plan).expect("known data kind");
    (key, purchase::plan_price(&plan, 1).expect("known currency"))
}

#[tokio::test]
async fn a_warm_order_is_ranked_with_the_database_cut_off() {
    let s = SandboxApp::start().await;
    let (plan, ranking) = s.plan_with(2, None).await;
    let (status, order) = s.post_order("k-warm", &json!({"plan_id": plan})).await;
    assert_eq!(status, 201, "{order}");
    let ctx = Ctx::from_state(&s.app.state);
    let (key, price) = demand_of(&s.app, &plan).await;
    let demand = purchase::Demand {
        livemode: false,
        key: &key,
        quantity: 1,
        price,
    };
    let vendors =
        |r: &purchase::Routed| -> Vec<_> { r.offers.iter().map(|c| c.offer.vendor).collect() };
    let warm = purchase::route(&ctx, &demand, &HashSet::new())
        .await
        .unwrap();
    assert_eq!(vendors(&warm)[0], ranking[0]);

    // Every read routing makes is held for a second at most: rank again at once.
    let started = Instant::now();
    s.app.allow_database(false).await;
    let cold_db = purchase::route(&ctx, &demand, &HashSet::new()).await;
    let took = started.elapsed();
    // The database really is out of reach.
    let unreachable = sqlx::query("SELECT 1").execute(&s.app.pool).await.is_err();
    s.app.allow_database(true).await;
    assert!(unreachable);
    assert!(
        took < Duration::from_millis(900),
        "too slow to show anything ({took:?})"
    );
    let cold_db = cold_db.expect("ranked from memory");
    assert_eq!(vendors(&cold_db), vendors(&warm));
    assert_eq!(cold_db.choice.to_json(), warm.choice.to_json());
}

#[tokio::test]
async fn an_offer_change_reaches_the_next_ranking_here_and_on_a_second_replica_within_a_second() {
    let s = SandboxApp::start().await;
    let replica = s.app.spawn_replica().await;
    let (plan, _) = s.plan_with(2, None).await;
    let (key, _) = demand_of(&s.app, &plan).await;
    let cost_of = |offers: &esim_gateway::cache::routing::KeyOffers, id: i64| {
        offers
            .iter()
            .find(|o| o.routable.offer_id == id)
            .map(|o| o.routable.cost_amount)
    };
    let here = s.app.state.cache.candidates(false, &key).await.unwrap();
    let there = replica.state.cache.candidates(false, &key).await.unwrap();
    let offer = here[0].routable.offer_id;
    let before = cost_of(&here, offer).unwrap();
    assert_eq!(cost_of(&there, offer), Some(before));

    // A committed change of one offer's cost, as a sync writes it.
    sqlx::query("UPDATE vendor_offers SET cost_amount = cost_amount + 1 WHERE id = $1")
        .bind(offer)
        .execute(&s.app.pool)
        .await
        .unwrap();
    let committed = Instant::now();
    let after = before + rust_decimal::Decimal::ONE;
    for (name, app) in [("this replica", &s.app), ("a second replica", &replica)] {
        loop {
            let offers = app.state.cache.candidates(false, &key).await.unwrap();
            if cost_of(&offers, offer) == Some(after) {
                break;
            }
            assert!(
                committed.elapsed() < Duration::from_secs(1),
                "{name} still ranks with the old cost"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

#[tokio::test]
async fn a_breaker_read_from_memory_never_hides_a_failure_recorded_here() {
    let s = SandboxApp::start().await;
    let ctx = Ctx::from_state(&s.app.state);
    let cache = &s.app.state.cache.routing;
    let vendor = VendorId::EsimFx;
    // Warm: every breaker closed, read once.
    breaker::admit(&ctx, false, &[vendor], true).await.unwrap();
    let (_, first) = cache.breakers.peek().expect("read kept");
    // An answer from a vendor known untouched writes nothing and keeps the read.
    breaker::record(&ctx, false, vendor, Signal::Answered, None).await;
    assert!(Arc::ptr_eq(&cache.breakers.peek().unwrap().1, &first));
    // A failure drops it: the next order reads the stored count.
    breaker::record(&ctx, false, vendor, Signal::Failed, None).await;
    assert!(cache.breakers.peek().is_none());
    breaker::admit(&ctx, false, &[vendor], true).await.unwrap();
    let (_, read) = cache.breakers.peek().unwrap();
    let row = read
        .rows
        .iter()
        .find(|r| r.vendor == vendor.as_str() && !r.livemode)
        .expect("the failure is stored");
    assert_eq!(row.consecutive_failures, 1);
    // The next answer resets the stored count (it is not "untouched" any more).
    breaker::record(&ctx, false, vendor, Signal::Answered, None).await;
    let failures: i32 = sqlx::query_scalar(
        "SELECT consecutive_failures FROM vendor_breakers WHERE vendor = $1 AND NOT livemode",
    )
    .bind(vendor.as_str())
    .fetch_one(&s.app.pool)
    .await
    .unwrap();
    assert_eq!(failures, 0);
}

/// The first offer's vendor of every plan on the first catalogue page, one plan per vendor.
async fn one_plan_per_first_vendor(s: &SandboxApp) -> Vec<(VendorId, String)> {
    let plans = s.get("/v1/plans?limit=200").await;
    let mut found: Vec<(VendorId, String)> = Vec::new();
    for p in plans["data"].as_array().unwrap() {
        let id = p["id"].as_str().unwrap();
        if let Some(first) = s.ranking(id).await.first()
            && !found.iter().any(|(v, _)| v == first)
        {
            found.push((*first, id.to_string()));
        }
    }
    found
}

#[tokio::test]
async fn the_outcome_commit_saves_the_answer_from_the_order_and_esims_it_wrote() {
    let s = SandboxApp::start().await;
    // Events are queued only for a storefront with a webhook (delivery may fail).
    sqlx::query("UPDATE storefronts SET webhook_url = 'http://127.0.0.1:9/events' WHERE id = $1")
        .bind(&s.sf.id)
        .execute(&s.app.pool)
        .await
        .unwrap();
    let (mut at_once, mut later) = (0, 0);
    for (vendor, plan) in one_plan_per_first_vendor(&s).await {
        let key = format!("k-outcome-{vendor}");
        let (status, answer) = s.post_order(&key, &json!({"plan_id": plan})).await;
        assert_eq!(status, 201, "{vendor}: {answer}");
        let id = answer["id"].as_str().unwrap().to_string();
        let (again, replayed) = s.post_order(&key, &json!({"plan_id": plan})).await;
        assert_eq!((again, &replayed), (201, &answer), "{vendor}: the replay");
        let (saved, lease_until): (Value, Option<chrono::DateTime<chrono::Utc>>) =
            sqlx::query_as("SELECT response_body, lease_until FROM orders WHERE id = $1")
                .bind(&id)
                .fetch_one(&s.app.pool)
                .await
                .unwrap();
        assert_eq!(saved, answer, "{vendor}: the saved answer");
        assert_eq!(lease_until, None, "{vendor}: released with the outcome");
        let attempts = s.admin_order(&id).await["attempts"].clone();
        assert_eq!(attempts[0]["outcome"], "placed", "{vendor}: {attempts}");
        assert!(attempts[0]["latency_ms"].is_i64(), "{vendor}: {attempts}");
        let iccids = |v: &Value| -> Vec<String> {
            v["esims"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["iccid"].as_str().unwrap().to_string())
                .collect()
        };
        let stored: Vec<String> =
            sqlx::query_scalar("SELECT iccid FROM esims WHERE order_id = $1 ORDER BY iccid")
                .bind(&id)
                .fetch_all(&s.app.pool)
                .await
                .unwrap();
        match answer["status"].as_str().unwrap() {
            "completed" => {
                at_once += 1;
                assert_eq!(iccids(&answer), stored, "{vendor}: the answer's eSIMs");
                assert_eq!(stored.len(), 1, "{vendor}");
                let event: Value = sqlx::query_scalar(
                    "SELECT payload FROM outbox
                     WHERE event_type = 'order.completed' AND payload->>'id' = $1",
                )
                .bind(&id)
                .fetch_one(&s.app.pool)
                .await
                .unwrap();
                assert_eq!(iccids(&event), stored, "{vendor}: the event's eSIMs");
            }
            "provisioning" => {
                later += 1;
                assert!(iccids(&answer).is_empty(), "{vendor}: {answer}");
            }
            other => panic!("{vendor}: {other}"),
        }
    }
    assert!(at_once > 0 && later > 0, "{at_once} at once, {later} later");
}
