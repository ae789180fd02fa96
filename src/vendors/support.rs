//! Plumbing every adapter needs and none should write again: lenient JSON scalars, vendor
//! time formats, URL joining, a cached access token, a paging loop, one call per eSIM, and
//! the rule that turns an answer into a refusal or an unknown outcome.
//!
//! Nothing here holds a vendor's policy. Each helper takes the vendor's own rule (its code
//! table, its stop rule, its accepted words) as an argument, so the rules stay next to the
//! vendor's evidence in its own folder.

use std::{future::Future, time::Duration};

use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Utc};
use tokio::{sync::Mutex, time::Instant};

use super::{OrderState, RejectKind, VendorError, VendorOrderStatus};

// ---------------------------------------------------------------------------------------
// Lenient JSON scalars
// ---------------------------------------------------------------------------------------

/// Readers for JSON scalars that vendors send in more than one form (a price as `4.35` or
/// `"4.35"`, an ICCID as a string or a bare number, a flag as `true`, `"true"` or `1`).
///
/// Money stays exact: serde_json is built with `arbitrary_precision`, so a JSON number keeps
/// the vendor's digits as text and is parsed from that text, never through an f64.
/// (`serde_with` was considered: `Decimal` already reads both numbers and strings, and what
/// is left here, trimming and each vendor's set of accepted words, it does not offer.)
pub mod lenient {
    use std::str::FromStr;

    use rust_decimal::{Decimal, prelude::ToPrimitive};
    use serde::{Deserialize, Deserializer};
    use serde_json::Value;

    /// A JSON number or a numeric string (trimmed) as an exact decimal; scientific notation
    /// (`1e-2`) is accepted. Anything else is `None`.
    pub fn decimal(v: &Value) -> Option<Decimal> {
        let text = match v {
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.trim().to_string(),
            _ => return None,
        };
        Decimal::from_str(&text)
            .or_else(|_| Decimal::from_scientific(&text))
            .ok()
    }

    /// An integer from a JSON number (a fraction is cut toward zero) or a string holding a
    /// whole number (trimmed). Anything else is `None`.
    pub fn i64(v: &Value) -> Option<i64> {
        match v {
            Value::Number(n) => n.as_i64().or_else(|| decimal(v)?.to_i64()),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// A string, or the digits of a number, as text (untrimmed); booleans too when
    /// `with_bools`. Anything else (null, objects, arrays) is `None`.
    pub fn text(v: &Value, with_bools: bool) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) if with_bools => Some(b.to_string()),
            _ => None,
        }
    }

    /// A JSON boolean as is; a string or number is true when its trimmed, lower-cased text
    /// is one of `truthy` (the vendor's own list). Anything else is false.
    pub fn flag(v: &Value, truthy: &[&str]) -> bool {
        match v {
            Value::Bool(b) => *b,
            Value::String(_) | Value::Number(_) => {
                text(v, false).is_some_and(|t| word_in(&t, truthy))
            }
            _ => false,
        }
    }

    /// Whether `text`, trimmed and lower-cased, is one of `words`.
    pub fn word_in(text: &str, words: &[&str]) -> bool {
        let t = text.trim().to_ascii_lowercase();
        words.iter().any(|w| *w == t)
    }

    /// The field as JSON, `Null` when absent or `null`: the input of the readers above.
    pub fn value<'de, D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        Ok(Option::<Value>::deserialize(d)?.unwrap_or(Value::Null))
    }

    /// `deserialize_with`: [`decimal`] of the field.
    pub fn opt_decimal<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
        Ok(decimal(&value(d)?))
    }

    /// `deserialize_with`: [`i64`] of the field.
    pub fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        Ok(i64(&value(d)?))
    }

    /// `deserialize_with`: a string or a number as text ([`text`] without booleans).
    pub fn opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(text(&value(d)?, false))
    }
}

// ---------------------------------------------------------------------------------------
// Times
// ---------------------------------------------------------------------------------------

/// The time formats one vendor writes, tried in order: RFC 3339 (when `rfc3339`), then the
/// `zoned` chrono formats (which carry their own offset), then the `local` ones, read in the
/// vendor's `local_offset` (seconds east of UTC). Input is trimmed; anything else is `None`.
#[derive(Debug, Clone, Copy)]
pub struct TimeFormats {
    pub rfc3339: bool,
    pub zoned: &'static [&'static str],
    pub local: &'static [&'static str],
    pub local_offset_secs: i32,
}

impl TimeFormats {
    pub fn parse(&self, s: &str) -> Option<DateTime<Utc>> {
        let s = s.trim();
        if self.rfc3339 {
            if let Ok(t) = DateTime::parse_from_rfc3339(s) {
                return Some(t.with_timezone(&Utc));
            }
        }
        for fmt in self.zoned {
            if let Ok(t) = DateTime::parse_from_str(s, fmt) {
                return Some(t.with_timezone(&Utc));
            }
        }
        let offset = FixedOffset::east_opt(self.local_offset_secs)?;
        self.local.iter().find_map(|fmt| {
            let naive = NaiveDateTime::parse_from_str(s, fmt).ok()?;
            offset
                .from_local_datetime(&naive)
                .single()
                .map(|t| t.with_timezone(&Utc))
        })
    }
}

// ---------------------------------------------------------------------------------------
// URLs
// ---------------------------------------------------------------------------------------

/// `base` followed by `path` (already encoded, see [`segment`]), with one `/` between them.
/// The base's own path is kept: `Url::join` would drop a version prefix such as `/v2.4`
/// unless the base ends in `/`, and configured base URLs come either way. A `?query` in
/// `path` stays a query. `Unreachable` when the result is not a URL (nothing was sent).
pub fn join_url(base: &url::Url, path: &str) -> Result<url::Url, VendorError> {
    let joined = format!(
        "{}/{}",
        base.as_str().trim_end_matches('/'),
        path.trim_start_matches('/')
    );
    url::Url::parse(&joined)
        .map_err(|e| VendorError::Unreachable(format!("no URL from the base URL and {path}: {e}")))
}

/// One path segment, percent-encoded (`a b/c` → `a%20b%2Fc`): ids are alphanumeric in
/// practice, but never trust that.
pub fn segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

// ---------------------------------------------------------------------------------------
// Access tokens
// ---------------------------------------------------------------------------------------

/// A cached access token (OAuth, JWT) that is fetched once for all concurrent callers.
///
/// The lock is held across the fetch, so callers arriving while a token is being fetched
/// wait for it instead of fetching their own. Each fetched token gets a generation number: a
/// caller whose token was refused invalidates that generation only, so a token another
/// caller has fetched meanwhile is kept.
#[derive(Debug)]
pub struct TokenCache<T> {
    state: Mutex<TokenState<T>>,
}

#[derive(Debug)]
struct TokenState<T> {
    token: Option<CachedToken<T>>,
    generation: u64,
}

#[derive(Debug)]
struct CachedToken<T> {
    value: T,
    refresh_at: Instant,
    generation: u64,
}

impl<T> Default for TokenCache<T> {
    fn default() -> Self {
        TokenCache {
            state: Mutex::new(TokenState {
                token: None,
                generation: 0,
            }),
        }
    }
}

impl<T: Clone> TokenCache<T> {
    /// The cached token and its generation, or a new one from `fetch` when none is cached or
    /// the cached one is due. `fetch` answers the token and how long to use it.
    pub async fn get<E, Fut>(&self, fetch: impl FnOnce() -> Fut) -> Result<(T, u64), E>
    where
        Fut: Future<Output = Result<(T, Duration), E>>,
    {
        let mut state = self.state.lock().await;
        if let Some(t) = state
            .token
            .as_ref()
            .filter(|t| Instant::now() < t.refresh_at)
        {
            return Ok((t.value.clone(), t.generation));
        }
        let (value, use_for) = fetch().await?;
        state.generation += 1;
        let generation = state.generation;
        state.token = Some(CachedToken {
            value: value.clone(),
            refresh_at: Instant::now() + use_for,
            generation,
        });
        Ok((value, generation))
    }

    /// Forgets the token of `generation` (it was refused), unless it was replaced already.
    pub async fn invalidate(&self, generation: u64) {
        let mut state = self.state.lock().await;
        if state
            .token
            .as_ref()
            .is_some_and(|t| t.generation == generation)
        {
            state.token = None;
        }
    }
}

// ---------------------------------------------------------------------------------------
// Paging
// ---------------------------------------------------------------------------------------

/// What [`collect_pages`] gathered, and whether the vendor's stop rule ended it (`false`:
/// the page cap did, and the listing may go on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pages<T> {
    pub items: Vec<T>,
    pub ended: bool,
}

/// Reads a paged listing: `fetch(cursor)` gets one page, `absorb(cursor, page, items)` adds
/// its entries to `items` and, by the vendor's stop rule, answers the next cursor or `None`
/// on the last page. At most `max_pages` pages are read, so a vendor that never says "last"
/// cannot loop us forever; whether that is an error is the caller's to decide.
pub async fn collect_pages<C, P, T, E, Fut>(
    first: C,
    max_pages: u32,
    mut fetch: impl FnMut(C) -> Fut,
    mut absorb: impl FnMut(&C, P, &mut Vec<T>) -> Option<C>,
) -> Result<Pages<T>, E>
where
    C: Clone,
    Fut: Future<Output = Result<P, E>>,
{
    let mut items = Vec::new();
    let mut cursor = first;
    for _ in 0..max_pages {
        let page = fetch(cursor.clone()).await?;
        match absorb(&cursor, page, &mut items) {
            Some(next) => cursor = next,
            None => return Ok(Pages { items, ended: true }),
        }
    }
    Ok(Pages {
        items,
        ended: false,
    })
}

/// [`collect_pages`] for a listing paged by number that a vendor paces by rate, not by our
/// reading: while page `n` is absorbed, pages up to `n + ahead - 1` are already being
/// fetched, so the listing runs at the vendor's rate limit (which every fetch still waits
/// for) instead of one page's round trip plus its parsing at a time. Pages are absorbed in
/// order, so the vendor's stop rule reads them as `collect_pages` would; when it says
/// "last" (or names another page than the next) the fetches ahead are dropped. Up to
/// `ahead - 1` pages past the last may be requested: harmless reads.
pub async fn collect_pages_ahead<P, T, E, Fut>(
    first: u32,
    max_pages: u32,
    ahead: u32,
    fetch: impl Fn(u32) -> Fut,
    mut absorb: impl FnMut(&u32, P, &mut Vec<T>) -> Option<u32>,
) -> Result<Pages<T>, E>
where
    Fut: Future<Output = Result<P, E>>,
{
    use futures_util::stream::{FuturesOrdered, StreamExt};
    let mut items = Vec::new();
    let mut read = 0u32;
    // (the page, its fetch), in page order; `queued` is the next page to queue.
    let mut in_flight = FuturesOrdered::new();
    let mut queued = first;
    let mut cursor = first;
    while read < max_pages {
        while in_flight.len() < ahead.max(1) as usize && queued - cursor < max_pages - read {
            let page = queued;
            let fut = fetch(page);
            in_flight.push_back(async move { (page, fut.await) });
            queued += 1;
        }
        let Some((page, result)) = in_flight.next().await else {
            break;
        };
        read += 1;
        match absorb(&page, result?, &mut items) {
            Some(next) if next == page + 1 => cursor = next,
            Some(next) => {
                in_flight = FuturesOrdered::new();
                (cursor, queued) = (next, next);
            }
            None => return Ok(Pages { items, ended: true }),
        }
    }
    Ok(Pages {
        items,
        ended: false,
    })
}

// ---------------------------------------------------------------------------------------
// One call per eSIM
// ---------------------------------------------------------------------------------------

/// How [`per_esim`] sends its calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FanOut {
    /// One after the other, stopping at the first failure (nothing more is sent).
    OneByOne,
    /// All at once; every call runs to its end.
    AllAtOnce,
}

/// Buys `quantity` eSIMs with one call each (`call(n)`, n from 1) for vendors whose order
/// holds one eSIM. A failure before anything was bought is returned as it is; once some
/// eSIM is bought, any failure makes the whole outcome `Unknown` (`advice` is appended to
/// say how the vendor resolves it). Among several failures an unknown one outweighs a
/// refusal: that eSIM may have been bought.
pub async fn per_esim<T, Fut>(
    quantity: u32,
    mode: FanOut,
    advice: &str,
    call: impl Fn(u32) -> Fut,
) -> Result<Vec<T>, VendorError>
where
    Fut: Future<Output = Result<T, VendorError>>,
{
    let mut bought = Vec::with_capacity(quantity as usize);
    let mut failure: Option<VendorError> = None;
    match mode {
        FanOut::OneByOne => {
            for n in 1..=quantity {
                match call(n).await {
                    Ok(t) => bought.push(t),
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
        }
        FanOut::AllAtOnce => {
            let results = futures_util::future::join_all((1..=quantity).map(&call)).await;
            for r in results {
                match r {
                    Ok(t) => bought.push(t),
                    Err(e @ VendorError::Unknown(_)) => failure = Some(e),
                    Err(e) => {
                        failure.get_or_insert(e);
                    }
                }
            }
        }
    }
    match failure {
        None => Ok(bought),
        Some(e) if bought.is_empty() => Err(e),
        Some(e) => Err(VendorError::Unknown(format!(
            "{} of {quantity} eSIMs bought, then: {e}{advice}",
            bought.len()
        ))),
    }
}

/// One state for the vendor orders that make up one of our orders (one per eSIM): their
/// references joined by `,` (the form `VendorOrderRef::vendor_reference` carries back), all
/// their eSIMs, and the status the vendor's `rule` gives the parts.
pub fn combine(
    parts: Vec<OrderState>,
    rule: impl FnOnce(&[OrderState]) -> VendorOrderStatus,
) -> OrderState {
    let status = rule(&parts);
    let refs: Vec<String> = parts
        .iter()
        .filter_map(|p| p.vendor_reference.clone())
        .collect();
    OrderState {
        charged: None,
        vendor_reference: (!refs.is_empty()).then(|| refs.join(",")),
        status,
        esims: parts.into_iter().flat_map(|p| p.esims).collect(),
    }
}

// ---------------------------------------------------------------------------------------
// Refusal or unknown
// ---------------------------------------------------------------------------------------

/// Whether a call can spend (or refund) money, which decides what an answer we do not
/// understand means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Reads nothing that decides a purchase (catalogue, usage, balance).
    Read,
    /// A read whose answer decides whether something was bought (the order query that
    /// reconciles an unknown placement).
    Lookup,
    /// May buy, top up, cancel or refund.
    Money,
}

impl Effect {
    /// Whether an answer that is not a documented refusal must be treated as unknown.
    pub fn unclear_is_unknown(self) -> bool {
        matches!(self, Effect::Lookup | Effect::Money)
    }
}

/// What a vendor's table says about one error code (or HTTP status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeMeaning {
    /// A documented refusal: the vendor did not act.
    Refused(RejectKind),
    /// The vendor failed or is busy: it may or may not have acted.
    MayHaveActed,
    /// Not in the table.
    Unlisted,
}

impl From<Option<RejectKind>> for CodeMeaning {
    /// A table that answers `None` for codes it does not list.
    fn from(kind: Option<RejectKind>) -> Self {
        kind.map_or(CodeMeaning::Unlisted, CodeMeaning::Refused)
    }
}

/// The error for an answer whose code the vendor's table read as `meaning`: a documented
/// refusal is `Rejected`; anything else is `Unknown` on a call that may spend money (or
/// decides whether it was spent), and a plain `Rejected { Other }` on a read, which bought
/// nothing. `what` names the answer in messages (`"eSIMfx code 5000"`, `"HTTP 404"`).
pub fn refusal_or_unknown(
    effect: Effect,
    meaning: CodeMeaning,
    what: &str,
    code: &str,
    message: impl Into<String>,
) -> VendorError {
    let message = message.into();
    match meaning {
        CodeMeaning::Refused(kind) => VendorError::rejected(kind, code, message),
        CodeMeaning::MayHaveActed => VendorError::Unknown(format!("{what}: {message}")),
        CodeMeaning::Unlisted if effect.unclear_is_unknown() => VendorError::Unknown(format!(
            "{what} is not a documented refusal, outcome unknown: {message}"
        )),
        CodeMeaning::Unlisted => VendorError::rejected(RejectKind::Other, code, message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;
    use serde_json::{Value, json};
    use std::sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    };

    fn parsed(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn decimals_keep_every_digit_from_numbers_and_strings() {
        for text in ["4.35", "0.07", "12.345", "1234567890.1234567891", "-1", "0"] {
            assert_eq!(
                lenient::decimal(&parsed(text)).unwrap().to_string(),
                text,
                "number {text}"
            );
            assert_eq!(
                lenient::decimal(&json!(format!(" {text} ")))
                    .unwrap()
                    .to_string(),
                text,
                "string {text}"
            );
        }
        assert_eq!(lenient::decimal(&parsed("1e-2")), Some(Decimal::new(1, 2)));
        assert_eq!(lenient::decimal(&json!("1E3")), Some(Decimal::from(1000)));
        for bad in [json!(true), json!(null), json!("x"), json!(""), json!([1])] {
            assert_eq!(lenient::decimal(&bad), None, "{bad}");
        }
    }

    #[test]
    fn integers_from_numbers_or_whole_number_strings() {
        assert_eq!(lenient::i64(&json!(5368709120u64)), Some(5_368_709_120));
        assert_eq!(lenient::i64(&json!(" 42 ")), Some(42));
        assert_eq!(lenient::i64(&json!(-1)), Some(-1));
        // A fractional number is cut toward zero; a fractional string is not a whole number.
        assert_eq!(lenient::i64(&parsed("7.9")), Some(7));
        assert_eq!(lenient::i64(&json!("7.9")), None);
        assert_eq!(lenient::i64(&json!(true)), None);
        assert_eq!(lenient::i64(&json!(null)), None);
    }

    #[test]
    fn text_of_strings_numbers_and_optionally_booleans() {
        assert_eq!(lenient::text(&json!(" a "), false).as_deref(), Some(" a "));
        assert_eq!(
            lenient::text(&parsed("89445385320081602227"), false).as_deref(),
            Some("89445385320081602227")
        );
        assert_eq!(lenient::text(&json!(true), false), None);
        assert_eq!(lenient::text(&json!(true), true).as_deref(), Some("true"));
        assert_eq!(lenient::text(&json!({"a": 1}), true), None);
        assert_eq!(lenient::text(&json!(null), true), None);
    }

    #[test]
    fn flags_accept_only_the_vendors_words() {
        let words = ["true", "1"];
        assert!(lenient::flag(&json!(true), &words));
        assert!(!lenient::flag(&json!(false), &words));
        assert!(lenient::flag(&json!(" TRUE "), &words));
        assert!(lenient::flag(&json!(1), &words));
        assert!(lenient::flag(&json!("1"), &words));
        assert!(!lenient::flag(&json!(2), &words));
        assert!(!lenient::flag(&json!("yes"), &words));
        assert!(lenient::flag(&json!("yes"), &["yes"]));
        assert!(!lenient::flag(&json!(null), &words));
        assert!(!lenient::flag(&json!(["true"]), &words));
    }

    #[test]
    fn field_readers_treat_absent_and_null_alike() {
        #[derive(serde::Deserialize)]
        struct T {
            #[serde(default, deserialize_with = "lenient::opt_decimal")]
            d: Option<Decimal>,
            #[serde(default, deserialize_with = "lenient::opt_i64")]
            i: Option<i64>,
            #[serde(default, deserialize_with = "lenient::opt_text")]
            s: Option<String>,
        }
        let t: T = serde_json::from_str(r#"{"d": "0.10", "i": "3", "s": 7}"#).unwrap();
        assert_eq!(t.d.unwrap().to_string(), "0.10");
        assert_eq!((t.i, t.s.as_deref()), (Some(3), Some("7")));
        let t: T = serde_json::from_str(r#"{"d": null, "i": {}, "s": false}"#).unwrap();
        assert_eq!((t.d, t.i, t.s), (None, None, None));
        let t: T = serde_json::from_str("{}").unwrap();
        assert_eq!((t.d, t.i, t.s), (None, None, None));
    }

    #[test]
    fn time_formats_are_tried_in_order_and_local_ones_use_the_vendors_offset() {
        let utc = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let f = TimeFormats {
            rfc3339: true,
            zoned: &["%Y-%m-%dT%H:%M:%S%z"],
            local: &["%Y-%m-%d %H:%M:%S"],
            local_offset_secs: 8 * 3600,
        };
        assert_eq!(
            f.parse(" 2026-09-28T09:47:00Z "),
            Some(utc("2026-09-28T09:47:00Z"))
        );
        assert_eq!(
            f.parse("2026-09-28T17:47:00+0800"),
            Some(utc("2026-09-28T09:47:00Z"))
        );
        assert_eq!(
            f.parse("2026-09-28 17:47:00"),
            Some(utc("2026-09-28T09:47:00Z"))
        );
        assert_eq!(f.parse(""), None);
        assert_eq!(f.parse("yesterday"), None);
        let local_only = TimeFormats {
            rfc3339: false,
            zoned: &[],
            local: &["%Y-%m-%d %H:%M:%S"],
            local_offset_secs: 0,
        };
        assert_eq!(local_only.parse("2026-09-28T09:47:00Z"), None);
        assert_eq!(
            local_only.parse("2026-09-28 09:47:00"),
            Some(utc("2026-09-28T09:47:00Z"))
        );
    }

    #[test]
    fn urls_keep_the_base_path_whatever_the_slashes() {
        for base in ["https://api.example/v2.4", "https://api.example/v2.4/"] {
            let base: url::Url = base.parse().unwrap();
            for path in ["orders", "/orders"] {
                assert_eq!(
                    join_url(&base, path).unwrap().as_str(),
                    "https://api.example/v2.4/orders"
                );
            }
        }
        let bare: url::Url = "http://127.0.0.1:8080".parse().unwrap();
        assert_eq!(
            join_url(&bare, "/api/v1/esims/orders?customer_order_id=a%20b")
                .unwrap()
                .query(),
            Some("customer_order_id=a%20b")
        );
        assert_eq!(
            join_url(&bare, &format!("esims/{}/bundles", segment("a b/c?d")))
                .unwrap()
                .path(),
            "/esims/a%20b%2Fc%3Fd/bundles"
        );
        assert_eq!(segment("8944538532008160222"), "8944538532008160222");
        assert_eq!(segment("esim_1GB-7D.x"), "esim_1GB-7D.x");
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_token_fetch() {
        let cache = Arc::new(TokenCache::<String>::default());
        let fetches = Arc::new(AtomicU32::new(0));
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let (cache, fetches) = (cache.clone(), fetches.clone());
            tasks.push(tokio::spawn(async move {
                cache
                    .get(|| async {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        Ok::<_, ()>(("t1".to_string(), Duration::from_secs(60)))
                    })
                    .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), Ok(("t1".to_string(), 1)));
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn tokens_are_refetched_when_due_or_refused_and_failures_are_not_cached() {
        let cache = TokenCache::<u32>::default();
        let fetch = |v: u32| move || async move { Ok::<_, String>((v, Duration::from_secs(10))) };
        assert_eq!(cache.get(fetch(1)).await, Ok((1, 1)));
        assert_eq!(cache.get(fetch(2)).await, Ok((1, 1)), "still fresh");
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(cache.get(fetch(3)).await, Ok((3, 2)), "due");
        // A refusal of an older generation leaves the newer token alone.
        cache.invalidate(1).await;
        assert_eq!(cache.get(fetch(4)).await, Ok((3, 2)));
        cache.invalidate(2).await;
        let failed = cache
            .get(|| async { Err::<(u32, Duration), _>("down".to_string()) })
            .await;
        assert_eq!(failed, Err("down".to_string()));
        assert_eq!(cache.get(fetch(5)).await, Ok((5, 3)));
    }

    /// A fake listing of `total` numbers in pages of `size`, paged by page number.
    async fn numbers_page(page: u32, size: u32, total: u32) -> Result<Vec<u32>, String> {
        let start = (page - 1) * size;
        Ok((start..total.min(start + size)).collect())
    }

    /// The stop rule of [`numbers_page`] listings of 10 a page: a short page is the last.
    fn short_page_is_last(page: &u32, items: Vec<u32>, all: &mut Vec<u32>) -> Option<u32> {
        let full = items.len() == 10;
        all.extend(items);
        full.then_some(page + 1)
    }

    #[tokio::test]
    async fn pages_are_read_until_the_vendors_stop_rule_says_last() {
        let pages = collect_pages(1, 100, |p| numbers_page(p, 10, 25), short_page_is_last)
            .await
            .unwrap();
        assert_eq!(pages.items, (0..25).collect::<Vec<_>>());
        assert!(pages.ended);
        // An exact multiple ends on the empty page after it.
        let pages = collect_pages(1, 100, |p| numbers_page(p, 10, 20), short_page_is_last)
            .await
            .unwrap();
        assert_eq!((pages.items.len(), pages.ended), (20, true));
    }

    #[tokio::test]
    async fn the_page_cap_stops_a_listing_that_never_ends() {
        let fetched = AtomicU32::new(0);
        let pages = collect_pages(
            0u32,
            3,
            |p| {
                fetched.fetch_add(1, Ordering::SeqCst);
                async move { Ok::<_, String>(vec![p]) }
            },
            |p, items, all| {
                all.extend(items);
                Some(p + 1)
            },
        )
        .await
        .unwrap();
        assert_eq!(pages.items, vec![0, 1, 2]);
        assert!(!pages.ended);
        assert_eq!(fetched.load(Ordering::SeqCst), 3);
        let failed: Result<Pages<u32>, String> = collect_pages(
            1u32,
            3,
            |_| async { Err::<Vec<u32>, _>("boom".to_string()) },
            |_, items, all| {
                all.extend(items);
                None
            },
        )
        .await;
        assert_eq!(failed, Err("boom".to_string()));
    }

    #[tokio::test]
    async fn pages_read_ahead_are_absorbed_in_order_and_dropped_past_the_last() {
        let most_at_once = AtomicU32::new(0);
        let now = AtomicU32::new(0);
        let requested = std::sync::Mutex::new(Vec::new());
        // Later pages answer sooner: the order of absorbing must still be the pages' own.
        let fetch = |p: u32| {
            requested.lock().unwrap().push(p);
            let (now, most) = (&now, &most_at_once);
            async move {
                most.fetch_max(now.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(u64::from(40 - p.min(40)))).await;
                now.fetch_sub(1, Ordering::SeqCst);
                numbers_page(p, 10, 95).await
            }
        };
        let pages = collect_pages_ahead(1, 100, 3, fetch, short_page_is_last)
            .await
            .unwrap();
        assert_eq!(pages.items, (0..95).collect::<Vec<_>>());
        assert!(pages.ended);
        assert_eq!(
            most_at_once.load(Ordering::SeqCst),
            3,
            "three pages in flight"
        );
        // Page 10 is the short one; 11 and 12 were asked ahead and dropped.
        assert_eq!(*requested.lock().unwrap(), (1..=12).collect::<Vec<_>>());
        // The page cap counts pages read, ahead or not.
        requested.lock().unwrap().clear();
        let pages = collect_pages_ahead(1, 4, 3, fetch, short_page_is_last)
            .await
            .unwrap();
        assert_eq!((pages.items.len(), pages.ended), (40, false));
        assert_eq!(*requested.lock().unwrap(), vec![1, 2, 3, 4]);
        // A failure of any page is the listing's.
        let failed: Result<Pages<u32>, String> = collect_pages_ahead(
            1,
            10,
            3,
            |p| async move {
                if p == 2 {
                    Err("boom".to_string())
                } else {
                    numbers_page(p, 10, 95).await
                }
            },
            short_page_is_last,
        )
        .await;
        assert_eq!(failed, Err("boom".to_string()));
    }

    fn refused() -> VendorError {
        VendorError::rejected(RejectKind::SoldOut, "x", "sold out")
    }

    #[tokio::test]
    async fn one_by_one_stops_at_the_first_failure() {
        let sent = AtomicU32::new(0);
        let call = |fail_at: u32| {
            let sent = &sent;
            move |n: u32| async move {
                sent.fetch_add(1, Ordering::SeqCst);
                if n == fail_at { Err(refused()) } else { Ok(n) }
            }
        };
        assert_eq!(
            per_esim(3, FanOut::OneByOne, "", call(0)).await,
            Ok(vec![1, 2, 3])
        );
        // Nothing bought: the refusal as it is, and nothing more sent.
        sent.store(0, Ordering::SeqCst);
        assert_eq!(
            per_esim(3, FanOut::OneByOne, "", call(1)).await,
            Err(refused())
        );
        assert_eq!(sent.load(Ordering::SeqCst), 1);
        // Something bought: unknown, with the vendor's advice.
        let e = per_esim(3, FanOut::OneByOne, "; re-send", call(2))
            .await
            .unwrap_err();
        assert!(
            matches!(&e, VendorError::Unknown(m) if m.starts_with("1 of 3 eSIMs bought") && m.ends_with("; re-send")),
            "{e:?}"
        );
    }

    #[tokio::test]
    async fn all_at_once_sends_every_call_and_an_unknown_outweighs_a_refusal() {
        let sent = AtomicU32::new(0);
        let result = per_esim(3, FanOut::AllAtOnce, "", |n| {
            sent.fetch_add(1, Ordering::SeqCst);
            async move {
                match n {
                    1 => Err(refused()),
                    2 => Err(VendorError::Unknown("timed out".into())),
                    _ => Err(refused()),
                }
            }
        })
        .await;
        assert_eq!(sent.load(Ordering::SeqCst), 3);
        assert_eq!(
            result,
            Err::<Vec<u32>, _>(VendorError::Unknown("timed out".into()))
        );
        let result = per_esim(2, FanOut::AllAtOnce, "", |n| async move {
            if n == 1 { Ok(n) } else { Err(refused()) }
        })
        .await;
        assert!(matches!(result, Err(VendorError::Unknown(m)) if m.starts_with("1 of 2")));
        assert_eq!(
            per_esim(0, FanOut::AllAtOnce, "", |n| async move { Ok(n) }).await,
            Ok(vec![])
        );
    }

    #[test]
    fn combined_parts_join_references_and_keep_every_esim() {
        let part = |r: Option<&str>, status| OrderState {
            vendor_reference: r.map(String::from),
            status,
            esims: Vec::new(),
            charged: None,
        };
        let c = combine(
            vec![
                part(Some("a"), VendorOrderStatus::Completed),
                part(None, VendorOrderStatus::Pending),
                part(Some("b"), VendorOrderStatus::Completed),
            ],
            |parts| {
                assert_eq!(parts.len(), 3);
                VendorOrderStatus::Pending
            },
        );
        assert_eq!(c.vendor_reference.as_deref(), Some("a,b"));
        assert_eq!(c.status, VendorOrderStatus::Pending);
        let c = combine(Vec::new(), |_| VendorOrderStatus::Failed);
        assert_eq!(
            (c.vendor_reference, c.status),
            (None, VendorOrderStatus::Failed)
        );
    }

    #[test]
    fn unclear_answers_are_unknown_exactly_where_money_may_move() {
        use CodeMeaning::*;
        for effect in [Effect::Read, Effect::Lookup, Effect::Money] {
            let e = refusal_or_unknown(effect, Refused(RejectKind::SoldOut), "c 1", "1", "m");
            assert_eq!(e, VendorError::rejected(RejectKind::SoldOut, "1", "m"));
            let e = refusal_or_unknown(effect, MayHaveActed, "c 2", "2", "busy");
            assert_eq!(e, VendorError::Unknown("c 2: busy".into()));
            let e = refusal_or_unknown(effect, Unlisted, "c 3", "3", "new");
            if effect == Effect::Read {
                assert_eq!(e, VendorError::rejected(RejectKind::Other, "3", "new"));
            } else {
                assert!(
                    matches!(&e, VendorError::Unknown(m) if m.contains("c 3")),
                    "{e:?}"
                );
            }
        }
        assert_eq!(CodeMeaning::from(None), Unlisted);
        assert_eq!(
            CodeMeaning::from(Some(RejectKind::Auth)),
            Refused(RejectKind::Auth)
        );
    }
}
