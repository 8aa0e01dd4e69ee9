//! Several root domains: `COOKIE_DOMAIN=.a.example,.b.example` with
//! `AUTHENTICATE_SERVICE_URL=https://auth.a.example,https://auth.b.example`
//! (one each, same order). Each pair is a [`Site`]: a request is served with the
//! cookie domain its host falls under and signs in through that site's service
//! URL. With one domain (or none) there are no sites and nothing changes.
//! Pure functions: no I/O, no actix.

use url::Url;

/// One root domain and the service URL that signs in for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// As configured, lowercase, e.g. `.a.example`.
    pub cookie_domain: String,
    /// Without a trailing `/`.
    pub service_url: String,
    /// `service_url` + `/oauth2/callback`.
    pub redirect_uri: String,
}

impl Site {
    /// Whether `host` (no port) is the domain or under it.
    fn covers(&self, host: &str) -> bool {
        let bare = self.cookie_domain.trim_start_matches('.');
        let host = host.trim_end_matches('.');
        host.eq_ignore_ascii_case(bare)
            || host.len().checked_sub(bare.len() + 1).is_some_and(|cut| {
                host.as_bytes()[cut] == b'.' && host[cut + 1..].eq_ignore_ascii_case(bare)
            })
    }
}

/// The sites; empty unless several domains are configured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sites(pub Vec<Site>);

/// The first entries, for the settings that hold one value, and the sites.
pub struct Split {
    pub cookie_domain: Option<String>,
    pub service_url: Option<String>,
    pub sites: Sites,
}

impl Sites {
    /// Splits the two comma lists. With one entry each (or none), they pass
    /// through unchanged for the usual checks. Problems name the entries.
    pub fn split(
        cookie_domain: Option<String>,
        service_url: Option<String>,
        problems: &mut Vec<String>,
    ) -> Split {
        let list = |v: &Option<String>| -> Vec<String> {
            v.as_deref()
                .unwrap_or_default()
                .split(',')
                .map(|e| e.trim().to_string())
                .collect()
        };
        let (domains, urls) = (list(&cookie_domain), list(&service_url));
        if domains.len() <= 1 && urls.len() <= 1 {
            return Split {
                cookie_domain,
                service_url,
                sites: Sites::default(),
            };
        }
        let first = |v: &[String]| v.first().filter(|e| !e.is_empty()).cloned();
        let split = |sites| Split {
            cookie_domain: first(&domains),
            service_url: first(&urls),
            sites,
        };
        if cookie_domain.is_none() || domains.len() != urls.len() {
            problems.push(format!(
                "COOKIE_DOMAIN lists {} domains but AUTHENTICATE_SERVICE_URL lists {} URLs: for \
                 several root domains give one service URL per cookie domain, in the same order, \
                 e.g. COOKIE_DOMAIN=.a.example,.b.example and \
                 AUTHENTICATE_SERVICE_URL=https://auth.a.example,https://auth.b.example",
                if cookie_domain.is_none() {
                    0
                } else {
                    domains.len()
                },
                urls.len()
            ));
            return split(Sites::default());
        }
        let before = problems.len();
        let mut sites = Vec::new();
        for (domain, url) in domains.iter().zip(&urls) {
            let domain = domain.to_ascii_lowercase();
            if !is_domain(domain.strip_prefix('.').unwrap_or(&domain)) {
                problems.push(format!(
                    "COOKIE_DOMAIN entry `{domain}` is not a domain name: use e.g. .a.example"
                ));
                continue;
            }
            let service = match Url::parse(url) {
                Ok(u)
                    if matches!(u.scheme(), "http" | "https")
                        && u.has_host()
                        && u.username().is_empty()
                        && u.password().is_none()
                        && u.query().is_none()
                        && u.fragment().is_none() =>
                {
                    u
                }
                _ => {
                    problems.push(format!(
                        "AUTHENTICATE_SERVICE_URL entry `{url}` is not an http(s) URL without \
                         user, query or fragment: use e.g. https://auth.a.example"
                    ));
                    continue;
                }
            };
            let site = Site {
                cookie_domain: domain.clone(),
                service_url: service.as_str().trim_end_matches('/').to_string(),
                redirect_uri: String::new(),
            };
            let host = service.host_str().unwrap_or_default();
            if !site.covers(host) {
                problems.push(format!(
                    "AUTHENTICATE_SERVICE_URL entry `{url}` is not under its COOKIE_DOMAIN entry \
                     `{domain}`: the browser would refuse that domain's cookie; list the service \
                     URLs in the same order as the domains"
                ));
                continue;
            }
            if sites.iter().any(|s: &Site| {
                s.covers(domain.trim_start_matches('.'))
                    || site.covers(s.cookie_domain.trim_start_matches('.'))
            }) {
                problems.push(format!(
                    "COOKIE_DOMAIN entry `{domain}` overlaps another entry: every root domain \
                     may appear once, and none may be under another"
                ));
                continue;
            }
            sites.push(Site {
                redirect_uri: format!("{}/oauth2/callback", site.service_url),
                ..site
            });
        }
        if problems.len() > before {
            return split(Sites::default());
        }
        split(Sites(sites))
    }

    /// Whether several domains are served.
    pub fn is_several(&self) -> bool {
        self.0.len() > 1
    }

    /// The site whose cookie domain `host` (a host name, no port) falls under.
    pub fn for_host(&self, host: &str) -> Option<&Site> {
        self.0.iter().find(|site| site.covers(host))
    }

    /// `ALLOWED_REDIRECT_DOMAINS`-style entries for every site but the first
    /// (whose domain and service host the allow-list has already).
    pub fn redirect_entries(&self) -> Vec<String> {
        let mut entries = Vec::new();
        for site in self.0.iter().skip(1) {
            entries.push(format!(".{}", site.cookie_domain.trim_start_matches('.')));
            if let Some(host) = Url::parse(&site.service_url)
                .ok()
                .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?)))
            {
                entries.push(host);
            }
        }
        entries
    }
}

/// A DNS name: dot-separated labels of letters, digits and `-`, at most 253
/// characters. Also the configuration's test of a domain.
pub(crate) fn is_domain(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 253
        && value.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(domains: &str, urls: &str) -> (Split, Vec<String>) {
        let mut problems = Vec::new();
        let s = Sites::split(Some(domains.into()), Some(urls.into()), &mut problems);
        (s, problems)
    }

    #[test]
    fn one_domain_passes_through() {
        let (s, problems) = split(".a.example", "https://auth.a.example");
        assert!(problems.is_empty() && s.sites.0.is_empty());
        assert_eq!(s.cookie_domain.as_deref(), Some(".a.example"));
    }

    #[test]
    fn two_domains_make_two_sites_found_by_host() {
        let (s, problems) = split(
            ".a.example, .B.example",
            "https://auth.a.example,https://auth.b.example:8443/",
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(s.cookie_domain.as_deref(), Some(".a.example"));
        assert_eq!(s.service_url.as_deref(), Some("https://auth.a.example"));
        let sites = s.sites;
        assert!(sites.is_several());
        assert_eq!(
            sites
                .for_host("app.b.example")
                .map(|s| s.redirect_uri.as_str()),
            Some("https://auth.b.example:8443/oauth2/callback")
        );
        assert_eq!(
            sites.for_host("a.example").unwrap().cookie_domain,
            ".a.example"
        );
        assert!(sites.for_host("evil-a.example").is_none());
        assert!(sites.for_host("a.example.evil").is_none());
        assert_eq!(
            sites.redirect_entries(),
            [".b.example", "auth.b.example:8443"]
        );
    }

    #[test]
    fn mismatched_or_bad_lists_are_problems() {
        for (domains, urls, needle) in [
            (
                ".a.example,.b.example",
                "https://auth.a.example",
                "lists 2 domains but",
            ),
            (
                ".a.example,.b.example",
                "https://auth.b.example,https://auth.a.example",
                "is not under",
            ),
            (
                ".a.example,b..example",
                "https://auth.a.example,https://x.b.example",
                "not a domain",
            ),
            (
                ".a.example,.x.a.example",
                "https://auth.a.example,https://y.x.a.example",
                "overlaps",
            ),
            (
                ".a.example,.b.example",
                "https://auth.a.example,ftp://auth.b.example",
                "not an http(s) URL",
            ),
        ] {
            let (_, problems) = split(domains, urls);
            assert!(!problems.is_empty(), "{domains} {urls}");
            assert!(problems[0].contains(needle), "{problems:?}");
        }
    }
}
