//! What can go wrong talking to a vendor, classified by the one question that matters for
//! exactly-once buying: could something have been bought?

/// Why a vendor said no. Lets routing tell "try the next vendor" from "fix the request".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectKind {
    /// Out of stock / no profiles / product unavailable.
    SoldOut,
    InsufficientBalance,
    /// The vendor's price differs from what we expected.
    PriceChanged,
    /// Malformed or invalid request (a bug on our side or a stale SKU).
    InvalidRequest,
    /// Credentials, signature or IP refused.
    Auth,
    /// No such product, order or eSIM.
    NotFound,
    /// Not allowed in the current state (e.g. cancelling an installed eSIM).
    NotAllowed,
    RateLimited,
    Other,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum VendorError {
    /// The vendor answered and refused: nothing was bought. Safe to try the next offer.
    #[error("rejected by vendor ({kind:?}, code {code}): {message}")]
    Rejected {
        kind: RejectKind,
        code: String,
        message: String,
    },
    /// The request never left (connection refused, DNS, TLS): nothing was bought.
    #[error("vendor unreachable: {0}")]
    Unreachable(String),
    /// Sent, but the outcome is unknown (timeout, reset, 5xx, garbled reply). Must be
    /// reconciled with that vendor before buying anywhere else.
    #[error("vendor outcome unknown: {0}")]
    Unknown(String),
    /// The vendor has no such operation.
    #[error("operation not supported by this vendor")]
    Unsupported,
    /// A callback failed authentication (wrong signature or token).
    #[error("callback not authentic: {0}")]
    Unauthenticated(String),
    /// A callback was authentic but could not be understood.
    #[error("callback not understood: {0}")]
    InvalidCallback(String),
}

impl VendorError {
    pub fn rejected(kind: RejectKind, code: impl Into<String>, message: impl Into<String>) -> Self {
        VendorError::Rejected {
            kind,
            code: code.into(),
            message: message.into(),
        }
    }

    /// True when the vendor certainly did not act on the request.
    pub fn nothing_bought(&self) -> bool {
        matches!(
            self,
            VendorError::Rejected { .. } | VendorError::Unreachable(_) | VendorError::Unsupported
        )
    }

    pub fn reject_kind(&self) -> Option<RejectKind> {
        match self {
            VendorError::Rejected { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// A short label for metrics and logs.
    pub fn class(&self) -> &'static str {
        match self {
            VendorError::Rejected { .. } => "rejected",
            VendorError::Unreachable(_) => "unreachable",
            VendorError::Unknown(_) => "unknown",
            VendorError::Unsupported => "unsupported",
            VendorError::Unauthenticated(_) => "unauthenticated",
            VendorError::InvalidCallback(_) => "invalid_callback",
        }
    }
}
