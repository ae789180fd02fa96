//! Postgres access: plain SQL grouped by table family. Runtime-checked queries, each covered
//! by tests against a real database.

pub mod balances;
pub mod breakers;
pub mod esims;
pub mod events;
pub mod intake;
pub mod modes;
pub mod offers;
pub mod orders;
pub mod outbox;
pub mod plans;
pub mod routings;
pub mod storefronts;

use std::{str::FromStr, time::Duration};

use anyhow::Context;
use sqlx::{
    PgPool, Postgres, Transaction,
    migrate::{MigrateDatabase, Migrator},
    postgres::{PgConnectOptions, PgPoolOptions},
};

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Creates the database if it does not exist yet.
pub async fn ensure_database(url: &str) -> anyhow::Result<()> {
    if !sqlx::Postgres::database_exists(url)
        .await
        .context("cannot reach the PostgreSQL server in DATABASE_URL")?
    {
        sqlx::Postgres::create_database(url)
            .await
            .context("cannot create the database named in DATABASE_URL")?;
        tracing::info!("created database");
    }
    Ok(())
}

pub async fn connect(url: &str) -> anyhow::Result<PgPool> {
    let options = PgConnectOptions::from_str(url).context("DATABASE_URL is not a valid URL")?;
    PgPoolOptions::new()
        .max_connections(20)
        .acquire_timeout(Duration::from_secs(5))
        // A broken connection surfaces as a query error anyway; a ping per checkout would
        // double the round trips of every request.
        .test_before_acquire(false)
        .connect_with(options)
        .await
        .context("cannot connect to the database in DATABASE_URL")
}

/// `pool.begin()`, safe to cancel; every transaction here starts through it.
///
/// sqlx 0.8.6 counts a transaction as open only once the server has answered its `BEGIN`
/// (sqlx issues 4385 and 4393). A caller dropped while waiting for that answer (a
/// storefront that hung up mid-order, a timeout) leaves the session inside a transaction
/// that nothing ends, and the pool hands the connection on: the next borrower's
/// single statements, an order's intake among them, then run inside it, are not
/// committed when they return, and are lost if a later drop rolls it back. Here the
/// `BEGIN` runs in a task of its own, which finishes whatever happens to the caller; a
/// transaction nobody takes is dropped there as an open one, and sqlx rolls it back
/// before the connection is used again.
pub async fn begin(pool: &PgPool) -> sqlx::Result<Transaction<'static, Postgres>> {
    let pool = pool.clone();
    tokio::spawn(async move { pool.begin().await })
        .await
        .unwrap_or_else(|e| Err(sqlx::Error::Io(std::io::Error::other(e))))
}

pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    MIGRATOR
        .run(pool)
        .await
        .context("database migration failed")
}

/// What `/readyz` checks: the database answers and every embedded migration is applied.
pub async fn ready(pool: &PgPool) -> Result<(), String> {
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(pool)
            .await
            .map_err(|_| "database unreachable".to_string())?;
    let missing = MIGRATOR
        .iter()
        .filter(|m| !applied.contains(&m.version))
        .count();
    if missing > 0 {
        return Err(format!("{missing} migration(s) not applied"));
    }
    Ok(())
}

/// Makes sure the per-vendor row of `table` (keyed by mode and vendor, every other column
/// defaulted) exists, in the caller's transaction: what `lock` of balances and breakers
/// does before it locks the row.
pub(crate) async fn ensure_vendor_row(
    conn: &mut sqlx::PgConnection,
    table: &'static str,
    livemode: bool,
    vendor: &str,
) -> sqlx::Result<()> {
    sqlx::query(&format!(
        "INSERT INTO {table} (livemode, vendor) VALUES ($2, $1)
         ON CONFLICT (livemode, vendor) DO NOTHING"
    ))
    .bind(vendor)
    .bind(livemode)
    .execute(conn)
    .await?;
    Ok(())
}

/// Identifies a pool across its clones: clones share their options, another pool (another
/// replica) has its own. Keys what one replica keeps per pool in memory.
pub fn pool_identity(pool: &PgPool) -> usize {
    std::sync::Arc::as_ptr(&pool.connect_options()) as usize
}
