//! eSIM usage: served from the database, refreshed from the vendor when older than
//! `USAGE_MAX_AGE`.

use chrono::Utc;

use super::{
    Ctx,
    error::{OrderingError, OrderingResult},
    events::{self, Reading},
};
use crate::{
    domain::esim::EsimState,
    store::{self, esims::EsimRow},
    vendors::{EsimRef, EsimStatus, VendorId},
};

/// The storefront's eSIM, if it is one of theirs.
/// Another mode's eSIM reads as not found.
pub async fn own_esim(
    ctx: &Ctx,
    (storefront_id, livemode): (&str, bool),
    iccid: &str,
) -> OrderingResult<EsimRow> {
    store::esims::get_for(&ctx.pool, storefront_id, livemode, iccid)
        .await?
        .ok_or(OrderingError::EsimNotFound)
}

/// The storefront's eSIM with its usage refreshed when stale (see [`refreshed`]).
pub async fn current(ctx: &Ctx, owner: (&str, bool), iccid: &str) -> OrderingResult<EsimRow> {
    let esim = own_esim(ctx, owner, iccid).await?;
    Ok(refreshed(ctx, esim).await?)
}

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
        .and_then(|v| ctx.vendors(esim.livemode).adapter(v))
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
            let reading = Reading {
                used_bytes: i64::try_from(u.used_bytes).unwrap_or(i64::MAX),
                total_bytes: u.total_bytes.map(|b| i64::try_from(b).unwrap_or(i64::MAX)),
                unlimited: Some(u.unlimited),
                measured_at: u.updated_at,
                status: u.status.map(esim_state),
                activated_at: u.activated_at,
                expires_at: u.expires_at,
                vendor_threshold: None,
            };
            let mut tx = store::begin(&ctx.pool).await?;
            events::apply_usage(&mut tx, &esim.iccid, &reading, &ctx.usage_thresholds).await?;
            tx.commit().await?;
            Ok(store::esims::get(&ctx.pool, &esim.iccid)
                .await?
                .unwrap_or(esim))
        }
        // The vendor has no usage operation (e.g. Multiverse): the last known figures are
        // all there is, which is expected rather than a failure worth a warning.
        Err(crate::vendors::VendorError::Unsupported) => Ok(esim),
        Err(e) => {
            tracing::warn!(iccid = %esim.iccid, vendor = %esim.vendor, error = %e, "usage refresh failed; serving stored figures");
            Ok(esim)
        }
    }
}

/// The vendor layer's eSIM status as the domain's state.
pub fn esim_state(s: EsimStatus) -> EsimState {
    match s {
        EsimStatus::Ready => EsimState::Ready,
        EsimStatus::Installed => EsimState::Installed,
        EsimStatus::Active => EsimState::Active,
        EsimStatus::Depleted => EsimState::Depleted,
        EsimStatus::Expired => EsimState::Expired,
        EsimStatus::Cancelled => EsimState::Cancelled,
    }
}
