//! Rows written before test mode existed belonged to the mode the deployment ran in. The
//! migration left them in test mode (the safe default) and noted in `mode_adoption` that
//! they exist; the first start after it moves them to live mode if it has live vendors.

use sqlx::PgPool;

/// The tables with a `livemode` column.
const TABLES: &[&str] = &[
    "storefront_api_keys",
    "vendor_offers",
    "plans",
    "orders",
    "esims",
    "outbox",
    "vendor_events",
    "vendor_sync_state",
    "vendor_breakers",
    "vendor_balances",
    "operator_alerts",
];

/// Once per database: with `deployment_live`, every row from before the migration becomes
/// live; otherwise they stay test. Returns how many rows were moved. Concurrent starts are
/// serialized by the row lock on `mode_adoption`; later starts find nothing pending.
pub async fn adopt_legacy(pool: &PgPool, deployment_live: bool) -> sqlx::Result<u64> {
    let mut tx = super::begin(pool).await?;
    let pending = sqlx::query("DELETE FROM mode_adoption WHERE pending")
        .execute(&mut *tx)
        .await?
        .rows_affected()
        > 0;
    let mut adopted = 0;
    if pending && deployment_live {
        for table in TABLES {
            // Table names come from the constant list above, never from input.
            let sql = format!("UPDATE {table} SET livemode = true WHERE NOT livemode");
            adopted += sqlx::query(&sql).execute(&mut *tx).await?.rows_affected();
        }
    }
    tx.commit().await?;
    Ok(adopted)
}
