//! Okta Universal Logout (Global Token Revocation): the bearer JWT Okta sends
//! to `/oauth2/global-token-revocation` and the body naming the user. The
//! token goes through the same verifier as back-channel logout tokens
//! ([`logout_token::verify_signed`], on [`keys::verify_jws`](super::keys::verify_jws)): RS256 by a key of the issuer's JWKS,
//! `typ` `global-token-revocation+jwt`, `iss` the org or the issuer, `aud` our
//! endpoint's URL, `exp` required, `nbf` and `iat` checked, a `jti`. Whether
//! the `jti` was seen before belongs to the session store. No actix types.

use serde_json::{Map, Value};

use super::keys::{Rules, Typ};
use super::logout_token::{self, LogoutTokenError};
use super::Oidc;

/// The `typ` header Okta gives these tokens.
pub const TYP: &str = "global-token-revocation+jwt";

/// Where the endpoint lives under the service's URL; `aud` names it in full.
pub const PATH: &str = "/oauth2/global-token-revocation";

/// A revocation token that passed every check but the one-time use of its `jti`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevocationToken {
    pub jti: String,
}

/// Who is to be logged out, as the body's `sub_id` says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    /// `{"format":"iss_sub","iss":…,"sub":…}`: the user `sub` of issuer `iss`.
    IssSub { iss: String, sub: String },
    /// `{"format":"email","email":…}`.
    Email { email: String },
}

/// Verifies the bearer token: `org` is the org origin, `audience` this
/// endpoint's absolute URL.
pub async fn verify(
    oidc: &Oidc,
    org: &str,
    audience: &str,
    token: &str,
) -> Result<RevocationToken, LogoutTokenError> {
    let issuers = [org, oidc.issuer()];
    let rules = rules(&issuers, audience);
    let claims = logout_token::verify_signed(oidc, token, &rules).await?;
    check_claims(&claims)
}

fn rules<'a>(issuers: &'a [&'a str], audience: &'a str) -> Rules<'a> {
    logout_token::pushed_rules(Typ::Required(TYP), issuers, audience, &["exp"])
}

/// The `jti` (`iat` was checked with the signature: present, not ahead,
/// recent enough for the `jti` memory).
fn check_claims(claims: &Map<String, Value>) -> Result<RevocationToken, LogoutTokenError> {
    let jti = logout_token::token_id(claims)?;
    Ok(RevocationToken {
        jti: jti.to_owned(),
    })
}

/// Reads the request body: a JSON object with `sub_id` in one of the two
/// formats. The error says what is wrong without quoting the body.
pub fn parse_subject(body: &[u8]) -> Result<Subject, String> {
    let json: Value =
        serde_json::from_slice(body).map_err(|_| "the body is not JSON".to_owned())?;
    let sub_id = json
        .get("sub_id")
        .and_then(Value::as_object)
        .ok_or("the body has no sub_id object")?;
    let field = |name: &str| {
        sub_id
            .get(name)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty() && v.len() <= 1024)
            .map(str::to_owned)
            .ok_or(format!(
                "sub_id.{name} is missing or not a short non-empty string"
            ))
    };
    match sub_id.get("format").and_then(Value::as_str) {
        Some("iss_sub") => Ok(Subject::IssSub {
            iss: field("iss")?,
            sub: field("sub")?,
        }),
        Some("email") => {
            let email = field("email")?;
            if !email.contains('@') {
                return Err("sub_id.email is not an email address".to_owned());
            }
            Ok(Subject::Email { email })
        }
        _ => Err("sub_id.format must be iss_sub or email".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::now;
    use crate::oidc::test_keys::{changed, jwk, KEY_1_JWK, KEY_1_PEM};
    use jsonwebtoken::jwk::JwkSet;
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use serde_json::json;

    const ORG: &str = "https://example.okta.com";
    const ISSUER: &str = "https://example.okta.com/oauth2/default";
    const AUD: &str = "https://auth.example.com/oauth2/global-token-revocation";

    fn keys() -> JwkSet {
        JwkSet {
            keys: vec![jwk(KEY_1_JWK)],
        }
    }

    fn claims() -> Value {
        let now = now();
        json!({
            "iss": ORG, "sub": "0oa-client", "aud": AUD, "jti": "gtr-1",
            "iat": now, "nbf": now - 300, "exp": now + 300,
        })
    }

    fn sign(typ: Option<&str>, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("test-key-1".into());
        header.typ = typ.map(str::to_owned);
        jsonwebtoken::encode(
            &header,
            claims,
            &EncodingKey::from_rsa_pem(KEY_1_PEM).unwrap(),
        )
        .unwrap()
    }

    fn check(token: &str) -> Result<RevocationToken, LogoutTokenError> {
        let issuers = [ORG, ISSUER];
        let claims =
            logout_token::verify_signed_with_keys(token, &keys(), &rules(&issuers, AUD), now())?;
        check_claims(&claims)
    }

    fn with(changes: Value) -> Value {
        changed(claims(), changes)
    }

    #[test]
    fn a_token_as_okta_signs_it_is_accepted_from_the_org_or_the_issuer() {
        assert_eq!(
            check(&sign(Some(TYP), &claims())),
            Ok(RevocationToken {
                jti: "gtr-1".into()
            })
        );
        assert!(check(&sign(Some(TYP), &with(json!({ "iss": ISSUER })))).is_ok());
        assert!(check(&sign(
            Some("application/Global-Token-Revocation+JWT"),
            &claims()
        ))
        .is_ok());
    }

    #[test]
    fn the_typ_must_be_the_revocation_one() {
        for typ in [None, Some("JWT"), Some("logout+jwt"), Some("at+jwt")] {
            assert_eq!(
                check(&sign(typ, &claims())),
                Err(LogoutTokenError::Type),
                "{typ:?}"
            );
        }
    }

    #[test]
    fn iss_aud_exp_iat_and_jti_are_all_checked() {
        for (changes, error) in [
            (
                json!({ "iss": "https://evil.example.com" }),
                LogoutTokenError::Issuer,
            ),
            (json!({ "aud": "0oa-client" }), LogoutTokenError::Audience),
            (json!({ "aud": null }), LogoutTokenError::Audience),
            (json!({ "exp": null }), LogoutTokenError::Expired),
            (json!({ "exp": now() - 600 }), LogoutTokenError::Expired),
            (json!({ "nbf": now() + 600 }), LogoutTokenError::NotYetValid),
            (json!({ "iat": null }), LogoutTokenError::IssuedAtMissing),
            (
                json!({ "iat": now() + 600 }),
                LogoutTokenError::IssuedInFuture,
            ),
            (json!({ "jti": null }), LogoutTokenError::TokenId),
        ] {
            assert_eq!(
                check(&sign(Some(TYP), &with(changes.clone()))),
                Err(error),
                "{changes}"
            );
        }
    }

    #[test]
    fn both_subject_formats_are_read() {
        assert_eq!(
            parse_subject(
                br#"{"sub_id":{"format":"iss_sub","iss":"https://o.okta.com","sub":"00u1"}}"#
            ),
            Ok(Subject::IssSub {
                iss: "https://o.okta.com".into(),
                sub: "00u1".into()
            })
        );
        assert_eq!(
            parse_subject(br#"{"sub_id":{"format":"email","email":"bob@example.com"}}"#),
            Ok(Subject::Email {
                email: "bob@example.com".into()
            })
        );
    }

    #[test]
    fn anything_else_is_a_malformed_body() {
        for body in [
            &b""[..],
            b"not json",
            b"[]",
            b"{}",
            br#"{"sub_id":"00u1"}"#,
            br#"{"sub_id":{"format":"opaque","id":"x"}}"#,
            br#"{"sub_id":{"format":"iss_sub","sub":"00u1"}}"#,
            br#"{"sub_id":{"format":"iss_sub","iss":"x","sub":""}}"#,
            br#"{"sub_id":{"format":"email","email":7}}"#,
            br#"{"sub_id":{"format":"email","email":"no-at-sign"}}"#,
        ] {
            assert!(
                parse_subject(body).is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
