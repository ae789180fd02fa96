//! eSIM usage: served from the database, refreshed from the vendor when older than
//! `USAGE_MAX_AGE`.

use chrono::Utc;

use super::{Ctx, purchase::esim_status_str};
use crate::{
    store::{
        self,
        esims::{EsimRow, UsageUpdate},
    },
    vendors::{EsimRef, VendorId},
};

/// Refreshes the eSIM's usage when stale and returns the row to serve. A vendor failure is
/// logged and the stored (older) figures are served with their timestamp.
pub async fn refreshed(ctx: &Ctx, esim: EsimRow) -> sqlx::Result<EsimRow> {
    let fresh = esim.usage_updated_at.is_some_and(|t| {
        Utc::now()
            .signed_duration_since(t)
            .to_std()
            .unwrap_or_default()
            < ctx.usage_max_age
    });
    if fresh {
        return Ok(esim);
    }
    let Some(adapter) = esim
        .vendor
        .parse::<VendorId>()
        .ok()
        .and_then(|v| ctx.vendors.adapter(v))
    else {
        return Ok(esim);
    };
    let r = EsimRef {
        iccid: esim.iccid.clone(),
        vendor_esim_ref: esim.vendor_esim_ref.clone(),
        vendor_reference: esim.vendor_reference.clone(),
    };
    match adapter.usage(&r).await {
        Ok(u) => {
            store::esims::update_usage(
                &ctx.pool,
                &esim.iccid,
                &UsageUpdate {
                    used_bytes: i64::try_from(u.used_bytes).unwrap_or(i64::MAX),
                    total_bytes: u.total_bytes.map(|b| i64::try_from(b).unwrap_or(i64::MAX)),
                    unlimited: u.unlimited,
                    status: u.status.map(esim_status_str),
                    activated_at: u.activated_at,
                    expires_at: u.expires_at,
                },
            )
            .await?;
            Ok(store::esims::get(&ctx.pool, &esim.iccid)
                .await?
                .unwrap_or(esim))
        }
        Err(e) => {
            tracing::warn!(iccid = %esim.iccid, vendor = %esim.vendor, error = %e, "usage refresh failed; serving stored figures");
            Ok(esim)
        }
    }
}
