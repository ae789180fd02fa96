//! The eSIM lifecycle as a type, and the one rule for moving along it.
//!
//! `ready → installed → active → depleted → expired`, any step may be skipped; `cancelled`
//! from any of them; `expired` and `cancelled` are final. The single way
//! back is `depleted → active`, which is what a top-up does, and only for a fact newer than
//! the depletion.

use std::fmt;

/// Stored as its text in `esims.status` (the table's CHECK lists the same names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum EsimState {
    Ready,
    Installed,
    Active,
    Depleted,
    Expired,
    Cancelled,
}

impl EsimState {
    pub const ALL: [EsimState; 6] = [
        EsimState::Ready,
        EsimState::Installed,
        EsimState::Active,
        EsimState::Depleted,
        EsimState::Expired,
        EsimState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EsimState::Ready => "ready",
            EsimState::Installed => "installed",
            EsimState::Active => "active",
            EsimState::Depleted => "depleted",
            EsimState::Expired => "expired",
            EsimState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<EsimState> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    fn rank(self) -> u8 {
        match self {
            EsimState::Ready => 0,
            EsimState::Installed => 1,
            EsimState::Active => 2,
            EsimState::Depleted => 3,
            EsimState::Expired | EsimState::Cancelled => 4,
        }
    }

    /// Whether a vendor fact saying `to` may be applied to an eSIM that is `self`.
    /// `newer` says the fact is dated after the one that set the current status (a vendor
    /// timestamp, or arrival order when the vendor gives none).
    pub fn may_become(self, to: EsimState, newer: bool) -> bool {
        use EsimState::*;
        match (self, to) {
            (a, b) if a == b => false,
            (Expired | Cancelled, _) => false,
            // The vendor stopped the eSIM (our own cancel only asks for unused ones).
            (_, Cancelled) => newer,
            // A top-up brings a depleted eSIM back.
            (Depleted, Active) => newer,
            (a, b) => b.rank() > a.rank() && newer,
        }
    }
}

impl fmt::Display for EsimState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Lets a row read in a test be compared with the text stored in its column.
impl PartialEq<&str> for EsimState {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::EsimState::*;

    #[test]
    fn forward_only_and_final_states_stay() {
        assert!(Ready.may_become(Installed, true));
        assert!(Ready.may_become(Active, true));
        assert!(Active.may_become(Depleted, true));
        assert!(Depleted.may_become(Expired, true));
        assert!(Ready.may_become(Cancelled, true));
        assert!(!Active.may_become(Installed, true));
        assert!(!Active.may_become(Ready, true));
        assert!(!Active.may_become(Depleted, false), "older fact");
        assert!(
            Active.may_become(Cancelled, true),
            "the vendor deactivated it"
        );
        assert!(!Expired.may_become(Active, true));
        assert!(!Cancelled.may_become(Ready, true));
        assert!(!Active.may_become(Active, true));
        assert!(Depleted.may_become(Active, true), "top-up");
        assert!(!Depleted.may_become(Active, false));
    }
}
