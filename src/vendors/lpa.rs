//! LPA activation codes (`LPA:1$<SM-DP+ address>$<matching id>`, GSMA SGP.22).

use super::Activation;

/// Splits a full LPA string; `None` when it is not of the `LPA:1$smdp$matching-id` form.
pub fn parse(lpa: &str) -> Option<Activation> {
    let lpa = lpa.trim();
    let rest = lpa
        .strip_prefix("LPA:1$")
        .or_else(|| lpa.strip_prefix("lpa:1$"))?;
    let mut parts = rest.splitn(3, '$');
    let smdp = parts.next()?.trim();
    let matching_id = parts.next().unwrap_or("").trim();
    if smdp.is_empty() || matching_id.is_empty() {
        return None;
    }
    Some(Activation {
        lpa: lpa.to_string(),
        smdp_address: smdp.to_string(),
        matching_id: matching_id.to_string(),
    })
}

/// Builds the LPA string for vendors that return the address and matching id separately.
pub fn build(smdp_address: &str, matching_id: &str) -> Activation {
    Activation {
        lpa: format!("LPA:1${smdp_address}${matching_id}"),
        smdp_address: smdp_address.to_string(),
        matching_id: matching_id.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_address_and_matching_id() {
        let a = parse("LPA:1$rsp-eu.simlessly.com$20FD4B1A6C").unwrap();
        assert_eq!(a.smdp_address, "rsp-eu.simlessly.com");
        assert_eq!(a.matching_id, "20FD4B1A6C");
        assert_eq!(build(&a.smdp_address, &a.matching_id), a);
    }

    #[test]
    fn rejects_incomplete_codes() {
        for bad in ["", "LPA:1$", "LPA:1$host", "LPA:1$host$", "http://x"] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }
}
