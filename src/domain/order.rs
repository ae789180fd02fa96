//! The order lifecycle as a type, and the one rule for moving along it.
//!
//! ```text
//! pending ──▶ provisioning ──▶ completed ──▶ cancelled
//!    │              │
//!    └──────────────┴────────▶ failed
//! ```
//! Never backwards: a finished order stays finished, whatever arrives late.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderStatus {
    Pending,
    Provisioning,
    Completed,
    Failed,
    Cancelled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an order cannot go from {from} to {to}")]
pub struct IllegalTransition {
    pub from: OrderStatus,
    pub to: OrderStatus,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 5] = [
        OrderStatus::Pending,
        OrderStatus::Provisioning,
        OrderStatus::Completed,
        OrderStatus::Failed,
        OrderStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::Provisioning => "provisioning",
            OrderStatus::Completed => "completed",
            OrderStatus::Failed => "failed",
            OrderStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<OrderStatus> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Still waiting on a vendor (the provisioner's work).
    pub fn is_unfinished(self) -> bool {
        matches!(self, OrderStatus::Pending | OrderStatus::Provisioning)
    }

    /// The one transition rule. `Ok(false)` is staying put (provisioning → provisioning),
    /// which changes nothing and emits nothing.
    pub fn transition(self, to: OrderStatus) -> Result<bool, IllegalTransition> {
        use OrderStatus::*;
        match (self, to) {
            (Provisioning, Provisioning) => Ok(false),
            (Pending, Provisioning | Completed | Failed)
            | (Provisioning, Completed | Failed)
            | (Completed, Cancelled) => Ok(true),
            (from, to) => Err(IllegalTransition { from, to }),
        }
    }

    /// The storefront event a transition into this status emits, if any.
    pub fn event(self) -> Option<&'static str> {
        match self {
            OrderStatus::Completed => Some("order.completed"),
            OrderStatus::Failed => Some("order.failed"),
            OrderStatus::Cancelled => Some("order.cancelled"),
            OrderStatus::Pending | OrderStatus::Provisioning => None,
        }
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::{OrderStatus::*, *};

    #[test]
    fn only_forward_transitions_are_legal() {
        assert_eq!(Pending.transition(Provisioning), Ok(true));
        assert_eq!(Pending.transition(Completed), Ok(true));
        assert_eq!(Provisioning.transition(Provisioning), Ok(false));
        assert_eq!(Provisioning.transition(Failed), Ok(true));
        assert_eq!(Completed.transition(Cancelled), Ok(true));
        for from in [Completed, Failed, Cancelled] {
            for to in [Pending, Provisioning] {
                assert!(from.transition(to).is_err(), "{from} -> {to}");
            }
        }
        assert!(Completed.transition(Failed).is_err());
        assert!(Failed.transition(Completed).is_err());
        assert!(Cancelled.transition(Completed).is_err());
        assert!(Provisioning.transition(Pending).is_err());
        assert!(Provisioning.transition(Cancelled).is_err());
    }

    #[test]
    fn statuses_round_trip() {
        for s in OrderStatus::ALL {
            assert_eq!(OrderStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(OrderStatus::parse("attention"), None);
    }
}

/// Stored as its text in `orders.status` (the table's CHECK lists the same names), so a row
/// read from Postgres carries the type and an unknown status fails loudly at the edge.
mod sql {
    use sqlx::{
        Decode, Encode, Postgres, Type,
        encode::IsNull,
        error::BoxDynError,
        postgres::{PgArgumentBuffer, PgTypeInfo, PgValueRef},
    };

    use super::OrderStatus;

    impl Type<Postgres> for OrderStatus {
        fn type_info() -> PgTypeInfo {
            <&str as Type<Postgres>>::type_info()
        }
        fn compatible(ty: &PgTypeInfo) -> bool {
            <&str as Type<Postgres>>::compatible(ty)
        }
    }

    impl<'r> Decode<'r, Postgres> for OrderStatus {
        fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
            let s = <&str as Decode<Postgres>>::decode(value)?;
            OrderStatus::parse(s).ok_or_else(|| format!("unknown order status {s:?}").into())
        }
    }

    impl Encode<'_, Postgres> for OrderStatus {
        fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
            <&str as Encode<Postgres>>::encode_by_ref(&self.as_str(), buf)
        }
    }
}

impl PartialEq<&str> for OrderStatus {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}
