//! Money: ISO 4217 currencies (with their minor units), amounts in them, and the FX table
//! that converts between them.

use std::{collections::BTreeMap, fmt, str::FromStr};

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An ISO 4217 currency code: three ASCII capital letters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, example = "USD")]
pub struct Currency([u8; 3]);

impl Currency {
    pub const USD: Currency = Currency(*b"USD");

    pub fn as_str(&self) -> &str {
        // Constructed only from ASCII capitals.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }

    /// Decimal places of the currency's minor unit (JPY 0, USD 2, KWD 3). A code ISO 4217
    /// does not list, or one without a minor unit (XAU), counts in hundredths.
    pub fn minor_units(&self) -> u32 {
        iso_currency::Currency::from_code(self.as_str())
            .and_then(iso_currency::Currency::exponent)
            .map_or(2, u32::from)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not an ISO 4217 currency code (three capital letters): {0:?}")]
pub struct InvalidCurrency(pub String);

impl FromStr for Currency {
    type Err = InvalidCurrency;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b = s.as_bytes();
        if b.len() == 3 && b.iter().all(u8::is_ascii_uppercase) {
            Ok(Currency([b[0], b[1], b[2]]))
        } else {
            Err(InvalidCurrency(s.to_string()))
        }
    }
}

impl TryFrom<String> for Currency {
    type Error = InvalidCurrency;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.as_str().to_string()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An amount of money in a currency. On the wire: `{"amount": "12.50", "currency": "USD"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Money {
    /// Decimal string, never a float.
    #[serde(with = "rust_decimal::serde::str")]
    #[schema(value_type = String, example = "14.90")]
    pub amount: Decimal,
    pub currency: Currency,
}

impl Money {
    pub fn new(amount: Decimal, currency: Currency) -> Self {
        Self { amount, currency }
    }

    /// Rounds up to the currency's minor unit (cents, whole yen, fils) and shows exactly
    /// that many decimals (`14.9` USD prints as `14.90`, 1500 JPY as `1500`): retail prices
    /// never undercut the computed cost.
    pub fn round_up_to_minor_unit(self) -> Self {
        let places = self.currency.minor_units();
        let mut amount = self
            .amount
            .round_dp_with_strategy(places, RoundingStrategy::AwayFromZero);
        amount.rescale(places);
        Self {
            amount,
            currency: self.currency,
        }
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

/// USD value of one unit of each currency (`FX_RATES=HKD=0.128,EUR=1.08`).
#[derive(Debug, Clone, PartialEq)]
pub struct FxRates(BTreeMap<Currency, Decimal>);

impl FxRates {
    /// Used when `FX_RATES` is not set; entries given in `FX_RATES` override these.
    pub fn builtin() -> Self {
        let table = [
            ("USD", "1"),
            ("EUR", "1.08"),
            ("GBP", "1.27"),
            ("HKD", "0.128"),
            ("CNY", "0.138"),
            ("SGD", "0.74"),
            ("AUD", "0.65"),
            ("CAD", "0.73"),
            ("JPY", "0.0067"),
        ];
        FxRates(
            table
                .iter()
                .map(|(c, r)| (c.parse().expect("valid"), r.parse().expect("valid")))
                .collect(),
        )
    }

    /// Sets (or replaces) the USD value of one unit of `currency`.
    pub fn set(&mut self, currency: Currency, usd_per_unit: Decimal) {
        self.0.insert(currency, usd_per_unit);
    }

    pub fn usd_per_unit(&self, c: Currency) -> Option<Decimal> {
        self.0.get(&c).copied()
    }

    /// Converts `amount` of `from` into `to` through USD; `None` when a rate is unknown.
    /// Unrounded: the caller rounds once, at the end (see [`Money::round_up_to_minor_unit`]).
    pub fn convert(&self, amount: Decimal, from: Currency, to: Currency) -> Option<Decimal> {
        if from == to {
            return Some(amount);
        }
        let usd = amount.checked_mul(self.usd_per_unit(from)?)?;
        usd.checked_div(self.usd_per_unit(to)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn currency_parses_only_three_capitals() {
        assert_eq!("HKD".parse::<Currency>().unwrap().as_str(), "HKD");
        for bad in ["usd", "US", "USDD", "U$D", ""] {
            assert!(bad.parse::<Currency>().is_err(), "{bad}");
        }
    }

    #[test]
    fn money_serializes_amount_as_string() {
        let m = Money::new(Decimal::from_str("12.50").unwrap(), Currency::USD);
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"amount":"12.50","currency":"USD"}"#
        );
        let back: Money = serde_json::from_str(r#"{"amount":"0.1","currency":"EUR"}"#).unwrap();
        assert_eq!(back.amount, Decimal::from_str("0.1").unwrap());
    }

    #[test]
    fn rounding_goes_up_to_the_next_cent() {
        let m = Money::new(Decimal::from_str("14.901").unwrap(), Currency::USD);
        assert_eq!(m.round_up_to_minor_unit().amount.to_string(), "14.91");
        let m = Money::new(Decimal::from_str("14.9").unwrap(), Currency::USD);
        assert_eq!(m.round_up_to_minor_unit().amount.to_string(), "14.90");
    }

    #[test]
    fn rounding_follows_the_currency_minor_unit() {
        let amount = |s: &str, c: &str| Money::new(s.parse().unwrap(), c.parse().unwrap());
        let round = |s: &str, c: &str| amount(s, c).round_up_to_minor_unit().amount.to_string();
        assert_eq!(round("1499.2", "JPY"), "1500");
        assert_eq!(round("1500.00", "JPY"), "1500");
        assert_eq!(round("1.2341", "KWD"), "1.235");
        assert_eq!(round("1.2", "BHD"), "1.200");
        // Not in ISO 4217, or no minor unit: hundredths.
        assert_eq!(round("1.231", "ZZZ"), "1.24");
        assert_eq!(round("1.231", "XAU"), "1.24");
    }

    #[test]
    fn minor_units_come_from_iso_4217() {
        let units = |c: &str| c.parse::<Currency>().unwrap().minor_units();
        assert_eq!(
            [units("USD"), units("JPY"), units("KWD"), units("CLF")],
            [2, 0, 3, 4]
        );
    }
}
