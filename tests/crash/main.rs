//! Crash safety, proved from outside: the real binary in live mode against the vendor
//! simulators in a process of their own, SIGKILLed mid-burst and restarted on the same
//! database, while the storefront retries every request with its Idempotency-Key. The
//! vendors' own records then show whether any order was bought twice or paid and lost, and
//! every order must be terminal or flagged within a bound, and no storefront request may
//! wait longer than that for its final answer. `bench/crash.sh` runs the big version
//! (`crash_bench`, ignored here). See `harness::Report` for what each count means.

#[allow(dead_code)]
#[path = "../api/test_db.rs"]
mod test_db;

mod front;
mod harness;

use std::time::Duration;

use harness::{Kill, KillAt, Scenario};

fn check(report: &harness::Report) {
    println!("{report}");
    assert!(report.clean(), "crash run not clean:\n{report}");
}

/// One gateway, killed during purchase (twice), while orders provision and while callbacks
/// arrive, restarted each time on the same database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_and_restart_mid_burst_buys_every_order_exactly_once() {
    let mut s = Scenario::spread("restart", 40, 1, 4);
    // Short leases keep the test short: the storefront's retries wait for the takeover.
    s.order_lease = Some(Duration::from_secs(4));
    s.attention_after = Duration::from_secs(10);
    check(&harness::run(&s).await);
}

/// Three replicas on one database behind one front door; one is killed mid-burst and stays
/// dead: the others take over its orders.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_one_killed_mid_burst_buys_every_order_exactly_once() {
    let mut s = Scenario::spread("replicas", 30, 3, 0);
    s.order_lease = Some(Duration::from_secs(4));
    s.attention_after = Duration::from_secs(10);
    s.kills = vec![Kill {
        at: KillAt::Sent(15),
        restart: false,
    }];
    check(&harness::run(&s).await);
}

/// The bench version (`bench/crash.sh`): `CRASH_ORDERS`, `CRASH_REPLICAS`, `CRASH_KILLS`,
/// `CRASH_CONCURRENCY`, `CRASH_SETTLE_SECS`, `CRASH_ATTENTION_SECS` (`ORDER_ATTENTION_AFTER`),
/// `CRASH_LEASE_MS` (`ORDER_LEASE`; unset: the gateway's default).
#[tokio::test(flavor = "multi_thread")]
#[ignore = "minutes of load: run through bench/crash.sh"]
async fn crash_bench() {
    let var = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let mut s = Scenario::spread(
        "bench",
        var("CRASH_ORDERS", 500),
        var("CRASH_REPLICAS", 3),
        var("CRASH_KILLS", 5),
    );
    s.concurrency = var("CRASH_CONCURRENCY", 16);
    s.attention_after = Duration::from_secs(var("CRASH_ATTENTION_SECS", 60) as u64);
    if let Some(ms) = std::env::var("CRASH_LEASE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        s.order_lease = Some(Duration::from_millis(ms));
    }
    s.settle_within = Duration::from_secs(var("CRASH_SETTLE_SECS", 180) as u64);
    let report = harness::run(&s).await;
    println!("CRASH RESULT {report}");
    assert!(report.clean(), "crash run not clean");
}
