//! Paging, the same for every list: `limit` (default 50, at most 200), `cursor` (the
//! `next_cursor` of the previous page), and pages read one row long so the last row tells
//! whether another page follows.
//!
//! A cursor is the keyset position after a page's last row. Most lists hand it out opaque
//! (base64url of its fields); the admin event logs hand out the bare id their OpenAPI
//! parameter documents. Either way a cursor this server did not make is `invalid_cursor`.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};

use crate::{domain::ids::EventId, http::error::ApiError};

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 200;
/// Longest cursor read back; the ones handed out are far shorter.
pub const MAX_CURSOR_LEN: usize = 512;

fn bad_limit() -> ApiError {
    ApiError::bad_request(
        "invalid_parameter",
        format!("limit: expected an integer from 1 to {MAX_LIMIT}"),
    )
}

/// The `limit` query parameter.
pub fn limit(limit: Option<u32>) -> Result<i64, ApiError> {
    match limit {
        None => Ok(i64::from(DEFAULT_LIMIT)),
        Some(n @ 1..=MAX_LIMIT) => Ok(i64::from(n)),
        Some(_) => Err(bad_limit()),
    }
}

/// The `limit` query parameter as raw text (for a query parsed by hand).
pub fn parse_limit(raw: &str) -> Result<i64, ApiError> {
    limit(Some(raw.parse::<u32>().map_err(|_| bad_limit())?))
}

pub fn invalid_cursor() -> ApiError {
    ApiError::bad_request("invalid_cursor", "cursor is not valid for this query")
}

/// A list's keyset position as its `cursor` parameter carries it.
pub trait Cursor: Sized {
    /// The text handed out as `next_cursor`.
    fn encode(&self) -> String;
    /// A cursor [`Cursor::encode`] made; `None` for anything else (tampered, truncated,
    /// from another list, a value its column cannot hold).
    fn decode(raw: &str) -> Option<Self>;
}

/// The `cursor` query parameter.
pub fn read_cursor<C: Cursor>(raw: Option<&str>) -> Result<Option<C>, ApiError> {
    raw.map(|r| C::decode(r).ok_or_else(invalid_cursor))
        .transpose()
}

/// Opaque form of a cursor's fields: base64url of the fields joined by `|`. Only the last
/// field may contain `|`.
pub fn opaque(fields: &[&str]) -> String {
    URL_SAFE_NO_PAD.encode(fields.join("|"))
}

/// The `N` fields of an [`opaque`] cursor.
pub fn fields<const N: usize>(raw: &str) -> Option<[String; N]> {
    if raw.len() > MAX_CURSOR_LEN {
        return None;
    }
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(raw).ok()?).ok()?;
    let parts: Vec<String> = text.splitn(N, '|').map(str::to_string).collect();
    parts.try_into().ok()
}

/// Orders, newest first: creation time and id of the page's last order.
impl Cursor for (DateTime<Utc>, String) {
    fn encode(&self) -> String {
        opaque(&[&self.0.to_rfc3339(), &self.1])
    }

    fn decode(raw: &str) -> Option<Self> {
        let [at, id] = fields::<2>(raw)?;
        let at = DateTime::parse_from_rfc3339(&at).ok()?.with_timezone(&Utc);
        Some((at, id))
    }
}

/// Vendor events: the bare id (`^[0-9]{1,18}$`, as documented).
impl Cursor for i64 {
    fn encode(&self) -> String {
        self.to_string()
    }

    fn decode(raw: &str) -> Option<Self> {
        let digits = (1..=18).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_digit());
        digits.then(|| raw.parse().ok()).flatten()
    }
}

/// Storefront events: the bare event id (as documented).
impl Cursor for EventId {
    fn encode(&self) -> String {
        self.to_string()
    }

    fn decode(raw: &str) -> Option<Self> {
        EventId::parse(raw).ok()
    }
}

/// One page of a list.
#[derive(Debug)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

/// `rows` read `limit + 1` long: the first `limit` of them, and the cursor after the last
/// one when the extra row shows that more follow.
pub fn page<T>(mut rows: Vec<T>, limit: i64, cursor_of: impl Fn(&T) -> String) -> Page<T> {
    let limit = usize::try_from(limit).unwrap_or(0);
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next_cursor = if more {
        rows.last().map(cursor_of)
    } else {
        None
    };
    Page {
        data: rows,
        next_cursor,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_default_and_are_bounded() {
        assert_eq!(limit(None).unwrap(), 50);
        assert_eq!(limit(Some(200)).unwrap(), 200);
        assert!(limit(Some(0)).is_err());
        assert!(limit(Some(201)).is_err());
        assert_eq!(parse_limit("7").unwrap(), 7);
        for bad in ["0", "201", "-1", "1.0", "18446744073709551616", " 5"] {
            assert!(parse_limit(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn order_cursors_round_trip_and_refuse_junk() {
        let at = DateTime::parse_from_rfc3339("2026-11-30T10:00:00.123456Z")
            .unwrap()
            .with_timezone(&Utc);
        let c = (at, "ord_X".to_string());
        assert_eq!(<(DateTime<Utc>, String)>::decode(&c.encode()), Some(c));
        for junk in [
            "%%%",
            "bm90LWEtZGF0ZXxvcmQ",
            &"A".repeat(MAX_CURSOR_LEN + 4),
        ] {
            assert!(<(DateTime<Utc>, String)>::decode(junk).is_none(), "{junk}");
        }
        assert!(read_cursor::<(DateTime<Utc>, String)>(Some("x")).is_err());
        assert!(
            read_cursor::<(DateTime<Utc>, String)>(None)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn bare_id_cursors_are_what_their_parameters_document() {
        assert_eq!(i64::decode("123"), Some(123));
        assert_eq!(
            i64::decode("999999999999999999"),
            Some(999_999_999_999_999_999)
        );
        for bad in ["", "1234567890123456789", "-1", "+1", "1a"] {
            assert!(i64::decode(bad).is_none(), "{bad}");
        }
        assert!(EventId::decode("evt_01JDQ3Z6Y4N8T2G6W9X0A1B2C3").is_some());
        assert!(EventId::decode("123").is_none());
    }

    #[test]
    fn a_page_is_cut_at_the_limit_with_a_cursor_only_when_more_follow() {
        let full = page(vec![1, 2, 3], 2, |n| n.to_string());
        assert_eq!(
            (full.data, full.next_cursor),
            (vec![1, 2], Some("2".into()))
        );
        let last = page(vec![1, 2], 2, |n| n.to_string());
        assert_eq!((last.data, last.next_cursor), (vec![1, 2], None));
        let empty = page(Vec::<i32>::new(), 2, |n| n.to_string());
        assert_eq!(empty.next_cursor, None);
    }
}
