//! API clients (`BEARER_AUDIENCE`): an Okta custom authorization server's access
//! token in `Authorization: Bearer`, verified locally against the issuer's JWKS
//! with no Okta call per request: the shared checks (RS256, key, `iss`, `aud`,
//! `exp`, `nbf`) by [`keys::verify_jws`], then this module's own (`exp` by our
//! clock, optional `cid` allow-list, required scopes). A verified token is cached,
//! keyed by its SHA-256, until its `exp`; the most recent ones are also kept
//! by their exact bytes (`recent`), so that a warm check hashes nothing with
//! SHA-256. Errors never contain the token; the org server's opaque tokens get
//! their own error. No actix types.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use moka::future::Cache;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::keys::{self, Budget, JwsError, KeyError, Rules, Typ};
use super::Oidc;
use crate::access::TokenHot;
use crate::clock::now;
use recent::Recent;

mod recent;

/// Clock difference tolerated between Okta and us, in seconds.
const CLOCK_SKEW: u64 = 30;
/// Verified tokens kept at most (each entry is a few hundred bytes).
const CACHE_CAPACITY: u64 = 50_000;
/// Longest an access token is longer than a JWT should be; Okta's are ~1 kB.
const MAX_TOKEN_LEN: usize = 8 * 1024;

/// `BEARER_AUDIENCE`, `BEARER_CLIENT_IDS`, `BEARER_SCOPES`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BearerSettings {
    /// A token's `aud` must contain it (e.g. `api://default`).
    pub audience: String,
    /// When not empty, a token's `cid` must be one of these.
    pub client_ids: Vec<String>,
    /// Every one must be in the token's `scp`.
    pub scopes: Vec<String>,
}

impl BearerSettings {
    /// `Ok(None)` when `BEARER_AUDIENCE` is unset (bearer tokens are not accepted).
    pub fn parse(
        audience: Option<String>,
        client_ids: Option<String>,
        scopes: Option<String>,
    ) -> Result<Option<BearerSettings>, Vec<String>> {
        let list = |v: Option<String>| -> Vec<String> {
            v.unwrap_or_default()
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        };
        let (client_ids, scopes) = (list(client_ids), list(scopes));
        let Some(audience) = audience else {
            let mut problems = Vec::new();
            for (name, given) in [
                ("BEARER_CLIENT_IDS", !client_ids.is_empty()),
                ("BEARER_SCOPES", !scopes.is_empty()),
            ] {
                if given {
                    problems.push(format!(
                        "{name} is set but BEARER_AUDIENCE is not: set BEARER_AUDIENCE to the \
                         audience of your Okta authorization server (e.g. api://default) to \
                         accept access tokens, or remove {name}"
                    ));
                }
            }
            return if problems.is_empty() {
                Ok(None)
            } else {
                Err(problems)
            };
        };
        Ok(Some(BearerSettings {
            audience,
            client_ids,
            scopes,
        }))
    }
}

/// Who a verified access token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenIdentity {
    /// The Okta user id (`uid`) of a user's token; the client id (`cid`) of a
    /// client-credentials token.
    pub subject: String,
    /// The user's login (`sub`), or the client id for a machine.
    pub login: String,
    /// The login when it is an email address, else empty.
    pub email: String,
    /// A client-credentials token: no user, no groups.
    pub machine: bool,
    /// The token's `groups` claim, if the authorization server adds one.
    pub groups_claim: Option<Vec<String>>,
    /// The token's `exp`.
    pub expires_at: u64,
    /// What its checks keep (header values, groups link, signed identity);
    /// empty in a copy.
    pub hot: TokenHot,
}

/// Why a bearer token was refused. The text goes to logs and to
/// `WWW-Authenticate`'s `error_description`; it never contains the token.
#[derive(Debug, Clone, Copy, thiserror::Error, PartialEq, Eq)]
pub enum BearerError {
    #[error("the issuer's signing keys are not loaded yet")]
    NotReady,
    #[error(
        "the access token is not a JWT: Okta's org authorization server issues opaque tokens \
         that only Okta can read; use a custom authorization server"
    )]
    Opaque,
    #[error("the access token is malformed")]
    Malformed,
    #[error("the access token's alg must be RS256")]
    Algorithm,
    #[error("the access token is signed with a key the issuer does not list")]
    UnknownKey,
    #[error("the access token's signature does not verify")]
    Signature,
    #[error("the access token is from another issuer")]
    Issuer,
    #[error("the access token is for another audience")]
    Audience,
    #[error("the access token has expired")]
    Expired,
    #[error("the access token is not valid yet")]
    NotYetValid,
    #[error("the access token's client (cid) is not allowed")]
    Client,
    #[error("the access token lacks a required scope")]
    Scope,
}

impl BearerError {
    /// RFC 6750 §3.1: a missing scope is `insufficient_scope` (403), the rest
    /// `invalid_token` (401), except keys not loaded, which is ours (503).
    pub fn is_insufficient_scope(self) -> bool {
        self == BearerError::Scope
    }
}

use BearerError as E;

impl From<JwsError> for BearerError {
    fn from(e: JwsError) -> Self {
        match e {
            // Okta's org server hands out opaque tokens (no dots, or a JWE's five parts).
            JwsError::NotCompact => E::Opaque,
            JwsError::Algorithm => E::Algorithm,
            // Without a kid and with several keys, a reload may still find it.
            JwsError::UnknownKey | JwsError::NoKeyId => E::UnknownKey,
            JwsError::Signature => E::Signature,
            JwsError::Issuer => E::Issuer,
            JwsError::Audience => E::Audience,
            JwsError::Expired => E::Expired,
            JwsError::NotYetValid => E::NotYetValid,
            JwsError::UnreadableHeader
            | JwsError::Type
            | JwsError::Critical
            | JwsError::ExpiryNotATime
            | JwsError::NotBeforeNotATime
            | JwsError::IssuedAtMissing
            | JwsError::IssuedInFuture
            | JwsError::TooOld
            | JwsError::Malformed => E::Malformed,
        }
    }
}

impl KeyError for BearerError {
    fn not_ready() -> Self {
        E::NotReady
    }

    fn is_unknown_key(&self) -> bool {
        *self == E::UnknownKey
    }
}

/// The token of an `Authorization: Bearer …` header, as sent (bytes that may
/// not be text: such a token is refused when it is verified); `None` for any
/// other scheme.
pub fn bearer_token(authorization: &[u8]) -> Option<&[u8]> {
    let authorization = trim_blanks(authorization);
    let space = authorization.iter().position(|&b| b == b' ')?;
    let (scheme, token) = authorization.split_at(space);
    scheme
        .eq_ignore_ascii_case(b"bearer")
        .then_some(trim_blanks(token))
}

/// `bytes` without leading and trailing spaces and tabs: the only blanks a
/// header value may hold (any other control byte stays, and is refused).
fn trim_blanks(bytes: &[u8]) -> &[u8] {
    let blank = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes.iter().position(|b| !blank(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !blank(b))
        .map_or(start, |last| last + 1);
    &bytes[start..end]
}

/// Verifies access tokens and remembers the ones that passed until they expire.
pub struct BearerVerifier {
    settings: BearerSettings,
    issuer: String,
    cache: Cache<[u8; 32], Arc<TokenIdentity>>,
    /// The last tokens verified or found in `cache`, by their exact bytes.
    recent: Recent,
}

/// Each cached token lives until its own `exp`.
struct UntilExpiry;

impl moka::Expiry<[u8; 32], Arc<TokenIdentity>> for UntilExpiry {
    fn expire_after_create(
        &self,
        _: &[u8; 32],
        value: &Arc<TokenIdentity>,
        _: Instant,
    ) -> Option<Duration> {
        Some(Duration::from_secs(value.expires_at.saturating_sub(now())))
    }
}

impl BearerVerifier {
    pub fn new(settings: BearerSettings, issuer: &str) -> BearerVerifier {
        BearerVerifier {
            settings,
            issuer: issuer.to_string(),
            cache: Cache::builder()
                .max_capacity(CACHE_CAPACITY)
                .expire_after(UntilExpiry)
                .build(),
            recent: Recent::new(),
        }
    }

    /// The identity of a valid token: from the cache, else verified against the
    /// issuer's keys (an unknown `kid` reloads them once, rate-limited in [`Oidc`]).
    pub async fn verify(&self, oidc: &Oidc, token: &str) -> Result<Arc<TokenIdentity>, E> {
        let now = now();
        if let Some(known) = self.recent_at(token.as_bytes(), now) {
            return Ok(known);
        }
        let key = cache_key(token);
        if let Some(known) = self.cached(token, &key, now).await {
            return known;
        }
        let identity = oidc
            .with_signing_keys(Budget::Bearer, |keys| {
                self.verify_with_keys(token, keys, crate::clock::now())
            })
            .await?;
        Ok(self.remember(token, key, identity).await)
    }

    /// The identity of a token verified lately, byte for byte this one, while
    /// it holds; `None` asks [`verify`](Self::verify). The bytes need not be
    /// text: only a verified token's are kept.
    pub fn verified_lately(&self, token: &[u8]) -> Option<Arc<TokenIdentity>> {
        self.recent_at(token, now())
    }

    /// [`verify`](Self::verify) with the given keys (no reload): the cache,
    /// else the keys. For benchmarks and tests without an IdP.
    pub async fn verify_with_cache(
        &self,
        token: &str,
        keys: &JwkSet,
    ) -> Result<Arc<TokenIdentity>, E> {
        self.verify_with_cache_at(token, keys, now()).await
    }

    /// [`verify_with_cache`](Self::verify_with_cache) at time `now`.
    pub async fn verify_with_cache_at(
        &self,
        token: &str,
        keys: &JwkSet,
        now: u64,
    ) -> Result<Arc<TokenIdentity>, E> {
        if let Some(known) = self.recent_at(token.as_bytes(), now) {
            return Ok(known);
        }
        let key = cache_key(token);
        if let Some(known) = self.cached(token, &key, now).await {
            return known;
        }
        let identity = self.verify_with_keys(token, keys, now)?;
        Ok(self.remember(token, key, identity).await)
    }

    /// The identity of a token verified lately, byte for byte this one, while
    /// its `exp` (with the skew) is ahead. An expired one leaves the table and
    /// is answered by [`cached`](Self::cached), as before.
    fn recent_at(&self, token: &[u8], now: u64) -> Option<Arc<TokenIdentity>> {
        let known = self.recent.get(token)?;
        if now < known.expires_at + CLOCK_SKEW {
            return Some(known);
        }
        self.recent.forget(token);
        None
    }

    /// A cached token's identity, or `Expired` once its `exp` passed.
    async fn cached(
        &self,
        token: &str,
        key: &[u8; 32],
        now: u64,
    ) -> Option<Result<Arc<TokenIdentity>, E>> {
        let hit = self.cache.get(key).await?;
        if now < hit.expires_at + CLOCK_SKEW {
            self.recent.put(token, hit.clone());
            return Some(Ok(hit));
        }
        self.cache.invalidate(key).await;
        Some(Err(E::Expired))
    }

    async fn remember(
        &self,
        token: &str,
        key: [u8; 32],
        identity: TokenIdentity,
    ) -> Arc<TokenIdentity> {
        let identity = Arc::new(identity);
        self.cache.insert(key, identity.clone()).await;
        self.recent.put(token, identity.clone());
        identity
    }

    /// Verifies a token against the given keys at time `now` (seconds since the
    /// epoch). The header is checked before the key is chosen, the signature
    /// before any claim is believed.
    pub fn verify_with_keys(
        &self,
        token: &str,
        keys: &JwkSet,
        now: u64,
    ) -> Result<TokenIdentity, E> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(E::Malformed);
        }
        let issuers = [self.issuer.as_str()];
        let rules = Rules {
            typ: Typ::Any,
            issuers: &issuers,
            audience: &self.settings.audience,
            required: &["exp"],
            leeway: CLOCK_SKEW,
            max_age: None,
        };
        let claims = keys::verify_jws(token, keys, &rules, now)?;
        let claims: Claims =
            serde_json::from_value(Value::Object(claims)).map_err(|_| E::Malformed)?;
        // jsonwebtoken checked exp and nbf with its own clock; ours decides.
        if claims.exp + CLOCK_SKEW <= now {
            return Err(E::Expired);
        }
        if claims.nbf.is_some_and(|nbf| nbf > now + CLOCK_SKEW) {
            return Err(E::NotYetValid);
        }
        if !self.settings.client_ids.is_empty()
            && !claims
                .cid
                .as_ref()
                .is_some_and(|cid| self.settings.client_ids.contains(cid))
        {
            return Err(E::Client);
        }
        let scopes = claims.scp.as_ref().map(Scopes::list).unwrap_or_default();
        if !self
            .settings
            .scopes
            .iter()
            .all(|wanted| scopes.contains(&wanted.as_str()))
        {
            return Err(E::Scope);
        }
        identity(claims)
    }
}

/// The claims of an Okta access token that matter here.
#[derive(Deserialize)]
struct Claims {
    exp: u64,
    nbf: Option<u64>,
    sub: Option<String>,
    uid: Option<String>,
    cid: Option<String>,
    scp: Option<Scopes>,
    groups: Option<Vec<String>>,
}

/// Okta writes `scp` as an array; RFC 9068's `scope` style (one string) is read too.
#[derive(Deserialize)]
#[serde(untagged)]
enum Scopes {
    List(Vec<String>),
    Text(String),
}

impl Scopes {
    fn list(&self) -> Vec<&str> {
        match self {
            Scopes::List(list) => list.iter().map(String::as_str).collect(),
            Scopes::Text(text) => text.split_whitespace().collect(),
        }
    }
}

fn identity(claims: Claims) -> Result<TokenIdentity, E> {
    let non_empty = |v: Option<String>| v.filter(|s| !s.is_empty());
    let (uid, cid, sub) = (
        non_empty(claims.uid),
        non_empty(claims.cid),
        non_empty(claims.sub),
    );
    match (uid, cid) {
        (Some(uid), _) => {
            let login = sub.unwrap_or_else(|| uid.clone());
            let email = if login.contains('@') {
                login.clone()
            } else {
                String::new()
            };
            Ok(TokenIdentity {
                subject: uid,
                login,
                email,
                machine: false,
                groups_claim: claims.groups,
                expires_at: claims.exp,
                hot: TokenHot::default(),
            })
        }
        (None, Some(cid)) => Ok(TokenIdentity {
            subject: cid.clone(),
            login: cid,
            email: String::new(),
            machine: true,
            groups_claim: None,
            expires_at: claims.exp,
            hot: TokenHot::default(),
        }),
        // Neither a user nor a client: nobody to name in the headers.
        (None, None) => Err(E::Malformed),
    }
}

/// The cache key: SHA-256 of the token, so the cache holds no usable token.
fn cache_key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests;
