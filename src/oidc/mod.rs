//! OpenID Connect with Okta: discovery, the authorize URL (state, nonce, PKCE),
//! the code exchange, ID-token verification (signature from JWKS, `iss`, `aud`,
//! `exp`, `nonce`, RS256 only) and refresh. The JWKS is refetched when an unknown
//! `kid` appears (key rotation), at most once per [`JWKS_REFETCH_INTERVAL`], never
//! per request; a token that lost the race for the refetch is checked again
//! with the keys the winner loaded. Tokens pushed to us (logout tokens) have a
//! refetch budget of their own. No actix types.

pub mod bearer;
pub mod logout_token;
pub mod revocation_token;

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreClaimName, CoreClaimType,
    CoreClientAuthMethod, CoreErrorResponseType, CoreGenderClaim, CoreGrantType, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm,
    CoreResponseMode, CoreResponseType, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreSubjectIdentifierType, CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AdditionalProviderMetadata, AuthorizationCode, Client, ClientId,
    ClientSecret, CsrfToken, EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet,
    IdToken, IdTokenClaims, IdTokenFields, IdTokenVerifier, IssuerUrl, JsonWebKeySet, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, ProviderMetadata, RedirectUrl,
    RefreshToken, RequestTokenError, Scope, StandardErrorResponse, StandardTokenResponse,
    TokenResponse,
};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::clock::now;
use crate::config::{Config, Secret};
use crate::error_chain::error_chain;

/// A kid we do not know triggers at most one JWKS fetch per this interval.
pub const JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(30);
/// Tokens are renewed this long before they expire.
const EXPIRY_SKEW_SECS: u64 = 30;

/// The discovery fields Okta adds that openidconnect's core type leaves out.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct OktaMetadata {
    pub end_session_endpoint: Option<Url>,
    pub revocation_endpoint: Option<Url>,
}
impl AdditionalProviderMetadata for OktaMetadata {}

/// The ID-token claims beyond the standard ones: Okta's optional `groups` claim
/// and the IdP session id `sid`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct ExtraClaims {
    #[serde(default)]
    pub groups: Option<Vec<String>>,
    #[serde(default)]
    pub sid: Option<String>,
}
impl AdditionalClaims for ExtraClaims {}

type Metadata = ProviderMetadata<
    OktaMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;
type Fields = IdTokenFields<
    ExtraClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type Tokens = StandardTokenResponse<Fields, CoreTokenType>;
type OktaIdToken = IdToken<
    ExtraClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type Claims = IdTokenClaims<ExtraClaims, CoreGenderClaim>;
type OktaClient = Client<
    ExtraClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    Tokens,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Why an OIDC step failed. The text is for logs; it never contains a token.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("OIDC discovery has not completed yet")]
    NotReady,
    #[error("discovery failed: {0}")]
    Discovery(String),
    #[error("code exchange failed: {0}")]
    Exchange(String),
    #[error("ID token rejected: {0}")]
    IdToken(String),
    /// The ID token names a key the IdP's key set does not hold, even after a
    /// refetch: a rotation not yet visible, or a key set that cannot be
    /// loaded. Not the token's fault as far as we can tell.
    #[error("ID token signed with a key the IdP does not list (yet)")]
    UnknownKey,
}

/// The outcome of a refresh that did not work.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// Okta refused the refresh token (revoked, expired, user deactivated): the
    /// session must end.
    #[error("refresh token refused: {0}")]
    Refused(String),
    /// Okta could not be asked (network, 5xx): keep the session, retry later.
    #[error("refresh failed for now: {0}")]
    Transient(String),
}

/// A verified sign-in.
#[derive(Debug)]
pub struct SignedIn {
    pub sub: String,
    pub login: String,
    pub email: String,
    pub name: String,
    pub groups_claim: Option<Vec<String>>,
    pub sid: Option<String>,
    pub tokens_expire_at: u64,
    pub refresh_token: Option<Secret>,
    pub id_token: Secret,
}

/// New tokens from a refresh.
#[derive(Debug)]
pub struct Refreshed {
    pub tokens_expire_at: u64,
    /// Okta rotates refresh tokens; `None` keeps the old one.
    pub refresh_token: Option<Secret>,
    pub id_token: Option<Secret>,
    pub groups_claim: Option<Vec<String>>,
}

/// What `/oauth2/start` must remember for the callback.
pub struct Authorize {
    pub url: Url,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: Secret,
}

struct Provider {
    client: OktaClient,
    end_session: Option<Url>,
    revocation: Option<Url>,
    jwks_uri: openidconnect::JsonWebKeySetUrl,
    jwks: RwLock<Arc<JsonWebKeySet<CoreJsonWebKey>>>,
    last_refetch: tokio::sync::Mutex<Option<Instant>>,
    /// The budget of refetches asked for by tokens pushed to us (back-channel,
    /// Universal Logout): anyone can send one with a made-up `kid`.
    last_push_refetch: tokio::sync::Mutex<Option<Instant>>,
    /// The same for API clients' bearer tokens, also anyone's to send: a
    /// made-up `kid` there must not cost a logout token its refetch.
    last_bearer_refetch: tokio::sync::Mutex<Option<Instant>>,
}

/// The relying party. Cheap to share; discovery fills it once.
pub struct Oidc {
    http: reqwest::Client,
    issuer: String,
    client_id: String,
    client_secret: Secret,
    redirect_uri: String,
    scopes: Vec<String>,
    provider: RwLock<Option<Arc<Provider>>>,
}

impl Oidc {
    pub fn new(config: &Config, http: reqwest::Client) -> Oidc {
        Oidc {
            http,
            issuer: config.issuer.clone(),
            client_id: config.client_id.clone(),
            client_secret: config.client_secret.clone(),
            redirect_uri: config.redirect_uri.clone(),
            scopes: config.scopes.clone(),
            provider: RwLock::new(None),
        }
    }

    /// Whether discovery and JWKS are loaded.
    pub fn is_ready(&self) -> bool {
        self.provider().is_some()
    }

    fn provider(&self) -> Option<Arc<Provider>> {
        self.provider.read().ok().and_then(|p| p.clone())
    }

    /// Fetches discovery and JWKS. Called at start and retried until it works.
    pub async fn discover(&self) -> Result<(), OidcError> {
        let issuer = IssuerUrl::new(self.issuer.clone())
            .map_err(|e| OidcError::Discovery(format!("issuer: {e}")))?;
        let started = Instant::now();
        let metadata = Metadata::discover_async(issuer, &self.http).await;
        timed("discovery", metadata.is_ok(), started);
        let metadata = metadata.map_err(|e| OidcError::Discovery(error_chain(&e)))?;
        let redirect = RedirectUrl::new(self.redirect_uri.clone())
            .map_err(|e| OidcError::Discovery(format!("redirect URI: {e}")))?;
        let end_session = metadata.additional_metadata().end_session_endpoint.clone();
        let revocation = metadata.additional_metadata().revocation_endpoint.clone();
        let jwks = metadata.jwks().clone();
        let jwks_uri = metadata.jwks_uri().clone();
        let client = OktaClient::from_provider_metadata(
            metadata,
            ClientId::new(self.client_id.clone()),
            Some(ClientSecret::new(self.client_secret.expose().to_owned())),
        )
        .set_redirect_uri(redirect);
        let provider = Provider {
            client,
            end_session,
            revocation,
            jwks_uri,
            jwks: RwLock::new(Arc::new(jwks)),
            last_refetch: tokio::sync::Mutex::new(None),
            last_push_refetch: tokio::sync::Mutex::new(None),
            last_bearer_refetch: tokio::sync::Mutex::new(None),
        };
        if let Ok(mut slot) = self.provider.write() {
            *slot = Some(Arc::new(provider));
        }
        Ok(())
    }

    /// A fresh authorize URL with random state, nonce and PKCE (S256) challenge.
    pub fn authorize(&self) -> Result<Authorize, OidcError> {
        self.authorize_for(None)
    }

    /// [`authorize`](Self::authorize) with another redirect URI than the
    /// configured one (several root domains: each has its own).
    pub fn authorize_for(&self, redirect_uri: Option<&str>) -> Result<Authorize, OidcError> {
        let provider = self.provider().ok_or(OidcError::NotReady)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = provider.client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for scope in self.scopes.iter().filter(|s| s.as_str() != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        if let Some(uri) = redirect_uri {
            let uri = RedirectUrl::new(uri.to_owned())
                .map_err(|e| OidcError::Discovery(format!("redirect URI: {e}")))?;
            request = request.set_redirect_uri(std::borrow::Cow::Owned(uri));
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        Ok(Authorize {
            url,
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: Secret::new(verifier.secret().clone()),
        })
    }

    /// Exchanges the code (with the PKCE verifier) and verifies the ID token.
    pub async fn finish(
        &self,
        code: &str,
        pkce_verifier: &Secret,
        nonce: &str,
    ) -> Result<SignedIn, OidcError> {
        self.finish_for(code, pkce_verifier, nonce, None).await
    }

    /// [`finish`](Self::finish) for a sign-in that [`authorize_for`](Self::authorize_for)
    /// started with `redirect_uri`: the token request must name the same one.
    pub async fn finish_for(
        &self,
        code: &str,
        pkce_verifier: &Secret,
        nonce: &str,
        redirect_uri: Option<&str>,
    ) -> Result<SignedIn, OidcError> {
        let provider = self.provider().ok_or(OidcError::NotReady)?;
        let mut request = provider
            .client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| OidcError::Exchange(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.expose().to_owned()));
        if let Some(uri) = redirect_uri {
            let uri = RedirectUrl::new(uri.to_owned())
                .map_err(|e| OidcError::Exchange(format!("redirect URI: {e}")))?;
            request = request.set_redirect_uri(std::borrow::Cow::Owned(uri));
        }
        let started = Instant::now();
        let tokens = request.request_async(&self.http).await;
        timed("token", tokens.is_ok(), started);
        let tokens = tokens.map_err(|e| OidcError::Exchange(token_error(&e)))?;
        let id_token = tokens
            .id_token()
            .ok_or_else(|| OidcError::IdToken("the token response has no id_token".into()))?;
        let nonce = Nonce::new(nonce.to_owned());
        let claims = self
            .verify(&provider, id_token, |n: Option<&Nonce>| {
                (&nonce).verify_nonce(n)
            })
            .await?;
        let groups_claim = claims.additional_claims().groups.clone();
        let sid = claims.additional_claims().sid.clone();
        let (sub, login, email, name) = identity(claims);
        Ok(SignedIn {
            sub,
            login,
            email,
            name,
            groups_claim,
            sid,
            tokens_expire_at: tokens_expiry(&tokens, claims.expiration().timestamp()),
            refresh_token: tokens
                .refresh_token()
                .map(|t| Secret::new(t.secret().clone())),
            id_token: Secret::new(id_token.to_string()),
        })
    }

    /// Renews tokens with a refresh token; checks that a returned ID token is
    /// still for `sub`.
    pub async fn refresh(
        &self,
        refresh_token: &Secret,
        sub: &str,
    ) -> Result<Refreshed, RefreshError> {
        let provider = self
            .provider()
            .ok_or_else(|| RefreshError::Transient("discovery not loaded".into()))?;
        let token = RefreshToken::new(refresh_token.expose().to_owned());
        let request = provider
            .client
            .exchange_refresh_token(&token)
            .map_err(|e| RefreshError::Transient(e.to_string()))?;
        let started = Instant::now();
        let tokens = request.request_async(&self.http).await;
        timed("token", tokens.is_ok(), started);
        let tokens = match tokens {
            Ok(tokens) => tokens,
            // Only `invalid_grant` says the refresh token itself is dead (revoked,
            // expired, user deactivated). Anything else — an outage (`server_error`,
            // `temporarily_unavailable`) or our own misconfiguration (`invalid_client`
            // after a bad secret rotation) — must not sign everybody out.
            Err(RequestTokenError::ServerResponse(e)) if e.error().as_ref() == "invalid_grant" => {
                return Err(RefreshError::Refused("invalid_grant".into()))
            }
            Err(RequestTokenError::ServerResponse(e)) => {
                if e.error().as_ref() == "invalid_client" {
                    tracing::error!("Okta refused our client credentials on refresh: check IDP_CLIENT_ID and IDP_CLIENT_SECRET");
                }
                return Err(RefreshError::Transient(format!(
                    "the IdP answered {}",
                    e.error()
                )));
            }
            Err(e) => return Err(RefreshError::Transient(token_error(&e))),
        };
        let mut id_token_exp = i64::MAX;
        let mut groups_claim = None;
        if let Some(id_token) = tokens.id_token() {
            // A refreshed ID token carries no nonce of ours to check.
            // A key-set problem (a rotation racing the refetch, a JWKS that
            // cannot be loaded) says nothing about the refresh token: retry.
            let claims = self
                .verify(&provider, id_token, |_: Option<&Nonce>| Ok(()))
                .await
                .map_err(|e| match e {
                    OidcError::UnknownKey => RefreshError::Transient(e.to_string()),
                    e => RefreshError::Refused(e.to_string()),
                })?;
            if claims.subject().as_str() != sub {
                return Err(RefreshError::Refused(
                    "refreshed ID token is for another user".into(),
                ));
            }
            id_token_exp = claims.expiration().timestamp();
            groups_claim = claims.additional_claims().groups.clone();
        }
        Ok(Refreshed {
            tokens_expire_at: tokens_expiry(&tokens, id_token_exp),
            refresh_token: tokens
                .refresh_token()
                .map(|t| Secret::new(t.secret().clone())),
            id_token: tokens.id_token().map(|t| Secret::new(t.to_string())),
            groups_claim,
        })
    }

    /// Revokes a refresh token at the revocation endpoint (RFC 7009), when
    /// discovery offered one.
    pub async fn revoke_refresh_token(&self, token: &Secret) -> Result<(), String> {
        let Some(endpoint) = self.provider().and_then(|p| p.revocation.clone()) else {
            return Ok(());
        };
        let started = Instant::now();
        let response = self
            .http
            .post(endpoint)
            .basic_auth(
                form_encode(&self.client_id),
                Some(form_encode(self.client_secret.expose())),
            )
            .form(&[
                ("token", token.expose()),
                ("token_type_hint", "refresh_token"),
            ])
            .send()
            .await;
        crate::metrics::observed::okta_call(
            "revoke",
            response.as_ref().ok().map(|r| r.status().as_u16()),
            started.elapsed(),
        );
        let response = response.map_err(|e| error_chain(&e))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("the IdP answered {}", response.status()))
        }
    }

    /// The configured issuer, which tokens from the IdP must name exactly.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Our client id, which tokens for us must name in `aud`.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The IdP's current signing keys, for tokens verified outside
    /// openidconnect (back-channel logout tokens). Keys jsonwebtoken cannot
    /// read are left out. `None` before discovery.
    pub fn signing_keys(&self) -> Option<jsonwebtoken::jwk::JwkSet> {
        let provider = self.provider()?;
        let jwks = provider.jwks.read().ok().map(|j| Arc::clone(&j))?;
        Some(to_jwk_set(&jwks))
    }

    /// Reloads the JWKS after a token pushed to us named an unknown `kid`, at
    /// most once per [`JWKS_REFETCH_INTERVAL`] under a budget of its own (not
    /// the one ID tokens use). Returns whether new keys were loaded.
    pub async fn reload_signing_keys(&self) -> bool {
        match self.provider() {
            Some(provider) => {
                self.refetch_jwks_under(&provider, &provider.last_push_refetch)
                    .await
            }
            None => false,
        }
    }

    /// [`reload_signing_keys`](Self::reload_signing_keys) for a bearer token,
    /// under the bearer tokens' own budget.
    pub async fn reload_signing_keys_for_bearer(&self) -> bool {
        match self.provider() {
            Some(provider) => {
                self.refetch_jwks_under(&provider, &provider.last_bearer_refetch)
                    .await
            }
            None => false,
        }
    }

    /// Okta's sign-out URL, when discovery offered `end_session_endpoint`.
    pub fn end_session_url(
        &self,
        id_token_hint: &str,
        post_logout_redirect_uri: &str,
    ) -> Option<Url> {
        let mut url = self.provider()?.end_session.clone()?;
        url.query_pairs_mut()
            .append_pair("id_token_hint", id_token_hint)
            .append_pair("post_logout_redirect_uri", post_logout_redirect_uri);
        Some(url)
    }

    /// Verifies an ID token; on an unknown `kid` refetches the JWKS (rate-limited)
    /// and tries once more.
    async fn verify<'t, N>(
        &self,
        provider: &Provider,
        token: &'t OktaIdToken,
        nonce: N,
    ) -> Result<&'t Claims, OidcError>
    where
        N: Fn(Option<&Nonce>) -> Result<(), String>,
    {
        let first = token.claims(&self.verifier(provider), &nonce);
        match first {
            Err(openidconnect::ClaimsVerificationError::SignatureVerification(
                openidconnect::SignatureVerificationError::NoMatchingKey,
            )) => {
                // Rate-limited or not, check again with the keys current now:
                // a concurrent sign-in may just have loaded the new key.
                self.refetch_jwks(provider).await;
                match token.claims(&self.verifier(provider), &nonce) {
                    Err(openidconnect::ClaimsVerificationError::SignatureVerification(
                        openidconnect::SignatureVerificationError::NoMatchingKey,
                    )) => Err(OidcError::UnknownKey),
                    other => other.map_err(|e| OidcError::IdToken(e.to_string())),
                }
            }
            other => other.map_err(|e| OidcError::IdToken(e.to_string())),
        }
    }

    #[allow(clippy::expect_used, reason = "discovery parsed this issuer already")]
    fn verifier(&self, provider: &Provider) -> IdTokenVerifier<'static, CoreJsonWebKey> {
        let jwks = provider
            .jwks
            .read()
            .map(|j| JsonWebKeySet::clone(&j))
            .unwrap_or_else(|_| JsonWebKeySet::new(Vec::new()));
        IdTokenVerifier::new_confidential_client(
            ClientId::new(self.client_id.clone()),
            ClientSecret::new(self.client_secret.expose().to_owned()),
            // Discovery already checked that this parses.
            IssuerUrl::new(self.issuer.clone()).expect("issuer parsed at discovery"),
            jwks,
        )
        .set_allowed_algs([CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256])
    }

    /// Returns whether a new JWKS was loaded.
    async fn refetch_jwks(&self, provider: &Provider) -> bool {
        self.refetch_jwks_under(provider, &provider.last_refetch)
            .await
    }

    /// Refetches unless `budget` saw a refetch in the last interval. Callers
    /// that wait here while another refetches find the new keys afterwards.
    async fn refetch_jwks_under(
        &self,
        provider: &Provider,
        budget: &tokio::sync::Mutex<Option<Instant>>,
    ) -> bool {
        let mut last = budget.lock().await;
        if last.is_some_and(|at| at.elapsed() < JWKS_REFETCH_INTERVAL) {
            return false;
        }
        *last = Some(Instant::now());
        let started = Instant::now();
        let fetched = JsonWebKeySet::fetch_async(&provider.jwks_uri, &self.http).await;
        timed("keys", fetched.is_ok(), started);
        match fetched {
            Ok(jwks) => {
                tracing::info!(keys = jwks.keys().len(), "reloaded the IdP signing keys");
                if let Ok(mut slot) = provider.jwks.write() {
                    *slot = Arc::new(jwks);
                }
                true
            }
            Err(e) => {
                tracing::warn!(error = %error_chain(&e), "could not reload the IdP signing keys");
                false
            }
        }
    }
}

/// A call to the IdP through the OpenID Connect client, which tells success
/// from failure but not the status: `2xx`, else `error`.
fn timed(endpoint: &'static str, ok: bool, started: Instant) {
    crate::metrics::observed::okta_call(endpoint, ok.then_some(200), started.elapsed());
}

trait VerifyNonce {
    fn verify_nonce(self, claim: Option<&Nonce>) -> Result<(), String>;
}

impl VerifyNonce for &Nonce {
    fn verify_nonce(self, claim: Option<&Nonce>) -> Result<(), String> {
        openidconnect::NonceVerifier::verify(self, claim)
    }
}

/// The same keys in jsonwebtoken's type, one key at a time so that one key it
/// does not understand does not hide the others.
fn to_jwk_set(jwks: &JsonWebKeySet<CoreJsonWebKey>) -> jsonwebtoken::jwk::JwkSet {
    let keys = jwks
        .keys()
        .iter()
        .filter_map(|key| {
            let json = serde_json::to_value(key).ok()?;
            serde_json::from_value(json).ok()
        })
        .collect();
    jsonwebtoken::jwk::JwkSet { keys }
}

/// `(sub, login, email, name)`. An email the IdP does not vouch for
/// (`email_verified` absent or false) is left out: anyone may type any address
/// into a profile, so it must neither match `allowed_users`/`allowed_domains`
/// nor reach apps in `X-Auth-Request-Email`.
fn identity(claims: &Claims) -> (String, String, String, String) {
    let sub = claims.subject().as_str().to_owned();
    let email = claims
        .email()
        .filter(|_| claims.email_verified() == Some(true))
        .map(|e| e.as_str().to_owned())
        .unwrap_or_default();
    let login = claims
        .preferred_username()
        .map(|u| u.as_str().to_owned())
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| {
            if email.is_empty() {
                sub.clone()
            } else {
                email.clone()
            }
        });
    let name = claims
        .name()
        .and_then(|n| n.get(None))
        .map(|n| n.as_str().to_owned())
        .unwrap_or_default();
    (sub, login, email, name)
}

/// The earlier of the access token's `expires_in` and the ID token's `exp`, minus a skew.
fn tokens_expiry(tokens: &Tokens, id_token_exp: i64) -> u64 {
    let now = now();
    let access = tokens
        .expires_in()
        .map(|d| now + d.as_secs())
        .unwrap_or(u64::MAX);
    let id = u64::try_from(id_token_exp).unwrap_or(0);
    access.min(id).saturating_sub(EXPIRY_SKEW_SECS).max(now)
}

fn token_error<RE, T>(e: &RequestTokenError<RE, T>) -> String
where
    RE: std::error::Error + 'static,
    T: openidconnect::ErrorResponse + 'static,
{
    match e {
        RequestTokenError::ServerResponse(r) => format!("the IdP answered: {r}"),
        other => error_chain(other),
    }
}

/// Client credentials in HTTP Basic are form-encoded first (RFC 6749 §2.3.1).
fn form_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
