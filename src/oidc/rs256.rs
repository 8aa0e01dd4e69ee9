//! An RSA public key checking RS256 (PKCS#1 v1.5 with SHA-256) signatures with
//! `ring`, already in the tree for TLS. The pure-Rust RSA of openidconnect
//! and jsonwebtoken took ~2.4M instructions per verification; ring takes
//! ~0.4M. Used by ID tokens (`id_token_key`) and by every token jsonwebtoken
//! reads (`jwt_crypto`). Owns only the signature check.

/// Modulus and exponent, big-endian without leading zero octets (as ring
/// reads them).
#[derive(Clone, Debug)]
pub struct Rs256Key {
    n: Vec<u8>,
    e: Vec<u8>,
}

impl Rs256Key {
    /// The key of a big-endian modulus and exponent, leading zero octets
    /// allowed; `None` when either is zero or empty.
    pub fn new(n: &[u8], e: &[u8]) -> Option<Rs256Key> {
        let significant = |bytes: &[u8]| -> Option<Vec<u8>> {
            let first = bytes.iter().position(|&b| b != 0)?;
            Some(bytes[first..].to_vec())
        };
        Some(Rs256Key {
            n: significant(n)?,
            e: significant(e)?,
        })
    }

    /// Whether `signature` is this key's RS256 signature of `message`. Moduli
    /// of 2048 to 8192 bits only (Okta's keys are 2048): a smaller key never
    /// verifies.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        ring::signature::RsaPublicKeyComponents {
            n: &self.n,
            e: &self.e,
        }
        .verify(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            message,
            signature,
        )
        .is_ok()
    }
}
