//! Data allowances: how much data an offer or plan gives, and the binary byte units the
//! catalogue counts in.

use serde::{Deserialize, Serialize};

/// How much data an offer gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataKind {
    /// One allowance for the whole validity.
    Total,
    /// A daily high-speed allowance, reset every day (throttled after it is used).
    Daily,
    /// No cap (possibly subject to a fair-use policy).
    Unlimited,
}

/// An offer's data allowance, both as the vendor counts it and as it is marketed.
///
/// Vendors count a gigabyte differently (eSIM Access 2^30 bytes, eSIM Go 1,000 MB). Plans
/// group by the marketed amount in binary units, while usage arithmetic needs the vendor's
/// exact count; adapters know their vendor's unit, so they fill both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DataAllowance {
    pub kind: DataKind,
    /// The vendor's exact byte count (per day for [`DataKind::Daily`]); `None` when unlimited.
    pub bytes: Option<u64>,
    /// The marketed amount in binary units ("10 GB" → 10 × 2^30); `None` when unlimited.
    pub marketed_bytes: Option<u64>,
}

pub const KIB: u64 = 1024;
pub const MIB: u64 = 1024 * KIB;
pub const GIB: u64 = 1024 * MIB;

impl DataAllowance {
    pub fn unlimited() -> Self {
        DataAllowance {
            kind: DataKind::Unlimited,
            bytes: None,
            marketed_bytes: None,
        }
    }

    /// A vendor that counts in binary units: the marketed amount is the exact amount.
    pub fn binary(kind: DataKind, bytes: u64) -> Self {
        DataAllowance {
            kind,
            bytes: Some(bytes),
            marketed_bytes: Some(bytes),
        }
    }

    /// A vendor that counts decimal megabytes (1 GB = 1,000 MB = 10^9 bytes): "1000 MB" is
    /// marketed as 1 GB, "500 MB" as 500 MB.
    pub fn decimal_mb(kind: DataKind, mb: u64) -> Self {
        let marketed = if mb >= 1000 && mb % 1000 == 0 {
            (mb / 1000) * GIB
        } else if mb >= 1000 && (mb * 10) % 1000 == 0 {
            // 1.5 GB sold as 1500 MB.
            mb * GIB / 1000
        } else {
            mb * MIB
        };
        DataAllowance {
            kind,
            bytes: Some(mb * 1_000_000),
            marketed_bytes: Some(marketed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_megabytes_are_marketed_as_binary_gigabytes() {
        let d = DataAllowance::decimal_mb(DataKind::Total, 1000);
        assert_eq!(d.bytes, Some(1_000_000_000));
        assert_eq!(d.marketed_bytes, Some(GIB));
        let d = DataAllowance::decimal_mb(DataKind::Total, 20_000);
        assert_eq!(d.marketed_bytes, Some(20 * GIB));
        let d = DataAllowance::decimal_mb(DataKind::Total, 1500);
        assert_eq!(d.marketed_bytes, Some(3 * GIB / 2));
        let d = DataAllowance::decimal_mb(DataKind::Daily, 500);
        assert_eq!(d.marketed_bytes, Some(500 * MIB));
    }
}
