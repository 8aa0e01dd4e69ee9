//! The original request the proxy is asking about: method and URL from
//! `X-Original-URL`/`X-Original-Method` (nginx) or `X-Forwarded-Proto/Host/Uri/Method`
//! (Traefik, Caddy), else the `Host` header and `/`. Forwarded headers count only
//! from peers in `TRUSTED_PROXIES`; never actix's `ConnectionInfo`, which trusts
//! anyone. No actix types here: headers come through a lookup function.

use std::net::IpAddr;
use url::Url;

/// `TRUSTED_PROXIES`: the CIDRs whose forwarded headers count.
#[derive(Debug, Clone)]
pub struct TrustedProxies(pub Vec<ipnet::IpNet>);

impl TrustedProxies {
    /// Parses a comma-separated list of CIDRs or bare addresses (a bare address is a
    /// /32 or /128). Returns one message per bad entry.
    pub fn parse(list: &str) -> Result<TrustedProxies, Vec<String>> {
        let mut nets = Vec::new();
        let mut problems = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if let Ok(net) = entry.parse::<ipnet::IpNet>() {
                nets.push(net.trunc());
            } else if let Ok(ip) = entry.parse::<IpAddr>() {
                nets.push(ipnet::IpNet::from(ip));
            } else {
                problems.push(format!(
                    "TRUSTED_PROXIES entry `{entry}` is neither an IP address nor a CIDR: \
                     use e.g. 10.0.0.0/8, 172.17.0.1 or ::1/128"
                ));
            }
        }
        if problems.is_empty() {
            Ok(TrustedProxies(nets))
        } else {
            Err(problems)
        }
    }

    /// IPv4-mapped IPv6 peers (`::ffff:127.0.0.1`) are matched as IPv4.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let mapped = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        self.0
            .iter()
            .any(|net| net.contains(&ip) || mapped.is_some_and(|m| net.contains(&m)))
    }
}

/// Where the original URL came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    OriginalUrl,
    ForwardedHeaders,
    HostHeader,
    /// The peer is not trusted but sent forwarded headers: they were ignored and
    /// the URL is unknown.
    Unverifiable,
}

/// The request the proxy asks about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginalRequest {
    /// Uppercase method; `GET` when none was forwarded.
    pub method: String,
    /// Absolute http(s) URL; `None` when unknown or unverifiable.
    pub url: Option<Url>,
    pub source: Source,
}

/// A forwarded header from a trusted peer that cannot be read; answered with 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ForwardedError(pub String);

/// The headers that only a trusted proxy may send.
const FORWARDED_HEADERS: [&str; 6] = [
    "x-original-url",
    "x-original-method",
    "x-forwarded-host",
    "x-forwarded-uri",
    "x-forwarded-proto",
    "x-forwarded-method",
];

/// Which headers name the original URL first when a proxy sends both kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefer {
    /// `X-Original-URL`, then `X-Forwarded-*`: what nginx configs send
    /// (`/oauth2/auth`).
    OriginalUrl,
    /// `X-Forwarded-Proto/Host/Uri/Method`, then `X-Original-URL`: what Traefik
    /// and Caddy set themselves, while they may pass on a client's own
    /// `X-Original-URL` (`/oauth2/forward`).
    ForwardedHeaders,
}

/// Reads the original request, `X-Original-URL` first. `header(name)` returns
/// a request header's value (first one, as text) by lowercase name.
/// `default_scheme` is used with the `Host` fallback and when
/// `X-Forwarded-Proto` is absent.
pub fn original_request<'h>(
    peer: Option<IpAddr>,
    header: impl Fn(&str) -> Option<&'h str>,
    trusted: &TrustedProxies,
    default_scheme: &str,
) -> Result<OriginalRequest, ForwardedError> {
    original_request_preferring(Prefer::OriginalUrl, peer, header, trusted, default_scheme)
}

/// [`original_request`] with the headers read in the order `prefer` says.
pub fn original_request_preferring<'h>(
    prefer: Prefer,
    peer: Option<IpAddr>,
    header: impl Fn(&str) -> Option<&'h str>,
    trusted: &TrustedProxies,
    default_scheme: &str,
) -> Result<OriginalRequest, ForwardedError> {
    let default_scheme = default_scheme.to_ascii_lowercase();
    let is_trusted = peer.is_some_and(|ip| trusted.contains(ip));

    if !is_trusted {
        // Anyone can send these, so from an untrusted peer they prove nothing; and
        // answering from Host instead would judge a URL other than the one meant.
        if FORWARDED_HEADERS.iter().any(|h| header(h).is_some()) {
            return Ok(OriginalRequest {
                method: "GET".to_string(),
                url: None,
                source: Source::Unverifiable,
            });
        }
        return Ok(from_host_header(
            &header,
            &default_scheme,
            "GET".to_string(),
        ));
    }

    let forwarded_first =
        prefer == Prefer::ForwardedHeaders && header("x-forwarded-host").is_some();
    if let Some(original) = header("x-original-url").filter(|_| !forwarded_first) {
        let method = method(header("x-original-method"), "X-Original-Method")?;
        let url = original_url(original.trim(), &header, &default_scheme)?;
        return Ok(OriginalRequest {
            method,
            url: Some(url),
            source: Source::OriginalUrl,
        });
    }

    if let Some(host) = header("x-forwarded-host") {
        let method = method(header("x-forwarded-method"), "X-Forwarded-Method")?;
        let proto = proto(header("x-forwarded-proto"), &default_scheme)?;
        let host = first_value(host);
        check_host(host, "X-Forwarded-Host")?;
        let uri = header("x-forwarded-uri").map(str::trim).unwrap_or("/");
        if !uri.starts_with('/') {
            return Err(ForwardedError(
                "X-Forwarded-Uri must be a path starting with /".to_string(),
            ));
        }
        if uri.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(ForwardedError(
                "X-Forwarded-Uri contains whitespace or control characters".to_string(),
            ));
        }
        let url = build_url(&proto, host, uri, "X-Forwarded-Host")?;
        return Ok(OriginalRequest {
            method,
            url: Some(url),
            source: Source::ForwardedHeaders,
        });
    }

    // A trusted proxy that names only the method still tells the truth about it.
    let forwarded_method = match header("x-original-method") {
        Some(m) => Some((m, "X-Original-Method")),
        None => header("x-forwarded-method").map(|m| (m, "X-Forwarded-Method")),
    };
    let method = match forwarded_method {
        Some((m, name)) => method(Some(m), name)?,
        None => "GET".to_string(),
    };
    Ok(from_host_header(&header, &default_scheme, method))
}

/// `default_scheme://Host/`, or no URL when the Host header is missing or unusable.
fn from_host_header<'h>(
    header: &impl Fn(&str) -> Option<&'h str>,
    default_scheme: &str,
    method: String,
) -> OriginalRequest {
    let url = header("host").and_then(|host| {
        let host = host.trim();
        check_host(host, "Host").ok()?;
        build_url(default_scheme, host, "/", "Host").ok()
    });
    OriginalRequest {
        method,
        url,
        source: Source::HostHeader,
    }
}

/// `X-Original-URL`: an absolute http(s) URL, or a path combined with the
/// forwarded (else `Host`) host and the forwarded (else default) scheme.
fn original_url<'h>(
    value: &str,
    header: &impl Fn(&str) -> Option<&'h str>,
    default_scheme: &str,
) -> Result<Url, ForwardedError> {
    let invalid = || {
        ForwardedError(
            "X-Original-URL is not a valid URL: send an absolute http(s) URL or a path starting with /"
                .to_string(),
        )
    };
    if value.is_empty() || value.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(invalid());
    }
    if value.starts_with('/') {
        if value.starts_with("//") || value.starts_with("/\\") {
            return Err(invalid());
        }
        let proto = proto(header("x-forwarded-proto"), default_scheme)?;
        let (host, name) = match header("x-forwarded-host") {
            Some(h) => (first_value(h), "X-Forwarded-Host"),
            None => match header("host") {
                Some(h) => (h.trim(), "Host"),
                None => return Err(ForwardedError(
                    "X-Original-URL is a path but neither X-Forwarded-Host nor Host names the host"
                        .to_string(),
                )),
            },
        };
        check_host(host, name)?;
        return build_url(&proto, host, value, name);
    }
    let lower = value.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return Err(invalid());
    }
    let url = Url::parse(value).map_err(|_| invalid())?;
    if !matches!(url.scheme(), "http" | "https")
        || url.host_str().is_none_or(str::is_empty)
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(invalid());
    }
    Ok(url)
}

/// The first of a comma-separated header's values, trimmed.
fn first_value(value: &str) -> &str {
    value.split(',').next().unwrap_or("").trim()
}

/// `X-Forwarded-Proto` (first value, lowercased), or the default scheme.
/// Traefik says `ws`/`wss` for a WebSocket handshake: that page is http(s).
fn proto(value: Option<&str>, default_scheme: &str) -> Result<String, ForwardedError> {
    let Some(value) = value else {
        return Ok(default_scheme.to_string());
    };
    let proto = first_value(value).to_ascii_lowercase();
    match proto.as_str() {
        "http" | "https" => Ok(proto),
        "ws" => Ok("http".to_string()),
        "wss" => Ok("https".to_string()),
        _ => Err(ForwardedError(
            "X-Forwarded-Proto must be http or https".to_string(),
        )),
    }
}

/// An uppercase HTTP method (letters only, at most 16), `GET` when absent.
fn method(value: Option<&str>, name: &str) -> Result<String, ForwardedError> {
    let Some(value) = value else {
        return Ok("GET".to_string());
    };
    let value = value.trim();
    if value.is_empty() || value.len() > 16 || !value.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(ForwardedError(format!(
            "{name} is not an HTTP method such as GET or POST"
        )));
    }
    Ok(value.to_ascii_uppercase())
}

/// A `host[:port]` as a header carries it: nothing that could move the URL's
/// authority elsewhere (`/`, `@`, `\`, `?`, `#`, whitespace) and a numeric port.
fn check_host(host: &str, name: &str) -> Result<(), ForwardedError> {
    let bad = || ForwardedError(format!("{name} is not a valid host[:port]"));
    if host.is_empty()
        || host.chars().any(|c| {
            matches!(c, '/' | '@' | '\\' | '?' | '#' | '%') || c.is_whitespace() || c.is_control()
        })
    {
        return Err(bad());
    }
    let (_, port) = split_host_port(host).ok_or_else(bad)?;
    if let Some(port) = port {
        port.parse::<u16>().map_err(|_| bad())?;
    }
    Ok(())
}

/// Splits `host[:port]` / `[v6][:port]`; `None` when the shape is wrong.
fn split_host_port(value: &str) -> Option<(&str, Option<&str>)> {
    if let Some(rest) = value.strip_prefix('[') {
        let end = rest.find(']')?;
        let host = &value[..end + 2];
        let after = &rest[end + 1..];
        return match after {
            "" => Some((host, None)),
            _ => Some((host, Some(after.strip_prefix(':')?))),
        };
    }
    match value.split_once(':') {
        None => Some((value, None)),
        Some((host, port)) if !host.is_empty() && !port.contains(':') => Some((host, Some(port))),
        Some(_) => None,
    }
}

/// Builds `proto://host uri` and checks the parsed authority is the given one,
/// so that nothing in the pieces can smuggle in another host.
fn build_url(proto: &str, host: &str, uri: &str, name: &str) -> Result<Url, ForwardedError> {
    let bad = || ForwardedError(format!("{name} is not a valid host[:port]"));
    let url = Url::parse(&format!("{proto}://{host}{uri}")).map_err(|_| bad())?;
    let (given_host, given_port) = split_host_port(host).ok_or_else(bad)?;
    let parsed_host = url.host_str().ok_or_else(bad)?;
    if !parsed_host.eq_ignore_ascii_case(given_host) {
        return Err(bad());
    }
    let given_port = match given_port {
        Some(p) => Some(p.parse::<u16>().map_err(|_| bad())?),
        None => None,
    };
    // `Url` drops a default port (`:443` with https), so compare effective ports.
    let effective = given_port.or_else(|| url.port_or_known_default());
    if url.port_or_known_default() != effective || (given_port.is_none() && url.port().is_some()) {
        return Err(bad());
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted() -> TrustedProxies {
        TrustedProxies::parse("127.0.0.1/32, ::1/128, 10.0.0.0/8").unwrap()
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    fn read(
        peer: Option<IpAddr>,
        headers: &[(&'static str, &'static str)],
    ) -> Result<OriginalRequest, ForwardedError> {
        let lookup = |name: &str| -> Option<&'static str> {
            headers.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
        };
        original_request(peer, lookup, &trusted(), "https")
    }

    fn ok(
        method: &str,
        url: Option<&str>,
        source: Source,
    ) -> Result<OriginalRequest, ForwardedError> {
        Ok(OriginalRequest {
            method: method.to_string(),
            url: url.map(|u| Url::parse(u).unwrap()),
            source,
        })
    }

    #[test]
    fn trusted_proxies_parse_cidrs_and_bare_addresses() {
        let t = TrustedProxies::parse(" 10.0.0.0/8 ,172.17.0.1, ::1 ,fd00::/8,").unwrap();
        assert_eq!(t.0.len(), 4);
        assert!(t.contains("10.1.2.3".parse().unwrap()));
        assert!(t.contains("172.17.0.1".parse().unwrap()));
        assert!(!t.contains("172.17.0.2".parse().unwrap()));
        assert!(t.contains("::1".parse().unwrap()));
        assert!(t.contains("fd12::1".parse().unwrap()));
        assert!(!t.contains("11.0.0.1".parse().unwrap()));
    }

    #[test]
    fn an_empty_trusted_proxies_list_trusts_nobody() {
        let t = TrustedProxies::parse("").unwrap();
        assert!(t.0.is_empty());
        assert!(!t.contains("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn bad_trusted_proxies_entries_are_each_reported() {
        let errs = TrustedProxies::parse("10.0.0.0/33, localhost, 1.2.3.4, 300.1.1.1").unwrap_err();
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(errs[0].contains("10.0.0.0/33"));
        assert!(errs[1].contains("localhost"));
        assert!(errs[2].contains("300.1.1.1"));
    }

    #[test]
    fn ipv4_mapped_ipv6_peers_match_ipv4_networks() {
        let t = TrustedProxies::parse("127.0.0.1/32").unwrap();
        assert!(t.contains("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!t.contains("::ffff:127.0.0.2".parse().unwrap()));
    }

    #[test]
    fn original_requests() {
        use Source::*;
        type Headers = Vec<(&'static str, &'static str)>;
        type Want = Result<OriginalRequest, ForwardedError>;
        let cases: Vec<(&str, Option<IpAddr>, Headers, Want)> = vec![
            (
                "nginx sends an absolute X-Original-URL and method",
                ip("127.0.0.1"),
                vec![
                    ("x-original-url", "https://app.example.com/a?b=c"),
                    ("x-original-method", "post"),
                    ("host", "auth.example.com"),
                ],
                ok("POST", Some("https://app.example.com/a?b=c"), OriginalUrl),
            ),
            (
                "an IPv4-mapped peer is trusted like its IPv4 address",
                ip("::ffff:127.0.0.1"),
                vec![("x-original-url", "http://app.example.com:8080/")],
                ok("GET", Some("http://app.example.com:8080/"), OriginalUrl),
            ),
            (
                "a relative X-Original-URL takes the forwarded host and proto",
                ip("10.1.1.1"),
                vec![
                    ("x-original-url", "/path?q=1"),
                    ("x-forwarded-proto", "http"),
                    ("x-forwarded-host", "app.example.com"),
                    ("host", "auth.example.com"),
                ],
                ok("GET", Some("http://app.example.com/path?q=1"), OriginalUrl),
            ),
            (
                "a relative X-Original-URL falls back to the Host header and default scheme",
                ip("127.0.0.1"),
                vec![("x-original-url", "/path"), ("host", "app.example.com:8443")],
                ok("GET", Some("https://app.example.com:8443/path"), OriginalUrl),
            ),
            (
                "a relative X-Original-URL without any host is an error",
                ip("127.0.0.1"),
                vec![("x-original-url", "/path")],
                Err(ForwardedError("X-Original-URL is a path but neither X-Forwarded-Host nor Host names the host".into())),
            ),
            (
                "a scheme-relative X-Original-URL is an error",
                ip("127.0.0.1"),
                vec![("x-original-url", "//evil.com/"), ("host", "app.example.com")],
                Err(ForwardedError("X-Original-URL is not a valid URL: send an absolute http(s) URL or a path starting with /".into())),
            ),
            (
                "a non-http X-Original-URL is an error",
                ip("127.0.0.1"),
                vec![("x-original-url", "ftp://app.example.com/")],
                Err(ForwardedError("X-Original-URL is not a valid URL: send an absolute http(s) URL or a path starting with /".into())),
            ),
            (
                "an X-Original-URL that is neither absolute nor a path is an error",
                ip("127.0.0.1"),
                vec![("x-original-url", "app.example.com/x")],
                Err(ForwardedError("X-Original-URL is not a valid URL: send an absolute http(s) URL or a path starting with /".into())),
            ),
            (
                "an X-Original-URL with user info is an error",
                ip("127.0.0.1"),
                vec![("x-original-url", "https://app.example.com@evil.com/")],
                Err(ForwardedError("X-Original-URL is not a valid URL: send an absolute http(s) URL or a path starting with /".into())),
            ),
            (
                "a bad X-Original-Method is an error",
                ip("127.0.0.1"),
                vec![("x-original-url", "https://app.example.com/"), ("x-original-method", "GET /x")],
                Err(ForwardedError("X-Original-Method is not an HTTP method such as GET or POST".into())),
            ),
            (
                "Traefik and Caddy send the X-Forwarded set",
                ip("10.0.0.5"),
                vec![
                    ("x-forwarded-proto", "https"),
                    ("x-forwarded-host", "app.example.com"),
                    ("x-forwarded-uri", "/dash?x=1"),
                    ("x-forwarded-method", "delete"),
                    ("host", "auth.example.com"),
                ],
                ok("DELETE", Some("https://app.example.com/dash?x=1"), ForwardedHeaders),
            ),
            (
                "the first of several forwarded values wins",
                ip("127.0.0.1"),
                vec![
                    ("x-forwarded-proto", " HTTP , https"),
                    ("x-forwarded-host", "app.example.com:8080, proxy.internal"),
                ],
                ok("GET", Some("http://app.example.com:8080/"), ForwardedHeaders),
            ),
            (
                "a missing X-Forwarded-Proto takes the default scheme and a missing uri is /",
                ip("::1"),
                vec![("x-forwarded-host", "App.Example.com")],
                ok("GET", Some("https://app.example.com/"), ForwardedHeaders),
            ),
            (
                "an IPv6 forwarded host works",
                ip("127.0.0.1"),
                vec![("x-forwarded-host", "[::1]:8080"), ("x-forwarded-proto", "http")],
                ok("GET", Some("http://[::1]:8080/"), ForwardedHeaders),
            ),
            (
                "a default port in the forwarded host is accepted",
                ip("127.0.0.1"),
                vec![("x-forwarded-host", "app.example.com:443")],
                ok("GET", Some("https://app.example.com/"), ForwardedHeaders),
            ),
            (
                "Traefik's ws and wss for a WebSocket handshake are http and https",
                ip("127.0.0.1"),
                vec![
                    ("x-forwarded-proto", "wss"),
                    ("x-forwarded-host", "app.example.com"),
                    ("x-forwarded-uri", "/socket"),
                ],
                ok("GET", Some("https://app.example.com/socket"), ForwardedHeaders),
            ),
            (
                "a bad X-Forwarded-Proto is an error",
                ip("127.0.0.1"),
                vec![("x-forwarded-host", "app.example.com"), ("x-forwarded-proto", "javascript")],
                Err(ForwardedError("X-Forwarded-Proto must be http or https".into())),
            ),
            (
                "a forwarded host with an at sign is an error",
                ip("127.0.0.1"),
                vec![("x-forwarded-host", "app.example.com@evil.com")],
                Err(ForwardedError("X-Forwarded-Host is not a valid host[:port]".into())),
            ),
            (
                "a forwarded host with a slash is an error",
                ip("127.0.0.1"),
                vec![("x-forwarded-host", "evil.com/app.example.com")],
                Err(ForwardedError("X-Forwarded-Host is not a valid host[:port]".into())),
            ),
            (
                "a forwarded host with a bad port is an error",
                ip("127.0.0.1"),
                vec![("x-forwarded-host", "app.example.com:99999")],
                Err(ForwardedError("X-Forwarded-Host is not a valid host[:port]".into())),
            ),
            (
                "a forwarded host that the URL parser would rewrite is an error",
                ip("127.0.0.1"),
                vec![("x-forwarded-host", "0x7f.1")],
                Err(ForwardedError("X-Forwarded-Host is not a valid host[:port]".into())),
            ),
            (
                "an empty forwarded host is an error",
                ip("127.0.0.1"),
                vec![("x-forwarded-host", "")],
                Err(ForwardedError("X-Forwarded-Host is not a valid host[:port]".into())),
            ),
            (
                "a forwarded uri without a leading slash is an error",
                ip("127.0.0.1"),
                vec![("x-forwarded-host", "app.example.com"), ("x-forwarded-uri", "evil.com/x")],
                Err(ForwardedError("X-Forwarded-Uri must be a path starting with /".into())),
            ),
            (
                "a forwarded uri cannot change the host",
                ip("127.0.0.1"),
                vec![("x-forwarded-host", "app.example.com"), ("x-forwarded-uri", "/\\evil.com")],
                ok("GET", Some("https://app.example.com//evil.com"), ForwardedHeaders),
            ),
            (
                "a bad X-Forwarded-Method is an error",
                ip("127.0.0.1"),
                vec![("x-forwarded-host", "app.example.com"), ("x-forwarded-method", "SUPERCALIFRAGILISTIC")],
                Err(ForwardedError("X-Forwarded-Method is not an HTTP method such as GET or POST".into())),
            ),
            (
                "a trusted peer without forwarded headers falls back to Host",
                ip("127.0.0.1"),
                vec![("host", "app.example.com:8080")],
                ok("GET", Some("https://app.example.com:8080/"), HostHeader),
            ),
            (
                "a trusted peer's forwarded method counts with the Host fallback",
                ip("127.0.0.1"),
                vec![("host", "app.example.com"), ("x-forwarded-method", "put")],
                ok("PUT", Some("https://app.example.com/"), HostHeader),
            ),
            (
                "no headers at all give no URL",
                ip("127.0.0.1"),
                vec![],
                ok("GET", None, HostHeader),
            ),
            (
                "an unusable Host header gives no URL",
                ip("127.0.0.1"),
                vec![("host", "a b")],
                ok("GET", None, HostHeader),
            ),
            (
                "spoofed X-Original-URL from an untrusted peer is ignored",
                ip("203.0.113.9"),
                vec![("x-original-url", "https://app.example.com/"), ("host", "auth.example.com")],
                ok("GET", None, Unverifiable),
            ),
            (
                "spoofed X-Forwarded headers from an untrusted peer are ignored",
                ip("203.0.113.9"),
                vec![
                    ("x-forwarded-host", "app.example.com"),
                    ("x-forwarded-method", "POST"),
                    ("host", "auth.example.com"),
                ],
                ok("GET", None, Unverifiable),
            ),
            (
                "even invalid forwarded headers from an untrusted peer are no error",
                ip("203.0.113.9"),
                vec![("x-forwarded-proto", "gopher"), ("x-original-method", "???")],
                ok("GET", None, Unverifiable),
            ),
            (
                "an unknown peer is not trusted",
                None,
                vec![("x-forwarded-uri", "/x"), ("host", "app.example.com")],
                ok("GET", None, Unverifiable),
            ),
            (
                "an untrusted peer without forwarded headers falls back to Host",
                ip("203.0.113.9"),
                vec![("host", "auth.example.com")],
                ok("GET", Some("https://auth.example.com/"), HostHeader),
            ),
            (
                "an IPv4-mapped peer outside the trusted networks is not trusted",
                ip("::ffff:203.0.113.9"),
                vec![("x-forwarded-host", "app.example.com")],
                ok("GET", None, Unverifiable),
            ),
        ];
        for (name, peer, headers, want) in cases {
            assert_eq!(read(peer, &headers), want, "{name}");
        }
    }

    #[test]
    fn the_forward_endpoint_prefers_the_proxys_own_forwarded_headers() {
        let headers = [
            ("x-original-url", "https://evil-choice.example.com/admin"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "app.example.com"),
            ("x-forwarded-uri", "/page"),
        ];
        let lookup = |name: &str| -> Option<&'static str> {
            headers.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
        };
        let read = |prefer| {
            original_request_preferring(prefer, ip("127.0.0.1"), lookup, &trusted(), "https")
        };
        let forward = read(Prefer::ForwardedHeaders).unwrap();
        assert_eq!(
            forward.url.unwrap().as_str(),
            "https://app.example.com/page"
        );
        assert_eq!(forward.source, Source::ForwardedHeaders);
        let nginx = read(Prefer::OriginalUrl).unwrap();
        assert_eq!(
            nginx.url.unwrap().as_str(),
            "https://evil-choice.example.com/admin"
        );
        // Without X-Forwarded-Host, the forward endpoint still reads X-Original-URL.
        let only_original = |name: &str| -> Option<&'static str> {
            (name == "x-original-url").then_some("https://app.example.com/x")
        };
        let got = original_request_preferring(
            Prefer::ForwardedHeaders,
            ip("127.0.0.1"),
            only_original,
            &trusted(),
            "https",
        )
        .unwrap();
        assert_eq!(got.source, Source::OriginalUrl);
    }
}
