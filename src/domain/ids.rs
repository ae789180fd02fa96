//! Ids and text the gateway takes from outside, parsed once at the edge.
//!
//! Our own ids are prefixed, opaque and time-ordered (`ord_01J…`, `sf_01J…`): a value that
//! does not have that shape cannot name anything we stored, so the HTTP layer answers 404
//! without a query. Every text that is stored is bounded and free of control characters:
//! Postgres rejects NUL in `text`, and CR/LF in a value that later becomes a header or a log
//! line would split it.

use std::fmt;

pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", ulid::Ulid::new())
}

/// Why a text value was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {0} characters")]
    TooLong(usize),
    #[error("must not contain control characters")]
    Control,
    #[error("is not well-formed")]
    Shape,
}

/// Any Unicode control character (C0, DEL, C1): never stored, never echoed.
pub fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// Text from outside (a vendor's message, a parameter name) made safe to store or echo:
/// control characters dropped, at most `max_chars` characters kept.
pub fn printable(s: &str, max_chars: usize) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .take(max_chars)
        .collect()
}

/// Free text we store: 1..=`max_chars` characters, no control characters.
pub fn check_text(s: &str, max_chars: usize) -> Result<(), TextError> {
    if s.is_empty() {
        return Err(TextError::Empty);
    }
    if has_control(s) {
        return Err(TextError::Control);
    }
    if s.chars().count() > max_chars {
        return Err(TextError::TooLong(max_chars));
    }
    Ok(())
}

/// Crockford base32 as ULIDs use it (no I, L, O, U).
fn is_ulid(s: &str) -> bool {
    s.len() == 26
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b.is_ascii_uppercase() && !b"ILOU".contains(&b)))
}

fn prefixed_ulid(s: &str, prefix: &str) -> Result<(), TextError> {
    match s.strip_prefix(prefix).and_then(|r| r.strip_prefix('_')) {
        Some(rest) if is_ulid(rest) => Ok(()),
        _ if has_control(s) => Err(TextError::Control),
        _ => Err(TextError::Shape),
    }
}

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct $name(String);

        impl $name {
            pub fn parse(s: &str) -> Result<Self, TextError> {
                let check: fn(&str) -> Result<(), TextError> = $check;
                check(s)?;
                Ok($name(s.to_string()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = TextError;
            fn from_str(s: &str) -> Result<Self, TextError> {
                Self::parse(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

/// Longest plan id the catalogue builds (`multi250-3fa9c1-100gb-daily-365d` is far shorter).
pub const PLAN_ID_MAX: usize = 64;
pub const IDEMPOTENCY_KEY_MAX: usize = 255;

typed_id!(
    /// `ord_` + ULID: orders and top-up orders.
    OrderId,
    |s| prefixed_ulid(s, "ord")
);
typed_id!(
    /// `sf_` + ULID.
    StorefrontId,
    |s| prefixed_ulid(s, "sf")
);
typed_id!(
    /// `evt_` + ULID: storefront events in the outbox.
    EventId,
    |s| prefixed_ulid(s, "evt")
);
typed_id!(
    /// ICCID (ITU-T E.118): 18 to 22 decimal digits.
    Iccid,
    |s| {
        if has_control(s) {
            return Err(TextError::Control);
        }
        if (18..=22).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(())
        } else {
            Err(TextError::Shape)
        }
    }
);
typed_id!(
    /// Catalogue plan id: `jp-10gb-7d`, `multi32-3fa9c1-5gb-30d` (lower-case slug).
    PlanId,
    |s| {
        check_text(s, PLAN_ID_MAX)?;
        let slug = s
            .split('-')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
        if slug { Ok(()) } else { Err(TextError::Shape) }
    }
);
typed_id!(
    /// The storefront's `Idempotency-Key`: 1 to 255 visible ASCII characters.
    IdempotencyKey,
    |s| {
        if s.is_empty() {
            return Err(TextError::Empty);
        }
        if s.len() > IDEMPOTENCY_KEY_MAX {
            return Err(TextError::TooLong(IDEMPOTENCY_KEY_MAX));
        }
        if s.bytes().all(|b| b.is_ascii_graphic()) {
            Ok(())
        } else {
            Err(TextError::Shape)
        }
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_their_prefix_and_sort_by_time() {
        let a = super::new_id("ord");
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = super::new_id("ord");
        assert!(a.starts_with("ord_") && a.len() == 30);
        assert!(a < b);
        assert!(OrderId::parse(&a).is_ok());
        assert!(StorefrontId::parse(&new_id("sf")).is_ok());
        assert!(EventId::parse(&new_id("evt")).is_ok());
    }

    #[test]
    fn malformed_ids_are_refused() {
        for bad in [
            "",
            "ord_",
            "ord_\0",
            "sf_01JD3QZ6V6W2Y2C6ZC9W8K7T1M",
            "ord_01jd3qz6v6w2y2c6zc9w8k7t1m",
        ] {
            assert!(OrderId::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(OrderId::parse("ord_\0"), Err(TextError::Control));
        assert!(Iccid::parse("8910300000000000019").is_ok());
        for bad in [
            "\0",
            "89103000000000000",
            "89103000000000000x9",
            &"9".repeat(23),
        ] {
            assert!(Iccid::parse(bad).is_err(), "{bad:?}");
        }
        assert!(PlanId::parse("jp-10gb-7d").is_ok());
        assert!(PlanId::parse("multi32-3fa9c1-5gb-30d").is_ok());
        for bad in [
            "",
            "JP-10gb",
            "jp--1",
            "jp-1gb-7d-",
            "a\u{0}b",
            &"a".repeat(65),
        ] {
            assert!(PlanId::parse(bad).is_err(), "{bad:?}");
        }
        assert!(IdempotencyKey::parse("order-1").is_ok());
        for bad in ["", "a b", "a\tb", "é", &"k".repeat(256)] {
            assert!(IdempotencyKey::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn stored_text_is_bounded_and_printable() {
        assert!(check_text("shop-1", 255).is_ok());
        assert_eq!(check_text("a\u{0}b", 255), Err(TextError::Control));
        assert_eq!(check_text("a\r\nb", 255), Err(TextError::Control));
        assert_eq!(check_text("\u{85}", 255), Err(TextError::Control));
        assert_eq!(
            check_text(&"x".repeat(256), 255),
            Err(TextError::TooLong(255))
        );
        assert_eq!(check_text("", 255), Err(TextError::Empty));
    }
}
