//! `/docs` (Swagger UI, vendored under `assets/swagger-ui`, served from the binary so the docs
//! work offline) and `/openapi.json`.
//!
//! Served by hand rather than by `utoipa-swagger-ui`: that crate fetches Swagger UI in its
//! build script (or bundles a zip of its own release through `zip` and `rust-embed`), and
//! serves it under other URLs (`/docs/` plus a redirect) that are neither in the OpenAPI
//! document nor answered with our error shape; fifty lines here keep all of that as it is.

use std::sync::OnceLock;

use axum::{
    http::{HeaderValue, header},
    response::{Html, IntoResponse, Response},
};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    AppState,
    http::error::{ApiError, ErrorBody},
    http::extract::ApiPath,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(docs_page))
        .routes(routes!(docs_asset))
        .routes(routes!(openapi_json))
}

const INDEX_HTML: &str = r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>esim-gateway API</title>
  <link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script src="/docs/assets/init.js"></script>
</body>
</html>
"#;

// validatorUrl: null stops Swagger UI from calling its public validator service.
const INIT_JS: &str = r##"window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  persistAuthorization: true
});
"##;

struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "swagger-ui-bundle.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../assets/swagger-ui/swagger-ui-bundle.js"),
    },
    Asset {
        name: "swagger-ui.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../assets/swagger-ui/swagger-ui.css"),
    },
    Asset {
        name: "favicon-32x32.png",
        content_type: "image/png",
        bytes: include_bytes!("../../assets/swagger-ui/favicon-32x32.png"),
    },
    Asset {
        name: "init.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: INIT_JS.as_bytes(),
    },
];

/// Interactive API documentation.
#[utoipa::path(get, path = "/docs", tag = "docs", responses(
    (status = 200, description = "Swagger UI page", content_type = "text/html", body = String),
))]
async fn docs_page() -> Html<&'static str> {
    Html(INDEX_HTML)
}

/// Static files of the documentation UI, served by the gateway itself.
#[utoipa::path(get, path = "/docs/assets/{asset}", tag = "docs",
    params(("asset" = String, Path, description = "File name, e.g. swagger-ui.css")),
    responses(
        (status = 200, description = "The file"),
        (status = 404, body = ErrorBody),
    ))]
async fn docs_asset(ApiPath(asset): ApiPath<String>) -> Result<Response, ApiError> {
    let found = ASSETS
        .iter()
        .find(|a| a.name == asset)
        .ok_or_else(|| ApiError::not_found("not_found", "no such documentation asset"))?;
    let mut resp = found.bytes.into_response();
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(found.content_type),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    Ok(resp)
}

/// The OpenAPI 3.1 document of this API, generated from the code.
#[utoipa::path(get, path = "/openapi.json", tag = "docs", responses(
    (status = 200, description = "OpenAPI document", content_type = "application/json", body = Object),
))]
async fn openapi_json() -> Response {
    static SPEC: OnceLock<String> = OnceLock::new();
    let spec = SPEC.get_or_init(crate::http::openapi_json);
    ([(header::CONTENT_TYPE, "application/json")], spec.as_str()).into_response()
}
