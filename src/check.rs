//! `forward-auth check [--user LOGIN]`: tries a configuration against the real
//! IdP and the real Redis without serving, and says per check what is wrong and
//! how to fix it. It owns the probes (discovery, keys, the web app's client
//! credentials, the registered redirect URI, the API credential, Redis) and the
//! report; it must never print a secret, and never change anything at Okta: the
//! token endpoint is asked to redeem a code that does not exist, and the groups
//! API is asked about a user that does not exist (or the one given).

use std::fmt;
use std::time::Duration;

use reqwest::header::ACCEPT;
use reqwest::StatusCode;
use serde::Deserialize;
use url::Url;

use crate::config::{is_loopback, Config, Provider, StoreKind};
use crate::error_chain::error_chain;
use crate::groups::{GroupsError, OktaGroupsClient};
use crate::okta_api::{ApiCredential, ApiError};
use crate::policy::{decide, AllowLists, Decision, Subject};
use crate::random::random_token;

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// Works, but probably not what was meant; does not fail the run.
    Warn,
    Fail,
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub status: Status,
    pub what: &'static str,
    pub detail: String,
    /// How to fix it (failures and warnings).
    pub fix: Option<String>,
}

/// Every check's line, in order.
#[derive(Debug, Default)]
pub struct Report {
    pub lines: Vec<Line>,
}

impl Report {
    /// No check failed.
    pub fn passed(&self) -> bool {
        self.lines.iter().all(|l| l.status != Status::Fail)
    }

    fn ok(&mut self, what: &'static str, detail: impl Into<String>) {
        self.push(Status::Ok, what, detail.into(), None);
    }

    fn warn(&mut self, what: &'static str, detail: impl Into<String>, fix: impl Into<String>) {
        self.push(Status::Warn, what, detail.into(), Some(fix.into()));
    }

    fn fail(&mut self, what: &'static str, detail: impl Into<String>, fix: impl Into<String>) {
        self.push(Status::Fail, what, detail.into(), Some(fix.into()));
    }

    fn push(&mut self, status: Status, what: &'static str, detail: String, fix: Option<String>) {
        self.lines.push(Line {
            status,
            what,
            detail,
            fix,
        });
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in &self.lines {
            let tag = match line.status {
                Status::Ok => "ok  ",
                Status::Warn => "warn",
                Status::Fail => "FAIL",
            };
            writeln!(f, "{tag}  {}: {}", line.what, line.detail)?;
            if let Some(fix) = &line.fix {
                writeln!(f, "      fix: {fix}")?;
            }
        }
        let failed = self
            .lines
            .iter()
            .filter(|l| l.status == Status::Fail)
            .count();
        match failed {
            0 => writeln!(f, "all {} checks passed", self.lines.len()),
            1 => writeln!(f, "1 of {} checks failed", self.lines.len()),
            n => writeln!(f, "{n} of {} checks failed", self.lines.len()),
        }
    }
}

/// Reads the process environment, then runs every check.
pub async fn run_from_env(user: Option<&str>) -> Report {
    match Config::from_env() {
        Ok((config, warnings)) => run(&config, &warnings, user).await,
        Err(e) => {
            let mut report = Report::default();
            for problem in e.problems {
                report.fail(
                    "configuration",
                    problem,
                    "correct the variable as described, then run the check again",
                );
            }
            report
        }
    }
}

/// Runs every check against `config` (`warnings`: those the configuration
/// loader found, e.g. misspelt variables).
pub async fn run(config: &Config, warnings: &[String], user: Option<&str>) -> Report {
    let mut report = Report::default();
    report.ok(
        "configuration",
        format!("read; redirect URI {}", config.redirect_uri),
    );
    for warning in warnings {
        report.warn("configuration", warning.clone(), "see the message");
    }
    check_cookie_and_proxies(config, &mut report);

    let http = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .user_agent(concat!("forward-auth-check/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(http) => http,
        Err(e) => {
            report.fail(
                "HTTP client",
                error_chain(&e),
                "this machine's TLS set-up is broken",
            );
            return report;
        }
    };
    if let Some(metadata) = check_discovery(config, &http, &mut report).await {
        check_keys(&http, &metadata, &mut report).await;
        check_client(config, &http, &metadata, &mut report).await;
        check_redirect_uri(config, &http, &metadata, &mut report).await;
    }
    if config.provider == Provider::Okta {
        check_api_credential(config, &http, user, &mut report).await;
    } else if let Some(user) = user {
        report.warn(
            "user",
            format!("{user}: IDP_PROVIDER=oidc takes groups from the ID token, not the API"),
            "sign in as that user and look at /oauth2/userinfo",
        );
    }
    if let StoreKind::Redis(url) = &config.session_store {
        check_redis(url, &mut report).await;
    }
    report
}

/// Settings that are valid one by one but break sign-in or trust together.
fn check_cookie_and_proxies(config: &Config, report: &mut Report) {
    let service = Url::parse(&config.service_url).ok();
    let host = service
        .as_ref()
        .and_then(|u| u.host_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let is_http = service.as_ref().is_some_and(|u| u.scheme() == "http");
    let loopback = service.as_ref().is_some_and(is_loopback);
    match (config.cookie.secure, is_http) {
        (true, true) if !loopback => report.fail(
            "cookies",
            format!("COOKIE_SECURE is true but AUTHENTICATE_SERVICE_URL is http://{host}: browsers never send a Secure cookie over http, so every sign-in loops"),
            "serve the service over https (recommended), or set COOKIE_SECURE=false for a plain-http test setup",
        ),
        (false, false) => report.warn(
            "cookies",
            "COOKIE_SECURE=false with an https AUTHENTICATE_SERVICE_URL: the session cookie may also travel over plain http",
            "remove COOKIE_SECURE=false",
        ),
        _ => report.ok(
            "cookies",
            format!("secure={} for {}", config.cookie.secure, config.service_url),
        ),
    }
    if let Some(domain) = &config.cookie.domain {
        let bare = domain.trim_start_matches('.').to_ascii_lowercase();
        if host == bare || host.ends_with(&format!(".{bare}")) {
            report.ok(
                "cookie domain",
                format!("{domain} contains the service host {host}"),
            );
        } else {
            report.fail(
                "cookie domain",
                format!("COOKIE_DOMAIN {domain} does not contain the host of AUTHENTICATE_SERVICE_URL ({host}): browsers refuse the session cookie"),
                format!("set COOKIE_DOMAIN to a parent domain of {host}, or leave it unset"),
            );
        }
    }
    let everyone: Vec<String> = config
        .trusted_proxies
        .0
        .iter()
        .filter(|net| net.prefix_len() == 0)
        .map(|net| net.to_string())
        .collect();
    if everyone.is_empty() {
        report.ok(
            "trusted proxies",
            format!("{} address range(s)", config.trusted_proxies.0.len()),
        );
    } else {
        report.fail(
            "trusted proxies",
            format!("TRUSTED_PROXIES contains {}: every client could forge X-Forwarded-* and X-Original-* headers", everyone.join(", ")),
            "list only your proxy's addresses, e.g. TRUSTED_PROXIES=10.0.0.5/32",
        );
    }
}

/// The parts of the discovery document the checks need.
#[derive(Debug, Deserialize)]
struct Metadata {
    issuer: String,
    authorization_endpoint: Url,
    token_endpoint: Url,
    jwks_uri: Url,
}

async fn check_discovery(
    config: &Config,
    http: &reqwest::Client,
    report: &mut Report,
) -> Option<Metadata> {
    let url = format!("{}/.well-known/openid-configuration", config.issuer);
    let fix_url = "IDP_PROVIDER_URL must be the issuer, e.g. https://ORG.okta.com or https://ORG.okta.com/oauth2/default, reachable from here";
    let response = match http
        .get(&url)
        .header(ACCEPT, "application/json")
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => {
            report.fail(
                "issuer",
                format!("{url} cannot be reached: {}", error_chain(&e)),
                fix_url,
            );
            return None;
        }
    };
    if !response.status().is_success() {
        report.fail(
            "issuer",
            format!("{url} answered {}", response.status()),
            fix_url,
        );
        return None;
    }
    let metadata: Metadata = match response.json().await {
        Ok(m) => m,
        Err(e) => {
            report.fail(
                "issuer",
                format!("{url} is not an OpenID Connect discovery document: {e}"),
                fix_url,
            );
            return None;
        }
    };
    if metadata.issuer != config.issuer {
        report.fail(
            "issuer",
            format!(
                "discovery names the issuer {} but IDP_PROVIDER_URL is {}: every ID token would be refused",
                metadata.issuer, config.issuer
            ),
            format!("set IDP_PROVIDER_URL={}", metadata.issuer),
        );
        return None;
    }
    report.ok(
        "issuer",
        format!(
            "{} answers discovery (not the admin console)",
            config.issuer
        ),
    );
    Some(metadata)
}

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    #[serde(default)]
    alg: Option<String>,
}

async fn check_keys(http: &reqwest::Client, metadata: &Metadata, report: &mut Report) {
    let url = &metadata.jwks_uri;
    let keys = match http.get(url.clone()).send().await {
        Ok(r) if r.status().is_success() => r.json::<Jwks>().await.map_err(|e| e.to_string()),
        Ok(r) => Err(format!("answered {}", r.status())),
        Err(e) => Err(error_chain(&e)),
    };
    match keys {
        Ok(keys) => {
            let rs256 = keys
                .keys
                .iter()
                .filter(|k| k.kty == "RSA" && k.alg.as_deref().is_none_or(|a| a == "RS256"))
                .count();
            if rs256 > 0 {
                report.ok("signing keys", format!("{rs256} RS256 key(s) at {url}"));
            } else {
                report.fail(
                    "signing keys",
                    format!("{url} holds no RS256 key: ID tokens cannot be verified"),
                    "use an Okta authorization server (its keys are RS256)",
                );
            }
        }
        Err(e) => report.fail(
            "signing keys",
            format!("{url}: {e}"),
            "check that the issuer's jwks_uri is reachable from here",
        ),
    }
}

/// An OAuth error body.
#[derive(Deserialize)]
struct OAuthError {
    error: String,
}

/// The web app's client id and secret: a code that does not exist must fail
/// as `invalid_grant` (the client was authenticated), not `invalid_client`.
async fn check_client(
    config: &Config,
    http: &reqwest::Client,
    metadata: &Metadata,
    report: &mut Report,
) {
    let code = format!("forward-auth-check-{}", random_token());
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", config.redirect_uri.as_str()),
    ];
    // RFC 6749 §2.3.1: both halves form-encoded before Basic, as sign-in does.
    let id: String = url::form_urlencoded::byte_serialize(config.client_id.as_bytes()).collect();
    let secret: String =
        url::form_urlencoded::byte_serialize(config.client_secret.expose().as_bytes()).collect();
    let response = http
        .post(metadata.token_endpoint.clone())
        .basic_auth(id, Some(secret))
        .form(&form)
        .send()
        .await;
    let fix_credentials = "copy the Client ID and Client secret of the Okta web app into IDP_CLIENT_ID and IDP_CLIENT_SECRET";
    let (status, error) = match response {
        Ok(r) => {
            let status = r.status();
            let error = r.json::<OAuthError>().await.map(|e| e.error).ok();
            (status, error)
        }
        Err(e) => {
            report.fail(
                "client credentials",
                format!(
                    "{} cannot be reached: {}",
                    metadata.token_endpoint,
                    error_chain(&e)
                ),
                "check the network path to Okta",
            );
            return;
        }
    };
    match error.as_deref() {
        Some("invalid_grant") => report.ok(
            "client credentials",
            format!(
                "the token endpoint accepted IDP_CLIENT_ID {}",
                config.client_id
            ),
        ),
        Some("invalid_client") => report.fail(
            "client credentials",
            format!("the token endpoint refused IDP_CLIENT_ID {} or its secret (invalid_client)", config.client_id),
            fix_credentials,
        ),
        Some("unauthorized_client") => report.fail(
            "client credentials",
            "the app may not use the Authorization Code grant (unauthorized_client)",
            "in the Okta app's General settings, allow the Authorization Code grant (and Refresh Token)",
        ),
        other => report.fail(
            "client credentials",
            format!(
                "unexpected answer {status} {} from the token endpoint",
                other.unwrap_or("without an OAuth error")
            ),
            fix_credentials,
        ),
    }
}

/// The redirect URI derived from `AUTHENTICATE_SERVICE_URL` must be registered
/// on the app: Okta answers its authorize endpoint with a 400 page otherwise.
async fn check_redirect_uri(
    config: &Config,
    http: &reqwest::Client,
    metadata: &Metadata,
    report: &mut Report,
) {
    let mut url = metadata.authorization_endpoint.clone();
    let state = random_token();
    url.query_pairs_mut()
        .append_pair("client_id", &config.client_id)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid")
        .append_pair("redirect_uri", &config.redirect_uri)
        .append_pair("state", &state)
        .append_pair("nonce", &state)
        .append_pair(
            "code_challenge",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        )
        .append_pair("code_challenge_method", "S256");
    match http.get(url).send().await {
        Ok(r) if r.status().is_success() || r.status().is_redirection() => report.ok(
            "redirect URI",
            format!("{} is accepted by the app", config.redirect_uri),
        ),
        Ok(r) => report.fail(
            "redirect URI",
            format!(
                "the authorize endpoint answered {} for redirect_uri {}",
                r.status(),
                config.redirect_uri
            ),
            format!(
                "add {} to the Okta app's Sign-in redirect URIs (exactly), or correct AUTHENTICATE_SERVICE_URL / IDP_CLIENT_ID",
                config.redirect_uri
            ),
        ),
        Err(e) => report.fail(
            "redirect URI",
            format!("the authorize endpoint cannot be reached: {}", error_chain(&e)),
            "check the network path to Okta",
        ),
    }
}

/// The management API credential: a user that does not exist must be a 404
/// (the credential was accepted), not a 401 or 403.
async fn check_api_credential(
    config: &Config,
    http: &reqwest::Client,
    user: Option<&str>,
    report: &mut Report,
) {
    let credential = match crate::startup::api_credential(config) {
        Ok(Some(credential)) => credential,
        Ok(None) => {
            report.fail(
                "API credential",
                "IDP_PROVIDER=okta needs an API credential",
                "set OKTA_API_CLIENT_ID + OKTA_API_PRIVATE_KEY (service app) or IDP_SERVICE_ACCOUNT (API token)",
            );
            return;
        }
        Err(e) => {
            report.fail("API credential", e, "see the message");
            return;
        }
    };
    let service_app = matches!(credential, ApiCredential::ServiceApp(_));
    let names = credential.names();
    let probe = format!("forward-auth-check-{}", random_token());
    let mut url = match Url::parse(&config.org_url) {
        Ok(url) => url,
        Err(e) => {
            report.fail(
                "API credential",
                format!("org URL: {e}"),
                "fix IDP_PROVIDER_URL",
            );
            return;
        }
    };
    if let Ok(mut segments) = url.path_segments_mut() {
        segments
            .pop_if_empty()
            .extend(["api", "v1", "users", &probe, "groups"]);
    }
    url.set_query(Some("limit=1"));
    let fix_refused = if service_app {
        "in the service app: grant the okta.users.read scope (Okta API Scopes) and assign it the Read-only Administrator role"
    } else {
        "give the token's admin the Read-only Administrator role"
    };
    let fix_token = if service_app {
        "check OKTA_API_CLIENT_ID and that the app's public keys hold the public half of OKTA_API_PRIVATE_KEY"
    } else {
        "create an API token (Security → API → Tokens) as an admin with at least the Read-only Administrator role, and set IDP_SERVICE_ACCOUNT to it"
    };
    match credential.get(http, &url).await.map(|r| r.status()) {
        Ok(StatusCode::NOT_FOUND) | Ok(StatusCode::OK) => report.ok(
            "API credential",
            format!("the groups API at {} accepts {names}", config.org_url),
        ),
        Ok(StatusCode::UNAUTHORIZED) => report.fail(
            "API credential",
            if service_app {
                "Okta refused the service app's access token (401)".to_string()
            } else {
                "Okta refused IDP_SERVICE_ACCOUNT (401): the token is wrong, revoked, or expired after 30 days unused".to_string()
            },
            fix_token,
        ),
        Ok(StatusCode::FORBIDDEN) => report.fail(
            "API credential",
            format!("{names} may not read users (403)"),
            fix_refused,
        ),
        Ok(StatusCode::TOO_MANY_REQUESTS) => report.fail(
            "API credential",
            "Okta's rate limit is reached (429)",
            "wait for the limit's reset and run the check again",
        ),
        Ok(status) => report.fail(
            "API credential",
            format!("the groups API answered {status}"),
            fix_token,
        ),
        Err(ApiError::Token(e)) if e.contains("invalid_scope") => report.fail(
            "API credential",
            format!("the service app may not ask for okta.users.read: {e}"),
            fix_refused,
        ),
        Err(ApiError::Token(e)) => report.fail("API credential", e, fix_token),
        Err(ApiError::Transport(e)) => report.fail(
            "API credential",
            format!("{} cannot be reached: {e}", config.org_url),
            "check the network path to Okta",
        ),
    }
    if let Some(login) = user {
        check_user(config, http, credential, login, report).await;
    }
}

/// `--user`: the user's groups as the service would read them, and what the
/// global policy decides.
async fn check_user(
    config: &Config,
    http: &reqwest::Client,
    credential: ApiCredential,
    login: &str,
    report: &mut Report,
) {
    let client = match OktaGroupsClient::with_credential(http.clone(), &config.org_url, credential)
    {
        Ok(client) => client,
        Err(e) => {
            report.fail("user", e, "fix IDP_PROVIDER_URL");
            return;
        }
    };
    match client.fetch(login).await {
        Ok(groups) => {
            let names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
            report.ok(
                "user",
                format!(
                    "{login} is in {} group(s): {}",
                    names.len(),
                    names.join(", ")
                ),
            );
            let email = if login.contains('@') { login } else { "" };
            let subject = Subject {
                login,
                email,
                groups: &groups,
            };
            match decide(&config.policy, &AllowLists::default(), &subject) {
                Decision::Allow => report.ok(
                    "global policy",
                    format!("{login} is allowed (ALLOWED_GROUPS / ALLOWED_USERS / ALLOWED_DOMAINS)"),
                ),
                Decision::Deny(reason) => report.fail(
                    "global policy",
                    format!("{login} would get 403: {reason}"),
                    "add the user or one of their groups to ALLOWED_GROUPS / ALLOWED_USERS / ALLOWED_DOMAINS, if they should pass",
                ),
            }
        }
        Err(GroupsError::UserNotFound) => report.fail(
            "user",
            format!("Okta does not know {login}"),
            "give the user's Okta login (usually the email) or id (00u…)",
        ),
        Err(e) => report.fail(
            "user",
            format!("{login}: {e}"),
            "see the API credential line above",
        ),
    }
}

/// The commands the Redis store and the shared groups use, on a throw-away key.
async fn check_redis(url: &Url, report: &mut Report) {
    let fix = "check SESSION_STORE (redis://[user:password@]host:port/db), that Redis runs, and that its ACL allows GET SET DEL EVAL EVALSHA PUBLISH SUBSCRIBE PING";
    let result = tokio::time::timeout(Duration::from_secs(5), redis_round_trip(url)).await;
    match result {
        Ok(Ok(())) => report.ok(
            "session store",
            "Redis answers PING, SET, GET, DEL, EVAL and PUBLISH",
        ),
        Ok(Err(e)) => report.fail("session store", format!("Redis: {e}"), fix),
        Err(_) => report.fail("session store", "Redis did not answer within 5 s", fix),
    }
}

async fn redis_round_trip(url: &Url) -> Result<(), String> {
    use crate::redis_connection::describe;
    let client = crate::redis_connection::client(url.as_str())?;
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| describe(&e))?;
    let key = format!("fa:check:{}", random_token());
    let step = |what: &'static str| move |e: redis::RedisError| format!("{what}: {}", describe(&e));
    redis::cmd("PING")
        .query_async::<String>(&mut conn)
        .await
        .map_err(step("PING"))?;
    redis::cmd("SET")
        .arg(&key)
        .arg("1")
        .arg("PX")
        .arg(10_000)
        .query_async::<()>(&mut conn)
        .await
        .map_err(step("SET"))?;
    let read: Option<String> = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .map_err(step("GET"))?;
    if read.as_deref() != Some("1") {
        return Err("GET did not read back what SET wrote".into());
    }
    redis::cmd("EVAL")
        .arg("return redis.call('DEL', KEYS[1])")
        .arg(1)
        .arg(&key)
        .query_async::<i64>(&mut conn)
        .await
        .map_err(step("EVAL"))?;
    redis::cmd("PUBLISH")
        .arg("fa:check")
        .arg("ping")
        .query_async::<i64>(&mut conn)
        .await
        .map_err(step("PUBLISH"))?;
    Ok(())
}
