//! The IdP's signing keys and the one JWS verifier for the tokens we read with
//! jsonwebtoken (logout, revocation and bearer tokens). It owns the key set
//! discovery loaded, its refetch on an unknown `kid` under three separate
//! budgets (ID tokens, tokens pushed to us, bearer tokens: a made-up `kid` in
//! one kind cannot spend another's refetch), and the checks every such token
//! shares: header, `alg` RS256, key by `kid`, signature, `iss`, `aud`,
//! `exp`/`nbf`/`iat` with a leeway. It must not judge a token kind's own
//! claims (events, `jti`, scopes), and its errors never contain the token.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use openidconnect::core::CoreJsonWebKey;
use openidconnect::{JsonWebKeySet, JsonWebKeySetUrl};
use serde::Deserialize;
use serde_json::{Map, Value};
use tokio::sync::Mutex;

use super::{timed, Oidc};
use crate::error_chain::error_chain;

/// A kid we do not know triggers at most one JWKS fetch per this interval
/// (per budget).
pub const JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(30);

/// Whose unknown `kid` asks for a refetch: each has its own rate limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Budget {
    /// ID tokens from our own code exchange and refresh.
    IdTokens,
    /// Tokens pushed to us (back-channel, Universal Logout): anyone can send
    /// one with a made-up `kid`.
    Pushed,
    /// API clients' bearer tokens, also anyone's to send.
    Bearer,
}

/// The key set discovery loaded and the time of each budget's last refetch.
pub(super) struct KeyStore {
    uri: JsonWebKeySetUrl,
    jwks: RwLock<Arc<JsonWebKeySet<CoreJsonWebKey>>>,
    id_tokens: Mutex<Option<Instant>>,
    pushed: Mutex<Option<Instant>>,
    bearer: Mutex<Option<Instant>>,
}

impl KeyStore {
    pub(super) fn new(uri: JsonWebKeySetUrl, jwks: JsonWebKeySet<CoreJsonWebKey>) -> KeyStore {
        KeyStore {
            uri,
            jwks: RwLock::new(Arc::new(jwks)),
            id_tokens: Mutex::new(None),
            pushed: Mutex::new(None),
            bearer: Mutex::new(None),
        }
    }

    /// The keys as loaded now (empty if the lock is poisoned: fail closed).
    pub(super) fn current(&self) -> Arc<JsonWebKeySet<CoreJsonWebKey>> {
        self.jwks
            .read()
            .map(|j| Arc::clone(&j))
            .unwrap_or_else(|_| Arc::new(JsonWebKeySet::new(Vec::new())))
    }

    /// Refetches unless `budget` saw a refetch in the last interval; returns
    /// whether new keys were loaded. Callers that wait here while another
    /// refetches find the new keys afterwards.
    pub(super) async fn refetch(&self, http: &reqwest::Client, budget: Budget) -> bool {
        let last = match budget {
            Budget::IdTokens => &self.id_tokens,
            Budget::Pushed => &self.pushed,
            Budget::Bearer => &self.bearer,
        };
        let mut last = last.lock().await;
        if last.is_some_and(|at| at.elapsed() < JWKS_REFETCH_INTERVAL) {
            return false;
        }
        *last = Some(Instant::now());
        let started = Instant::now();
        let fetched = JsonWebKeySet::fetch_async(&self.uri, http).await;
        timed("keys", fetched.is_ok(), started);
        match fetched {
            Ok(jwks) => {
                tracing::info!(keys = jwks.keys().len(), "reloaded the IdP signing keys");
                if let Ok(mut slot) = self.jwks.write() {
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

/// A token kind's error type, as [`Oidc::with_signing_keys`] needs it.
pub(crate) trait KeyError {
    /// Discovery has not loaded the keys yet.
    fn not_ready() -> Self;
    /// The token names a key the current set does not hold.
    fn is_unknown_key(&self) -> bool;
}

impl Oidc {
    /// The IdP's current signing keys in jsonwebtoken's type. Keys jsonwebtoken
    /// cannot read are left out. `None` before discovery.
    pub fn signing_keys(&self) -> Option<JwkSet> {
        Some(to_jwk_set(&self.provider()?.keys.current()))
    }

    /// Reloads the JWKS after a token pushed to us named an unknown `kid`, at
    /// most once per [`JWKS_REFETCH_INTERVAL`] under a budget of its own (not
    /// the one ID tokens use). Returns whether new keys were loaded.
    pub async fn reload_signing_keys(&self) -> bool {
        self.refetch(Budget::Pushed).await
    }

    /// [`reload_signing_keys`](Self::reload_signing_keys) for a bearer token,
    /// under the bearer tokens' own budget.
    pub async fn reload_signing_keys_for_bearer(&self) -> bool {
        self.refetch(Budget::Bearer).await
    }

    pub(super) async fn refetch(&self, budget: Budget) -> bool {
        match self.provider() {
            Some(provider) => provider.keys.refetch(&self.http, budget).await,
            None => false,
        }
    }

    /// Runs `verify` with the current keys; when it finds the `kid` unknown,
    /// reloads them once under `budget` and runs it again with whatever keys
    /// are current then (another request may have loaded them).
    pub(crate) async fn with_signing_keys<T, E: KeyError>(
        &self,
        budget: Budget,
        verify: impl Fn(&JwkSet) -> Result<T, E>,
    ) -> Result<T, E> {
        let keys = self.signing_keys().ok_or_else(E::not_ready)?;
        match verify(&keys) {
            Err(e) if e.is_unknown_key() => {
                self.refetch(budget).await;
                let keys = self.signing_keys().ok_or_else(E::not_ready)?;
                verify(&keys)
            }
            other => other,
        }
    }
}

/// The same keys in jsonwebtoken's type, one key at a time so that one key it
/// does not understand does not hide the others.
fn to_jwk_set(jwks: &JsonWebKeySet<CoreJsonWebKey>) -> JwkSet {
    let keys = jwks
        .keys()
        .iter()
        .filter_map(|key| {
            let json = serde_json::to_value(key).ok()?;
            serde_json::from_value(json).ok()
        })
        .collect();
    JwkSet { keys }
}

/// Which `typ` header a kind of token may carry.
#[derive(Clone, Copy, Debug)]
pub enum Typ {
    /// Absent, `logout+jwt` or `JWT` (back-channel logout tokens).
    LogoutOrAbsent,
    /// Exactly this media type (without `application/`, any case).
    Required(&'static str),
    /// Whatever it says (access tokens).
    Any,
}

/// What a signed token must satisfy before its own claims are looked at.
pub struct Rules<'a> {
    pub typ: Typ,
    /// Accepted `iss` values, each compared exactly.
    pub issuers: &'a [&'a str],
    /// The value `aud` must be or contain.
    pub audience: &'a str,
    /// Registered claims that must be present (`iss` and `aud` always are).
    pub required: &'a [&'a str],
    /// Clock difference tolerated for `exp`, `nbf` and `iat`, in seconds.
    pub leeway: u64,
    /// When set, `iat` is required, not ahead of us by more than the leeway,
    /// and at most this many seconds old.
    pub max_age: Option<u64>,
}

/// Why a signed token failed the shared checks. Each token kind maps these
/// to its own error; none contains the token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JwsError {
    /// Not a compact JWS: not three parts (a JWE has five, an opaque token
    /// one), or a header that is not base64url.
    NotCompact,
    /// A base64url header that is not a JSON header.
    UnreadableHeader,
    Algorithm,
    Type,
    Critical,
    /// No RS256 signing key with that `kid` (or none at all).
    UnknownKey,
    /// No `kid`, and several RS256 keys to choose from.
    NoKeyId,
    Signature,
    Issuer,
    Audience,
    Expired,
    NotYetValid,
    /// `exp` is there but not a time.
    ExpiryNotATime,
    /// `nbf` is there but not a time.
    NotBeforeNotATime,
    IssuedAtMissing,
    IssuedInFuture,
    TooOld,
    /// Signed, but the payload is not claims we can read.
    Malformed,
}

/// Verifies a compact JWS against `keys` and returns its claims. The header is
/// checked before the key is chosen, the signature before any claim is
/// believed; `exp`/`nbf` go by the system clock, `iat` by `now` (seconds since
/// the epoch).
pub fn verify_jws(
    token: &str,
    keys: &JwkSet,
    rules: &Rules<'_>,
    now: u64,
) -> Result<Map<String, Value>, JwsError> {
    let header = read_header(token)?;
    if header.alg.as_deref() != Some("RS256") {
        return Err(JwsError::Algorithm);
    }
    let typ_ok = match (rules.typ, header.typ.as_deref()) {
        (Typ::Any, _) | (Typ::LogoutOrAbsent, None) => true,
        (Typ::LogoutOrAbsent, Some(typ)) => is_logout_typ(typ),
        (Typ::Required(_), None) => false,
        (Typ::Required(wanted), Some(typ)) => media_type(typ) == wanted,
    };
    if !typ_ok {
        return Err(JwsError::Type);
    }
    if header.crit.is_some() {
        return Err(JwsError::Critical);
    }
    let key = choose_key(keys, header.kid.as_deref())?;
    let claims = decode(token, key, rules)?;
    // jsonwebtoken also accepts an array of issuers; the specs say one string.
    if !claims.get("iss").is_some_and(Value::is_string) {
        return Err(JwsError::Issuer);
    }
    if let Some(max_age) = rules.max_age {
        check_issued_at(&claims, now, rules.leeway, max_age)?;
    }
    Ok(claims)
}

/// The protected header of a compact JWS, read before any key is chosen.
#[derive(Deserialize)]
struct Header {
    alg: Option<String>,
    typ: Option<String>,
    kid: Option<String>,
    crit: Option<Value>,
}

fn read_header(token: &str) -> Result<Header, JwsError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwsError::NotCompact);
    };
    let json = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| JwsError::NotCompact)?;
    serde_json::from_slice(&json).map_err(|_| JwsError::UnreadableHeader)
}

/// `logout+jwt` as the spec recommends, or plain `JWT`.
fn is_logout_typ(typ: &str) -> bool {
    let media = media_type(typ);
    media == "logout+jwt" || media == "jwt"
}

/// A `typ` as a lower-case media type without `application/`: media types are
/// case-insensitive and may carry that prefix (RFC 7515 §4.1.9).
fn media_type(typ: &str) -> String {
    let typ = typ.to_ascii_lowercase();
    match typ.strip_prefix("application/") {
        Some(media) => media.to_owned(),
        None => typ,
    }
}

/// The key named by `kid`; without a `kid`, the IdP's only RS256 signing key.
fn choose_key<'k>(keys: &'k JwkSet, kid: Option<&str>) -> Result<&'k Jwk, JwsError> {
    let mut usable = keys.keys.iter().filter(|key| signs_rs256(key));
    match kid {
        Some(kid) => usable
            .find(|key| key.common.key_id.as_deref() == Some(kid))
            .ok_or(JwsError::UnknownKey),
        None => match (usable.next(), usable.next()) {
            (Some(only), None) => Ok(only),
            (None, _) => Err(JwsError::UnknownKey),
            (Some(_), Some(_)) => Err(JwsError::NoKeyId),
        },
    }
}

/// An RSA key that is not reserved for encryption or for another algorithm.
fn signs_rs256(key: &Jwk) -> bool {
    matches!(key.algorithm, AlgorithmParameters::RSA(_))
        && matches!(
            key.common.public_key_use,
            None | Some(PublicKeyUse::Signature)
        )
        && matches!(key.common.key_algorithm, None | Some(KeyAlgorithm::RS256))
}

/// Signature, `alg`, `iss`, `aud`, and `exp`/`nbf` (when present, or when
/// required), by jsonwebtoken.
fn decode(token: &str, key: &Jwk, rules: &Rules<'_>) -> Result<Map<String, Value>, JwsError> {
    let key = DecodingKey::from_jwk(key).map_err(|_| JwsError::Signature)?;
    let mut validation = Validation::new(Algorithm::RS256);
    let mut required = vec!["iss", "aud"];
    required.extend_from_slice(rules.required);
    validation.set_required_spec_claims(&required);
    validation.set_issuer(rules.issuers);
    validation.set_audience(&[rules.audience]);
    validation.leeway = rules.leeway;
    validation.validate_exp = true;
    validation.validate_nbf = true;
    let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation).map_err(
        |e| match e.kind() {
            ErrorKind::InvalidSignature => JwsError::Signature,
            ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => JwsError::Algorithm,
            ErrorKind::InvalidIssuer => JwsError::Issuer,
            ErrorKind::InvalidAudience => JwsError::Audience,
            ErrorKind::MissingRequiredClaim(claim) if claim == "iss" => JwsError::Issuer,
            ErrorKind::MissingRequiredClaim(claim) if claim == "aud" => JwsError::Audience,
            ErrorKind::MissingRequiredClaim(claim) if claim == "exp" => JwsError::Expired,
            ErrorKind::ExpiredSignature => JwsError::Expired,
            ErrorKind::ImmatureSignature => JwsError::NotYetValid,
            ErrorKind::InvalidClaimFormat(claim) if claim == "exp" => JwsError::ExpiryNotATime,
            ErrorKind::InvalidClaimFormat(claim) if claim == "nbf" => JwsError::NotBeforeNotATime,
            _ => JwsError::Malformed,
        },
    )?;
    Ok(data.claims)
}

/// `iat` is present, not in the future (beyond the leeway), and at most
/// `max_age` seconds old.
fn check_issued_at(
    claims: &Map<String, Value>,
    now: u64,
    leeway: u64,
    max_age: u64,
) -> Result<(), JwsError> {
    let iat = claims
        .get("iat")
        .and_then(numeric_date)
        .ok_or(JwsError::IssuedAtMissing)?;
    if iat > now + leeway {
        return Err(JwsError::IssuedInFuture);
    }
    if iat + max_age < now {
        return Err(JwsError::TooOld);
    }
    Ok(())
}

/// A JWT NumericDate: seconds since the epoch, possibly with a fraction.
fn numeric_date(value: &Value) -> Option<u64> {
    value.as_u64().or_else(|| {
        value
            .as_f64()
            .filter(|secs| secs.is_finite() && *secs >= 0.0)
            // Truncation is the intent; the value is finite and non-negative.
            .map(|secs| secs as u64)
    })
}
