use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;

use crate::{cache::ReplicaCache, config::Config, vendors::registry::Vendors};

/// Everything a handler needs. One `Arc`: axum clones the state for every request and
/// every layer that takes it, and a clone (and its drop) of six shared counters per request
/// showed up in the read path's profile.
#[derive(Clone)]
pub struct AppState(Arc<AppShared>);

impl AppState {
    pub fn new(shared: AppShared) -> AppState {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppShared;

    fn deref(&self) -> &AppShared {
        &self.0
    }
}

/// What [`AppState`] shares.
pub struct AppShared {
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

impl AppShared {
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
