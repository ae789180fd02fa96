//! Region labels that vendors put on multi-country products.
//!
//! [`region_members`] is only a fallback for a vendor that names a region without listing its
//! countries. Selling a plan for a country it does not cover strands a traveller, while leaving
//! a covered country out only loses a sale, so each loose label ("Asia", "Africa", "Global")
//! maps to a small core that every vendor plan under that label we know of includes, not to the
//! geographic region. Only treaty-defined sets (EU, EEA, Schengen, GCC) and short unambiguous
//! lists (North America, Nordics) are complete.
//!
//! [`region_id_for`] goes the other way and names a country set only when it is exactly one of
//! the treaty-defined or unambiguous sets.

use super::country::{Country, normalize};

/// The 27 member states since the UK left on 2020-01-31.
const EU27: &[&str] = &[
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT",
    "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
];

/// EU27 plus Iceland, Liechtenstein and Norway.
const EEA: &[&str] = &[
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IS",
    "IT", "LI", "LT", "LU", "LV", "MT", "NL", "NO", "PL", "PT", "RO", "SE", "SI", "SK",
];

/// The 29 members since Bulgaria and Romania joined fully on 2025-01-01: EU27 less Cyprus and
/// Ireland, plus Iceland, Liechtenstein, Norway and Switzerland. Monaco, San Marino and the
/// Vatican have open borders but are not members.
const SCHENGEN: &[&str] = &[
    "AT", "BE", "BG", "CH", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IS", "IT",
    "LI", "LT", "LU", "LV", "MT", "NL", "NO", "PL", "PT", "RO", "SE", "SI", "SK",
];

/// Gulf Cooperation Council.
const GCC: &[&str] = &["AE", "BH", "KW", "OM", "QA", "SA"];

const NORTH_AMERICA: &[&str] = &["CA", "MX", "US"];

const NORDICS: &[&str] = &["DK", "FI", "IS", "NO", "SE"];

const SCANDINAVIA: &[&str] = &["DK", "NO", "SE"];

// The cores below are judgement, not definitions; see the module comment.

const ASIA_CORE: &[&str] = &["HK", "JP", "KR", "MY", "SG", "TH"];

const SOUTHEAST_ASIA_CORE: &[&str] = &["ID", "MY", "PH", "SG", "TH", "VN"];

/// Plans called "Middle East" add Israel, Jordan, Egypt or Türkiye in varying combinations;
/// only the Gulf states are common to all of them.
const MIDDLE_EAST_CORE: &[&str] = GCC;

const SOUTH_AMERICA_CORE: &[&str] = &["AR", "BR", "CL", "CO", "EC", "PE", "UY"];

const LATIN_AMERICA_CORE: &[&str] = &["AR", "BR", "CL", "CO", "EC", "MX", "PE", "UY"];

/// Independent Eastern Caribbean states plus Jamaica and Barbados, which the regional carriers
/// behind Caribbean plans all serve; Cuba, Haiti, the Dominican Republic and the French and Dutch
/// islands are often missing.
const CARIBBEAN_CORE: &[&str] = &["AG", "BB", "DM", "GD", "JM", "KN", "LC", "VC"];

const AFRICA_CORE: &[&str] = &["GH", "KE", "MA", "NG", "TZ", "UG", "ZA"];

const OCEANIA_CORE: &[&str] = &["AU", "NZ"];

/// The Western Balkans outside the EU; Kosovo is left out because many Balkan plans lack it.
const BALKANS_CORE: &[&str] = &["AL", "BA", "ME", "MK", "RS"];

/// EU27, the rest of Western Europe's big markets, North America, Oceania and the Asia core.
const GLOBAL_CORE: &[&str] = &[
    "AT", "AU", "BE", "BG", "CA", "CH", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GB", "GR",
    "HK", "HR", "HU", "IE", "IS", "IT", "JP", "KR", "LT", "LU", "LV", "MT", "MX", "MY", "NL", "NO",
    "NZ", "PL", "PT", "RO", "SE", "SG", "SI", "SK", "TH", "US",
];

/// Labels in [`normalize`]d form, each with its members.
const LABELS: &[(&[&str], &[&str])] = &[
    // Plans sold as "Europe" differ on the UK, Switzerland and the Balkans but all cover the EU.
    (&["europe", "eu", "european union", "eu27", "eu 27"], EU27),
    (&["eea", "european economic area"], EEA),
    (&["schengen", "schengen area", "schengen zone"], SCHENGEN),
    (&["asia"], ASIA_CORE),
    (
        &["southeast asia", "south east asia", "se asia"],
        SOUTHEAST_ASIA_CORE,
    ),
    (&["middle east"], MIDDLE_EAST_CORE),
    (&["north america"], NORTH_AMERICA),
    (&["latin america", "latam"], LATIN_AMERICA_CORE),
    (&["south america"], SOUTH_AMERICA_CORE),
    (&["caribbean", "caribbean islands"], CARIBBEAN_CORE),
    (&["africa"], AFRICA_CORE),
    (
        &[
            "oceania",
            "australia and new zealand",
            "australia new zealand",
        ],
        OCEANIA_CORE,
    ),
    (&["balkans", "balkan", "western balkans"], BALKANS_CORE),
    (
        &[
            "gulf",
            "gcc",
            "gulf states",
            "gulf countries",
            "gulf cooperation council",
        ],
        GCC,
    ),
    (&["scandinavia"], SCANDINAVIA),
    (&["nordics", "nordic", "nordic countries"], NORDICS),
    (&["global", "world", "worldwide"], GLOBAL_CORE),
];

/// Sets that can be named without misleading: each is the whole of a defined group.
const WELL_KNOWN: &[(&str, &str, &[&str])] = &[
    ("eu27", "European Union", EU27),
    ("eea", "European Economic Area", EEA),
    ("schengen", "Schengen Area", SCHENGEN),
    ("gcc", "Gulf", GCC),
    ("na", "North America", NORTH_AMERICA),
    ("nordics", "Nordics", NORDICS),
    ("scandinavia", "Scandinavia", SCANDINAVIA),
];

/// Alpha-2 codes (sorted) that a product labelled `label` can be assumed to cover, or `None`
/// for a label we do not know. Case, accents and punctuation are ignored.
pub fn region_members(label: &str) -> Option<&'static [&'static str]> {
    let key = normalize(label);
    LABELS
        .iter()
        .find(|(labels, _)| labels.contains(&key.as_str()))
        .map(|&(_, members)| members)
}

/// `(slug, display name)` when `countries` is exactly a well-known set, e.g.
/// `("eu27", "European Union")`. Order and duplicates in `countries` do not matter.
pub fn region_id_for(countries: &[Country]) -> Option<(&'static str, &'static str)> {
    let mut codes: Vec<&str> = countries.iter().map(|c| c.alpha2()).collect();
    codes.sort_unstable();
    codes.dedup();
    WELL_KNOWN
        .iter()
        .find(|(_, _, members)| *members == codes.as_slice())
        .map(|&(slug, name, _)| (slug, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn countries(codes: &[&str]) -> Vec<Country> {
        codes
            .iter()
            .map(|c| Country::from_alpha2(c).unwrap())
            .collect()
    }

    fn is_subset(small: &[&str], big: &[&str]) -> bool {
        small.iter().all(|c| big.contains(c))
    }

    #[test]
    fn every_set_is_sorted_unique_and_known() {
        for (_, members) in LABELS {
            assert!(members.windows(2).all(|w| w[0] < w[1]), "{members:?}");
            for code in *members {
                assert!(Country::from_alpha2(code).is_some(), "{code}");
            }
        }
        for (_, _, members) in WELL_KNOWN {
            assert!(members.windows(2).all(|w| w[0] < w[1]), "{members:?}");
        }
    }

    #[test]
    fn labels_are_written_normalized_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for (labels, _) in LABELS {
            for label in *labels {
                assert_eq!(normalize(label), *label);
                assert!(seen.insert(*label), "{label} listed twice");
            }
        }
    }

    #[test]
    fn defined_sets_have_their_membership_counts() {
        assert_eq!(EU27.len(), 27);
        assert_eq!(EEA.len(), 30);
        assert_eq!(SCHENGEN.len(), 29);
        assert!(is_subset(EU27, EEA));
        assert!(!SCHENGEN.contains(&"IE") && !SCHENGEN.contains(&"CY"));
        assert!(is_subset(SCANDINAVIA, NORDICS));
    }

    #[test]
    fn global_core_covers_the_big_cores() {
        for core in [EU27, NORTH_AMERICA, OCEANIA_CORE, ASIA_CORE] {
            assert!(is_subset(core, GLOBAL_CORE), "{core:?}");
        }
    }

    #[test]
    fn region_members_reads_vendor_labels() {
        assert_eq!(region_members("Europe"), Some(EU27));
        assert_eq!(region_members("EU"), Some(EU27));
        assert_eq!(region_members(" European Union "), Some(EU27));
        assert_eq!(region_members("EU-27"), Some(EU27));
        assert_eq!(region_members("GCC"), Some(GCC));
        assert_eq!(region_members("Gulf"), Some(GCC));
        assert_eq!(region_members("north america"), Some(NORTH_AMERICA));
        assert_eq!(region_members("South-East Asia"), Some(SOUTHEAST_ASIA_CORE));
        assert_eq!(
            region_members("Australia & New Zealand"),
            Some(OCEANIA_CORE)
        );
        assert_eq!(region_members("Nordics"), Some(NORDICS));
        assert_eq!(region_members("Scandinavia"), Some(SCANDINAVIA));
        assert_eq!(region_members("Global"), Some(GLOBAL_CORE));
        assert_eq!(region_members("World"), Some(GLOBAL_CORE));
        for label in [
            "Asia",
            "Middle East",
            "Latin America",
            "South America",
            "Caribbean",
            "Africa",
            "Oceania",
            "Balkans",
            "Schengen",
            "EEA",
        ] {
            assert!(region_members(label).is_some(), "{label}");
        }
    }

    #[test]
    fn region_members_rejects_unknown_labels() {
        for label in ["", "Europe Plus", "Asia 20", "Mars", "Japan", "US"] {
            assert_eq!(region_members(label), None, "{label:?}");
        }
    }

    #[test]
    fn region_id_for_names_exact_sets_only() {
        assert_eq!(
            region_id_for(&countries(EU27)),
            Some(("eu27", "European Union"))
        );
        assert_eq!(region_id_for(&countries(GCC)), Some(("gcc", "Gulf")));
        assert_eq!(
            region_id_for(&countries(&["US", "MX", "CA", "US"])),
            Some(("na", "North America"))
        );
        assert_eq!(
            region_id_for(&countries(SCHENGEN)),
            Some(("schengen", "Schengen Area"))
        );

        let mut eu_plus_uk = countries(EU27);
        eu_plus_uk.extend(countries(&["GB"]));
        assert_eq!(region_id_for(&eu_plus_uk), None);
        assert_eq!(region_id_for(&countries(&EU27[1..])), None);
        assert_eq!(region_id_for(&countries(&["US", "CA"])), None);
        assert_eq!(region_id_for(&countries(ASIA_CORE)), None);
        assert_eq!(region_id_for(&[]), None);
    }
}
