//! Back-channel logout tokens (OpenID Connect Back-Channel Logout 1.0, §2.4 and
//! §2.6): the JWT an IdP posts to end sessions without the browser. The shared
//! checks (RS256, the key named by `kid`, `iss`, `aud`, `iat`, `exp`) are
//! [`keys::verify_jws`]'s; this module owns the rest: the `typ`, the
//! back-channel `events` member, `jti`, `sid`/`sub`, and no `nonce`. Whether
//! the `jti` was seen before and which sessions end belong to the caller and
//! the session store. Errors say what was wrong and never contain the token.
//! No actix types.

use serde_json::{Map, Value};

use super::keys::{self, Budget, JwsError, KeyError, Rules, Typ};
use super::Oidc;
use crate::clock::now;
use crate::session::ONE_TIME_TTL;

/// The member of `events` that makes a JWT a logout token.
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// Clock difference tolerated between the IdP and us, in seconds.
pub const CLOCK_SKEW: u64 = 60;

/// How old (by `iat`) a logout token may be, in seconds. The store remembers a
/// used `jti` for [`ONE_TIME_TTL`]; a token accepted for longer could be
/// replayed once its `jti` is forgotten.
pub const MAX_AGE: u64 = ONE_TIME_TTL.as_secs() - CLOCK_SKEW;

/// Which sessions a verified logout token ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ends {
    /// The sessions made in the IdP session `sid` (only user `sub`'s, when given).
    Session { sid: String, sub: Option<String> },
    /// Every session of user `sub`.
    User { sub: String },
}

/// A logout token that passed every check but the one-time use of its `jti`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogoutToken {
    pub jti: String,
    pub ends: Ends,
}

/// Why a logout token was refused. The text goes to logs and to the IdP.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LogoutTokenError {
    /// Discovery has not loaded the IdP's keys: nothing can be verified yet.
    #[error("the IdP's signing keys are not loaded yet")]
    NotReady,
    #[error("the token is not a signed JWT")]
    Malformed,
    #[error("the token's alg must be RS256")]
    Algorithm,
    #[error("the token's typ is not one this endpoint accepts")]
    Type,
    #[error("the token's header has critical extensions (crit), which are not supported")]
    Critical,
    #[error("the token is signed with a key the IdP does not list (unknown kid)")]
    UnknownKey,
    #[error("the token's header has no kid and the IdP lists several keys")]
    NoKeyId,
    #[error("the token's signature does not verify")]
    Signature,
    #[error("iss is missing or not the configured issuer")]
    Issuer,
    #[error("aud is missing or does not name this client")]
    Audience,
    #[error("the token has expired (exp)")]
    Expired,
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    #[error("iat is missing or not a time")]
    IssuedAtMissing,
    #[error("iat is in the future")]
    IssuedInFuture,
    #[error("iat is too old: a logout token is accepted for {MAX_AGE} seconds")]
    TooOld,
    #[error("events does not hold the back-channel logout event")]
    Events,
    #[error("jti is missing or empty")]
    TokenId,
    #[error("{0} is not a non-empty string")]
    NotAString(&'static str),
    #[error("the token has neither sid nor sub")]
    NoSubject,
    #[error("the token carries a nonce, which a logout token must not")]
    Nonce,
}

use LogoutTokenError as E;

/// What a logout token must name.
pub struct Expected<'a> {
    /// The configured issuer, compared exactly.
    pub issuer: &'a str,
    /// Our client id, which `aud` must contain.
    pub client_id: &'a str,
}

impl From<JwsError> for LogoutTokenError {
    fn from(e: JwsError) -> Self {
        match e {
            JwsError::NotCompact | JwsError::UnreadableHeader | JwsError::Malformed => E::Malformed,
            JwsError::Algorithm => E::Algorithm,
            JwsError::Type => E::Type,
            JwsError::Critical => E::Critical,
            JwsError::UnknownKey => E::UnknownKey,
            JwsError::NoKeyId => E::NoKeyId,
            JwsError::Signature => E::Signature,
            JwsError::Issuer => E::Issuer,
            JwsError::Audience => E::Audience,
            JwsError::Expired | JwsError::ExpiryNotATime => E::Expired,
            JwsError::NotYetValid | JwsError::NotBeforeNotATime => E::NotYetValid,
            JwsError::IssuedAtMissing => E::IssuedAtMissing,
            JwsError::IssuedInFuture => E::IssuedInFuture,
            JwsError::TooOld => E::TooOld,
        }
    }
}

impl KeyError for LogoutTokenError {
    fn not_ready() -> Self {
        E::NotReady
    }

    fn is_unknown_key(&self) -> bool {
        *self == E::UnknownKey
    }
}

/// The rules every token the IdP pushes to us follows, with the `typ`,
/// issuers, audience and extra required claims of its kind.
pub fn pushed_rules<'a>(
    typ: Typ,
    issuers: &'a [&'a str],
    audience: &'a str,
    required: &'a [&'a str],
) -> Rules<'a> {
    Rules {
        typ,
        issuers,
        audience,
        required,
        leeway: CLOCK_SKEW,
        max_age: Some(MAX_AGE),
    }
}

/// Verifies a logout token against the IdP's current keys; an unknown `kid`
/// reloads them (rate-limited in [`Oidc`]) and tries once more.
pub async fn verify(oidc: &Oidc, token: &str) -> Result<LogoutToken, LogoutTokenError> {
    let issuers = [oidc.issuer()];
    let rules = pushed_rules(Typ::LogoutOrAbsent, &issuers, oidc.client_id(), &[]);
    let claims = verify_signed(oidc, token, &rules).await?;
    check_claims(&claims)
}

/// Verifies a token the IdP pushed to us against its current keys (the
/// shared checks of [`keys::verify_jws`]); returns the claims. An unknown
/// `kid` reloads the keys once and tries again with whatever keys are current
/// then. Reloads for pushed tokens have their own rate limit in [`Oidc`], so
/// tokens with made-up `kid`s cannot use up the one sign-ins need.
pub async fn verify_signed(
    oidc: &Oidc,
    token: &str,
    rules: &Rules<'_>,
) -> Result<Map<String, Value>, LogoutTokenError> {
    oidc.with_signing_keys(Budget::Pushed, |keys| {
        verify_signed_with_keys(token, keys, rules, now())
    })
    .await
}

/// Verifies a logout token against the given keys at time `now` (seconds since
/// the epoch).
pub fn verify_with_keys(
    token: &str,
    keys: &jsonwebtoken::jwk::JwkSet,
    expected: &Expected<'_>,
    now: u64,
) -> Result<LogoutToken, LogoutTokenError> {
    let issuers = [expected.issuer];
    let rules = pushed_rules(Typ::LogoutOrAbsent, &issuers, expected.client_id, &[]);
    let claims = verify_signed_with_keys(token, keys, &rules, now)?;
    check_claims(&claims)
}

/// [`verify_signed`] against the given keys at time `now`, without reloading
/// them.
pub fn verify_signed_with_keys(
    token: &str,
    keys: &jsonwebtoken::jwk::JwkSet,
    rules: &Rules<'_>,
    now: u64,
) -> Result<Map<String, Value>, LogoutTokenError> {
    Ok(keys::verify_jws(token, keys, rules, now)?)
}

/// The claims only a logout token has (§2.6 steps 4–6); `iat` was checked
/// with the signature.
fn check_claims(claims: &Map<String, Value>) -> Result<LogoutToken, LogoutTokenError> {
    let event = claims
        .get("events")
        .and_then(Value::as_object)
        .and_then(|events| events.get(BACKCHANNEL_LOGOUT_EVENT));
    if !event.is_some_and(Value::is_object) {
        return Err(E::Events);
    }
    if claims.contains_key("nonce") {
        return Err(E::Nonce);
    }
    let jti = token_id(claims)?;
    let ends = match (
        optional_string(claims, "sid")?,
        optional_string(claims, "sub")?,
    ) {
        (Some(sid), sub) => Ends::Session { sid, sub },
        (None, Some(sub)) => Ends::User { sub },
        (None, None) => return Err(E::NoSubject),
    };
    Ok(LogoutToken {
        jti: jti.to_owned(),
        ends,
    })
}

/// The `jti`: a non-empty string.
pub fn token_id(claims: &Map<String, Value>) -> Result<&str, LogoutTokenError> {
    claims
        .get("jti")
        .and_then(Value::as_str)
        .filter(|jti| !jti.is_empty())
        .ok_or(E::TokenId)
}

/// An optional claim that, when present, must be a non-empty string.
fn optional_string(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<String>, LogoutTokenError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
        Some(_) => Err(E::NotAString(name)),
    }
}

#[cfg(test)]
mod tests;
