//! Where a browser may be sent after sign-in or sign-out (`rd`). Guards against
//! open redirects: relative paths only when they cannot be read as another host,
//! absolute URLs only on allowed hosts. Pure functions: no I/O, no actix.

use std::borrow::Cow;

use url::Url;

/// The hosts `rd` may point to: the service's own host, `COOKIE_DOMAIN` and its
/// subdomains, and every `ALLOWED_REDIRECT_DOMAINS` entry (`.example.com` =
/// example.com and its subdomains; `host:port` pins a port, no port = any port).
#[derive(Debug, Clone)]
pub struct AllowedRedirects {
    rules: Vec<Rule>,
}

/// One allowed host: exact, or with its subdomains; on one port or any.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    /// As `Url::host_str` writes it: lowercase, punycode, IPv6 in brackets.
    host: String,
    subdomains: bool,
    port: Option<u16>,
}

impl Rule {
    fn matches(&self, url: &Url) -> bool {
        let Some(host) = url.host_str() else {
            return false;
        };
        let host_ok = host == self.host
            || (self.subdomains
                && matches!(url.host(), Some(url::Host::Domain(_)))
                && host
                    .strip_suffix(self.host.as_str())
                    .is_some_and(|prefix| prefix.len() > 1 && prefix.ends_with('.')));
        host_ok
            && self
                .port
                .is_none_or(|p| url.port_or_known_default() == Some(p))
    }
}

/// Why an `rd` was refused; `Display` says it in words fit for a 400 page.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RedirectError(pub String);

impl AllowedRedirects {
    /// `extra` are the `ALLOWED_REDIRECT_DOMAINS` entries; an invalid entry is an
    /// error naming it.
    pub fn new(
        service_url: &Url,
        cookie_domain: Option<&str>,
        extra: &[String],
    ) -> Result<AllowedRedirects, String> {
        let mut rules = Vec::new();
        let mut problems = Vec::new();
        if let Some(host) = service_url.host_str() {
            rules.push(Rule {
                host: host.to_string(),
                subdomains: false,
                port: service_url.port_or_known_default(),
            });
        }
        if let Some(domain) = cookie_domain {
            let bare = domain.trim().trim_start_matches('.');
            // An IP address cannot have subdomains; browsers then match it exactly.
            match parse_entry(&format!(".{bare}")).or_else(|_| parse_entry(bare)) {
                Ok(rule) if rule.port.is_none() => rules.push(rule),
                _ => problems.push(format!("COOKIE_DOMAIN `{domain}` is not a domain name")),
            }
        }
        for entry in extra {
            match parse_entry(entry) {
                Ok(rule) => rules.push(rule),
                Err(why) => problems.push(format!(
                    "ALLOWED_REDIRECT_DOMAINS entry `{entry}` {why}: \
                     use host, .domain (with subdomains) or host:port"
                )),
            }
        }
        if problems.is_empty() {
            Ok(AllowedRedirects { rules })
        } else {
            Err(problems.join("; "))
        }
    }

    /// Checks `rd` and returns the value to put in `Location` (the relative path
    /// or the absolute URL, normalised, and over [`MAX_URL`] cut to its origin +
    /// path, else the origin's `/`). Empty `rd` is an error; callers default it.
    pub fn validate(&self, rd: &str) -> Result<String, RedirectError> {
        let whole = self.validate_whole(rd)?;
        shortened(&whole, |_| true)
            .map(Cow::into_owned)
            .ok_or_else(|| RedirectError("The redirect target is too long.".to_string()))
    }

    fn validate_whole(&self, rd: &str) -> Result<String, RedirectError> {
        let refuse = |why: &str| Err(RedirectError(why.to_string()));
        if rd.is_empty() {
            return refuse("The redirect target is empty.");
        }
        if crate::header_text::has_space_or_control(rd) {
            return refuse("The redirect target contains spaces or control characters.");
        }
        // Browsers and proxies differ in how often they decode: look once more.
        let decoded = percent_decode(rd);
        if backslash_decides_where(rd) || backslash_decides_where(&decoded) {
            return refuse("The redirect target contains a backslash in its scheme, host or first path segment.");
        }
        if decoded
            .chars()
            .next()
            .is_some_and(|c| c.is_control() || c.is_whitespace())
        {
            return refuse(
                "The redirect target starts with an encoded space or control character.",
            );
        }
        if rd.starts_with('/') {
            if rd.starts_with("//") || decoded.starts_with("//") || decoded.starts_with("/\\") {
                return refuse("The redirect target could be read as another site.");
            }
            return Ok(rd.to_string());
        }
        let lower = rd.to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://")) {
            let looks_like_scheme = rd.split_once(':').is_some_and(|(scheme, _)| {
                !scheme.is_empty() && !scheme.contains(['/', '.', '?', '#'])
            });
            return if looks_like_scheme {
                refuse("Only http and https redirect targets are allowed.")
            } else {
                refuse("The redirect target must be a path starting with / or an absolute http(s) URL.")
            };
        }
        let Ok(url) = Url::parse(rd) else {
            return refuse("The redirect target is not a valid URL.");
        };
        if !url.username().is_empty() || url.password().is_some() {
            return refuse("The redirect target must not contain a user name or password.");
        }
        if !self.allows(&url) {
            return refuse("The redirect target's host is not allowed.");
        }
        Ok(url.to_string())
    }

    /// Whether an absolute URL's host (and port) is allowed; scheme must be http(s).
    pub fn allows(&self, url: &Url) -> bool {
        matches!(url.scheme(), "http" | "https") && self.rules.iter().any(|r| r.matches(url))
    }
}

/// Longest URL or `rd` we keep or echo whole (DESIGN §3); longer ones are cut.
pub const MAX_URL: usize = 2048;

/// Whether a backslash (raw; callers also pass the decoded text) sits where a
/// browser could read it as a path separator that moves the authority: in the
/// scheme or authority of an absolute URL, or at the start of the path. One in
/// the query, the fragment or further down the path changes nothing and is fine.
fn backslash_decides_where(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    let rest = if let Some(after) = ["http://", "https://"]
        .iter()
        .find_map(|scheme| lower.strip_prefix(scheme))
    {
        let end = after.find(['/', '?', '#']).unwrap_or(after.len());
        if after[..end].contains('\\') {
            return true;
        }
        &after[end..]
    } else {
        lower.as_str()
    };
    let path_start = rest.strip_prefix('/').unwrap_or(rest);
    rest.starts_with('\\') || path_start.starts_with('\\') || path_start.starts_with("%5c")
}

/// `value` (an allowed `rd` or original URL: a path or an absolute http(s) URL)
/// as the longest of these whose length `fits` accepts and that is at most
/// [`MAX_URL`]: the whole value, its origin + path (query and fragment cut), the
/// origin's `/`. `None` when not even that fits (a giant host name). The whole
/// value is borrowed, not copied: a stranger's check sends it on encoded.
pub fn shortened(value: &str, fits: impl Fn(&str) -> bool) -> Option<Cow<'_, str>> {
    let ok = |candidate: &str| candidate.len() <= MAX_URL && fits(candidate);
    if ok(value) {
        return Some(Cow::Borrowed(value));
    }
    let (origin, path) = if value.starts_with('/') {
        let end = value.find(['?', '#']).unwrap_or(value.len());
        (String::new(), value[..end].to_owned())
    } else {
        let url = Url::parse(value).ok()?;
        (url.origin().ascii_serialization(), url.path().to_owned())
    };
    let with_path = format!("{origin}{path}");
    if ok(&with_path) {
        return Some(Cow::Owned(with_path));
    }
    let root = format!("{origin}/");
    ok(&root).then_some(Cow::Owned(root))
}

/// Percent-decodes once, lossily (only used to look for hidden prefixes).
fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses one allow-list entry: `host`, `.domain`, `host:port`, `[v6]:port`.
fn parse_entry(entry: &str) -> Result<Rule, &'static str> {
    let entry = entry.trim();
    if entry.is_empty() {
        return Err("is empty");
    }
    if entry.contains("://") {
        return Err("has a scheme");
    }
    if entry.chars().any(|c| {
        matches!(c, '/' | '\\' | '@' | '?' | '#' | '%' | '*') || c.is_whitespace() || c.is_control()
    }) {
        return Err("is not a host name");
    }
    let (subdomains, rest) = match entry.strip_prefix('.') {
        Some(rest) => (true, rest),
        None => (false, entry),
    };
    let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
        let end = inner.find(']').ok_or("has an unclosed [")?;
        let after = &inner[end + 1..];
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or("is not a host name")?),
        };
        (&rest[..end + 2], port)
    } else if rest.matches(':').count() > 1 {
        // A bare IPv6 address; it cannot carry a port without brackets.
        let ip: std::net::Ipv6Addr = rest.parse().map_err(|_| "is not a host name")?;
        return finish(&format!("[{ip}]"), None, subdomains);
    } else {
        match rest.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    let port = match port {
        Some(p) => Some(p.parse::<u16>().map_err(|_| "has a bad port")?),
        None => None,
    };
    finish(host, port, subdomains)
}

/// Normalises the host the way `Url` will when parsing `rd`, so they compare equal.
fn finish(host: &str, port: Option<u16>, subdomains: bool) -> Result<Rule, &'static str> {
    if host.is_empty() {
        return Err("has no host");
    }
    let url = Url::parse(&format!("http://{host}/")).map_err(|_| "is not a host name")?;
    let normalised = match url.host() {
        Some(url::Host::Domain(d)) => d.to_string(),
        Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)) if subdomains => {
            return Err("is an IP address and cannot have subdomains")
        }
        Some(_) => url.host_str().unwrap_or_default().to_string(),
        None => return Err("is not a host name"),
    };
    if normalised.is_empty() {
        return Err("has no host");
    }
    Ok(Rule {
        host: normalised,
        subdomains,
        port,
    })
}

#[cfg(test)]
mod tests;
