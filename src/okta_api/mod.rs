//! The credential for Okta's management API, and the one way to call it: an
//! `SSWS` API token (`IDP_SERVICE_ACCOUNT`), or an OAuth 2.0 service app
//! (`OKTA_API_CLIENT_ID` + `OKTA_API_PRIVATE_KEY`): client credentials with a
//! `private_key_jwt` assertion at the org's token endpoint, scope
//! `okta.users.read`, the access token kept until shortly before it expires
//! and fetched once for all concurrent callers, and DPoP when Okta asks for it.
//! It knows nothing of groups or caching policy: callers get Okta's response.
//! It never logs or returns a token, key or secret.

pub mod dpop;
pub mod key;

use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::Header;
use reqwest::header::{HeaderMap, ACCEPT, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::clock::now;
use crate::error_chain::error_chain;
use crate::random::random_token;
use crate::secret::Secret;
use dpop::DpopKey;
use key::AssertionKey;

/// The one scope the service asks for: `listUserGroups` (and `getUser`) need it.
pub const SCOPE: &str = "okta.users.read";

/// How long before its expiry an access token is replaced (at most).
const RENEW_BEFORE: Duration = Duration::from_secs(300);

/// Why a call could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// Okta could not be reached, or answered something unreadable.
    #[error("Okta API unreachable: {0}")]
    Transport(String),
    /// The service app got no access token.
    #[error("Okta refused the service app's token request: {0}")]
    Token(String),
}

/// `OKTA_API_CLIENT_ID` + `OKTA_API_PRIVATE_KEY`, as configured.
#[derive(Debug, Clone)]
pub struct ServiceAppConfig {
    pub client_id: String,
    pub key: AssertionKey,
}

/// The configured credential.
#[derive(Clone, Debug)]
pub enum ApiCredential {
    Ssws(Secret),
    ServiceApp(Arc<ServiceApp>),
}

impl ApiCredential {
    /// The service app's credential for the org at `org_url`; makes this
    /// process's DPoP key.
    pub fn service_app(config: &ServiceAppConfig, org_url: &str) -> Result<ApiCredential, String> {
        Ok(ApiCredential::ServiceApp(Arc::new(ServiceApp::new(
            config, org_url,
        )?)))
    }

    /// The variable(s) an operator fixes when Okta refuses this credential.
    pub fn names(&self) -> &'static str {
        match self {
            ApiCredential::Ssws(_) => "IDP_SERVICE_ACCOUNT",
            ApiCredential::ServiceApp(_) => "OKTA_API_CLIENT_ID / OKTA_API_PRIVATE_KEY",
        }
    }

    /// `GET url` with this credential. A 401 from the API with a stale token
    /// costs one new token and one retry; a DPoP nonce challenge one retry.
    pub async fn get(
        &self,
        http: &reqwest::Client,
        url: &Url,
    ) -> Result<reqwest::Response, ApiError> {
        match self {
            ApiCredential::Ssws(token) => http
                .get(url.clone())
                .header(AUTHORIZATION, format!("SSWS {}", token.expose()))
                .header(ACCEPT, "application/json")
                .send()
                .await
                .map_err(|e| ApiError::Transport(error_chain(&e))),
            ApiCredential::ServiceApp(app) => app.get(http, url).await,
        }
    }
}

/// An Okta API service app: its assertion key, this process's DPoP key, and
/// the access token in use.
///
/// Each replica keeps its own token rather than sharing one through Redis: a
/// DPoP-bound token is usable only with the DPoP private key it was issued
/// for, and that key never leaves the process. The cost is one token request
/// per replica per hour.
pub struct ServiceApp {
    client_id: String,
    key: AssertionKey,
    token_url: Url,
    dpop: DpopKey,
    /// Held while a token is fetched, so concurrent callers wait for that one.
    state: tokio::sync::Mutex<TokenState>,
}

impl std::fmt::Debug for ServiceApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceApp")
            .field("client_id", &self.client_id)
            .field("token_url", &self.token_url.as_str())
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct TokenState {
    token: Option<AccessToken>,
    /// Okta asked for DPoP proofs (learned once, kept).
    use_dpop: bool,
    /// The token endpoint's latest DPoP nonce.
    nonce: Option<String>,
}

#[derive(Clone)]
struct AccessToken {
    value: Secret,
    dpop: bool,
    renew_at: Instant,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    token_type: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize, Default)]
struct OAuthError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

#[derive(Serialize)]
struct AssertionClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
    jti: String,
}

impl ServiceApp {
    fn new(config: &ServiceAppConfig, org_url: &str) -> Result<ServiceApp, String> {
        let token_url = Url::parse(&format!(
            "{}/oauth2/v1/token",
            org_url.trim_end_matches('/')
        ))
        .map_err(|e| format!("org URL {org_url}: {e}"))?;
        Ok(ServiceApp {
            client_id: config.client_id.clone(),
            key: config.key.clone(),
            token_url,
            dpop: DpopKey::generate()?,
            state: tokio::sync::Mutex::new(TokenState::default()),
        })
    }

    async fn get(&self, http: &reqwest::Client, url: &Url) -> Result<reqwest::Response, ApiError> {
        let mut token = self.token(http).await?;
        let mut nonce: Option<String> = None;
        let mut renewed = false;
        loop {
            let response = self.call(http, url, &token, nonce.as_deref()).await?;
            if response.status() != StatusCode::UNAUTHORIZED {
                return Ok(response);
            }
            if let Some(fresh) = nonce_challenge(response.headers()).filter(|_| nonce.is_none()) {
                nonce = Some(fresh);
                continue;
            }
            if renewed {
                return Ok(response);
            }
            // Revoked or expired early: one new token, one retry.
            self.forget(&token).await;
            token = self.token(http).await?;
            renewed = true;
        }
    }

    async fn call(
        &self,
        http: &reqwest::Client,
        url: &Url,
        token: &AccessToken,
        nonce: Option<&str>,
    ) -> Result<reqwest::Response, ApiError> {
        let value = token.value.expose();
        let mut request = http.get(url.clone()).header(ACCEPT, "application/json");
        request = if token.dpop {
            let proof = self
                .dpop
                .proof("GET", url, nonce, Some(value))
                .map_err(ApiError::Token)?;
            request
                .header(AUTHORIZATION, format!("DPoP {value}"))
                .header("DPoP", proof)
        } else {
            request.bearer_auth(value)
        };
        request
            .send()
            .await
            .map_err(|e| ApiError::Transport(error_chain(&e)))
    }

    /// The token in use, or a new one; one request for all concurrent callers.
    async fn token(&self, http: &reqwest::Client) -> Result<AccessToken, ApiError> {
        let mut state = self.state.lock().await;
        if let Some(token) = state.token.as_ref().filter(|t| Instant::now() < t.renew_at) {
            return Ok(token.clone());
        }
        let token = self.request_token(http, &mut state).await?;
        state.token = Some(token.clone());
        Ok(token)
    }

    /// Drops `stale` unless another caller has replaced it already.
    async fn forget(&self, stale: &AccessToken) {
        let mut state = self.state.lock().await;
        if state.token.as_ref().is_some_and(|t| t.value == stale.value) {
            state.token = None;
        }
    }

    async fn request_token(
        &self,
        http: &reqwest::Client,
        state: &mut TokenState,
    ) -> Result<AccessToken, ApiError> {
        // Without DPoP first (unless Okta asked for it before); Okta says
        // `invalid_dpop_proof` when the app requires it, then `use_dpop_nonce`.
        for _ in 0..4 {
            let mut request = http
                .post(self.token_url.clone())
                .header(ACCEPT, "application/json")
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("scope", SCOPE),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", &self.assertion()?),
                ]);
            if state.use_dpop {
                let proof = self
                    .dpop
                    .proof("POST", &self.token_url, state.nonce.as_deref(), None)
                    .map_err(ApiError::Token)?;
                request = request.header("DPoP", proof);
            }
            let started = Instant::now();
            let response = request
                .send()
                .await
                .map_err(|e| ApiError::Transport(error_chain(&e)))?;
            let status = response.status();
            let nonce = header_value(response.headers(), "dpop-nonce");
            if status.is_success() {
                let body: TokenResponse = response
                    .json()
                    .await
                    .map_err(|e| ApiError::Transport(format!("token response: {e}")))?;
                // Okta's tokens live an hour; a larger or absurd answer is capped
                // (a day) so the expiry cannot overflow.
                let lifetime = Duration::from_secs(body.expires_in.unwrap_or(3600).min(86_400));
                let dpop = body.token_type.eq_ignore_ascii_case("DPoP");
                if dpop && !state.use_dpop {
                    return Err(ApiError::Token(
                        "a DPoP token for a request without a proof".into(),
                    ));
                }
                tracing::debug!(
                    dpop,
                    lifetime_secs = lifetime.as_secs(),
                    "Okta API access token issued"
                );
                return Ok(AccessToken {
                    value: Secret::new(body.access_token),
                    dpop,
                    renew_at: started + lifetime - RENEW_BEFORE.min(lifetime / 5),
                });
            }
            let error: OAuthError = response.json().await.unwrap_or_default();
            match error.error.as_str() {
                "use_dpop_nonce" if nonce.is_some() => {
                    state.use_dpop = true;
                    state.nonce = nonce;
                }
                "invalid_dpop_proof" if !state.use_dpop => state.use_dpop = true,
                _ => {
                    return Err(ApiError::Token(format!(
                        "{status} {} {}",
                        error.error, error.error_description
                    )))
                }
            }
        }
        Err(ApiError::Token(
            "Okta kept asking for another DPoP proof".into(),
        ))
    }

    /// A fresh `private_key_jwt` client assertion for the token endpoint.
    fn assertion(&self) -> Result<String, ApiError> {
        let mut header = Header::new(self.key.algorithm);
        header.kid = self.key.kid.clone();
        let now = now();
        let claims = AssertionClaims {
            iss: &self.client_id,
            sub: &self.client_id,
            aud: self.token_url.as_str(),
            iat: now,
            exp: now + 300,
            jti: random_token(),
        };
        jsonwebtoken::encode(&header, &claims, &self.key.key)
            .map_err(|e| ApiError::Token(format!("client assertion: {e}")))
    }
}

fn header_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The nonce of a resource server's `WWW-Authenticate: DPoP error="use_dpop_nonce"`.
fn nonce_challenge(headers: &HeaderMap) -> Option<String> {
    let challenged = headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("use_dpop_nonce"));
    challenged
        .then(|| header_value(headers, "dpop-nonce"))
        .flatten()
}
