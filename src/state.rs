use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;

use crate::{cache::ReplicaCache, config::Config, vendors::registry::Vendors};

/// Everything a handler needs, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub config: Arc<Config>,
    pub metrics: PrometheusHandle,
    /// Live-mode vendors: those with real credentials (empty in a sandbox deployment).
    pub live_vendors: Arc<Vendors>,
    /// Test-mode vendors: the built-in simulators (empty with `TEST_MODE=off`).
    pub test_vendors: Arc<Vendors>,
    /// This replica's in-memory catalogue and storefront keys (see [`crate::cache`]).
    pub cache: Arc<ReplicaCache>,
}

impl AppState {
    /// The vendors a request of this mode may see and buy from; nothing else.
    pub fn vendors(&self, livemode: bool) -> &Arc<Vendors> {
        if livemode {
            &self.live_vendors
        } else {
            &self.test_vendors
        }
    }

    /// Live mode needs live vendors (a live key must never be served by a simulator); test
    /// mode is on unless `TEST_MODE=off`. Keys of an unavailable mode get 403.
    pub fn mode_available(&self, livemode: bool) -> bool {
        if livemode {
            !self.live_vendors.is_empty()
        } else {
            self.config.test_mode
        }
    }
}
