//! `/admin/storefronts`: issue, list, rotate and revoke storefront API keys.

use axum::{Json, body::Bytes, extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    AppState,
    domain::{
        api_key,
        ids::{StorefrontId, check_text, has_control, new_id},
    },
    error::{ApiError, ApiResult, ErrorBody},
    http::{
        auth::{Admin, Storefront},
        extract::{ApiJson, ApiPath, optional_json},
    },
    store,
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
    }))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CurrentStorefront {
    pub storefront_id: String,
    pub name: String,
    pub webhook_url: Option<String>,
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
}

/// Returned once at creation: the API key and webhook secret are never shown again.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedStorefront {
    #[schema(example = "sf_01JD3QZ6V6W2Y2C6ZC9W8K7T1M")]
    pub id: String,
    pub name: String,
    pub webhook_url: Option<String>,
    /// Bearer key for `/v1`. Store it now: only its hash is kept.
    pub api_key: String,
    pub api_key_id: String,
    /// Secret for verifying the `Gateway-Signature` header of events.
    pub webhook_secret: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StorefrontView {
    pub id: String,
    pub name: String,
    pub webhook_url: Option<String>,
    pub active_keys: i64,
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
    /// Revoke every other active key of the storefront at the same time (rotation).
    #[serde(default)]
    pub revoke_others: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IssuedKey {
    pub storefront_id: String,
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

/// Longest `webhook_url` accepted.
pub const MAX_WEBHOOK_URL: usize = 2048;

/// Where storefront events may be sent: https to a public host. In sandbox mode http is also
/// allowed to loopback (a shop developer's machine); in live mode no loopback, private,
/// link-local or cloud-metadata address may be named, so the gateway cannot be made to post
/// into its own network.
pub fn validate_webhook_url(url: Option<String>, sandbox: bool) -> ApiResult<Option<String>> {
    let Some(raw) = url else { return Ok(None) };
    let invalid =
        |why: &str| ApiError::unprocessable("invalid_webhook_url", format!("webhook_url {why}"));
    if raw.len() > MAX_WEBHOOK_URL || has_control(&raw) {
        return Err(invalid(
            "must be at most 2048 characters, without control characters",
        ));
    }
    let u = url::Url::parse(&raw).map_err(|_| invalid("must be an absolute https URL"))?;
    let Some(host) = u.host() else {
        return Err(invalid("must be an absolute https URL"));
    };
    if !u.username().is_empty() || u.password().is_some() {
        return Err(invalid("must not carry credentials"));
    }
    let loopback = is_loopback_host(&host);
    match u.scheme() {
        "https" => {}
        "http" if sandbox && loopback => {}
        "http" if sandbox => {
            return Err(invalid(
                "must be https (http only to loopback in sandbox mode)",
            ));
        }
        _ => return Err(invalid("must be an absolute https URL")),
    }
    if !sandbox && (loopback || is_internal_host(&host)) {
        return Err(invalid(
            "must not point at a loopback, private, link-local or metadata address",
        ));
    }
    Ok(Some(raw))
}

/// An address a live-mode webhook may not reach: loopback, private, link-local, metadata.
/// The outbox checks every address a webhook host resolves to with this at send time.
pub fn is_internal_addr(ip: std::net::IpAddr) -> bool {
    let host = match ip {
        std::net::IpAddr::V4(v4) => url::Host::Ipv4(v4),
        std::net::IpAddr::V6(v6) => url::Host::Ipv6(v6),
    };
    is_loopback_host(&host) || is_internal_host(&host)
}

fn is_loopback_host(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(d) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Addresses inside the operator's network or the cloud's metadata service.
fn is_internal_host(host: &url::Host<&str>) -> bool {
    use std::net::Ipv4Addr;
    let v4_internal = |ip: Ipv4Addr| {
        ip.is_private()
            || ip.is_loopback()
            || ip.is_link_local()
            || ip.is_unspecified()
            || ip.is_broadcast()
            || ip.is_multicast()
            // 100.64.0.0/10: carrier-grade NAT, also used for internal cloud services.
            || (ip.octets()[0] == 100 && (ip.octets()[1] & 0xc0) == 64)
            || ip.octets()[0] == 0
    };
    match host {
        url::Host::Domain(d) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "metadata"
                || d == "metadata.google.internal"
                || d.ends_with(".internal")
                || d.ends_with(".local")
        }
        url::Host::Ipv4(ip) => v4_internal(*ip),
        url::Host::Ipv6(ip) => {
            let seg = ip.segments();
            ip.is_loopback()
                || ip.is_unspecified()
                || ip.is_multicast()
                || (seg[0] & 0xfe00) == 0xfc00 // unique local
                || (seg[0] & 0xffc0) == 0xfe80 // link-local
                || ip.to_ipv4_mapped().is_some_and(v4_internal)
            // AWS's IPv6 metadata endpoint fd00:ec2::254 is covered by unique local.
        }
    }
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
    let id = new_id("sf");
    let key_id = new_id("key");
    let key = api_key::generate();
    let webhook_secret = format!("whsec_{}", api_key::random_token(40));

    let mut tx = state.pool.begin().await?;
    let created_at =
        store::storefronts::insert(&mut tx, &id, &name, webhook_url.as_deref(), &webhook_secret)
            .await?;
    store::storefronts::insert_key(&mut tx, &key_id, &id, &key.lookup, &key.hash).await?;
    tx.commit().await?;
    tracing::info!(storefront_id = %id, "storefront created");

    Ok((
        StatusCode::CREATED,
        Json(CreatedStorefront {
            id,
            name,
            webhook_url,
            api_key: key.key.expose().clone(),
            api_key_id: key_id,
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
                active_keys: r.active_keys,
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
    let key_id = new_id("key");
    let key = api_key::generate();
    let mut tx = state.pool.begin().await?;
    store::storefronts::insert_key(&mut tx, &key_id, &id, &key.lookup, &key.hash).await?;
    let revoked = if req.revoke_others {
        store::storefronts::revoke_keys(&mut tx, &id, Some(&key_id)).await?
    } else {
        0
    };
    tx.commit().await?;
    if revoked > 0 {
        state.cache.keys_changed().await;
    }
    tracing::info!(storefront_id = %id, revoked, "api key issued");
    Ok((
        StatusCode::CREATED,
        Json(IssuedKey {
            storefront_id: id,
            api_key_id: key_id,
            api_key: key.key.expose().clone(),
            revoked,
        }),
    ))
}

/// Revoke every active API key of a storefront; requests with them answer 401 at once.
#[utoipa::path(
    delete, path = "/admin/storefronts/{id}/keys", tag = "admin",
    params(("id" = String, Path, description = "Storefront id", pattern = "^sf_[0-9A-HJKMNP-TV-Z]{26}$")),
    security(("admin_token" = [])),
    responses(
        (status = 200, body = RevokedKeys),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "No such storefront", body = ErrorBody),
    )
)]
async fn revoke_keys(
    _: Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<RevokedKeys>> {
    let id = path_storefront_id(&id)?.into_string();
    if !store::storefronts::exists(&state.pool, &id).await? {
        return Err(storefront_not_found());
    }
    let mut tx = state.pool.begin().await?;
    let revoked = store::storefronts::revoke_keys(&mut tx, &id, None).await?;
    tx.commit().await?;
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
