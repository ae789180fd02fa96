//! HTTP edge: routing, auth, validation, DTOs and the OpenAPI document. Handlers extract,
//! call one service function and map the result; nothing here talks to a vendor.

pub mod admin;
pub mod auth;
pub mod balances;
pub mod docs;
pub mod error;
pub mod esims;
pub mod extract;
pub mod health;
pub mod middleware;
pub mod orders;
pub mod paging;
pub mod plans;
pub mod server;
pub mod storefronts;
pub mod webhooks;

use std::time::Duration;

use axum::{
    Router,
    extract::DefaultBodyLimit,
    http::{HeaderName, StatusCode, header},
};
use tower_http::{
    catch_panic::CatchPanicLayer,
    compression::CompressionLayer,
    limit::RequestBodyLimitLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    sensitive_headers::SetSensitiveRequestHeadersLayer,
    timeout::TimeoutLayer,
    trace::TraceLayer,
};
use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};
use utoipa_axum::router::OpenApiRouter;

use crate::AppState;
use error::ErrorBody;

/// Largest request body the JSON API accepts.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "esim-gateway",
        description = "One REST API for selling travel eSIMs, bought from the cheapest of several wholesale vendors.\n\nErrors always have the shape `{\"error\": {\"code\", \"message\", \"request_id\"}}`.",
        license(name = "Apache-2.0"),
    ),
    modifiers(&SecuritySchemes),
    components(schemas(ErrorBody)),
    tags(
        (name = "storefront", description = "Storefront API (`/v1`): Bearer storefront API key"),
        (name = "admin", description = "Admin API (`/admin`): Bearer ADMIN_TOKEN"),
        (name = "webhooks", description = "Vendor callbacks, one route per vendor"),
        (name = "operations", description = "Health, readiness and metrics"),
        (name = "docs", description = "This documentation"),
    )
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = |desc: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(desc.to_string()))
                    .build(),
            )
        };
        components.add_security_scheme("admin_token", bearer("ADMIN_TOKEN"));
        components.add_security_scheme("storefront_key", bearer("Storefront API key (sk_…)"));
    }
}

/// Every documented route. A route is added here through `routes!`, so it cannot exist
/// without its OpenAPI description.
pub fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(health::router())
        .merge(docs::router())
        .merge(storefronts::router())
        .merge(plans::router())
        .merge(orders::router())
        .merge(esims::router())
        .merge(webhooks::router())
        .merge(admin::router())
        .merge(balances::router())
}

pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = api_router().split_for_parts().1;
    document_request_limits(&mut doc);
    doc
}

/// The URI and header limits (`middleware::MAX_URI_BYTES`, `MAX_HEADER_BYTES`) can refuse
/// any request before its route runs, so every operation lists their answers.
fn document_request_limits(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let refusal = |description: String| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build()
    };
    let uri = refusal(format!(
        "`uri_too_long`: path and query over {} bytes",
        middleware::MAX_URI_BYTES
    ));
    let headers = refusal(format!(
        "`headers_too_large`: more than {} header fields or {} bytes of headers",
        middleware::MAX_HEADER_COUNT,
        middleware::MAX_HEADER_BYTES
    ));
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
            &mut item.head,
            &mut item.options,
            &mut item.trace,
        ];
        for op in operations.into_iter().flatten() {
            let responses = &mut op.responses.responses;
            responses.insert("414".into(), uri.clone().into());
            responses.insert("431".into(), headers.clone().into());
        }
    }
}

pub fn openapi_json() -> String {
    openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serializes")
}

/// Adds fallbacks and the cross-cutting layers. Layers listed first are outermost.
pub fn with_layers(router: Router<AppState>, request_timeout: Duration) -> Router<AppState> {
    let x_request_id = HeaderName::from_static(middleware::REQUEST_ID_HEADER);
    // Each `.layer` call wraps everything before it, so the last one is outermost. Separate
    // calls (not one ServiceBuilder) let axum adapt body types between layers.
    router
        .fallback(middleware::not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            request_timeout,
        ))
        .layer(CatchPanicLayer::custom(middleware::panic_response))
        .layer(axum::middleware::from_fn(middleware::request_context))
        .layer(CompressionLayer::new())
        .layer(TraceLayer::new_for_http().make_span_with(make_span))
        .layer(PropagateRequestIdLayer::new(x_request_id.clone()))
        .layer(SetRequestIdLayer::new(x_request_id, MakeRequestUuid))
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
        ]))
        .layer(axum::middleware::from_fn(middleware::sanitize_request_id))
}

async fn method_not_allowed() -> crate::http::error::ApiError {
    crate::http::error::ApiError::MethodNotAllowed
}

fn make_span(req: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let request_id = req
        .headers()
        .get(middleware::REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!(
        "request",
        method = %req.method(),
        path = %req.uri().path(),
        request_id,
        storefront_id = tracing::field::Empty,
    )
}
