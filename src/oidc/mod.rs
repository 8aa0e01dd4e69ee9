//! OpenID Connect with Okta, and the tokens verified with the IdP's keys.
//! Layering, bottom up: `discovery` (Okta's metadata, the claim types, the
//! provider state discovery fills), `keys` (the JWKS with its three refetch
//! budgets, and the one JWS verifier), `flow` (authorize, code exchange,
//! refresh, revoke, end-session URL; ID tokens verified by openidconnect),
//! then the token kinds resting on `keys`: `logout_token`, `revocation_token`
//! and `bearer`. RS256 signatures, of ID tokens (`id_token_key`) and of
//! every token jsonwebtoken reads (`jwt_crypto`), are checked by `ring`
//! (`rs256`). This file owns the [`Oidc`] face and its errors. No actix
//! types; nothing here logs, stores or returns a token in an error.

pub mod bearer;
mod discovery;
mod flow;
mod id_token_key;
pub mod jwt_crypto;
pub mod keys;
pub mod logout_token;
pub mod revocation_token;
mod rs256;

use std::sync::{Arc, RwLock};
use std::time::Instant;

pub use discovery::{ExtraClaims, OktaMetadata};
pub use flow::{Authorize, Refreshed, SignedIn};
pub use keys::JWKS_REFETCH_INTERVAL;

use crate::config::Config;
use crate::secret::Secret;
use discovery::Provider;

/// Why an OIDC step failed. The text is for logs; it never contains a token.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("OIDC discovery has not completed yet")]
    NotReady,
    #[error("discovery failed: {0}")]
    Discovery(String),
    #[error("code exchange failed: {0}")]
    Exchange(String),
    #[error("ID token rejected: {0}")]
    IdToken(String),
    /// The ID token names a key the IdP's key set does not hold, even after a
    /// refetch: a rotation not yet visible, or a key set that cannot be
    /// loaded. Not the token's fault as far as we can tell.
    #[error("ID token signed with a key the IdP does not list (yet)")]
    UnknownKey,
}

/// The outcome of a refresh that did not work.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// Okta refused the refresh token (revoked, expired, user deactivated): the
    /// session must end.
    #[error("refresh token refused: {0}")]
    Refused(String),
    /// Okta could not be asked (network, 5xx): keep the session, retry later.
    #[error("refresh failed for now: {0}")]
    Transient(String),
}

/// The relying party. Cheap to share; discovery fills it once.
pub struct Oidc {
    http: reqwest::Client,
    issuer: String,
    client_id: String,
    client_secret: Secret,
    redirect_uri: String,
    scopes: Vec<String>,
    provider: RwLock<Option<Arc<Provider>>>,
}

impl Oidc {
    pub fn new(config: &Config, http: reqwest::Client) -> Oidc {
        Oidc {
            http,
            issuer: config.issuer.clone(),
            client_id: config.client_id.clone(),
            client_secret: config.client_secret.clone(),
            redirect_uri: config.redirect_uri.clone(),
            scopes: config.scopes.clone(),
            provider: RwLock::new(None),
        }
    }

    /// Whether discovery and JWKS are loaded.
    pub fn is_ready(&self) -> bool {
        self.provider().is_some()
    }

    fn provider(&self) -> Option<Arc<Provider>> {
        self.provider.read().ok().and_then(|p| p.clone())
    }

    /// The configured issuer, which tokens from the IdP must name exactly.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Our client id, which tokens for us must name in `aud`.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }
}

/// A call to the IdP through the OpenID Connect client, which tells success
/// from failure but not the status: `2xx`, else `error`.
fn timed(endpoint: &'static str, ok: bool, started: Instant) {
    crate::metrics::observed::okta_call(endpoint, ok.then_some(200), started.elapsed());
}

#[cfg(test)]
mod test_keys;
#[cfg(test)]
mod tests;
