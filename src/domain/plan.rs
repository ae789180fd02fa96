//! Plans: what storefronts sell. A plan is one coverage + one data allowance + one validity;
//! its id is derived from those attributes only, so it survives restarts and re-syncs.

use sha2::{Digest, Sha256};

use crate::domain::data::{DataKind, GIB, MIB};

/// The attributes that make a plan. Offers with equal keys stand behind the same plan.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PlanKey {
    /// ISO alpha-2, upper case, sorted, unique, non-empty.
    pub countries: Vec<String>,
    pub kind: DataKind,
    /// Marketed bytes in binary units (per day when daily); `None` when unlimited.
    pub bytes: Option<u64>,
    pub validity_days: u32,
}

impl PlanKey {
    /// `jp-10gb-7d`, `jp-1gb-daily-5d`, `jp-unlimited-15d`, `multi32-3fa9c1-5gb-30d`.
    pub fn id(&self) -> String {
        format!(
            "{}-{}-{}d",
            coverage_slug(&self.countries),
            data_slug(self.kind, self.bytes),
            self.validity_days
        )
    }

    /// Total bytes over the validity, for filters and sorting; `None` when unlimited.
    pub fn total_bytes(&self) -> Option<u64> {
        match self.kind {
            DataKind::Total => self.bytes,
            DataKind::Daily => self
                .bytes
                .map(|b| b.saturating_mul(u64::from(self.validity_days))),
            DataKind::Unlimited => None,
        }
    }

    /// "10 GB 7 days", "1 GB/day 5 days", "Unlimited 15 days".
    pub fn allowance_label(&self) -> String {
        let days = if self.validity_days == 1 {
            "1 day".to_string()
        } else {
            format!("{} days", self.validity_days)
        };
        match (self.kind, self.bytes) {
            (DataKind::Unlimited, _) | (_, None) => format!("Unlimited {days}"),
            (DataKind::Daily, Some(b)) => format!("{}/day {days}", human_bytes(b)),
            (DataKind::Total, Some(b)) => format!("{} {days}", human_bytes(b)),
        }
    }
}

fn coverage_slug(countries: &[String]) -> String {
    match countries {
        [one] => one.to_ascii_lowercase(),
        many => {
            let digest = Sha256::digest(many.join(",").as_bytes());
            format!("multi{}-{}", many.len(), &hex::encode(digest)[..6])
        }
    }
}

fn data_slug(kind: DataKind, bytes: Option<u64>) -> String {
    let amount = match bytes {
        None => return "unlimited".to_string(),
        Some(b) if b % GIB == 0 => format!("{}gb", b / GIB),
        Some(b) if b % MIB == 0 => format!("{}mb", b / MIB),
        Some(b) => format!("{b}b"),
    };
    match kind {
        DataKind::Daily => format!("{amount}-daily"),
        DataKind::Unlimited => "unlimited".to_string(),
        DataKind::Total => amount,
    }
}

/// "10 GB", "1.5 GB", "500 MB" in binary units, as travel eSIMs are marketed.
pub fn human_bytes(b: u64) -> String {
    if b >= GIB {
        let tenths = b * 10 / GIB;
        if tenths % 10 == 0 {
            format!("{} GB", tenths / 10)
        } else {
            format!("{}.{} GB", tenths / 10, tenths % 10)
        }
    } else {
        format!("{} MB", b / MIB)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(countries: &[&str], kind: DataKind, bytes: Option<u64>, days: u32) -> PlanKey {
        PlanKey {
            countries: countries.iter().map(|c| c.to_string()).collect(),
            kind,
            bytes,
            validity_days: days,
        }
    }

    #[test]
    fn ids_are_readable_and_derived_from_attributes_only() {
        assert_eq!(
            key(&["JP"], DataKind::Total, Some(10 * GIB), 7).id(),
            "jp-10gb-7d"
        );
        assert_eq!(
            key(&["JP"], DataKind::Daily, Some(GIB), 5).id(),
            "jp-1gb-daily-5d"
        );
        assert_eq!(
            key(&["JP"], DataKind::Unlimited, None, 15).id(),
            "jp-unlimited-15d"
        );
        assert_eq!(
            key(&["JP"], DataKind::Total, Some(500 * MIB), 7).id(),
            "jp-500mb-7d"
        );
        let eu = key(&["DE", "FR", "IT"], DataKind::Total, Some(5 * GIB), 30);
        let id = eu.id();
        assert!(
            id.starts_with("multi3-") && id.ends_with("-5gb-30d"),
            "{id}"
        );
        assert_eq!(id, eu.clone().id(), "stable");
        let other = key(&["DE", "FR", "ES"], DataKind::Total, Some(5 * GIB), 30);
        assert_ne!(other.id(), id);
    }

    #[test]
    fn labels_and_totals() {
        let daily = key(&["TH"], DataKind::Daily, Some(GIB), 7);
        assert_eq!(daily.allowance_label(), "1 GB/day 7 days");
        assert_eq!(daily.total_bytes(), Some(7 * GIB));
        assert_eq!(
            key(&["TH"], DataKind::Total, Some(3 * GIB / 2), 1).allowance_label(),
            "1.5 GB 1 day"
        );
        assert_eq!(human_bytes(500 * MIB), "500 MB");
    }
}
