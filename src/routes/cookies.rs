//! Reading our cookies from a request and writing `Set-Cookie` values with the
//! configured attributes and names: `__Host-` (Secure, no Domain) or, with
//! `COOKIE_DOMAIN`, `__Secure-` in front of `COOKIE_NAME` whenever the cookies
//! are Secure, so a sibling subdomain cannot plant them; the unprefixed names of
//! earlier versions are still read for as long as a cookie they set can live
//! (the session's for one `COOKIE_EXPIRE`, the binding's for 10 minutes) after
//! this process started. Values are never logged.

use actix_web::http::header;
use actix_web::HttpRequest;

use crate::config::CookieSettings;

/// Every value of the cookie `name` in the request's `Cookie` headers (several
/// can arrive, e.g. one per domain); malformed pairs are skipped.
pub fn cookie_values<'r>(
    req: &'r HttpRequest,
    name: &'r str,
) -> impl Iterator<Item = &'r str> + 'r {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(move |pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k.trim() == name).then(|| v.trim().trim_matches('"'))
        })
}

/// `Set-Cookie` for the session cookie; `None` clears it.
pub fn session_cookie_header(settings: &CookieSettings, value: Option<&str>) -> String {
    let max_age = if value.is_some() {
        settings.expire.as_secs()
    } else {
        0
    };
    let mut cookie = format!(
        "{}={}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax",
        session_cookie_name(settings),
        value.unwrap_or(""),
        max_age
    );
    if let Some(domain) = &settings.domain {
        cookie.push_str("; Domain=");
        cookie.push_str(domain.trim_start_matches('.'));
    }
    if settings.secure {
        cookie.push_str("; Secure");
    }
    cookie
}

/// `Set-Cookie` for the short-lived cookie that binds a sign-in to the browser
/// that started it; host-only, and `None` clears it.
pub fn binding_cookie_header(settings: &CookieSettings, value: Option<&str>) -> String {
    let max_age = if value.is_some() {
        crate::session::PENDING_TTL.as_secs()
    } else {
        0
    };
    let mut cookie = format!(
        "{}={}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax",
        binding_cookie_name(settings),
        value.unwrap_or(""),
        max_age
    );
    if settings.secure {
        cookie.push_str("; Secure");
    }
    cookie
}

pub fn binding_cookie_name(settings: &CookieSettings) -> String {
    format!("{}{}_csrf", prefix(settings), settings.name)
}

/// The session cookie's name: `COOKIE_NAME` with its prefix.
pub fn session_cookie_name(settings: &CookieSettings) -> String {
    format!("{}{}", prefix(settings), settings.name)
}

/// `__Host-` for Secure host-only cookies, `__Secure-` for Secure ones with a
/// `Domain`; none without `Secure` (browsers would refuse the cookie).
fn prefix(settings: &CookieSettings) -> &'static str {
    match (settings.secure, &settings.domain) {
        (false, _) => "",
        (true, None) => "__Host-",
        (true, Some(_)) => "__Secure-",
    }
}

/// The names our cookies go by in this process, and the unprefixed ones of
/// earlier versions with how long they are still read.
#[derive(Debug, Clone)]
pub struct CookieNames {
    pub session: String,
    pub binding: String,
    /// `COOKIE_NAME` and `COOKIE_NAME_csrf` when they differ from today's names.
    legacy: Option<(String, String)>,
    /// Seconds since the epoch: one `COOKIE_EXPIRE` after this process started,
    /// when every session cookie an earlier version set has expired.
    legacy_until: u64,
    /// The same for binding cookies, which live [`PENDING_TTL`](crate::session::PENDING_TTL):
    /// reading a plantable name longer would only serve a login-CSRF attempt.
    legacy_binding_until: u64,
}

impl CookieNames {
    pub fn new(settings: &CookieSettings, started: u64) -> CookieNames {
        CookieNames {
            session: session_cookie_name(settings),
            binding: binding_cookie_name(settings),
            legacy: (!prefix(settings).is_empty())
                .then(|| (settings.name.clone(), format!("{}_csrf", settings.name))),
            legacy_until: started.saturating_add(settings.expire.as_secs()),
            legacy_binding_until: started
                .saturating_add(crate::session::PENDING_TTL.as_secs())
                .min(started.saturating_add(settings.expire.as_secs())),
        }
    }

    /// The old names, while they are still read at `now`.
    fn legacy(&self, now: u64) -> Option<&(String, String)> {
        self.legacy.as_ref().filter(|_| now < self.legacy_until)
    }

    /// The old binding cookie's name, while it is still read at `now`.
    fn legacy_binding(&self, now: u64) -> Option<&str> {
        self.legacy
            .as_ref()
            .filter(|_| now < self.legacy_binding_until)
            .map(|(_, binding)| binding.as_str())
    }

    /// The session cookie's values: today's name first, then the old one.
    pub fn session_values<'r>(
        &'r self,
        req: &'r HttpRequest,
        now: u64,
    ) -> impl Iterator<Item = &'r str> + 'r {
        let old = self.legacy(now).map(|(session, _)| session.as_str());
        cookie_values(req, &self.session).chain(old.into_iter().flat_map(|n| cookie_values(req, n)))
    }

    /// The binding cookie's values: today's name first, then the old one.
    pub fn binding_values<'r>(
        &'r self,
        req: &'r HttpRequest,
        now: u64,
    ) -> impl Iterator<Item = &'r str> + 'r {
        let old = self.legacy_binding(now);
        cookie_values(req, &self.binding).chain(old.into_iter().flat_map(|n| cookie_values(req, n)))
    }

    /// `Set-Cookie` values that clear the old session cookie (host-only and on
    /// the configured domain) and binding cookie; none when the names did not change.
    pub fn clear_legacy(&self, settings: &CookieSettings) -> Vec<String> {
        let Some((session, binding)) = &self.legacy else {
            return Vec::new();
        };
        let clear = |name: &str| format!("{name}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax");
        let mut headers = vec![clear(session), clear(binding)];
        if let Some(domain) = &settings.domain {
            headers.push(format!(
                "{}; Domain={}",
                clear(session),
                domain.trim_start_matches('.')
            ));
        }
        headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn settings(secure: bool, domain: Option<&str>) -> CookieSettings {
        CookieSettings {
            name: "_fa".to_string(),
            domain: domain.map(str::to_string),
            secure,
            expire: Duration::from_secs(100),
            keys: Vec::new(),
        }
    }

    #[test]
    fn secure_cookies_carry_the_prefix_their_domain_allows() {
        let host = settings(true, None);
        assert_eq!(session_cookie_name(&host), "__Host-_fa");
        assert_eq!(binding_cookie_name(&host), "__Host-_fa_csrf");
        let header = session_cookie_header(&host, Some("v"));
        assert!(header.starts_with("__Host-_fa=v; Path=/;") && header.ends_with("; Secure"));
        assert!(!header.contains("Domain"), "{header}");
        let shared = settings(true, Some(".example.com"));
        assert_eq!(session_cookie_name(&shared), "__Secure-_fa");
        assert_eq!(binding_cookie_name(&shared), "__Secure-_fa_csrf");
        let plain = settings(false, Some(".example.com"));
        assert_eq!(session_cookie_name(&plain), "_fa");
        assert_eq!(binding_cookie_name(&plain), "_fa_csrf");
    }

    #[test]
    fn old_names_are_read_for_one_cookie_lifetime_only() {
        let mut long = settings(true, None);
        long.expire = Duration::from_secs(50_000);
        let names = CookieNames::new(&long, 1_000);
        assert!(names.legacy(50_999).is_some());
        assert!(names.legacy(51_000).is_none());
        assert!(names.legacy_binding(1_599).is_some());
        assert!(
            names.legacy_binding(1_600).is_none(),
            "an old binding cookie lives 10 minutes"
        );
        let names = CookieNames::new(&settings(true, None), 1_000);
        assert!(names.legacy(1_099).is_some());
        assert!(names.legacy(1_100).is_none());
        assert!(names.legacy_binding(1_100).is_none());
        assert_eq!(names.clear_legacy(&settings(true, None)).len(), 2);
        let unchanged = CookieNames::new(&settings(false, None), 1_000);
        assert!(unchanged.legacy(1_000).is_none());
        assert!(unchanged.clear_legacy(&settings(false, None)).is_empty());
    }
}
