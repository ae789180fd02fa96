//! esim-gateway: one REST API for selling travel eSIMs from the cheapest of several
//! wholesale vendors. See README.md (Architecture) for the layout.

pub mod cache;
pub mod callbacks;
pub mod catalog;
pub mod config;
pub mod domain;
pub mod hints;
pub mod http;
pub mod ordering;
pub mod routing;
pub mod sandbox;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod vendors;
pub mod workers;

pub use state::{AppShared, AppState};

/// The whole HTTP application for a given state.
pub fn build_app(state: AppState) -> axum::Router {
    let (router, _openapi) = http::api_router().split_for_parts();
    let callback_limiter = std::sync::Arc::new(http::webhooks::CallbackLimiter::new(
        state.config.callback_rate_limit,
    ));
    http::with_layers(router, state.config.request_timeout)
        .layer(axum::Extension(callback_limiter))
        .with_state(state)
}

/// Serves `app` with the default connection limits until `shutdown` resolves, then stops
/// accepting connections and lets in-flight requests finish before returning.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, app, config::ServerLimits::default(), shutdown).await
}

/// [`serve`] with the given header/keep-alive timeouts and connection cap.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    limits: config::ServerLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    http::server::serve(listener, app, limits, shutdown).await
}
