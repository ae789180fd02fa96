//! Test mode and live mode (Stripe's `livemode`): every key, order, eSIM, plan and event
//! belongs to one, and nothing crosses between them.

/// The `mode` label of metrics: `live` or `test` (a closed set), so test revenue never
/// mixes with live revenue in a dashboard.
pub fn label(livemode: bool) -> &'static str {
    if livemode { "live" } else { "test" }
}
