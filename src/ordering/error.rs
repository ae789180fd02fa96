//! What the ordering services refuse, and why: one enum for place, top-up, cancel and the
//! operator's actions. The HTTP edge maps each variant to its status and `code`; the
//! messages here are the sentences the caller reads.

use crate::domain::order::OrderStatus;

/// Why nothing can be added to an eSIM, decided from our own records before any vendor is
/// asked. Its code is also the failure code of a top-up order refused for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TopupRefusal {
    #[error("this eSIM's network offers no top-ups; buy a new eSIM instead")]
    NotSupported,
    #[error("this eSIM is cancelled; nothing can be added to it")]
    Cancelled,
    #[error("this eSIM has expired; nothing can be added to it")]
    Expired,
}

impl TopupRefusal {
    pub fn code(self) -> &'static str {
        match self {
            TopupRefusal::NotSupported => "topup_not_supported",
            TopupRefusal::Cancelled => "esim_cancelled",
            TopupRefusal::Expired => "esim_expired",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OrderingError {
    #[error("this Idempotency-Key was already used with a different request")]
    IdempotencyKeyReused,
    /// The first request with the key is still running; retry after
    /// [`super::place::REPLAY_RETRY_AFTER_SECS`].
    #[error("the first request with this Idempotency-Key is still being processed; retry shortly")]
    IdempotencyKeyInUse,
    #[error("no such plan is on sale")]
    PlanNotFound,
    /// The total is above the caller's `max_price`, or in another currency.
    #[error("{0}")]
    PriceChanged(String),
    #[error("no such order")]
    OrderNotFound,
    #[error("no such eSIM")]
    EsimNotFound,
    #[error(transparent)]
    TopupRefused(#[from] TopupRefusal),
    #[error("this plan cannot be added to this eSIM (see its topup-plans)")]
    TopupPlanNotFound,
    #[error("the eSIM's network could not say which top-ups fit it right now; try again shortly")]
    TopupPlansUnavailable,
    #[error("{0}")]
    NotCancellable(String),
    /// Someone else holds the order's lease right now; retry in a second.
    #[error("{0}")]
    OrderBusy(&'static str),
    #[error("the order is already {0}")]
    OrderFinished(OrderStatus),
    #[error("{vendor} has this order (attempt {seq}); reconcile it instead of failing it")]
    VendorOrderExists { vendor: String, seq: i32 },
    #[error("the order's vendor is not enabled")]
    VendorDisabled,
    /// A vendor failed while we were acting for the caller.
    #[error("{0}")]
    Vendor(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type OrderingResult<T> = Result<T, OrderingError>;
