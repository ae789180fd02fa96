use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, Transaction};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StorefrontRow {
    pub id: String,
    pub name: String,
    pub webhook_url: Option<String>,
    pub test_webhook_url: Option<String>,
    pub created_at: DateTime<Utc>,
    pub active_keys: i64,
    pub active_test_keys: i64,
    pub active_live_keys: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyRow {
    pub id: String,
    pub storefront_id: String,
    pub key_hash: Vec<u8>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// Live or test key.
    pub livemode: bool,
}

async fn insert(
    tx: &mut Transaction<'_, Postgres>,
    id: &str,
    name: &str,
    urls: &WebhookUrls<'_>,
    webhook_secret: &str,
) -> sqlx::Result<DateTime<Utc>> {
    sqlx::query_scalar(
        "INSERT INTO storefronts (id, name, webhook_url, test_webhook_url, webhook_secret)
         VALUES ($1, $2, $3, $4, $5) RETURNING created_at",
    )
    .bind(id)
    .bind(name)
    .bind(urls.live)
    .bind(urls.test)
    .bind(webhook_secret)
    .fetch_one(&mut **tx)
    .await
}

async fn insert_key(
    tx: &mut Transaction<'_, Postgres>,
    storefront_id: &str,
    key: &NewKey<'_>,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO storefront_api_keys (id, storefront_id, lookup, key_hash, livemode)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(key.id)
    .bind(storefront_id)
    .bind(key.lookup)
    .bind(key.hash)
    .bind(key.livemode)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn exists(pool: &PgPool, id: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM storefronts WHERE id = $1)")
        .bind(id)
        .fetch_one(pool)
        .await
}

/// A storefront row with its active keys counted, per mode.
const WITH_KEY_COUNTS: &str =
    "SELECT s.id, s.name, s.webhook_url, s.test_webhook_url, s.created_at,
        count(k.id) FILTER (WHERE k.revoked_at IS NULL) AS active_keys,
        count(k.id) FILTER (WHERE k.revoked_at IS NULL AND NOT k.livemode) AS active_test_keys,
        count(k.id) FILTER (WHERE k.revoked_at IS NULL AND k.livemode) AS active_live_keys
    FROM storefronts s LEFT JOIN storefront_api_keys k ON k.storefront_id = s.id";

pub async fn get(pool: &PgPool, id: &str) -> sqlx::Result<Option<StorefrontRow>> {
    sqlx::query_as(&format!("{WITH_KEY_COUNTS} WHERE s.id = $1 GROUP BY s.id"))
        .bind(id)
        .fetch_optional(pool)
        .await
}

pub async fn list(pool: &PgPool) -> sqlx::Result<Vec<StorefrontRow>> {
    sqlx::query_as(&format!(
        "{WITH_KEY_COUNTS} GROUP BY s.id ORDER BY s.created_at, s.id"
    ))
    .fetch_all(pool)
    .await
}

pub async fn key_by_lookup(pool: &PgPool, lookup: &str) -> sqlx::Result<Option<KeyRow>> {
    sqlx::query_as(
        "SELECT id, storefront_id, key_hash, revoked_at, livemode
         FROM storefront_api_keys WHERE lookup = $1",
    )
    .bind(lookup)
    .fetch_optional(pool)
    .await
}

/// Revokes every active key of a storefront (of one mode, or of both with `None`) except
/// `keep`; returns how many were revoked.
async fn revoke_keys(
    tx: &mut Transaction<'_, Postgres>,
    storefront_id: &str,
    keep: Option<&str>,
    livemode: Option<bool>,
) -> sqlx::Result<u64> {
    let done = sqlx::query(
        "UPDATE storefront_api_keys SET revoked_at = now()
         WHERE storefront_id = $1 AND revoked_at IS NULL AND id IS DISTINCT FROM $2
           AND ($3::boolean IS NULL OR livemode = $3)",
    )
    .bind(storefront_id)
    .bind(keep)
    .bind(livemode)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}

/// A new API key as stored: its id, lookup prefix and hash (never the key itself).
pub struct NewKey<'a> {
    pub id: &'a str,
    pub lookup: &'a str,
    pub hash: &'a [u8],
    pub livemode: bool,
}

/// Where a storefront's events go: live-mode events to `live`, test-mode ones to `test`
/// when set (else `live`).
pub struct WebhookUrls<'a> {
    pub live: Option<&'a str>,
    pub test: Option<&'a str>,
}

/// A storefront and its first API keys (a test key and a live key), in one commit.
pub async fn create(
    pool: &PgPool,
    id: &str,
    name: &str,
    urls: &WebhookUrls<'_>,
    webhook_secret: &str,
    keys: &[NewKey<'_>],
) -> sqlx::Result<DateTime<Utc>> {
    let mut tx = super::begin(pool).await?;
    let created_at = insert(&mut tx, id, name, urls, webhook_secret).await?;
    for key in keys {
        insert_key(&mut tx, id, key).await?;
    }
    tx.commit().await?;
    Ok(created_at)
}

/// Adds an API key to a storefront and, with `revoke_others`, revokes every other one of the
/// same mode in the same commit (a rotation); returns how many were revoked.
pub async fn add_key(
    pool: &PgPool,
    storefront_id: &str,
    key: &NewKey<'_>,
    revoke_others: bool,
) -> sqlx::Result<u64> {
    let mut tx = super::begin(pool).await?;
    insert_key(&mut tx, storefront_id, key).await?;
    let revoked = if revoke_others {
        revoke_keys(&mut tx, storefront_id, Some(key.id), Some(key.livemode)).await?
    } else {
        0
    };
    tx.commit().await?;
    Ok(revoked)
}

/// Revokes every active API key of a storefront (of one mode, or all with `None`); returns
/// how many.
pub async fn revoke_all(
    pool: &PgPool,
    storefront_id: &str,
    livemode: Option<bool>,
) -> sqlx::Result<u64> {
    let mut tx = super::begin(pool).await?;
    let revoked = revoke_keys(&mut tx, storefront_id, None, livemode).await?;
    tx.commit().await?;
    Ok(revoked)
}

/// Records key uses collected off the request path: one statement for the whole batch;
/// a time never moves `last_used_at` backwards.
pub async fn record_key_use(
    pool: &PgPool,
    key_ids: &[String],
    used_at: &[DateTime<Utc>],
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE storefront_api_keys k SET last_used_at = u.at
         FROM unnest($1::text[], $2::timestamptz[]) AS u(id, at)
         WHERE k.id = u.id AND (k.last_used_at IS NULL OR k.last_used_at < u.at)",
    )
    .bind(key_ids)
    .bind(used_at)
    .execute(pool)
    .await?;
    Ok(())
}
