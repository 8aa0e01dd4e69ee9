//! The checks that need no network: settings that are valid one by one but
//! break sign-in or trust together (cookie flags against the service URL, the
//! cookie domain against its host, trusted proxies that trust everyone). It
//! owns only those comparisons; it must not read the environment or call out.

use url::Url;

use super::Report;
use crate::config::{is_loopback, Config};

/// Settings that are valid one by one but break sign-in or trust together.
pub(super) fn check_cookie_and_proxies(config: &Config, report: &mut Report) {
    let service = Url::parse(&config.service_url).ok();
    let host = service
        .as_ref()
        .and_then(|u| u.host_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let is_http = service.as_ref().is_some_and(|u| u.scheme() == "http");
    let loopback = service.as_ref().is_some_and(is_loopback);
    match (config.cookie.secure, is_http) {
        (true, true) if !loopback => report.fail(
            "cookies",
            format!("COOKIE_SECURE is true but AUTHENTICATE_SERVICE_URL is http://{host}: browsers never send a Secure cookie over http, so every sign-in loops"),
            "serve the service over https (recommended), or set COOKIE_SECURE=false for a plain-http test setup",
        ),
        (false, false) => report.warn(
            "cookies",
            "COOKIE_SECURE=false with an https AUTHENTICATE_SERVICE_URL: the session cookie may also travel over plain http",
            "remove COOKIE_SECURE=false",
        ),
        _ => report.ok(
            "cookies",
            format!("secure={} for {}", config.cookie.secure, config.service_url),
        ),
    }
    if let Some(domain) = &config.cookie.domain {
        let bare = domain.trim_start_matches('.').to_ascii_lowercase();
        if host == bare || host.ends_with(&format!(".{bare}")) {
            report.ok(
                "cookie domain",
                format!("{domain} contains the service host {host}"),
            );
        } else {
            report.fail(
                "cookie domain",
                format!("COOKIE_DOMAIN {domain} does not contain the host of AUTHENTICATE_SERVICE_URL ({host}): browsers refuse the session cookie"),
                format!("set COOKIE_DOMAIN to a parent domain of {host}, or leave it unset"),
            );
        }
    }
    let everyone: Vec<String> = config
        .trusted_proxies
        .0
        .iter()
        .filter(|net| net.prefix_len() == 0)
        .map(|net| net.to_string())
        .collect();
    if everyone.is_empty() {
        report.ok(
            "trusted proxies",
            format!("{} address range(s)", config.trusted_proxies.0.len()),
        );
    } else {
        report.fail(
            "trusted proxies",
            format!("TRUSTED_PROXIES contains {}: every client could forge X-Forwarded-* and X-Original-* headers", everyone.join(", ")),
            "list only your proxy's addresses, e.g. TRUSTED_PROXIES=10.0.0.5/32",
        );
    }
}
