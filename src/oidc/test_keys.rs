//! Test support shared by the unit tests of the token kinds: the RSA test keys
//! of `tests/keys` and edits to a token's claims. Compiled for tests only; it
//! holds no test and must not grow into a fake IdP (that is `tests/api`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::Value;

pub(super) const KEY_1_PEM: &[u8] = include_bytes!("../../tests/keys/test-key-1.pem");
pub(super) const KEY_2_PEM: &[u8] = include_bytes!("../../tests/keys/test-key-2.pem");
pub(super) const KEY_1_JWK: &str = include_str!("../../tests/keys/test-key-1.jwk.json");
pub(super) const KEY_2_JWK: &str = include_str!("../../tests/keys/test-key-2.jwk.json");

pub(super) fn jwk(text: &str) -> Jwk {
    serde_json::from_str(text).unwrap()
}

/// A compact RS256 JWS of `claims` by test key 1, as a verifier sees it:
/// (signing input, signature).
pub(super) fn signed_by_key_1(claims: &Value) -> (Vec<u8>, Vec<u8>) {
    let key = EncodingKey::from_rsa_pem(KEY_1_PEM).unwrap();
    let token = jsonwebtoken::encode(&Header::new(Algorithm::RS256), claims, &key).unwrap();
    let (input, signature) = token.rsplit_once('.').unwrap();
    (
        input.as_bytes().to_vec(),
        URL_SAFE_NO_PAD.decode(signature).unwrap(),
    )
}

/// `claims` with each member of `changes` set, or removed where it is null.
pub(super) fn changed(mut claims: Value, changes: Value) -> Value {
    for (name, value) in changes.as_object().unwrap() {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(name);
        } else {
            claims[name] = value.clone();
        }
    }
    claims
}
