//! The session cookie: `COOKIE_SECRET` (one or more base64 32-byte keys, the
//! first signs, all verify; or its `_FILE` twin), `COOKIE_NAME`,
//! `COOKIE_DOMAIN` (the first site's, as `listen` split it), `COOKIE_SECURE`
//! and `COOKIE_EXPIRE`. A message names the variable and the entry, never a
//! key. It does not sign or read cookies: `session` and `routes::cookies` do.

use std::time::Duration;

use super::parse::{duration, get, read_secret_file, Problems};
use super::{CookieSettings, RawConfig};
use crate::secret::CookieKey;
use crate::sites::is_domain;

/// The cookie's settings; `keys` or `expire` `None` recorded a problem.
pub(super) struct Cookie {
    pub(super) keys: Option<Vec<CookieKey>>,
    pub(super) name: String,
    /// Lower case; `None` when unset or not a domain name (a problem).
    pub(super) domain: Option<String>,
    pub(super) secure: bool,
    pub(super) expire: Option<Duration>,
}

impl Cookie {
    /// The settings, when nothing was wrong with them.
    pub(super) fn settings(self) -> Option<CookieSettings> {
        Some(CookieSettings {
            name: self.name,
            domain: self.domain,
            secure: self.secure,
            expire: self.expire?,
            keys: self.keys?,
        })
    }
}

/// Reads and checks the cookie's variables, in this order; `listed_domain` is
/// the first site's `COOKIE_DOMAIN`.
pub(super) fn check(raw: &RawConfig, listed_domain: Option<String>, p: &mut Problems) -> Cookie {
    let keys = cookie_keys(get(&raw.cookie_secret), get(&raw.cookie_secret_file), p);

    let cookie_name = get(&raw.cookie_name).unwrap_or_else(|| "_forward_auth".to_string());
    if !cookie_name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        p.push(format!(
            "COOKIE_NAME `{cookie_name}` may only contain letters, digits, `_`, `-` and `.`: e.g. _forward_auth"
        ));
    }

    let cookie_domain = listed_domain.map(|d| d.to_ascii_lowercase());
    let cookie_domain = match cookie_domain {
        Some(d) if is_domain(d.strip_prefix('.').unwrap_or(&d)) => Some(d),
        Some(d) => {
            p.push(format!(
                "COOKIE_DOMAIN `{d}` is not a domain name: use e.g. example.com or .example.com, or leave it unset"
            ));
            None
        }
        None => None,
    };

    let cookie_secure = match get(&raw.cookie_secure) {
        None => true,
        Some(v) => match v.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => true,
            "false" | "0" | "no" => false,
            _ => {
                p.push(format!(
                    "COOKIE_SECURE `{v}` is not a boolean: use true or false"
                ));
                true
            }
        },
    };

    let cookie_expire = duration("COOKIE_EXPIRE", get(&raw.cookie_expire), "14h", p);

    Cookie {
        keys,
        name: cookie_name,
        domain: cookie_domain,
        secure: cookie_secure,
        expire: cookie_expire,
    }
}

/// `COOKIE_SECRET` (or its file): one or more base64 32-byte keys. Never echoes them.
fn cookie_keys(
    value: Option<String>,
    file: Option<String>,
    p: &mut Problems,
) -> Option<Vec<CookieKey>> {
    let generate = "generate one with `openssl rand -base64 32`";
    let (list, name) = match (value, file) {
        (Some(_), Some(_)) => {
            return p.add("COOKIE_SECRET and COOKIE_SECRET_FILE are both set: keep only one")
        }
        (Some(v), None) => (v, "COOKIE_SECRET"),
        (None, Some(path)) => (
            read_secret_file("COOKIE_SECRET_FILE", &path, p)?,
            "COOKIE_SECRET (from COOKIE_SECRET_FILE)",
        ),
        (None, None) => {
            return p.add(&format!(
                "COOKIE_SECRET is not set: {generate}, and set COOKIE_SECRET or COOKIE_SECRET_FILE"
            ))
        }
    };
    let entries: Vec<&str> = list.split(',').map(str::trim).collect();
    let several = entries.len() > 1;
    let mut keys = Vec::new();
    let before = p.count();
    for (i, entry) in entries.iter().enumerate() {
        let which = if several {
            format!("{name} entry {}", i + 1)
        } else {
            name.to_string()
        };
        if entry.is_empty() {
            p.push(format!("{which} is empty: remove the extra comma"));
            continue;
        }
        match decode_base64(entry) {
            None => {
                p.push(format!("{which} is not valid base64: {generate}"));
            }
            Some(bytes) => match <[u8; 32]>::try_from(bytes.as_slice()) {
                Ok(key) => keys.push(CookieKey::new(key)),
                Err(_) => {
                    p.push(format!(
                        "{which} decodes to {} bytes; need 32: {generate}",
                        bytes.len()
                    ));
                }
            },
        }
    }
    (p.count() == before && !keys.is_empty()).then_some(keys)
}

/// Standard or URL-safe base64, padded or not.
fn decode_base64(value: &str) -> Option<Vec<u8>> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    use base64::{alphabet, Engine};
    let config =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    [
        GeneralPurpose::new(&alphabet::STANDARD, config),
        GeneralPurpose::new(&alphabet::URL_SAFE, config),
    ]
    .iter()
    .find_map(|engine| engine.decode(value).ok())
}

#[cfg(test)]
mod tests {
    use crate::config::test_support::{assert_one_problem, load, problems, KEY_A};

    #[test]
    fn cookie_secrets() {
        let key_b = "//////////////////////////////////////////8"; // standard, unpadded
        let key_c = "__________________________________________8="; // URL-safe, padded
        let c = load(&[("COOKIE_SECRET", Some(&format!("{KEY_A}, {key_b},{key_c}")))]);
        assert_eq!(c.cookie.keys.len(), 3);
        assert_eq!(c.cookie.keys[0].expose()[1], 1, "the first key signs");
        assert_eq!(c.cookie.keys[1].expose(), &[255; 32]);
        assert_eq!(c.cookie.keys[2].expose(), &[255; 32]);
    }

    #[test]
    fn bad_cookie_secrets_say_which_entry_and_how_to_fix_it() {
        let cases: &[(&str, &[&str])] = &[
            ("c2hvcnQtc2VjcmV0LXNpeHRlZW4=", &["COOKIE_SECRET decodes to 20 bytes; need 32", "openssl rand -base64 32"]),
            ("not base64 at all!!", &["COOKIE_SECRET is not valid base64", "openssl rand -base64 32"]),
            (
                &format!("{KEY_A},AAECAwQFBgcICQoLDA0ODw=="),
                &["COOKIE_SECRET entry 2 decodes to 16 bytes; need 32: generate one with `openssl rand -base64 32`"],
            ),
            (&format!("{KEY_A},,{KEY_A}"), &["COOKIE_SECRET entry 2 is empty"]),
        ];
        for (given, needles) in cases {
            assert_one_problem(&[("COOKIE_SECRET", Some(given))], needles);
            let problems = problems(&[("COOKIE_SECRET", Some(given))]);
            assert!(!problems[0].contains(*given), "{problems:?}");
        }
        let problems = problems(&[("COOKIE_SECRET", Some("c2hvcnQ=,%%%%"))]);
        assert_eq!(problems.len(), 2, "{problems:#?}");
        assert!(problems
            .iter()
            .all(|p| !p.contains("c2hvcnQ") && !p.contains("%%%%")));
    }
}
