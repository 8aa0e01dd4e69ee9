//! `Debug` for [`RawConfig`](super::RawConfig): the variables as read, with the
//! value of every one that may hold a credential replaced by `[redacted]`: names
//! with `secret`, `account`, `key`, `token` or `password` in them (not their
//! `*_file` twins, which are paths) and `session_store` (a Redis URL may carry a
//! password). Going through serde means variables added later are printed (or
//! redacted) without anyone having to remember this file.

use super::RawConfig;

/// Whether a variable's value may be a credential.
fn is_secret(name: &str) -> bool {
    !name.ends_with("_file")
        && (name == "session_store"
            || ["secret", "account", "key", "token", "password"]
                .iter()
                .any(|word| name.contains(word)))
}

impl std::fmt::Debug for RawConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = f.debug_struct("RawConfig");
        if let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(self) {
            for (name, value) in &fields {
                match value.as_str() {
                    Some(_) if is_secret(name) => out.field(name, &"[redacted]"),
                    Some(text) => out.field(name, &text),
                    None => out.field(name, &None::<&str>),
                };
            }
        }
        out.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::RawConfig;

    #[test]
    fn debug_output_never_shows_secrets_or_the_store_url() {
        let raw = RawConfig {
            idp_client_id: Some("client-id-shown".into()),
            idp_client_secret: Some("client-secret-value".into()),
            idp_client_secret_file: Some("/run/secrets/path-shown".into()),
            idp_service_account: Some("ssws-token-value".into()),
            cookie_secret: Some("cookie-secret-value".into()),
            session_store: Some("redis://:store-password-value@redis:6379".into()),
            ..RawConfig::default()
        };
        let text = format!("{raw:?}");
        for secret in [
            "client-secret",
            "ssws-token",
            "cookie-secret",
            "store-password",
        ] {
            assert!(!text.contains(secret), "{secret} shown in {text}");
        }
        for shown in ["client-id-shown", "path-shown", "[redacted]"] {
            assert!(text.contains(shown), "{shown} missing in {text}");
        }
    }
}
