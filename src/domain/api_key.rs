//! Storefront API keys: `sk_` + 40 random base62 characters. Only the SHA-256 hash is stored;
//! the first [`LOOKUP_LEN`] characters are a non-secret lookup prefix for finding the row.

use rand::{Rng, distributions::Alphanumeric};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::secret::SecretString;

const PREFIX: &str = "sk_";
const RANDOM_LEN: usize = 40;
pub const LOOKUP_LEN: usize = 16;

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

pub fn generate() -> NewApiKey {
    let key = format!("{PREFIX}{}", random_token(RANDOM_LEN));
    NewApiKey {
        lookup: key[..LOOKUP_LEN].to_string(),
        hash: hash(&key),
        key: SecretString::from(key),
    }
}

pub fn hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// The lookup prefix of a presented key, or `None` when it cannot be one of ours.
pub fn lookup_of(presented: &str) -> Option<&str> {
    let well_formed = presented.len() == PREFIX.len() + RANDOM_LEN
        && presented.starts_with(PREFIX)
        && presented[PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric());
    well_formed.then(|| &presented[..LOOKUP_LEN])
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
        let k = generate();
        assert_eq!(lookup_of(k.key.expose_secret()), Some(k.lookup.as_str()));
        assert!(matches(k.key.expose_secret(), &k.hash));
        let other = generate();
        assert!(!matches(other.key.expose_secret(), &k.hash));
        assert_ne!(k.lookup, other.lookup);
    }

    #[test]
    fn malformed_keys_have_no_lookup() {
        assert_eq!(lookup_of("sk_short"), None);
        assert_eq!(lookup_of(&format!("pk_{}", "a".repeat(40))), None);
        assert_eq!(lookup_of(&format!("sk_{}", "ä".repeat(20))), None);
    }
}
