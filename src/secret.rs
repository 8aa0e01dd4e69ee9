//! Secret values: a secret string (client secret, API token, refresh token),
//! owned or borrowed, and a 32-byte cookie key. Their `Debug` prints `[redacted]`, so a secret
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
    /// The secret borrowed, as a session hands out its refresh token.
    pub fn borrowed(&self) -> SecretRef<'_> {
        SecretRef(&self.0)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A borrowed secret string: a [`Secret`], or one kept inside a larger
/// allocation (a session keeps its refresh token with its identity's texts).
/// `Debug` never shows it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SecretRef<'a>(&'a str);

impl<'a> SecretRef<'a> {
    pub fn new(value: &'a str) -> SecretRef<'a> {
        SecretRef(value)
    }
    pub fn expose(self) -> &'a str {
        self.0
    }
    /// An owned copy.
    pub fn to_secret(self) -> Secret {
        Secret(self.0.into())
    }
}

impl std::fmt::Debug for SecretRef<'_> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_a_secret_owned_or_borrowed() {
        let owned = Secret::new("s3cr3t-value".into());
        let texts = [
            format!("{owned:?}"),
            format!("{:?}", owned.borrowed()),
            format!("{:?}", SecretRef::new("s3cr3t-value")),
            format!("{:?}", Some(owned.borrowed().to_secret())),
        ];
        for text in texts {
            assert!(!text.contains("s3cr3t"), "{text}");
        }
        assert_eq!(owned.borrowed().to_secret().expose(), "s3cr3t-value");
    }
}
