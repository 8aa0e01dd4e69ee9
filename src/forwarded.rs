//! The original request the proxy is asking about: method and URL from
//! `X-Original-URL`/`X-Original-Method` (nginx) or `X-Forwarded-Proto/Host/Uri/Method`
//! (Traefik, Caddy), else the `Host` header and `/`. Forwarded headers count only
//! from peers in `TRUSTED_PROXIES`; never actix's `ConnectionInfo`, which trusts
//! anyone. No actix types here: headers come through a lookup function.
//! URLs are parsed through a small per-thread memo (`crate::memo`): a proxy
//! asks about the same URLs again and again, and the parse is the costliest
//! step of reading them.

use std::borrow::Cow;
use std::cell::RefCell;
use std::net::IpAddr;
use std::sync::Arc;
use url::Url;

use crate::header_text::has_space_or_control;
use crate::memo::{self, Memo};

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
    /// Uppercase method; `GET` when none was forwarded. The common methods
    /// are borrowed: a stranger's check reads the original request.
    pub method: Cow<'static, str>,
    /// Absolute http(s) URL; `None` when unknown or unverifiable. Shared with
    /// the thread's memo of parsed URLs.
    pub url: Option<Arc<Url>>,
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
    let default_scheme = if default_scheme.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(default_scheme.to_ascii_lowercase())
    } else {
        Cow::Borrowed(default_scheme)
    };
    let is_trusted = peer.is_some_and(|ip| trusted.contains(ip));

    if !is_trusted {
        // Anyone can send these, so from an untrusted peer they prove nothing; and
        // answering from Host instead would judge a URL other than the one meant.
        if FORWARDED_HEADERS.iter().any(|h| header(h).is_some()) {
            return Ok(OriginalRequest {
                method: Cow::Borrowed("GET"),
                url: None,
                source: Source::Unverifiable,
            });
        }
        return Ok(from_host_header(
            &header,
            &default_scheme,
            Cow::Borrowed("GET"),
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
        if has_space_or_control(uri) {
            return Err(ForwardedError(
                "X-Forwarded-Uri contains whitespace or control characters".to_string(),
            ));
        }
        let url = build_url(proto, host, uri, "X-Forwarded-Host")?;
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
        None => Cow::Borrowed("GET"),
    };
    Ok(from_host_header(&header, &default_scheme, method))
}

/// `default_scheme://Host/`, or no URL when the Host header is missing or unusable.
fn from_host_header<'h>(
    header: &impl Fn(&str) -> Option<&'h str>,
    default_scheme: &str,
    method: Cow<'static, str>,
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
/// An absolute URL must stay a function of its own text (and of the method
/// header): `routes::auth` keeps nginx strangers' answers by those two alone.
fn original_url<'h>(
    value: &str,
    header: &impl Fn(&str) -> Option<&'h str>,
    default_scheme: &str,
) -> Result<Arc<Url>, ForwardedError> {
    let invalid = || {
        ForwardedError(
            "X-Original-URL is not a valid URL: send an absolute http(s) URL or a path starting with /"
                .to_string(),
        )
    };
    if value.is_empty() || has_space_or_control(value) {
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
        return build_url(proto, host, value, name);
    }
    let starts_with = |prefix: &str| {
        value
            .get(..prefix.len())
            .is_some_and(|start| start.eq_ignore_ascii_case(prefix))
    };
    if !(starts_with("http://") || starts_with("https://")) {
        return Err(invalid());
    }
    let url = parse(&[value]).map_err(|_| invalid())?;
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
fn proto<'s>(value: Option<&str>, default_scheme: &'s str) -> Result<&'s str, ForwardedError> {
    let Some(value) = value else {
        return Ok(default_scheme);
    };
    let proto = first_value(value);
    let is = |name: &str| proto.eq_ignore_ascii_case(name);
    if is("http") || is("ws") {
        Ok("http")
    } else if is("https") || is("wss") {
        Ok("https")
    } else {
        Err(ForwardedError(
            "X-Forwarded-Proto must be http or https".to_string(),
        ))
    }
}

/// An uppercase HTTP method (letters only, at most 16), `GET` when absent.
fn method(value: Option<&str>, name: &str) -> Result<Cow<'static, str>, ForwardedError> {
    const COMMON: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];
    let Some(value) = value else {
        return Ok(Cow::Borrowed("GET"));
    };
    let value = value.trim();
    if value.is_empty() || value.len() > 16 || !value.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(ForwardedError(format!(
            "{name} is not an HTTP method such as GET or POST"
        )));
    }
    let common = COMMON.iter().find(|m| m.eq_ignore_ascii_case(value));
    Ok(common.map_or_else(
        || Cow::Owned(value.to_ascii_uppercase()),
        |m| Cow::Borrowed(*m),
    ))
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
fn build_url(proto: &str, host: &str, uri: &str, name: &str) -> Result<Arc<Url>, ForwardedError> {
    let bad = || ForwardedError(format!("{name} is not a valid host[:port]"));
    let url = parse(&[proto, "://", host, uri]).map_err(|_| bad())?;
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

/// URLs parsed per thread, at most (each input up to [`MAX_KEPT_URL`] bytes).
const KEPT_URLS: usize = 64;

/// Longer URLs are parsed every time: the memo holds at most 64 × 512 bytes of
/// input per thread, and their URLs (percent-encoding may triple a length).
const MAX_KEPT_URL: usize = 512;

thread_local! {
    static PARSED: RefCell<Memo<Arc<Url>>> = RefCell::new(Memo::new(KEPT_URLS, MAX_KEPT_URL));
}

/// `Url::parse` of `parts` joined, the very same `Url` when this thread
/// parsed the same text lately.
fn parse(parts: &[&str]) -> Result<Arc<Url>, url::ParseError> {
    memo::per_thread(&PARSED, parts, |input| Url::parse(input).map(Arc::new))
}

#[cfg(test)]
mod tests;
