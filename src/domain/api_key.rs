//! Storefront API keys: `sk_test_` or `sk_live_` (Stripe's spelling) + 40 random base62
//! characters; keys issued before test mode existed are `sk_` + 40. Only the SHA-256 hash is
//! stored; the prefix and the first [`LOOKUP_RANDOM`] random characters are a non-secret
//! lookup for finding the row. The key's mode is stored with it (the prefix only tells people).

use rand::{Rng, distributions::Alphanumeric};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::secret::SecretString;

const PREFIX: &str = "sk_";
const TEST_PREFIX: &str = "sk_test_";
const LIVE_PREFIX: &str = "sk_live_";
const RANDOM_LEN: usize = 40;
/// Random characters of a key that are part of its lookup.
pub const LOOKUP_RANDOM: usize = 13;

pub fn random_token(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

pub struct NewApiKey {
    pub key: SecretString,
    pub lookup: String,
    pub hash: [u8; 32],
}

/// A new key of the given mode (`livemode` true: `sk_live_…`, else `sk_test_…`).
pub fn generate(livemode: bool) -> NewApiKey {
    let prefix = if livemode { LIVE_PREFIX } else { TEST_PREFIX };
    let key = format!("{prefix}{}", random_token(RANDOM_LEN));
    NewApiKey {
        lookup: key[..prefix.len() + LOOKUP_RANDOM].to_string(),
        hash: hash(&key),
        key: SecretString::from(key),
    }
}

pub fn hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// The lookup prefix of a presented key, or `None` when it cannot be one of ours.
pub fn lookup_of(presented: &str) -> Option<&str> {
    [TEST_PREFIX, LIVE_PREFIX, PREFIX]
        .into_iter()
        .find(|prefix| {
            presented.len() == prefix.len() + RANDOM_LEN
                && presented.starts_with(prefix)
                && presented[prefix.len()..]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric())
        })
        .map(|prefix| &presented[..prefix.len() + LOOKUP_RANDOM])
}

pub fn matches(presented: &str, stored_hash: &[u8]) -> bool {
    hash(presented).ct_eq(stored_hash).into()
}

/// Constant-time equality of two secrets of any length (compares their hashes).
pub fn secrets_equal(a: &str, b: &str) -> bool {
    hash(a).ct_eq(&hash(b)).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::secret::ExposeSecret;

    #[test]
    fn generated_keys_verify_against_their_hash_only() {
        let k = generate(false);
        assert!(k.key.expose_secret().starts_with("sk_test_"));
        assert_eq!(lookup_of(k.key.expose_secret()), Some(k.lookup.as_str()));
        assert!(matches(k.key.expose_secret(), &k.hash));
        let other = generate(true);
        assert!(other.key.expose_secret().starts_with("sk_live_"));
        assert_eq!(
            lookup_of(other.key.expose_secret()),
            Some(other.lookup.as_str())
        );
        assert!(!matches(other.key.expose_secret(), &k.hash));
        assert_ne!(k.lookup, other.lookup);
    }

    #[test]
    fn malformed_keys_have_no_lookup() {
        assert_eq!(lookup_of("sk_short"), None);
        assert_eq!(lookup_of(&format!("sk_test_{}", "a".repeat(39))), None);
        // Keys from before test mode keep their lookup.
        let legacy = format!("sk_{}", "a".repeat(40));
        assert_eq!(lookup_of(&legacy), Some(&legacy[..16]));
        assert_eq!(lookup_of(&format!("pk_{}", "a".repeat(40))), None);
        assert_eq!(lookup_of(&format!("sk_{}", "ä".repeat(20))), None);
    }
}
