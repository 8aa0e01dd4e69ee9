use super::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

#[test]
fn only_the_bearer_scheme_yields_a_token() {
    assert_eq!(bearer_token("Bearer abc"), Some("abc"));
    assert_eq!(bearer_token("bearer  abc "), Some("abc"));
    assert_eq!(bearer_token("Basic abc"), None);
    assert_eq!(bearer_token("Bearer"), None);
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
