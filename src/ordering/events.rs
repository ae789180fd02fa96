//! The one transition function for orders and the one for eSIMs. Each checks the move
//! against the domain rule (`domain::order`, `domain::esim`), writes it and its storefront
//! event in the caller's transaction: no event without the change, no change without its
//! event, never backwards.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::view::{esim_view, order_view};
use crate::{
    domain::{esim::EsimState, order::OrderStatus},
    store::{self, esims::EsimRow, orders::OrderRow},
};

/// Queues `event_type` for `order` as it now is (the row its transition returned), with
/// its eSIMs (`esims` when the caller has read them all in this transaction).
async fn order_event(
    conn: &mut PgConnection,
    order: &OrderRow,
    event_type: &str,
    esims: Option<&[EsimRow]>,
) -> sqlx::Result<()> {
    let esims = store::esims::all_of(&mut *conn, &order.id, esims).await?;
    let data = serde_json::to_value(order_view(order, &esims)).unwrap_or_default();
    store::outbox::insert(
        conn,
        &order.storefront_id,
        order.livemode,
        event_type,
        &data,
    )
    .await?;
    Ok(())
}

/// Moves an order the caller has locked in this transaction (see
/// `store::orders::lock_fenced`) to `to`, with failure code and message for `failed` or a
/// note for `cancelled`, and queues its event; `esims`, when given, are all the order's
/// eSIMs as the caller read them in this transaction (else they are read for the event).
/// The order as it now is, or `None` when the move is not allowed from where the order is
/// (a late or repeated fact): nothing is written.
pub async fn transition_order(
    conn: &mut PgConnection,
    locked: &OrderRow,
    to: OrderStatus,
    detail: Option<(&str, &str)>,
    esims: Option<&[EsimRow]>,
) -> sqlx::Result<Option<OrderRow>> {
    let from = locked.status;
    match from.transition(to) {
        Ok(true) => {}
        Ok(false) => return Ok(None),
        Err(e) => {
            tracing::debug!(order_id = %locked.id, error = %e, "order transition refused");
            return Ok(None);
        }
    }
    let Some(now) = store::orders::set_status(&mut *conn, &locked.id, to, detail).await? else {
        return Ok(None);
    };
    if to == OrderStatus::Cancelled {
        for e in store::esims::for_order(&mut *conn, &locked.id).await? {
            transition_esim(&mut *conn, &e.iccid, EsimState::Cancelled, None).await?;
        }
    }
    if let Some(event) = to.event() {
        order_event(conn, &now, event, esims).await?;
    }
    if to == OrderStatus::Completed && locked.kind.starts_bundle() {
        if let Some(iccid) = &locked.target_iccid {
            // New data on the eSIM: a new bundle, whose usage and thresholds start afresh.
            store::esims::start_bundle(&mut *conn, iccid).await?;
        }
    }
    Ok(Some(now))
}

/// Applies a vendor fact about an eSIM's status, learned by callback or by polling.
/// `observed_at` is the vendor's own time of the fact when it gives one; without one the
/// fact counts as newest (arrival order). `esim.status_changed` when the status moved.
pub async fn transition_esim(
    conn: &mut PgConnection,
    iccid: &str,
    to: EsimState,
    observed_at: Option<DateTime<Utc>>,
) -> sqlx::Result<bool> {
    let Some(e) = store::esims::lock(&mut *conn, iccid).await? else {
        return Ok(false);
    };
    let from = e.status;
    let at = observed_at.unwrap_or_else(Utc::now);
    let newer = at >= e.status_changed_at;
    if !from.may_become(to, newer) {
        return Ok(false);
    }
    store::esims::set_status(&mut *conn, iccid, to, at.max(e.status_changed_at)).await?;
    esim_event(conn, iccid, "esim.status_changed", None).await?;
    Ok(true)
}

async fn esim_event(
    conn: &mut PgConnection,
    iccid: &str,
    event_type: &str,
    threshold: Option<u8>,
) -> sqlx::Result<()> {
    let Some(e) = store::esims::get(&mut *conn, iccid).await? else {
        return Ok(());
    };
    let mut data = serde_json::to_value(esim_view(&e)).unwrap_or_default();
    if let Some(t) = threshold {
        data["threshold_percent"] = serde_json::json!(t);
        data["used_bytes"] = serde_json::json!(e.used_bytes);
        data["total_bytes"] = serde_json::json!(e.total_bytes);
    }
    store::outbox::insert(conn, &e.storefront_id, e.livemode, event_type, &data).await?;
    Ok(())
}

pub use crate::store::esims::Reading;

/// Whether a reading may replace the stored one: never an older one. Vendor timestamps
/// decide where both readings have one; otherwise usage only grows within a bundle, so a
/// smaller figure is an older reading arriving late.
pub fn reading_is_newer(stored: &EsimRow, r: &Reading) -> bool {
    match (stored.usage_measured_at, r.measured_at) {
        (Some(old), Some(new)) => {
            new > old || (new == old && Some(r.used_bytes) > stored.used_bytes)
        }
        _ => stored.used_bytes.is_none_or(|old| r.used_bytes >= old),
    }
}

/// Applies a usage reading under the monotonic rule, then fires `esim.usage_threshold` for
/// every configured percentage it reaches that has not fired for this bundle yet. A
/// status in the reading goes through [`transition_esim`]. Returns whether the reading
/// was applied.
pub async fn apply_usage(
    conn: &mut PgConnection,
    iccid: &str,
    r: &Reading,
    thresholds: &[u8],
) -> sqlx::Result<bool> {
    let Some(e) = store::esims::lock(&mut *conn, iccid).await? else {
        return Ok(false);
    };
    let applied = reading_is_newer(&e, r);
    if applied {
        store::esims::write_usage(&mut *conn, iccid, r).await?;
        let e = store::esims::get(&mut *conn, iccid)
            .await?
            .unwrap_or(e.clone());
        let percent = match (e.used_bytes, e.total_bytes) {
            (Some(used), Some(total)) if total > 0 && !e.unlimited => {
                Some((i128::from(used) * 100 / i128::from(total)).clamp(0, 255) as u8)
            }
            _ => None,
        };
        let mut due: Vec<u8> = thresholds
            .iter()
            .copied()
            .filter(|t| percent.is_some_and(|p| p >= *t))
            .collect();
        // The vendor's own "threshold crossed" counts where it is one we announce (it may
        // know a total we do not).
        if let Some(t) = r.vendor_threshold.filter(|t| thresholds.contains(t)) {
            due.push(t);
        }
        due.sort_unstable();
        due.dedup();
        for t in due {
            if store::esims::mark_threshold(&mut *conn, iccid, t).await? {
                esim_event(&mut *conn, iccid, "esim.usage_threshold", Some(t)).await?;
            }
        }
    }
    if let (true, Some(status)) = (applied, r.status) {
        // A stale reading's status is stale too: only an applied reading's status counts.
        transition_esim(&mut *conn, iccid, status, r.measured_at).await?;
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn stored(used: Option<i64>, measured_at: Option<DateTime<Utc>>) -> EsimRow {
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        EsimRow {
            iccid: "8900000000000000001".into(),
            livemode: false,
            order_id: "ord_x".into(),
            storefront_id: "sf_x".into(),
            vendor: "esimfx".into(),
            vendor_reference: None,
            vendor_esim_ref: None,
            plan_id: "jp-1gb-7d".into(),
            status: EsimState::Active,
            lpa: None,
            smdp_address: None,
            matching_id: None,
            ios_install_url: None,
            android_install_url: None,
            used_bytes: used,
            total_bytes: Some(1000),
            unlimited: false,
            activated_at: None,
            expires_at: None,
            usage_updated_at: None,
            usage_measured_at: measured_at,
            usage_bundle: 1,
            thresholds_fired: vec![],
            status_changed_at: t,
            created_at: t,
            updated_at: t,
        }
    }

    fn reading(used: i64, measured_at: Option<DateTime<Utc>>) -> Reading {
        Reading {
            used_bytes: used,
            measured_at,
            ..Reading::default()
        }
    }

    #[test]
    fn vendor_times_decide_where_both_readings_have_one() {
        let t1 = Utc.with_ymd_and_hms(2026, 1, 1, 10, 0, 0).unwrap();
        let t2 = Utc.with_ymd_and_hms(2026, 1, 1, 11, 0, 0).unwrap();
        let s = stored(Some(400), Some(t2));
        assert!(
            !reading_is_newer(&s, &reading(100, Some(t1))),
            "older reading"
        );
        assert!(
            !reading_is_newer(&s, &reading(500, Some(t1))),
            "older, even if higher"
        );
        assert!(reading_is_newer(
            &s,
            &reading(450, Some(t2 + chrono::Duration::seconds(1)))
        ));
        assert!(
            !reading_is_newer(&s, &reading(400, Some(t2))),
            "the same reading again"
        );
    }

    #[test]
    fn without_vendor_times_usage_only_grows() {
        let s = stored(Some(400), None);
        assert!(!reading_is_newer(&s, &reading(100, None)));
        assert!(reading_is_newer(&s, &reading(400, None)));
        assert!(reading_is_newer(&s, &reading(401, None)));
        assert!(
            reading_is_newer(&stored(None, None), &reading(0, None)),
            "first reading"
        );
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 10, 0, 0).unwrap();
        assert!(!reading_is_newer(
            &stored(Some(400), Some(t)),
            &reading(100, None)
        ));
    }
}
