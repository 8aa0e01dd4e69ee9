//! jsonwebtoken's crypto for this process: RS256 signatures (bearer, logout
//! and revocation tokens) are checked by `ring` (`rs256`), as ID tokens
//! are (`id_token_key`); every other algorithm, and all signing, stay with
//! jsonwebtoken's `rust_crypto` provider. Its RSA took ~2.4M instructions per
//! verification, so each made-up token with a known `kid` was a cheap way to
//! burn a core. Owns only the provider; [`install`] must run before any token
//! is read or signed (jsonwebtoken fixes its provider at first use).

use std::sync::LazyLock;

use jsonwebtoken::crypto::{rust_crypto, CryptoProvider, JwtVerifier};
use jsonwebtoken::errors::Result;
use jsonwebtoken::signature::{Error as SignatureError, Verifier};
use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind};

use super::rs256::Rs256Key;

/// rust_crypto's provider with ring's RS256 verifier.
static PROVIDER: LazyLock<CryptoProvider> = LazyLock::new(|| CryptoProvider {
    verifier_factory: verifier,
    ..rust_crypto::DEFAULT_PROVIDER.clone()
});

/// Makes rust_crypto's provider with ring for RS256 jsonwebtoken's provider
/// for this process; whether it is. `false` when another was fixed already
/// (a token was read or signed before): then rust_crypto's, which answers
/// the same, only slower.
pub fn install() -> bool {
    let ours: &'static CryptoProvider = &PROVIDER;
    match ours.install_default() {
        Ok(()) => true,
        Err(fixed) => std::ptr::eq(fixed, ours),
    }
}

/// ring for RS256 with a key given as modulus and exponent (every JWK);
/// rust_crypto for anything else.
fn verifier(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    if let (Algorithm::RS256, DecodingKeyKind::RsaModulusExponent { n, e }) =
        (algorithm, key.kind())
    {
        if let Some(key) = Rs256Key::new(n, e) {
            return Ok(Box::new(RingRs256(key)));
        }
    }
    (rust_crypto::DEFAULT_PROVIDER.verifier_factory)(algorithm, key)
}

/// [`Rs256Key`] as jsonwebtoken's verifier.
struct RingRs256(Rs256Key);

impl Verifier<Vec<u8>> for RingRs256 {
    fn verify(
        &self,
        message: &[u8],
        signature: &Vec<u8>,
    ) -> std::result::Result<(), SignatureError> {
        if self.0.verifies(message, signature) {
            Ok(())
        } else {
            Err(SignatureError::new())
        }
    }
}

impl JwtVerifier for RingRs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::RS256
    }
}

#[cfg(test)]
mod tests;
