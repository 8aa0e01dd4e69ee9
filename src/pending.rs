//! Pending sign-ins, kept by the browser: `/oauth2/start` puts the state, nonce,
//! PKCE verifier and `rd` of each sign-in in progress into the binding cookie,
//! encrypted and authenticated (XChaCha20-Poly1305 under a key derived from each
//! `COOKIE_SECRET`: the first seals, all open), so a stranger's request costs
//! the server no memory at all. A short list, bounded in entries and bytes,
//! keeps several tabs signing in at once. Holding the cookie is also what binds
//! a callback to the browser that started it. No actix types, no I/O.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::random::random_bytes;
use crate::secret::{CookieKey, Secret};
use crate::session::PENDING_TTL;

/// Most sign-ins one browser can have in progress; the oldest go first.
pub const MAX_ENTRIES: usize = 4;

/// Longest cookie value we write (browsers keep at most 4096 bytes per cookie,
/// name included; proxies limit a whole `Cookie` line to about 8 KB).
pub const MAX_VALUE: usize = 3800;

const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// Largest plaintext that still fits [`MAX_VALUE`] once sealed and encoded.
const MAX_PLAINTEXT: usize = MAX_VALUE * 3 / 4 - NONCE_LEN - TAG_LEN;
/// Binds the ciphertext to its use: no other value sealed under these keys opens here.
const AAD: &[u8] = b"forward-auth pending sign-ins v1";

/// What a callback needs from the start that sent the browser to Okta.
#[derive(Clone, Serialize, Deserialize)]
pub struct PendingSignIn {
    #[serde(rename = "s")]
    pub state: String,
    #[serde(rename = "n")]
    pub nonce: String,
    #[serde(rename = "v", with = "secret")]
    pub pkce_verifier: Secret,
    /// Where to go afterwards, validated and at most 2 KB.
    #[serde(rename = "r")]
    pub rd: String,
    #[serde(rename = "t")]
    pub created_at: u64,
}

impl std::fmt::Debug for PendingSignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingSignIn")
            .field("rd", &self.rd)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

impl PendingSignIn {
    fn is_live(&self, now: u64) -> bool {
        now < self.created_at.saturating_add(PENDING_TTL.as_secs())
    }
}

/// Seals and opens the binding cookie's list of pending sign-ins.
#[derive(Clone)]
pub struct PendingCodec {
    ciphers: Vec<XChaCha20Poly1305>,
}

impl PendingCodec {
    pub fn new(keys: &[CookieKey]) -> PendingCodec {
        let ciphers = keys
            .iter()
            .map(|key| XChaCha20Poly1305::new(&derive(key).into()))
            .collect();
        PendingCodec { ciphers }
    }

    /// The cookie value for `list`, which [`push`] keeps within [`MAX_VALUE`].
    /// `None` only if `list` is too big (it cannot be after `push`).
    pub fn seal(&self, list: &[PendingSignIn]) -> Option<String> {
        let plaintext = serde_json::to_vec(list).ok()?;
        if plaintext.len() > MAX_PLAINTEXT {
            return None;
        }
        let cipher = self.ciphers.first()?;
        let nonce: [u8; NONCE_LEN] = random_bytes();
        let sealed = cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &plaintext,
                    aad: AAD,
                },
            )
            .ok()?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Some(URL_SAFE_NO_PAD.encode(out))
    }

    /// The list in a cookie value; empty for anything too long, malformed,
    /// tampered with or sealed under a key we no longer have.
    pub fn open(&self, value: &str) -> Vec<PendingSignIn> {
        if value.len() > MAX_VALUE {
            return Vec::new();
        }
        let Ok(bytes) = URL_SAFE_NO_PAD.decode(value) else {
            return Vec::new();
        };
        if bytes.len() < NONCE_LEN + TAG_LEN {
            return Vec::new();
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let Ok(nonce) = <[u8; NONCE_LEN]>::try_from(nonce) else {
            return Vec::new();
        };
        let nonce = XNonce::from(nonce);
        self.ciphers
            .iter()
            .find_map(|cipher| {
                cipher
                    .decrypt(
                        &nonce,
                        Payload {
                            msg: sealed,
                            aad: AAD,
                        },
                    )
                    .ok()
            })
            .and_then(|plain| serde_json::from_slice(&plain).ok())
            .unwrap_or_default()
    }
}

/// The list with `new` first, then the older sign-ins that are still live, as
/// many as fit [`MAX_ENTRIES`] and the cookie's size.
pub fn push(new: PendingSignIn, older: Vec<PendingSignIn>, now: u64) -> Vec<PendingSignIn> {
    let mut list = vec![new];
    for entry in older {
        if list.len() >= MAX_ENTRIES {
            break;
        }
        if entry.is_live(now) && !list.iter().any(|e| e.state == entry.state) {
            list.push(entry);
        }
    }
    while list.len() > 1 && serde_json::to_vec(&list).map_or(0, |v| v.len()) > MAX_PLAINTEXT {
        list.pop();
    }
    list
}

/// Takes the live sign-in with `state` out of `list`; returns it and the live rest.
pub fn take(
    list: Vec<PendingSignIn>,
    state: &str,
    now: u64,
) -> (Option<PendingSignIn>, Vec<PendingSignIn>) {
    let mut found = None;
    let mut rest = Vec::new();
    for entry in list.into_iter().filter(|e| e.is_live(now)) {
        if found.is_none() && constant_time_eq(entry.state.as_bytes(), state.as_bytes()) {
            found = Some(entry);
        } else {
            rest.push(entry);
        }
    }
    (found, rest)
}

/// A key for this cookie only, so the MAC keys and the cipher keys differ.
#[allow(
    clippy::expect_used,
    reason = "HMAC-SHA256 accepts a key of any length"
)]
fn derive(key: &CookieKey) -> [u8; 32] {
    // HMAC takes keys of any length: this cannot fail.
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key.expose()).expect("HMAC takes any key length");
    mac.update(b"forward-auth pending sign-in cookie encryption key");
    mac.finalize().into_bytes().into()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

mod secret {
    use crate::secret::Secret;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(s: &Secret, ser: S) -> Result<S::Ok, S::Error> {
        ser.serialize_str(s.expose())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<Secret, D::Error> {
        String::deserialize(de).map(Secret::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec(keys: &[u8]) -> PendingCodec {
        let keys: Vec<CookieKey> = keys.iter().map(|b| CookieKey::new([*b; 32])).collect();
        PendingCodec::new(&keys)
    }

    fn entry(state: &str, rd: &str, created_at: u64) -> PendingSignIn {
        PendingSignIn {
            state: state.to_string(),
            nonce: format!("nonce-{state}"),
            pkce_verifier: Secret::new(format!("verifier-{state}")),
            rd: rd.to_string(),
            created_at,
        }
    }

    #[test]
    fn a_sealed_list_opens_and_hides_its_content() {
        let c = codec(&[1]);
        let value = c
            .seal(&[entry("s1", "/secret-path", 100)])
            .expect("it fits");
        assert!(!value.contains("secret") && !value.contains("verifier"));
        let list = c.open(&value);
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].state, "s1");
        assert_eq!(list[0].pkce_verifier.expose(), "verifier-s1");
        assert_eq!(list[0].rd, "/secret-path");
    }

    #[test]
    fn tampered_foreign_and_garbage_values_open_to_nothing() {
        let c = codec(&[1]);
        let value = c.seal(&[entry("s1", "/", 100)]).unwrap();
        let mut flipped = value.clone().into_bytes();
        flipped[40] = if flipped[40] == b'A' { b'B' } else { b'A' };
        for bad in [
            String::from_utf8(flipped).unwrap(),
            value[..value.len() - 2].to_string(),
            codec(&[2]).seal(&[entry("s1", "/", 100)]).unwrap(),
            String::new(),
            "!!!".to_string(),
            "A".repeat(MAX_VALUE + 4),
        ] {
            assert!(c.open(&bad).is_empty(), "{bad:?} opened");
        }
    }

    #[test]
    fn every_key_opens_but_only_the_first_seals() {
        let old = codec(&[1]);
        let rotated = codec(&[2, 1]);
        let value = old.seal(&[entry("s1", "/", 100)]).unwrap();
        assert_eq!(rotated.open(&value).len(), 1);
        let value = rotated.seal(&[entry("s1", "/", 100)]).unwrap();
        assert!(old.open(&value).is_empty());
    }

    #[test]
    fn the_list_keeps_the_newest_live_entries_within_its_bounds() {
        let now = 10_000;
        let older: Vec<_> = (0..10)
            .map(|i| entry(&format!("s{i}"), "/", now - i))
            .collect();
        let list = push(entry("new", "/", now), older, now);
        assert_eq!(list.len(), MAX_ENTRIES);
        assert_eq!(list[0].state, "new");
        assert_eq!(list[1].state, "s0");

        let expired = entry("old", "/", now - PENDING_TTL.as_secs());
        let list = push(entry("new", "/", now), vec![expired], now);
        assert_eq!(list.len(), 1, "an expired sign-in is dropped");

        let big = "/".to_string() + &"p".repeat(2047);
        let older = vec![entry("a", &big, now), entry("b", &big, now)];
        let list = push(entry("new", &big, now), older, now);
        assert_eq!(list.len(), 1, "two 2 KB targets do not fit one cookie");
        let value = codec(&[1]).seal(&list).expect("the newest always fits");
        assert!(value.len() <= MAX_VALUE, "{}", value.len());
    }

    #[test]
    fn take_returns_the_matching_live_entry_and_the_rest() {
        let now = 10_000;
        let list = vec![
            entry("a", "/a", now),
            entry("b", "/b", now),
            entry("c", "/c", now - PENDING_TTL.as_secs()),
        ];
        let (found, rest) = take(list, "b", now);
        assert_eq!(found.map(|e| e.rd).as_deref(), Some("/b"));
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].state, "a");
        let (found, rest) = take(rest, "c", now);
        assert!(found.is_none());
        assert_eq!(rest.len(), 1);
    }
}
