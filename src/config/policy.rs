//! Who may pass and what is trusted: the allow lists (`ALLOWED_GROUPS`,
//! `ALLOWED_USERS`, `ALLOWED_DOMAINS`), where `rd` may send a browser
//! (`ALLOWED_REDIRECT_DOMAINS`, the service and cookie domains, the other
//! sites), `TRUSTED_PROXIES`, and the optional features that widen or extend
//! access: bearer tokens, routes that skip auth, the signed identity JWT. It
//! only parses them; `policy`, `redirect`, `forwarded`, `bearer`,
//! `skip_routes` and `identity_jwt` decide requests.

use url::Url;

use super::parse::{get, read_secret_file, Problems};
use super::RawConfig;
use crate::forwarded::TrustedProxies;
use crate::identity_jwt::IdentityKeys;
use crate::oidc::bearer::BearerSettings;
use crate::policy::AllowLists;
use crate::redirect::AllowedRedirects;
use crate::sites::Sites;
use crate::skip_routes::SkipRoutes;

/// Who may pass and where to; `None` recorded a problem.
pub(super) struct Routing {
    pub(super) allow: AllowLists,
    pub(super) redirects: Option<AllowedRedirects>,
    pub(super) trusted_proxies: Option<TrustedProxies>,
}

/// Reads the allow lists, then checks the redirect domains against the
/// service URL (a stand-in when it is bad, so that bad entries are still
/// reported) and the cookie domain, then `TRUSTED_PROXIES`.
pub(super) fn routing(
    raw: &RawConfig,
    service: Option<&Url>,
    cookie_domain: Option<&str>,
    sites: &Sites,
    p: &mut Problems,
) -> Routing {
    let policy = AllowLists::from_env_lists(
        raw.allowed_groups.as_deref(),
        raw.allowed_users.as_deref(),
        raw.allowed_domains.as_deref(),
    );

    let mut redirect_entries: Vec<String> = raw
        .allowed_redirect_domains
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::to_string)
        .collect();
    // Several root domains: the other domains and service hosts are allowed too.
    redirect_entries.extend(sites.redirect_entries());
    // Without a valid service URL, still check the entries against a stand-in.
    let stand_in = Url::parse("https://service.invalid/").ok();
    let redirects = match service.or(stand_in.as_ref()) {
        Some(url) => AllowedRedirects::new(url, cookie_domain, &redirect_entries)
            .map_err(|e| p.push(e))
            .ok(),
        None => None,
    };

    let trusted_proxies = match &raw.trusted_proxies {
        None => TrustedProxies::parse("127.0.0.1/32,::1/128"),
        Some(v) => TrustedProxies::parse(v),
    }
    .map_err(|errors| {
        for e in errors {
            p.push(e);
        }
    })
    .ok();

    Routing {
        allow: policy,
        redirects,
        trusted_proxies,
    }
}

/// The optional features; each `None` is off (or recorded a problem).
pub(super) struct Features {
    pub(super) bearer: Option<BearerSettings>,
    pub(super) skip_routes: Option<SkipRoutes>,
    pub(super) identity_keys: Option<IdentityKeys>,
}

/// Reads and checks the bearer settings, the routes that skip auth and the
/// identity JWT key, in this order.
pub(super) fn features(raw: &RawConfig, p: &mut Problems) -> Features {
    let bearer = BearerSettings::parse(
        get(&raw.bearer_audience),
        get(&raw.bearer_client_ids),
        get(&raw.bearer_scopes),
    )
    .map_err(|e| p.0.extend(e))
    .ok()
    .flatten();
    let skip_preflight = match get(&raw.skip_auth_preflight).map(|v| v.to_ascii_lowercase()) {
        None => false,
        Some(v) if matches!(v.as_str(), "true" | "1" | "yes") => true,
        Some(v) if matches!(v.as_str(), "false" | "0" | "no") => false,
        Some(v) => {
            p.push(format!(
                "SKIP_AUTH_PREFLIGHT `{v}` is not a boolean: use true or false"
            ));
            false
        }
    };
    let skip_routes = SkipRoutes::parse(get(&raw.skip_auth_routes).as_deref(), skip_preflight)
        .map_err(|e| p.0.extend(e))
        .ok()
        .flatten();
    let identity_keys = match (get(&raw.identity_jwt_key), get(&raw.identity_jwt_key_file)) {
        (None, None) => None,
        (Some(_), Some(_)) => {
            p.add("IDENTITY_JWT_KEY and IDENTITY_JWT_KEY_FILE are both set: keep only one")
        }
        (Some(pem), None) => IdentityKeys::parse(&pem, "IDENTITY_JWT_KEY")
            .map_err(|e| p.0.extend(e))
            .ok(),
        (None, Some(path)) => read_secret_file("IDENTITY_JWT_KEY_FILE", &path, p).and_then(|pem| {
            IdentityKeys::parse(&pem, "IDENTITY_JWT_KEY_FILE")
                .map_err(|e| p.0.extend(e))
                .ok()
        }),
    };

    Features {
        bearer,
        skip_routes,
        identity_keys,
    }
}

#[cfg(test)]
mod tests {
    use crate::config::test_support::{assert_one_problem, load, problems};

    #[test]
    fn trusted_proxies() {
        let c = load(&[("TRUSTED_PROXIES", Some("10.0.0.0/8, 172.17.0.1"))]);
        assert!(c.trusted_proxies.contains("10.9.9.9".parse().unwrap()));
        assert!(!c.trusted_proxies.contains("127.0.0.1".parse().unwrap()));
        let c = load(&[("TRUSTED_PROXIES", Some(""))]);
        assert!(
            c.trusted_proxies.0.is_empty(),
            "an empty list trusts nobody"
        );
        assert_one_problem(
            &[("TRUSTED_PROXIES", Some("10.0.0.0/8,10.0.0.300/8"))],
            &["TRUSTED_PROXIES", "10.0.0.300/8"],
        );
    }

    #[test]
    fn bad_redirect_domains_are_reported_even_when_the_service_url_is_bad() {
        let problems = problems(&[
            ("AUTHENTICATE_SERVICE_URL", Some("nope")),
            ("ALLOWED_REDIRECT_DOMAINS", Some("example.com/path")),
        ]);
        assert_eq!(problems.len(), 2, "{problems:#?}");
    }
}
