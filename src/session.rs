//! Sessions: the cookie codec (an opaque random id authenticated with HMAC-SHA256
//! under `COOKIE_SECRET`, rotation-aware), the server-side [`Session`], and the
//! [`SessionStore`] they live in (with the used sign-in states), implemented in
//! `memory` and `redis`. The browser only ever holds the id; tokens stay here.
//! No actix types, and no decision about access (that is `policy`'s).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::identity::Identity;
use crate::random::random_bytes;
use crate::secret::{CookieKey, Secret, SecretRef};

mod local;
mod memory;
mod redis;
mod sharded;
mod stored;
pub use self::local::LOCAL_TTL;
pub use self::redis::RedisStore;
pub use memory::MemoryStore;

type HmacSha256 = Hmac<Sha256>;

/// Largest signed payload we accept (bytes, before base64).
const MAX_PAYLOAD: usize = 192;

/// Bytes of randomness in a session id (160 bits).
const ID_BYTES: usize = 20;

/// The opaque id of a session, the only thing the browser holds.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionId([u8; ID_BYTES]);

impl SessionId {
    pub fn random() -> SessionId {
        SessionId(random_bytes())
    }

    /// The id as text, for store keys. Not a cookie value: that also carries a MAC.
    pub fn to_key(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// The id back from [`to_key`](Self::to_key)'s text.
    pub fn from_key(key: &[u8]) -> Option<SessionId> {
        let bytes = URL_SAFE_NO_PAD.decode(key).ok()?;
        <[u8; ID_BYTES]>::try_from(bytes).ok().map(SessionId)
    }
}

impl std::fmt::Debug for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionId([redacted])")
    }
}

/// Signs and verifies cookie values: `base64url(id) "." base64url(HMAC(key, purpose|id))`.
/// The first key signs; every key verifies, so rotating `COOKIE_SECRET` logs nobody out.
#[derive(Clone)]
pub struct CookieCodec {
    /// One HMAC per key with the key already absorbed: cloning it skips the two
    /// key-pad compressions on every check.
    macs: Arc<[HmacSha256]>,
}

impl CookieCodec {
    #[allow(
        clippy::expect_used,
        reason = "HMAC-SHA256 accepts a key of any length"
    )]
    pub fn new(keys: Vec<CookieKey>) -> CookieCodec {
        assert!(
            !keys.is_empty(),
            "config guarantees at least one cookie key"
        );
        let macs = keys
            .iter()
            // HMAC accepts keys of any length; 32 bytes cannot fail.
            .map(|key| HmacSha256::new_from_slice(key.expose()).expect("HMAC takes any key length"))
            .collect();
        CookieCodec { macs }
    }

    fn mac(keyed: &HmacSha256, purpose: &[u8], payload: &[u8]) -> HmacSha256 {
        let mut mac = keyed.clone();
        mac.update(purpose);
        mac.update(&[0]);
        mac.update(payload);
        mac
    }

    /// Signs arbitrary bytes for a purpose (`b"session"`, `b"binding"`).
    pub fn sign(&self, purpose: &[u8], payload: &[u8]) -> String {
        let tag = Self::mac(&self.macs[0], purpose, payload)
            .finalize()
            .into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    /// Verifies a value made by [`sign`](Self::sign) with any key; `None` for
    /// anything malformed, truncated, tampered or signed for another purpose.
    pub fn verify(&self, purpose: &[u8], value: &str) -> Option<Vec<u8>> {
        let mut payload = [0u8; MAX_PAYLOAD];
        let len = self.verify_into(purpose, value, &mut payload)?;
        Some(payload[..len].to_vec())
    }

    /// [`verify`](Self::verify) into a buffer: no allocation on the hot path.
    /// Returns the payload's length.
    fn verify_into(
        &self,
        purpose: &[u8],
        value: &str,
        payload: &mut [u8; MAX_PAYLOAD],
    ) -> Option<usize> {
        let (encoded, tag_text) = value.split_once('.')?;
        if encoded.len() > MAX_PAYLOAD * 4 / 3 || tag_text.len() != 43 {
            return None;
        }
        let len = URL_SAFE_NO_PAD.decode_slice(encoded, payload).ok()?;
        let mut tag = [0u8; 33];
        if URL_SAFE_NO_PAD.decode_slice(tag_text, &mut tag).ok()? != 32 {
            return None;
        }
        self.macs
            .iter()
            .any(|keyed| {
                Self::mac(keyed, purpose, &payload[..len])
                    .verify_slice(&tag[..32])
                    .is_ok()
            })
            .then_some(len)
    }

    pub fn encode_session(&self, id: &SessionId) -> String {
        self.sign(b"session", &id.0)
    }

    pub fn decode_session(&self, value: &str) -> Option<SessionId> {
        let cookie = SessionCookie::parse(value)?;
        self.verifies(&cookie).then_some(cookie.id)
    }

    /// Whether a session cookie's tag is the HMAC of its id under any key.
    pub fn verifies(&self, cookie: &SessionCookie) -> bool {
        let Some(tag) = cookie.tag.decoded() else {
            return false;
        };
        self.macs.iter().any(|keyed| {
            Self::mac(keyed, b"session", &cookie.id.0)
                .verify_slice(&tag)
                .is_ok()
        })
    }
}

/// A session cookie value's two parts, read but NOT verified: only
/// [`CookieCodec::verifies`] (or an equal tag it verified before) vouches for
/// the id.
pub struct SessionCookie {
    pub id: SessionId,
    pub tag: TagText,
}

impl SessionCookie {
    /// `base64url(id) "." base64url(tag)` with a 20-byte id and a tag of 43
    /// characters; `None` for anything else. The tag is decoded only when a
    /// MAC checks it. No allocation.
    pub fn parse(value: &str) -> Option<SessionCookie> {
        // base64url has no `.`: the id's 27 characters, the dot, the tag's 43.
        let value = value.as_bytes();
        if value.len() != ID_CHARS + 1 + TAG_CHARS || value[ID_CHARS] != b'.' {
            return None;
        }
        let tag = TagText::new(&value[ID_CHARS + 1..])?;
        let id = decode_id(value[..ID_CHARS].try_into().ok()?)?;
        Some(SessionCookie {
            id: SessionId(id),
            tag,
        })
    }
}

/// Characters of a session id in unpadded base64url.
const ID_CHARS: usize = 27;

/// Each byte's 6-bit value in the base64url alphabet; 64 for any other byte.
const BASE64URL: [u8; 256] = {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut table = [64u8; 256];
    let mut i = 0;
    while i < 64 {
        table[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// A session id from its 27 base64url characters, as the base64 engine
/// decodes them (canonical text only: the last character's two spare bits
/// zero), in straight-line code: the engine's general decoder costs a warm
/// check more than the rest of its parsing.
fn decode_id(text: &[u8; ID_CHARS]) -> Option<[u8; ID_BYTES]> {
    let mut sextets = [0u8; ID_CHARS];
    let mut outside = 0u8;
    for (sextet, &c) in sextets.iter_mut().zip(text) {
        *sextet = BASE64URL[usize::from(c)];
        outside |= *sextet & 64;
    }
    let mut id = [0u8; ID_BYTES];
    // Six groups of four characters, three bytes each.
    for (bytes, group) in id.chunks_exact_mut(3).zip(sextets.chunks_exact(4)) {
        let bits = u32::from(group[0]) << 18
            | u32::from(group[1]) << 12
            | u32::from(group[2]) << 6
            | u32::from(group[3]);
        bytes.copy_from_slice(&bits.to_be_bytes()[1..]);
    }
    // The last three characters: 18 bits, 16 of them the last two bytes.
    let [a, b, c] = [sextets[24], sextets[25], sextets[26]];
    let bits = u32::from(a) << 12 | u32::from(b) << 6 | u32::from(c);
    id[18..].copy_from_slice(&(bits >> 2).to_be_bytes()[2..]);
    (outside == 0 && bits & 0b11 == 0).then_some(id)
}

/// Characters of a session cookie's tag: a 32-byte HMAC in unpadded base64url.
const TAG_CHARS: usize = 43;

/// A cookie tag as the text it arrived in, compared as text: the base64url
/// engine decodes only canonical text (no padding, no stray trailing bits),
/// so two texts that decode are equal exactly when their tags are. Padded to
/// whole words for the constant-time comparison.
#[derive(Clone, Copy)]
pub struct TagText([u8; 48]);

impl TagText {
    /// `None` unless `text` has a tag's length.
    fn new(text: &[u8]) -> Option<TagText> {
        let text: &[u8; TAG_CHARS] = text.try_into().ok()?;
        let mut padded = [0u8; 48];
        padded[..TAG_CHARS].copy_from_slice(text);
        Some(TagText(padded))
    }

    /// The tag's 32 bytes; `None` when the text is not a tag's encoding.
    pub fn decoded(&self) -> Option<[u8; 32]> {
        let mut tag = [0u8; 33];
        if URL_SAFE_NO_PAD
            .decode_slice(&self.0[..TAG_CHARS], &mut tag)
            .ok()?
            != 32
        {
            return None;
        }
        tag[..32].try_into().ok()
    }

    /// Whether both are the same text, in time independent of where they differ.
    pub fn same_as(&self, other: &TagText) -> bool {
        let words = |t: &TagText| {
            let mut words = [0u64; 6];
            for (word, bytes) in words.iter_mut().zip(t.0.chunks_exact(8)) {
                *word = u64::from_ne_bytes(bytes.try_into().unwrap_or_default());
            }
            words
        };
        let difference = words(self)
            .iter()
            .zip(words(other))
            .fold(0u64, |acc, (a, b)| acc | (a ^ b));
        bool::from(difference.ct_eq(&0))
    }

    /// The text, for tests that change it.
    #[cfg(test)]
    pub fn as_text(&self) -> &str {
        std::str::from_utf8(&self.0[..TAG_CHARS]).unwrap_or_default()
    }
}

/// A signed-in user's server-side session. A million of them may be held, so
/// it is compact: the identity's texts and the refresh token in one
/// allocation, the rarely present ID token and cookie domain behind one
/// pointer. Stored (Redis) as the flat JSON object of `stored.rs`, the same
/// as before it was compact.
#[derive(Clone)]
pub struct Session {
    /// Who signed in, keeping the session's refresh token in its texts'
    /// allocation (one heap block fewer per session): read and replaced only
    /// through [`identity`](Self::identity), [`set_identity`](Self::set_identity),
    /// [`refresh_token`](Self::refresh_token) and
    /// [`set_refresh_token`](Self::set_refresh_token), so that a new identity
    /// cannot drop the token, nor a new token the identity.
    identity: Identity,
    // The times, in seconds since the Unix epoch as `u32` (16 bytes less per
    // session than `u64`; read and set through the methods, see [`stamp`] for
    // times past 2106). The refresh pause, usually none, is in `cold`.
    created_at: u32,
    expires_at: u32,
    tokens_expire_at: u32,
    /// The ID token (kept only without a refresh token), the cookie domain
    /// (several root domains only) and a refresh pause: usually all absent.
    cold: Option<Box<Cold>>,
    /// What the session keeps for its next checks (rendered identity headers,
    /// a link to its user's groups); never stored, empty in a copy.
    pub hot: crate::access::SessionHot,
    /// The id the memory store keeps this copy under (its map holds one
    /// pointer per session, so the session names itself); all zeros
    /// anywhere else. Never written to Redis; no part of what a session means.
    key: SessionId,
}

/// The fields of a [`Session`] most sessions do not have.
#[derive(Clone, Default)]
struct Cold {
    /// Kept only as `id_token_hint` for sign-out at Okta.
    id_token: Option<Secret>,
    /// Several root domains: the cookie domain the session was made for; a
    /// check on another domain does not accept it. `None` with one domain.
    cookie_domain: Option<String>,
    /// [`Session::refresh_not_before`]; 0 (no pause) for most sessions.
    refresh_not_before: u32,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("sub", &self.identity.sub())
            .field("login", &self.identity.login())
            .field("expires_at", &self.expires_at())
            .field("tokens_expire_at", &self.tokens_expire_at())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A session of `identity` from `created_at` to `expires_at`, with Okta's
    /// tokens valid until `tokens_expire_at`; no refresh pause, no ID token,
    /// no cookie domain (see [`with_id_token`](Self::with_id_token),
    /// [`with_cookie_domain`](Self::with_cookie_domain)).
    pub fn new(
        identity: Identity,
        created_at: u64,
        expires_at: u64,
        tokens_expire_at: u64,
        refresh_token: Option<Secret>,
    ) -> Session {
        Session {
            identity: identity.with_secret(refresh_token.as_ref().map(Secret::expose)),
            created_at: stamp(created_at),
            expires_at: stamp(expires_at),
            tokens_expire_at: stamp(tokens_expire_at),
            cold: None,
            hot: Default::default(),
            key: SessionId([0; ID_BYTES]),
        }
    }

    /// Who signed in.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Replaces who signed in; the session keeps its refresh token.
    pub fn set_identity(&mut self, identity: Identity) {
        self.identity = identity.with_secret(self.identity.secret());
    }

    /// Replaces the ID token's groups claim (a refreshed ID token carries a
    /// newer one).
    pub fn set_groups_claim(&mut self, groups_claim: Option<Vec<String>>) {
        self.identity.set_groups_claim(groups_claim);
    }

    /// Okta's refresh token, when Okta gave one (`offline_access`).
    pub fn refresh_token(&self) -> Option<SecretRef<'_>> {
        self.identity.secret().map(SecretRef::new)
    }

    /// Replaces the refresh token (Okta rotates it on refresh); `None` drops it.
    pub fn set_refresh_token(&mut self, token: Option<SecretRef<'_>>) {
        self.identity.set_secret(token.map(SecretRef::expose));
    }

    /// The same session keeping `id_token` as the sign-out hint.
    pub fn with_id_token(mut self, id_token: Option<Secret>) -> Session {
        self.cold_mut().id_token = id_token;
        self.drop_empty_cold();
        self
    }

    /// The same session tied to the root domain `cookie_domain`.
    pub fn with_cookie_domain(mut self, cookie_domain: Option<String>) -> Session {
        self.cold_mut().cookie_domain = cookie_domain;
        self.drop_empty_cold();
        self
    }

    /// The kept ID token, as `id_token_hint` for sign-out at Okta.
    pub fn id_token(&self) -> Option<&Secret> {
        self.cold.as_ref()?.id_token.as_ref()
    }

    /// Several root domains: the cookie domain the session was made for.
    pub fn cookie_domain(&self) -> Option<&str> {
        self.cold.as_ref()?.cookie_domain.as_deref()
    }

    fn cold_mut(&mut self) -> &mut Cold {
        self.cold.get_or_insert_with(Box::default)
    }

    fn drop_empty_cold(&mut self) {
        if self.cold.as_ref().is_some_and(|c| {
            c.id_token.is_none() && c.cookie_domain.is_none() && c.refresh_not_before == 0
        }) {
            self.cold = None;
        }
    }

    /// When the session began (sign-in). A time past 2106 (where the kept
    /// time saturates) reads as `u64::MAX`: later, never earlier, than it
    /// was, so news about the past ([`Ending::UserBefore`]) cannot end it.
    pub fn created_at(&self) -> u64 {
        match self.created_at {
            u32::MAX => u64::MAX,
            secs => u64::from(secs),
        }
    }

    /// End of the session (`COOKIE_EXPIRE` after sign-in); never extended.
    pub fn expires_at(&self) -> u64 {
        u64::from(self.expires_at)
    }

    /// When Okta's tokens expire; past it, the next check refreshes.
    pub fn tokens_expire_at(&self) -> u64 {
        u64::from(self.tokens_expire_at)
    }

    /// Do not try to refresh before this (after a transient Okta failure).
    pub fn refresh_not_before(&self) -> u64 {
        self.cold
            .as_ref()
            .map_or(0, |c| u64::from(c.refresh_not_before))
    }

    pub fn set_created_at(&mut self, secs: u64) {
        self.created_at = stamp(secs);
    }

    pub fn set_expires_at(&mut self, secs: u64) {
        self.expires_at = stamp(secs);
    }

    pub fn set_tokens_expire_at(&mut self, secs: u64) {
        self.tokens_expire_at = stamp(secs);
    }

    pub fn set_refresh_not_before(&mut self, secs: u64) {
        self.cold_mut().refresh_not_before = stamp(secs);
        self.drop_empty_cold();
    }

    pub fn is_expired(&self, now: u64) -> bool {
        now >= self.expires_at()
    }

    /// Seconds the session still has, for store TTLs.
    pub fn remaining(&self, now: u64) -> Duration {
        Duration::from_secs(self.expires_at().saturating_sub(now))
    }
}

/// A time (seconds since the Unix epoch) as a [`Session`] keeps it: exact up
/// to 2106-02-07 (`u32::MAX`), that end for anything later (a far-future value
/// read from Redis). Never wraps: a session's end only ever comes earlier, its
/// tokens expire earlier (refreshed sooner), its refresh pause is shorter, and
/// [`Session::created_at`] reads the end as "later than anything".
fn stamp(secs: u64) -> u32 {
    u32::try_from(secs).unwrap_or(u32::MAX)
}

/// How long a sign-in may take from start to callback.
pub const PENDING_TTL: Duration = Duration::from_secs(600);

/// Which sessions a back-channel logout ends.
#[derive(Clone, Copy, Debug)]
pub enum Ending<'a> {
    /// The sessions made in the IdP session `sid` (only user `sub`'s, when given).
    IdpSession { sub: Option<&'a str>, sid: &'a str },
    /// Every session of user `sub`.
    User { sub: &'a str },
    /// Every session of user `sub` that began at or before `before` (seconds
    /// since the epoch): news about the past (an Okta event delivered late)
    /// never ends a session that began after it.
    UserBefore { sub: &'a str, before: u64 },
    /// Every session whose email is `email`, compared without ASCII case
    /// (Universal Logout names users by email).
    Email { email: &'a str },
}

/// Whether `session` is one that `ending` ends.
pub(crate) fn ending_matches(ending: Ending<'_>) -> impl Fn(&Session) -> bool + '_ {
    move |session| match ending {
        Ending::User { sub } => session.identity().sub() == sub,
        Ending::IdpSession { sub, sid } => {
            session.identity().sid() == Some(sid)
                && sub.is_none_or(|sub| session.identity().sub() == sub)
        }
        Ending::UserBefore { sub, before } => {
            session.identity().sub() == sub && session.created_at() <= before
        }
        Ending::Email { email } => {
            !email.is_empty() && session.identity().email().eq_ignore_ascii_case(email)
        }
    }
}

/// How long a one-time token id is remembered by [`SessionStore::end_once`];
/// tokens older than this must be refused by their issue time instead.
pub const ONE_TIME_TTL: Duration = Duration::from_secs(600);

/// The session store could not answer.
#[derive(Debug, thiserror::Error)]
#[error("session store: {0}")]
pub struct StoreError(pub String);

/// Where sessions and used sign-in states live. One conformance suite
/// (`tests/api/session_store.rs`) runs against every implementation.
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    async fn load(&self, id: &SessionId) -> Result<Option<Arc<Session>>, StoreError>;
    /// The session as [`load`](Self::load) would answer it, when this process
    /// holds it (the memory store's map, a Redis replica's live copy): no I/O,
    /// no allocation. `None` says nothing about whether the session exists.
    /// `now`: seconds since the epoch, for the session's expiry.
    fn load_held(&self, id: &SessionId, now: u64) -> Option<Arc<Session>> {
        let _ = (id, now);
        None
    }
    /// Inserts or replaces; the entry lives until `session.expires_at`.
    async fn save(&self, id: &SessionId, session: &Session) -> Result<(), StoreError>;
    /// Replaces a session only if it still exists (a refresh finishing after a
    /// sign-out must not bring the session back); `false` if it was gone.
    async fn update(&self, id: &SessionId, session: &Session) -> Result<bool, StoreError>;
    async fn remove(&self, id: &SessionId) -> Result<(), StoreError>;
    /// Ends every session of one user; returns how many ended.
    async fn remove_user(&self, sub: &str) -> Result<usize, StoreError>;
    /// Ends the sessions made in the IdP session `sid` (of user `sub`, when
    /// given), for back-channel logout; returns how many ended.
    async fn remove_sid(&self, sub: Option<&str>, sid: &str) -> Result<usize, StoreError>;
    /// Ends sessions for a one-time token (a logout token's `jti`) and records
    /// the token for [`ONE_TIME_TTL`], as one step: `None`, and nothing ended,
    /// if the token was recorded before; else how many sessions ended. A token
    /// is never used up without its sessions ending.
    async fn end_once(
        &self,
        token_id: &str,
        ending: Ending<'_>,
    ) -> Result<Option<usize>, StoreError> {
        let ended = self.end_once_taking(token_id, ending).await?;
        Ok(ended.map(|sessions| sessions.len()))
    }
    /// Ends every session that `ending` names; returns how many ended.
    async fn end(&self, ending: Ending<'_>) -> Result<usize, StoreError>;
    /// [`end_once`](Self::end_once), returning the sessions that ended (so
    /// that their refresh tokens can be revoked at the IdP).
    async fn end_once_taking(
        &self,
        token_id: &str,
        ending: Ending<'_>,
    ) -> Result<Option<Vec<Session>>, StoreError>;
    /// Records that a sign-in's `state` was used, for [`PENDING_TTL`] (as long
    /// as the state is valid at all): `false` if it was recorded before, so a
    /// replayed callback is refused. Called only once Okta vouched for the
    /// sign-in, so strangers cannot fill the store.
    async fn use_state(&self, state: &str) -> Result<bool, StoreError>;
    /// Whether the store answers, for `/readyz`.
    async fn ping(&self) -> Result<(), StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec(keys: &[u8]) -> CookieCodec {
        CookieCodec::new(keys.iter().map(|b| CookieKey::new([*b; 32])).collect())
    }

    #[test]
    fn a_session_cookie_round_trips_and_is_small() {
        let c = codec(&[1]);
        let id = SessionId::random();
        let value = c.encode_session(&id);
        assert!(value.len() < 100, "cookie value is {} bytes", value.len());
        assert_eq!(c.decode_session(&value), Some(id));
    }

    #[test]
    fn a_session_id_is_decoded_exactly_as_the_base64_engine_decodes_it() {
        let engine = |text: &[u8]| {
            let mut out = [0u8; ID_BYTES + 1];
            match URL_SAFE_NO_PAD.decode_slice(text, &mut out) {
                Ok(ID_BYTES) => Some(out[..ID_BYTES].to_vec()),
                _ => None,
            }
        };
        let ours = |text: &[u8; ID_CHARS]| decode_id(text).map(|id| id.to_vec());
        for _ in 0..200 {
            let text: [u8; ID_CHARS] = SessionId::random()
                .to_key()
                .into_bytes()
                .try_into()
                .unwrap();
            assert!(ours(&text).is_some());
            assert_eq!(ours(&text), engine(&text));
            // Every character swapped for every byte: the same answer, valid or not.
            let at = usize::from(crate::random::random_bytes::<1>()[0]) % ID_CHARS;
            for byte in 0..=255u8 {
                let mut changed = text;
                changed[at] = byte;
                assert_eq!(ours(&changed), engine(&changed), "{byte} at {at}");
            }
            let mut last = text;
            for byte in 0..=255u8 {
                last[ID_CHARS - 1] = byte;
                assert_eq!(ours(&last), engine(&last), "last {byte}");
            }
        }
    }

    #[test]
    fn a_tag_text_is_the_same_only_as_the_very_same_text() {
        let value = codec(&[1]).encode_session(&SessionId::random());
        let tag = SessionCookie::parse(&value).unwrap().tag;
        assert!(tag.same_as(&tag));
        assert!(tag.decoded().is_some());
        let text = tag.as_text().to_owned();
        for at in 0..TAG_CHARS {
            let mut changed = text.clone().into_bytes();
            changed[at] = if changed[at] == b'A' { b'B' } else { b'A' };
            let other = TagText::new(&changed).unwrap();
            assert!(!tag.same_as(&other), "differs at {at}");
        }
        assert!(
            TagText::new(&text.as_bytes()[1..]).is_none(),
            "a tag is 43 characters"
        );
        assert!(TagText::new(format!("{text}A").as_bytes()).is_none());
    }

    #[test]
    fn a_session_id_round_trips_through_its_key() {
        let id = SessionId::random();
        assert_eq!(
            SessionId::from_key(id.to_key().as_bytes()),
            Some(id.clone())
        );
        let key = id.to_key();
        for bad in [&key[1..], "", "!!!", &format!("{key}AA")] {
            assert_eq!(SessionId::from_key(bad.as_bytes()), None, "{bad:?}");
        }
    }

    #[test]
    fn tampered_truncated_and_foreign_values_are_rejected() {
        let c = codec(&[1]);
        let value = c.encode_session(&SessionId::random());
        let mut flipped = value.clone().into_bytes();
        flipped[3] = if flipped[3] == b'A' { b'B' } else { b'A' };
        let cases = [
            String::from_utf8(flipped).unwrap(),
            value[..value.len() - 1].to_string(),
            value.replace('.', ""),
            format!("{value}x"),
            String::new(),
            ".".to_string(),
            "garbage".to_string(),
            codec(&[2]).encode_session(&SessionId::random()),
            c.sign(b"binding", &[7u8; ID_BYTES]),
        ];
        for case in cases {
            assert_eq!(c.decode_session(&case), None, "accepted {case:?}");
        }
    }

    #[test]
    fn every_configured_key_verifies_but_only_the_first_signs() {
        let old = codec(&[1]);
        let rotated = codec(&[2, 1]);
        let id = SessionId::random();
        assert_eq!(
            rotated.decode_session(&old.encode_session(&id)),
            Some(id.clone())
        );
        assert_eq!(old.decode_session(&rotated.encode_session(&id)), None);
    }

    /// A session as the store's JSON held it before `Identity` was one type
    /// (byte for byte what that version wrote): it must still load, and
    /// write back the same.
    #[test]
    fn a_session_stored_before_identity_was_one_type_loads_and_writes_back_the_same() {
        let stored = concat!(
            r#"{"sub":"00u1","login":"al","email":"a@example.com","name":"Al","#,
            r#""groups_claim":["admins","dev ops"],"sid":"idp-1","created_at":100,"#,
            r#""expires_at":200,"tokens_expire_at":150,"refresh_not_before":120,"#,
            r#""refresh_token":"rt-1","id_token":null,"cookie_domain":"example.org"}"#
        );
        let session: Session = serde_json::from_str(stored).unwrap();
        let identity = &session.identity;
        assert_eq!(identity.sub(), "00u1");
        assert_eq!(identity.login(), "al");
        assert_eq!(identity.email(), "a@example.com");
        assert_eq!(identity.name(), "Al");
        assert_eq!(
            identity.groups_claim(),
            Some(&["admins".to_string(), "dev ops".to_string()][..])
        );
        assert_eq!(identity.sid(), Some("idp-1"));
        assert_eq!(
            (session.created_at(), session.expires_at()),
            (100, 200),
            "timestamps"
        );
        assert_eq!(
            (session.tokens_expire_at(), session.refresh_not_before()),
            (150, 120)
        );
        assert_eq!(session.refresh_token().map(SecretRef::expose), Some("rt-1"));
        assert!(session.id_token().is_none());
        assert_eq!(session.cookie_domain(), Some("example.org"));
        assert_eq!(serde_json::to_string(&session).unwrap(), stored);

        let minimal = concat!(
            r#"{"sub":"00u2","login":"b@example.com","email":"b@example.com","name":"","#,
            r#""groups_claim":null,"sid":null,"created_at":1,"expires_at":2,"#,
            r#""tokens_expire_at":3,"refresh_not_before":0,"refresh_token":null,"#,
            r#""id_token":"idt"}"#
        );
        let session: Session = serde_json::from_str(minimal).unwrap();
        assert_eq!(session.identity().login(), "b@example.com");
        assert_eq!(session.identity().groups_claim(), None);
        assert_eq!(session.identity().sid(), None);
        assert!(session.refresh_token().is_none());
        assert_eq!(session.id_token().map(Secret::expose), Some("idt"));
        assert_eq!(serde_json::to_string(&session).unwrap(), minimal);
    }

    fn alice(created_at: u64, expires_at: u64, tokens_expire_at: u64) -> Session {
        Session::new(
            Identity::new("00u1".into(), "a".into(), "a".into(), "A".into()),
            created_at,
            expires_at,
            tokens_expire_at,
            None,
        )
    }

    #[test]
    fn times_read_back_exactly_from_the_epoch_to_2106() {
        for secs in [0, 1, 100, 1_700_000_000, u64::from(u32::MAX) - 1] {
            let mut s = alice(secs, secs, secs);
            s.set_refresh_not_before(secs);
            assert_eq!(
                (s.created_at(), s.expires_at(), s.tokens_expire_at()),
                (secs, secs, secs)
            );
            assert_eq!(s.refresh_not_before(), secs);
            assert_eq!(s.cold.is_some(), secs != 0, "a pause alone is cold");
            s.set_refresh_not_before(0);
            assert!(s.cold.is_none() && s.refresh_not_before() == 0);
            assert_eq!(s.remaining(secs), Duration::ZERO);
            assert!(s.is_expired(secs) && (secs == 0 || !s.is_expired(secs - 1)));
        }
    }

    #[test]
    fn a_time_past_2106_saturates_and_never_wraps_or_extends() {
        let end = u64::from(u32::MAX);
        let now = 1_700_000_000;
        for far in [end, end + 1, 1 << 40, u64::MAX] {
            let mut s = alice(far, far, far);
            s.set_refresh_not_before(far);
            // Never wrapped to the past: still live, tokens still fresh.
            assert!(!s.is_expired(now) && !s.is_expired(end - 1));
            assert!(s.tokens_expire_at() > now && s.refresh_not_before() > now);
            // Never later than given: the session ends at the latest at the end.
            assert_eq!(s.expires_at(), end.min(far));
            assert!(s.is_expired(end));
            assert_eq!(s.tokens_expire_at(), end.min(far));
            // News about a past before `far` does not end it.
            let before = Ending::UserBefore {
                sub: "00u1",
                before: far - 1,
            };
            assert!(!ending_matches(before)(&s), "created {far}");
        }
        let written = serde_json::to_value(alice(now, 1 << 40, 1 << 40)).unwrap();
        assert_eq!(written["expires_at"], end, "written back as the safe end");
    }

    /// A million sessions each hold one: with its 16 B of `Arc` counts and
    /// glibc's 8 B chunk header the struct fits a 112 B chunk, not the next.
    #[test]
    fn a_session_struct_fits_in_88_bytes() {
        assert!(
            std::mem::size_of::<Session>() <= 88,
            "{} B",
            std::mem::size_of::<Session>()
        );
    }

    #[test]
    fn the_refresh_token_lives_with_the_identity_and_survives_a_new_one() {
        let mut s = alice(1, 2, 3);
        assert!(s.refresh_token().is_none());
        s.set_refresh_token(Some(SecretRef::new("rt-1")));
        s.set_identity(
            Identity::new("00u1".into(), "b".into(), "b@x.io".into(), "B".into())
                .with_sid(Some("idp-1".into())),
        );
        assert_eq!(s.refresh_token().map(SecretRef::expose), Some("rt-1"));
        assert_eq!(
            (s.identity().login(), s.identity().sid()),
            ("b", Some("idp-1"))
        );
        // An identity taken from another session brings no token along.
        let mut other = alice(1, 2, 3);
        other.set_identity(s.identity().clone());
        assert!(other.refresh_token().is_none());
        assert_eq!(other.identity().login(), "b");

        let copy = s.clone();
        s.set_refresh_token(Some(SecretRef::new("rt-2")));
        s.set_groups_claim(Some(vec!["g".into()]));
        assert_eq!(s.refresh_token().map(SecretRef::expose), Some("rt-2"));
        assert_eq!(copy.refresh_token().map(SecretRef::expose), Some("rt-1"));
        assert_eq!(
            s.identity().sid(),
            Some("idp-1"),
            "a new token keeps the identity"
        );
        s.set_refresh_token(None);
        assert!(s.refresh_token().is_none());
        assert_eq!(s.identity().groups_claim(), Some(&["g".to_string()][..]));
        assert_eq!(s.identity().email(), "b@x.io");
    }

    #[test]
    fn debug_output_never_shows_tokens() {
        let s = Session::new(
            Identity::new(
                "00u1".into(),
                "a@example.com".into(),
                "a@example.com".into(),
                "A".into(),
            ),
            0,
            1,
            1,
            Some(Secret::new("rt-secret-value".into())),
        )
        .with_id_token(Some(Secret::new("idt-secret-value".into())));
        for text in [
            format!("{s:?}"),
            format!("{:?}", s.identity()),
            format!("{:?}", s.refresh_token()),
        ] {
            assert!(!text.contains("secret-value"), "{text}");
        }
    }
}
