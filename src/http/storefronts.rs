//! `/admin/storefronts`: issue, list, rotate and revoke storefront API keys.

use crate::domain::secret::ExposeSecret;
use axum::{Json, body::Bytes, extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    AppState,
    domain::{
        api_key,
        ids::{StorefrontId, check_text, new_id},
        webhook_url,
    },
    http::error::{ApiError, ApiResult, ErrorBody},
    http::{
        auth::{Admin, Storefront},
        extract::{ApiJson, ApiPath, ApiQuery, optional_json},
    },
    store::{
        self,
        storefronts::{NewKey, WebhookUrls},
    },
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_storefront, list_storefronts))
        .routes(routes!(issue_key, revoke_keys))
        .routes(routes!(current_storefront))
}

/// The storefront the presented API key belongs to: a quick way to check a key.
#[utoipa::path(
    get, path = "/v1/storefront", tag = "storefront",
    security(("storefront_key" = [])),
    responses(
        (status = 200, body = CurrentStorefront),
        (status = 401, description = "Missing, invalid or revoked API key", body = ErrorBody),
    )
)]
async fn current_storefront(
    sf: Storefront,
    State(state): State<AppState>,
) -> ApiResult<Json<CurrentStorefront>> {
    let row = store::storefronts::get(&state.pool, &sf.id)
        .await?
        .ok_or_else(storefront_not_found)?;
    Ok(Json(CurrentStorefront {
        storefront_id: row.id,
        name: row.name,
        webhook_url: row.webhook_url,
        test_webhook_url: row.test_webhook_url,
        livemode: sf.livemode,
    }))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CurrentStorefront {
    pub storefront_id: String,
    pub name: String,
    pub webhook_url: Option<String>,
    pub test_webhook_url: Option<String>,
    /// The mode of the presented key: `true` for `sk_live_…`, `false` for `sk_test_…`.
    pub livemode: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateStorefront {
    /// Display name, 1–200 characters, not blank, no control characters.
    #[schema(
        example = "Wanderlust Travel Shop",
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    pub name: String,
    /// Where signed storefront events are POSTed: an https URL to a public host, without
    /// credentials (in sandbox mode http to loopback is also allowed; in live mode no
    /// loopback, private, link-local or metadata address).
    #[schema(
        example = "https://shop.example.com/esim-events",
        max_length = 2048,
        pattern = "^https://[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*(:[1-9][0-9]{0,3})?(/[A-Za-z0-9._~/-]*)?$"
    )]
    pub webhook_url: Option<String>,
    /// Where test-mode events are POSTed instead of `webhook_url` (same rules); unset: test
    /// events go to `webhook_url` too, with `"livemode": false`.
    #[schema(
        example = "https://staging.shop.example.com/esim-events",
        max_length = 2048
    )]
    pub test_webhook_url: Option<String>,
}

/// Returned once at creation: the API keys and webhook secret are never shown again.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedStorefront {
    #[schema(example = "sf_01JD3QZ6V6W2Y2C6ZC9W8K7T1M")]
    pub id: String,
    pub name: String,
    pub webhook_url: Option<String>,
    pub test_webhook_url: Option<String>,
    /// The key to start with: `live_api_key` when this gateway has live vendors, else
    /// `test_api_key`. Store the keys now: only their hashes are kept.
    pub api_key: String,
    pub api_key_id: String,
    /// Test-mode key (`sk_test_…`): sees and buys only from the built-in simulators.
    #[schema(example = "sk_test_4eC39HqLyjWDarjtT1zdp7dc4eC39HqLyjWDarjt")]
    pub test_api_key: String,
    pub test_api_key_id: String,
    /// Live-mode key (`sk_live_…`): sees and buys only from live vendors. On a gateway
    /// without live vendors it answers `403 live_mode_unavailable` until some are configured.
    #[schema(example = "sk_live_4eC39HqLyjWDarjtT1zdp7dc4eC39HqLyjWDarjt")]
    pub live_api_key: String,
    pub live_api_key_id: String,
    /// Secret for verifying the `Gateway-Signature` header of events.
    pub webhook_secret: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StorefrontView {
    pub id: String,
    pub name: String,
    pub webhook_url: Option<String>,
    pub test_webhook_url: Option<String>,
    pub active_keys: i64,
    pub active_test_keys: i64,
    pub active_live_keys: i64,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StorefrontList {
    pub data: Vec<StorefrontView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueKey {
    /// Revoke every other active key of the same mode at the same time (rotation); keys of
    /// the other mode are untouched.
    #[serde(default)]
    pub revoke_others: bool,
    /// `true`: a live key (`sk_live_…`), `false`: a test key (`sk_test_…`). Default: live
    /// when this gateway has live vendors, else test.
    #[serde(default)]
    pub livemode: Option<bool>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IssuedKey {
    pub storefront_id: String,
    pub livemode: bool,
    pub api_key_id: String,
    /// Shown once.
    pub api_key: String,
    pub revoked: u64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RevokedKeys {
    pub storefront_id: String,
    pub revoked: u64,
}

/// Where storefront events may be sent (see [`webhook_url::validate`]), as a 422.
pub fn validate_webhook_url(url: Option<String>, sandbox: bool) -> ApiResult<Option<String>> {
    url.map(|u| webhook_url::validate(u, sandbox))
        .transpose()
        .map_err(|e| ApiError::unprocessable("invalid_webhook_url", e.to_string()))
}

/// Create a storefront and its first API key.
#[utoipa::path(
    post, path = "/admin/storefronts", tag = "admin",
    request_body = CreateStorefront,
    security(("admin_token" = [])),
    responses(
        (status = 201, description = "Created; the key and secret are shown only now", body = CreatedStorefront),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 403, description = "Admin API disabled (no ADMIN_TOKEN)", body = ErrorBody),
        (status = 413, description = "Body over 256 KiB", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 422, description = "Invalid field", body = ErrorBody),
    )
)]
async fn create_storefront(
    _: Admin,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<CreateStorefront>,
) -> ApiResult<(StatusCode, Json<CreatedStorefront>)> {
    let name = req.name.trim().to_string();
    if check_text(&name, 200).is_err() || req.name.chars().count() > 200 {
        return Err(ApiError::unprocessable(
            "invalid_name",
            "name must be 1–200 characters, without control characters",
        ));
    }
    let webhook_url = validate_webhook_url(req.webhook_url, state.config.sandbox)?;
    let test_webhook_url = validate_webhook_url(req.test_webhook_url, state.config.sandbox)?;
    let id = new_id("sf");
    let (test_key_id, live_key_id) = (new_id("key"), new_id("key"));
    let (test_key, live_key) = (api_key::generate(false), api_key::generate(true));
    let webhook_secret = format!("whsec_{}", api_key::random_token(40));

    let created_at = store::storefronts::create(
        &state.pool,
        &id,
        &name,
        &WebhookUrls {
            live: webhook_url.as_deref(),
            test: test_webhook_url.as_deref(),
        },
        &webhook_secret,
        &[
            NewKey {
                id: &test_key_id,
                lookup: &test_key.lookup,
                hash: &test_key.hash,
                livemode: false,
            },
            NewKey {
                id: &live_key_id,
                lookup: &live_key.lookup,
                hash: &live_key.hash,
                livemode: true,
            },
        ],
    )
    .await?;
    tracing::info!(storefront_id = %id, "storefront created");

    let test_api_key = test_key.key.expose_secret().to_string();
    let live_api_key = live_key.key.expose_secret().to_string();
    let (api_key, api_key_id) = if state.mode_available(true) {
        (live_api_key.clone(), live_key_id.clone())
    } else {
        (test_api_key.clone(), test_key_id.clone())
    };
    Ok((
        StatusCode::CREATED,
        Json(CreatedStorefront {
            id,
            name,
            webhook_url,
            test_webhook_url,
            api_key,
            api_key_id,
            test_api_key,
            test_api_key_id: test_key_id,
            live_api_key,
            live_api_key_id: live_key_id,
            webhook_secret,
            created_at,
        }),
    ))
}

/// List storefronts (no keys or secrets).
#[utoipa::path(
    get, path = "/admin/storefronts", tag = "admin",
    security(("admin_token" = [])),
    responses(
        (status = 200, body = StorefrontList),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
    )
)]
async fn list_storefronts(
    _: Admin,
    State(state): State<AppState>,
) -> ApiResult<Json<StorefrontList>> {
    let rows = store::storefronts::list(&state.pool).await?;
    Ok(Json(StorefrontList {
        data: rows
            .into_iter()
            .map(|r| StorefrontView {
                id: r.id,
                name: r.name,
                webhook_url: r.webhook_url,
                test_webhook_url: r.test_webhook_url,
                active_keys: r.active_keys,
                active_test_keys: r.active_test_keys,
                active_live_keys: r.active_live_keys,
                created_at: r.created_at,
            })
            .collect(),
        next_cursor: None,
    }))
}

/// Issue an additional API key; with `revoke_others` this rotates the key.
#[utoipa::path(
    post, path = "/admin/storefronts/{id}/keys", tag = "admin",
    params(("id" = String, Path, description = "Storefront id", pattern = "^sf_[0-9A-HJKMNP-TV-Z]{26}$")),
    request_body(content = IssueKey, description = "Optional; `{}` or no body issues a key and keeps the others"),
    security(("admin_token" = [])),
    responses(
        (status = 201, body = IssuedKey),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "No such storefront", body = ErrorBody),
        (status = 413, description = "Body over 256 KiB", body = ErrorBody),
        (status = 422, description = "Invalid field (e.g. `revoke_others` not a boolean)", body = ErrorBody),
    )
)]
async fn issue_key(
    _: Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<IssuedKey>)> {
    let req: IssueKey = optional_json(&body)?.unwrap_or_default();
    let id = path_storefront_id(&id)?.into_string();
    if !store::storefronts::exists(&state.pool, &id).await? {
        return Err(storefront_not_found());
    }
    let livemode = req.livemode.unwrap_or_else(|| state.mode_available(true));
    let key_id = new_id("key");
    let key = api_key::generate(livemode);
    let new_key = NewKey {
        id: &key_id,
        lookup: &key.lookup,
        hash: &key.hash,
        livemode,
    };
    let revoked =
        store::storefronts::add_key(&state.pool, &id, &new_key, req.revoke_others).await?;
    if revoked > 0 {
        state.cache.keys_changed().await;
    }
    tracing::info!(storefront_id = %id, revoked, "api key issued");
    Ok((
        StatusCode::CREATED,
        Json(IssuedKey {
            storefront_id: id,
            livemode,
            api_key_id: key_id,
            api_key: key.key.expose_secret().to_string(),
            revoked,
        }),
    ))
}

/// Which keys `DELETE /admin/storefronts/{id}/keys` revokes.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RevokeFilter {
    /// `true`: only live keys, `false`: only test keys; absent: both.
    pub livemode: Option<bool>,
}

/// Revoke the active API keys of a storefront (both modes, or one with `livemode`);
/// requests with them answer 401 at once.
#[utoipa::path(
    delete, path = "/admin/storefronts/{id}/keys", tag = "admin",
    params(("id" = String, Path, description = "Storefront id", pattern = "^sf_[0-9A-HJKMNP-TV-Z]{26}$"), RevokeFilter),
    security(("admin_token" = [])),
    responses(
        (status = 200, body = RevokedKeys),
        (status = 400, description = "`livemode` is not a boolean", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "No such storefront", body = ErrorBody),
    )
)]
async fn revoke_keys(
    _: Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(filter): ApiQuery<RevokeFilter>,
) -> ApiResult<Json<RevokedKeys>> {
    let id = path_storefront_id(&id)?.into_string();
    if !store::storefronts::exists(&state.pool, &id).await? {
        return Err(storefront_not_found());
    }
    let revoked = store::storefronts::revoke_all(&state.pool, &id, filter.livemode).await?;
    state.cache.keys_changed().await;
    tracing::info!(storefront_id = %id, revoked, "api keys revoked");
    Ok(Json(RevokedKeys {
        storefront_id: id,
        revoked,
    }))
}

fn path_storefront_id(raw: &str) -> ApiResult<StorefrontId> {
    StorefrontId::parse(raw).map_err(|_| storefront_not_found())
}

fn storefront_not_found() -> ApiError {
    ApiError::not_found("storefront_not_found", "no storefront with this id")
}
