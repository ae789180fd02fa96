//! `esims`: every issued eSIM, its activation data and last known usage.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor, PgPool};

use crate::domain::esim::EsimState;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EsimRow {
    pub iccid: String,
    pub order_id: String,
    pub storefront_id: String,
    /// Its order's mode.
    pub livemode: bool,
    pub vendor: String,
    pub vendor_reference: Option<String>,
    pub vendor_esim_ref: Option<String>,
    pub plan_id: String,
    pub status: EsimState,
    pub lpa: Option<String>,
    pub smdp_address: Option<String>,
    pub matching_id: Option<String>,
    pub ios_install_url: Option<String>,
    pub android_install_url: Option<String>,
    pub used_bytes: Option<i64>,
    pub total_bytes: Option<i64>,
    pub unlimited: bool,
    pub activated_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub usage_updated_at: Option<DateTime<Utc>>,
    pub usage_measured_at: Option<DateTime<Utc>>,
    pub usage_bundle: i32,
    pub thresholds_fired: Vec<i16>,
    pub status_changed_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub struct NewEsim<'a> {
    pub iccid: &'a str,
    pub order_id: &'a str,
    pub storefront_id: &'a str,
    pub livemode: bool,
    pub vendor: &'a str,
    pub vendor_reference: Option<&'a str>,
    pub vendor_esim_ref: Option<&'a str>,
    pub plan_id: &'a str,
    pub status: EsimState,
    pub lpa: &'a str,
    pub smdp_address: &'a str,
    pub matching_id: &'a str,
    pub expires_at: Option<DateTime<Utc>>,
    pub total_bytes: Option<i64>,
    pub unlimited: bool,
}

/// Stores an issued eSIM once; the same ICCID delivered again (callback after poll, or the
/// other way round) changes nothing. Returns the stored row when it was new.
pub async fn insert(conn: &mut PgConnection, e: &NewEsim<'_>) -> sqlx::Result<Option<EsimRow>> {
    sqlx::query_as(
        "INSERT INTO esims (iccid, order_id, storefront_id, vendor, vendor_reference,
             vendor_esim_ref, plan_id, status, lpa, smdp_address, matching_id, expires_at,
             total_bytes, unlimited, status_changed_at, livemode)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
             -- No vendor status fact applied yet: any dated event is newer.
             to_timestamp(0), $15)
         ON CONFLICT (iccid) DO NOTHING
         RETURNING *",
    )
    .bind(e.iccid)
    .bind(e.order_id)
    .bind(e.storefront_id)
    .bind(e.vendor)
    .bind(e.vendor_reference)
    .bind(e.vendor_esim_ref)
    .bind(e.plan_id)
    .bind(e.status)
    .bind(e.lpa)
    .bind(e.smdp_address)
    .bind(e.matching_id)
    .bind(e.expires_at)
    .bind(e.total_bytes)
    .bind(e.unlimited)
    .bind(e.livemode)
    .fetch_optional(&mut *conn)
    .await
}

pub async fn for_order<'e>(ex: impl PgExecutor<'e>, order_id: &str) -> sqlx::Result<Vec<EsimRow>> {
    sqlx::query_as("SELECT * FROM esims WHERE order_id = $1 ORDER BY created_at, iccid")
        .bind(order_id)
        .fetch_all(ex)
        .await
}

/// All of an order's eSIMs: `known` when the caller has them all already (read or stored
/// in its transaction), else read.
pub async fn all_of<'a>(
    conn: &mut PgConnection,
    order_id: &str,
    known: Option<&'a [EsimRow]>,
) -> sqlx::Result<std::borrow::Cow<'a, [EsimRow]>> {
    Ok(match known {
        Some(all) => std::borrow::Cow::Borrowed(all),
        None => std::borrow::Cow::Owned(for_order(&mut *conn, order_id).await?),
    })
}

pub async fn for_orders(pool: &PgPool, order_ids: &[String]) -> sqlx::Result<Vec<EsimRow>> {
    sqlx::query_as("SELECT * FROM esims WHERE order_id = ANY($1) ORDER BY created_at, iccid")
        .bind(order_ids)
        .fetch_all(pool)
        .await
}

/// An eSIM only if it belongs to this storefront and mode.
pub async fn get_for(
    pool: &PgPool,
    storefront_id: &str,
    livemode: bool,
    iccid: &str,
) -> sqlx::Result<Option<EsimRow>> {
    sqlx::query_as("SELECT * FROM esims WHERE iccid = $1 AND storefront_id = $2 AND livemode = $3")
        .bind(iccid)
        .bind(storefront_id)
        .bind(livemode)
        .fetch_optional(pool)
        .await
}

pub async fn get<'e>(ex: impl PgExecutor<'e>, iccid: &str) -> sqlx::Result<Option<EsimRow>> {
    sqlx::query_as("SELECT * FROM esims WHERE iccid = $1")
        .bind(iccid)
        .fetch_optional(ex)
        .await
}

/// The row locked for this transaction: status and usage changes are decided on it.
pub async fn lock(conn: &mut PgConnection, iccid: &str) -> sqlx::Result<Option<EsimRow>> {
    sqlx::query_as("SELECT * FROM esims WHERE iccid = $1 FOR UPDATE")
        .bind(iccid)
        .fetch_optional(&mut *conn)
        .await
}

/// One usage reading of an eSIM, as a vendor reported it.
#[derive(Debug, Clone, Default)]
pub struct Reading {
    pub used_bytes: i64,
    pub total_bytes: Option<i64>,
    pub unlimited: Option<bool>,
    /// The vendor's own measurement time, when it gives one.
    pub measured_at: Option<DateTime<Utc>>,
    pub status: Option<EsimState>,
    pub activated_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    /// A threshold the vendor itself says was crossed.
    pub vendor_threshold: Option<u8>,
}

/// Writes a usage reading the caller found newer than the stored one.
pub async fn write_usage(conn: &mut PgConnection, iccid: &str, r: &Reading) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE esims SET used_bytes = $2, total_bytes = coalesce($3, total_bytes),
             unlimited = coalesce($4, unlimited), usage_measured_at = coalesce($5, usage_measured_at),
             activated_at = coalesce($6, activated_at), expires_at = coalesce($7, expires_at),
             usage_updated_at = now(), updated_at = now()
         WHERE iccid = $1",
    )
    .bind(iccid)
    .bind(r.used_bytes)
    .bind(r.total_bytes)
    .bind(r.unlimited)
    .bind(r.measured_at)
    .bind(r.activated_at)
    .bind(r.expires_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Records that a usage threshold fired for the eSIM's current bundle; `false` when it
/// already had.
pub async fn mark_threshold(
    conn: &mut PgConnection,
    iccid: &str,
    percent: u8,
) -> sqlx::Result<bool> {
    let n = sqlx::query(
        "UPDATE esims SET thresholds_fired = array_append(thresholds_fired, $2)
         WHERE iccid = $1 AND NOT ($2 = ANY(thresholds_fired))",
    )
    .bind(iccid)
    .bind(i16::from(percent))
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// A top-up completed: a new bundle starts, so the old bundle's figures no longer bound
/// the new ones and its thresholds may fire again. The next read asks the vendor.
pub async fn start_bundle(conn: &mut PgConnection, iccid: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE esims SET usage_bundle = usage_bundle + 1, thresholds_fired = '{}',
             used_bytes = NULL, usage_measured_at = NULL, usage_updated_at = NULL,
             updated_at = now()
         WHERE iccid = $1",
    )
    .bind(iccid)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Writes a status change the transition rule allowed.
pub async fn set_status(
    conn: &mut PgConnection,
    iccid: &str,
    status: EsimState,
    observed_at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE esims SET status = $2, status_changed_at = $3, updated_at = now()
         WHERE iccid = $1",
    )
    .bind(iccid)
    .bind(status)
    .bind(observed_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// ICCIDs of `vendor` stored for orders other than `order_id` since `since`: the eSIMs a
/// reconciliation must not attribute to `order_id` (they are already another order's).
pub async fn owned_by_others_since(
    pool: &PgPool,
    vendor: &str,
    order_id: &str,
    since: DateTime<Utc>,
) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT iccid FROM esims WHERE vendor = $1 AND order_id <> $2 AND created_at >= $3
         ORDER BY iccid",
    )
    .bind(vendor)
    .bind(order_id)
    .bind(since)
    .fetch_all(pool)
    .await
}
