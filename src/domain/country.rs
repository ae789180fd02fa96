//! ISO 3166-1 countries, plus `XK` (Kosovo): not assigned by ISO, but vendors sell eSIMs for it
//! under that code.
//!
//! Vendors name countries every which way ("USA", "Korea, Republic of", "Türkiye", "St. Lucia"),
//! so [`Country::lookup`] folds case, diacritics and punctuation before matching names and
//! aliases, while [`Country::from_alpha2`] stays strict for our own API and storage.
//!
//! The table is ours rather than a country crate's: those know ISO's names but neither the
//! vendors' spellings above nor `XK`, and a second table of aliases would drift from theirs.

use std::{collections::HashMap, fmt, str::FromStr, sync::OnceLock};

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};
use utoipa::ToSchema;

/// A country or territory, identified by its ISO 3166-1 alpha-2 code.
///
/// Only codes in [`COUNTRIES`] can be constructed, so the accessors never fail. Ordering is by
/// alpha-2 code.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ToSchema)]
#[schema(value_type = String, example = "JP")]
pub struct Country(&'static str);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown country: {0:?}")]
pub struct UnknownCountry(pub String);

impl Country {
    /// An exact alpha-2 code, ignoring case and surrounding whitespace.
    pub fn from_alpha2(code: &str) -> Option<Country> {
        let code = code.trim();
        if code.len() != 2 || !code.is_ascii() {
            return None;
        }
        let upper = code.to_ascii_uppercase();
        COUNTRIES
            .binary_search_by(|(a2, _, _)| (*a2).cmp(upper.as_str()))
            .ok()
            .map(|i| Country(COUNTRIES[i].0))
    }

    /// Anything a vendor might call a country: alpha-2, alpha-3, the ISO name, or a common
    /// alias, ignoring case, accents and punctuation.
    pub fn lookup(s: &str) -> Option<Country> {
        // Codes first: normalizing would turn "ST" into "saint".
        let t = s.trim();
        if t.len() == 2 {
            if let Some(c) = Country::from_alpha2(t) {
                return Some(c);
            }
        }
        if t.len() == 3 {
            if let Some(&(a2, _, _)) = COUNTRIES
                .iter()
                .find(|(_, a3, _)| a3.eq_ignore_ascii_case(t))
            {
                return Some(Country(a2));
            }
        }
        index().get(normalize(s).as_str()).copied().map(Country)
    }

    /// Every known country, in alpha-2 order.
    pub fn all() -> impl ExactSizeIterator<Item = Country> {
        COUNTRIES.iter().map(|&(a2, _, _)| Country(a2))
    }

    pub fn alpha2(self) -> &'static str {
        self.0
    }

    pub fn alpha3(self) -> &'static str {
        self.entry().1
    }

    /// The English short name as in Debian's iso-codes (e.g. "Korea, Republic of",
    /// "Türkiye", "United States").
    pub fn name(self) -> &'static str {
        self.entry().2
    }

    /// The name travellers know ("South Korea", "Taiwan", "Vietnam"), for plan names and
    /// storefront listings; the ISO name otherwise.
    pub fn common_name(self) -> &'static str {
        const COMMON: &[(&str, &str)] = &[
            ("BN", "Brunei"),
            ("BO", "Bolivia"),
            ("CD", "DR Congo"),
            ("FM", "Micronesia"),
            ("GB", "United Kingdom"),
            ("IR", "Iran"),
            ("KP", "North Korea"),
            ("KR", "South Korea"),
            ("LA", "Laos"),
            ("MD", "Moldova"),
            ("PS", "Palestine"),
            ("RU", "Russia"),
            ("SY", "Syria"),
            ("TW", "Taiwan"),
            ("TZ", "Tanzania"),
            ("VA", "Vatican City"),
            ("VE", "Venezuela"),
            ("VN", "Vietnam"),
        ];
        COMMON
            .iter()
            .find(|(a2, _)| *a2 == self.0)
            .map_or_else(|| self.name(), |(_, n)| n)
    }

    fn entry(self) -> &'static (&'static str, &'static str, &'static str) {
        // Country is only built from COUNTRIES rows, so the search always hits.
        let i = COUNTRIES
            .binary_search_by(|(a2, _, _)| (*a2).cmp(self.0))
            .unwrap_or_else(|_| unreachable!("Country({}) is not in the table", self.0));
        &COUNTRIES[i]
    }
}

/// A vendor's country list: codes or names separated by commas or semicolons ("CN,HK,MO,TW",
/// "Japan; South Korea"). A piece that is not a name is also tried as space-separated alpha-2
/// codes ("CN HK MO"). Returns the countries sorted and without duplicates; empty input gives
/// an empty list.
pub fn parse_list(s: &str) -> Result<Vec<Country>, UnknownCountry> {
    let mut out = Vec::new();
    for piece in s.split([',', ';']).map(str::trim).filter(|p| !p.is_empty()) {
        if let Some(c) = Country::lookup(piece) {
            out.push(c);
            continue;
        }
        let codes: Option<Vec<Country>> =
            piece.split_whitespace().map(Country::from_alpha2).collect();
        match codes {
            Some(codes) if codes.len() > 1 => out.extend(codes),
            _ => return Err(UnknownCountry(piece.to_string())),
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

impl FromStr for Country {
    type Err = UnknownCountry;

    /// Strict like [`Country::from_alpha2`]; use [`Country::lookup`] for vendor text.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Country::from_alpha2(s).ok_or_else(|| UnknownCountry(s.to_string()))
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl fmt::Debug for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl Serialize for Country {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0)
    }
}

impl<'de> Deserialize<'de> for Country {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Alpha2;

        impl de::Visitor<'_> for Alpha2 {
            type Value = Country;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an ISO 3166-1 alpha-2 country code")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Country, E> {
                Country::from_alpha2(v)
                    .ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
            }
        }

        deserializer.deserialize_str(Alpha2)
    }
}

/// Folds the ways vendors vary a name so that equal names compare equal: lowercase, Latin
/// diacritics dropped, `&` read as "and", `St.` as "saint", a leading "the" dropped, and all
/// other punctuation treated as a word break. Periods vanish rather than break words so that
/// "U.S.A." and "U.K." become codes.
pub(crate) fn normalize(s: &str) -> String {
    let mut folded = String::with_capacity(s.len());
    for c in s.chars().flat_map(char::to_lowercase) {
        match c {
            'a'..='z' | '0'..='9' => folded.push(c),
            '.' => {}
            '&' => folded.push_str(" and "),
            // Combining marks: input that arrives decomposed (NFD) loses its accents here.
            '\u{0300}'..='\u{036f}' => {}
            'æ' => folded.push_str("ae"),
            'œ' => folded.push_str("oe"),
            'ß' => folded.push_str("ss"),
            _ => folded.push(fold_latin(c).unwrap_or(' ')),
        }
    }
    let mut words = folded
        .split_whitespace()
        .map(|w| if w == "st" { "saint" } else { w })
        .peekable();
    if words.peek() == Some(&"the") {
        words.next();
    }
    words.collect::<Vec<_>>().join(" ")
}

/// The base letter of an accented lowercase Latin letter.
fn fold_latin(c: char) -> Option<char> {
    Some(match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => 'a',
        'ç' | 'ć' | 'č' => 'c',
        'ď' | 'đ' => 'd',
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ė' | 'ę' | 'ě' => 'e',
        'ğ' => 'g',
        'ì' | 'í' | 'î' | 'ï' | 'ī' | 'į' | 'ı' => 'i',
        'ł' => 'l',
        'ñ' | 'ń' | 'ň' => 'n',
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' => 'o',
        'ř' => 'r',
        'ś' | 'š' | 'ş' | 'ș' => 's',
        'ť' | 'ţ' | 'ț' => 't',
        'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' => 'u',
        'ý' | 'ÿ' => 'y',
        'ź' | 'ż' | 'ž' => 'z',
        _ => return None,
    })
}

/// Normalized alpha-2, alpha-3, name and alias → alpha-2.
fn index() -> &'static HashMap<String, &'static str> {
    static INDEX: OnceLock<HashMap<String, &'static str>> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut index = HashMap::new();
        let mut add = |key: String, a2: &'static str| {
            // Two countries claiming one spelling is a bug in the tables below; the unit tests
            // build the index, so this cannot first fire in production.
            if let Some(other) = index.insert(key.clone(), a2) {
                assert_eq!(other, a2, "{key:?} names both {other} and {a2}");
            }
        };
        for &(a2, a3, name) in COUNTRIES {
            add(a2.to_ascii_lowercase(), a2);
            add(a3.to_ascii_lowercase(), a2);
            add(normalize(name), a2);
        }
        for &(alias, a2) in ALIASES {
            let country = Country::from_alpha2(a2)
                .unwrap_or_else(|| panic!("alias {alias:?} → unknown {a2}"));
            add(normalize(alias), country.0);
        }
        index
    })
}

/// Names vendors use that are not the ISO name, alpha-2 or alpha-3. Spellings that differ from
/// these only by case, accents or punctuation need no entry.
const ALIASES: &[(&str, &str)] = &[
    ("United States of America", "US"),
    ("UK", "GB"),
    ("Great Britain", "GB"),
    ("Britain", "GB"),
    ("United Kingdom of Great Britain and Northern Ireland", "GB"),
    // Vendors list the constituent countries, which share the UK's networks.
    ("England", "GB"),
    ("Scotland", "GB"),
    ("Wales", "GB"),
    ("Northern Ireland", "GB"),
    ("Republic of Ireland", "IE"),
    ("South Korea", "KR"),
    ("Korea South", "KR"),
    ("Republic of Korea", "KR"),
    // No eSIM is sold for North Korea; vendors that write "Korea" mean the South.
    ("Korea", "KR"),
    ("North Korea", "KP"),
    ("Korea North", "KP"),
    ("Democratic People's Republic of Korea", "KP"),
    ("DPRK", "KP"),
    ("Russia", "RU"),
    ("Vietnam", "VN"),
    ("Turkey", "TR"),
    ("Czech Republic", "CZ"),
    ("Slovak Republic", "SK"),
    ("Kyrgyz Republic", "KG"),
    ("Macau", "MO"),
    ("Macao SAR", "MO"),
    ("Macau SAR", "MO"),
    ("Macao SAR China", "MO"),
    ("Hong Kong SAR", "HK"),
    ("Hong Kong SAR China", "HK"),
    ("Hongkong", "HK"),
    ("Taiwan", "TW"),
    ("Mainland China", "CN"),
    ("China Mainland", "CN"),
    ("Laos", "LA"),
    ("Lao PDR", "LA"),
    ("Iran", "IR"),
    ("Syria", "SY"),
    ("Moldova", "MD"),
    ("Republic of Moldova", "MD"),
    ("Bolivia", "BO"),
    ("Venezuela", "VE"),
    ("Tanzania", "TZ"),
    ("United Republic of Tanzania", "TZ"),
    ("Ivory Coast", "CI"),
    ("Cape Verde", "CV"),
    ("Swaziland", "SZ"),
    ("Macedonia", "MK"),
    ("Republic of North Macedonia", "MK"),
    ("FYROM", "MK"),
    ("Palestine", "PS"),
    ("Palestinian Territories", "PS"),
    ("Palestinian Territory", "PS"),
    ("Vatican", "VA"),
    ("Vatican City", "VA"),
    ("Vatican City State", "VA"),
    ("Holy See", "VA"),
    ("Brunei", "BN"),
    ("Micronesia", "FM"),
    ("Federated States of Micronesia", "FM"),
    ("Congo (DRC)", "CD"),
    ("DR Congo", "CD"),
    ("DRC", "CD"),
    ("Congo DR", "CD"),
    ("Democratic Republic of the Congo", "CD"),
    ("Democratic Republic of Congo", "CD"),
    ("Congo Democratic Republic", "CD"),
    ("Congo-Kinshasa", "CD"),
    ("Republic of the Congo", "CG"),
    ("Republic of Congo", "CG"),
    ("Congo Republic", "CG"),
    ("Congo-Brazzaville", "CG"),
    ("Burma", "MM"),
    ("East Timor", "TL"),
    ("UAE", "AE"),
    ("Emirates", "AE"),
    ("KSA", "SA"),
    ("Bosnia", "BA"),
    ("Aland", "AX"),
    ("Faeroe Islands", "FO"),
    ("Falkland Islands", "FK"),
    ("Cocos Islands", "CC"),
    ("Pitcairn Islands", "PN"),
    ("Saint Helena", "SH"),
    ("Svalbard", "SJ"),
    ("Holland", "NL"),
    ("Netherlands, Kingdom of the", "NL"),
    ("Canary Islands", "ES"),
    ("Saint Barts", "BL"),
    ("Saint Barths", "BL"),
    ("Saint Martin", "MF"),
    ("Saint Maarten", "SX"),
    ("Sint Maarten", "SX"),
    ("Bonaire", "BQ"),
    ("Caribbean Netherlands", "BQ"),
    ("Saint Kitts", "KN"),
    ("Saint Vincent", "VC"),
    ("US Virgin Islands", "VI"),
    ("British Virgin Islands", "VG"),
    ("Sao Tome", "ST"),
];

/// ISO 3166-1 as published in Debian iso-codes 4.15 (alpha-2, alpha-3, English short name),
/// plus Kosovo under the user-assigned `XK`/`XKX`. Sorted by alpha-2 for binary search.
pub const COUNTRIES: &[(&str, &str, &str)] = &[
    ("AD", "AND", "Andorra"),
    ("AE", "ARE", "United Arab Emirates"),
    ("AF", "AFG", "Afghanistan"),
    ("AG", "ATG", "Antigua and Barbuda"),
    ("AI", "AIA", "Anguilla"),
    ("AL", "ALB", "Albania"),
    ("AM", "ARM", "Armenia"),
    ("AO", "AGO", "Angola"),
    ("AQ", "ATA", "Antarctica"),
    ("AR", "ARG", "Argentina"),
    ("AS", "ASM", "American Samoa"),
    ("AT", "AUT", "Austria"),
    ("AU", "AUS", "Australia"),
    ("AW", "ABW", "Aruba"),
    ("AX", "ALA", "Åland Islands"),
    ("AZ", "AZE", "Azerbaijan"),
    ("BA", "BIH", "Bosnia and Herzegovina"),
    ("BB", "BRB", "Barbados"),
    ("BD", "BGD", "Bangladesh"),
    ("BE", "BEL", "Belgium"),
    ("BF", "BFA", "Burkina Faso"),
    ("BG", "BGR", "Bulgaria"),
    ("BH", "BHR", "Bahrain"),
    ("BI", "BDI", "Burundi"),
    ("BJ", "BEN", "Benin"),
    ("BL", "BLM", "Saint Barthélemy"),
    ("BM", "BMU", "Bermuda"),
    ("BN", "BRN", "Brunei Darussalam"),
    ("BO", "BOL", "Bolivia, Plurinational State of"),
    ("BQ", "BES", "Bonaire, Sint Eustatius and Saba"),
    ("BR", "BRA", "Brazil"),
    ("BS", "BHS", "Bahamas"),
    ("BT", "BTN", "Bhutan"),
    ("BV", "BVT", "Bouvet Island"),
    ("BW", "BWA", "Botswana"),
    ("BY", "BLR", "Belarus"),
    ("BZ", "BLZ", "Belize"),
    ("CA", "CAN", "Canada"),
    ("CC", "CCK", "Cocos (Keeling) Islands"),
    ("CD", "COD", "Congo, The Democratic Republic of the"),
    ("CF", "CAF", "Central African Republic"),
    ("CG", "COG", "Congo"),
    ("CH", "CHE", "Switzerland"),
    ("CI", "CIV", "Côte d'Ivoire"),
    ("CK", "COK", "Cook Islands"),
    ("CL", "CHL", "Chile"),
    ("CM", "CMR", "Cameroon"),
    ("CN", "CHN", "China"),
    ("CO", "COL", "Colombia"),
    ("CR", "CRI", "Costa Rica"),
    ("CU", "CUB", "Cuba"),
    ("CV", "CPV", "Cabo Verde"),
    ("CW", "CUW", "Curaçao"),
    ("CX", "CXR", "Christmas Island"),
    ("CY", "CYP", "Cyprus"),
    ("CZ", "CZE", "Czechia"),
    ("DE", "DEU", "Germany"),
    ("DJ", "DJI", "Djibouti"),
    ("DK", "DNK", "Denmark"),
    ("DM", "DMA", "Dominica"),
    ("DO", "DOM", "Dominican Republic"),
    ("DZ", "DZA", "Algeria"),
    ("EC", "ECU", "Ecuador"),
    ("EE", "EST", "Estonia"),
    ("EG", "EGY", "Egypt"),
    ("EH", "ESH", "Western Sahara"),
    ("ER", "ERI", "Eritrea"),
    ("ES", "ESP", "Spain"),
    ("ET", "ETH", "Ethiopia"),
    ("FI", "FIN", "Finland"),
    ("FJ", "FJI", "Fiji"),
    ("FK", "FLK", "Falkland Islands (Malvinas)"),
    ("FM", "FSM", "Micronesia, Federated States of"),
    ("FO", "FRO", "Faroe Islands"),
    ("FR", "FRA", "France"),
    ("GA", "GAB", "Gabon"),
    ("GB", "GBR", "United Kingdom"),
    ("GD", "GRD", "Grenada"),
    ("GE", "GEO", "Georgia"),
    ("GF", "GUF", "French Guiana"),
    ("GG", "GGY", "Guernsey"),
    ("GH", "GHA", "Ghana"),
    ("GI", "GIB", "Gibraltar"),
    ("GL", "GRL", "Greenland"),
    ("GM", "GMB", "Gambia"),
    ("GN", "GIN", "Guinea"),
    ("GP", "GLP", "Guadeloupe"),
    ("GQ", "GNQ", "Equatorial Guinea"),
    ("GR", "GRC", "Greece"),
    ("GS", "SGS", "South Georgia and the South Sandwich Islands"),
    ("GT", "GTM", "Guatemala"),
    ("GU", "GUM", "Guam"),
    ("GW", "GNB", "Guinea-Bissau"),
    ("GY", "GUY", "Guyana"),
    ("HK", "HKG", "Hong Kong"),
    ("HM", "HMD", "Heard Island and McDonald Islands"),
    ("HN", "HND", "Honduras"),
    ("HR", "HRV", "Croatia"),
    ("HT", "HTI", "Haiti"),
    ("HU", "HUN", "Hungary"),
    ("ID", "IDN", "Indonesia"),
    ("IE", "IRL", "Ireland"),
    ("IL", "ISR", "Israel"),
    ("IM", "IMN", "Isle of Man"),
    ("IN", "IND", "India"),
    ("IO", "IOT", "British Indian Ocean Territory"),
    ("IQ", "IRQ", "Iraq"),
    ("IR", "IRN", "Iran, Islamic Republic of"),
    ("IS", "ISL", "Iceland"),
    ("IT", "ITA", "Italy"),
    ("JE", "JEY", "Jersey"),
    ("JM", "JAM", "Jamaica"),
    ("JO", "JOR", "Jordan"),
    ("JP", "JPN", "Japan"),
    ("KE", "KEN", "Kenya"),
    ("KG", "KGZ", "Kyrgyzstan"),
    ("KH", "KHM", "Cambodia"),
    ("KI", "KIR", "Kiribati"),
    ("KM", "COM", "Comoros"),
    ("KN", "KNA", "Saint Kitts and Nevis"),
    ("KP", "PRK", "Korea, Democratic People's Republic of"),
    ("KR", "KOR", "Korea, Republic of"),
    ("KW", "KWT", "Kuwait"),
    ("KY", "CYM", "Cayman Islands"),
    ("KZ", "KAZ", "Kazakhstan"),
    ("LA", "LAO", "Lao People's Democratic Republic"),
    ("LB", "LBN", "Lebanon"),
    ("LC", "LCA", "Saint Lucia"),
    ("LI", "LIE", "Liechtenstein"),
    ("LK", "LKA", "Sri Lanka"),
    ("LR", "LBR", "Liberia"),
    ("LS", "LSO", "Lesotho"),
    ("LT", "LTU", "Lithuania"),
    ("LU", "LUX", "Luxembourg"),
    ("LV", "LVA", "Latvia"),
    ("LY", "LBY", "Libya"),
    ("MA", "MAR", "Morocco"),
    ("MC", "MCO", "Monaco"),
    ("MD", "MDA", "Moldova, Republic of"),
    ("ME", "MNE", "Montenegro"),
    ("MF", "MAF", "Saint Martin (French part)"),
    ("MG", "MDG", "Madagascar"),
    ("MH", "MHL", "Marshall Islands"),
    ("MK", "MKD", "North Macedonia"),
    ("ML", "MLI", "Mali"),
    ("MM", "MMR", "Myanmar"),
    ("MN", "MNG", "Mongolia"),
    ("MO", "MAC", "Macao"),
    ("MP", "MNP", "Northern Mariana Islands"),
    ("MQ", "MTQ", "Martinique"),
    ("MR", "MRT", "Mauritania"),
    ("MS", "MSR", "Montserrat"),
    ("MT", "MLT", "Malta"),
    ("MU", "MUS", "Mauritius"),
    ("MV", "MDV", "Maldives"),
    ("MW", "MWI", "Malawi"),
    ("MX", "MEX", "Mexico"),
    ("MY", "MYS", "Malaysia"),
    ("MZ", "MOZ", "Mozambique"),
    ("NA", "NAM", "Namibia"),
    ("NC", "NCL", "New Caledonia"),
    ("NE", "NER", "Niger"),
    ("NF", "NFK", "Norfolk Island"),
    ("NG", "NGA", "Nigeria"),
    ("NI", "NIC", "Nicaragua"),
    ("NL", "NLD", "Netherlands"),
    ("NO", "NOR", "Norway"),
    ("NP", "NPL", "Nepal"),
    ("NR", "NRU", "Nauru"),
    ("NU", "NIU", "Niue"),
    ("NZ", "NZL", "New Zealand"),
    ("OM", "OMN", "Oman"),
    ("PA", "PAN", "Panama"),
    ("PE", "PER", "Peru"),
    ("PF", "PYF", "French Polynesia"),
    ("PG", "PNG", "Papua New Guinea"),
    ("PH", "PHL", "Philippines"),
    ("PK", "PAK", "Pakistan"),
    ("PL", "POL", "Poland"),
    ("PM", "SPM", "Saint Pierre and Miquelon"),
    ("PN", "PCN", "Pitcairn"),
    ("PR", "PRI", "Puerto Rico"),
    ("PS", "PSE", "Palestine, State of"),
    ("PT", "PRT", "Portugal"),
    ("PW", "PLW", "Palau"),
    ("PY", "PRY", "Paraguay"),
    ("QA", "QAT", "Qatar"),
    ("RE", "REU", "Réunion"),
    ("RO", "ROU", "Romania"),
    ("RS", "SRB", "Serbia"),
    ("RU", "RUS", "Russian Federation"),
    ("RW", "RWA", "Rwanda"),
    ("SA", "SAU", "Saudi Arabia"),
    ("SB", "SLB", "Solomon Islands"),
    ("SC", "SYC", "Seychelles"),
    ("SD", "SDN", "Sudan"),
    ("SE", "SWE", "Sweden"),
    ("SG", "SGP", "Singapore"),
    ("SH", "SHN", "Saint Helena, Ascension and Tristan da Cunha"),
    ("SI", "SVN", "Slovenia"),
    ("SJ", "SJM", "Svalbard and Jan Mayen"),
    ("SK", "SVK", "Slovakia"),
    ("SL", "SLE", "Sierra Leone"),
    ("SM", "SMR", "San Marino"),
    ("SN", "SEN", "Senegal"),
    ("SO", "SOM", "Somalia"),
    ("SR", "SUR", "Suriname"),
    ("SS", "SSD", "South Sudan"),
    ("ST", "STP", "Sao Tome and Principe"),
    ("SV", "SLV", "El Salvador"),
    ("SX", "SXM", "Sint Maarten (Dutch part)"),
    ("SY", "SYR", "Syrian Arab Republic"),
    ("SZ", "SWZ", "Eswatini"),
    ("TC", "TCA", "Turks and Caicos Islands"),
    ("TD", "TCD", "Chad"),
    ("TF", "ATF", "French Southern Territories"),
    ("TG", "TGO", "Togo"),
    ("TH", "THA", "Thailand"),
    ("TJ", "TJK", "Tajikistan"),
    ("TK", "TKL", "Tokelau"),
    ("TL", "TLS", "Timor-Leste"),
    ("TM", "TKM", "Turkmenistan"),
    ("TN", "TUN", "Tunisia"),
    ("TO", "TON", "Tonga"),
    ("TR", "TUR", "Türkiye"),
    ("TT", "TTO", "Trinidad and Tobago"),
    ("TV", "TUV", "Tuvalu"),
    ("TW", "TWN", "Taiwan, Province of China"),
    ("TZ", "TZA", "Tanzania, United Republic of"),
    ("UA", "UKR", "Ukraine"),
    ("UG", "UGA", "Uganda"),
    ("UM", "UMI", "United States Minor Outlying Islands"),
    ("US", "USA", "United States"),
    ("UY", "URY", "Uruguay"),
    ("UZ", "UZB", "Uzbekistan"),
    ("VA", "VAT", "Holy See (Vatican City State)"),
    ("VC", "VCT", "Saint Vincent and the Grenadines"),
    ("VE", "VEN", "Venezuela, Bolivarian Republic of"),
    ("VG", "VGB", "Virgin Islands, British"),
    ("VI", "VIR", "Virgin Islands, U.S."),
    ("VN", "VNM", "Viet Nam"),
    ("VU", "VUT", "Vanuatu"),
    ("WF", "WLF", "Wallis and Futuna"),
    ("WS", "WSM", "Samoa"),
    ("XK", "XKX", "Kosovo"),
    ("YE", "YEM", "Yemen"),
    ("YT", "MYT", "Mayotte"),
    ("ZA", "ZAF", "South Africa"),
    ("ZM", "ZMB", "Zambia"),
    ("ZW", "ZWE", "Zimbabwe"),
];

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn c(a2: &str) -> Country {
        Country::from_alpha2(a2).unwrap()
    }

    #[test]
    fn table_holds_iso_3166_1_plus_kosovo_with_unique_sorted_codes() {
        assert_eq!(COUNTRIES.len(), 250);
        assert!(
            COUNTRIES.windows(2).all(|w| w[0].0 < w[1].0),
            "sorted, no duplicate alpha-2"
        );
        let alpha3: HashSet<_> = COUNTRIES.iter().map(|r| r.1).collect();
        assert_eq!(alpha3.len(), COUNTRIES.len());
        for &(a2, a3, name) in COUNTRIES {
            assert!(
                a2.len() == 2 && a2.bytes().all(|b| b.is_ascii_uppercase()),
                "{a2}"
            );
            assert!(
                a3.len() == 3 && a3.bytes().all(|b| b.is_ascii_uppercase()),
                "{a3}"
            );
            assert_eq!(name.trim(), name);
            assert!(!name.is_empty());
        }
        assert_eq!(Country::all().len(), 250);
    }

    #[test]
    fn names_and_codes_do_not_collide() {
        // Building the index asserts that no key names two countries.
        assert!(index().len() > 3 * COUNTRIES.len());
        for &(alias, a2) in ALIASES {
            assert_eq!(Country::lookup(alias), Some(c(a2)), "{alias}");
        }
    }

    #[test]
    fn accessors() {
        let kr = c("KR");
        assert_eq!(kr.alpha2(), "KR");
        assert_eq!(kr.alpha3(), "KOR");
        assert_eq!(kr.name(), "Korea, Republic of");
        let xk = c("xk");
        assert_eq!((xk.alpha3(), xk.name()), ("XKX", "Kosovo"));
        assert_eq!(c("US").name(), "United States");
        assert_eq!(c("GB").alpha3(), "GBR");
    }

    #[test]
    fn from_alpha2_is_strict_but_ignores_case_and_padding() {
        assert_eq!(Country::from_alpha2(" jp\n"), Some(c("JP")));
        assert_eq!(Country::from_alpha2("Jp").map(Country::alpha2), Some("JP"));
        for bad in ["", "J", "JPN", "UK", "ZZ", "Japan", "é", "J P", "日本"] {
            assert_eq!(Country::from_alpha2(bad), None, "{bad:?}");
        }
        assert_eq!("DE".parse::<Country>(), Ok(c("DE")));
        assert_eq!(
            "Germany".parse::<Country>(),
            Err(UnknownCountry("Germany".into()))
        );
    }

    #[test]
    fn lookup_accepts_vendor_spellings() {
        let cases = [
            ("United States", "US"),
            ("USA", "US"),
            ("U.S.A.", "US"),
            ("us", "US"),
            ("United States of America", "US"),
            ("UK", "GB"),
            ("U.K.", "GB"),
            ("Great Britain", "GB"),
            ("United Kingdom", "GB"),
            ("GB", "GB"),
            ("South Korea", "KR"),
            ("Korea, Republic of", "KR"),
            ("Korea (Republic of)", "KR"),
            ("Russia", "RU"),
            ("Russian Federation", "RU"),
            ("Vietnam", "VN"),
            ("Viet Nam", "VN"),
            ("Türkiye", "TR"),
            ("Turkiye", "TR"),
            ("Turkey", "TR"),
            ("Czech Republic", "CZ"),
            ("Czechia", "CZ"),
            ("Macau", "MO"),
            ("Macao", "MO"),
            ("Hong Kong", "HK"),
            ("Taiwan", "TW"),
            ("Laos", "LA"),
            ("Iran", "IR"),
            ("Syria", "SY"),
            ("Moldova", "MD"),
            ("Bolivia", "BO"),
            ("Venezuela", "VE"),
            ("Tanzania", "TZ"),
            ("Ivory Coast", "CI"),
            ("Côte d'Ivoire", "CI"),
            ("Côte d’Ivoire", "CI"),
            ("Cote d Ivoire", "CI"),
            ("Cape Verde", "CV"),
            ("Cabo Verde", "CV"),
            ("Eswatini", "SZ"),
            ("Swaziland", "SZ"),
            ("North Macedonia", "MK"),
            ("Macedonia", "MK"),
            ("Palestine", "PS"),
            ("Vatican", "VA"),
            ("Holy See", "VA"),
            ("Brunei", "BN"),
            ("Micronesia", "FM"),
            ("Congo (DRC)", "CD"),
            ("DR Congo", "CD"),
            ("Democratic Republic of the Congo", "CD"),
            ("Republic of the Congo", "CG"),
            ("Congo", "CG"),
            ("Kosovo", "XK"),
            ("Canary Islands", "ES"),
            ("Isle of Man", "IM"),
            ("Jersey", "JE"),
            ("Guernsey", "GG"),
            ("Reunion", "RE"),
            ("Réunion", "RE"),
            ("Curacao", "CW"),
            ("Curaçao", "CW"),
            ("Saint Martin", "MF"),
            ("Sint Maarten", "SX"),
            ("St. Lucia", "LC"),
            ("St Lucia", "LC"),
            ("Saint Kitts and Nevis", "KN"),
            ("St Kitts & Nevis", "KN"),
            ("Antigua & Barbuda", "AG"),
            ("The Bahamas", "BS"),
            ("Guinea-Bissau", "GW"),
            ("Åland Islands", "AX"),
            ("Saint Barthélemy", "BL"),
            ("Sao Tomé and Príncipe", "ST"),
            // Decomposed (NFD) accents.
            ("Re\u{301}union", "RE"),
            ("  JAPAN  ", "JP"),
            ("jpn", "JP"),
            ("Japan", "JP"),
        ];
        for (input, a2) in cases {
            assert_eq!(Country::lookup(input), Some(c(a2)), "{input:?}");
        }
    }

    #[test]
    fn lookup_rejects_garbage() {
        for bad in [
            "",
            "   ",
            "--",
            "ZZ",
            "XYZ",
            "Atlantis",
            "Europe",
            "United",
            "Korea Republic of Mars",
            "日本",
            "U S A",
        ] {
            assert_eq!(Country::lookup(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn normalize_folds_case_accents_and_punctuation() {
        assert_eq!(normalize("  Côte d'Ivoire "), "cote d ivoire");
        assert_eq!(normalize("St. Kitts & Nevis"), "saint kitts and nevis");
        assert_eq!(normalize("The  Gambia"), "gambia");
        assert_eq!(
            normalize("Korea (Republic of)"),
            normalize("Korea, Republic of")
        );
        assert_eq!(normalize("ÅLAND"), "aland");
    }

    #[test]
    fn parse_list_sorts_and_dedups() {
        let got = parse_list("TW, cn;HK ,MO,CN").unwrap();
        assert_eq!(got, [c("CN"), c("HK"), c("MO"), c("TW")]);
        assert_eq!(parse_list("JP").unwrap(), [c("JP")]);
        assert_eq!(
            parse_list("Japan; South Korea, USA").unwrap(),
            [c("JP"), c("KR"), c("US")]
        );
        assert_eq!(parse_list("CN HK MO").unwrap(), [c("CN"), c("HK"), c("MO")]);
        assert_eq!(parse_list(" , ;").unwrap(), []);
    }

    #[test]
    fn parse_list_names_the_bad_piece() {
        assert_eq!(parse_list("JP,ZZ,KR"), Err(UnknownCountry("ZZ".into())));
        assert_eq!(
            parse_list("CN HK ZZ"),
            Err(UnknownCountry("CN HK ZZ".into()))
        );
        assert_eq!(parse_list("Narnia"), Err(UnknownCountry("Narnia".into())));
    }

    #[test]
    fn serde_uses_the_alpha2_string() {
        let json = serde_json::to_string(&[c("JP"), c("XK")]).unwrap();
        assert_eq!(json, r#"["JP","XK"]"#);
        let back: Vec<Country> = serde_json::from_str(r#"["jp","XK"]"#).unwrap();
        assert_eq!(back, [c("JP"), c("XK")]);
        assert!(serde_json::from_str::<Country>(r#""Japan""#).is_err());
        assert!(serde_json::from_str::<Country>(r#""ZZ""#).is_err());
    }

    #[test]
    fn display_debug_and_order_use_alpha2() {
        assert_eq!(format!("{} {:?}", c("DE"), c("DE")), "DE DE");
        assert!(c("AD") < c("ZW"));
    }
}
#[cfg(test)]
mod lookup_every_code {
    #[test]
    fn every_alpha2_and_alpha3_looks_up_to_itself() {
        for c in super::Country::all() {
            assert_eq!(
                super::Country::lookup(c.alpha2()),
                Some(c),
                "{}",
                c.alpha2()
            );
            assert_eq!(
                super::Country::lookup(c.alpha3()),
                Some(c),
                "{}",
                c.alpha3()
            );
        }
    }
}
