//! Back-channel logout tokens (OpenID Connect Back-Channel Logout 1.0, §2.4 and
//! §2.6): the JWT an IdP posts to end sessions without the browser. Verified
//! with jsonwebtoken against the IdP's JWKS: RS256 only, the key named by `kid`,
//! `iss`, `aud`, `iat`, `exp`, the back-channel `events` member, `jti`,
//! `sid`/`sub`, and no `nonce`. Whether the `jti` was seen before and which
//! sessions end belong to the caller and the session store. Errors say what was
//! wrong and never contain the token. No actix types. The signature and header
//! checks ([`verify_signed`]) are shared with the other tokens the IdP pushes
//! to us (Universal Logout's, in `revocation_token`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::clock::now;
use crate::oidc::Oidc;
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

/// Which `typ` header a kind of token may carry.
#[derive(Clone, Copy, Debug)]
pub enum Typ {
    /// Absent, `logout+jwt` or `JWT` (back-channel logout tokens).
    LogoutOrAbsent,
    /// Exactly this media type (without `application/`, any case).
    Required(&'static str),
}

/// What a signed token pushed by the IdP must satisfy before its own claims
/// are looked at.
pub struct Rules<'a> {
    pub typ: Typ,
    /// Accepted `iss` values, each compared exactly.
    pub issuers: &'a [&'a str],
    /// The value `aud` must be or contain.
    pub audience: &'a str,
    /// Registered claims that must be present (`iss` and `aud` always are).
    pub required: &'a [&'a str],
}

/// Verifies a logout token against the IdP's current keys; an unknown `kid`
/// reloads them (rate-limited in [`Oidc`]) and tries once more.
pub async fn verify(oidc: &Oidc, token: &str) -> Result<LogoutToken, LogoutTokenError> {
    let issuers = [oidc.issuer()];
    let rules = Rules {
        typ: Typ::LogoutOrAbsent,
        issuers: &issuers,
        audience: oidc.client_id(),
        required: &[],
    };
    let claims = verify_signed(oidc, token, &rules).await?;
    check_claims(&claims, now())
}

/// Verifies a token the IdP pushed to us against its current keys: header,
/// key, signature, `iss`, `aud`, `exp`/`nbf`; returns the claims. An unknown
/// `kid` reloads the keys once and tries again with whatever keys are current
/// then (another request may have loaded them). Reloads for pushed tokens have
/// their own rate limit in [`Oidc`], so tokens with made-up `kid`s cannot use
/// up the one sign-ins need.
pub async fn verify_signed(
    oidc: &Oidc,
    token: &str,
    rules: &Rules<'_>,
) -> Result<Map<String, Value>, LogoutTokenError> {
    let keys = oidc.signing_keys().ok_or(E::NotReady)?;
    match verify_signed_with_keys(token, &keys, rules) {
        Err(E::UnknownKey) => {
            oidc.reload_signing_keys().await;
            let keys = oidc.signing_keys().ok_or(E::NotReady)?;
            verify_signed_with_keys(token, &keys, rules)
        }
        other => other,
    }
}

/// Verifies a logout token against the given keys at time `now` (seconds since
/// the epoch). The header is checked before the key is chosen, the signature
/// before any claim is believed.
pub fn verify_with_keys(
    token: &str,
    keys: &JwkSet,
    expected: &Expected<'_>,
    now: u64,
) -> Result<LogoutToken, LogoutTokenError> {
    let issuers = [expected.issuer];
    let rules = Rules {
        typ: Typ::LogoutOrAbsent,
        issuers: &issuers,
        audience: expected.client_id,
        required: &[],
    };
    let claims = verify_signed_with_keys(token, keys, &rules)?;
    check_claims(&claims, now)
}

/// [`verify_signed`] against the given keys, without reloading them.
pub fn verify_signed_with_keys(
    token: &str,
    keys: &JwkSet,
    rules: &Rules<'_>,
) -> Result<Map<String, Value>, LogoutTokenError> {
    let header = read_header(token).map_err(|_| E::Malformed)?;
    if header.alg.as_deref() != Some("RS256") {
        return Err(E::Algorithm);
    }
    let typ_ok = match (rules.typ, header.typ.as_deref()) {
        (Typ::LogoutOrAbsent, None) => true,
        (Typ::LogoutOrAbsent, Some(typ)) => is_logout_typ(typ),
        (Typ::Required(_), None) => false,
        (Typ::Required(wanted), Some(typ)) => media_type(typ) == wanted,
    };
    if !typ_ok {
        return Err(E::Type);
    }
    if header.crit.is_some() {
        return Err(E::Critical);
    }
    let key = choose_key(keys, header.kid.as_deref()).map_err(|no_key| match no_key {
        NoKey::Unknown => E::UnknownKey,
        NoKey::NeedsKeyId => E::NoKeyId,
    })?;
    let claims = decode(token, key, rules)?;
    // jsonwebtoken also accepts an array of issuers; the specs say one string.
    if !claims.get("iss").is_some_and(Value::is_string) {
        return Err(E::Issuer);
    }
    Ok(claims)
}

/// The protected header of a compact JWS, read before any key is chosen
/// (shared with the bearer-token verifier).
#[derive(Deserialize)]
pub(crate) struct Header {
    pub(crate) alg: Option<String>,
    pub(crate) typ: Option<String>,
    pub(crate) kid: Option<String>,
    pub(crate) crit: Option<Value>,
}

/// Why a token's header could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeaderError {
    /// Not a compact JWS: not three parts (a JWE has five, an opaque token
    /// one), or a header that is not base64url.
    NotCompact,
    /// A base64url header that is not a JSON header.
    Unreadable,
}

pub(crate) fn read_header(token: &str) -> Result<Header, HeaderError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HeaderError::NotCompact);
    };
    let json = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| HeaderError::NotCompact)?;
    serde_json::from_slice(&json).map_err(|_| HeaderError::Unreadable)
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

/// Why no key was chosen for a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoKey {
    /// No RS256 key with that `kid` (or no RS256 key at all).
    Unknown,
    /// No `kid`, and several RS256 keys to choose from.
    NeedsKeyId,
}

/// The key named by `kid`; without a `kid`, the IdP's only RS256 signing key
/// (shared with the bearer-token verifier).
pub(crate) fn choose_key<'k>(keys: &'k JwkSet, kid: Option<&str>) -> Result<&'k Jwk, NoKey> {
    let mut usable = keys.keys.iter().filter(|key| signs_rs256(key));
    match kid {
        Some(kid) => usable
            .find(|key| key.common.key_id.as_deref() == Some(kid))
            .ok_or(NoKey::Unknown),
        None => match (usable.next(), usable.next()) {
            (Some(only), None) => Ok(only),
            (None, _) => Err(NoKey::Unknown),
            (Some(_), Some(_)) => Err(NoKey::NeedsKeyId),
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
fn decode(
    token: &str,
    key: &Jwk,
    rules: &Rules<'_>,
) -> Result<Map<String, Value>, LogoutTokenError> {
    let key = DecodingKey::from_jwk(key).map_err(|_| E::Signature)?;
    let mut validation = Validation::new(Algorithm::RS256);
    let mut required = vec!["iss", "aud"];
    required.extend_from_slice(rules.required);
    validation.set_required_spec_claims(&required);
    validation.set_issuer(rules.issuers);
    validation.set_audience(&[rules.audience]);
    validation.leeway = CLOCK_SKEW;
    validation.validate_exp = true;
    validation.validate_nbf = true;
    let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation).map_err(
        |e| match e.kind() {
            ErrorKind::InvalidSignature => E::Signature,
            ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => E::Algorithm,
            ErrorKind::InvalidIssuer => E::Issuer,
            ErrorKind::InvalidAudience => E::Audience,
            ErrorKind::MissingRequiredClaim(claim) if claim == "iss" => E::Issuer,
            ErrorKind::MissingRequiredClaim(claim) if claim == "aud" => E::Audience,
            ErrorKind::MissingRequiredClaim(claim) if claim == "exp" => E::Expired,
            ErrorKind::ExpiredSignature => E::Expired,
            ErrorKind::ImmatureSignature => E::NotYetValid,
            ErrorKind::InvalidClaimFormat(claim) if claim == "exp" => E::Expired,
            ErrorKind::InvalidClaimFormat(claim) if claim == "nbf" => E::NotYetValid,
            _ => E::Malformed,
        },
    )?;
    Ok(data.claims)
}

/// The claims jsonwebtoken does not know about (§2.6 steps 3–6).
fn check_claims(claims: &Map<String, Value>, now: u64) -> Result<LogoutToken, LogoutTokenError> {
    check_issued_at(claims, now)?;
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

/// `iat` is present, not in the future, and recent enough that the `jti`
/// memory ([`ONE_TIME_TTL`]) still covers the token.
pub fn check_issued_at(claims: &Map<String, Value>, now: u64) -> Result<(), LogoutTokenError> {
    let iat = claims
        .get("iat")
        .and_then(numeric_date)
        .ok_or(E::IssuedAtMissing)?;
    if iat > now + CLOCK_SKEW {
        return Err(E::IssuedInFuture);
    }
    if iat + MAX_AGE < now {
        return Err(E::TooOld);
    }
    Ok(())
}

/// The `jti`: a non-empty string.
pub fn token_id(claims: &Map<String, Value>) -> Result<&str, LogoutTokenError> {
    claims
        .get("jti")
        .and_then(Value::as_str)
        .filter(|jti| !jti.is_empty())
        .ok_or(E::TokenId)
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
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header as JwtHeader};
    use serde_json::json;

    const ISSUER: &str = "https://example.okta.com";
    const CLIENT_ID: &str = "0oa-client";
    const KEY_1_PEM: &[u8] = include_bytes!("../../tests/keys/test-key-1.pem");
    const KEY_2_PEM: &[u8] = include_bytes!("../../tests/keys/test-key-2.pem");
    const KEY_1_JWK: &str = include_str!("../../tests/keys/test-key-1.jwk.json");
    const KEY_2_JWK: &str = include_str!("../../tests/keys/test-key-2.jwk.json");

    fn jwk(text: &str) -> Jwk {
        serde_json::from_str(text).unwrap()
    }

    /// The IdP lists test-key-1 only.
    fn keys() -> JwkSet {
        JwkSet {
            keys: vec![jwk(KEY_1_JWK)],
        }
    }

    fn key_1() -> EncodingKey {
        EncodingKey::from_rsa_pem(KEY_1_PEM).unwrap()
    }

    fn key_2() -> EncodingKey {
        EncodingKey::from_rsa_pem(KEY_2_PEM).unwrap()
    }

    fn header(alg: Algorithm, kid: Option<&str>, typ: Option<&str>) -> JwtHeader {
        let mut header = JwtHeader::new(alg);
        header.kid = kid.map(str::to_owned);
        header.typ = typ.map(str::to_owned);
        header
    }

    /// The claims of a good logout token, issued now.
    fn claims() -> Value {
        json!({
            "iss": ISSUER,
            "aud": CLIENT_ID,
            "iat": now(),
            "jti": "bWJq",
            "sub": "00ualice",
            "sid": "102sid-of-alice",
            "events": { BACKCHANNEL_LOGOUT_EVENT: {} },
        })
    }

    fn with(changes: Value) -> Value {
        let mut claims = claims();
        for (name, value) in changes.as_object().unwrap() {
            if value.is_null() {
                claims.as_object_mut().unwrap().remove(name);
            } else {
                claims[name] = value.clone();
            }
        }
        claims
    }

    fn sign_with(header: &JwtHeader, key: &EncodingKey, claims: &Value) -> String {
        jsonwebtoken::encode(header, claims, key).unwrap()
    }

    fn sign(claims: &Value) -> String {
        sign_with(
            &header(Algorithm::RS256, Some("test-key-1"), Some("logout+jwt")),
            &key_1(),
            claims,
        )
    }

    fn check_with_keys(token: &str, keys: &JwkSet) -> Result<LogoutToken, LogoutTokenError> {
        let expected = Expected {
            issuer: ISSUER,
            client_id: CLIENT_ID,
        };
        verify_with_keys(token, keys, &expected, now())
    }

    fn check(token: &str) -> Result<LogoutToken, LogoutTokenError> {
        check_with_keys(token, &keys())
    }

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    #[test]
    fn a_token_with_sid_and_sub_ends_that_idp_session_of_that_user() {
        assert_eq!(
            check(&sign(&claims())),
            Ok(LogoutToken {
                jti: "bWJq".into(),
                ends: Ends::Session {
                    sid: "102sid-of-alice".into(),
                    sub: Some("00ualice".into())
                },
            })
        );
    }

    #[test]
    fn a_token_with_only_sub_ends_every_session_of_the_user() {
        let token = sign(&with(json!({ "sid": null })));
        assert_eq!(
            check(&token).map(|t| t.ends),
            Ok(Ends::User {
                sub: "00ualice".into()
            })
        );
    }

    #[test]
    fn a_token_with_only_sid_ends_that_idp_session_whoever_it_belongs_to() {
        let token = sign(&with(json!({ "sub": null })));
        assert_eq!(
            check(&token).map(|t| t.ends),
            Ok(Ends::Session {
                sid: "102sid-of-alice".into(),
                sub: None
            })
        );
    }

    #[test]
    fn a_token_with_neither_sid_nor_sub_is_refused() {
        let token = sign(&with(json!({ "sid": null, "sub": null })));
        assert_eq!(check(&token), Err(E::NoSubject));
    }

    #[test]
    fn sid_and_sub_must_be_non_empty_strings() {
        for (changes, claim) in [
            (json!({ "sid": "" }), "sid"),
            (json!({ "sid": 7 }), "sid"),
            (json!({ "sub": "" }), "sub"),
            (json!({ "sub": 7 }), "sub"),
        ] {
            let token = sign(&with(changes.clone()));
            assert_eq!(check(&token), Err(E::NotAString(claim)), "{changes}");
        }
    }

    #[test]
    fn aud_may_be_a_list_that_contains_our_client_id() {
        let token = sign(&with(json!({ "aud": ["someone-else", CLIENT_ID] })));
        assert!(check(&token).is_ok());
    }

    #[test]
    fn aud_must_name_our_client() {
        for aud in [json!("someone-else"), json!(["someone-else"]), json!(null)] {
            let token = sign(&with(json!({ "aud": aud })));
            assert_eq!(check(&token), Err(E::Audience), "aud {aud}");
        }
    }

    #[test]
    fn iss_must_be_the_configured_issuer_exactly() {
        for iss in [
            json!("https://evil.example.com"),
            json!(format!("{ISSUER}/")),
            json!(format!("{ISSUER}/oauth2/default")),
            json!(ISSUER.to_uppercase()),
            json!([ISSUER]),
            json!(null),
        ] {
            let token = sign(&with(json!({ "iss": iss })));
            assert_eq!(check(&token), Err(E::Issuer), "iss {iss}");
        }
    }

    #[test]
    fn iat_must_be_present_and_a_time() {
        for iat in [json!(null), json!("now"), json!(-5), json!({})] {
            let token = sign(&with(json!({ "iat": iat })));
            assert_eq!(check(&token), Err(E::IssuedAtMissing), "iat {iat}");
        }
        let fractional = sign(&with(json!({ "iat": now() as f64 + 0.5 })));
        assert!(check(&fractional).is_ok());
    }

    #[test]
    fn iat_may_be_up_to_a_minute_in_the_future_and_no_more() {
        let ahead = sign(&with(json!({ "iat": now() + CLOCK_SKEW - 5 })));
        assert!(check(&ahead).is_ok());
        let too_far = sign(&with(json!({ "iat": now() + CLOCK_SKEW + 5 })));
        assert_eq!(check(&too_far), Err(E::IssuedInFuture));
    }

    #[test]
    fn a_token_older_than_the_jti_memory_allows_is_refused() {
        assert!(MAX_AGE + CLOCK_SKEW <= ONE_TIME_TTL.as_secs());
        let recent = sign(&with(json!({ "iat": now() - MAX_AGE + 5 })));
        assert!(check(&recent).is_ok());
        let old = sign(&with(json!({ "iat": now() - MAX_AGE - 5 })));
        assert_eq!(check(&old), Err(E::TooOld));
    }

    #[test]
    fn exp_is_checked_when_present() {
        let live = sign(&with(json!({ "exp": now() + 120 })));
        assert!(check(&live).is_ok());
        let passed = sign(&with(json!({ "exp": now() - CLOCK_SKEW - 5 })));
        assert_eq!(check(&passed), Err(E::Expired));
        let garbage = sign(&with(json!({ "exp": "tomorrow" })));
        assert_eq!(check(&garbage), Err(E::Expired));
    }

    #[test]
    fn nbf_is_checked_when_present() {
        let later = sign(&with(json!({ "nbf": now() + CLOCK_SKEW + 60 })));
        assert_eq!(check(&later), Err(E::NotYetValid));
    }

    #[test]
    fn events_must_hold_the_back_channel_logout_event_as_an_object() {
        for events in [
            json!(null),
            json!({}),
            json!([BACKCHANNEL_LOGOUT_EVENT]),
            json!(BACKCHANNEL_LOGOUT_EVENT),
            json!({ BACKCHANNEL_LOGOUT_EVENT: true }),
            json!({ BACKCHANNEL_LOGOUT_EVENT: "yes" }),
            json!({ "http://schemas.openid.net/event/frontchannel-logout": {} }),
        ] {
            let token = sign(&with(json!({ "events": events })));
            assert_eq!(check(&token), Err(E::Events), "events {events}");
        }
        let more = sign(&with(json!({ "events": {
            BACKCHANNEL_LOGOUT_EVENT: { "reason": "admin" },
            "https://example.com/other": {},
        } })));
        assert!(check(&more).is_ok());
    }

    #[test]
    fn an_id_token_is_not_a_logout_token() {
        // Same issuer, audience and key, but no events and a nonce.
        let id_token = sign(&with(json!({
            "events": null,
            "nonce": "n-0S6_WzA2Mj",
            "exp": now() + 3600,
        })));
        assert_eq!(check(&id_token), Err(E::Events));
    }

    #[test]
    fn a_nonce_is_refused_whatever_its_value() {
        for nonce in [json!("n-0S6_WzA2Mj"), json!(""), json!(0)] {
            let token = sign(&with(json!({ "nonce": nonce })));
            assert_eq!(check(&token), Err(E::Nonce), "nonce {nonce}");
        }
    }

    #[test]
    fn jti_must_be_a_non_empty_string() {
        for jti in [json!(null), json!(""), json!(42)] {
            let token = sign(&with(json!({ "jti": jti })));
            assert_eq!(check(&token), Err(E::TokenId), "jti {jti}");
        }
    }

    #[test]
    fn typ_may_be_absent_or_name_a_logout_token_or_a_jwt() {
        for typ in [
            None,
            Some("logout+jwt"),
            Some("Logout+JWT"),
            Some("application/logout+jwt"),
            Some("JWT"),
            Some("jwt"),
        ] {
            let token = sign_with(
                &header(Algorithm::RS256, Some("test-key-1"), typ),
                &key_1(),
                &claims(),
            );
            assert!(check(&token).is_ok(), "typ {typ:?}");
        }
    }

    #[test]
    fn any_other_typ_is_refused() {
        for typ in ["at+jwt", "secevent+jwt", "logout", "JWS", ""] {
            let token = sign_with(
                &header(Algorithm::RS256, Some("test-key-1"), Some(typ)),
                &key_1(),
                &claims(),
            );
            assert_eq!(check(&token), Err(E::Type), "typ {typ}");
        }
    }

    #[test]
    fn alg_none_is_refused() {
        let header = b64(br#"{"alg":"none","typ":"logout+jwt","kid":"test-key-1"}"#);
        let payload = b64(claims().to_string().as_bytes());
        for token in [
            format!("{header}.{payload}."),
            format!("{header}.{payload}.c2ln"),
        ] {
            assert_eq!(check(&token), Err(E::Algorithm));
        }
    }

    #[test]
    fn hs256_signed_with_any_secret_is_refused() {
        let token = sign_with(
            &header(Algorithm::HS256, Some("test-key-1"), Some("logout+jwt")),
            &EncodingKey::from_secret(b"the-client-secret"),
            &claims(),
        );
        assert_eq!(check(&token), Err(E::Algorithm));
    }

    #[test]
    fn other_rsa_algorithms_are_refused() {
        for alg in [Algorithm::RS512, Algorithm::PS256] {
            let token = sign_with(
                &header(alg, Some("test-key-1"), Some("logout+jwt")),
                &key_1(),
                &claims(),
            );
            assert_eq!(check(&token), Err(E::Algorithm), "{alg:?}");
        }
    }

    #[test]
    fn a_crit_header_is_refused() {
        let mut header = header(Algorithm::RS256, Some("test-key-1"), Some("logout+jwt"));
        header.crit = Some(vec!["exp".into()]);
        let token = sign_with(&header, &key_1(), &claims());
        assert_eq!(check(&token), Err(E::Critical));
    }

    #[test]
    fn a_kid_the_idp_does_not_list_is_an_unknown_key() {
        let token = sign_with(
            &header(Algorithm::RS256, Some("test-key-2"), Some("logout+jwt")),
            &key_2(),
            &claims(),
        );
        assert_eq!(check(&token), Err(E::UnknownKey));
        let both = JwkSet {
            keys: vec![jwk(KEY_1_JWK), jwk(KEY_2_JWK)],
        };
        assert!(check_with_keys(&token, &both).is_ok(), "found by kid");
    }

    #[test]
    fn a_key_meant_for_encryption_or_another_algorithm_is_not_used() {
        let token = sign(&claims());
        for (member, value) in [("use", "enc"), ("alg", "RS512")] {
            let mut key: Value = serde_json::from_str(KEY_1_JWK).unwrap();
            key[member] = json!(value);
            let keys = JwkSet {
                keys: vec![serde_json::from_value(key).unwrap()],
            };
            assert_eq!(
                check_with_keys(&token, &keys),
                Err(E::UnknownKey),
                "{member}: {value}"
            );
        }
    }

    #[test]
    fn without_a_kid_only_a_sole_signing_key_is_used() {
        let token = sign_with(
            &header(Algorithm::RS256, None, Some("logout+jwt")),
            &key_1(),
            &claims(),
        );
        assert!(check(&token).is_ok());
        let both = JwkSet {
            keys: vec![jwk(KEY_1_JWK), jwk(KEY_2_JWK)],
        };
        assert_eq!(check_with_keys(&token, &both), Err(E::NoKeyId));
    }

    #[test]
    fn a_token_signed_by_another_key_under_a_listed_kid_is_refused() {
        let token = sign_with(
            &header(Algorithm::RS256, Some("test-key-1"), Some("logout+jwt")),
            &key_2(),
            &claims(),
        );
        assert_eq!(check(&token), Err(E::Signature));
    }

    #[test]
    fn a_tampered_payload_is_refused() {
        let token = sign(&claims());
        let parts: Vec<&str> = token.split('.').collect();
        let forged = b64(with(json!({ "sub": "00ubob" })).to_string().as_bytes());
        let tampered = format!("{}.{forged}.{}", parts[0], parts[2]);
        assert_eq!(check(&tampered), Err(E::Signature));
    }

    #[test]
    fn anything_that_is_not_a_compact_jws_is_malformed() {
        let token = sign(&claims());
        let parts: Vec<&str> = token.split('.').collect();
        for garbage in [
            String::new(),
            "garbage".into(),
            "a.b".into(),
            format!("{token}.x.y"),
            format!("!!.{}.{}", parts[1], parts[2]),
            format!("{}.{}.{}", b64(b"not json"), parts[1], parts[2]),
        ] {
            assert_eq!(check(&garbage), Err(E::Malformed), "{garbage}");
        }
        // A signed payload that is not a JSON object.
        let array = sign_with(
            &header(Algorithm::RS256, Some("test-key-1"), Some("logout+jwt")),
            &key_1(),
            &json!(["not", "claims"]),
        );
        assert_eq!(check(&array), Err(E::Malformed));
    }
}
