//! Statements whose cost must follow what they look for, not the history: Postgres can
//! answer them from indexes. Checked on the plan with scans of whole tables disabled (the
//! planner still picks one when no index serves the statement) and hash and merge joins
//! disabled (so a join reads the other table by key): every read of a table must then be
//! driven by a condition on what the statement looks for.

use esim_gateway::store;
use serde_json::Value;

use crate::helpers::TestApp;

/// Every table a plan reads, with the condition its index scan is driven by (empty for a
/// sequential scan).
fn reads(plan: &Value, out: &mut Vec<(String, String)>) {
    if let Some(relation) = plan.get("Relation Name").and_then(Value::as_str) {
        let cond = plan
            .get("Index Cond")
            .or_else(|| plan.get("Recheck Cond"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        out.push((relation.to_string(), cond.to_string()));
    }
    for child in plan
        .get("Plans")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        reads(child, out);
    }
}

/// The reads of `plan` not driven by one of the `selective` conditions (an index
/// condition that any row meets, such as the mode, still reads every row).
fn unselective(plan: &Value, selective: &[&str]) -> Vec<(String, String)> {
    let mut all = Vec::new();
    reads(plan, &mut all);
    all.into_iter()
        .filter(|(_, cond)| !selective.iter().any(|s| cond.contains(s)))
        .collect()
}

/// `statement` with `$n` replaced by `args[n - 1]` (SQL literals), explained as the
/// planner would run it without whole-table scans.
async fn explained(app: &TestApp, statement: &str, args: &[&str]) -> Value {
    let mut sql = statement.to_string();
    // Highest first, so `$1` does not match the start of `$10`.
    for (i, arg) in args.iter().enumerate().rev() {
        sql = sql.replace(&format!("${}", i + 1), arg);
    }
    let mut conn = app.pool.acquire().await.unwrap();
    for setting in ["enable_seqscan", "enable_hashjoin", "enable_mergejoin"] {
        sqlx::query(&format!("SET {setting} = off"))
            .execute(&mut *conn)
            .await
            .unwrap();
    }
    let plan: Value = sqlx::query_scalar(&format!("EXPLAIN (FORMAT JSON) {sql}"))
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    for setting in ["enable_seqscan", "enable_hashjoin", "enable_mergejoin"] {
        sqlx::query(&format!("RESET {setting}"))
            .execute(&mut *conn)
            .await
            .unwrap();
    }
    plan[0]["Plan"].clone()
}

#[tokio::test]
async fn an_order_is_found_by_its_vendor_reference_through_indexes() {
    let app = TestApp::spawn().await;
    let plan = explained(
        &app,
        store::orders::BY_VENDOR_REFERENCE,
        &["'esimgo'", "'ref-1'", "true"],
    )
    .await;
    // By the reference (on the order or an attempt), then the orders by primary key.
    let scans = unselective(&plan, &["vendor_reference", "(id = "]);
    assert!(scans.is_empty(), "{scans:?} in {plan:#}");
}

#[tokio::test]
async fn the_vendor_health_window_reads_only_its_attempts() {
    let app = TestApp::spawn().await;
    let plan = explained(&app, store::breakers::ATTEMPT_WINDOW, &["300"]).await;
    // The attempts by the time they started, their orders by primary key.
    let scans = unselective(&plan, &["started_at", "(id = "]);
    assert!(scans.is_empty(), "{scans:?} in {plan:#}");
    // And the time leads the index: with the vendor first, a condition on the time alone
    // still walks every attempt of every vendor.
    assert!(
        plan.to_string()
            .contains(r#""Index Name":"order_attempts_started""#),
        "{plan:#}"
    );
}
