//! The order and eSIM documents storefronts receive (answers and events alike).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    Ctx,
    error::{OrderingError, OrderingResult},
};
use crate::{
    domain::money::{Currency, Money},
    store::{
        self,
        esims::EsimRow,
        orders::{AttemptRow, OrderRow},
    },
};

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ActivationView {
    /// `LPA:1$<SM-DP+ address>$<matching id>`: what the QR code encodes.
    #[schema(example = "LPA:1$rsp.example.com$ABC-123")]
    pub lpa: String,
    pub smdp_address: String,
    pub matching_id: String,
    /// This gateway's QR code (PNG; `qr.svg` also exists), same storefront auth.
    pub qr_png_url: String,
    /// Apple's universal eSIM installation link.
    pub ios_install_url: String,
    /// Android's universal eSIM installation link.
    pub android_install_url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EsimView {
    #[schema(example = "8944538532008160222")]
    pub iccid: String,
    /// `true` for a real eSIM (live mode), `false` for a simulated one (test mode).
    pub livemode: bool,
    /// `ready`, `installed`, `active`, `depleted`, `expired` or `cancelled`.
    pub status: String,
    pub activation: Option<ActivationView>,
    pub plan_id: String,
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FailureView {
    /// `sold_out`, `vendor_unavailable`, `plan_unavailable`…
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OrderView {
    #[schema(example = "ord_01JD3QZ6V6W2Y2C6ZC9W8K7T1M")]
    pub id: String,
    /// `true` when bought from a live vendor (`sk_live_` key), `false` in test mode.
    pub livemode: bool,
    /// `new` or `topup`.
    pub kind: String,
    /// `pending`, `provisioning`, `completed`, `failed` or `cancelled`.
    pub status: String,
    pub plan_id: String,
    pub quantity: u32,
    pub price: Money,
    pub reference: Option<String>,
    /// For top-ups: the eSIM the plan was added to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iccid: Option<String>,
    pub esims: Vec<EsimView>,
    pub failure: Option<FailureView>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub const IOS_INSTALL_BASE: &str = "https://esimsetup.apple.com/esim_qrcode_provisioning?carddata=";
pub const ANDROID_INSTALL_BASE: &str =
    "https://esimsetup.android.com/esim_qrcode_provisioning?carddata=";

pub fn esim_view(e: &EsimRow) -> EsimView {
    let activation = match (&e.lpa, &e.smdp_address, &e.matching_id) {
        (Some(lpa), Some(smdp), Some(mid)) => Some(ActivationView {
            lpa: lpa.clone(),
            smdp_address: smdp.clone(),
            matching_id: mid.clone(),
            qr_png_url: format!("/v1/esims/{}/qr.png", e.iccid),
            ios_install_url: e
                .ios_install_url
                .clone()
                .unwrap_or_else(|| format!("{IOS_INSTALL_BASE}{lpa}")),
            android_install_url: e
                .android_install_url
                .clone()
                .unwrap_or_else(|| format!("{ANDROID_INSTALL_BASE}{lpa}")),
        }),
        _ => None,
    };
    EsimView {
        livemode: e.livemode,
        iccid: e.iccid.clone(),
        status: e.status.to_string(),
        activation,
        plan_id: e.plan_id.clone(),
        expires_at: e.expires_at,
    }
}

pub fn order_view(o: &OrderRow, esims: &[EsimRow]) -> OrderView {
    OrderView {
        livemode: o.livemode,
        id: o.id.clone(),
        kind: o.kind.as_str().to_string(),
        status: o.status.to_string(),
        plan_id: o.plan_id.clone(),
        quantity: o.quantity as u32,
        price: Money::new(
            o.price_amount,
            o.price_currency.parse().unwrap_or(Currency::USD),
        ),
        reference: o.reference.clone(),
        iccid: o.target_iccid.clone(),
        esims: esims
            .iter()
            .filter(|e| e.order_id == o.id)
            .map(esim_view)
            .collect(),
        failure: o.failure_code.as_ref().map(|code| FailureView {
            code: code.clone(),
            message: o.failure_message.clone().unwrap_or_default(),
        }),
        created_at: o.created_at,
        updated_at: o.updated_at,
    }
}

/// The storefront's order as it stands now, with its eSIMs.
pub async fn storefront_order(
    ctx: &Ctx,
    (storefront_id, livemode): (&str, bool),
    order_id: &str,
) -> OrderingResult<OrderView> {
    let order = store::orders::get_for(&ctx.pool, storefront_id, livemode, order_id)
        .await?
        .ok_or(OrderingError::OrderNotFound)?;
    let esims = store::esims::for_order(&ctx.pool, &order.id).await?;
    Ok(order_view(&order, &esims))
}

/// An order with everything an operator sees about it.
#[derive(Debug, Clone)]
pub struct OrderDetails {
    pub order: OrderRow,
    pub esims: Vec<EsimRow>,
    pub attempts: Vec<AttemptRow>,
    /// Why each ranking chose its vendor (`ordering::choice`), oldest first.
    pub routings: Vec<store::routings::RoutingRow>,
}

/// The details of `orders`, their eSIMs, attempts and rankings read in three queries.
pub async fn details(ctx: &Ctx, orders: &[OrderRow]) -> OrderingResult<Vec<OrderDetails>> {
    let ids: Vec<String> = orders.iter().map(|o| o.id.clone()).collect();
    let esims = store::esims::for_orders(&ctx.pool, &ids).await?;
    let attempts = store::orders::attempts_for(&ctx.pool, &ids).await?;
    let routings = store::routings::for_orders(&ctx.pool, &ids).await?;
    Ok(orders
        .iter()
        .map(|o| OrderDetails {
            order: o.clone(),
            esims: esims
                .iter()
                .filter(|e| e.order_id == o.id)
                .cloned()
                .collect(),
            attempts: attempts
                .iter()
                .filter(|a| a.order_id == o.id)
                .cloned()
                .collect(),
            routings: routings
                .iter()
                .filter(|r| r.order_id == o.id)
                .cloned()
                .collect(),
        })
        .collect())
}

/// The details of one order, whichever storefront it belongs to.
pub async fn details_of(ctx: &Ctx, order_id: &str) -> OrderingResult<OrderDetails> {
    let order = store::orders::get(&ctx.pool, order_id)
        .await?
        .ok_or(OrderingError::OrderNotFound)?;
    details(ctx, std::slice::from_ref(&order))
        .await?
        .into_iter()
        .next()
        .ok_or(OrderingError::OrderNotFound)
}
