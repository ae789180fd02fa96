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
    /// Enabled vendors (live adapters or sandbox simulators).
    pub vendors: Arc<Vendors>,
    /// This replica's in-memory catalogue and storefront keys (see [`crate::cache`]).
    pub cache: Arc<ReplicaCache>,
}
