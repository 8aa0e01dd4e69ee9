//! Which root domain a request belongs to, when several are configured
//! (`crate::sites`): the service URL, redirect URI and cookie domain that a
//! sign-in, a check or a sign-out on that domain uses. With one domain every
//! helper answers with the configured values, so the callers need no branch.

use std::borrow::Cow;
use std::sync::Arc;

use actix_web::http::header;
use actix_web::HttpRequest;

use crate::config::{Config, CookieSettings};
use crate::routes::AppState;
use crate::sites::Site;

impl AppState {
    /// The site of a request to the service itself (`/oauth2/start`,
    /// `/oauth2/callback`, `/oauth2/sign_out`): by its `Host` header, which the
    /// browser set to the site it visits; else by `rd`'s host; else the first.
    /// `None` with one domain.
    pub fn site_of_request(&self, req: &HttpRequest, rd: Option<&str>) -> Option<&Site> {
        let sites = &self.config.sites;
        if !sites.is_several() {
            return None;
        }
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(strip_port);
        let rd_host = rd
            .and_then(|rd| url::Url::parse(rd).ok())
            .and_then(|u| u.host_str().map(str::to_owned));
        host.and_then(|h| sites.for_host(h))
            .or_else(|| rd_host.as_deref().and_then(|h| sites.for_host(h)))
            .or_else(|| sites.0.first())
    }

    /// The site an original URL's host falls under. `None` with one domain,
    /// or when the host is under none of them.
    pub fn site_of_host(&self, host: Option<&str>) -> Option<&Site> {
        if !self.config.sites.is_several() {
            return None;
        }
        host.and_then(|h| self.config.sites.for_host(h))
    }

    /// The service URL of a site, or the configured one.
    pub fn service_url_of<'s>(&'s self, site: Option<&'s Site>) -> &'s str {
        site.map_or(self.config.service_url.as_str(), |s| s.service_url.as_str())
    }

    /// The URLs a denied check sends on a site, or the configured ones.
    pub fn denial_urls_of(&self, site: Option<&Site>) -> &DenialUrls {
        match site {
            None => &self.denial_urls.configured,
            Some(site) => self.denial_urls.of(&site.service_url),
        }
    }

    /// The cookie settings of a site (its domain), or the configured ones.
    pub fn cookie_of(&self, site: Option<&Site>) -> Cow<'_, CookieSettings> {
        match site {
            None => Cow::Borrowed(&self.config.cookie),
            Some(site) => Cow::Owned(CookieSettings {
                domain: Some(site.cookie_domain.clone()),
                ..self.config.cookie.clone()
            }),
        }
    }
}

/// The URLs a denied check sends, built at start-up rather than per answer.
pub struct DenialUrls {
    service_url: Box<str>,
    /// `{service_url}/oauth2/start`: a stranger's `Location` (then `?rd=…`).
    pub start: Box<str>,
    /// `{service_url}/oauth2/sign_out`: a 403 page's link, shared by its answers.
    pub sign_out: Arc<str>,
}

impl DenialUrls {
    fn new(service_url: &str) -> DenialUrls {
        DenialUrls {
            service_url: service_url.into(),
            start: format!("{service_url}/oauth2/start").into(),
            sign_out: format!("{service_url}/oauth2/sign_out").into(),
        }
    }
}

/// [`DenialUrls`] for the configured service URL and for each site's.
pub struct AllDenialUrls {
    configured: DenialUrls,
    sites: Vec<DenialUrls>,
}

impl AllDenialUrls {
    pub fn new(config: &Config) -> AllDenialUrls {
        AllDenialUrls {
            configured: DenialUrls::new(&config.service_url),
            sites: config
                .sites
                .0
                .iter()
                .map(|site| DenialUrls::new(&site.service_url))
                .collect(),
        }
    }

    /// The URLs under a site's service URL.
    fn of(&self, service_url: &str) -> &DenialUrls {
        self.sites
            .iter()
            .find(|urls| *urls.service_url == *service_url)
            .unwrap_or(&self.configured)
    }
}

/// `host` without `:port` (IPv6 literals keep their brackets' content whole).
pub(crate) fn strip_port(host: &str) -> &str {
    let host = host.trim();
    if host.starts_with('[') {
        return host.split(']').next().map_or(host, |h| &h[1..]);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}
