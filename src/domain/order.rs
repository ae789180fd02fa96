//! The order lifecycle as a type, and the one rule for moving along it.
//!
//! ```text
//! pending ──▶ provisioning ──▶ completed ──▶ cancelled
//!    │              │
//!    └──────────────┴────────▶ failed
//! ```
//! Never backwards: a finished order stays finished, whatever arrives late.

use std::fmt;

/// Stored as its text in `orders.status` (the table's CHECK lists the same names), so a row
/// read from Postgres carries the type and an unknown status fails loudly at the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "snake_case")]
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

/// What an order buys: a new eSIM (routed to the cheapest vendor) or a top-up of an eSIM
/// we sold (only ever from the vendor that issued it). Every rule that differs between
/// the two is a method here, so the purchase code asks instead of comparing kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum OrderKind {
    New,
    Topup,
}

impl OrderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderKind::New => "new",
            OrderKind::Topup => "topup",
        }
    }

    /// The vendor's answer brings eSIM profiles to store (a top-up adds data to one we
    /// have), and the order is complete only once all of them are stored.
    pub fn delivers_esims(self) -> bool {
        self == OrderKind::New
    }

    /// A refused attempt moves on to the next-cheapest vendor. A top-up never routes:
    /// only the eSIM's own vendor can add to it, so its refusal fails the order.
    pub fn routes(self) -> bool {
        self == OrderKind::New
    }

    /// ESIMs the vendor is asked for: a top-up is one plan on one eSIM.
    pub fn vendor_quantity(self, quantity: i32) -> u32 {
        match self {
            OrderKind::New => u32::try_from(quantity.max(1)).unwrap_or(1),
            OrderKind::Topup => 1,
        }
    }

    /// Completing the order starts a new bundle on its target eSIM (usage and thresholds
    /// start afresh).
    pub fn starts_bundle(self) -> bool {
        self == OrderKind::Topup
    }

    /// Only new-eSIM orders can be cancelled (a top-up is spent on an eSIM in use).
    pub fn cancellable(self) -> bool {
        self == OrderKind::New
    }

    /// The failure message when the vendor gives the order up before delivering.
    pub fn vendor_failed_message(self) -> &'static str {
        match self {
            OrderKind::New => "the vendor could not deliver the eSIM",
            OrderKind::Topup => "the vendor could not apply the top-up",
        }
    }
}

impl fmt::Display for OrderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Lets a row read in a test be compared with the text stored in its column.
impl PartialEq<&str> for OrderStatus {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
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
