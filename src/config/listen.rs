//! Where the service is reached and listens: `AUTHENTICATE_SERVICE_URL` (its
//! public base URL, one per site when `COOKIE_DOMAIN` lists several root
//! domains), `ADDRESS` and `METRICS_ADDRESS` (never the same listener, so
//! metrics stay private). It owns splitting the per-site lists; the cookie
//! domains it splits off are checked by `cookie`. It binds nothing: `startup`
//! does.

use url::Url;

use super::parse::{get, shown, Problems};
use super::RawConfig;
use crate::sites::is_domain;
use crate::sites::Sites;

/// Where the service listens and is reached.
pub(super) struct Listen {
    /// The parsed service URL and its string without trailing `/`; `None`
    /// recorded a problem.
    pub(super) service: Option<(Url, String)>,
    pub(super) address: String,
    pub(super) metrics_address: Option<String>,
    /// The first site's `COOKIE_DOMAIN`, not yet checked.
    pub(super) cookie_domain: Option<String>,
    /// The other sites, when there are several root domains.
    pub(super) sites: Sites,
}

/// Reads and checks the listeners and the service URL, in this order.
pub(super) fn check(raw: &RawConfig, p: &mut Problems) -> Listen {
    let several = Sites::split(
        get(&raw.cookie_domain),
        get(&raw.authenticate_service_url),
        &mut p.0,
    );
    let service = match several.service_url.clone() {
        Some(v) => parse_service_url(&v, p),
        None => p.add(
            &format!("AUTHENTICATE_SERVICE_URL is not set: set it to this service's public base URL, {SERVICE_URL_EXAMPLE}"),
        ),
    };

    let address = get(&raw.address).unwrap_or_else(|| "0.0.0.0:4180".to_string());
    if !is_host_port(&address) {
        p.push(format!(
            "ADDRESS `{address}` is not host:port: use e.g. 0.0.0.0:4180 or [::]:4180"
        ));
    }
    let metrics_address = get(&raw.metrics_address);
    if let Some(m) = &metrics_address {
        if !is_host_port(m) {
            p.push(format!(
                "METRICS_ADDRESS `{m}` is not host:port: use e.g. 127.0.0.1:9090, or leave it unset"
            ));
        } else if same_listener(m, &address) {
            p.push(format!(
                "METRICS_ADDRESS `{m}` is the same as ADDRESS: metrics must not be public; use another port, e.g. 127.0.0.1:9090"
            ));
        }
    }

    Listen {
        service,
        address,
        metrics_address,
        cookie_domain: several.cookie_domain,
        sites: several.sites,
    }
}

/// How the README advises setting `AUTHENTICATE_SERVICE_URL`.
const SERVICE_URL_EXAMPLE: &str = "e.g. https://app.example.com (the app's own origin, when \
     the proxy routes /oauth2/ to this service)";

/// `AUTHENTICATE_SERVICE_URL` -> (parsed URL, normalised string without trailing `/`).
fn parse_service_url(value: &str, p: &mut Problems) -> Option<(Url, String)> {
    let example = SERVICE_URL_EXAMPLE;
    let var = shown("AUTHENTICATE_SERVICE_URL", value);
    let Some(url) = Url::parse(value).ok().filter(|u| u.has_host()) else {
        return p.add(&format!("{var} is not an absolute URL: use {example}"));
    };
    if !matches!(url.scheme(), "http" | "https") {
        return p.add(&format!("{var} must be an http(s) URL: use {example}"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return p.add(&format!(
            "{var} must not contain a user name or password: use {example}"
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return p.add(&format!(
            "{var} must not have a query or fragment: use {example}"
        ));
    }
    let normalised = url.as_str().trim_end_matches('/').to_string();
    Some((url, normalised))
}

/// `host:port` as a listener takes it: an IP or host name, and a port (0 allowed).
fn is_host_port(value: &str) -> bool {
    if value.parse::<std::net::SocketAddr>().is_ok() {
        return true;
    }
    match value.rsplit_once(':') {
        Some((host, port)) => port.parse::<u16>().is_ok() && is_domain(host),
        None => false,
    }
}

/// Whether two listen addresses would collide (same port on the same or a wildcard host).
fn same_listener(a: &str, b: &str) -> bool {
    let split = |v: &str| -> Option<(String, u16)> {
        let (host, port) = v.rsplit_once(':')?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        Some((host, port.parse().ok()?))
    };
    let (Some((ha, pa)), Some((hb, pb))) = (split(a), split(b)) else {
        return a == b;
    };
    let wildcard = |h: &str| matches!(h, "0.0.0.0" | "::" | "");
    pa == pb && pa != 0 && (ha == hb || wildcard(&ha) || wildcard(&hb))
}

#[cfg(test)]
mod tests {
    use crate::config::test_support::{assert_one_problem, load, problems};

    #[test]
    fn the_service_url_example_is_the_apps_own_origin() {
        let problems = problems(&[("AUTHENTICATE_SERVICE_URL", None)]);
        assert!(
            problems.iter().any(|p| p.contains("the app's own origin")),
            "{problems:#?}"
        );
    }

    #[test]
    fn the_service_url_keeps_its_path_prefix_and_drops_the_trailing_slash() {
        let cases = [
            ("https://auth.example.com/", "https://auth.example.com"),
            ("https://Auth.Example.com", "https://auth.example.com"),
            ("http://127.0.0.1:4180", "http://127.0.0.1:4180"),
            ("https://example.com/auth/", "https://example.com/auth"),
        ];
        for (given, want) in cases {
            let c = load(&[("AUTHENTICATE_SERVICE_URL", Some(given))]);
            assert_eq!(c.service_url, want);
            assert_eq!(c.redirect_uri, format!("{want}/oauth2/callback"));
        }
    }

    #[test]
    fn bad_service_urls() {
        for (given, needle) in [
            ("auth.example.com", "not an absolute URL"),
            ("ftp://auth.example.com", "http(s)"),
            ("https://auth.example.com/?a=b", "query"),
            ("https://auth.example.com/#x", "fragment"),
        ] {
            assert_one_problem(
                &[("AUTHENTICATE_SERVICE_URL", Some(given))],
                &["AUTHENTICATE_SERVICE_URL", needle],
            );
        }
    }
}
