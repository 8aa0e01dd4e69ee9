//! The access tokens verified most recently, kept with their exact bytes so
//! that a warm check neither hashes the whole token with SHA-256 nor reads the
//! moka cache: a fixed table of [`SLOTS`] slots, one chosen per token by a
//! keyed fast hash (foldhash, a per-process seed), each answering only for a
//! token equal to its own in every byte. Owns only this table. Must NOT take a
//! token that was not verified, decide expiry (the verifier checks `exp` and
//! the skew on every answer), or hold more than [`SLOTS`] tokens.

use std::hash::BuildHasher;
use std::sync::{Arc, RwLock};

use super::TokenIdentity;

/// Tokens kept at most (each ~1 kB): the few clients that call often stay
/// here; the others are answered by the verifier's cache as before.
pub(super) const SLOTS: usize = 256;

/// Bytes of a token's end that choose its slot.
const HASHED_TAIL: usize = 32;

/// A verified token and who it speaks for.
struct Known {
    token: Box<[u8]>,
    identity: Arc<TokenIdentity>,
}

pub(super) struct Recent {
    hasher: foldhash::fast::RandomState,
    slots: Box<[RwLock<Option<Known>>]>,
}

impl Recent {
    pub(super) fn new() -> Recent {
        Recent::with_slots(SLOTS)
    }

    /// A table of `slots` slots (tests use one, so that every token shares it).
    pub(super) fn with_slots(slots: usize) -> Recent {
        Recent {
            hasher: foldhash::fast::RandomState::default(),
            slots: (0..slots.max(1)).map(|_| RwLock::new(None)).collect(),
        }
    }

    /// The token's slot, chosen by its length and last [`HASHED_TAIL`] bytes
    /// (a signature's: as random as the whole token): the comparison that
    /// follows reads every byte anyway.
    fn slot(&self, token: &[u8]) -> &RwLock<Option<Known>> {
        let tail = &token[token.len().saturating_sub(HASHED_TAIL)..];
        let hash = self.hasher.hash_one((token.len(), tail));
        // The remainder is below the slot count, which is a `usize`.
        &self.slots[(hash % self.slots.len() as u64) as usize]
    }

    /// The identity of `token` if it is the one its slot holds, byte for byte.
    pub(super) fn get(&self, token: &[u8]) -> Option<Arc<TokenIdentity>> {
        let slot = self.slot(token).read().ok()?;
        let known = slot.as_ref()?;
        same(&known.token, token).then(|| known.identity.clone())
    }

    /// Keeps a verified token in its slot, in place of whatever was there.
    pub(super) fn put(&self, token: &str, identity: Arc<TokenIdentity>) {
        if let Ok(mut slot) = self.slot(token.as_bytes()).write() {
            *slot = Some(Known {
                token: token.as_bytes().into(),
                identity,
            });
        }
    }

    /// Empties `token`'s slot if it still holds that token.
    pub(super) fn forget(&self, token: &[u8]) {
        if let Ok(mut slot) = self.slot(token).write() {
            if slot.as_ref().is_some_and(|known| same(&known.token, token)) {
                *slot = None;
            }
        }
    }
}

/// Whether two tokens are equal, reading every byte whatever the first
/// difference (no early exit that would time how much of a token matched).
fn same(kept: &[u8], given: &[u8]) -> bool {
    kept.len() == given.len()
        && kept
            .iter()
            .zip(given)
            .fold(0u8, |differ, (a, b)| differ | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(subject: &str) -> Arc<TokenIdentity> {
        Arc::new(TokenIdentity {
            subject: subject.into(),
            login: subject.into(),
            email: String::new(),
            machine: true,
            groups_claim: None,
            expires_at: u64::MAX,
            hot: Default::default(),
        })
    }

    #[test]
    fn a_token_that_differs_in_any_one_byte_is_not_the_kept_one() {
        // One slot: every token lands in the kept token's slot.
        let recent = Recent::with_slots(1);
        let token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl";
        recent.put(token, identity("0oa1"));
        assert_eq!(recent.get(token.as_bytes()).unwrap().subject, "0oa1");
        for i in 0..token.len() {
            let mut other = token.as_bytes().to_vec();
            other[i] ^= 1;
            assert!(recent.get(&other).is_none(), "byte {i}");
        }
        assert!(
            recent.get(&token.as_bytes()[..token.len() - 1]).is_none(),
            "a prefix"
        );
        assert!(
            recent.get(format!("{token}A").as_bytes()).is_none(),
            "a longer token"
        );
    }

    #[test]
    fn forgetting_a_token_leaves_another_tokens_slot_alone() {
        let recent = Recent::with_slots(1);
        recent.put("a.b.c", identity("0oa1"));
        recent.forget(b"a.b.d");
        assert!(recent.get(b"a.b.c").is_some());
        recent.forget(b"a.b.c");
        assert!(recent.get(b"a.b.c").is_none());
        recent.put("a.b.c", identity("0oa1"));
        recent.put("x.y.z", identity("0oa2"));
        assert!(recent.get(b"a.b.c").is_none(), "replaced");
        assert_eq!(recent.get(b"x.y.z").unwrap().subject, "0oa2");
    }
}
