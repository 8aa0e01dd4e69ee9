use super::*;
use crate::oidc::test_keys::{signed_by_key_1, KEY_1_JWK, KEY_2_JWK};
use serde_json::{json, Value};

fn core(text: &str) -> CoreJsonWebKey {
    serde_json::from_str(text).unwrap()
}

const RS256: CoreJwsSigningAlgorithm = CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256;

#[test]
fn ring_and_openidconnect_agree_on_good_and_spoiled_signatures() {
    let (input, signature) = signed_by_key_1(&json!({"sub": "00ualice", "nonce": "n-1"}));
    let right = core(KEY_1_JWK);
    let wrong = core(KEY_2_JWK);
    let mut cases = vec![
        ("valid", right.clone(), input.clone(), signature.clone()),
        (
            "another key",
            wrong.clone(),
            input.clone(),
            signature.clone(),
        ),
        ("empty signature", right.clone(), input.clone(), Vec::new()),
        (
            "short signature",
            right.clone(),
            input.clone(),
            signature[1..].to_vec(),
        ),
    ];
    for at in [0, 10, signature.len() - 1] {
        let mut spoiled = signature.clone();
        spoiled[at] ^= 0x01;
        cases.push(("a signature bit", right.clone(), input.clone(), spoiled));
    }
    for at in [0, input.len() / 2, input.len() - 1] {
        let mut spoiled = input.clone();
        spoiled[at] ^= 0x01;
        cases.push(("a message bit", right.clone(), spoiled, signature.clone()));
    }
    for (what, key, message, signature) in cases {
        let ours = IdTokenKey::from_core(&key);
        assert!(ours.rsa.is_some(), "{what}: an RSA key is read");
        let fast = ours.verify_signature(&RS256, &message, &signature).is_ok();
        let slow = key.verify_signature(&RS256, &message, &signature).is_ok();
        assert_eq!(fast, slow, "{what}");
        assert_eq!(fast, what == "valid", "{what}");
    }
}

#[test]
fn a_modulus_sent_with_a_leading_zero_octet_is_the_same_key() {
    let (input, signature) = signed_by_key_1(&json!({"sub": "00ualice"}));
    let mut jwk: Value = serde_json::from_str(KEY_1_JWK).unwrap();
    let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
    let padded = [&[0u8][..], &n].concat();
    jwk["n"] = json!(URL_SAFE_NO_PAD.encode(padded));
    let key: IdTokenKey = serde_json::from_value(jwk).unwrap();
    assert!(key.verify_signature(&RS256, &input, &signature).is_ok());
}

#[test]
fn other_algorithms_and_keys_are_left_to_openidconnect() {
    let (input, signature) = signed_by_key_1(&json!({"sub": "00ualice"}));
    let key = IdTokenKey::from_core(&core(KEY_1_JWK));
    // An RS256 signature checked as RS384 fails here as it does in openidconnect.
    let rs384 = CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384;
    assert!(key.verify_signature(&rs384, &input, &signature).is_err());
    // A key without usable RSA parts is not read as one.
    let mut broken: Value = serde_json::from_str(KEY_1_JWK).unwrap();
    broken["n"] = json!("not base64url!");
    let broken = IdTokenKey::from_core(&core(&broken.to_string()));
    assert!(broken.rsa.is_none());
    assert!(broken.verify_signature(&RS256, &input, &signature).is_err());
    // An HMAC key (openidconnect makes one from a client secret) is not RSA.
    let hmac = IdTokenKey::new_symmetric(b"0123456789abcdef0123456789abcdef".to_vec());
    assert!(hmac.rsa.is_none());
    assert!(hmac.verify_signature(&RS256, &input, &signature).is_err());
}

#[test]
fn the_key_reads_and_writes_as_the_same_jwk() {
    let key: IdTokenKey = serde_json::from_str(KEY_1_JWK).unwrap();
    assert_eq!(
        serde_json::to_value(&key).unwrap(),
        serde_json::to_value(core(KEY_1_JWK)).unwrap()
    );
    assert_eq!(key.key_id(), core(KEY_1_JWK).key_id());
    let set = key_set(&JsonWebKeySet::new(vec![core(KEY_1_JWK), core(KEY_2_JWK)]));
    assert_eq!(set.keys().len(), 2);
    assert!(set.keys().iter().all(|k| k.rsa.is_some()));
}
