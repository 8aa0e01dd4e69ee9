//! DPoP (RFC 9449) proofs for Okta's API service apps: a P-256 key made at
//! start-up (never the client-assertion key, and never written anywhere) and a
//! fresh signed proof per request, bound to the method, the URL without query,
//! the server's nonce when it gave one, and (`ath`) the access token it goes
//! with. It does no I/O.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, EllipticCurveKeyParameters,
    EllipticCurveKeyType, Jwk,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::elliptic_curve::sec1::ToEncodedPoint as _;
use p256::pkcs8::EncodePrivateKey as _;
use serde::Serialize;
use sha2::{Digest, Sha256};
use url::Url;

use crate::clock::now;
use crate::random::random_bytes;
use crate::random::random_token;

/// This process's DPoP key pair.
pub struct DpopKey {
    signing: EncodingKey,
    public: Jwk,
}

impl std::fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DpopKey([redacted])")
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    htm: &'a str,
    htu: &'a str,
    iat: u64,
    jti: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ath: Option<String>,
}

impl DpopKey {
    /// A new random P-256 key.
    pub fn generate() -> Result<DpopKey, String> {
        // A random 32-byte string is a valid scalar but for a ~2^-128 chance.
        let secret = (0..4)
            .find_map(|_| p256::SecretKey::from_slice(&random_bytes::<32>()).ok())
            .ok_or("no usable random P-256 key")?;
        let der = secret
            .to_pkcs8_der()
            .map_err(|e| format!("DPoP key encoding: {e}"))?;
        let point = secret.public_key().to_encoded_point(false);
        let (Some(x), Some(y)) = (point.x(), point.y()) else {
            return Err("DPoP key has no affine coordinates".into());
        };
        Ok(DpopKey {
            signing: EncodingKey::from_ec_der(der.as_bytes()),
            public: Jwk {
                common: CommonParameters::default(),
                algorithm: AlgorithmParameters::EllipticCurve(EllipticCurveKeyParameters {
                    key_type: EllipticCurveKeyType::EC,
                    curve: EllipticCurve::P256,
                    x: URL_SAFE_NO_PAD.encode(x),
                    y: URL_SAFE_NO_PAD.encode(y),
                }),
            },
        })
    }

    /// A proof for one request. `access_token`: the token the request carries
    /// (API calls), hashed into `ath`; `None` at the token endpoint.
    pub fn proof(
        &self,
        method: &str,
        url: &Url,
        nonce: Option<&str>,
        access_token: Option<&str>,
    ) -> Result<String, String> {
        let mut htu = url.clone();
        htu.set_query(None);
        htu.set_fragment(None);
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some("dpop+jwt".to_string());
        header.jwk = Some(self.public.clone());
        let claims = Claims {
            htm: method,
            htu: htu.as_str(),
            iat: now(),
            jti: random_token(),
            nonce,
            ath: access_token.map(token_hash),
        };
        jsonwebtoken::encode(&header, &claims, &self.signing)
            .map_err(|e| format!("DPoP proof: {e}"))
    }
}

/// `ath`: base64url of the SHA-256 of the access token.
pub fn token_hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    #[test]
    fn a_proof_verifies_with_the_key_in_its_own_header() {
        let key = DpopKey::generate().unwrap();
        let url = Url::parse("https://acme.okta.com/api/v1/users/00u1/groups?limit=200").unwrap();
        let proof = key.proof("GET", &url, Some("n-1"), Some("token")).unwrap();

        let header = jsonwebtoken::decode_header(&proof).unwrap();
        assert_eq!(header.typ.as_deref(), Some("dpop+jwt"));
        let jwk = header.jwk.expect("the public key travels in the header");
        let mut validation = Validation::new(Algorithm::ES256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        let claims = jsonwebtoken::decode::<serde_json::Value>(
            &proof,
            &DecodingKey::from_jwk(&jwk).unwrap(),
            &validation,
        )
        .unwrap()
        .claims;
        assert_eq!(claims["htm"], "GET");
        assert_eq!(
            claims["htu"],
            "https://acme.okta.com/api/v1/users/00u1/groups"
        );
        assert_eq!(claims["nonce"], "n-1");
        assert_eq!(claims["ath"], token_hash("token"));
        assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 16));
    }

    #[test]
    fn proofs_are_never_reused_and_keys_differ_per_process() {
        let key = DpopKey::generate().unwrap();
        let url = Url::parse("https://acme.okta.com/oauth2/v1/token").unwrap();
        let a = key.proof("POST", &url, None, None).unwrap();
        let b = key.proof("POST", &url, None, None).unwrap();
        assert_ne!(a, b);
        let other = DpopKey::generate().unwrap();
        assert_ne!(
            serde_json::to_string(&key.public).unwrap(),
            serde_json::to_string(&other.public).unwrap()
        );
    }

    #[test]
    fn ath_is_base64url_sha256() {
        // RFC 9449's example: the hash of "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU".
        assert_eq!(
            token_hash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"),
            "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
        );
    }
}
