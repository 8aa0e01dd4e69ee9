//! The in-memory [`SessionStore`], for a single instance. Sessions live in a
//! sharded hash set keyed by the id each session carries (a read lock per
//! lookup, no allocation): ~10-20 bytes of map per session, a fraction of what
//! a general cache costs (moka measured ~400 bytes per entry). Expired sessions are never
//! returned and are swept out on writes, one shard at a time: each within
//! about a minute, no write walking them all. Used sign-in
//! states stay in a moka cache bounded in count and time (recorded only after
//! Okta vouched for the sign-in). Shares nothing with other replicas.

use std::sync::Arc;

use async_trait::async_trait;
use moka::future::Cache;

use super::sharded::{now_millis, Keyed, ShardedMap, Slot};
use super::{
    ending_matches, Ending, Session, SessionId, SessionStore, StoreError, ONE_TIME_TTL, PENDING_TTL,
};
use crate::clock::now;

/// At most this many used states and one-time tokens are remembered; the oldest go first.
const MAX_PENDING: u64 = 100_000;
/// Seconds between sweeps of expired sessions.
const SWEEP_EVERY_SECS: u64 = 60;

/// Sessions in this process only.
pub struct MemoryStore {
    sessions: ShardedMap<Arc<Session>>,
    used_states: Cache<String, ()>,
    used_tokens: Cache<String, ()>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore {
            sessions: ShardedMap::new(),
            used_states: Cache::builder()
                .max_capacity(MAX_PENDING)
                .time_to_live(PENDING_TTL)
                .build(),
            used_tokens: Cache::builder()
                .max_capacity(MAX_PENDING)
                .time_to_live(ONE_TIME_TTL)
                .build(),
        }
    }

    /// How many sessions are held (expired ones not yet swept included).
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Ends every session that matches; returns how many.
    fn remove_where(&self, matches: impl Fn(&Session) -> bool) -> Result<usize, StoreError> {
        self.sessions.retain(|s| !matches(s)).map_err(poisoned)
    }
}

/// A stored session names itself: the store sets its key on the way in.
impl Keyed for Arc<Session> {
    fn key(&self) -> &SessionId {
        &self.key
    }
}

/// The copy of `session` the store keeps under `id`.
fn keyed(id: &SessionId, session: &Session) -> Arc<Session> {
    let mut kept = session.clone();
    kept.key = id.clone();
    Arc::new(kept)
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
        let map = self.sessions.shard(id).read().map_err(poisoned)?;
        Ok(map
            .get(id)
            .filter(|s| !s.is_expired(now))
            .map(|s| s.0.clone()))
    }

    fn load_held(&self, id: &SessionId, now: u64) -> Option<Arc<Session>> {
        let map = self.sessions.shard(id).read().ok()?;
        map.get(id)
            .filter(|s| !s.is_expired(now))
            .map(|s| s.0.clone())
    }

    async fn save(&self, id: &SessionId, session: &Session) -> Result<(), StoreError> {
        let now = now();
        self.sessions
            .sweep_if_due(now_millis(), SWEEP_EVERY_SECS, |s| !s.is_expired(now));
        if session.is_expired(now) {
            return self.remove(id).await;
        }
        let session = keyed(id, session);
        self.sessions
            .shard(id)
            .write()
            .map_err(poisoned)?
            .replace(Slot(session));
        Ok(())
    }

    async fn update(&self, id: &SessionId, session: &Session) -> Result<bool, StoreError> {
        let mut map = self.sessions.shard(id).write().map_err(poisoned)?;
        if map.get(id).is_none_or(|slot| slot.is_expired(now())) {
            return Ok(false);
        }
        map.replace(Slot(keyed(id, session)));
        Ok(true)
    }

    async fn remove(&self, id: &SessionId) -> Result<(), StoreError> {
        self.sessions
            .shard(id)
            .write()
            .map_err(poisoned)?
            .remove(id);
        Ok(())
    }

    async fn remove_user(&self, sub: &str) -> Result<usize, StoreError> {
        self.remove_where(ending_matches(Ending::User { sub }))
    }

    async fn remove_sid(&self, sub: Option<&str>, sid: &str) -> Result<usize, StoreError> {
        self.remove_where(ending_matches(Ending::IdpSession { sub, sid }))
    }

    async fn end(&self, ending: Ending<'_>) -> Result<usize, StoreError> {
        self.remove_where(ending_matches(ending))
    }

    async fn end_once_taking(
        &self,
        token_id: &str,
        ending: Ending<'_>,
    ) -> Result<Option<Vec<Session>>, StoreError> {
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
        let taken = self
            .sessions
            .take_where(|s| ending_matches(ending)(s))
            .map_err(poisoned)?;
        Ok(Some(taken.iter().map(|s| Session::clone(s)).collect()))
    }

    async fn use_state(&self, state: &str) -> Result<bool, StoreError> {
        Ok(self
            .used_states
            .entry_by_ref(state)
            .or_insert(())
            .await
            .is_fresh())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;

    fn session(sub: &str) -> Session {
        let now = now();
        Session::new(
            Identity::new(sub.into(), sub.into(), sub.into(), sub.into()),
            now,
            now + 3600,
            now + 3600,
            None,
        )
    }

    /// The map holds only the sessions, each naming its own id: a session
    /// saved under two ids is two entries, each found under its own id, and
    /// an update replaces the one entry it names.
    #[tokio::test]
    async fn each_session_is_found_under_the_id_it_was_saved_under() {
        let store = MemoryStore::new();
        let (a, b) = (SessionId::random(), SessionId::random());
        store.save(&a, &session("alice")).await.unwrap();
        store.save(&b, &session("alice")).await.unwrap();
        assert_eq!(store.session_count(), 2);
        for id in [&a, &b] {
            assert_eq!(store.load(id).await.unwrap().unwrap().key, *id);
        }
        assert!(store.update(&a, &session("bob")).await.unwrap());
        assert_eq!(store.session_count(), 2);
        let sub = |s: Option<Arc<Session>>| s.unwrap().identity().sub().to_string();
        assert_eq!(sub(store.load(&a).await.unwrap()), "bob");
        assert_eq!(sub(store.load(&b).await.unwrap()), "alice");
        assert!(!store
            .update(&SessionId::random(), &session("eve"))
            .await
            .unwrap());
        assert_eq!(store.session_count(), 2, "an update never adds");
        assert_eq!(store.remove_user("alice").await.unwrap(), 1);
        assert!(store.load(&b).await.unwrap().is_none());
    }
}
