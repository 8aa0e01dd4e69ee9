//! Where a browser may be sent after sign-in or sign-out (`rd`). Guards against
//! open redirects: relative paths only when they cannot be read as another host,
//! absolute URLs only on allowed hosts. Pure functions: no I/O, no actix.

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
            .ok_or_else(|| RedirectError("The redirect target is too long.".to_string()))
    }

    fn validate_whole(&self, rd: &str) -> Result<String, RedirectError> {
        let refuse = |why: &str| Err(RedirectError(why.to_string()));
        if rd.is_empty() {
            return refuse("The redirect target is empty.");
        }
        if rd.chars().any(|c| c.is_control() || c.is_whitespace()) {
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
/// origin's `/`. `None` when not even that fits (a giant host name).
pub fn shortened(value: &str, fits: impl Fn(&str) -> bool) -> Option<String> {
    let ok = |candidate: &str| candidate.len() <= MAX_URL && fits(candidate);
    if ok(value) {
        return Some(value.to_owned());
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
        return Some(with_path);
    }
    let root = format!("{origin}/");
    ok(&root).then_some(root)
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
mod tests {
    use super::*;

    fn allowed(cookie_domain: Option<&str>, extra: &[&str]) -> AllowedRedirects {
        let service = Url::parse("https://auth.example.com/").unwrap();
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        AllowedRedirects::new(&service, cookie_domain, &extra).unwrap()
    }

    fn standard() -> AllowedRedirects {
        allowed(
            Some(".corp.example.org"),
            &[
                "app.example.net",
                ".example.com",
                "pinned.example.net:8443",
                "[::1]:8080",
                "10.1.2.3",
                "Upper.Example.Io",
            ],
        )
    }

    #[test]
    fn redirect_targets() {
        let r = standard();
        let ok: &[(&str, &str)] = &[
            ("/", "/"),
            ("/dashboard", "/dashboard"),
            ("/a/b?c=d&e=%2F%2F#frag", "/a/b?c=d&e=%2F%2F#frag"),
            ("/path/%2F%2Fnot-a-host", "/path/%2F%2Fnot-a-host"),
            (
                "https://auth.example.com/after",
                "https://auth.example.com/after",
            ),
            (
                "https://auth.example.com:443/x",
                "https://auth.example.com/x",
            ),
            ("https://app.example.net", "https://app.example.net/"),
            (
                "http://app.example.net:9000/x",
                "http://app.example.net:9000/x",
            ),
            ("https://example.com/", "https://example.com/"),
            (
                "https://a.b.example.com/x?y=1",
                "https://a.b.example.com/x?y=1",
            ),
            (
                "https://wiki.corp.example.org/",
                "https://wiki.corp.example.org/",
            ),
            ("https://corp.example.org/", "https://corp.example.org/"),
            (
                "https://pinned.example.net:8443/",
                "https://pinned.example.net:8443/",
            ),
            ("http://[::1]:8080/x", "http://[::1]:8080/x"),
            ("http://10.1.2.3:1234/", "http://10.1.2.3:1234/"),
            (
                "HTTPS://APP.EXAMPLE.NET/Path",
                "https://app.example.net/Path",
            ),
            ("https://upper.example.io/", "https://upper.example.io/"),
        ];
        for (rd, want) in ok {
            assert_eq!(
                r.validate(rd).as_deref(),
                Ok(*want),
                "{rd} should be allowed"
            );
        }
        let refused: &[(&str, &str)] = &[
            ("", "empty"),
            ("//evil.com", "another site"),
            ("//evil.com/path", "another site"),
            ("/\\evil.com", "backslash"),
            ("\\\\evil.com", "backslash"),
            ("/%2F%2Fevil.com", "another site"),
            ("/%2f/evil.com", "another site"),
            ("/%5Cevil.com", "backslash"),
            ("/%5cevil.com", "backslash"),
            ("https://evil.com", "not allowed"),
            ("https://evil.com@auth.example.com/", "user name"),
            ("https://auth.example.com@evil.com/", "user name"),
            ("https://user:pass@auth.example.com/", "user name"),
            ("https://auth.example.com.evil.com/", "not allowed"),
            ("https://evilexample.com/", "not allowed"),
            ("https://evil-example.com/", "not allowed"),
            ("https://example.com.evil.com/", "not allowed"),
            ("https://app.example.net.evil.com/", "not allowed"),
            ("https://sub.app.example.net/", "not allowed"),
            ("https://pinned.example.net/", "not allowed"),
            ("https://pinned.example.net:8444/", "not allowed"),
            ("http://[::1]:8081/", "not allowed"),
            ("http://[::2]:8080/", "not allowed"),
            ("http://x.10.1.2.3/", "not a valid URL"),
            ("javascript:alert(1)", "Only http and https"),
            (
                "JavaScript:alert(1)//https://auth.example.com",
                "Only http and https",
            ),
            (
                "data:text/html,<script>alert(1)</script>",
                "Only http and https",
            ),
            ("ftp://auth.example.com/", "Only http and https"),
            ("http:evil.com", "Only http and https"),
            ("http:/evil.com", "Only http and https"),
            ("https:auth.example.com", "Only http and https"),
            ("evil.com", "must be a path"),
            ("foo/bar", "must be a path"),
            ("?x=1", "must be a path"),
            ("/\tevil", "control"),
            ("\t//evil.com", "control"),
            ("/\n/evil.com", "control"),
            ("/ /evil.com", "control"),
            ("https://evil.com\r\n", "control"),
            ("%09//evil.com", "encoded space"),
            ("%0a/evil.com", "encoded space"),
            ("%0d%0a//evil.com", "encoded space"),
            ("%20//evil.com", "encoded space"),
            ("/\u{3000}/evil.com", "control"),
            ("https://exa mple.com/", "control"),
            ("https:///evil.com", "not allowed"),
        ];
        for (rd, why) in refused {
            let err = r.validate(rd).expect_err(rd);
            assert!(err.0.contains(why), "{rd:?}: {err}");
        }
    }

    #[test]
    fn a_backslash_after_the_first_path_segment_is_fine() {
        let r = standard();
        for rd in [
            "/search?q=a\\b",
            "/search?q=a%5Cb",
            "/a/b%5Cc",
            "/a/b\\c",
            "https://app.example.net/x?path=C:%5Cdir",
            "https://app.example.net/x#a\\b",
        ] {
            assert!(r.validate(rd).is_ok(), "{rd}: {:?}", r.validate(rd));
        }
        for rd in [
            "https://app.example.net\\@evil.com/",
            "https://app.example.net%5C@evil.com/",
            "https://evil.com\\.app.example.net/",
            "/%5C%5Cevil.com",
            "%5C%5Cevil.com",
        ] {
            assert!(r.validate(rd).is_err(), "{rd} was allowed");
        }
    }

    #[test]
    fn long_targets_are_cut_to_origin_and_path_then_to_the_origin() {
        let r = standard();
        let long_query = format!("https://app.example.net/deep/link?q={}", "x".repeat(5000));
        assert_eq!(
            r.validate(&long_query).as_deref(),
            Ok("https://app.example.net/deep/link")
        );
        let long_path = format!("https://app.example.net/{}?q=1", "p".repeat(5000));
        assert_eq!(
            r.validate(&long_path).as_deref(),
            Ok("https://app.example.net/")
        );
        let relative = format!("/deep?q={}", "x".repeat(5000));
        assert_eq!(r.validate(&relative).as_deref(), Ok("/deep"));
        assert_eq!(
            r.validate(&format!("/{}", "p".repeat(5000))).as_deref(),
            Ok("/")
        );
        let short = "https://app.example.net/a?b=c";
        assert_eq!(r.validate(short).as_deref(), Ok(short));
    }

    #[test]
    fn shortened_honours_the_callers_bound() {
        let url = format!("https://app.example.net/path?q={}", "x".repeat(100));
        assert_eq!(
            shortened(&url, |c| c.len() <= 200).as_deref(),
            Some(url.as_str())
        );
        assert_eq!(
            shortened(&url, |c| c.len() <= 40).as_deref(),
            Some("https://app.example.net/path")
        );
        assert_eq!(
            shortened(&url, |c| c.len() <= 25).as_deref(),
            Some("https://app.example.net/")
        );
        assert_eq!(shortened(&url, |c| c.len() <= 5), None);
    }

    #[test]
    fn refusals_never_echo_the_target() {
        let r = standard();
        let err = r.validate("https://evil.com/<script>").unwrap_err();
        assert!(!err.0.contains("evil") && !err.0.contains('<'), "{err}");
    }

    #[test]
    fn the_service_host_alone_is_allowed_without_any_list() {
        let service = Url::parse("http://127.0.0.1:4180/prefix").unwrap();
        let r = AllowedRedirects::new(&service, None, &[]).unwrap();
        assert!(r.validate("http://127.0.0.1:4180/x").is_ok());
        assert!(r.validate("http://127.0.0.1:4181/x").is_err());
        assert!(r.validate("https://127.0.0.1:4180/x").is_ok());
        assert!(r.validate("http://localhost:4180/x").is_err());
        assert!(r.validate("/x").is_ok());
    }

    #[test]
    fn a_cookie_domain_without_a_dot_still_allows_subdomains() {
        let r = allowed(Some("Example.ORG"), &[]);
        assert!(r.validate("https://example.org/").is_ok());
        assert!(r.validate("https://app.example.org:8080/").is_ok());
        assert!(r.validate("https://badexample.org/").is_err());
    }

    #[test]
    fn an_ip_cookie_domain_allows_that_address_exactly() {
        let r = allowed(Some("127.0.0.1"), &[]);
        assert!(r.validate("http://127.0.0.1:9999/").is_ok());
        assert!(r.validate("http://127.0.0.2/").is_err());
    }

    #[test]
    fn allows_checks_scheme_host_and_port() {
        let r = standard();
        let yes = ["https://app.example.net/", "http://x.example.com:1/"];
        let no = [
            "ftp://app.example.net/",
            "https://evil.com/",
            "https://pinned.example.net/",
        ];
        for u in yes {
            assert!(r.allows(&Url::parse(u).unwrap()), "{u}");
        }
        for u in no {
            assert!(!r.allows(&Url::parse(u).unwrap()), "{u}");
        }
    }

    #[test]
    fn invalid_allow_list_entries_are_named() {
        let service = Url::parse("https://auth.example.com/").unwrap();
        for (entry, why) in [
            ("https://example.com", "has a scheme"),
            ("example.com/path", "is not a host name"),
            ("", "is empty"),
            ("exa mple.com", "is not a host name"),
            ("user@example.com", "is not a host name"),
            ("example.com:http", "has a bad port"),
            ("example.com:70000", "has a bad port"),
            ("[::1", "unclosed"),
            (".10.0.0.1", "cannot have subdomains"),
            ("*.example.com", "is not a host name"),
        ] {
            let err = AllowedRedirects::new(&service, None, &[entry.to_string()]).unwrap_err();
            assert!(
                err.contains(&format!("`{entry}`")) && err.contains(why),
                "{entry}: {err}"
            );
        }
    }

    #[test]
    fn every_invalid_entry_is_reported() {
        let service = Url::parse("https://auth.example.com/").unwrap();
        let extra = vec![
            "https://a.com".to_string(),
            "ok.com".to_string(),
            "b.com/x".to_string(),
        ];
        let err = AllowedRedirects::new(&service, None, &extra).unwrap_err();
        assert!(
            err.contains("`https://a.com`") && err.contains("`b.com/x`"),
            "{err}"
        );
    }

    #[test]
    fn bare_ipv6_entries_allow_any_port() {
        let r = allowed(None, &["::1", "[fd00::1]"]);
        assert!(r.validate("http://[::1]:1234/").is_ok());
        assert!(r.validate("http://[fd00::1]/").is_ok());
    }
}
