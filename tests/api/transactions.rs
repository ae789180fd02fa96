//! Transactions whose caller goes away: a storefront that hangs up mid-order drops the
//! request's future wherever it is waiting, `BEGIN` included.

use std::{future::Future, task::Poll};

use sqlx::postgres::PgPoolOptions;

use crate::test_db::TestDb;

/// Polls `f` `times` times, letting other tasks run in between, then drops it unfinished:
/// a caller gone at some step of waiting for the database.
async fn poll_and_drop<F: Future>(f: F, times: usize) {
    let mut f = std::pin::pin!(f);
    for _ in 0..times {
        let ready = std::future::poll_fn(|cx| Poll::Ready(f.as_mut().poll(cx).is_ready())).await;
        if ready {
            return;
        }
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn a_caller_dropped_during_begin_leaves_no_transaction_open_for_the_next_borrower() {
    let db = TestDb::new().await;
    // One connection, so that the next borrower gets the same session.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(&db.url())
        .await
        .unwrap();
    sqlx::query("CREATE TABLE dropped_begin (n int)")
        .execute(&pool)
        .await
        .unwrap();
    // Dropped after 1, 2, … polls: one of them lands after `BEGIN` is sent and before
    // its answer is read.
    for n in 0..200 {
        poll_and_drop(esim_gateway::store::begin(&pool), n as usize / 4 + 1).await;
        sqlx::query("INSERT INTO dropped_begin VALUES ($1)")
            .bind(n)
            .execute(&pool)
            .await
            .unwrap();
        // Seen from another session at once: committed when it returned.
        let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM dropped_begin WHERE n = $1")
            .bind(n)
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(seen, 1, "insert {n} ran inside a transaction left open");
    }
}
