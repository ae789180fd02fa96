//! Retail prices: the cheapest eligible wholesale cost, converted into the retail currency
//! and marked up, rounded up to the cent so a price never undercuts its cost.

use rust_decimal::Decimal;

use crate::{
    config::FxRates,
    domain::money::{Currency, Money},
};

/// Retail price settings, from the configuration.
#[derive(Debug, Clone)]
pub struct Pricing {
    pub fx: FxRates,
    pub retail_currency: Currency,
    pub markup_percent: Decimal,
}

impl Pricing {
    pub fn from_config(config: &crate::config::Config) -> Self {
        Pricing {
            fx: config.fx_rates.clone(),
            retail_currency: config.retail_currency,
            markup_percent: config.markup_percent,
        }
    }

    /// A wholesale cost in the retail currency, unrounded; `None` when a rate is unknown.
    pub fn cost_in_retail(&self, cost: Money) -> Option<Decimal> {
        self.fx
            .convert(cost.amount, cost.currency, self.retail_currency)
    }

    /// cost × (1 + markup %), in the retail currency, rounded up to the cent.
    pub fn retail_from_retail_cost(&self, cost_in_retail: Decimal) -> Money {
        let factor = Decimal::ONE + self.markup_percent / Decimal::ONE_HUNDRED;
        Money::new(cost_in_retail * factor, self.retail_currency).round_up_to_cents()
    }

    pub fn retail_price(&self, cost: Money) -> Option<Money> {
        Some(self.retail_from_retail_cost(self.cost_in_retail(cost)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn pricing(markup: &str) -> Pricing {
        Pricing {
            fx: FxRates::builtin(),
            retail_currency: Currency::USD,
            markup_percent: dec(markup),
        }
    }

    #[test]
    fn converts_marks_up_and_rounds_up_to_the_cent() {
        let p = pricing("20");
        // 70 HKD × 0.128 = 8.96 USD; × 1.2 = 10.752 → 10.76
        let hkd = Money::new(dec("70"), "HKD".parse().unwrap());
        assert_eq!(p.retail_price(hkd).unwrap().amount, dec("10.76"));
        // 10.00 USD × 1.2 = 12.00 exactly: no rounding up.
        let usd = Money::new(dec("10.00"), Currency::USD);
        assert_eq!(p.retail_price(usd).unwrap().amount.to_string(), "12.00");
        // 7.50 GBP × 1.27 = 9.525 USD; × 1.2 = 11.43
        let gbp = Money::new(dec("7.50"), "GBP".parse().unwrap());
        assert_eq!(p.retail_price(gbp).unwrap().amount, dec("11.43"));
    }

    #[test]
    fn retail_currency_other_than_usd_goes_through_usd() {
        let p = Pricing {
            retail_currency: "EUR".parse().unwrap(),
            ..pricing("0")
        };
        // 10.80 USD = 10 EUR at 1.08 USD per EUR.
        let usd = Money::new(dec("10.80"), Currency::USD);
        assert_eq!(p.retail_price(usd).unwrap().amount, dec("10.00"));
        let unknown = Money::new(dec("1"), "XAF".parse().unwrap());
        assert!(p.retail_price(unknown).is_none());
    }

    #[test]
    fn fractional_markups_stay_exact() {
        let p = pricing("12.5");
        let usd = Money::new(dec("3.33"), Currency::USD);
        // 3.33 × 1.125 = 3.74625 → 3.75
        assert_eq!(p.retail_price(usd).unwrap().amount, dec("3.75"));
    }
}
