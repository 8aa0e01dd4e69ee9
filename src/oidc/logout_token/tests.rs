use super::*;
use crate::oidc::test_keys::{changed, jwk, KEY_1_JWK, KEY_1_PEM, KEY_2_JWK, KEY_2_PEM};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::Algorithm;
use jsonwebtoken::{EncodingKey, Header as JwtHeader};
use serde_json::json;

const ISSUER: &str = "https://example.okta.com";
const CLIENT_ID: &str = "0oa-client";

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
    changed(claims(), changes)
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
