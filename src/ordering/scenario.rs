//! Storefront test scenarios (`domain::scenario`) played by the built-in simulators: each
//! arms faults scoped to this one order (`sandbox::Faults::inject_for`, keyed by our order
//! id, which the adapters send as the vendor's reference) before the first vendor call, so
//! no other order, storefront or mode meets them. Live vendors have no simulator handle:
//! nothing can be armed there (and `test_scenario` is refused in live mode anyway).

use super::{Ctx, purchase::Ranked};
use crate::{
    domain::scenario::TestScenario,
    sandbox::{
        CALLBACK_OPERATION, CANCEL_OPERATION, Fault, ORDER_OPERATIONS, PROVISIONING_OPERATION,
        USAGE_SCENARIO_OPERATION,
    },
    vendors::{VendorId, sandbox::scenario_codes},
};

/// The offers a scenario order may try: only vendors whose order call names our order id
/// (a fault scoped to the order must be able to find it there) and that can play the
/// scenario (an asynchronous delivery, usage callbacks).
pub fn eligible(scenario: TestScenario, ranked: Vec<Ranked>) -> Vec<Ranked> {
    ranked
        .into_iter()
        .filter(|c| {
            let codes = scenario_codes(c.offer.vendor);
            codes.order_names_client_reference
                && match scenario {
                    TestScenario::SlowAsyncProvisioning => codes.async_delivery,
                    TestScenario::Usage80Percent => codes.usage_callbacks,
                    _ => true,
                }
        })
        .collect()
}

/// Arms `scenario` for `order_id` on the simulators behind `ranked` (test mode).
pub fn arm(ctx: &Ctx, order_id: &str, scenario: TestScenario, ranked: &[Ranked]) {
    let sims = ctx.vendors(false);
    let mut vendors: Vec<VendorId> = ranked.iter().map(|c| c.offer.vendor).collect();
    vendors.dedup();
    let reject = |code: &str| Fault::Reject {
        code: code.to_string(),
        message: None,
    };
    let targets: &[VendorId] = match scenario {
        TestScenario::SoldOutThenFallback | TestScenario::VendorTimeoutThenReconciled => {
            &vendors[..vendors.len().min(1)]
        }
        _ => &vendors,
    };
    for &v in targets {
        let Some(sim) = sims.simulator(v) else {
            continue;
        };
        let codes = scenario_codes(v);
        let faults = &sim.faults;
        let later = |operation: &str, times: Option<u32>| {
            let millis = ctx.scenario_delay.as_millis() as u64;
            faults.inject_for(order_id, operation, Fault::Delay { millis }, times);
        };
        match scenario {
            TestScenario::SoldOutThenFallback | TestScenario::AllSoldOut => {
                for op in ORDER_OPERATIONS {
                    faults.inject_for(order_id, op, reject(codes.sold_out), None);
                }
            }
            TestScenario::VendorTimeoutThenReconciled => {
                // The vendor acts, then answers long after the adapter gave up: an unknown
                // outcome. Once: reconciliation (or an idempotent resend) finds the order.
                let millis = ctx.reconcile_settle.as_millis() as u64;
                for op in ORDER_OPERATIONS {
                    faults.inject_for(order_id, op, Fault::Delay { millis }, Some(1));
                }
            }
            // Profiles (every look) or the usage callback (once) come `TEST_SCENARIO_DELAY`
            // later.
            TestScenario::SlowAsyncProvisioning => later(PROVISIONING_OPERATION, None),
            TestScenario::Usage80Percent => later(USAGE_SCENARIO_OPERATION, Some(1)),
            TestScenario::CallbackLost => {
                faults.inject_for(order_id, CALLBACK_OPERATION, Fault::Garbled, None);
            }
            TestScenario::CancelRefused => {
                if let Some(code) = codes.cancel_refused {
                    faults.inject_for(order_id, CANCEL_OPERATION, reject(code), None);
                }
            }
        }
    }
    tracing::info!(%order_id, scenario = %scenario, vendors = ?targets, "test scenario armed at the simulators");
}
