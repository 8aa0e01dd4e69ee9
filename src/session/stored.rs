//! The stored form of a [`Session`] (the Redis store's JSON): one flat object
//! with the fields `sub`, `login`, `email`, `name`, `groups_claim`, `sid`,
//! `created_at`, `expires_at`, `tokens_expire_at`, `refresh_not_before`,
//! `refresh_token`, `id_token` and, only when set, `cookie_domain` — the shape
//! every earlier version wrote, so sessions survive an upgrade either way.
//! Owns only that mapping; must NOT change the in-memory representation.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Session;
use crate::identity::Identity;
use crate::secret::{Secret, SecretRef};

/// What is written: borrowed from the session, nothing copied.
#[derive(Serialize)]
struct Written<'a> {
    sub: &'a str,
    login: &'a str,
    email: &'a str,
    name: &'a str,
    groups_claim: Option<&'a [String]>,
    sid: Option<&'a str>,
    created_at: u64,
    expires_at: u64,
    tokens_expire_at: u64,
    refresh_not_before: u64,
    refresh_token: Option<&'a str>,
    id_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cookie_domain: Option<&'a str>,
}

/// What is read (missing optional fields are `None`, as before).
#[derive(Deserialize)]
struct Read {
    sub: String,
    login: String,
    email: String,
    name: String,
    groups_claim: Option<Vec<String>>,
    sid: Option<String>,
    created_at: u64,
    expires_at: u64,
    tokens_expire_at: u64,
    refresh_not_before: u64,
    refresh_token: Option<String>,
    id_token: Option<String>,
    #[serde(default)]
    cookie_domain: Option<String>,
}

impl Serialize for Session {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let identity = &self.identity;
        Written {
            sub: identity.sub(),
            login: identity.login(),
            email: identity.email(),
            name: identity.name(),
            groups_claim: identity.groups_claim(),
            sid: identity.sid(),
            created_at: self.created_at(),
            expires_at: self.expires_at(),
            tokens_expire_at: self.tokens_expire_at(),
            refresh_not_before: self.refresh_not_before(),
            refresh_token: self.refresh_token().map(SecretRef::expose),
            id_token: self.id_token().map(Secret::expose),
            cookie_domain: self.cookie_domain(),
        }
        .serialize(ser)
    }
}

impl<'de> Deserialize<'de> for Session {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Session, D::Error> {
        let read = Read::deserialize(de)?;
        let identity = Identity::new(read.sub, read.login, read.email, read.name)
            .with_groups_claim(read.groups_claim)
            .with_sid(read.sid);
        let mut session = Session::new(
            identity,
            read.created_at,
            read.expires_at,
            read.tokens_expire_at,
            read.refresh_token.map(Secret::new),
        )
        .with_id_token(read.id_token.map(Secret::new))
        .with_cookie_domain(read.cookie_domain);
        session.set_refresh_not_before(read.refresh_not_before);
        Ok(session)
    }
}
