//! `vendor_offers` and `vendor_sync_state`: what each vendor sells, and how its last
//! catalogue sync went.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::{PgConnection, PgPool, Row};

use crate::{
    domain::{data::DataKind, money::Currency, plan::PlanKey},
    vendors::VendorId,
};

/// One active, sellable offer as routing ranks it (`routing::rank`).
#[derive(Debug, Clone, PartialEq)]
pub struct RoutableOffer {
    pub offer_id: i64,
    pub vendor: VendorId,
    pub sku: String,
    /// Sorted ISO alpha-2; shared, since an order clones every candidate it ranks.
    pub countries: std::sync::Arc<[String]>,
    pub kind: DataKind,
    /// Marketed bytes (per day when daily); `None` when unlimited.
    pub bytes: Option<u64>,
    pub validity_days: u32,
    pub cost_amount: Decimal,
    pub cost_currency: Currency,
}

/// One active, sellable, new-eSIM offer as the plan builder needs it.
#[derive(Debug, Clone)]
pub struct SellableOffer {
    pub routable: RoutableOffer,
    pub region_label: Option<String>,
    pub networks: serde_json::Value,
    pub supports_topup: bool,
}

/// One offer row to write, already normalized.
#[derive(Debug, Clone, Serialize)]
pub struct OfferUpsert {
    pub sku: String,
    pub name: String,
    pub countries: Vec<String>,
    pub region_label: Option<String>,
    pub data_kind: Option<&'static str>,
    pub data_bytes: Option<i64>,
    pub marketed_bytes: Option<i64>,
    pub validity_days: Option<i32>,
    /// Decimal as a string so no float ever touches it.
    pub cost_amount: String,
    pub cost_currency: String,
    pub networks: serde_json::Value,
    pub supports_topup: bool,
    pub is_topup: bool,
    pub plan_id: Option<String>,
    pub flags: Vec<String>,
    pub raw: serde_json::Value,
    pub active: bool,
}

pub fn kind_str(kind: DataKind) -> &'static str {
    match kind {
        DataKind::Total => "total",
        DataKind::Daily => "daily",
        DataKind::Unlimited => "unlimited",
    }
}

pub fn parse_kind(s: &str) -> Option<DataKind> {
    match s {
        "total" => Some(DataKind::Total),
        "daily" => Some(DataKind::Daily),
        "unlimited" => Some(DataKind::Unlimited),
        _ => None,
    }
}

const UPSERT_CHUNK: usize = 1000;

/// Writes a vendor's whole catalogue as seen at `seen_at` (offers as they were are only
/// marked seen), then marks every offer of that vendor not seen in it inactive. Rows are
/// never deleted: orders reference them.
pub async fn replace_vendor_catalogue(
    pool: &PgPool,
    livemode: bool,
    vendor: VendorId,
    offers: &[OfferUpsert],
    seen_at: DateTime<Utc>,
) -> sqlx::Result<CatalogueChange> {
    let mut tx = super::begin(pool).await?;
    let mut written = 0;
    for chunk in offers.chunks(UPSERT_CHUNK) {
        written += sqlx::query(
            "INSERT INTO vendor_offers AS o (livemode, vendor, sku, name, countries, region_label, data_kind,
                 data_bytes, marketed_bytes, validity_days, cost_amount, cost_currency, networks,
                 supports_topup, is_topup, plan_id, flags, raw, active, first_seen_at, last_seen_at)
             SELECT $4, $1, r.sku, r.name, ARRAY(SELECT jsonb_array_elements_text(r.countries)),
                 r.region_label, r.data_kind, r.data_bytes, r.marketed_bytes, r.validity_days,
                 r.cost_amount::numeric, r.cost_currency, r.networks, r.supports_topup,
                 r.is_topup, r.plan_id, ARRAY(SELECT jsonb_array_elements_text(r.flags)), r.raw,
                 r.active, $3, $3
             FROM jsonb_to_recordset($2) AS r(sku text, name text, countries jsonb,
                 region_label text, data_kind text, data_bytes bigint, marketed_bytes bigint,
                 validity_days integer, cost_amount text, cost_currency text, networks jsonb,
                 supports_topup boolean, is_topup boolean, plan_id text, flags jsonb, raw jsonb,
                 active boolean)
             ON CONFLICT (livemode, vendor, sku) DO UPDATE SET
                 name = EXCLUDED.name, countries = EXCLUDED.countries,
                 region_label = EXCLUDED.region_label, data_kind = EXCLUDED.data_kind,
                 data_bytes = EXCLUDED.data_bytes, marketed_bytes = EXCLUDED.marketed_bytes,
                 validity_days = EXCLUDED.validity_days, cost_amount = EXCLUDED.cost_amount,
                 cost_currency = EXCLUDED.cost_currency, networks = EXCLUDED.networks,
                 supports_topup = EXCLUDED.supports_topup, is_topup = EXCLUDED.is_topup,
                 plan_id = EXCLUDED.plan_id, flags = EXCLUDED.flags, raw = EXCLUDED.raw,
                 active = EXCLUDED.active, last_seen_at = EXCLUDED.last_seen_at
             -- An offer as it was is only marked seen (below): what a sync changed is
             -- counted, and a sync that changed nothing needs no plan rebuild.
             WHERE (o.name, o.countries, o.region_label, o.data_kind, o.data_bytes,
                    o.marketed_bytes, o.validity_days, o.cost_amount, o.cost_currency,
                    o.networks, o.supports_topup, o.is_topup, o.plan_id, o.flags, o.raw,
                    o.active)
                IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.countries, EXCLUDED.region_label,
                    EXCLUDED.data_kind, EXCLUDED.data_bytes, EXCLUDED.marketed_bytes,
                    EXCLUDED.validity_days, EXCLUDED.cost_amount, EXCLUDED.cost_currency,
                    EXCLUDED.networks, EXCLUDED.supports_topup, EXCLUDED.is_topup,
                    EXCLUDED.plan_id, EXCLUDED.flags, EXCLUDED.raw, EXCLUDED.active)",
        )
        .bind(vendor.as_str())
        .bind(sqlx::types::Json(chunk))
        .bind(seen_at)
        .bind(livemode)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    }
    let skus: Vec<&str> = offers.iter().map(|o| o.sku.as_str()).collect();
    sqlx::query(
        "UPDATE vendor_offers SET last_seen_at = $3
         WHERE vendor = $1 AND sku = ANY($2) AND last_seen_at < $3 AND livemode = $4",
    )
    .bind(vendor.as_str())
    .bind(&skus)
    .bind(seen_at)
    .bind(livemode)
    .execute(&mut *tx)
    .await?;
    let gone = sqlx::query(
        "UPDATE vendor_offers SET active = false
         WHERE vendor = $1 AND active AND last_seen_at < $2 AND livemode = $3",
    )
    .bind(vendor.as_str())
    .bind(seen_at)
    .bind(livemode)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(CatalogueChange {
        written,
        deactivated: gone,
    })
}

/// What [`replace_vendor_catalogue`] changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatalogueChange {
    /// Offers new or different from the stored ones.
    pub written: u64,
    /// Offers the vendor no longer lists, now inactive.
    pub deactivated: u64,
}

impl CatalogueChange {
    pub fn is_none(&self) -> bool {
        self.written == 0 && self.deactivated == 0
    }
}

const SELLABLE: &str = "active AND plan_id IS NOT NULL AND flags = '{}' AND NOT is_topup";

fn routable_from_row(row: &sqlx::postgres::PgRow) -> sqlx::Result<Option<RoutableOffer>> {
    let vendor: String = row.try_get("vendor")?;
    let kind: String = row.try_get("data_kind")?;
    let currency: String = row.try_get("cost_currency")?;
    let (Ok(vendor), Some(kind), Ok(currency)) = (
        vendor.parse::<VendorId>(),
        parse_kind(&kind),
        currency.parse::<Currency>(),
    ) else {
        return Ok(None);
    };
    let bytes: Option<i64> = row.try_get("marketed_bytes")?;
    let days: i32 = row.try_get("validity_days")?;
    Ok(Some(RoutableOffer {
        offer_id: row.try_get("id")?,
        vendor,
        sku: row.try_get("sku")?,
        countries: row.try_get::<Vec<String>, _>("countries")?.into(),
        kind,
        bytes: bytes.map(|b| b as u64),
        validity_days: days as u32,
        cost_amount: row.try_get::<Decimal, _>("cost_amount")?.normalize(),
        cost_currency: currency,
    }))
}

/// Every active, sellable, new-eSIM offer of the given vendors in one mode.
pub async fn load_sellable<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    livemode: bool,
    vendors: &[VendorId],
) -> sqlx::Result<Vec<SellableOffer>> {
    let names: Vec<&str> = vendors.iter().map(|v| v.as_str()).collect();
    let rows = sqlx::query(&format!(
        "SELECT id, vendor, sku, countries, data_kind, marketed_bytes, validity_days,
                cost_amount, cost_currency, region_label, networks, supports_topup
         FROM vendor_offers WHERE {SELLABLE} AND vendor = ANY($1) AND livemode = $2"
    ))
    .bind(&names)
    .bind(livemode)
    .fetch_all(ex)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        if let Some(routable) = routable_from_row(row)? {
            out.push(SellableOffer {
                routable,
                region_label: row.try_get("region_label")?,
                networks: row.try_get("networks")?,
                supports_topup: row.try_get("supports_topup")?,
            });
        }
    }
    Ok(out)
}

/// An offer that can fill a plan, with what admins want to see about it.
#[derive(Debug, Clone)]
pub struct OfferDetail {
    pub routable: RoutableOffer,
    pub name: String,
    pub region_label: Option<String>,
    pub data_bytes: Option<i64>,
    pub supports_topup: bool,
    pub last_seen_at: DateTime<Utc>,
}

/// Active sellable offers of the given vendors that satisfy `key` (coverage ⊇, same kind,
/// data ≥, days ≥). Unordered: ranking is `routing::rank`'s job. The vendors are filtered
/// here, not in SQL: a `vendor = ANY` condition made the planner AND the countries index
/// with the per-vendor one (all 50,000 offers) and cost the order path up to 20 ms.
pub async fn candidates(
    pool: &PgPool,
    key: &PlanKey,
    livemode: bool,
    vendors: &[VendorId],
) -> sqlx::Result<Vec<OfferDetail>> {
    let names: Vec<&str> = vendors.iter().map(|v| v.as_str()).collect();
    let rows = sqlx::query(&format!(
        "SELECT id, vendor, sku, name, countries, data_kind, data_bytes, marketed_bytes,
                validity_days, cost_amount, cost_currency, region_label, supports_topup,
                last_seen_at, livemode
         FROM vendor_offers
         WHERE {SELLABLE} AND countries @> $1 AND data_kind = $2
           AND validity_days >= $3 AND ($4::bigint IS NULL OR marketed_bytes >= $4)"
    ))
    .bind(&key.countries)
    .bind(kind_str(key.kind))
    .bind(key.validity_days as i32)
    .bind(key.bytes.map(|b| b as i64))
    .fetch_all(pool)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        // The mode is filtered here too, for the planner reason above.
        if let Some(routable) = routable_from_row(row)?
            && names.contains(&routable.vendor.as_str())
            && row.try_get::<bool, _>("livemode")? == livemode
        {
            out.push(OfferDetail {
                routable,
                name: row.try_get("name")?,
                region_label: row.try_get("region_label")?,
                data_bytes: row.try_get("data_bytes")?,
                supports_topup: row.try_get("supports_topup")?,
                last_seen_at: row.try_get("last_seen_at")?,
            });
        }
    }
    Ok(out)
}

/// Advisory-lock key per vendor and mode: a fixed namespace plus the vendor's index (live
/// vendors 0x100 above the simulators).
fn sync_lock_key(livemode: bool, vendor: VendorId) -> i64 {
    let index = VendorId::ALL.iter().position(|v| *v == vendor).unwrap_or(0) as i64;
    0x7379_6e63_0000 + index + if livemode { 0x100 } else { 0 } // "sync"
}

/// Takes the vendor's sync lock on `conn` unless another session holds it. The lock is the
/// connection's: it ends with [`unlock_sync`] or with the connection (a crashed replica).
pub async fn try_lock_sync(
    conn: &mut PgConnection,
    livemode: bool,
    vendor: VendorId,
) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(sync_lock_key(livemode, vendor))
        .fetch_one(conn)
        .await
}

pub async fn unlock_sync(
    conn: &mut PgConnection,
    livemode: bool,
    vendor: VendorId,
) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(sync_lock_key(livemode, vendor))
        .execute(conn)
        .await?;
    Ok(())
}

/// Per-vendor sync bookkeeping as shown in `/admin/vendors`.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct SyncState {
    pub livemode: bool,
    pub vendor: String,
    pub last_started_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    pub offer_count: i32,
    pub unparsed_count: i32,
    pub last_duration_ms: Option<i64>,
}

pub async fn sync_started(pool: &PgPool, livemode: bool, vendor: VendorId) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO vendor_sync_state (livemode, vendor, last_started_at) VALUES ($2, $1, now())
         ON CONFLICT (livemode, vendor) DO UPDATE SET last_started_at = now()",
    )
    .bind(vendor.as_str())
    .bind(livemode)
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn sync_succeeded(
    pool: &PgPool,
    livemode: bool,
    vendor: VendorId,
    offer_count: i32,
    unparsed_count: i32,
    duration_ms: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO vendor_sync_state (livemode, vendor, last_success_at, offer_count,
             unparsed_count, last_duration_ms, last_error, last_error_at)
         VALUES ($5, $1, now(), $2, $3, $4, NULL, NULL)
         ON CONFLICT (livemode, vendor) DO UPDATE SET last_success_at = now(), offer_count = $2,
             unparsed_count = $3, last_duration_ms = $4, last_error = NULL, last_error_at = NULL",
    )
    .bind(vendor.as_str())
    .bind(offer_count)
    .bind(unparsed_count)
    .bind(duration_ms)
    .bind(livemode)
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn sync_failed(
    pool: &PgPool,
    livemode: bool,
    vendor: VendorId,
    error: &str,
    duration_ms: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO vendor_sync_state (livemode, vendor, last_error, last_error_at,
             last_duration_ms)
         VALUES ($4, $1, $2, now(), $3)
         ON CONFLICT (livemode, vendor) DO UPDATE SET last_error = $2, last_error_at = now(),
             last_duration_ms = $3",
    )
    .bind(vendor.as_str())
    .bind(error)
    .bind(duration_ms)
    .bind(livemode)
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn sync_states(pool: &PgPool) -> sqlx::Result<Vec<SyncState>> {
    sqlx::query_as("SELECT * FROM vendor_sync_state ORDER BY livemode DESC, vendor")
        .fetch_all(pool)
        .await
}

/// Active offers per mode and vendor (for `/admin/vendors`).
pub async fn active_counts(pool: &PgPool) -> sqlx::Result<Vec<(bool, String, i64)>> {
    sqlx::query_as(
        "SELECT livemode, vendor, count(*) FROM vendor_offers WHERE active
         GROUP BY 1, 2 ORDER BY 1 DESC, 2",
    )
    .fetch_all(pool)
    .await
}

/// A vendor's active offers that can be added to one of its existing eSIMs and cover all of
/// `countries`, with their plan ids. With `skus`, only those (the vendor named them for this
/// eSIM, whatever its catalogue flags say); without, those the catalogue marks as top-ups.
pub async fn topup_offers(
    pool: &PgPool,
    livemode: bool,
    vendor: VendorId,
    countries: &[String],
    skus: Option<&[String]>,
) -> sqlx::Result<Vec<(String, OfferDetail)>> {
    let rows = sqlx::query(
        "SELECT id, vendor, sku, name, countries, data_kind, data_bytes, marketed_bytes,
                validity_days, cost_amount, cost_currency, region_label, supports_topup,
                last_seen_at, plan_id
         FROM vendor_offers
         WHERE active AND vendor = $1 AND flags = '{}' AND plan_id IS NOT NULL AND livemode = $4
           AND countries @> $2
           AND CASE WHEN $3::text[] IS NULL THEN is_topup OR supports_topup
                    ELSE sku = ANY($3) END",
    )
    .bind(vendor.as_str())
    .bind(countries)
    .bind(skus)
    .bind(livemode)
    .fetch_all(pool)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        if let Some(routable) = routable_from_row(row)? {
            out.push((
                row.try_get("plan_id")?,
                OfferDetail {
                    routable,
                    name: row.try_get("name")?,
                    region_label: row.try_get("region_label")?,
                    data_bytes: row.try_get("data_bytes")?,
                    supports_topup: row.try_get("supports_topup")?,
                    last_seen_at: row.try_get("last_seen_at")?,
                },
            ));
        }
    }
    Ok(out)
}
