//! Configuration from environment variables (DESIGN.md §4): the typed
//! [`Config`] and its parts, and `TryFrom<RawConfig> for Config`, which runs
//! one check per area and reports every problem at once. envy fills the flat
//! [`RawConfig`] (in `raw`, with the one list of names, [`KNOWN_VARIABLES`]);
//! each area file parses its own variables: `idp`, `listen`, `cookie`,
//! `store`, `policy`, `log`, on the helpers in `parse`. Secrets are `secret`
//! newtypes whose `Debug` prints `[redacted]`. Nothing here does I/O beyond
//! reading `*_FILE` secrets. Tests read the environment through [`Config::from_vars`].

use std::time::Duration;

use url::Url;

use crate::forwarded::TrustedProxies;
pub use crate::okta_api::ServiceAppConfig;
use crate::policy::AllowLists;
use crate::redirect::AllowedRedirects;
use crate::secret::{CookieKey, Secret};
pub(crate) use parse::is_loopback;
use parse::Problems;
pub use raw::{RawConfig, KNOWN_VARIABLES};

mod cookie;
mod idp;
mod listen;
mod log;
mod parse;
mod policy;
mod raw;
mod raw_debug;
mod store;
#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
mod tests;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// Groups from the Okta management API.
    Okta,
    /// Groups from the ID token's `groups` claim.
    Oidc,
}

#[derive(Clone, PartialEq, Eq)]
pub enum StoreKind {
    Memory,
    Redis(Url),
}

/// A Redis URL may carry a password: `Debug` shows `[redacted]` in its place.
impl std::fmt::Debug for StoreKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreKind::Memory => f.write_str("Memory"),
            StoreKind::Redis(url) => {
                let mut shown = url.clone();
                if shown.password().is_some() {
                    // Only fails for URLs without a host, which a Redis URL here has.
                    let _ = shown.set_password(Some("[redacted]"));
                }
                f.debug_tuple("Redis").field(&shown.as_str()).finish()
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct CookieSettings {
    pub name: String,
    pub domain: Option<String>,
    pub secure: bool,
    pub expire: Duration,
    /// The first signs, all verify. Never empty.
    pub keys: Vec<CookieKey>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub provider: Provider,
    /// The issuer exactly as the ID token's `iss` carries it, without a trailing `/`.
    pub issuer: String,
    /// The issuer's origin, where the management API lives, without a trailing `/`.
    pub org_url: String,
    pub client_id: String,
    pub client_secret: Secret,
    /// `IDP_SERVICE_ACCOUNT`. For [`Provider::Okta`], exactly one of this and
    /// `service_app` is `Some`.
    pub service_account: Option<Secret>,
    /// `OKTA_API_CLIENT_ID` + `OKTA_API_PRIVATE_KEY`: an Okta API service app.
    pub service_app: Option<ServiceAppConfig>,
    pub scopes: Vec<String>,
    /// `AUTHENTICATE_SERVICE_URL` without a trailing `/`.
    pub service_url: String,
    /// `service_url` + `/oauth2/callback`.
    pub redirect_uri: String,
    pub address: String,
    pub cookie: CookieSettings,
    pub policy: AllowLists,
    pub redirects: AllowedRedirects,
    pub trusted_proxies: TrustedProxies,
    pub groups_cache_ttl: Duration,
    /// `GROUPS_STALE_IF_ERROR`: how long past the TTL last known groups may
    /// serve while Okta fails or rate-limits; zero denies at once.
    pub groups_stale_if_error: Duration,
    pub session_store: StoreKind,
    pub metrics_address: Option<String>,
    pub log_level: String,
    pub log_format: LogFormat,
    /// `OKTA_EVENT_HOOK_SECRET`: the `Authorization` value Okta's event hook
    /// sends; `Some` enables `/oauth2/okta/events`.
    pub event_hook_secret: Option<Secret>,
    /// `BEARER_AUDIENCE` & co.; `None`: bearer tokens are not accepted.
    pub bearer: Option<crate::oidc::bearer::BearerSettings>,
    /// `SKIP_AUTH_ROUTES`, `SKIP_AUTH_PREFLIGHT`; `None`: nothing is public.
    pub skip_routes: Option<crate::skip_routes::SkipRoutes>,
    /// `IDENTITY_JWT_KEY`; `None`: no `X-Auth-Request-Jwt`.
    pub identity_keys: Option<crate::identity_jwt::IdentityKeys>,
    /// Several root domains; empty with one (then `cookie.domain` and
    /// `service_url` are the only ones, else they are the first site's).
    pub sites: crate::sites::Sites,
}

/// Everything wrong with the configuration, each with how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.problems.len() {
            1 => writeln!(f, "invalid configuration (1 problem):")?,
            n => writeln!(f, "invalid configuration ({n} problems):")?,
        }
        for p in &self.problems {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads the process environment. Returns the config and warnings (unknown
    /// variables that look like ours).
    pub fn from_env() -> Result<(Config, Vec<String>), ConfigError> {
        Config::from_vars(std::env::vars())
    }

    /// Reads the given variables (tests use this; never `set_var`).
    pub fn from_vars<I>(vars: I) -> Result<(Config, Vec<String>), ConfigError>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let mut warnings = Vec::new();
        let mut ours = Vec::new();
        for (name, value) in vars {
            if KNOWN_VARIABLES.contains(&name.as_str()) {
                ours.push((name, value));
            } else if let Some(warning) = raw::unknown_variable_warning(&name) {
                warnings.push(warning);
            }
        }
        warnings.sort();
        let raw: RawConfig = envy::from_iter(ours).map_err(|e| ConfigError {
            problems: vec![format!("the environment cannot be read: {e}")],
        })?;
        match Config::try_from(raw) {
            Ok(config) => {
                warnings.extend(config.warnings());
                Ok((config, warnings))
            }
            Err(mut e) => {
                // A typo'd name is often the reason a variable is "not set".
                e.problems
                    .extend(warnings.into_iter().map(|w| format!("note: {w}")));
                Err(e)
            }
        }
    }

    /// Settings that are valid but probably not what was meant.
    fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        let Ok(service) = Url::parse(&self.service_url) else {
            return warnings;
        };
        let host = service.host_str().unwrap_or_default().to_string();
        if let Some(domain) = &self.cookie.domain {
            let bare = domain.trim_start_matches('.');
            if host != bare && !host.ends_with(&format!(".{bare}")) {
                warnings.push(format!(
                    "COOKIE_DOMAIN {domain} does not contain the host of AUTHENTICATE_SERVICE_URL \
                     ({host}): browsers will refuse the session cookie; set COOKIE_DOMAIN to a parent \
                     domain of {host} or leave it unset"
                ));
            }
        }
        if self.bearer.is_some() && !self.issuer.contains("/oauth2/") {
            warnings.push(format!(
                "BEARER_AUDIENCE is set but IDP_PROVIDER_URL {} is Okta's org authorization \
                 server, whose access tokens are opaque: every bearer token will be refused; use a \
                 custom authorization server, e.g. {}/oauth2/default",
                self.issuer, self.org_url
            ));
        }
        if self.cookie.secure && service.scheme() == "http" && !is_loopback(&service) {
            warnings.push(format!(
                "AUTHENTICATE_SERVICE_URL uses http but COOKIE_SECURE is true: browsers will not \
                 send the session cookie to http://{host}; serve it over https or set COOKIE_SECURE=false"
            ));
        }
        warnings
    }
}

impl TryFrom<RawConfig> for Config {
    type Error = ConfigError;

    /// One check per area, in the order they have always run (so problems list
    /// in the same order); the config is built only when none found a problem.
    /// An empty value counts as unset (compose files often write `VAR=`),
    /// except for TRUSTED_PROXIES where empty means "trust nobody".
    fn try_from(raw: RawConfig) -> Result<Config, ConfigError> {
        let mut p = Problems::default();
        let idp = idp::check(&raw, &mut p);
        let listen = listen::check(&raw, &mut p);
        let cookie = cookie::check(&raw, listen.cookie_domain.clone(), &mut p);
        let groups = store::groups_cache(&raw, &mut p);
        let service = listen.service.as_ref().map(|(url, _)| url);
        let routing = policy::routing(
            &raw,
            service,
            cookie.domain.as_deref(),
            &listen.sites,
            &mut p,
        );
        let session_store = store::session_store(&raw, &mut p);
        let log = log::check(&raw, &mut p);
        let features = policy::features(&raw, &mut p);

        if !p.0.is_empty() {
            return Err(ConfigError { problems: p.0 });
        }
        // Every `None` below pushed a problem above, so this only fails on a bug.
        let missing = || ConfigError {
            problems: vec!["internal error: a setting was rejected without a message".to_string()],
        };
        let (issuer, org_url) = idp.issuer.ok_or_else(missing)?;
        let (_, service_url) = listen.service.ok_or_else(missing)?;
        Ok(Config {
            provider: idp.provider.ok_or_else(missing)?,
            issuer,
            org_url,
            client_id: idp.client_id.ok_or_else(missing)?,
            client_secret: idp.client_secret.ok_or_else(missing)?,
            service_account: idp.service_account,
            service_app: idp.service_app,
            scopes: idp.scopes,
            redirect_uri: format!("{service_url}/oauth2/callback"),
            service_url,
            address: listen.address,
            cookie: cookie.settings().ok_or_else(missing)?,
            policy: routing.allow,
            redirects: routing.redirects.ok_or_else(missing)?,
            trusted_proxies: routing.trusted_proxies.ok_or_else(missing)?,
            groups_cache_ttl: groups.ttl.ok_or_else(missing)?,
            groups_stale_if_error: groups.stale_if_error.ok_or_else(missing)?,
            session_store: session_store.ok_or_else(missing)?,
            metrics_address: listen.metrics_address,
            log_level: log.level,
            log_format: log.format,
            event_hook_secret: idp.event_hook_secret,
            bearer: features.bearer,
            skip_routes: features.skip_routes,
            identity_keys: features.identity_keys,
            sites: listen.sites,
        })
    }
}
