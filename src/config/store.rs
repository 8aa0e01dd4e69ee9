//! Where state lives and how long it is trusted: `SESSION_STORE` (memory or a
//! Redis URL, whose password is never echoed), `GROUPS_CACHE_TTL` and
//! `GROUPS_STALE_IF_ERROR` (how long past the TTL last known groups may serve
//! while Okta fails). It does not connect to Redis: `startup` and `session` do.

use std::time::Duration;

use url::Url;

use super::parse::{duration, duration_or_zero, get, Problems};
use super::{RawConfig, StoreKind};

/// The groups cache's durations; `None` recorded a problem.
pub(super) struct GroupsCache {
    pub(super) ttl: Option<Duration>,
    pub(super) stale_if_error: Option<Duration>,
}

/// Reads and checks `GROUPS_CACHE_TTL`, then `GROUPS_STALE_IF_ERROR`.
pub(super) fn groups_cache(raw: &RawConfig, p: &mut Problems) -> GroupsCache {
    let groups_cache_ttl = duration("GROUPS_CACHE_TTL", get(&raw.groups_cache_ttl), "5m", p);
    let groups_stale_if_error = duration_or_zero(
        "GROUPS_STALE_IF_ERROR",
        get(&raw.groups_stale_if_error),
        "15m",
        p,
    );

    GroupsCache {
        ttl: groups_cache_ttl,
        stale_if_error: groups_stale_if_error,
    }
}

/// Reads and checks `SESSION_STORE` (default: memory); `None` recorded a problem.
pub(super) fn session_store(raw: &RawConfig, p: &mut Problems) -> Option<StoreKind> {
    match get(&raw.session_store) {
        None => Some(StoreKind::Memory),
        Some(v) => parse_store(&v, p),
    }
}

/// `SESSION_STORE`: `memory` or a `redis://` / `rediss://` URL. Never echoes a URL
/// (it may carry a password).
fn parse_store(value: &str, p: &mut Problems) -> Option<StoreKind> {
    if value.eq_ignore_ascii_case("memory") {
        return Some(StoreKind::Memory);
    }
    let lower = value.to_ascii_lowercase();
    if lower.starts_with("redis://") || lower.starts_with("rediss://") {
        return match Url::parse(value) {
            Ok(url) if url.host_str().is_some_and(|h| !h.is_empty()) => Some(StoreKind::Redis(url)),
            _ => p.add(
                "SESSION_STORE is not a valid Redis URL: use e.g. redis://redis:6379 or rediss://user:password@host:6380/0",
            ),
        };
    }
    p.add(
        "SESSION_STORE must be `memory` or a redis:// (or rediss://) URL, e.g. redis://redis:6379",
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::test_support::{assert_one_problem, load, problems};
    use crate::config::StoreKind;

    #[test]
    fn groups_stale_if_error_defaults_to_15_minutes_and_zero_means_none() {
        assert_eq!(load(&[]).groups_stale_if_error, Duration::from_secs(900));
        for zero in ["0", "0s", " 0 "] {
            let c = load(&[("GROUPS_STALE_IF_ERROR", Some(zero))]);
            assert_eq!(c.groups_stale_if_error, Duration::ZERO, "{zero:?}");
        }
        let c = load(&[("GROUPS_STALE_IF_ERROR", Some("1h 30s"))]);
        assert_eq!(c.groups_stale_if_error, Duration::from_secs(3630));
    }

    #[test]
    fn session_stores() {
        let c = load(&[("SESSION_STORE", Some("redis://redis:6379/0"))]);
        assert!(matches!(&c.session_store, StoreKind::Redis(u) if u.host_str() == Some("redis")));
        let c = load(&[("SESSION_STORE", Some("rediss://:pw@cache.example.com:6380"))]);
        assert!(matches!(&c.session_store, StoreKind::Redis(u) if u.scheme() == "rediss"));
        assert_eq!(
            load(&[("SESSION_STORE", Some("Memory"))]).session_store,
            StoreKind::Memory
        );
        assert_one_problem(
            &[("SESSION_STORE", Some("memcached://x"))],
            &["SESSION_STORE", "redis://"],
        );
        assert_one_problem(
            &[("SESSION_STORE", Some("redis://"))],
            &["not a valid Redis URL"],
        );
    }

    #[test]
    fn a_redis_password_never_shows_in_debug_or_messages() {
        let c = load(&[("SESSION_STORE", Some("redis://user:s3cr3tpw@redis:6379"))]);
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("s3cr3tpw") && shown.contains("redis:6379"),
            "{shown}"
        );
        let problems = problems(&[("SESSION_STORE", Some("redis://user:s3cr3tpw@"))]);
        assert!(!problems[0].contains("s3cr3tpw"));
    }
}
