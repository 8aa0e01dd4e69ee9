//! The in-memory [`SessionStore`], for a single instance. Sessions live in a
//! sharded hash map (a read lock per lookup, no allocation): at ~50 bytes of
//! overhead per entry it holds 100k sessions in a fraction of what a general
//! cache costs (moka measured ~400 bytes per entry). Expired sessions are never
//! returned and are swept out at most once a minute, on writes. Pending sign-ins
//! stay in a moka cache bounded in count and time.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use moka::future::Cache;

use super::{
    ending_matches, now, Ending, PendingSignIn, Session, SessionId, SessionStore, StoreError,
    ONE_TIME_TTL, PENDING_TTL,
};

/// At most this many sign-ins can be pending at once; the oldest go first.
const MAX_PENDING: u64 = 100_000;
/// Independent locks, so checks on both cores rarely meet.
const SHARDS: usize = 64;
/// Seconds between sweeps of expired sessions.
const SWEEP_EVERY_SECS: u64 = 60;

/// Hashes a session id by folding its bytes. Session ids are 160 random bits made
/// by us, and a lookup happens only after the cookie's MAC verified, so nobody
/// can choose keys to collide: a keyed (SipHash) hasher would only cost time.
#[derive(Default)]
pub(super) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word))
                .wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type Shard = RwLock<HashMap<SessionId, Arc<Session>, BuildHasherDefault<IdHasher>>>;

/// Sessions in this process only.
pub struct MemoryStore {
    shards: Box<[Shard]>,
    last_sweep: AtomicU64,
    pending: Cache<String, Arc<PendingSignIn>>,
    used_tokens: Cache<String, ()>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            last_sweep: AtomicU64::new(now()),
            pending: Cache::builder()
                .max_capacity(MAX_PENDING)
                .time_to_live(PENDING_TTL)
                .build(),
            used_tokens: Cache::builder()
                .max_capacity(MAX_PENDING)
                .time_to_live(ONE_TIME_TTL)
                .build(),
        }
    }

    fn shard(&self, id: &SessionId) -> &Shard {
        &self.shards[usize::from(id.0[0]) % SHARDS]
    }

    /// How many sessions are held (expired ones not yet swept included).
    pub fn session_count(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().map(|m| m.len()).unwrap_or(0))
            .sum()
    }

    /// Ends every session that matches; returns how many.
    fn remove_where(&self, matches: impl Fn(&Session) -> bool) -> Result<usize, StoreError> {
        let mut ended = 0;
        for shard in self.shards.iter() {
            let mut map = shard.write().map_err(poisoned)?;
            let before = map.len();
            map.retain(|_, s| !matches(s));
            ended += before - map.len();
        }
        Ok(ended)
    }

    /// Drops expired sessions, at most once per [`SWEEP_EVERY_SECS`].
    fn sweep_if_due(&self, now: u64) {
        let last = self.last_sweep.load(Ordering::Relaxed);
        if now < last + SWEEP_EVERY_SECS
            || self
                .last_sweep
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        for shard in self.shards.iter() {
            if let Ok(mut map) = shard.write() {
                map.retain(|_, s| !s.is_expired(now));
            }
        }
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError("a session shard lock was poisoned".into())
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn load(&self, id: &SessionId) -> Result<Option<Arc<Session>>, StoreError> {
        let now = now();
        let map = self.shard(id).read().map_err(poisoned)?;
        Ok(map.get(id).filter(|s| !s.is_expired(now)).cloned())
    }

    async fn save(&self, id: &SessionId, session: &Session) -> Result<(), StoreError> {
        let now = now();
        self.sweep_if_due(now);
        if session.is_expired(now) {
            return self.remove(id).await;
        }
        let session = Arc::new(session.clone());
        self.shard(id)
            .write()
            .map_err(poisoned)?
            .insert(id.clone(), session);
        Ok(())
    }

    async fn update(&self, id: &SessionId, session: &Session) -> Result<bool, StoreError> {
        let mut map = self.shard(id).write().map_err(poisoned)?;
        match map.get_mut(id) {
            Some(slot) if !slot.is_expired(now()) => {
                *slot = Arc::new(session.clone());
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn remove(&self, id: &SessionId) -> Result<(), StoreError> {
        self.shard(id).write().map_err(poisoned)?.remove(id);
        Ok(())
    }

    async fn remove_user(&self, sub: &str) -> Result<usize, StoreError> {
        self.remove_where(ending_matches(Ending::User { sub }))
    }

    async fn remove_sid(&self, sub: Option<&str>, sid: &str) -> Result<usize, StoreError> {
        self.remove_where(ending_matches(Ending::IdpSession { sub, sid }))
    }

    async fn end_once(
        &self,
        token_id: &str,
        ending: Ending<'_>,
    ) -> Result<Option<usize>, StoreError> {
        // `or_insert` is atomic: of two racing uses, one sees a fresh entry.
        let first = self
            .used_tokens
            .entry_by_ref(token_id)
            .or_insert(())
            .await
            .is_fresh();
        if !first {
            return Ok(None);
        }
        self.remove_where(ending_matches(ending)).map(Some)
    }

    async fn save_pending(&self, state: &str, pending: &PendingSignIn) -> Result<(), StoreError> {
        self.pending
            .insert(state.to_owned(), Arc::new(pending.clone()))
            .await;
        Ok(())
    }

    async fn take_pending(&self, state: &str) -> Result<Option<PendingSignIn>, StoreError> {
        Ok(self
            .pending
            .remove(state)
            .await
            .map(|p| PendingSignIn::clone(&p)))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn the_id_hasher_spreads_random_ids() {
        let build = BuildHasherDefault::<IdHasher>::default();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            seen.insert(build.hash_one(SessionId::random()) >> 54); // top 10 bits
        }
        assert!(
            seen.len() > 500,
            "only {} distinct buckets of 1024",
            seen.len()
        );
    }
}
