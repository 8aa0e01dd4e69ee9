//! Signed identity (`IDENTITY_JWT_KEY`): the short-lived JWT of
//! `X-Auth-Request-Jwt` (ES256 with an EC P-256 key or EdDSA with an Ed25519
//! key; `kid` = the key's RFC 7638 thumbprint) and the public keys that
//! `/oauth2/jwks.json` publishes. The first key signs, all are published. A
//! token is reused per identity and audience until less than half its lifetime
//! is left, so a check does not sign; an API token also keeps its last
//! one ([`Memo`]), so a warm check does not look it up either. Private keys
//! never leave this module and `Debug` never shows them. No actix types.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::pkcs8::DecodePrivateKey;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use moka::future::Cache;
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::clock::now;
use crate::identity_headers::HeaderText;

mod memo;

pub use memo::Memo;

/// How long a signed identity is valid.
pub const LIFETIME: u64 = 300;
/// Identities and audiences whose token is kept (~0.7 kB each: at most ~14 MB).
const CACHE_CAPACITY: u64 = 20_000;
/// Group names beyond this many bytes are left out of the token (and
/// `groups_truncated` is set), so the header stays well under 4 KB.
const GROUPS_BUDGET: usize = 2_000;

/// One private key with what its signatures and JWK need.
struct SigningKey {
    key: EncodingKey,
    alg: Algorithm,
    kid: String,
    public: Value,
}

/// The keys of `IDENTITY_JWT_KEY`: the first signs, all are published.
#[derive(Clone)]
pub struct IdentityKeys {
    keys: Arc<[SigningKey]>,
    /// `/oauth2/jwks.json`'s body, rendered once.
    jwks: Arc<str>,
}

impl std::fmt::Debug for IdentityKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<&str> = self.keys.iter().map(|k| k.kid.as_str()).collect();
        f.debug_struct("IdentityKeys")
            .field("kids", &kids)
            .field("private", &"[redacted]")
            .finish()
    }
}

impl IdentityKeys {
    /// Reads one or more PEM private keys (PKCS#8 `PRIVATE KEY` blocks,
    /// separated by commas or newlines; a literal `\n` counts as a newline, for
    /// env files). `name` is the variable named in messages, which never
    /// contain key material.
    pub fn parse(text: &str, name: &str) -> Result<IdentityKeys, Vec<String>> {
        let text = text.replace("\\n", "\n");
        let blocks = pem_blocks(&text);
        if blocks.is_empty() {
            return Err(vec![format!(
                "{name} holds no PEM key: put an EC P-256 or Ed25519 private key in PKCS#8 PEM \
                 form there, e.g. from `openssl genpkey -algorithm EC -pkeyopt \
                 ec_paramgen_curve:P-256` or `openssl genpkey -algorithm ed25519`"
            )]);
        }
        let several = blocks.len() > 1;
        let mut keys = Vec::new();
        let mut problems = Vec::new();
        for (i, block) in blocks.iter().enumerate() {
            let which = if several {
                format!("{name} key {}", i + 1)
            } else {
                name.to_string()
            };
            match signing_key(block) {
                Some(key) => keys.push(key),
                None => problems.push(format!(
                    "{which} is not an EC P-256 or Ed25519 private key in PKCS#8 PEM form \
                     (-----BEGIN PRIVATE KEY-----): generate one with `openssl genpkey \
                     -algorithm EC -pkeyopt ec_paramgen_curve:P-256` or `openssl genpkey \
                     -algorithm ed25519`"
                )),
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let jwks = json!({ "keys": keys.iter().map(|k| k.public.clone()).collect::<Vec<_>>() });
        Ok(IdentityKeys {
            keys: keys.into(),
            jwks: jwks.to_string().into(),
        })
    }

    /// `/oauth2/jwks.json`'s body.
    pub fn jwks_json(&self) -> Arc<str> {
        self.jwks.clone()
    }

    fn signer(&self) -> &SigningKey {
        // `parse` never builds an empty list.
        &self.keys[0]
    }
}

/// The `-----BEGIN …-----` to `-----END …-----` blocks of a text.
fn pem_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let from_start = &rest[start..];
        let Some(end) = from_start.find("-----END ") else {
            blocks.push(from_start.to_string());
            break;
        };
        let after_end = &from_start[end + 9..];
        let close = after_end.find("-----").map_or(after_end.len(), |i| i + 5);
        blocks.push(from_start[..end + 9 + close].to_string());
        rest = &after_end[close..];
    }
    blocks
}

/// An EC P-256 or Ed25519 key, proven by signing and verifying once.
fn signing_key(pem: &str) -> Option<SigningKey> {
    if let Ok(key) = EncodingKey::from_ec_pem(pem.as_bytes()) {
        let jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).ok()?;
        let AlgorithmParameters::EllipticCurve(ec) = &jwk.algorithm else {
            return None;
        };
        if ec.curve != EllipticCurve::P256 {
            return None;
        }
        let thumbprint = json!({"crv": "P-256", "kty": "EC", "x": ec.x, "y": ec.y});
        let kid = kid_of(&thumbprint);
        let public = json!({
            "kty": "EC", "crv": "P-256", "x": ec.x, "y": ec.y,
            "use": "sig", "alg": "ES256", "kid": kid,
        });
        return proven(key, Algorithm::ES256, kid, public);
    }
    let der = pem_der(pem)?;
    let ed = ed25519_dalek::SigningKey::from_pkcs8_der(&der).ok()?;
    let x = URL_SAFE_NO_PAD.encode(ed.verifying_key().as_bytes());
    let kid = kid_of(&json!({"crv": "Ed25519", "kty": "OKP", "x": x}));
    let public = json!({
        "kty": "OKP", "crv": "Ed25519", "x": x,
        "use": "sig", "alg": "EdDSA", "kid": kid,
    });
    proven(
        EncodingKey::from_ed_der(&der),
        Algorithm::EdDSA,
        kid,
        public,
    )
}

/// The key, if a token it signs verifies with its published JWK: a key that
/// cannot sign stops the start instead of the first check.
fn proven(key: EncodingKey, alg: Algorithm, kid: String, public: Value) -> Option<SigningKey> {
    let jwk: Jwk = serde_json::from_value(public.clone()).ok()?;
    let token = jsonwebtoken::encode(&Header::new(alg), &json!({"probe": true}), &key).ok()?;
    let mut validation = Validation::new(alg);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_aud = false;
    jsonwebtoken::decode::<Value>(&token, &DecodingKey::from_jwk(&jwk).ok()?, &validation).ok()?;
    Some(SigningKey {
        key,
        alg,
        kid,
        public,
    })
}

/// RFC 7638 thumbprint: SHA-256 of the required members in lexical order.
fn kid_of(required: &Value) -> String {
    // serde_json's map is ordered by key (no `preserve_order`), as 7638 wants.
    URL_SAFE_NO_PAD.encode(Sha256::digest(required.to_string().as_bytes()))
}

/// The DER inside a PEM block.
fn pem_der(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .flat_map(|line| line.trim().chars())
        .collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}

/// What a signed identity says.
pub struct Identity<'a> {
    /// The service URL the request came through.
    pub issuer: &'a str,
    /// The original URL's origin.
    pub audience: &'a str,
    /// The Okta user id, or the client id of a machine token.
    pub subject: &'a str,
    pub email: &'a str,
    pub preferred_username: &'a str,
    pub groups: &'a [&'a str],
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    email: &'a str,
    preferred_username: &'a str,
    groups: &'a [&'a str],
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    groups_truncated: bool,
    iat: u64,
    exp: u64,
}

/// A signed identity, ready to be sent as `X-Auth-Request-Jwt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// The JWT, shared by every answer that carries it.
    pub jwt: HeaderText,
    /// Its `iat`: it is reused until `issued_at + LIFETIME / 2`.
    pub issued_at: u64,
}

/// Signed tokens by identity and audience, reused while more than half their
/// lifetime is left.
pub struct IdentityTokens {
    keys: IdentityKeys,
    cache: Cache<[u8; 32], Signed>,
}

impl IdentityTokens {
    pub fn new(keys: IdentityKeys) -> IdentityTokens {
        IdentityTokens {
            keys,
            cache: Cache::builder()
                .max_capacity(CACHE_CAPACITY)
                .time_to_live(Duration::from_secs(LIFETIME / 2))
                .build(),
        }
    }

    pub fn keys(&self) -> &IdentityKeys {
        &self.keys
    }

    /// The token for `identity`, signed now or reused. `None` only if signing
    /// fails, which a key proven at start does not.
    pub async fn token(&self, identity: &Identity<'_>) -> Option<Signed> {
        let key = cache_key(identity);
        let now = now();
        if let Some(signed) = self.cache.get(&key).await {
            if now < signed.issued_at + LIFETIME / 2 {
                return Some(signed);
            }
        }
        let signed = Signed {
            // Base64url and dots: nothing for `HeaderText` to drop.
            jwt: HeaderText::new(&self.sign(identity, now)?),
            issued_at: now,
        };
        self.cache.insert(key, signed.clone()).await;
        Some(signed)
    }

    /// Signs without the cache (benchmarks, tests).
    pub fn sign(&self, identity: &Identity<'_>, now: u64) -> Option<String> {
        let mut budget = GROUPS_BUDGET;
        let kept = identity
            .groups
            .iter()
            .take_while(|g| match budget.checked_sub(g.len() + 3) {
                Some(left) => {
                    budget = left;
                    true
                }
                None => false,
            })
            .count();
        let claims = Claims {
            iss: identity.issuer,
            aud: identity.audience,
            sub: identity.subject,
            email: identity.email,
            preferred_username: identity.preferred_username,
            groups: &identity.groups[..kept],
            groups_truncated: kept < identity.groups.len(),
            iat: now,
            exp: now + LIFETIME,
        };
        let signer = self.keys.signer();
        let mut header = Header::new(signer.alg);
        header.kid = Some(signer.kid.clone());
        match jsonwebtoken::encode(&header, &claims, &signer.key) {
            Ok(token) => Some(token),
            Err(e) => {
                tracing::error!(error = %e, "could not sign X-Auth-Request-Jwt");
                None
            }
        }
    }
}

/// SHA-256 over every claim but the times, each length-prefixed so that no two
/// identities share a key.
fn cache_key(identity: &Identity<'_>) -> [u8; 32] {
    let mut hash = Sha256::new();
    let mut field = |value: &str| {
        hash.update((value.len() as u64).to_le_bytes());
        hash.update(value.as_bytes());
    };
    field(identity.issuer);
    field(identity.audience);
    field(identity.subject);
    field(identity.email);
    field(identity.preferred_username);
    for group in identity.groups {
        field(group);
    }
    hash.finalize().into()
}

#[cfg(test)]
mod tests;
