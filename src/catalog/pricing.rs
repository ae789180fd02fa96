//! Retail prices: the cheapest eligible wholesale cost, converted into the retail currency
//! and marked up, rounded up to the retail currency's minor unit (cents, whole yen, fils) so
//! a price never undercuts its cost, and never below cost + the minimum margin
//! (`MIN_MARGIN_PERCENT`, a share of the retail price: price ≥ cost / (1 − min %)).

use rust_decimal::Decimal;

pub use crate::domain::money::FxRates;
use crate::domain::money::{Currency, Money};

/// Retail price settings, from the configuration (`Pricing::from_config`, defined beside
/// the configuration so the catalogue does not depend on it).
#[derive(Debug, Clone)]
pub struct Pricing {
    pub fx: FxRates,
    pub retail_currency: Currency,
    pub markup_percent: Decimal,
    /// The least margin as a percentage of the retail price (below 100).
    pub min_margin_percent: Decimal,
}

impl Pricing {
    /// A wholesale cost in the retail currency, unrounded; `None` when a rate is unknown.
    pub fn cost_in_retail(&self, cost: Money) -> Option<Decimal> {
        self.fx
            .convert(cost.amount, cost.currency, self.retail_currency)
    }

    /// cost × (1 + markup %), raised to cost / (1 − min margin %) when that is more, in
    /// the retail currency, rounded up to its minor unit.
    pub fn retail_from_retail_cost(&self, cost_in_retail: Decimal) -> Money {
        let factor = Decimal::ONE + self.markup_percent / Decimal::ONE_HUNDRED;
        let marked_up = cost_in_retail * factor;
        let keep = Decimal::ONE - self.min_margin_percent / Decimal::ONE_HUNDRED;
        let floor = if keep > Decimal::ZERO {
            cost_in_retail / keep
        } else {
            marked_up
        };
        Money::new(marked_up.max(floor), self.retail_currency).round_up_to_minor_unit()
    }

    /// The most an order priced `price` (retail currency) may cost and keep the minimum
    /// margin: price × (1 − min margin %).
    pub fn max_cost_for(&self, price: Decimal) -> Decimal {
        price * (Decimal::ONE - self.min_margin_percent / Decimal::ONE_HUNDRED)
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
            min_margin_percent: Decimal::ZERO,
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
    fn yen_prices_are_whole_yen() {
        let p = Pricing {
            retail_currency: "JPY".parse().unwrap(),
            ..pricing("20")
        };
        // 10.00 USD = 1492.537… JPY at 0.0067 USD per yen; × 1.2 = 1791.04… → 1792.
        let usd = Money::new(dec("10.00"), Currency::USD);
        assert_eq!(p.retail_price(usd).unwrap().amount.to_string(), "1792");
        // Already whole: no rounding up, and no ".00".
        let jpy = Money::new(dec("1000"), "JPY".parse().unwrap());
        assert_eq!(p.retail_price(jpy).unwrap().amount.to_string(), "1200");
    }

    #[test]
    fn three_decimal_currencies_round_up_to_the_fils() {
        let mut fx = FxRates::builtin();
        fx.set("KWD".parse().unwrap(), dec("3.25"));
        let p = Pricing {
            fx,
            retail_currency: "KWD".parse().unwrap(),
            ..pricing("0")
        };
        // 10.00 USD / 3.25 = 3.0769… KWD → 3.077.
        let usd = Money::new(dec("10.00"), Currency::USD);
        assert_eq!(p.retail_price(usd).unwrap().amount.to_string(), "3.077");
        // 6.50 USD = 2 KWD exactly: three decimals shown.
        let usd = Money::new(dec("6.50"), Currency::USD);
        assert_eq!(p.retail_price(usd).unwrap().amount.to_string(), "2.000");
    }

    #[test]
    fn the_minimum_margin_floors_the_price_above_a_small_markup() {
        let p = Pricing {
            min_margin_percent: dec("10"),
            ..pricing("5")
        };
        // 9.00 × 1.05 = 9.45 keeps 4.8 %; 9.00 / 0.9 = 10.00 keeps 10 %.
        let usd = Money::new(dec("9.00"), Currency::USD);
        assert_eq!(p.retail_price(usd).unwrap().amount, dec("10.00"));
        assert_eq!(p.max_cost_for(dec("10.00")), dec("9.00"));
        // A markup above the floor wins.
        let p = Pricing {
            min_margin_percent: dec("10"),
            ..pricing("20")
        };
        assert_eq!(p.retail_price(usd).unwrap().amount, dec("10.80"));
    }

    #[test]
    fn fractional_markups_stay_exact() {
        let p = pricing("12.5");
        let usd = Money::new(dec("3.33"), Currency::USD);
        // 3.33 × 1.125 = 3.74625 → 3.75
        assert_eq!(p.retail_price(usd).unwrap().amount, dec("3.75"));
    }
}
