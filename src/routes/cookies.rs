//! Reading our cookies from a request and writing `Set-Cookie` values with the
//! configured attributes. Values are never logged.

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
        settings.name,
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
    format!("{}_csrf", settings.name)
}
