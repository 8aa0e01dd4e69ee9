//! The in-memory [`SessionStore`]: moka caches with per-entry expiry and a bounded
//! number of pending sign-ins, for a single instance.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use moka::future::Cache;
use moka::Expiry;

use super::{now, PendingSignIn, Session, SessionId, SessionStore, StoreError, PENDING_TTL};

/// At most this many sign-ins can be pending at once; the oldest go first.
const MAX_PENDING: u64 = 100_000;

struct UntilSessionEnds;

impl Expiry<SessionId, Arc<Session>> for UntilSessionEnds {
    fn expire_after_create(&self, _: &SessionId, s: &Arc<Session>, _: Instant) -> Option<Duration> {
        Some(s.remaining(now()))
    }
    fn expire_after_update(
        &self,
        _: &SessionId,
        s: &Arc<Session>,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(s.remaining(now()))
    }
}

/// Sessions in this process only.
pub struct MemoryStore {
    sessions: Cache<SessionId, Arc<Session>>,
    pending: Cache<String, Arc<PendingSignIn>>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore {
            sessions: Cache::builder().expire_after(UntilSessionEnds).build(),
            pending: Cache::builder()
                .max_capacity(MAX_PENDING)
                .time_to_live(PENDING_TTL)
                .build(),
        }
    }

    /// How many sessions are live (approximate, for metrics and benchmarks).
    pub fn session_count(&self) -> u64 {
        self.sessions.entry_count()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn load(&self, id: &SessionId) -> Result<Option<Arc<Session>>, StoreError> {
        let now = now();
        Ok(self.sessions.get(id).await.filter(|s| !s.is_expired(now)))
    }

    async fn save(&self, id: &SessionId, session: &Session) -> Result<(), StoreError> {
        self.sessions
            .insert(id.clone(), Arc::new(session.clone()))
            .await;
        Ok(())
    }

    async fn remove(&self, id: &SessionId) -> Result<(), StoreError> {
        self.sessions.invalidate(id).await;
        Ok(())
    }

    async fn remove_user(&self, sub: &str) -> Result<usize, StoreError> {
        let ids: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.sub == sub)
            .map(|(id, _)| SessionId::clone(&id))
            .collect();
        for id in &ids {
            self.sessions.invalidate(id).await;
        }
        Ok(ids.len())
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
