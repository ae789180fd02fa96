//! A vendor attempt's outcome, and the one rule for recording it.
//!
//! ```text
//! pending ──▶ placed                      (the vendor has the order: money spent)
//!    │   └──▶ rejected | unreachable      (nothing bought: the next vendor may be tried)
//!    └──────▶ unknown ──▶ placed | rejected | not_found   (reconciled with that vendor)
//! ```
//! `placed` is a fact about money spent and is never replaced by a weaker outcome.

use std::fmt;

/// Stored as its text in `order_attempts.outcome` (the table's CHECK lists the same names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// Recorded before the vendor call; still so if the process died during it.
    Pending,
    Placed,
    Rejected,
    Unreachable,
    /// The call's outcome is not known: reconcile with this vendor before buying elsewhere.
    Unknown,
    /// Reconciled: the vendor has no such order.
    NotFound,
}

impl AttemptOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Pending => "pending",
            AttemptOutcome::Placed => "placed",
            AttemptOutcome::Rejected => "rejected",
            AttemptOutcome::Unreachable => "unreachable",
            AttemptOutcome::Unknown => "unknown",
            AttemptOutcome::NotFound => "not_found",
        }
    }

    /// The vendor may or may not have the order: it must be asked before anything else.
    pub fn is_open(self) -> bool {
        matches!(self, AttemptOutcome::Pending | AttemptOutcome::Unknown)
    }

    /// Whether an attempt that is `self` may be recorded as `to` (the store applies the
    /// same rule in its UPDATE, so concurrent writers cannot break it either).
    pub fn may_become(self, to: AttemptOutcome) -> bool {
        self != AttemptOutcome::Placed || to == AttemptOutcome::Placed
    }
}

impl fmt::Display for AttemptOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::AttemptOutcome::*;

    #[test]
    fn placed_is_never_replaced_by_a_weaker_outcome() {
        for to in [Pending, Rejected, Unreachable, Unknown, NotFound] {
            assert!(!Placed.may_become(to), "placed -> {to}");
            assert!(Unknown.may_become(to));
        }
        assert!(Placed.may_become(Placed));
        assert!(Unknown.may_become(Placed));
        assert!(Pending.is_open() && Unknown.is_open());
        assert!(!Placed.is_open() && !Rejected.is_open() && !NotFound.is_open());
    }
}
