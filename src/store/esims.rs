//! `esims`: every issued eSIM, its activation data and last known usage.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor, PgPool};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EsimRow {
    pub iccid: String,
    pub order_id: String,
    pub storefront_id: String,
    pub vendor: String,
    pub vendor_reference: Option<String>,
    pub vendor_esim_ref: Option<String>,
    pub plan_id: String,
    pub status: String,
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
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub struct NewEsim<'a> {
    pub iccid: &'a str,
    pub order_id: &'a str,
    pub storefront_id: &'a str,
    pub vendor: &'a str,
    pub vendor_reference: Option<&'a str>,
    pub vendor_esim_ref: Option<&'a str>,
    pub plan_id: &'a str,
    pub status: &'a str,
    pub lpa: &'a str,
    pub smdp_address: &'a str,
    pub matching_id: &'a str,
    pub expires_at: Option<DateTime<Utc>>,
    pub total_bytes: Option<i64>,
    pub unlimited: bool,
}

/// Stores an issued eSIM once; the same ICCID delivered again (callback after poll, or the
/// other way round) changes nothing. Returns whether it was new.
pub async fn insert(pool: &PgPool, e: &NewEsim<'_>) -> sqlx::Result<bool> {
    let n = sqlx::query(
        "INSERT INTO esims (iccid, order_id, storefront_id, vendor, vendor_reference,
             vendor_esim_ref, plan_id, status, lpa, smdp_address, matching_id, expires_at,
             total_bytes, unlimited, status_changed_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
             -- No vendor status fact applied yet: any dated event is newer.
             to_timestamp(0))
         ON CONFLICT (iccid) DO NOTHING",
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
    .execute(pool)
    .await?
    .rows_affected();
    Ok(n == 1)
}

pub async fn for_order<'e>(ex: impl PgExecutor<'e>, order_id: &str) -> sqlx::Result<Vec<EsimRow>> {
    sqlx::query_as("SELECT * FROM esims WHERE order_id = $1 ORDER BY created_at, iccid")
        .bind(order_id)
        .fetch_all(ex)
        .await
}

pub async fn for_orders(pool: &PgPool, order_ids: &[String]) -> sqlx::Result<Vec<EsimRow>> {
    sqlx::query_as("SELECT * FROM esims WHERE order_id = ANY($1) ORDER BY created_at, iccid")
        .bind(order_ids)
        .fetch_all(pool)
        .await
}

/// An eSIM only if it belongs to this storefront.
pub async fn get_for(
    pool: &PgPool,
    storefront_id: &str,
    iccid: &str,
) -> sqlx::Result<Option<EsimRow>> {
    sqlx::query_as("SELECT * FROM esims WHERE iccid = $1 AND storefront_id = $2")
        .bind(iccid)
        .bind(storefront_id)
        .fetch_optional(pool)
        .await
}

pub async fn get<'e>(ex: impl PgExecutor<'e>, iccid: &str) -> sqlx::Result<Option<EsimRow>> {
    sqlx::query_as("SELECT * FROM esims WHERE iccid = $1")
        .bind(iccid)
        .fetch_optional(ex)
        .await
}

pub struct UsageUpdate {
    pub used_bytes: i64,
    pub total_bytes: Option<i64>,
    pub unlimited: bool,
    pub status: Option<&'static str>,
    pub activated_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
}

pub async fn update_usage(pool: &PgPool, iccid: &str, u: &UsageUpdate) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE esims SET used_bytes = $2, total_bytes = coalesce($3, total_bytes),
             unlimited = $4, status = coalesce($5, status),
             activated_at = coalesce($6, activated_at), expires_at = coalesce($7, expires_at),
             usage_updated_at = now(), updated_at = now()
         WHERE iccid = $1",
    )
    .bind(iccid)
    .bind(u.used_bytes)
    .bind(u.total_bytes)
    .bind(u.unlimited)
    .bind(u.status)
    .bind(u.activated_at)
    .bind(u.expires_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// Applies a vendor status fact unless a newer one was already applied. Returns whether the
/// status changed.
pub async fn set_status(
    conn: &mut PgConnection,
    iccid: &str,
    status: &str,
    observed_at: DateTime<Utc>,
) -> sqlx::Result<bool> {
    let n = sqlx::query(
        "UPDATE esims SET status = $2, status_changed_at = $3, updated_at = now()
         WHERE iccid = $1 AND status <> $2 AND status_changed_at <= $3",
    )
    .bind(iccid)
    .bind(status)
    .bind(observed_at)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

pub async fn cancel_for_order(conn: &mut PgConnection, order_id: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE esims SET status = 'cancelled', status_changed_at = now(), updated_at = now()
         WHERE order_id = $1",
    )
    .bind(order_id)
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
