//! Configuration from environment variables (DESIGN.md §4). envy fills the flat
//! [`RawConfig`] (every field a string, so that we, not serde, word the errors);
//! `TryFrom<RawConfig> for Config` parses URLs, durations, keys, CIDRs and rules
//! and reports every problem at once. Secrets live in newtypes whose `Debug`
//! prints `[redacted]`. Tests read the environment through [`Config::from_vars`].

use std::time::Duration;

use serde::Deserialize;
use url::Url;

use crate::forwarded::TrustedProxies;
use crate::okta_api::key::AssertionKey;
pub use crate::okta_api::ServiceAppConfig;
use crate::policy::AllowLists;
use crate::redirect::AllowedRedirects;
pub use crate::secret::{CookieKey, Secret};

mod raw_debug;

/// Every variable as envy reads it (lowercased names), all optional strings.
/// `Debug` (in `raw_debug`) shows no secret; `Serialize` is what it reads.
#[derive(Default, Deserialize, serde::Serialize)]
pub struct RawConfig {
    pub idp_provider: Option<String>,
    pub idp_provider_url: Option<String>,
    pub idp_client_id: Option<String>,
    pub idp_client_secret: Option<String>,
    pub idp_client_secret_file: Option<String>,
    pub idp_service_account: Option<String>,
    pub idp_service_account_file: Option<String>,
    pub okta_api_client_id: Option<String>,
    pub okta_api_private_key: Option<String>,
    pub okta_api_private_key_file: Option<String>,
    pub idp_scopes: Option<String>,
    pub authenticate_service_url: Option<String>,
    pub address: Option<String>,
    pub cookie_secret: Option<String>,
    pub cookie_secret_file: Option<String>,
    pub cookie_name: Option<String>,
    pub cookie_domain: Option<String>,
    pub cookie_secure: Option<String>,
    pub cookie_expire: Option<String>,
    pub allowed_groups: Option<String>,
    pub allowed_users: Option<String>,
    pub allowed_domains: Option<String>,
    pub allowed_redirect_domains: Option<String>,
    pub trusted_proxies: Option<String>,
    pub groups_cache_ttl: Option<String>,
    pub groups_stale_if_error: Option<String>,
    pub session_store: Option<String>,
    pub metrics_address: Option<String>,
    pub log_level: Option<String>,
    pub log_format: Option<String>,
    pub okta_event_hook_secret: Option<String>,
    pub okta_event_hook_secret_file: Option<String>,
    pub bearer_audience: Option<String>,
    pub bearer_client_ids: Option<String>,
    pub bearer_scopes: Option<String>,
    pub skip_auth_routes: Option<String>,
    pub skip_auth_preflight: Option<String>,
    pub identity_jwt_key: Option<String>,
    pub identity_jwt_key_file: Option<String>,
}

/// The variables we read, as they are spelled in the environment.
pub const KNOWN_VARIABLES: &[&str] = &[
    "IDP_PROVIDER",
    "IDP_PROVIDER_URL",
    "IDP_CLIENT_ID",
    "IDP_CLIENT_SECRET",
    "IDP_CLIENT_SECRET_FILE",
    "IDP_SERVICE_ACCOUNT",
    "IDP_SERVICE_ACCOUNT_FILE",
    "OKTA_API_CLIENT_ID",
    "OKTA_API_PRIVATE_KEY",
    "OKTA_API_PRIVATE_KEY_FILE",
    "IDP_SCOPES",
    "AUTHENTICATE_SERVICE_URL",
    "ADDRESS",
    "COOKIE_SECRET",
    "COOKIE_SECRET_FILE",
    "COOKIE_NAME",
    "COOKIE_DOMAIN",
    "COOKIE_SECURE",
    "COOKIE_EXPIRE",
    "ALLOWED_GROUPS",
    "ALLOWED_USERS",
    "ALLOWED_DOMAINS",
    "ALLOWED_REDIRECT_DOMAINS",
    "TRUSTED_PROXIES",
    "GROUPS_CACHE_TTL",
    "GROUPS_STALE_IF_ERROR",
    "SESSION_STORE",
    "METRICS_ADDRESS",
    "LOG_LEVEL",
    "LOG_FORMAT",
    "OKTA_EVENT_HOOK_SECRET",
    "OKTA_EVENT_HOOK_SECRET_FILE",
    "BEARER_AUDIENCE",
    "BEARER_CLIENT_IDS",
    "BEARER_SCOPES",
    "SKIP_AUTH_ROUTES",
    "SKIP_AUTH_PREFLIGHT",
    "IDENTITY_JWT_KEY",
    "IDENTITY_JWT_KEY_FILE",
];

/// Prefixes of our variables: an unknown variable with one of them is likely a typo.
const OUR_PREFIXES: &[&str] = &[
    "IDP_",
    "COOKIE_",
    "ALLOWED_",
    "AUTHENTICATE_",
    "GROUPS_",
    "SESSION_",
    "TRUSTED_",
    "METRICS_",
    "LOG_",
    "OKTA_",
    "BEARER_",
    "SKIP_",
    "IDENTITY_",
];

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
            } else if let Some(warning) = unknown_variable_warning(&name) {
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

/// A warning for a variable that looks like ours but is not one we read.
fn unknown_variable_warning(name: &str) -> Option<String> {
    let upper = name.to_ascii_uppercase();
    if !OUR_PREFIXES.iter().any(|p| upper.starts_with(p)) {
        return None;
    }
    if KNOWN_VARIABLES.contains(&upper.as_str()) {
        return Some(format!(
            "unknown variable {name} ignored; variable names are upper case: did you mean {upper}?"
        ));
    }
    let nearest = KNOWN_VARIABLES
        .iter()
        .map(|known| (edit_distance(&upper, known), *known))
        .min();
    match nearest {
        Some((distance, known)) if distance <= 3 && distance * 3 <= known.len() => Some(format!(
            "unknown variable {name} ignored; did you mean {known}?"
        )),
        _ => Some(format!("unknown variable {name} ignored")),
    }
}

/// Levenshtein distance (the names are short and ASCII).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = Vec::with_capacity(b.len() + 1);
        current.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != *cb);
            let delete = previous[j + 1] + 1;
            let insert = current[j] + 1;
            current.push(substitute.min(delete).min(insert));
        }
        previous = current;
    }
    previous[b.len()]
}

impl TryFrom<RawConfig> for Config {
    type Error = ConfigError;

    fn try_from(raw: RawConfig) -> Result<Config, ConfigError> {
        let mut p = Problems(Vec::new());
        // An empty value counts as unset (compose files often write `VAR=`),
        // except for TRUSTED_PROXIES where empty means "trust nobody".

        let provider = match get(&raw.idp_provider).map(|v| v.to_ascii_lowercase()) {
            Some(v) if v == "okta" => Some(Provider::Okta),
            Some(v) if v == "oidc" => Some(Provider::Oidc),
            Some(_) => p.add(
                "IDP_PROVIDER must be `okta` (groups from the Okta API) or `oidc` (groups from the ID token)",
            ),
            None => p.add(
                "IDP_PROVIDER is not set: set it to `okta` (groups from the Okta API) or `oidc` (groups from the ID token)",
            ),
        };

        let issuer = match get(&raw.idp_provider_url) {
            Some(v) => parse_issuer(&v, &mut p),
            None => p.add(
                "IDP_PROVIDER_URL is not set: set it to your Okta issuer, e.g. https://ORG.okta.com or https://ORG.okta.com/oauth2/default",
            ),
        };

        let client_id = get(&raw.idp_client_id)
            .or_else(|| p.add("IDP_CLIENT_ID is not set: copy the Client ID of your Okta web app"));
        let client_secret = match secret(
            "IDP_CLIENT_SECRET",
            get(&raw.idp_client_secret),
            get(&raw.idp_client_secret_file),
            &mut p,
        ) {
            Ok(Some(secret)) => Some(secret),
            Ok(None) => p.add(
                "IDP_CLIENT_SECRET is not set: copy the Client secret of your Okta web app \
                 into IDP_CLIENT_SECRET (or a file named by IDP_CLIENT_SECRET_FILE)",
            ),
            Err(()) => None,
        };
        let service_app = service_app(&raw, &mut p);
        let service_account = match secret(
            "IDP_SERVICE_ACCOUNT",
            get(&raw.idp_service_account),
            get(&raw.idp_service_account_file),
            &mut p,
        ) {
            Ok(Some(_)) if service_app.is_some() => p.add(
                "IDP_SERVICE_ACCOUNT and OKTA_API_CLIENT_ID are both set: keep one API \
                 credential (the service app is what Okta recommends; remove IDP_SERVICE_ACCOUNT)",
            ),
            Ok(None)
                if provider == Some(Provider::Okta)
                    && service_app.is_none()
                    && [
                        &raw.okta_api_client_id,
                        &raw.okta_api_private_key,
                        &raw.okta_api_private_key_file,
                    ]
                    .into_iter()
                    .all(|v| get(v).is_none()) =>
            {
                p.add(
                    "IDP_SERVICE_ACCOUNT is not set but IDP_PROVIDER is okta: set it (or \
                     IDP_SERVICE_ACCOUNT_FILE) to an Okta API token (Security > API > Tokens), or \
                     set OKTA_API_CLIENT_ID + OKTA_API_PRIVATE_KEY for an Okta API service app \
                     with the okta.users.read scope (what Okta recommends), or use \
                     IDP_PROVIDER=oidc to read groups from the ID token",
                )
            }
            Ok(account) => account,
            Err(()) => None,
        };

        let event_hook_secret = secret(
            "OKTA_EVENT_HOOK_SECRET",
            get(&raw.okta_event_hook_secret),
            get(&raw.okta_event_hook_secret_file),
            &mut p,
        )
        .unwrap_or(None);

        let scopes = get(&raw.idp_scopes).map_or_else(
            || {
                ["openid", "email", "profile", "offline_access"]
                    .map(String::from)
                    .to_vec()
            },
            |v| {
                let mut scopes: Vec<String> = Vec::new();
                for s in v.split(|c: char| c == ',' || c.is_whitespace()) {
                    if !s.is_empty() && !scopes.iter().any(|x| x == s) {
                        scopes.push(s.to_string());
                    }
                }
                scopes
            },
        );
        if !scopes.iter().any(|s| s == "openid") {
            p.push(
                "IDP_SCOPES must contain `openid`: e.g. `openid email profile offline_access`"
                    .to_string(),
            );
        }

        let several = crate::sites::Sites::split(
            get(&raw.cookie_domain),
            get(&raw.authenticate_service_url),
            &mut p.0,
        );
        let service = match several.service_url.clone() {
            Some(v) => parse_service_url(&v, &mut p),
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

        let keys = cookie_keys(
            get(&raw.cookie_secret),
            get(&raw.cookie_secret_file),
            &mut p,
        );

        let cookie_name = get(&raw.cookie_name).unwrap_or_else(|| "_forward_auth".to_string());
        if !cookie_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            p.push(format!(
                "COOKIE_NAME `{cookie_name}` may only contain letters, digits, `_`, `-` and `.`: e.g. _forward_auth"
            ));
        }

        let cookie_domain = several.cookie_domain.map(|d| d.to_ascii_lowercase());
        let cookie_domain = match cookie_domain {
            Some(d) if is_domain(d.strip_prefix('.').unwrap_or(&d)) => Some(d),
            Some(d) => {
                p.push(format!(
                    "COOKIE_DOMAIN `{d}` is not a domain name: use e.g. example.com or .example.com, or leave it unset"
                ));
                None
            }
            None => None,
        };

        let cookie_secure = match get(&raw.cookie_secure) {
            None => true,
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => true,
                "false" | "0" | "no" => false,
                _ => {
                    p.push(format!(
                        "COOKIE_SECURE `{v}` is not a boolean: use true or false"
                    ));
                    true
                }
            },
        };

        let cookie_expire = duration("COOKIE_EXPIRE", get(&raw.cookie_expire), "14h", &mut p);
        let groups_cache_ttl =
            duration("GROUPS_CACHE_TTL", get(&raw.groups_cache_ttl), "5m", &mut p);
        let groups_stale_if_error = duration_or_zero(
            "GROUPS_STALE_IF_ERROR",
            get(&raw.groups_stale_if_error),
            "15m",
            &mut p,
        );

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
        redirect_entries.extend(several.sites.redirect_entries());
        // Without a valid service URL, still check the entries against a stand-in.
        let stand_in = Url::parse("https://service.invalid/").ok();
        let redirects = match service.as_ref().map(|(url, _)| url).or(stand_in.as_ref()) {
            Some(url) => AllowedRedirects::new(url, cookie_domain.as_deref(), &redirect_entries)
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

        let session_store = match get(&raw.session_store) {
            None => Some(StoreKind::Memory),
            Some(v) => parse_store(&v, &mut p),
        };

        let log_level = get(&raw.log_level).unwrap_or_else(|| "info".to_string());
        let lower = log_level.to_ascii_lowercase();
        let log_level = if matches!(
            lower.as_str(),
            "trace" | "debug" | "info" | "warn" | "error" | "off"
        ) {
            lower
        } else if log_level.contains('=') {
            log_level
        } else {
            p.push(format!(
                "LOG_LEVEL `{log_level}` is not a level: use trace, debug, info, warn or error, \
                 or a filter such as info,forward_auth=debug"
            ));
            "info".to_string()
        };

        let log_format = match get(&raw.log_format)
            .map(|v| v.to_ascii_lowercase())
            .as_deref()
        {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                p.push(format!("LOG_FORMAT `{other}` must be text or json"));
                LogFormat::Text
            }
        };

        let bearer = crate::oidc::bearer::BearerSettings::parse(
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
        let skip_routes = crate::skip_routes::SkipRoutes::parse(
            get(&raw.skip_auth_routes).as_deref(),
            skip_preflight,
        )
        .map_err(|e| p.0.extend(e))
        .ok()
        .flatten();
        let identity_keys = match (get(&raw.identity_jwt_key), get(&raw.identity_jwt_key_file)) {
            (None, None) => None,
            (Some(_), Some(_)) => {
                p.add("IDENTITY_JWT_KEY and IDENTITY_JWT_KEY_FILE are both set: keep only one")
            }
            (Some(pem), None) => crate::identity_jwt::IdentityKeys::parse(&pem, "IDENTITY_JWT_KEY")
                .map_err(|e| p.0.extend(e))
                .ok(),
            (None, Some(path)) => read_secret_file("IDENTITY_JWT_KEY_FILE", &path, &mut p)
                .and_then(|pem| {
                    crate::identity_jwt::IdentityKeys::parse(&pem, "IDENTITY_JWT_KEY_FILE")
                        .map_err(|e| p.0.extend(e))
                        .ok()
                }),
        };

        if !p.0.is_empty() {
            return Err(ConfigError { problems: p.0 });
        }
        // Every `None` below pushed a problem above, so this only fails on a bug.
        let missing = || ConfigError {
            problems: vec!["internal error: a setting was rejected without a message".to_string()],
        };
        let (issuer, org_url) = issuer.ok_or_else(missing)?;
        let (_, service_url) = service.ok_or_else(missing)?;
        Ok(Config {
            provider: provider.ok_or_else(missing)?,
            issuer,
            org_url,
            client_id: client_id.ok_or_else(missing)?,
            client_secret: client_secret.ok_or_else(missing)?,
            service_account,
            service_app,
            scopes,
            redirect_uri: format!("{service_url}/oauth2/callback"),
            service_url,
            address,
            cookie: CookieSettings {
                name: cookie_name,
                domain: cookie_domain,
                secure: cookie_secure,
                expire: cookie_expire.ok_or_else(missing)?,
                keys: keys.ok_or_else(missing)?,
            },
            policy,
            redirects: redirects.ok_or_else(missing)?,
            trusted_proxies: trusted_proxies.ok_or_else(missing)?,
            groups_cache_ttl: groups_cache_ttl.ok_or_else(missing)?,
            groups_stale_if_error: groups_stale_if_error.ok_or_else(missing)?,
            session_store: session_store.ok_or_else(missing)?,
            metrics_address,
            log_level,
            log_format,
            event_hook_secret,
            bearer,
            skip_routes,
            identity_keys,
            sites: several.sites,
        })
    }
}

/// The problems found so far.
struct Problems(Vec<String>);

impl Problems {
    fn push(&mut self, message: String) {
        self.0.push(message);
    }

    fn count(&self) -> usize {
        self.0.len()
    }

    /// Records a problem; returns `None` so that `p.add(...)` can stand for a missing value.
    fn add<T>(&mut self, message: &str) -> Option<T> {
        self.0.push(message.to_string());
        None
    }
}

/// A secret from `NAME` or the file named by `NAME_FILE`. `Ok(None)` when neither
/// is set (the caller decides whether that is a problem); `Err` after a problem.
fn secret(
    name: &str,
    value: Option<String>,
    file: Option<String>,
    p: &mut Problems,
) -> Result<Option<Secret>, ()> {
    match (value, file) {
        (Some(_), Some(_)) => {
            p.push(format!(
                "{name} and {name}_FILE are both set: keep only one"
            ));
            Err(())
        }
        (Some(v), None) => Ok(Some(Secret::new(v))),
        (None, Some(path)) => read_secret_file(&format!("{name}_FILE"), &path, p)
            .map(|v| Some(Secret::new(v)))
            .ok_or(()),
        (None, None) => Ok(None),
    }
}

/// A variable's value; an empty one counts as unset (compose files often
/// write `VAR=`). TRUSTED_PROXIES reads its raw value: there empty means
/// "trust nobody".
fn get(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// `OKTA_API_CLIENT_ID` + `OKTA_API_PRIVATE_KEY` (or its `_FILE`): both or neither.
fn service_app(raw: &RawConfig, p: &mut Problems) -> Option<ServiceAppConfig> {
    let client_id = get(&raw.okta_api_client_id);
    let key = secret(
        "OKTA_API_PRIVATE_KEY",
        get(&raw.okta_api_private_key),
        get(&raw.okta_api_private_key_file),
        p,
    );
    match (client_id, key) {
        (_, Err(())) => None,
        (None, Ok(None)) => None,
        (Some(_), Ok(None)) => p.add(
            "OKTA_API_CLIENT_ID is set but OKTA_API_PRIVATE_KEY is not: set it (or \
             OKTA_API_PRIVATE_KEY_FILE) to the service app's private key, as PEM or JWK",
        ),
        (None, Ok(Some(_))) => p.add(
            "OKTA_API_PRIVATE_KEY is set but OKTA_API_CLIENT_ID is not: set it to the Client ID \
             of the Okta API service app",
        ),
        (Some(client_id), Ok(Some(key))) => match AssertionKey::parse(key.expose()) {
            Ok(key) => Some(ServiceAppConfig { client_id, key }),
            Err(e) => p.add(&format!("OKTA_API_PRIVATE_KEY {e}")),
        },
    }
}

/// Reads a `*_FILE` secret, without its trailing newline. Messages name the path only.
fn read_secret_file(var: &str, path: &str, p: &mut Problems) -> Option<String> {
    match std::fs::read_to_string(path) {
        Ok(content) => {
            let value = content.trim_end().to_string();
            if value.is_empty() {
                p.add(&format!(
                    "{var}: the file {path} is empty: put the secret in it"
                ))
            } else {
                Some(value)
            }
        }
        Err(e) => p.add(&format!(
            "{var}: cannot read the file {path} ({}): check the path and its permissions",
            e.kind()
        )),
    }
}

/// How a URL variable is named in a message: with its value, unless the value
/// may hold a password (user info).
fn shown(name: &str, value: &str) -> String {
    if value.contains('@') {
        name.to_string()
    } else {
        format!("{name} `{value}`")
    }
}

/// `IDP_PROVIDER_URL` -> (issuer without trailing `/`, org origin).
fn parse_issuer(value: &str, p: &mut Problems) -> Option<(String, String)> {
    let example = "e.g. https://ORG.okta.com or https://ORG.okta.com/oauth2/default";
    let var = shown("IDP_PROVIDER_URL", value);
    let Some(url) = Url::parse(value).ok().filter(|u| u.has_host()) else {
        return p.add(&format!("{var} is not an absolute URL: use {example}"));
    };
    let before = p.count();
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => p.push(format!(
            "{var} uses http: Okta issuers are https (plain http is accepted only on \
             loopback addresses, for testing)"
        )),
        _ => p.push(format!("{var} must be an https URL: use {example}")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        p.push(format!(
            "{var} must not contain a user name or password: use the bare issuer URL"
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        p.push(format!(
            "{var} must not have a query or fragment: use the issuer URL only, {example}"
        ));
    }
    if let Some((org, domain)) = url.host_str().and_then(okta_admin_org) {
        p.push(format!(
            "{var} is the Okta admin console, never the issuer: use https://ORG.okta.com \
             (without -admin), here https://{org}.{domain}"
        ));
    }
    if let Some(issuer) = value
        .trim_end_matches('/')
        .strip_suffix("/.well-known/openid-configuration")
    {
        p.push(format!(
            "{var} is the discovery document, not the issuer: use the part before \
             /.well-known, here {issuer}"
        ));
    }
    if url.host_str().is_some_and(is_placeholder_org) {
        p.push(format!(
            "{var} still names the placeholder org from an example: use your Okta org's \
             own host (Okta admin console → your name at the top right), {example}"
        ));
    }
    if p.count() > before {
        return None;
    }
    // Okta's `iss` has no trailing slash, and `Url` would add one to a bare origin.
    let issuer = value.trim_end_matches('/').to_string();
    Some((issuer, url.origin().ascii_serialization()))
}

/// Whether `host` is a placeholder copied from an example (`ORG.okta.com`,
/// `YOUR-ORG.okta.com`, `{yourOktaDomain}`…) rather than a real org.
fn is_placeholder_org(host: &str) -> bool {
    let first = host.split('.').next().unwrap_or_default();
    let squashed: String = first
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    matches!(
        squashed.as_str(),
        "org"
            | "yourorg"
            | "yourokta"
            | "youroktaorg"
            | "youroktadomain"
            | "yourdomain"
            | "oktadomain"
            | "orgname"
            | "yourorgname"
            | "subdomain"
            | "yoursubdomain"
    )
}

/// (`ORG`, domain) when `host` is `ORG-admin.okta.com` (or oktapreview.com, okta-emea.com).
fn okta_admin_org(host: &str) -> Option<(&str, &str)> {
    let (first, domain) = host.split_once('.')?;
    let org = first.strip_suffix("-admin")?;
    matches!(domain, "okta.com" | "oktapreview.com" | "okta-emea.com").then_some((org, domain))
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

/// Whether `url`'s host is a loopback address or `localhost`.
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
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

/// A DNS name: dot-separated labels of letters, digits and `-`.
fn is_domain(value: &str) -> bool {
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

/// `COOKIE_SECRET` (or its file): one or more base64 32-byte keys. Never echoes them.
fn cookie_keys(
    value: Option<String>,
    file: Option<String>,
    p: &mut Problems,
) -> Option<Vec<CookieKey>> {
    let generate = "generate one with `openssl rand -base64 32`";
    let (list, name) = match (value, file) {
        (Some(_), Some(_)) => {
            return p.add("COOKIE_SECRET and COOKIE_SECRET_FILE are both set: keep only one")
        }
        (Some(v), None) => (v, "COOKIE_SECRET"),
        (None, Some(path)) => (
            read_secret_file("COOKIE_SECRET_FILE", &path, p)?,
            "COOKIE_SECRET (from COOKIE_SECRET_FILE)",
        ),
        (None, None) => {
            return p.add(&format!(
                "COOKIE_SECRET is not set: {generate}, and set COOKIE_SECRET or COOKIE_SECRET_FILE"
            ))
        }
    };
    let entries: Vec<&str> = list.split(',').map(str::trim).collect();
    let several = entries.len() > 1;
    let mut keys = Vec::new();
    let before = p.count();
    for (i, entry) in entries.iter().enumerate() {
        let which = if several {
            format!("{name} entry {}", i + 1)
        } else {
            name.to_string()
        };
        if entry.is_empty() {
            p.push(format!("{which} is empty: remove the extra comma"));
            continue;
        }
        match decode_base64(entry) {
            None => {
                p.push(format!("{which} is not valid base64: {generate}"));
            }
            Some(bytes) => match <[u8; 32]>::try_from(bytes.as_slice()) {
                Ok(key) => keys.push(CookieKey::new(key)),
                Err(_) => {
                    p.push(format!(
                        "{which} decodes to {} bytes; need 32: {generate}",
                        bytes.len()
                    ));
                }
            },
        }
    }
    (p.count() == before && !keys.is_empty()).then_some(keys)
}

/// Standard or URL-safe base64, padded or not.
fn decode_base64(value: &str) -> Option<Vec<u8>> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    use base64::{alphabet, Engine};
    let config =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    [
        GeneralPurpose::new(&alphabet::STANDARD, config),
        GeneralPurpose::new(&alphabet::URL_SAFE, config),
    ]
    .iter()
    .find_map(|engine| engine.decode(value).ok())
}

/// A positive duration such as `90s`, `5m`, `14h`.
fn duration(
    name: &str,
    value: Option<String>,
    default: &str,
    p: &mut Problems,
) -> Option<Duration> {
    let value = value.unwrap_or_else(|| default.to_string());
    match humantime::parse_duration(&value) {
        Ok(d) if !d.is_zero() => Some(d),
        Ok(_) => p.add(&format!(
            "{name} must be longer than zero: use e.g. {default}"
        )),
        Err(_) => p.add(&format!(
            "{name} `{value}` is not a duration: use e.g. 90s, 5m or 14h"
        )),
    }
}

/// A duration such as `90s` or `15m`, where `0` is allowed (and means "none").
fn duration_or_zero(
    name: &str,
    value: Option<String>,
    default: &str,
    p: &mut Problems,
) -> Option<Duration> {
    let value = value.unwrap_or_else(|| default.to_string());
    if value.trim() == "0" {
        return Some(Duration::ZERO);
    }
    match humantime::parse_duration(&value) {
        Ok(d) => Some(d),
        Err(_) => p.add(&format!(
            "{name} `{value}` is not a duration: use e.g. 0 (none), 30s, 15m or 1h"
        )),
    }
}

/// `SESSION_STORE`: `memory` or a `redis://` / `rediss://` URL. Never echoes a URL
/// (it may carry a password).
fn parse_store(value: &str, p: &mut Problems) -> Option<StoreKind> {
    if value.eq_ignore_ascii_case("memory") {
        return Some(StoreKind::Memory);
    }
    let lower = value.to_ascii_lowercase();
    if lower.starts_with("redis://") || lower.starts_with("rediss://") {
        return match Url::parse(value) {
            Ok(url) if url.host_str().is_some_and(|h| !h.is_empty()) => Some(StoreKind::Redis(url)),
            _ => p.add(
                "SESSION_STORE is not a valid Redis URL: use e.g. redis://redis:6379 or rediss://user:password@host:6380/0",
            ),
        };
    }
    p.add(
        "SESSION_STORE must be `memory` or a redis:// (or rediss://) URL, e.g. redis://redis:6379",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="; // bytes 0..32
    const CLIENT_SECRET: &str = "client-secret-value-7f3a";
    const API_TOKEN: &str = "00ssws-token-value-9c1d";

    fn minimal() -> Vec<(String, String)> {
        [
            ("IDP_PROVIDER", "okta"),
            ("IDP_PROVIDER_URL", "https://dev-123.okta.com"),
            ("IDP_CLIENT_ID", "0oa1client"),
            ("IDP_CLIENT_SECRET", CLIENT_SECRET),
            ("IDP_SERVICE_ACCOUNT", API_TOKEN),
            ("AUTHENTICATE_SERVICE_URL", "https://auth.example.com"),
            ("COOKIE_SECRET", KEY_A),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// The minimal variables with some replaced, added or (value `None`) removed.
    fn with(changes: &[(&str, Option<&str>)]) -> Vec<(String, String)> {
        let mut vars = minimal();
        for (name, value) in changes {
            vars.retain(|(k, _)| k != name);
            if let Some(v) = value {
                vars.push((name.to_string(), v.to_string()));
            }
        }
        vars
    }

    fn load(changes: &[(&str, Option<&str>)]) -> Config {
        match Config::from_vars(with(changes)) {
            Ok((config, _)) => config,
            Err(e) => panic!("{e}"),
        }
    }

    fn problems(changes: &[(&str, Option<&str>)]) -> Vec<String> {
        match Config::from_vars(with(changes)) {
            Ok(_) => panic!("expected problems for {changes:?}"),
            Err(e) => e.problems,
        }
    }

    fn assert_one_problem(changes: &[(&str, Option<&str>)], needles: &[&str]) {
        let problems = problems(changes);
        assert_eq!(problems.len(), 1, "{changes:?}: {problems:#?}");
        for needle in needles {
            assert!(
                problems[0].contains(needle),
                "{changes:?}: {:?} lacks {needle:?}",
                problems[0]
            );
        }
    }

    /// A file in the temp directory, removed on drop.
    struct TempFile(std::path::PathBuf);

    impl TempFile {
        fn new(name: &str, content: &str) -> TempFile {
            let path = std::env::temp_dir().join(format!(
                "forward-auth-config-test-{}-{name}",
                std::process::id()
            ));
            std::fs::write(&path, content).unwrap();
            TempFile(path)
        }
        fn path(&self) -> &str {
            self.0.to_str().unwrap()
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn a_minimal_okta_config_gets_the_documented_defaults() {
        let (c, warnings) = Config::from_vars(minimal()).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(c.provider, Provider::Okta);
        assert_eq!(c.issuer, "https://dev-123.okta.com");
        assert_eq!(c.org_url, "https://dev-123.okta.com");
        assert_eq!(c.client_id, "0oa1client");
        assert_eq!(c.client_secret.expose(), CLIENT_SECRET);
        assert_eq!(
            c.service_account.as_ref().map(Secret::expose),
            Some(API_TOKEN)
        );
        assert_eq!(c.scopes, ["openid", "email", "profile", "offline_access"]);
        assert_eq!(c.service_url, "https://auth.example.com");
        assert_eq!(c.redirect_uri, "https://auth.example.com/oauth2/callback");
        assert_eq!(c.address, "0.0.0.0:4180");
        assert_eq!(c.cookie.name, "_forward_auth");
        assert_eq!(c.cookie.domain, None);
        assert!(c.cookie.secure);
        assert_eq!(c.cookie.expire, Duration::from_secs(14 * 3600));
        assert_eq!(c.cookie.keys.len(), 1);
        assert_eq!(c.cookie.keys[0].expose()[31], 31);
        assert!(c.policy.is_empty());
        assert!(c.trusted_proxies.contains("127.0.0.1".parse().unwrap()));
        assert!(c.trusted_proxies.contains("::1".parse().unwrap()));
        assert!(!c.trusted_proxies.contains("10.0.0.1".parse().unwrap()));
        assert_eq!(c.groups_cache_ttl, Duration::from_secs(300));
        assert_eq!(c.session_store, StoreKind::Memory);
        assert_eq!(c.metrics_address, None);
        assert_eq!(c.log_level, "info");
        assert_eq!(c.log_format, LogFormat::Text);
        assert!(c.redirects.validate("https://auth.example.com/x").is_ok());
        assert!(c.redirects.validate("https://other.example.com/x").is_err());
    }

    #[test]
    fn the_oidc_provider_needs_no_service_account() {
        let c = load(&[
            ("IDP_PROVIDER", Some("OIDC")),
            ("IDP_SERVICE_ACCOUNT", None),
        ]);
        assert_eq!(c.provider, Provider::Oidc);
        assert!(c.service_account.is_none());
    }

    #[test]
    fn the_okta_provider_needs_a_service_account() {
        assert_one_problem(
            &[("IDP_SERVICE_ACCOUNT", None)],
            &["IDP_SERVICE_ACCOUNT", "OKTA_API_CLIENT_ID", "okta", "oidc"],
        );
    }

    const SERVICE_APP_KEY: &str = include_str!("../tests/keys/test-key-2.pem");

    #[test]
    fn a_service_app_replaces_the_api_token() {
        let c = load(&[
            ("IDP_SERVICE_ACCOUNT", None),
            ("OKTA_API_CLIENT_ID", Some("0oasvc")),
            ("OKTA_API_PRIVATE_KEY", Some(SERVICE_APP_KEY)),
        ]);
        assert!(c.service_account.is_none());
        let app = c.service_app.expect("the service app");
        assert_eq!(app.client_id, "0oasvc");
        assert!(!format!("{app:?}").contains("MII"), "Debug shows no key");
    }

    #[test]
    fn exactly_one_api_credential_and_both_halves_of_the_service_app() {
        type Changes<'a> = &'a [(&'a str, Option<&'a str>)];
        let cases: &[(Changes, &[&str])] = &[
            (
                &[
                    ("OKTA_API_CLIENT_ID", Some("0oasvc")),
                    ("OKTA_API_PRIVATE_KEY", Some(SERVICE_APP_KEY)),
                ],
                &["IDP_SERVICE_ACCOUNT and OKTA_API_CLIENT_ID are both set"],
            ),
            (
                &[
                    ("IDP_SERVICE_ACCOUNT", None),
                    ("OKTA_API_CLIENT_ID", Some("0oasvc")),
                ],
                &["OKTA_API_CLIENT_ID is set but OKTA_API_PRIVATE_KEY is not"],
            ),
            (
                &[
                    ("IDP_SERVICE_ACCOUNT", None),
                    ("OKTA_API_PRIVATE_KEY", Some(SERVICE_APP_KEY)),
                ],
                &["OKTA_API_PRIVATE_KEY is set but OKTA_API_CLIENT_ID is not"],
            ),
            (
                &[
                    ("IDP_SERVICE_ACCOUNT", None),
                    ("OKTA_API_CLIENT_ID", Some("0oasvc")),
                    ("OKTA_API_PRIVATE_KEY", Some("hunter2")),
                ],
                &["OKTA_API_PRIVATE_KEY is neither a PEM nor a JWK"],
            ),
        ];
        for (changes, needles) in cases {
            assert_one_problem(changes, needles);
            assert!(problems(changes)
                .iter()
                .all(|p| !p.contains("hunter2") && !p.contains("MII")));
        }
    }

    #[test]
    fn an_empty_environment_lists_every_required_variable() {
        let e = Config::from_vars(Vec::new()).unwrap_err();
        for name in [
            "IDP_PROVIDER ",
            "IDP_PROVIDER_URL",
            "IDP_CLIENT_ID",
            "IDP_CLIENT_SECRET",
            "AUTHENTICATE_SERVICE_URL",
            "COOKIE_SECRET",
        ] {
            assert!(
                e.problems
                    .iter()
                    .any(|p| p.starts_with(name.trim()) && p.contains("not set")),
                "{name}: {e}"
            );
        }
        assert_eq!(e.problems.len(), 6, "{e}");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let problems = problems(&[
            ("IDP_PROVIDER", Some("auth0")),
            ("IDP_PROVIDER_URL", Some("http://dev-123.okta.com")),
            ("COOKIE_SECRET", Some("c2hvcnQ=")),
            ("COOKIE_EXPIRE", Some("forever")),
            ("TRUSTED_PROXIES", Some("10.0.0.0/99")),
            ("LOG_FORMAT", Some("xml")),
            ("SESSION_STORE", Some("postgres://db")),
        ]);
        assert_eq!(problems.len(), 7, "{problems:#?}");
        for (i, var) in [
            "IDP_PROVIDER ",
            "IDP_PROVIDER_URL",
            "COOKIE_SECRET",
            "COOKIE_EXPIRE",
            "TRUSTED_PROXIES",
            "LOG_FORMAT",
            "SESSION_STORE",
        ]
        .iter()
        .enumerate()
        {
            assert!(
                problems.iter().any(|p| p.starts_with(var)),
                "{i} {var}: {problems:#?}"
            );
        }
    }

    #[test]
    fn issuer_urls() {
        let cases = [
            (
                "https://dev-123.okta.com",
                "https://dev-123.okta.com",
                "https://dev-123.okta.com",
            ),
            (
                "https://dev-123.okta.com/",
                "https://dev-123.okta.com",
                "https://dev-123.okta.com",
            ),
            (
                "https://dev-123.okta.com/oauth2/default",
                "https://dev-123.okta.com/oauth2/default",
                "https://dev-123.okta.com",
            ),
            (
                "https://dev-123.okta.com/oauth2/default/",
                "https://dev-123.okta.com/oauth2/default",
                "https://dev-123.okta.com",
            ),
            (
                "https://login.example.com:8443/oauth2/aus1",
                "https://login.example.com:8443/oauth2/aus1",
                "https://login.example.com:8443",
            ),
            (
                "http://127.0.0.1:39001",
                "http://127.0.0.1:39001",
                "http://127.0.0.1:39001",
            ),
            (
                "http://localhost:8080/oauth2/default",
                "http://localhost:8080/oauth2/default",
                "http://localhost:8080",
            ),
            (
                "http://[::1]:9000/",
                "http://[::1]:9000",
                "http://[::1]:9000",
            ),
        ];
        for (given, issuer, org) in cases {
            let c = load(&[("IDP_PROVIDER_URL", Some(given))]);
            assert_eq!(
                (c.issuer.as_str(), c.org_url.as_str()),
                (issuer, org),
                "{given}"
            );
        }
    }

    #[test]
    fn bad_issuer_urls() {
        let cases: &[(&str, &[&str])] = &[
            (
                "https://dev-123-admin.okta.com",
                &[
                    "admin console",
                    "use https://ORG.okta.com (without -admin)",
                    "https://dev-123.okta.com",
                ],
            ),
            (
                "https://acme-admin.oktapreview.com/oauth2/default",
                &["without -admin", "https://acme.oktapreview.com"],
            ),
            ("https://acme-admin.okta-emea.com", &["without -admin"]),
            (
                "https://dev-123.okta.com/oauth2/default/.well-known/openid-configuration",
                &[
                    "discovery document, not the issuer",
                    "https://dev-123.okta.com/oauth2/default",
                ],
            ),
            (
                "https://dev-123.okta.com/.well-known/openid-configuration/",
                &["part before /.well-known, here https://dev-123.okta.com"],
            ),
            ("https://YOUR-ORG.okta.com", &["placeholder org"]),
            ("https://ORG.okta.com/oauth2/default", &["placeholder org"]),
            ("https://your_okta_domain.okta.com", &["placeholder org"]),
            ("https://yourOktaDomain", &["placeholder org"]),
            ("http://dev-123.okta.com", &["uses http", "loopback"]),
            ("http://10.0.0.1:8080", &["uses http"]),
            ("ftp://dev-123.okta.com", &["https"]),
            ("dev-123.okta.com", &["not an absolute URL"]),
            ("https://dev-123.okta.com?x=1", &["query"]),
            ("https://dev-123.okta.com/#frag", &["fragment"]),
            (
                "https://user:pw@dev-123.okta.com",
                &["user name or password"],
            ),
        ];
        for (given, needles) in cases {
            assert_one_problem(&[("IDP_PROVIDER_URL", Some(given))], needles);
        }
    }

    #[test]
    fn the_error_counts_problems_in_words() {
        let one = ConfigError {
            problems: vec!["a".into()],
        };
        assert!(one
            .to_string()
            .starts_with("invalid configuration (1 problem):"));
        let two = ConfigError {
            problems: vec!["a".into(), "b".into()],
        };
        assert!(two
            .to_string()
            .starts_with("invalid configuration (2 problems):"));
    }

    #[test]
    fn the_service_url_example_is_the_apps_own_origin() {
        let problems = problems(&[("AUTHENTICATE_SERVICE_URL", None)]);
        assert!(
            problems.iter().any(|p| p.contains("the app's own origin")),
            "{problems:#?}"
        );
    }

    #[test]
    fn a_url_with_a_password_is_never_echoed() {
        let problems = problems(&[(
            "IDP_PROVIDER_URL",
            Some("http://user:hunter2@dev-123.okta.com"),
        )]);
        assert!(
            problems.iter().all(|p| !p.contains("hunter2")),
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

    #[test]
    fn cookie_secrets() {
        let key_b = "//////////////////////////////////////////8"; // standard, unpadded
        let key_c = "__________________________________________8="; // URL-safe, padded
        let c = load(&[("COOKIE_SECRET", Some(&format!("{KEY_A}, {key_b},{key_c}")))]);
        assert_eq!(c.cookie.keys.len(), 3);
        assert_eq!(c.cookie.keys[0].expose()[1], 1, "the first key signs");
        assert_eq!(c.cookie.keys[1].expose(), &[255; 32]);
        assert_eq!(c.cookie.keys[2].expose(), &[255; 32]);
    }

    #[test]
    fn bad_cookie_secrets_say_which_entry_and_how_to_fix_it() {
        let cases: &[(&str, &[&str])] = &[
            ("c2hvcnQtc2VjcmV0LXNpeHRlZW4=", &["COOKIE_SECRET decodes to 20 bytes; need 32", "openssl rand -base64 32"]),
            ("not base64 at all!!", &["COOKIE_SECRET is not valid base64", "openssl rand -base64 32"]),
            (
                &format!("{KEY_A},AAECAwQFBgcICQoLDA0ODw=="),
                &["COOKIE_SECRET entry 2 decodes to 16 bytes; need 32: generate one with `openssl rand -base64 32`"],
            ),
            (&format!("{KEY_A},,{KEY_A}"), &["COOKIE_SECRET entry 2 is empty"]),
        ];
        for (given, needles) in cases {
            assert_one_problem(&[("COOKIE_SECRET", Some(given))], needles);
            let problems = problems(&[("COOKIE_SECRET", Some(given))]);
            assert!(!problems[0].contains(*given), "{problems:?}");
        }
        let problems = problems(&[("COOKIE_SECRET", Some("c2hvcnQ=,%%%%"))]);
        assert_eq!(problems.len(), 2, "{problems:#?}");
        assert!(problems
            .iter()
            .all(|p| !p.contains("c2hvcnQ") && !p.contains("%%%%")));
    }

    #[test]
    fn file_twins_are_read_and_trimmed() {
        let secret = TempFile::new("client-secret", &format!("{CLIENT_SECRET}\n"));
        let token = TempFile::new("token", &format!("{API_TOKEN}\r\n"));
        let key = TempFile::new("cookie", &format!("{KEY_A}\n"));
        let c = load(&[
            ("IDP_CLIENT_SECRET", None),
            ("IDP_CLIENT_SECRET_FILE", Some(secret.path())),
            ("IDP_SERVICE_ACCOUNT", None),
            ("IDP_SERVICE_ACCOUNT_FILE", Some(token.path())),
            ("COOKIE_SECRET", None),
            ("COOKIE_SECRET_FILE", Some(key.path())),
        ]);
        assert_eq!(c.client_secret.expose(), CLIENT_SECRET);
        assert_eq!(
            c.service_account.as_ref().map(Secret::expose),
            Some(API_TOKEN)
        );
        assert_eq!(c.cookie.keys.len(), 1);
    }

    #[test]
    fn the_event_hook_secret_comes_from_its_variable_or_its_file_twin() {
        assert!(load(&[]).event_hook_secret.is_none(), "off by default");
        let c = load(&[("OKTA_EVENT_HOOK_SECRET", Some("hook-secret"))]);
        assert_eq!(
            c.event_hook_secret.as_ref().map(Secret::expose),
            Some("hook-secret")
        );
        let file = TempFile::new("hook", "hook-secret-from-file\n");
        let c = load(&[("OKTA_EVENT_HOOK_SECRET_FILE", Some(file.path()))]);
        assert_eq!(
            c.event_hook_secret.as_ref().map(Secret::expose),
            Some("hook-secret-from-file")
        );
        assert_one_problem(
            &[
                ("OKTA_EVENT_HOOK_SECRET", Some("a")),
                ("OKTA_EVENT_HOOK_SECRET_FILE", Some(file.path())),
            ],
            &["OKTA_EVENT_HOOK_SECRET and OKTA_EVENT_HOOK_SECRET_FILE are both set"],
        );
        assert!(!format!("{c:?}").contains("hook-secret-from-file"));
    }

    #[test]
    fn a_variable_and_its_file_twin_conflict() {
        let file = TempFile::new("conflict", CLIENT_SECRET);
        for (name, file_name) in [
            ("IDP_CLIENT_SECRET", "IDP_CLIENT_SECRET_FILE"),
            ("IDP_SERVICE_ACCOUNT", "IDP_SERVICE_ACCOUNT_FILE"),
            ("COOKIE_SECRET", "COOKIE_SECRET_FILE"),
        ] {
            assert_one_problem(
                &[(file_name, Some(file.path()))],
                &[name, file_name, "both set"],
            );
        }
    }

    #[test]
    fn an_unreadable_or_empty_file_names_the_path_but_not_the_contents() {
        let missing = "/nonexistent/forward-auth/secret";
        assert_one_problem(
            &[
                ("IDP_CLIENT_SECRET", None),
                ("IDP_CLIENT_SECRET_FILE", Some(missing)),
            ],
            &["IDP_CLIENT_SECRET_FILE", missing, "cannot read"],
        );
        let empty = TempFile::new("empty", "\n");
        assert_one_problem(
            &[
                ("COOKIE_SECRET", None),
                ("COOKIE_SECRET_FILE", Some(empty.path())),
            ],
            &["COOKIE_SECRET_FILE", empty.path(), "empty"],
        );
        let short = TempFile::new("short", "c2hvcnQ=\n");
        let problems = problems(&[
            ("COOKIE_SECRET", None),
            ("COOKIE_SECRET_FILE", Some(short.path())),
        ]);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("decodes to 5 bytes") && !problems[0].contains("c2hvcnQ"));
    }

    #[test]
    fn durations() {
        let c = load(&[
            ("COOKIE_EXPIRE", Some("90s")),
            ("GROUPS_CACHE_TTL", Some("1h 30m")),
        ]);
        assert_eq!(c.cookie.expire, Duration::from_secs(90));
        assert_eq!(c.groups_cache_ttl, Duration::from_secs(5400));
        for (name, value, needle) in [
            ("COOKIE_EXPIRE", "14", "not a duration"),
            ("COOKIE_EXPIRE", "0s", "longer than zero"),
            ("GROUPS_CACHE_TTL", "five minutes", "not a duration"),
            ("GROUPS_CACHE_TTL", "-5m", "not a duration"),
            ("GROUPS_STALE_IF_ERROR", "15", "not a duration"),
            ("GROUPS_STALE_IF_ERROR", "-1m", "not a duration"),
            ("GROUPS_STALE_IF_ERROR", "forever", "not a duration"),
        ] {
            assert_one_problem(&[(name, Some(value))], &[name, needle]);
        }
    }

    #[test]
    fn groups_stale_if_error_defaults_to_15_minutes_and_zero_means_none() {
        assert_eq!(load(&[]).groups_stale_if_error, Duration::from_secs(900));
        for zero in ["0", "0s", " 0 "] {
            let c = load(&[("GROUPS_STALE_IF_ERROR", Some(zero))]);
            assert_eq!(c.groups_stale_if_error, Duration::ZERO, "{zero:?}");
        }
        let c = load(&[("GROUPS_STALE_IF_ERROR", Some("1h 30s"))]);
        assert_eq!(c.groups_stale_if_error, Duration::from_secs(3630));
    }

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
    fn session_stores() {
        let c = load(&[("SESSION_STORE", Some("redis://redis:6379/0"))]);
        assert!(matches!(&c.session_store, StoreKind::Redis(u) if u.host_str() == Some("redis")));
        let c = load(&[("SESSION_STORE", Some("rediss://:pw@cache.example.com:6380"))]);
        assert!(matches!(&c.session_store, StoreKind::Redis(u) if u.scheme() == "rediss"));
        assert_eq!(
            load(&[("SESSION_STORE", Some("Memory"))]).session_store,
            StoreKind::Memory
        );
        assert_one_problem(
            &[("SESSION_STORE", Some("memcached://x"))],
            &["SESSION_STORE", "redis://"],
        );
        assert_one_problem(
            &[("SESSION_STORE", Some("redis://"))],
            &["not a valid Redis URL"],
        );
    }

    #[test]
    fn a_redis_password_never_shows_in_debug_or_messages() {
        let c = load(&[("SESSION_STORE", Some("redis://user:s3cr3tpw@redis:6379"))]);
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("s3cr3tpw") && shown.contains("redis:6379"),
            "{shown}"
        );
        let problems = problems(&[("SESSION_STORE", Some("redis://user:s3cr3tpw@"))]);
        assert!(!problems[0].contains("s3cr3tpw"));
    }

    #[test]
    fn other_settings() {
        let c = load(&[
            ("IDP_SCOPES", Some("openid,email  groups")),
            ("ADDRESS", Some("127.0.0.1:0")),
            ("METRICS_ADDRESS", Some("127.0.0.1:9090")),
            ("COOKIE_NAME", Some("_sso.session-1")),
            ("COOKIE_DOMAIN", Some(".Example.com")),
            ("COOKIE_SECURE", Some("No")),
            ("ALLOWED_GROUPS", Some("admins, 00g1")),
            ("ALLOWED_USERS", Some("Alice@Example.com")),
            ("ALLOWED_DOMAINS", Some("@example.com")),
            (
                "ALLOWED_REDIRECT_DOMAINS",
                Some(".example.net, app.example.org:8443,"),
            ),
            ("LOG_LEVEL", Some("info,forward_auth=debug")),
            ("LOG_FORMAT", Some("JSON")),
        ]);
        assert_eq!(c.scopes, ["openid", "email", "groups"]);
        assert_eq!(c.address, "127.0.0.1:0");
        assert_eq!(c.metrics_address.as_deref(), Some("127.0.0.1:9090"));
        assert_eq!(c.cookie.name, "_sso.session-1");
        assert_eq!(c.cookie.domain.as_deref(), Some(".example.com"));
        assert!(!c.cookie.secure);
        assert_eq!(c.policy.groups, ["admins", "00g1"]);
        assert_eq!(c.policy.users, ["alice@example.com"]);
        assert_eq!(c.policy.domains, ["example.com"]);
        assert!(c.redirects.validate("https://x.example.net/").is_ok());
        assert!(c
            .redirects
            .validate("https://app.example.org:8443/")
            .is_ok());
        assert!(c.redirects.validate("https://app.example.org/").is_err());
        assert!(
            c.redirects.validate("https://www.example.com/").is_ok(),
            "COOKIE_DOMAIN is allowed"
        );
        assert_eq!(c.log_level, "info,forward_auth=debug");
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(load(&[("LOG_LEVEL", Some("DEBUG"))]).log_level, "debug");
        assert!(load(&[("COOKIE_SECURE", Some("1"))]).cookie.secure);
    }

    #[test]
    fn empty_values_count_as_unset() {
        let c = load(&[
            ("COOKIE_DOMAIN", Some("")),
            ("LOG_LEVEL", Some(" ")),
            ("METRICS_ADDRESS", Some("")),
        ]);
        assert_eq!(c.cookie.domain, None);
        assert_eq!(c.log_level, "info");
        assert_eq!(c.metrics_address, None);
        assert_one_problem(
            &[("IDP_CLIENT_ID", Some(""))],
            &["IDP_CLIENT_ID is not set"],
        );
    }

    #[test]
    fn bad_other_settings() {
        type Changes<'a> = &'a [(&'a str, Option<&'a str>)];
        let cases: &[(Changes, &[&str])] = &[
            (
                &[("IDP_SCOPES", Some("email profile"))],
                &["IDP_SCOPES", "openid"],
            ),
            (&[("ADDRESS", Some("4180"))], &["ADDRESS", "host:port"]),
            (
                &[("ADDRESS", Some("0.0.0.0:99999"))],
                &["ADDRESS", "host:port"],
            ),
            (
                &[("METRICS_ADDRESS", Some("0.0.0.0:4180"))],
                &["METRICS_ADDRESS", "same as ADDRESS"],
            ),
            (
                &[
                    ("ADDRESS", Some("127.0.0.1:8080")),
                    ("METRICS_ADDRESS", Some("0.0.0.0:8080")),
                ],
                &["same as ADDRESS"],
            ),
            (
                &[("METRICS_ADDRESS", Some("metrics"))],
                &["METRICS_ADDRESS", "host:port"],
            ),
            (
                &[("COOKIE_NAME", Some("my cookie"))],
                &["COOKIE_NAME", "letters, digits"],
            ),
            (&[("COOKIE_NAME", Some("a;b=c"))], &["COOKIE_NAME"]),
            (
                &[("COOKIE_DOMAIN", Some("https://example.com"))],
                &["COOKIE_DOMAIN", "not a domain name"],
            ),
            (
                &[("COOKIE_DOMAIN", Some("example..com"))],
                &["COOKIE_DOMAIN"],
            ),
            (
                &[("COOKIE_SECURE", Some("maybe"))],
                &["COOKIE_SECURE", "true or false"],
            ),
            (
                &[("ALLOWED_REDIRECT_DOMAINS", Some("https://example.com"))],
                &[
                    "ALLOWED_REDIRECT_DOMAINS",
                    "`https://example.com`",
                    "scheme",
                ],
            ),
            (
                &[("LOG_LEVEL", Some("verbose"))],
                &["LOG_LEVEL", "trace, debug, info, warn or error"],
            ),
            (
                &[("IDP_PROVIDER", Some("auth0"))],
                &["IDP_PROVIDER", "okta", "oidc"],
            ),
        ];
        for (changes, needles) in cases {
            assert_one_problem(changes, needles);
        }
    }

    #[test]
    fn bad_redirect_domains_are_reported_even_when_the_service_url_is_bad() {
        let problems = problems(&[
            ("AUTHENTICATE_SERVICE_URL", Some("nope")),
            ("ALLOWED_REDIRECT_DOMAINS", Some("example.com/path")),
        ]);
        assert_eq!(problems.len(), 2, "{problems:#?}");
    }

    #[test]
    fn unknown_variables_that_look_like_ours_are_warned_about() {
        let mut vars = minimal();
        vars.extend(
            [
                ("COOKIE_SECERT", "x"),
                ("ALLOWED_GROUP", "x"),
                ("LOG_SOMETHING_ELSE_ENTIRELY", "x"),
                ("cookie_name", "x"),
                ("PATH", "/usr/bin"),
                ("HOME", "/root"),
                ("IDPPROVIDER", "x"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let (c, warnings) = Config::from_vars(vars).unwrap();
        assert_eq!(
            c.cookie.name, "_forward_auth",
            "a lowercase name is not read"
        );
        assert_eq!(
            warnings,
            [
                "unknown variable ALLOWED_GROUP ignored; did you mean ALLOWED_GROUPS?",
                "unknown variable COOKIE_SECERT ignored; did you mean COOKIE_SECRET?",
                "unknown variable LOG_SOMETHING_ELSE_ENTIRELY ignored",
                "unknown variable cookie_name ignored; variable names are upper case: did you mean COOKIE_NAME?",
            ]
        );
    }

    #[test]
    fn a_typo_is_noted_next_to_the_problem_it_causes() {
        let mut vars = with(&[("COOKIE_SECRET", None)]);
        vars.push(("COOKIE_SECRT".to_string(), KEY_A.to_string()));
        let e = Config::from_vars(vars).unwrap_err();
        assert_eq!(e.problems.len(), 2, "{e}");
        assert!(e.problems[1].starts_with(
            "note: unknown variable COOKIE_SECRT ignored; did you mean COOKIE_SECRET?"
        ));
    }

    #[test]
    fn suspicious_but_valid_settings_are_warned_about() {
        let (_, warnings) = Config::from_vars(with(&[
            ("AUTHENTICATE_SERVICE_URL", Some("http://auth.example.com")),
            ("COOKIE_DOMAIN", Some("example.org")),
        ]))
        .unwrap();
        assert_eq!(warnings.len(), 2, "{warnings:#?}");
        assert!(warnings[0].contains("COOKIE_DOMAIN"));
        assert!(warnings[1].contains("COOKIE_SECURE"));
        let (_, warnings) = Config::from_vars(with(&[
            ("AUTHENTICATE_SERVICE_URL", Some("http://127.0.0.1:4180")),
            ("COOKIE_DOMAIN", Some("127.0.0.1")),
        ]))
        .unwrap();
        assert!(warnings.is_empty(), "{warnings:#?}");
    }

    #[test]
    fn debug_output_never_contains_secrets() {
        let file = TempFile::new("debug-token", API_TOKEN);
        let (c, _) = Config::from_vars(with(&[
            ("IDP_SERVICE_ACCOUNT", None),
            ("IDP_SERVICE_ACCOUNT_FILE", Some(file.path())),
        ]))
        .unwrap();
        let shown = format!("{c:?} {:#?}", c);
        for secret in [CLIENT_SECRET, API_TOKEN, KEY_A, "AAECAwQF"] {
            assert!(!shown.contains(secret), "Debug shows {secret}");
        }
        assert!(shown.contains("[redacted]"));
        // The raw bytes of the key (0, 1, 2, ...) must not show either.
        assert!(!shown.contains("0, 1, 2, 3"));
    }

    #[test]
    fn problems_never_contain_secret_values() {
        let problems = problems(&[
            ("IDP_CLIENT_SECRET_FILE", Some("/nonexistent")),
            ("COOKIE_SECRET", Some("bm90LTMyLWJ5dGVzLWxvbmc=")),
        ]);
        let all = problems.join("\n");
        assert!(
            !all.contains(CLIENT_SECRET) && !all.contains("bm90LTMyLWJ5dGVzLWxvbmc"),
            "{all}"
        );
    }

    #[test]
    fn every_known_variable_is_a_raw_config_field() {
        for name in KNOWN_VARIABLES {
            let raw: RawConfig =
                envy::from_iter([(name.to_string(), "marker-value".to_string())]).unwrap();
            // Through serde, not Debug: Debug redacts the secrets.
            assert!(
                serde_json::to_string(&raw)
                    .unwrap()
                    .contains("marker-value"),
                "{name} is not read"
            );
        }
    }

    #[test]
    fn edit_distance_counts_single_character_edits() {
        assert_eq!(edit_distance("COOKIE_SECERT", "COOKIE_SECRET"), 2);
        assert_eq!(edit_distance("LOG_LEVL", "LOG_LEVEL"), 1);
        assert_eq!(edit_distance("", "ABC"), 3);
        assert_eq!(edit_distance("SAME", "SAME"), 0);
    }
}
