//! Cancelling an unused order through its vendor's cancel/refund, where one exists.

use super::Ctx;
use crate::{
    error::{ApiError, ApiResult},
    store::{self, orders::OrderRow},
    vendors::{CancelOutcome, EsimRef, RejectKind, VendorError, VendorId, VendorOrderRef},
};

fn not_cancellable(why: impl Into<String>) -> ApiError {
    ApiError::conflict("order_not_cancellable", why.into())
}

/// Cancels a completed new-eSIM order whose eSIMs are unused. The vendor decides; its answer
/// is recorded on the order.
pub async fn cancel(ctx: &Ctx, order: &OrderRow) -> ApiResult<()> {
    if order.kind != "new" || order.status != "completed" {
        return Err(not_cancellable(format!(
            "only completed eSIM orders can be cancelled (this one is {} {})",
            order.kind, order.status
        )));
    }
    let vendor: VendorId = order
        .vendor
        .as_deref()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("completed order without a vendor"))?;
    let adapter = ctx.vendors.adapter(vendor).ok_or_else(|| {
        ApiError::unavailable("vendor_disabled", "the order's vendor is not enabled")
    })?;
    let esims = store::esims::for_order(&ctx.pool, &order.id).await?;
    if esims.iter().any(|e| e.status != "ready") {
        return Err(not_cancellable(
            "an eSIM of this order has been installed or used",
        ));
    }
    let refs: Vec<EsimRef> = esims
        .iter()
        .map(|e| EsimRef {
            iccid: e.iccid.clone(),
            vendor_esim_ref: e.vendor_esim_ref.clone(),
            vendor_reference: e.vendor_reference.clone(),
        })
        .collect();
    let r = VendorOrderRef::new(order.id.clone(), order.created_at)
        .with_vendor_reference(order.vendor_reference.clone());
    let note = match adapter.cancel(&r, &refs).await {
        Ok(CancelOutcome::Refunded { amount: Some(m) }) => {
            format!("cancelled by {vendor}; refunded {m}")
        }
        Ok(CancelOutcome::Refunded { amount: None }) => format!("cancelled by {vendor}; refunded"),
        Ok(CancelOutcome::CancelledWithoutRefund) => format!("cancelled by {vendor}; no refund"),
        Err(VendorError::Unsupported) => {
            return Err(not_cancellable(format!(
                "{} does not support cancellation",
                vendor.display_name()
            )));
        }
        Err(VendorError::Rejected {
            kind: RejectKind::NotAllowed | RejectKind::NotFound,
            message,
            ..
        }) => {
            return Err(not_cancellable(format!("the vendor refused: {message}")));
        }
        Err(e) => {
            return Err(ApiError::bad_gateway(
                "vendor_error",
                format!("the vendor could not be asked to cancel: {e}"),
            ));
        }
    };
    if super::events::cancel_order(&ctx.pool, &order.id, &note).await? {
        tracing::info!(order_id = %order.id, %vendor, "order cancelled");
    }
    Ok(())
}
