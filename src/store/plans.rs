//! `plans`: the normalized catalogue storefronts read.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::{PgConnection, PgPool};

use crate::{
    domain::{data::DataKind, money::Money},
    store::offers::kind_str,
};

/// A plan ready to be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanRow {
    pub id: String,
    pub name: String,
    pub countries: Vec<String>,
    pub region: Option<String>,
    pub kind: DataKind,
    pub bytes: Option<u64>,
    /// Total bytes over the validity; unlimited sorts after everything.
    pub sort_bytes: i64,
    pub validity_days: u32,
    pub price: Money,
    pub networks: serde_json::Value,
    pub supports_topup: bool,
    pub offer_count: u32,
}

/// Serializes plan rebuilds so two syncs finishing together cannot interleave.
pub const PLANS_REBUILD_LOCK: i64 = 0x0070_6c61_6e73; // "plans"

#[derive(Serialize)]
struct PlanJson<'a> {
    id: &'a str,
    name: &'a str,
    countries: &'a [String],
    region: Option<&'a str>,
    data_kind: &'static str,
    data_bytes: Option<i64>,
    data_sort_bytes: i64,
    validity_days: i32,
    price_amount: String,
    price_currency: &'a str,
    networks: &'a serde_json::Value,
    supports_topup: bool,
    offer_count: i32,
}

/// Serializes plan rebuilds for the rest of the transaction: a rebuild must read the offers
/// and write the plans without another rebuild interleaving (or an older read could
/// overwrite a newer catalogue).
pub async fn lock_rebuild(tx: &mut PgConnection) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(PLANS_REBUILD_LOCK)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// What a rebuild may change on an active plan (the rest is its id's plan key).
#[derive(sqlx::FromRow)]
struct Stored {
    id: String,
    name: String,
    region: Option<String>,
    price_amount: Decimal,
    price_currency: String,
    networks: sqlx::types::Json<serde_json::Value>,
    supports_topup: bool,
    offer_count: i32,
}

impl Stored {
    /// Whether upserting `p` would change nothing. Equal values make equal jsonb, so a
    /// plan judged the same is; one judged different only costs an upsert (whose own
    /// comparison then decides).
    fn same_as(&self, p: &PlanRow) -> bool {
        self.name == p.name
            && self.region == p.region
            && self.price_amount == p.price.amount
            && self.price_currency.trim() == p.price.currency.as_str()
            && self.networks.0 == p.networks
            && self.supports_topup == p.supports_topup
            && i64::from(self.offer_count) == i64::from(p.offer_count)
    }
}

/// Makes `rows` the set of active plans of one mode: upserts those that are new or changed
/// and deactivates every other plan of that mode. Call inside the transaction that holds
/// [`lock_rebuild`]. A sync usually changes a few plans of thousands: comparing here
/// (one read) instead of in the upsert spares Postgres parsing and matching every plan.
pub async fn replace_all(
    tx: &mut PgConnection,
    livemode: bool,
    rows: &[PlanRow],
) -> sqlx::Result<()> {
    let stored: Vec<Stored> = sqlx::query_as(
        "SELECT id, name, region, price_amount, price_currency, networks, supports_topup,
             offer_count
         FROM plans WHERE livemode = $1 AND active",
    )
    .bind(livemode)
    .fetch_all(&mut *tx)
    .await?;
    let stored: std::collections::HashMap<&str, &Stored> =
        stored.iter().map(|s| (s.id.as_str(), s)).collect();
    let changed: Vec<&PlanRow> = rows
        .iter()
        .filter(|p| !stored.get(p.id.as_str()).is_some_and(|s| s.same_as(p)))
        .collect();
    for chunk in changed.chunks(1000) {
        let json: Vec<PlanJson<'_>> = chunk
            .iter()
            .map(|p| PlanJson {
                id: &p.id,
                name: &p.name,
                countries: &p.countries,
                region: p.region.as_deref(),
                data_kind: kind_str(p.kind),
                data_bytes: p.bytes.map(|b| b as i64),
                data_sort_bytes: p.sort_bytes,
                validity_days: p.validity_days as i32,
                price_amount: p.price.amount.to_string(),
                price_currency: p.price.currency.as_str(),
                networks: &p.networks,
                supports_topup: p.supports_topup,
                offer_count: p.offer_count as i32,
            })
            .collect();
        sqlx::query(
            "INSERT INTO plans AS p (livemode, id, name, countries, region, data_kind, data_bytes,
                 data_sort_bytes, validity_days, price_amount, price_currency, networks,
                 supports_topup, offer_count, active, updated_at)
             SELECT $2, r.id, r.name, ARRAY(SELECT jsonb_array_elements_text(r.countries)),
                 r.region, r.data_kind, r.data_bytes, r.data_sort_bytes, r.validity_days,
                 r.price_amount::numeric, r.price_currency, r.networks, r.supports_topup,
                 r.offer_count, true, now()
             FROM jsonb_to_recordset($1) AS r(id text, name text, countries jsonb,
                 region text, data_kind text, data_bytes bigint, data_sort_bytes bigint,
                 validity_days integer, price_amount text, price_currency text,
                 networks jsonb, supports_topup boolean, offer_count integer)
             ON CONFLICT (livemode, id) DO UPDATE SET name = EXCLUDED.name, region = EXCLUDED.region,
                 price_amount = EXCLUDED.price_amount, price_currency = EXCLUDED.price_currency,
                 networks = EXCLUDED.networks, supports_topup = EXCLUDED.supports_topup,
                 offer_count = EXCLUDED.offer_count, active = true, updated_at = now()
             -- Unchanged plans are not rewritten: no dead rows, no index churn per sync.
             WHERE (p.name, p.region, p.price_amount, p.price_currency, p.networks,
                    p.supports_topup, p.offer_count, p.active)
                IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.region, EXCLUDED.price_amount,
                    EXCLUDED.price_currency, EXCLUDED.networks, EXCLUDED.supports_topup,
                    EXCLUDED.offer_count, true)",
        )
        .bind(sqlx::types::Json(json))
        .bind(livemode)
        .execute(&mut *tx)
        .await?;
    }
    let ids: Vec<&str> = rows.iter().map(|p| p.id.as_str()).collect();
    sqlx::query(
        "UPDATE plans SET active = false, updated_at = now()
         WHERE active AND id <> ALL($1) AND livemode = $2",
    )
    .bind(&ids)
    .bind(livemode)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PlanRecord {
    pub livemode: bool,
    pub id: String,
    pub name: String,
    pub countries: Vec<String>,
    pub region: Option<String>,
    pub data_kind: String,
    pub data_bytes: Option<i64>,
    pub data_sort_bytes: i64,
    pub validity_days: i32,
    pub price_amount: Decimal,
    pub price_currency: String,
    pub networks: sqlx::types::Json<Vec<crate::vendors::Network>>,
    pub supports_topup: bool,
    pub offer_count: i32,
    pub active: bool,
    pub updated_at: DateTime<Utc>,
}

const PLAN_COLUMNS: &str =
    "livemode, id, name, countries, region, data_kind, data_bytes, data_sort_bytes,
    validity_days, price_amount, price_currency, networks, supports_topup, offer_count, active,
    updated_at";

/// A plan of one mode by id, active or not (orders keep pointing at deactivated plans).
pub async fn get(pool: &PgPool, livemode: bool, id: &str) -> sqlx::Result<Option<PlanRecord>> {
    sqlx::query_as(&format!(
        "SELECT {PLAN_COLUMNS} FROM plans WHERE id = $1 AND livemode = $2"
    ))
    .bind(id)
    .bind(livemode)
    .fetch_optional(pool)
    .await
}

/// Where each replica's in-memory caches stand (`cache_versions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheVersions {
    pub plans: i64,
    pub api_keys: i64,
    pub offers: i64,
}

pub async fn cache_versions(pool: &PgPool) -> sqlx::Result<CacheVersions> {
    let rows: Vec<(String, i64)> = sqlx::query_as("SELECT name, version FROM cache_versions")
        .fetch_all(pool)
        .await?;
    let get = |name: &str| rows.iter().find(|(n, _)| n == name).map_or(0, |(_, v)| *v);
    Ok(CacheVersions {
        plans: get("plans"),
        api_keys: get("api_keys"),
        offers: get("offers"),
    })
}

/// Every active plan of both modes and the `plans` version they are at, read in one snapshot.
pub async fn load_active(pool: &PgPool) -> sqlx::Result<(i64, Vec<PlanRecord>)> {
    let mut tx = super::begin(pool).await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let version: i64 =
        sqlx::query_scalar("SELECT version FROM cache_versions WHERE name = 'plans'")
            .fetch_one(&mut *tx)
            .await?;
    let plans = sqlx::query_as(&format!(
        "SELECT {PLAN_COLUMNS} FROM plans WHERE active ORDER BY livemode, id"
    ))
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((version, plans))
}
