//! An independent verifier of the signed identity (`X-Auth-Request-Jwt`):
//! fetch the published keys ([`jwks`]) and [`verify`] a token with jsonwebtoken,
//! not with the service's signing code, plus the test's ES256 key. It OWNS
//! verification only; it must NOT sign.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use reqwest::StatusCode;
use serde_json::Value;

pub const ES256_PEM: &str = include_str!("../keys/identity-es256.pem");

/// The published keys.
pub async fn jwks(client: &reqwest::Client, url: &str) -> JwkSet {
    let response = client.get(url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// Verifies a signed identity with the published keys, for `audience`, and
/// returns its claims.
pub fn verify(token: &str, keys: &JwkSet, issuer: &str, audience: &str) -> Value {
    let head = decode_header(token).unwrap();
    let kid = head.kid.expect("a kid");
    let jwk = keys.find(&kid).expect("the kid is published");
    assert!(
        matches!(head.alg, Algorithm::ES256 | Algorithm::EdDSA),
        "{:?}",
        head.alg
    );
    let mut validation = Validation::new(head.alg);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
        .unwrap_or_else(|e| panic!("X-Auth-Request-Jwt does not verify: {e}"))
        .claims
}
