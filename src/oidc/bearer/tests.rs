use super::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

#[test]
fn only_the_bearer_scheme_yields_a_token() {
    assert_eq!(bearer_token(b"Bearer abc"), Some(&b"abc"[..]));
    assert_eq!(bearer_token(b"bearer  abc "), Some(&b"abc"[..]));
    assert_eq!(bearer_token(b" BEARER\tx y"), None, "a tab is no separator");
    assert_eq!(bearer_token(b"Basic abc"), None);
    assert_eq!(bearer_token(b"Bearer"), None);
    assert_eq!(bearer_token(b"Bearer "), None);
    // Bytes that are not text are still a bearer token: refused when verified.
    assert_eq!(bearer_token(b"Bearer ab\xffc"), Some(&b"ab\xffc"[..]));
    assert_eq!(bearer_token(b"Basic \xff"), None);
    // Only spaces and tabs are trimmed: another control byte stays in the
    // token, which is then refused, as a header read as text refused it.
    assert_eq!(bearer_token(b"Bearer abc\x0c"), Some(&b"abc\x0c"[..]));
    assert_eq!(bearer_token(b"\x0cBearer abc"), None);
    assert_eq!(bearer_token(b"\tBearer abc\t "), Some(&b"abc"[..]));
}

#[test]
fn scopes_and_client_ids_need_an_audience() {
    assert_eq!(BearerSettings::parse(None, None, None), Ok(None));
    let problems = BearerSettings::parse(None, Some("0oa1".into()), Some("a".into()))
        .expect_err("no audience");
    assert_eq!(problems.len(), 2);
    assert!(problems[0].contains("BEARER_CLIENT_IDS") && problems[0].contains("BEARER_AUDIENCE"));
    let s = BearerSettings::parse(
        Some("api://default".into()),
        Some("0oa1, 0oa2".into()),
        Some("read write".into()),
    )
    .unwrap()
    .unwrap();
    assert_eq!(s.client_ids, ["0oa1", "0oa2"]);
    assert_eq!(s.scopes, ["read", "write"]);
}

#[test]
fn opaque_and_malformed_tokens_are_told_apart() {
    let v = BearerVerifier::new(
        BearerSettings::parse(Some("api://default".into()), None, None)
            .unwrap()
            .unwrap(),
        "https://example.okta.com/oauth2/default",
    );
    let keys = JwkSet { keys: Vec::new() };
    assert_eq!(v.verify_with_keys("00Tabcdef", &keys, 0), Err(E::Opaque));
    assert_eq!(v.verify_with_keys("a.b.c.d.e", &keys, 0), Err(E::Opaque));
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#);
    assert_eq!(
        v.verify_with_keys(&format!("{header}.e30."), &keys, 0),
        Err(E::Algorithm)
    );
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","kid":"k"}"#);
    assert_eq!(
        v.verify_with_keys(&format!("{header}.e30.sig"), &keys, 0),
        Err(E::UnknownKey)
    );
}

mod cached {
    use super::*;
    use crate::oidc::test_keys::{jwk, KEY_1_JWK, KEY_1_PEM};
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use serde_json::json;

    const ISSUER: &str = "https://example.okta.com/oauth2/default";

    fn verifier() -> BearerVerifier {
        let settings = BearerSettings::parse(Some("api://default".into()), None, None)
            .unwrap()
            .unwrap();
        BearerVerifier::new(settings, ISSUER)
    }

    fn keys() -> JwkSet {
        JwkSet {
            keys: vec![jwk(KEY_1_JWK)],
        }
    }

    /// Alice's token, valid from now until `exp`.
    fn token(exp: u64) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("test-key-1".into());
        let claims = json!({
            "iss": ISSUER, "aud": "api://default", "iat": now(), "exp": exp,
            "uid": "00ualice", "sub": "alice@example.com", "cid": "0oa1",
        });
        jsonwebtoken::encode(
            &header,
            &claims,
            &EncodingKey::from_rsa_pem(KEY_1_PEM).unwrap(),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn a_known_token_is_refused_exactly_when_its_exp_and_the_skew_have_passed() {
        let v = verifier();
        let exp = now() + 3600;
        let t = token(exp);
        assert_eq!(
            v.verify_with_cache_at(&t, &keys(), now())
                .await
                .unwrap()
                .subject,
            "00ualice"
        );
        // No keys from here on: every answer is a remembered one.
        let none = JwkSet { keys: Vec::new() };
        let last_good = exp + CLOCK_SKEW - 1;
        assert!(v.verify_with_cache_at(&t, &none, last_good).await.is_ok());
        assert_eq!(
            v.verify_with_cache_at(&t, &none, exp + CLOCK_SKEW).await,
            Err(E::Expired)
        );
        // Refused once, it is forgotten by the table and the cache alike.
        assert!(v.recent.get(t.as_bytes()).is_none());
        assert!(
            v.verify_with_cache_at(&t, &none, last_good).await.is_err(),
            "verified again, with no keys"
        );
    }

    #[tokio::test]
    async fn a_token_differing_from_a_known_one_in_one_byte_is_verified_and_refused() {
        let v = verifier();
        let t = token(now() + 3600);
        assert!(v.verify_with_cache(&t, &keys()).await.is_ok());
        let dots: Vec<usize> = t.match_indices('.').map(|(i, _)| i).collect();
        // A byte of the header, of the claims, and of the signature.
        for i in [5, dots[0] + 10, dots[1] + 20, t.len() - 2] {
            let mut other = t.clone().into_bytes();
            other[i] = if other[i] == b'A' { b'B' } else { b'A' };
            let other = String::from_utf8(other).unwrap();
            assert!(
                v.verify_with_cache(&other, &keys()).await.is_err(),
                "byte {i} changed"
            );
        }
        assert!(v.verify_with_cache(&t, &keys()).await.is_ok());
    }
}
