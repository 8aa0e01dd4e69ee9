//! The sign-in flow against the discovered provider: the authorize URL
//! (state, nonce, PKCE S256), the code exchange with ID-token verification
//! (openidconnect: signature from the key store, `iss`, `aud`, `exp`, `nonce`,
//! RS256 only), refresh, revocation of a refresh token (RFC 7009) and Okta's
//! end-session URL. It owns turning the IdP's answers into [`SignedIn`] and
//! [`Refreshed`]; it must not store sessions or decide access, and its errors
//! never contain a token.

use std::time::Instant;

use openidconnect::core::{CoreAuthenticationFlow, CoreJwsSigningAlgorithm};

use super::id_token_key::{self, IdTokenKey};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IdTokenVerifier, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken,
    RequestTokenError, Scope, TokenResponse,
};
use url::Url;

use super::discovery::{Claims, OktaIdToken, Provider, Tokens};
use super::keys::Budget;
use super::{timed, Oidc, OidcError, RefreshError};
use crate::clock::now;
use crate::error_chain::error_chain;
use crate::identity::Identity;
use crate::redirect::shortened;
use crate::secret::{Secret, SecretRef};

/// Tokens are renewed this long before they expire.
const EXPIRY_SKEW_SECS: u64 = 30;

/// A verified sign-in.
#[derive(Debug)]
pub struct SignedIn {
    pub identity: Identity,
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

impl Oidc {
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
        let request = || {
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
            Ok::<_, OidcError>(request)
        };
        let started = Instant::now();
        let mut tokens = request()?.request_async(&self.http).await;
        if matches!(&tokens, Err(e) if connection_lost(e)) {
            // A kept-alive connection the IdP had just closed: the request
            // most likely never reached it. Sent once more on a fresh one. Had
            // it arrived, the code is spent and the IdP refuses the second
            // use (`invalid_grant`): the same failed sign-in as without it.
            tracing::info!(
                "the token request's connection closed before an answer; sending it once more"
            );
            tokens = request()?.request_async(&self.http).await;
        }
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
            identity: Identity::new(sub, login, email, name)
                .with_groups_claim(groups_claim)
                .with_sid(sid),
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
        refresh_token: SecretRef<'_>,
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
    pub async fn revoke_refresh_token(&self, token: SecretRef<'_>) -> Result<(), String> {
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

    /// [`end_session_url`](Self::end_session_url) as a string of at most
    /// `max_len` bytes. A long target can push Okta's URL (ID token + encoded
    /// target) past what proxies take: it is cut to its origin + path, else
    /// the origin's `/` ([`shortened`]); `None` when even that does not fit
    /// (sign out here only) or discovery offered no end-session endpoint.
    pub fn end_session_url_within(
        &self,
        id_token_hint: &str,
        post_logout_redirect_uri: &str,
        max_len: usize,
    ) -> Option<String> {
        let fits = |target: &str| {
            self.end_session_url(id_token_hint, target)
                .map(String::from)
                .filter(|url| url.len() <= max_len)
        };
        fits(post_logout_redirect_uri).or_else(|| {
            shortened(post_logout_redirect_uri, |target| fits(target).is_some())
                .and_then(|target| fits(&target))
        })
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
                provider.keys.refetch(&self.http, Budget::IdTokens).await;
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
    fn verifier(&self, provider: &Provider) -> IdTokenVerifier<'static, IdTokenKey> {
        let jwks = id_token_key::key_set(&provider.keys.current());
        IdTokenVerifier::new_confidential_client(
            ClientId::new(self.client_id.clone()),
            ClientSecret::new(self.client_secret.expose().to_owned()),
            // Discovery already checked that this parses.
            IssuerUrl::new(self.issuer.clone()).expect("issuer parsed at discovery"),
            jwks,
        )
        .set_allowed_algs([CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256])
    }
}

trait VerifyNonce {
    fn verify_nonce(self, claim: Option<&Nonce>) -> Result<(), String>;
}

impl VerifyNonce for &Nonce {
    fn verify_nonce(self, claim: Option<&Nonce>) -> Result<(), String> {
        openidconnect::NonceVerifier::verify(self, claim)
    }
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

/// The token request failed in transport on a connection that was open: it
/// closed (or broke) before an answer came. Not a timeout (the IdP is slow,
/// and a second wait would double the user's) and not a failed connect (the
/// IdP is not there, and a fresh connection would fail the same way).
fn connection_lost<T>(
    e: &RequestTokenError<openidconnect::HttpClientError<reqwest::Error>, T>,
) -> bool
where
    T: openidconnect::ErrorResponse + 'static,
{
    // openidconnect's reqwest client reports transport failures only as `Reqwest`.
    matches!(
        e,
        RequestTokenError::Request(openidconnect::HttpClientError::Reqwest(e))
            if !e.is_timeout() && !e.is_connect() && (e.is_request() || e.is_body())
    )
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
