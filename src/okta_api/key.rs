//! The private key of an Okta API service app (`OKTA_API_PRIVATE_KEY`): parsed
//! once at start-up from a PEM (RSA PKCS#1 or PKCS#8, EC P-256 SEC1 or PKCS#8)
//! or a private JWK as Okta's admin console generates it, into something that
//! signs client assertions. It owns no I/O and never shows key material: its
//! `Debug` prints only the algorithm and key id, and its errors say what kind
//! of input was wrong, never the input.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::pkcs8::EncodePrivateKey as _;
use rsa::pkcs1::EncodeRsaPrivateKey as _;
use serde::Deserialize;

/// A key that signs `private_key_jwt` client assertions.
#[derive(Clone)]
pub struct AssertionKey {
    pub(crate) key: EncodingKey,
    pub algorithm: Algorithm,
    /// The JWK's `kid`, sent in the assertion's header when known (Okta needs
    /// it when the app has several keys).
    pub kid: Option<String>,
}

impl std::fmt::Debug for AssertionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "AssertionKey({:?}, kid {:?}, [redacted])",
            self.algorithm, self.kid
        )
    }
}

/// What may stand in `OKTA_API_PRIVATE_KEY`, in words for error messages.
const EXPECTED: &str = "a private key as PEM (-----BEGIN PRIVATE KEY-----, RSA or EC P-256) \
                        or as the JWK (JSON with \"d\") that Okta generated for the app";

impl AssertionKey {
    /// Parses a PEM or a JWK. The error names the problem, never the input.
    pub fn parse(text: &str) -> Result<AssertionKey, String> {
        let text = text.trim();
        let key = if text.starts_with('{') {
            from_jwk(text)?
        } else if text.starts_with("-----BEGIN") {
            from_pem(text)?
        } else {
            return Err(format!("is neither a PEM nor a JWK: give {EXPECTED}"));
        };
        // A key the signer cannot use must fail now, not at the first check.
        jsonwebtoken::encode(
            &Header::new(key.algorithm),
            &serde_json::json!({"probe": true}),
            &key.key,
        )
        .map_err(|e| format!("cannot sign with this key ({e}): give {EXPECTED}"))?;
        Ok(key)
    }
}

fn from_pem(text: &str) -> Result<AssertionKey, String> {
    if text.contains("PUBLIC KEY-----") {
        return Err(format!(
            "is a public key: give the private key ({EXPECTED}); the public half is what Okta keeps"
        ));
    }
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        return Err(
            "is an encrypted private key: give it unencrypted (openssl pkcs8 -topk8 -nocrypt), \
             kept safe by the secret store or file permissions"
                .to_string(),
        );
    }
    if text.contains("-----BEGIN EC PRIVATE KEY-----") {
        let secret = p256::SecretKey::from_sec1_pem(text)
            .map_err(|_| "is not an EC P-256 private key (only P-256 is supported)".to_string())?;
        return ec_key(&secret, None);
    }
    let bytes = text.as_bytes();
    if let Ok(key) = EncodingKey::from_rsa_pem(bytes) {
        return Ok(AssertionKey {
            key,
            algorithm: Algorithm::RS256,
            kid: None,
        });
    }
    if let Ok(key) = EncodingKey::from_ec_pem(bytes) {
        return Ok(AssertionKey {
            key,
            algorithm: Algorithm::ES256,
            kid: None,
        });
    }
    Err(format!(
        "is a PEM but not a usable private key: give {EXPECTED}"
    ))
}

/// The members of a private JWK that matter here.
#[derive(Deserialize)]
struct PrivateJwk {
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    alg: Option<String>,
    #[serde(default)]
    crv: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
    #[serde(default)]
    d: Option<String>,
    #[serde(default)]
    p: Option<String>,
    #[serde(default)]
    q: Option<String>,
}

fn from_jwk(text: &str) -> Result<AssertionKey, String> {
    let jwk: PrivateJwk = serde_json::from_str(text)
        .map_err(|_| format!("is not valid JWK JSON: give {EXPECTED}"))?;
    let part = |name: &str, value: &Option<String>| -> Result<Vec<u8>, String> {
        let value = value.as_deref().ok_or_else(|| {
            if name == "d" {
                "is a public JWK (no \"d\"): give the private JWK Okta generated".to_string()
            } else {
                format!("is a JWK without \"{name}\"")
            }
        })?;
        URL_SAFE_NO_PAD
            .decode(value.trim_end_matches('='))
            .map_err(|_| format!("is a JWK whose \"{name}\" is not base64url"))
    };
    match jwk.kty.as_str() {
        "RSA" => {
            let big = |name: &str, value: &Option<String>| {
                part(name, value).map(|b| rsa::BigUint::from_bytes_be(&b))
            };
            let d = big("d", &jwk.d)?;
            let n = big("n", &jwk.n)?;
            let e = big("e", &jwk.e)?;
            let primes = vec![big("p", &jwk.p)?, big("q", &jwk.q)?];
            let private = rsa::RsaPrivateKey::from_components(n, e, d, primes)
                .map_err(|_| "is an RSA JWK whose numbers do not form a key".to_string())?;
            let der = private
                .to_pkcs1_der()
                .map_err(|_| "is an RSA JWK that cannot be encoded".to_string())?;
            let algorithm = match jwk.alg.as_deref() {
                None | Some("RS256") => Algorithm::RS256,
                Some("RS384") => Algorithm::RS384,
                Some("RS512") => Algorithm::RS512,
                Some(other) => return Err(format!("is an RSA JWK for {other}: use RS256")),
            };
            Ok(AssertionKey {
                key: EncodingKey::from_rsa_der(der.as_bytes()),
                algorithm,
                kid: jwk.kid,
            })
        }
        "EC" => {
            if jwk.crv.as_deref() != Some("P-256") {
                return Err(
                    "is an EC JWK on a curve other than P-256 (only P-256 is supported)".into(),
                );
            }
            let d = part("d", &jwk.d)?;
            let secret = p256::SecretKey::from_slice(&d)
                .map_err(|_| "is an EC JWK whose \"d\" is not a P-256 key".to_string())?;
            ec_key(&secret, jwk.kid)
        }
        other => Err(format!("is a JWK of type {other}: use RSA or EC (P-256)")),
    }
}

fn ec_key(secret: &p256::SecretKey, kid: Option<String>) -> Result<AssertionKey, String> {
    let der = secret
        .to_pkcs8_der()
        .map_err(|_| "is an EC key that cannot be encoded".to_string())?;
    Ok(AssertionKey {
        key: EncodingKey::from_ec_der(der.as_bytes()),
        algorithm: Algorithm::ES256,
        kid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSA_PEM: &str = include_str!("../../tests/keys/test-key-1.pem");

    #[test]
    fn an_rsa_pem_signs_rs256() {
        let key = AssertionKey::parse(RSA_PEM).unwrap();
        assert_eq!(key.algorithm, Algorithm::RS256);
        assert!(key.kid.is_none());
    }

    #[test]
    fn an_ec_key_in_every_form_signs_es256() {
        let secret = p256::SecretKey::from_slice(&[7u8; 32]).unwrap();
        let pkcs8 = secret.to_pkcs8_pem(Default::default()).unwrap();
        let sec1 = secret.to_sec1_pem(Default::default()).unwrap();
        let d = URL_SAFE_NO_PAD.encode([7u8; 32]);
        let jwk = format!(r#"{{"kty":"EC","crv":"P-256","kid":"k1","x":"x","y":"y","d":"{d}"}}"#);
        for text in [pkcs8.as_str(), sec1.as_str(), jwk.as_str()] {
            let key = AssertionKey::parse(text).unwrap_or_else(|e| panic!("{e}: {text}"));
            assert_eq!(key.algorithm, Algorithm::ES256);
        }
        assert_eq!(
            AssertionKey::parse(&jwk).unwrap().kid.as_deref(),
            Some("k1")
        );
    }

    #[test]
    fn bad_inputs_say_what_is_wrong_without_echoing_them() {
        let public = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----";
        let cases = [
            ("hunter2-not-a-key", "neither a PEM nor a JWK"),
            (public, "public key"),
            (
                r#"{"kty":"EC","crv":"P-256","x":"a","y":"b"}"#,
                "public JWK",
            ),
            (r#"{"kty":"EC","crv":"P-384","d":"AAAA"}"#, "P-256"),
            (r#"{"kty":"oct","k":"AAAA"}"#, "type oct"),
            ("{not json", "not valid JWK JSON"),
            (
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
                "not a usable private key",
            ),
            (
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----",
                "encrypted",
            ),
        ];
        for (text, needle) in cases {
            let e = AssertionKey::parse(text).unwrap_err();
            assert!(e.contains(needle), "{text}: {e}");
            assert!(!e.contains("hunter2") && !e.contains("AAAA"), "{e}");
        }
    }

    #[test]
    fn debug_shows_no_key_material() {
        let key = AssertionKey::parse(RSA_PEM).unwrap();
        let shown = format!("{key:?}");
        assert!(
            shown.contains("RS256") && shown.contains("redacted"),
            "{shown}"
        );
        assert!(!shown.contains("MII"), "{shown}");
    }
}
