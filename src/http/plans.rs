//! `/v1/plans` and `/v1/countries`: the normalized catalogue at retail prices.

use axum::{
    Json,
    extract::{RawQuery, State},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    AppState,
    domain::{country::Country, money::Money},
    error::{ApiError, ApiResult, ErrorBody},
    http::{auth::Storefront, extract::ApiPath},
    store::{
        self,
        plans::{PlanCursor, PlanFilter, PlanRecord, PlanSort},
    },
    vendors::{GIB, Network},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_plans))
        .routes(routes!(get_plan))
        .routes(routes!(list_countries))
}

/// How much data a plan gives.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PlanData {
    /// Marketed amount in binary units (10 GB → 10737418240); per day when `daily`;
    /// null when unlimited.
    #[schema(example = 10737418240u64)]
    pub bytes: Option<u64>,
    pub unlimited: bool,
    /// The allowance resets every day (`bytes` is per day).
    pub daily: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Plan {
    #[schema(example = "jp-10gb-7d")]
    pub id: String,
    #[schema(example = "Japan 10 GB 7 days")]
    pub name: String,
    /// ISO 3166 alpha-2 codes, sorted.
    #[schema(example = json!(["JP"]))]
    pub countries: Vec<String>,
    /// Region label for multi-country plans.
    pub region: Option<String>,
    pub data: PlanData,
    pub validity_days: u32,
    pub price: Money,
    pub networks: Vec<Network>,
    pub supports_topup: bool,
}

impl From<PlanRecord> for Plan {
    fn from(r: PlanRecord) -> Self {
        Plan {
            data: PlanData {
                bytes: r.data_bytes.map(|b| b as u64),
                unlimited: r.data_kind == "unlimited",
                daily: r.data_kind == "daily",
            },
            price: Money::new(
                r.price_amount,
                r.price_currency
                    .parse()
                    .unwrap_or(crate::domain::money::Currency::USD),
            ),
            networks: r.networks.0,
            id: r.id,
            name: r.name,
            countries: r.countries,
            region: r.region,
            validity_days: r.validity_days as u32,
            supports_topup: r.supports_topup,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PlanList {
    pub data: Vec<Plan>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Query parameters of `GET /v1/plans` (documented here; parsed by hand so `country` may
/// repeat and every bad value gets a precise 400).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct PlansQuery {
    /// ISO alpha-2; repeat or comma-separate: the plan must cover all of them.
    #[param(example = "FR,DE,IT")]
    country: Option<String>,
    /// Minimum data in GB (binary; total over the validity for daily plans; unlimited
    /// plans always qualify). Decimal allowed.
    min_data_gb: Option<String>,
    min_days: Option<u32>,
    max_days: Option<u32>,
    /// true: only unlimited plans; false: no unlimited plans.
    unlimited: Option<bool>,
    /// Maximum price in the retail currency (decimal string).
    max_price: Option<String>,
    /// `price` (default), `data` or `days`; ascending, ties by id.
    sort: Option<String>,
    /// 1–200, default 50.
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

fn invalid(param: &str, why: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request("invalid_parameter", format!("{param}: {why}"))
}

fn parse_filter(raw: Option<&str>) -> ApiResult<PlanFilter> {
    let mut f = PlanFilter {
        limit: 50,
        ..Default::default()
    };
    let mut cursor = None;
    for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        let v = v.trim();
        match k.as_ref() {
            "country" => {
                for code in v.split(',').map(str::trim).filter(|c| !c.is_empty()) {
                    let c = Country::from_alpha2(code).ok_or_else(|| {
                        invalid(
                            "country",
                            format!("{code:?} is not an ISO 3166 alpha-2 code"),
                        )
                    })?;
                    f.countries.push(c.alpha2().to_string());
                }
            }
            "min_data_gb" => {
                let gb: Decimal = v
                    .parse()
                    .ok()
                    .filter(|d: &Decimal| !d.is_sign_negative())
                    .ok_or_else(|| invalid("min_data_gb", "expected a non-negative number"))?;
                let bytes = (gb * Decimal::from(GIB)).ceil();
                f.min_total_bytes = Some(i64::try_from(bytes).unwrap_or(i64::MAX));
            }
            "min_days" => f.min_days = Some(parse_days("min_days", v)?),
            "max_days" => f.max_days = Some(parse_days("max_days", v)?),
            "unlimited" => {
                f.unlimited = Some(match v {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => return Err(invalid("unlimited", "expected true or false")),
                })
            }
            "max_price" => {
                f.max_price = Some(
                    v.parse()
                        .ok()
                        .filter(|d: &Decimal| !d.is_sign_negative())
                        .ok_or_else(|| invalid("max_price", "expected a decimal amount"))?,
                )
            }
            "sort" => {
                f.sort = match v {
                    "price" => PlanSort::Price,
                    "data" => PlanSort::Data,
                    "days" => PlanSort::Days,
                    _ => return Err(invalid("sort", "expected price, data or days")),
                }
            }
            "limit" => {
                f.limit = v
                    .parse::<i64>()
                    .ok()
                    .filter(|n| (1..=200).contains(n))
                    .ok_or_else(|| invalid("limit", "expected an integer from 1 to 200"))?
            }
            "cursor" => cursor = Some(v.to_string()),
            other => {
                return Err(ApiError::bad_request(
                    "unknown_parameter",
                    format!("unknown query parameter {other:?}"),
                ));
            }
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
        .ok_or_else(|| invalid(param, "expected a number of days"))
}

fn sort_name(sort: PlanSort) -> &'static str {
    match sort {
        PlanSort::Price => "price",
        PlanSort::Data => "data",
        PlanSort::Days => "days",
    }
}

/// `<sort>|<value>|<id>`, base64url: opaque to clients, bound to the sort it was made for.
fn encode_cursor(sort: PlanSort, plan: &PlanRecord) -> String {
    let value = match sort {
        PlanSort::Price => plan.price_amount.to_string(),
        PlanSort::Data => plan.data_sort_bytes.to_string(),
        PlanSort::Days => plan.validity_days.to_string(),
    };
    URL_SAFE_NO_PAD.encode(format!("{}|{value}|{}", sort_name(sort), plan.id))
}

fn decode_cursor(raw: &str, sort: PlanSort) -> ApiResult<PlanCursor> {
    let bad = || ApiError::bad_request("invalid_cursor", "cursor is not valid for this query");
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let mut parts = text.splitn(3, '|');
    let (Some(s), Some(value), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    if s != sort_name(sort) || id.is_empty() {
        return Err(bad());
    }
    Ok(PlanCursor {
        sort_value: value.parse().map_err(|_| bad())?,
        id: id.to_string(),
    })
}

/// The catalogue at retail prices, filtered, sorted and paginated.
#[utoipa::path(
    get, path = "/v1/plans", tag = "storefront",
    params(PlansQuery),
    security(("storefront_key" = [])),
    responses(
        (status = 200, body = PlanList),
        (status = 400, description = "Invalid filter, unknown parameter or invalid cursor", body = ErrorBody),
        (status = 401, body = ErrorBody),
    )
)]
async fn list_plans(
    _: Storefront,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<PlanList>> {
    let filter = parse_filter(raw.as_deref())?;
    let mut rows = store::plans::list(&state.pool, &filter).await?;
    let more = rows.len() as i64 > filter.limit;
    rows.truncate(filter.limit as usize);
    let next_cursor = more
        .then(|| rows.last().map(|p| encode_cursor(filter.sort, p)))
        .flatten();
    Ok(Json(PlanList {
        data: rows.into_iter().map(Plan::from).collect(),
        next_cursor,
    }))
}

/// One plan.
#[utoipa::path(
    get, path = "/v1/plans/{plan_id}", tag = "storefront",
    params(("plan_id" = String, Path, example = "jp-10gb-7d")),
    security(("storefront_key" = [])),
    responses(
        (status = 200, body = Plan),
        (status = 401, body = ErrorBody),
        (status = 404, description = "No such plan, or no longer sold", body = ErrorBody),
    )
)]
async fn get_plan(
    _: Storefront,
    State(state): State<AppState>,
    ApiPath(plan_id): ApiPath<String>,
) -> ApiResult<Json<Plan>> {
    store::plans::get(&state.pool, &plan_id)
        .await?
        .filter(|p| p.active)
        .map(|p| Json(Plan::from(p)))
        .ok_or_else(plan_not_found)
}

pub fn plan_not_found() -> ApiError {
    ApiError::not_found("plan_not_found", "no such plan is on sale")
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CountrySummary {
    #[schema(example = "JP")]
    pub code: String,
    #[schema(example = "Japan")]
    pub name: String,
    pub plan_count: u64,
    /// The cheapest plan covering this country.
    pub from_price: Money,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CountryList {
    pub data: Vec<CountrySummary>,
    pub next_cursor: Option<String>,
}

/// Every country with at least one plan on sale.
#[utoipa::path(
    get, path = "/v1/countries", tag = "storefront",
    security(("storefront_key" = [])),
    responses(
        (status = 200, body = CountryList),
        (status = 401, body = ErrorBody),
    )
)]
async fn list_countries(
    _: Storefront,
    State(state): State<AppState>,
) -> ApiResult<Json<CountryList>> {
    let rows = store::plans::countries(&state.pool).await?;
    let data = rows
        .into_iter()
        .map(|r| CountrySummary {
            name: Country::from_alpha2(&r.code)
                .map(|c| c.common_name().to_string())
                .unwrap_or_else(|| r.code.clone()),
            plan_count: r.plan_count as u64,
            from_price: Money::new(
                r.from_price,
                r.currency
                    .parse()
                    .unwrap_or(crate::domain::money::Currency::USD),
            ),
            code: r.code,
        })
        .collect();
    Ok(Json(CountryList {
        data,
        next_cursor: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }

    #[test]
    fn bad_values_are_rejected_with_the_parameter_named() {
        for q in [
            "country=XX",
            "country=FRA",
            "min_data_gb=-1",
            "min_days=abc",
            "unlimited=maybe",
            "max_price=ten",
            "sort=name",
            "limit=0",
            "limit=201",
            "cursor=%%%",
            "colour=red",
        ] {
            assert!(parse_filter(Some(q)).is_err(), "{q}");
        }
    }

    #[test]
    fn cursors_are_bound_to_their_sort() {
        let c = URL_SAFE_NO_PAD.encode("price|12.50|jp-10gb-7d");
        assert_eq!(
            decode_cursor(&c, PlanSort::Price).unwrap(),
            PlanCursor {
                sort_value: "12.50".parse().unwrap(),
                id: "jp-10gb-7d".into()
            }
        );
        assert!(decode_cursor(&c, PlanSort::Days).is_err());
    }
}
