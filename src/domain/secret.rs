//! Secrets (API keys, signing keys, passwords in URLs) are `secrecy`'s [`SecretString`]:
//! `Debug` prints `[REDACTED]`, there is no `Display`, the value is reachable only through
//! [`ExposeSecret::expose_secret`] (easy to audit), and it is wiped from memory when dropped.

pub use secrecy::{ExposeSecret, SecretString};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_value() {
        let s = SecretString::from("hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(s.expose_secret(), "hunter2");
    }
}
