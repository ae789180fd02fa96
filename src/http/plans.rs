//! `/v1/plans` and `/v1/countries`: the normalized catalogue at retail prices.

use axum::{
    body::Body,
    extract::{RawQuery, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::Response,
};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

pub use crate::catalog::view::{CountryList, CountrySummary, Plan, PlanData};
use crate::{
    AppState,
    catalog::snapshot::{Encoded, PlanCursor, PlanFilter, PlanSort, SortValue},
    domain::country::Country,
    http::error::{ApiError, ApiResult, ErrorBody},
    http::{
        auth::Storefront,
        extract::ApiPath,
        paging::{self, Cursor},
    },
    vendors::GIB,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_plans))
        .routes(routes!(get_plan))
        .routes(routes!(list_countries))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PlanList {
    pub data: Vec<Plan>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// `sort` values.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum PlanSortParam {
    Price,
    Data,
    Days,
}

/// Query parameters of `GET /v1/plans` (documented here; parsed by hand so `country` may
/// repeat and every bad value gets a precise 400). Every parameter other than `country`
/// may appear at most once, and none may be empty.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct PlansQuery {
    /// ISO 3166 alpha-2 codes (any case), comma-separated, and/or the parameter repeated:
    /// the plan must cover all of them.
    #[param(
        example = "FR,DE,IT",
        min_length = 2,
        max_length = 1024,
        pattern = r"^ *[A-Za-z]{2} *(, *[A-Za-z]{2} *)*$"
    )]
    country: Option<String>,
    /// Minimum data in GB (binary; total over the validity for daily plans; unlimited
    /// plans always qualify). A non-negative decimal, at most 1000000.
    #[param(
        example = "5",
        min_length = 1,
        max_length = 20,
        pattern = r"^[0-9]+(\.[0-9]+)?$"
    )]
    min_data_gb: Option<String>,
    #[param(minimum = 0, maximum = 3650)]
    min_days: Option<u32>,
    #[param(minimum = 0, maximum = 3650)]
    max_days: Option<u32>,
    /// true: only unlimited plans; false: no unlimited plans.
    unlimited: Option<bool>,
    /// Maximum price in the retail currency: a non-negative decimal.
    #[param(
        example = "20.00",
        min_length = 1,
        max_length = 20,
        pattern = r"^[0-9]+(\.[0-9]+)?$"
    )]
    max_price: Option<String>,
    /// Ascending, ties by id.
    #[param(inline, default = "price")]
    sort: Option<PlanSortParam>,
    #[param(minimum = 1, maximum = 200, default = 50)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page, with the same `sort`; omit for the first page.
    #[param(min_length = 1, max_length = 512, pattern = r"^[A-Za-z0-9_-]+$")]
    cursor: Option<String>,
}

const MAX_COUNTRY_LEN: usize = 1024;
const MAX_DECIMAL_LEN: usize = 20;
const MAX_DATA_GB: u32 = 1_000_000;

fn invalid(param: &str, why: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request("invalid_parameter", format!("{param}: {why}"))
}

/// A non-negative plain decimal (`12`, `1.5`): no sign, exponent or separators, as documented.
fn parse_decimal(param: &str, v: &str, what: &str) -> ApiResult<Decimal> {
    let (int, frac) = v.split_once('.').unwrap_or((v, "0"));
    let plain = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if v.len() > MAX_DECIMAL_LEN || !plain(int) || !plain(frac) {
        return Err(invalid(param, what));
    }
    v.parse().map_err(|_| invalid(param, what))
}

fn parse_countries(v: &str, into: &mut Vec<String>) -> ApiResult<()> {
    if v.len() > MAX_COUNTRY_LEN {
        return Err(invalid("country", "too long"));
    }
    for code in v.split(',').map(|c| c.trim_matches(' ')) {
        let c = Country::from_alpha2(code)
            .filter(|_| code.len() == 2)
            .ok_or_else(|| {
                invalid(
                    "country",
                    format!("{code:?} is not an ISO 3166 alpha-2 code"),
                )
            })?;
        into.push(c.alpha2().to_string());
    }
    Ok(())
}

fn parse_filter(raw: Option<&str>) -> ApiResult<PlanFilter> {
    let mut f = PlanFilter {
        limit: paging::DEFAULT_LIMIT as usize,
        ..Default::default()
    };
    let mut cursor = None;
    let mut seen: Vec<String> = Vec::new();
    for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        let known = matches!(
            k.as_ref(),
            "country"
                | "min_data_gb"
                | "min_days"
                | "max_days"
                | "unlimited"
                | "max_price"
                | "sort"
                | "limit"
                | "cursor"
        );
        if !known {
            return Err(ApiError::bad_request(
                "unknown_parameter",
                format!(
                    "unknown query parameter {:?}",
                    k.chars().take(64).collect::<String>()
                ),
            ));
        }
        if v.is_empty() {
            return Err(invalid(
                &k,
                "must not be empty (omit the parameter instead)",
            ));
        }
        if k != "country" {
            if seen.iter().any(|s| *s == k) {
                return Err(invalid(&k, "given more than once"));
            }
            seen.push(k.to_string());
        }
        let v = v.as_ref();
        match k.as_ref() {
            "country" => parse_countries(v, &mut f.countries)?,
            "min_data_gb" => {
                let what = "expected a non-negative decimal number of GB, at most 1000000";
                let gb = parse_decimal("min_data_gb", v, what)?;
                if gb > Decimal::from(MAX_DATA_GB) {
                    return Err(invalid("min_data_gb", what));
                }
                // At most 10^6 × 2^30 < 2^50: the product and the conversion cannot fail,
                // but stay checked so a changed bound is an error, never a panic.
                let bytes = gb
                    .checked_mul(Decimal::from(GIB))
                    .map(|b| b.ceil())
                    .and_then(|b| i64::try_from(b).ok())
                    .ok_or_else(|| invalid("min_data_gb", what))?;
                f.min_total_bytes = Some(bytes);
            }
            "min_days" => f.min_days = Some(parse_days("min_days", v)?),
            "max_days" => f.max_days = Some(parse_days("max_days", v)?),
            "unlimited" => {
                f.unlimited = Some(match v {
                    "true" => true,
                    "false" => false,
                    _ => return Err(invalid("unlimited", "expected true or false")),
                })
            }
            "max_price" => {
                f.max_price = Some(parse_decimal(
                    "max_price",
                    v,
                    "expected a non-negative decimal amount",
                )?)
            }
            "sort" => {
                f.sort = match v {
                    "price" => PlanSort::Price,
                    "data" => PlanSort::Data,
                    "days" => PlanSort::Days,
                    _ => return Err(invalid("sort", "expected price, data or days")),
                }
            }
            "limit" => f.limit = paging::parse_limit(v)? as usize,
            _ => cursor = Some(v.to_string()),
        }
    }
    f.countries.sort_unstable();
    f.countries.dedup();
    if let Some(c) = cursor {
        f.after = Some(decode_cursor(&c, f.sort)?);
    }
    Ok(f)
}

fn parse_days(param: &str, v: &str) -> ApiResult<i32> {
    v.parse::<i32>()
        .ok()
        .filter(|d| (0..=3650).contains(d))
        .ok_or_else(|| invalid(param, "expected a whole number of days from 0 to 3650"))
}

/// `<sort>|<value>|<id>`, opaque to clients, bound to the sort it was made for.
impl Cursor for PlanCursor {
    fn encode(&self) -> String {
        let (sort, value) = match self.value {
            SortValue::Price(d) => (PlanSort::Price, d.to_string()),
            SortValue::Data(b) => (PlanSort::Data, b.to_string()),
            SortValue::Days(d) => (PlanSort::Days, d.to_string()),
        };
        paging::opaque(&[sort.name(), &value, &self.id])
    }

    fn decode(raw: &str) -> Option<Self> {
        let [sort, value, id] = paging::fields::<3>(raw)?;
        if id.is_empty() {
            return None;
        }
        // Only the digits the encoder writes: no sign games, spaces or separators.
        let digits = |v: &str| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit());
        let value = match sort.as_str() {
            "price" => {
                let (int, frac) = value.split_once('.').unwrap_or((&value, "0"));
                if !digits(int) || !digits(frac) {
                    return None;
                }
                SortValue::Price(value.parse().ok()?)
            }
            "data" if digits(&value) => SortValue::Data(value.parse().ok()?),
            "days" if digits(&value) => SortValue::Days(value.parse().ok()?),
            _ => return None,
        };
        Some(PlanCursor { value, id })
    }
}

fn encode_cursor(_: PlanSort, value: SortValue, id: &str) -> String {
    PlanCursor {
        value,
        id: id.to_string(),
    }
    .encode()
}

/// A cursor this server made for `sort`; anything else (tampered, truncated, for another
/// sort, a value its column cannot hold) is a 400.
fn decode_cursor(raw: &str, sort: PlanSort) -> ApiResult<PlanCursor> {
    let cursor =
        paging::read_cursor::<PlanCursor>(Some(raw))?.ok_or_else(paging::invalid_cursor)?;
    let made_for = match cursor.value {
        SortValue::Price(_) => PlanSort::Price,
        SortValue::Data(_) => PlanSort::Data,
        SortValue::Days(_) => PlanSort::Days,
    };
    if made_for != sort {
        return Err(paging::invalid_cursor());
    }
    Ok(cursor)
}

/// The client takes gzip (`Accept-Encoding` lists `gzip` or `*` with a non-zero q).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
}

/// `If-None-Match` names this validator (weak comparison, as RFC 9110 asks for GET).
fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    let bare = |t: &str| t.trim().trim_start_matches("W/").to_string();
    let ours = bare(etag);
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim() == "*" || bare(t) == ours)
}

/// A ready body as a response: 304 when the client has it, gzip when it asks.
fn respond(headers: &HeaderMap, encoded: &Encoded) -> Response {
    let etag = HeaderValue::from_str(&encoded.etag).unwrap_or(HeaderValue::from_static("\"\""));
    let mut builder = Response::builder()
        .header(header::ETAG, etag)
        .header(header::VARY, HeaderValue::from_static("accept-encoding"))
        .header(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-cache"),
        );
    let body = if not_modified(headers, &encoded.etag) {
        builder = builder.status(StatusCode::NOT_MODIFIED);
        Body::empty()
    } else {
        builder = builder.header(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if accepts_gzip(headers) {
            builder = builder.header(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            Body::from(encoded.gzip().clone())
        } else {
            Body::from(encoded.body.clone())
        }
    };
    // Every header above is a valid static or checked value.
    builder.body(body).unwrap_or_default()
}

/// The catalogue at retail prices, filtered, sorted and paginated. Served from this
/// replica's in-memory catalogue, which follows every sync within a second.
#[utoipa::path(
    get, path = "/v1/plans", tag = "storefront",
    params(PlansQuery),
    security(("storefront_key" = [])),
    responses(
        (status = 200, body = PlanList, headers(("ETag" = String, description = "Weak validator of this page"))),
        (status = 304, description = "Unchanged since the `If-None-Match` validator"),
        (status = 400, description = "Invalid, empty, repeated or unknown parameter, or invalid cursor", body = ErrorBody),
        (status = 401, body = ErrorBody),
    )
)]
async fn list_plans(
    sf: Storefront,
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let filter = parse_filter(raw.as_deref())?;
    let snapshot = state.cache.snapshot(sf.livemode).await?;
    let page = snapshot.page(&filter, encode_cursor);
    Ok(respond(&headers, &page))
}

/// One plan.
#[utoipa::path(
    get, path = "/v1/plans/{plan_id}", tag = "storefront",
    params(("plan_id" = String, Path, example = "jp-10gb-7d")),
    security(("storefront_key" = [])),
    responses(
        (status = 200, body = Plan, headers(("ETag" = String, description = "Weak validator of this plan"))),
        (status = 304, description = "Unchanged since the `If-None-Match` validator"),
        (status = 401, body = ErrorBody),
        (status = 404, description = "No such plan, or no longer sold", body = ErrorBody),
    )
)]
async fn get_plan(
    sf: Storefront,
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(plan_id): ApiPath<String>,
) -> ApiResult<Response> {
    let snapshot = state.cache.snapshot(sf.livemode).await?;
    let plan = snapshot.plan(&plan_id).ok_or_else(plan_not_found)?;
    Ok(respond(&headers, plan))
}

pub fn plan_not_found() -> ApiError {
    ApiError::not_found("plan_not_found", "no such plan is on sale")
}

/// Every country with at least one plan on sale.
#[utoipa::path(
    get, path = "/v1/countries", tag = "storefront",
    security(("storefront_key" = [])),
    responses(
        (status = 200, body = CountryList, headers(("ETag" = String, description = "Weak validator of the list"))),
        (status = 304, description = "Unchanged since the `If-None-Match` validator"),
        (status = 401, body = ErrorBody),
    )
)]
async fn list_countries(
    sf: Storefront,
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let snapshot = state.cache.snapshot(sf.livemode).await?;
    Ok(respond(&headers, snapshot.countries()))
}

#[cfg(test)]
mod tests {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

    use super::*;
    use crate::http::paging::MAX_CURSOR_LEN;

    #[test]
    fn filters_parse_and_countries_may_repeat() {
        let f = parse_filter(Some(
            "country=fr,DE&country=IT&min_data_gb=1.5&sort=days&limit=10",
        ))
        .unwrap();
        assert_eq!(f.countries, ["DE", "FR", "IT"]);
        assert_eq!(f.min_total_bytes, Some(3 * GIB as i64 / 2));
        assert_eq!(f.sort, PlanSort::Days);
        assert_eq!(f.limit, 10);
        assert_eq!(
            parse_filter(Some("country=FR%2C+DE")).unwrap().countries,
            ["DE", "FR"]
        );
    }

    #[test]
    fn bad_values_are_rejected_with_the_parameter_named() {
        for q in [
            "country=XX",
            "country=FRA",
            "country=FR,,DE",
            "country=%00",
            "country=F%00",
            "min_data_gb=-1",
            "min_data_gb=1e3",
            "min_data_gb=1_000",
            "min_data_gb=+1",
            "min_data_gb=1000001",
            "min_data_gb=73786976294838206464",
            "min_data_gb=79228162514264337593543950335",
            "min_days=abc",
            "min_days=3651",
            "max_days=-1",
            "unlimited=maybe",
            "unlimited=1",
            "max_price=ten",
            "max_price=-1",
            "sort=name",
            "sort=price%00",
            "limit=0",
            "limit=201",
            "limit=18446744073709551616",
            "cursor=%%%",
            "colour=red",
            "%00=1",
            "limit=5&limit=6",
        ] {
            assert!(parse_filter(Some(q)).is_err(), "{q}");
        }
    }

    #[test]
    fn empty_values_are_refused_as_documented() {
        for q in [
            "cursor=",
            "min_data_gb=",
            "country=",
            "sort=",
            "limit=",
            "max_price=",
        ] {
            let err = parse_filter(Some(q)).unwrap_err();
            assert!(format!("{err:?}").contains("must not be empty"), "{q}");
        }
        // No query at all, or an empty one, is the first page of everything.
        assert_eq!(parse_filter(Some("")).unwrap().limit, 50);
        assert_eq!(parse_filter(None).unwrap().limit, 50);
    }

    #[test]
    fn large_data_filters_stay_exact() {
        let f = parse_filter(Some("min_data_gb=1000000")).unwrap();
        assert_eq!(f.min_total_bytes, Some(1_000_000 * GIB as i64));
        let f = parse_filter(Some("min_data_gb=0.0000001")).unwrap();
        assert_eq!(f.min_total_bytes, Some(108));
    }

    #[test]
    fn cursors_are_bound_to_their_sort() {
        let c = URL_SAFE_NO_PAD.encode("price|12.50|jp-10gb-7d");
        assert_eq!(
            decode_cursor(&c, PlanSort::Price).unwrap(),
            PlanCursor {
                value: SortValue::Price("12.50".parse().unwrap()),
                id: "jp-10gb-7d".into()
            }
        );
        assert!(decode_cursor(&c, PlanSort::Days).is_err());
        let round = encode_cursor(PlanSort::Data, SortValue::Data(i64::MAX), "x");
        assert_eq!(
            decode_cursor(&round, PlanSort::Data).unwrap().value,
            SortValue::Data(i64::MAX)
        );
    }

    #[test]
    fn tampered_cursors_are_refused() {
        // days|2147483648|a: one past i32::MAX.
        assert!(decode_cursor("ZGF5c3wyMTQ3NDgzNjQ4fGE", PlanSort::Days).is_err());
        for text in [
            "data|9223372036854775808|a",
            "data|-1|a",
            "data| 1|a",
            "days|+1|a",
            "price|1e5|a",
            "price|-0|a",
            "price|99999999999999999999999999999999|a",
            "price|1.5|",
            "price|1.5",
            "days||a",
        ] {
            let sort = match &text[..4] {
                "data" => PlanSort::Data,
                "days" => PlanSort::Days,
                _ => PlanSort::Price,
            };
            assert!(
                decode_cursor(&URL_SAFE_NO_PAD.encode(text), sort).is_err(),
                "{text}"
            );
        }
        assert!(decode_cursor(&"A".repeat(MAX_CURSOR_LEN + 4), PlanSort::Price).is_err());
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode([0xff, 0xfe]), PlanSort::Price).is_err());
    }

    #[test]
    fn gzip_is_taken_unless_refused() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
            accepts_gzip(&h)
        };
        assert!(with("gzip"));
        assert!(with("br, GZIP;q=0.5"));
        assert!(with("*"));
        assert!(!with("gzip;q=0"));
        assert!(!with("identity"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn if_none_match_uses_weak_comparison() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::IF_NONE_MATCH, HeaderValue::from_str(v).unwrap());
            not_modified(&h, "W/\"abc\"")
        };
        assert!(with("W/\"abc\""));
        assert!(with("\"abc\""));
        assert!(with("\"x\", W/\"abc\""));
        assert!(with("*"));
        assert!(!with("\"abd\""));
    }
}
