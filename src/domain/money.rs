use std::{fmt, str::FromStr};

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

    /// Rounds up to whole cents: retail prices never undercut the computed cost.
    pub fn round_up_to_cents(self) -> Self {
        let amount = self
            .amount
            .round_dp_with_strategy(2, RoundingStrategy::AwayFromZero);
        Self {
            amount: normalize_cents(amount),
            currency: self.currency,
        }
    }
}

/// Always two decimal places so `14.9` prints as `14.90`.
fn normalize_cents(mut d: Decimal) -> Decimal {
    d.rescale(2);
    d
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
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
        assert_eq!(m.round_up_to_cents().amount.to_string(), "14.91");
        let m = Money::new(Decimal::from_str("14.9").unwrap(), Currency::USD);
        assert_eq!(m.round_up_to_cents().amount.to_string(), "14.90");
    }
}
