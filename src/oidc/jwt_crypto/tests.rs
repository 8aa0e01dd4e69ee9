use super::*;
use crate::oidc::test_keys::{jwk, signed_by_key_1, KEY_1_JWK, KEY_2_JWK};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::json;

fn key(text: &str) -> DecodingKey {
    DecodingKey::from_jwk(&jwk(text)).unwrap()
}

#[test]
fn ring_and_rust_crypto_agree_on_good_and_spoiled_rs256_signatures() {
    let (input, signature) = signed_by_key_1(&json!({"sub": "a"}));
    let mut cases = vec![
        ("valid", key(KEY_1_JWK), input.clone(), signature.clone()),
        (
            "another key",
            key(KEY_2_JWK),
            input.clone(),
            signature.clone(),
        ),
        ("empty signature", key(KEY_1_JWK), input.clone(), Vec::new()),
        (
            "short signature",
            key(KEY_1_JWK),
            input.clone(),
            signature[1..].to_vec(),
        ),
    ];
    for at in [0, 100, signature.len() - 1] {
        let mut spoiled = signature.clone();
        spoiled[at] ^= 0x80;
        cases.push(("a signature bit", key(KEY_1_JWK), input.clone(), spoiled));
    }
    for at in [0, input.len() / 2, input.len() - 1] {
        let mut spoiled = input.clone();
        spoiled[at] ^= 0x01;
        cases.push(("a message bit", key(KEY_1_JWK), spoiled, signature.clone()));
    }
    let slow = |key: &DecodingKey| {
        (rust_crypto::DEFAULT_PROVIDER.verifier_factory)(&Algorithm::RS256, key).unwrap()
    };
    for (what, key, message, signature) in cases {
        let ours = verifier(&Algorithm::RS256, &key).unwrap();
        let fast = ours.verify(&message, &signature).is_ok();
        assert_eq!(
            fast,
            slow(&key).verify(&message, &signature).is_ok(),
            "{what}"
        );
        assert_eq!(fast, what == "valid", "{what}");
        assert_eq!(ours.algorithm(), Algorithm::RS256);
    }
}

#[test]
fn other_algorithms_and_key_kinds_are_rust_cryptos() {
    let (input, signature) = signed_by_key_1(&json!({"sub": "a"}));
    // An RS256 signature is no RS384 one, whoever checks it.
    let rs384 = verifier(&Algorithm::RS384, &key(KEY_1_JWK)).unwrap();
    assert_eq!(rs384.algorithm(), Algorithm::RS384);
    assert!(rs384.verify(&input, &signature).is_err());
    // An HMAC key cannot make an RS256 verifier.
    assert!(verifier(&Algorithm::RS256, &DecodingKey::from_secret(b"secret")).is_err());
}

#[test]
fn a_modulus_with_a_leading_zero_octet_is_the_same_key() {
    let (input, signature) = signed_by_key_1(&json!({"sub": "a"}));
    let jwk: serde_json::Value = serde_json::from_str(KEY_1_JWK).unwrap();
    let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
    let e = URL_SAFE_NO_PAD.decode(jwk["e"].as_str().unwrap()).unwrap();
    let padded = DecodingKey::from_rsa_raw_components(&[&[0u8][..], &n].concat(), &e);
    let ours = verifier(&Algorithm::RS256, &padded).unwrap();
    assert!(ours.verify(&input, &signature).is_ok());
}
