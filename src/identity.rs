//! Who signed in: the [`Identity`] a verified sign-in names (Okta user id,
//! login, email, name, the ID token's groups claim and the IdP session id),
//! shared by the sign-in result and the stored session. It owns the
//! representation of those texts behind accessor methods, and their stored
//! (serde) names; it must NOT know tokens, expiry or where sessions live.

use serde::{Deserialize, Serialize};

/// The user a sign-in verified. Fields are private: read them through the
/// accessors, so the representation can change without touching callers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// Okta user id (`00u…`), the ID token's `sub`.
    sub: String,
    /// Okta login (`preferred_username`), falling back to the email.
    login: String,
    email: String,
    name: String,
    /// Groups from the ID token's `groups` claim (`IDP_PROVIDER=oidc`).
    groups_claim: Option<Vec<String>>,
    /// The IdP's session id (`sid`), for back-channel logout.
    sid: Option<String>,
}

impl Identity {
    /// An identity without groups claim and IdP session id (see
    /// [`with_groups_claim`](Self::with_groups_claim), [`with_sid`](Self::with_sid)).
    pub fn new(sub: String, login: String, email: String, name: String) -> Identity {
        Identity {
            sub,
            login,
            email,
            name,
            groups_claim: None,
            sid: None,
        }
    }

    /// The same identity with the ID token's `groups` claim.
    pub fn with_groups_claim(mut self, groups_claim: Option<Vec<String>>) -> Identity {
        self.groups_claim = groups_claim;
        self
    }

    /// The same identity with the IdP session id.
    pub fn with_sid(mut self, sid: Option<String>) -> Identity {
        self.sid = sid;
        self
    }

    /// Replaces the groups claim (a refreshed ID token carries a newer one).
    pub fn set_groups_claim(&mut self, groups_claim: Option<Vec<String>>) {
        self.groups_claim = groups_claim;
    }

    /// Okta user id (`00u…`), the ID token's `sub`.
    pub fn sub(&self) -> &str {
        &self.sub
    }

    /// Okta login (`preferred_username`), falling back to the email.
    pub fn login(&self) -> &str {
        &self.login
    }

    pub fn email(&self) -> &str {
        &self.email
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Groups from the ID token's `groups` claim (`IDP_PROVIDER=oidc`).
    pub fn groups_claim(&self) -> Option<&[String]> {
        self.groups_claim.as_deref()
    }

    /// The IdP's session id (`sid`), for back-channel logout.
    pub fn sid(&self) -> Option<&str> {
        self.sid.as_deref()
    }
}
