//! Rows written before test mode existed carry no mode (`livemode IS NULL`). At start the
//! gateway adopts them into the mode it runs in: a deployment with live vendors owned live
//! data, a sandbox deployment owned simulated data.

use sqlx::PgPool;

/// The tables whose `livemode` may still be NULL from before the migration.
const TABLES: &[&str] = &["storefront_api_keys"];

/// Sets `livemode` of every row without one to `livemode`, in one commit; returns how many
/// rows were adopted.
pub async fn adopt_legacy(pool: &PgPool, livemode: bool) -> sqlx::Result<u64> {
    let mut tx = pool.begin().await?;
    let mut adopted = 0;
    for table in TABLES {
        // Table names come from the constant list above, never from input.
        let sql = format!("UPDATE {table} SET livemode = $1 WHERE livemode IS NULL");
        adopted += sqlx::query(&sql)
            .bind(livemode)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    }
    tx.commit().await?;
    Ok(adopted)
}
