//! The small parsers every area shares: the [`Problems`] list they all append
//! to, reading a variable (empty counts as unset), a secret or its `*_FILE`
//! twin, durations, domain names and loopback URLs, and how a URL is named in
//! a message without its password. It owns no variable: which one is read, and
//! whether its absence is a problem, is decided by the area files.

use std::time::Duration;

use url::Url;

use crate::secret::Secret;

/// The problems found so far.
#[derive(Default)]
pub(super) struct Problems(pub(super) Vec<String>);

impl Problems {
    pub(super) fn push(&mut self, message: String) {
        self.0.push(message);
    }

    pub(super) fn count(&self) -> usize {
        self.0.len()
    }

    /// Records a problem; returns `None` so that `p.add(...)` can stand for a missing value.
    pub(super) fn add<T>(&mut self, message: &str) -> Option<T> {
        self.0.push(message.to_string());
        None
    }
}

/// A secret from `NAME` or the file named by `NAME_FILE`. `Ok(None)` when neither
/// is set (the caller decides whether that is a problem); `Err` after a problem.
pub(super) fn secret(
    name: &str,
    value: Option<String>,
    file: Option<String>,
    p: &mut Problems,
) -> Result<Option<Secret>, ()> {
    match (value, file) {
        (Some(_), Some(_)) => {
            p.push(format!(
                "{name} and {name}_FILE are both set: keep only one"
            ));
            Err(())
        }
        (Some(v), None) => Ok(Some(Secret::new(v))),
        (None, Some(path)) => read_secret_file(&format!("{name}_FILE"), &path, p)
            .map(|v| Some(Secret::new(v)))
            .ok_or(()),
        (None, None) => Ok(None),
    }
}

/// A variable's value; an empty one counts as unset (compose files often
/// write `VAR=`). TRUSTED_PROXIES reads its raw value: there empty means
/// "trust nobody".
pub(super) fn get(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Reads a `*_FILE` secret, without its trailing newline. Messages name the path only.
pub(super) fn read_secret_file(var: &str, path: &str, p: &mut Problems) -> Option<String> {
    match std::fs::read_to_string(path) {
        Ok(content) => {
            let value = content.trim_end().to_string();
            if value.is_empty() {
                p.add(&format!(
                    "{var}: the file {path} is empty: put the secret in it"
                ))
            } else {
                Some(value)
            }
        }
        Err(e) => p.add(&format!(
            "{var}: cannot read the file {path} ({}): check the path and its permissions",
            e.kind()
        )),
    }
}

/// How a URL variable is named in a message: with its value, unless the value
/// may hold a password (user info).
pub(super) fn shown(name: &str, value: &str) -> String {
    if value.contains('@') {
        name.to_string()
    } else {
        format!("{name} `{value}`")
    }
}

/// Whether `url`'s host is a loopback address or `localhost`.
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// A positive duration such as `90s`, `5m`, `14h`.
pub(super) fn duration(
    name: &str,
    value: Option<String>,
    default: &str,
    p: &mut Problems,
) -> Option<Duration> {
    parse_duration(name, value, default, p, false)
}

/// A duration such as `90s` or `15m`, where `0` is allowed (and means "none").
pub(super) fn duration_or_zero(
    name: &str,
    value: Option<String>,
    default: &str,
    p: &mut Problems,
) -> Option<Duration> {
    parse_duration(name, value, default, p, true)
}

fn parse_duration(
    name: &str,
    value: Option<String>,
    default: &str,
    p: &mut Problems,
    zero_allowed: bool,
) -> Option<Duration> {
    let value = value.unwrap_or_else(|| default.to_string());
    if zero_allowed && value.trim() == "0" {
        return Some(Duration::ZERO);
    }
    match humantime::parse_duration(&value) {
        Ok(d) if zero_allowed || !d.is_zero() => Some(d),
        Ok(_) => p.add(&format!(
            "{name} must be longer than zero: use e.g. {default}"
        )),
        Err(_) if zero_allowed => p.add(&format!(
            "{name} `{value}` is not a duration: use e.g. 0 (none), 30s, 15m or 1h"
        )),
        Err(_) => p.add(&format!(
            "{name} `{value}` is not a duration: use e.g. 90s, 5m or 14h"
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::test_support::{
        assert_one_problem, load, problems, TempFile, API_TOKEN, CLIENT_SECRET, KEY_A,
    };
    use crate::secret::Secret;

    #[test]
    fn file_twins_are_read_and_trimmed() {
        let secret = TempFile::new("client-secret", &format!("{CLIENT_SECRET}\n"));
        let token = TempFile::new("token", &format!("{API_TOKEN}\r\n"));
        let key = TempFile::new("cookie", &format!("{KEY_A}\n"));
        let c = load(&[
            ("IDP_CLIENT_SECRET", None),
            ("IDP_CLIENT_SECRET_FILE", Some(secret.path())),
            ("IDP_SERVICE_ACCOUNT", None),
            ("IDP_SERVICE_ACCOUNT_FILE", Some(token.path())),
            ("COOKIE_SECRET", None),
            ("COOKIE_SECRET_FILE", Some(key.path())),
        ]);
        assert_eq!(c.client_secret.expose(), CLIENT_SECRET);
        assert_eq!(
            c.service_account.as_ref().map(Secret::expose),
            Some(API_TOKEN)
        );
        assert_eq!(c.cookie.keys.len(), 1);
    }

    #[test]
    fn a_variable_and_its_file_twin_conflict() {
        let file = TempFile::new("conflict", CLIENT_SECRET);
        for (name, file_name) in [
            ("IDP_CLIENT_SECRET", "IDP_CLIENT_SECRET_FILE"),
            ("IDP_SERVICE_ACCOUNT", "IDP_SERVICE_ACCOUNT_FILE"),
            ("COOKIE_SECRET", "COOKIE_SECRET_FILE"),
        ] {
            assert_one_problem(
                &[(file_name, Some(file.path()))],
                &[name, file_name, "both set"],
            );
        }
    }

    #[test]
    fn an_unreadable_or_empty_file_names_the_path_but_not_the_contents() {
        let missing = "/nonexistent/forward-auth/secret";
        assert_one_problem(
            &[
                ("IDP_CLIENT_SECRET", None),
                ("IDP_CLIENT_SECRET_FILE", Some(missing)),
            ],
            &["IDP_CLIENT_SECRET_FILE", missing, "cannot read"],
        );
        let empty = TempFile::new("empty", "\n");
        assert_one_problem(
            &[
                ("COOKIE_SECRET", None),
                ("COOKIE_SECRET_FILE", Some(empty.path())),
            ],
            &["COOKIE_SECRET_FILE", empty.path(), "empty"],
        );
        let short = TempFile::new("short", "c2hvcnQ=\n");
        let problems = problems(&[
            ("COOKIE_SECRET", None),
            ("COOKIE_SECRET_FILE", Some(short.path())),
        ]);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("decodes to 5 bytes") && !problems[0].contains("c2hvcnQ"));
    }

    #[test]
    fn durations() {
        let c = load(&[
            ("COOKIE_EXPIRE", Some("90s")),
            ("GROUPS_CACHE_TTL", Some("1h 30m")),
        ]);
        assert_eq!(c.cookie.expire, Duration::from_secs(90));
        assert_eq!(c.groups_cache_ttl, Duration::from_secs(5400));
        for (name, value, needle) in [
            ("COOKIE_EXPIRE", "14", "not a duration"),
            ("COOKIE_EXPIRE", "0s", "longer than zero"),
            ("GROUPS_CACHE_TTL", "five minutes", "not a duration"),
            ("GROUPS_CACHE_TTL", "-5m", "not a duration"),
            ("GROUPS_STALE_IF_ERROR", "15", "not a duration"),
            ("GROUPS_STALE_IF_ERROR", "-1m", "not a duration"),
            ("GROUPS_STALE_IF_ERROR", "forever", "not a duration"),
        ] {
            assert_one_problem(&[(name, Some(value))], &[name, needle]);
        }
    }
}
