//! Secret values: a secret string (client secret, API token, refresh token)
//! and a 32-byte cookie key. Their `Debug` prints `[redacted]`, so a secret
//! cannot reach a log through `{:?}`. Owns only the wrapping: where secrets
//! come from is `config`'s business, what they protect is their users'.

/// A secret string (client secret, API token). `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Box<str>);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value.into_boxed_str())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// One 32-byte `COOKIE_SECRET`. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct CookieKey([u8; 32]);

impl CookieKey {
    pub fn new(bytes: [u8; 32]) -> CookieKey {
        CookieKey(bytes)
    }
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for CookieKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}
