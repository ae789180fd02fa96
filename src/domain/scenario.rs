//! Storefront test scenarios: `test_scenario` on `POST /v1/orders` in test mode makes that
//! one order meet a hard path at the simulators on purpose (Stripe's magic test values).

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

macro_rules! scenarios {
    ($($variant:ident $name:literal: $doc:literal;)*) => {
        /// A scenario one test-mode order meets at the simulators.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        pub enum TestScenario {
            $(#[doc = $doc] #[serde(rename = $name)] $variant,)*
        }

        impl TestScenario {
            pub const ALL: &[TestScenario] = &[$(TestScenario::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(TestScenario::$variant => $name,)*
                }
            }

            /// What the scenario does, for documentation.
            pub fn description(self) -> &'static str {
                match self {
                    $(TestScenario::$variant => $doc,)*
                }
            }
        }
    };
}

scenarios! {
    SoldOutThenFallback "sold_out_then_fallback": "The cheapest vendor answers sold out; the order is bought from the next cheapest (`completed`, two attempts). A plan sold by one vendor only fails as `all_sold_out`.";
    AllSoldOut "all_sold_out": "Every vendor answers sold out: the order is `failed` with `failure.code` `sold_out`, nothing is charged, `order.failed` is sent.";
    VendorTimeoutThenReconciled "vendor_timeout_then_reconciled": "The vendor takes the order but its answer arrives after the gateway's timeout: the order stays `pending` (never bought elsewhere) until reconciliation with that vendor finds it, then `completed`.";
    SlowAsyncProvisioning "slow_async_provisioning": "Bought from a vendor that delivers asynchronously, which takes `TEST_SCENARIO_DELAY` (default 60 s) to issue the eSIM: the order is `provisioning` until the vendor's callback (or the gateway's poll) brings it, then `completed` and `order.completed`. Only vendors that deliver asynchronously (the eSIM Access simulator) are tried.";
    Usage80Percent "usage_80_percent": "Completes; `TEST_SCENARIO_DELAY` (default 60 s) later the vendor reports 80% of the data used by callback: the eSIM's usage shows it and `esim.usage_threshold` (`threshold_percent` 80) is sent. Only vendors that push usage (the eSIMfx simulator) are tried.";
    CallbackLost "callback_lost": "The vendor never delivers its callbacks for this order: an asynchronous delivery still completes, by the gateway's polling.";
    CancelRefused "cancel_refused": "The order completes, but the vendor refuses its cancellation: `POST /v1/orders/{id}/cancel` answers `409 order_not_cancellable`.";
}

impl fmt::Display for TestScenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not one of [`TestScenario::ALL`]; the message lists the allowed ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown test_scenario; allowed: {}", allowed())]
pub struct UnknownScenario;

pub fn allowed() -> String {
    TestScenario::ALL
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

impl FromStr for TestScenario {
    type Err = UnknownScenario;
    fn from_str(s: &str) -> Result<Self, UnknownScenario> {
        TestScenario::ALL
            .iter()
            .copied()
            .find(|x| x.as_str() == s)
            .ok_or(UnknownScenario)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_ones_list_the_allowed() {
        for s in TestScenario::ALL {
            assert_eq!(s.as_str().parse::<TestScenario>(), Ok(*s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        let e = "nope".parse::<TestScenario>().unwrap_err().to_string();
        assert!(
            e.contains("sold_out_then_fallback") && e.contains("cancel_refused"),
            "{e}"
        );
    }
}
