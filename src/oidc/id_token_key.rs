//! An IdP signing key for the ID token verifier, whose RS256 signatures are
//! checked by `ring` ([`Rs256Key`]) instead of openidconnect's pure-Rust RSA:
//! one verification took ~2.4M instructions, 85% of a sign-in's CPU.
//! Everything else (key choice by `kid`, `use` and `alg`, the claims) stays
//! openidconnect's. Owns only the RS256 check; any other
//! algorithm or key is left to openidconnect as before.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openidconnect::core::{
    CoreJsonWebKey, CoreJsonWebKeyType, CoreJsonWebKeyUse, CoreJwsSigningAlgorithm,
};
use openidconnect::{
    JsonWebKey, JsonWebKeyAlgorithm, JsonWebKeyId, JsonWebKeySet, SignatureVerificationError,
};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::rs256::Rs256Key;

/// An IdP key as openidconnect reads it, with its RSA modulus and exponent
/// (big-endian, no leading zeros) when it is an RSA key.
#[derive(Clone, Debug)]
pub struct IdTokenKey {
    core: CoreJsonWebKey,
    rsa: Option<Rs256Key>,
}

impl IdTokenKey {
    /// The same key, with its RSA parts read once.
    pub fn from_core(core: &CoreJsonWebKey) -> IdTokenKey {
        let rsa = match core.key_type() {
            CoreJsonWebKeyType::RSA => rsa_parts(core),
            _ => None,
        };
        IdTokenKey {
            core: core.clone(),
            rsa,
        }
    }
}

/// The key set for one verification.
pub fn key_set(keys: &JsonWebKeySet<CoreJsonWebKey>) -> JsonWebKeySet<IdTokenKey> {
    JsonWebKeySet::new(keys.keys().iter().map(IdTokenKey::from_core).collect())
}

/// `n` and `e` of an RSA JWK; `None` when either is missing or not base64url
/// (openidconnect then refuses the key as before).
fn rsa_parts(core: &CoreJsonWebKey) -> Option<Rs256Key> {
    #[derive(Deserialize)]
    struct Parts {
        n: String,
        e: String,
    }
    let parts: Parts = serde_json::from_value(serde_json::to_value(core).ok()?).ok()?;
    let read = |text: &str| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok();
    Rs256Key::new(&read(&parts.n)?, &read(&parts.e)?)
}

impl Serialize for IdTokenKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.core.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for IdTokenKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        CoreJsonWebKey::deserialize(deserializer).map(|core| IdTokenKey::from_core(&core))
    }
}

impl JsonWebKey for IdTokenKey {
    type KeyUse = CoreJsonWebKeyUse;
    type SigningAlgorithm = CoreJwsSigningAlgorithm;

    fn key_id(&self) -> Option<&JsonWebKeyId> {
        self.core.key_id()
    }

    fn key_type(&self) -> &CoreJsonWebKeyType {
        self.core.key_type()
    }

    fn key_use(&self) -> Option<&CoreJsonWebKeyUse> {
        self.core.key_use()
    }

    fn signing_alg(&self) -> JsonWebKeyAlgorithm<&CoreJwsSigningAlgorithm> {
        self.core.signing_alg()
    }

    fn new_symmetric(key: Vec<u8>) -> Self {
        IdTokenKey {
            core: CoreJsonWebKey::new_symmetric(key),
            rsa: None,
        }
    }

    fn verify_signature(
        &self,
        signature_alg: &CoreJwsSigningAlgorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), SignatureVerificationError> {
        match (signature_alg, &self.rsa) {
            (CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256, Some(rsa)) => {
                if rsa.verifies(message, signature) {
                    Ok(())
                } else {
                    Err(SignatureVerificationError::CryptoError(
                        "bad RS256 signature".to_string(),
                    ))
                }
            }
            _ => self
                .core
                .verify_signature(signature_alg, message, signature),
        }
    }

    fn hash_bytes(&self, bytes: &[u8], alg: &CoreJwsSigningAlgorithm) -> Result<Vec<u8>, String> {
        self.core.hash_bytes(bytes, alg)
    }
}

#[cfg(test)]
mod tests;
