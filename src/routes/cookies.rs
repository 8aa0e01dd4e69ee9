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
/// can arrive, e.g. one per domain); malformed pairs are skipped. Read as
/// bytes: a value is returned only when it is visible ASCII (as
/// `HeaderValue::to_str` requires), but another cookie's non-ASCII bytes in
/// the same header no longer hide ours (a browser's other cookies must not
/// sign anyone out).
pub fn cookie_values<'r>(
    req: &'r HttpRequest,
    name: &'r str,
) -> impl Iterator<Item = &'r str> + 'r {
    req.headers()
        .get_all(header::COOKIE)
        .flat_map(|v| Pairs(Some(v.as_bytes())))
        .filter_map(move |pair| value_of(pair, name.as_bytes()))
}

/// The `;`-separated parts of a `Cookie` header, as `[u8]::split` gives
/// them, found with SIMD.
struct Pairs<'r>(Option<&'r [u8]>);

impl<'r> Iterator for Pairs<'r> {
    type Item = &'r [u8];

    fn next(&mut self) -> Option<&'r [u8]> {
        let rest = self.0?;
        match memchr::memchr(b';', rest) {
            Some(at) => {
                self.0 = Some(&rest[at + 1..]);
                Some(&rest[..at])
            }
            None => {
                self.0 = None;
                Some(rest)
            }
        }
    }
}

/// The value of one `name=value` pair of a `Cookie` header, when its name is
/// `name`: trimmed, unquoted, visible ASCII.
fn value_of<'r>(pair: &'r [u8], name: &[u8]) -> Option<&'r str> {
    let pair = pair.trim_ascii();
    let eq = pair.iter().position(|&b| b == b'=')?;
    if pair[..eq].trim_ascii_end() != name {
        return None;
    }
    let mut value = pair[eq + 1..].trim_ascii_start();
    while let [b'"', rest @ ..] = value {
        value = rest;
    }
    while let [rest @ .., b'"'] = value {
        value = rest;
    }
    crate::header_text::visible_ascii(value)
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

/// The binding cookie's name: `__Host-` whenever it is Secure, also with
/// `COOKIE_DOMAIN` (it is always host-only), so no sibling host can plant one.
pub fn binding_cookie_name(settings: &CookieSettings) -> String {
    let prefix = if settings.secure { "__Host-" } else { "" };
    format!("{prefix}{}_csrf", settings.name)
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

/// The names our cookies go by in this process, and the unprefixed session
/// cookie name of earlier versions with until when it is still read.
///
/// The old name can be planted by a sibling subdomain or over plain http, so
/// it is read only where it can matter and only for one `COOKIE_EXPIRE` after
/// the prefixed names were first used: with the Redis store, from the first
/// start of a prefixing version recorded in Redis (restarts and new replicas do
/// not extend it); with the memory store never, since no session an earlier
/// process made survives a restart. The old binding cookie is never read: a
/// sign-in under way during the upgrade simply starts again.
#[derive(Debug, Clone)]
pub struct CookieNames {
    pub session: String,
    pub binding: String,
    /// `COOKIE_NAME` and `COOKIE_NAME_csrf` when they differ from today's names
    /// (cleared at sign-out).
    legacy: Option<(String, String)>,
    /// Seconds since the epoch until which the old session name is read (0: never).
    legacy_until: u64,
}

impl CookieNames {
    /// `first_prefixed_start`: when the prefixed names were first used for
    /// this store's sessions (`None`: no session can carry an old name).
    pub fn new(settings: &CookieSettings, first_prefixed_start: Option<u64>) -> CookieNames {
        CookieNames {
            session: session_cookie_name(settings),
            binding: binding_cookie_name(settings),
            legacy: (!prefix(settings).is_empty())
                .then(|| (settings.name.clone(), format!("{}_csrf", settings.name))),
            legacy_until: first_prefixed_start
                .map_or(0, |start| start.saturating_add(settings.expire.as_secs())),
        }
    }

    /// The old names, while they are still read at `now`.
    fn legacy(&self, now: u64) -> Option<&(String, String)> {
        self.legacy.as_ref().filter(|_| now < self.legacy_until)
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

    /// The binding cookie's values (today's name only).
    pub fn binding_values<'r>(
        &'r self,
        req: &'r HttpRequest,
        _now: u64,
    ) -> impl Iterator<Item = &'r str> + 'r {
        cookie_values(req, &self.binding)
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

    fn request(headers: &[&[u8]]) -> HttpRequest {
        let mut req = actix_web::test::TestRequest::default();
        for value in headers {
            let value = header::HeaderValue::from_bytes(value).unwrap();
            req = req.append_header((header::COOKIE, value));
        }
        req.to_http_request()
    }

    /// The values as they were read before stop 11 (the whole header as
    /// text, then split): what the byte reader must still return for any
    /// header that is text.
    fn as_text<'r>(req: &'r HttpRequest, name: &'r str) -> Vec<&'r str> {
        req.headers()
            .get_all(header::COOKIE)
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| {
                let (k, v) = pair.trim().split_once('=')?;
                (k.trim() == name).then(|| v.trim().trim_matches('"'))
            })
            .collect()
    }

    #[test]
    fn cookie_values_are_read_as_before_from_any_text_header() {
        let parts = [
            "_fa", "_fa2", "x", "=", "==", ";", "; ", " ", "\t", "\"", "v.1", "a b", "", "_FA",
        ];
        // Every header of up to four parts: names, separators, spaces, quotes.
        let mut headers = vec![String::new()];
        for _ in 0..4 {
            let longer: Vec<String> = headers
                .iter()
                .flat_map(|h| parts.iter().map(move |p| format!("{h}{p}")))
                .collect();
            headers.extend(longer);
            headers.dedup();
        }
        for text in &headers {
            for twice in [false, true] {
                let values: Vec<&[u8]> = if twice {
                    vec![text.as_bytes(), b"_fa=second"]
                } else {
                    vec![text.as_bytes()]
                };
                let req = request(&values);
                let read: Vec<&str> = cookie_values(&req, "_fa").collect();
                assert_eq!(read, as_text(&req, "_fa"), "{text:?}");
            }
        }
    }

    #[test]
    fn another_cookies_non_ascii_bytes_do_not_hide_ours() {
        let req = request(&[b"pref=caf\xc3\xa9; _fa=abc.def; other=\xff"]);
        assert_eq!(cookie_values(&req, "_fa").collect::<Vec<_>>(), ["abc.def"]);
        assert!(as_text(&req, "_fa").is_empty(), "the text reader lost it");
        // Our own value must still be visible ASCII.
        let req = request(&[b"_fa=ab\xc3\xa9; _fa=\"q\""]);
        assert_eq!(cookie_values(&req, "_fa").collect::<Vec<_>>(), ["q"]);
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
        assert_eq!(
            binding_cookie_name(&shared),
            "__Host-_fa_csrf",
            "the binding cookie is host-only, so __Host- also with a domain"
        );
        let plain = settings(false, Some(".example.com"));
        assert_eq!(session_cookie_name(&plain), "_fa");
        assert_eq!(binding_cookie_name(&plain), "_fa_csrf");
    }

    #[test]
    fn old_names_are_read_for_one_cookie_lifetime_from_the_first_prefixed_start() {
        let mut long = settings(true, None);
        long.expire = Duration::from_secs(50_000);
        let names = CookieNames::new(&long, Some(1_000));
        assert!(names.legacy(50_999).is_some());
        assert!(names.legacy(51_000).is_none());
        let names = CookieNames::new(&settings(true, None), Some(1_000));
        assert!(names.legacy(1_099).is_some());
        assert!(names.legacy(1_100).is_none());
        assert_eq!(names.clear_legacy(&settings(true, None)).len(), 2);
        let unchanged = CookieNames::new(&settings(false, None), Some(1_000));
        assert!(unchanged.legacy(1_000).is_none());
        assert!(unchanged.clear_legacy(&settings(false, None)).is_empty());
    }

    #[test]
    fn without_a_first_start_old_names_are_never_read_but_still_cleared() {
        let names = CookieNames::new(&settings(true, None), None);
        assert!(names.legacy(0).is_none());
        assert_eq!(names.clear_legacy(&settings(true, None)).len(), 2);
    }
}
