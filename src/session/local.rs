//! A replica's short-lived copy of the sessions it loaded from Redis, so a check
//! does not pay a Redis round trip. It must never let a signed-out browser in:
//! a copy answers for at most [`LOCAL_TTL`] after its read; every change in
//! Redis is announced and drops the copy on every replica (milliseconds); and
//! while that subscription is down nothing is copied, so every check asks Redis
//! (a generation counter keeps a read that raced a message from being stored).
//! Knows no Redis command and not the channel itself (that is `pubsub`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::sharded::{now_millis, Keyed, ShardedMap, Slot};
use super::{Session, SessionId};
use crate::clock::now;

/// How long a copy may answer checks without asking Redis again. Also the worst
/// case for a sign-out elsewhere to reach this replica if a message were lost.
pub const LOCAL_TTL: Duration = Duration::from_secs(1);
/// Expired copies are swept out at most this often (seconds), on inserts.
const SWEEP_EVERY_SECS: u64 = 5;

struct Copy {
    id: SessionId,
    session: Arc<Session>,
    until: Instant,
}

impl Keyed for Copy {
    fn key(&self) -> &SessionId {
        &self.id
    }
}

/// The copies, and whether invalidations are being received.
pub struct LocalSessions {
    copies: ShardedMap<Copy>,
    /// Bumped by every invalidation: a read that started before one is not kept.
    generation: AtomicU64,
    /// The invalidation channel is subscribed; without it nothing is cached.
    live: AtomicBool,
    ttl: Duration,
}

impl LocalSessions {
    pub fn new() -> LocalSessions {
        LocalSessions::with_ttl(LOCAL_TTL)
    }

    /// Copies that live `ttl` instead of [`LOCAL_TTL`] (tests use an hour, to
    /// show that invalidations alone keep copies honest).
    pub fn with_ttl(ttl: Duration) -> LocalSessions {
        LocalSessions {
            ttl,
            copies: ShardedMap::new(),
            generation: AtomicU64::new(0),
            live: AtomicBool::new(false),
        }
    }

    /// A copy read less than the TTL ago, of a session not yet expired.
    pub fn get(&self, id: &SessionId) -> Option<Arc<Session>> {
        if !self.live.load(Ordering::Acquire) {
            return None;
        }
        let map = self.copies.shard(id).read().ok()?;
        let copy = map.get(id)?;
        (Instant::now() < copy.until && !copy.session.is_expired(now()))
            .then(|| copy.session.clone())
    }

    /// Take before reading Redis; pass to [`insert`](Self::insert) afterwards.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Keeps a copy read from Redis, unless an invalidation arrived since the
    /// read began (`generation` taken before it) or invalidations are not live.
    pub fn insert(&self, id: &SessionId, session: Arc<Session>, generation: u64, read_at: Instant) {
        self.copies
            .sweep_if_due(now_millis(), SWEEP_EVERY_SECS, |copy| read_at < copy.until);
        let Ok(mut map) = self.copies.shard(id).write() else {
            return;
        };
        // Checked under the shard's write lock: an invalidation bumps the
        // generation before it takes this lock, so it either stops this insert
        // or removes what it inserted.
        if !self.live.load(Ordering::Acquire) || self.generation() != generation {
            return;
        }
        let until = read_at + self.ttl;
        map.replace(Slot(Copy {
            id: id.clone(),
            session,
            until,
        }));
    }

    /// Drops the copy of one session.
    pub fn invalidate(&self, id: &SessionId) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut map) = self.copies.shard(id).write() {
            map.remove(id);
        }
    }

    /// Drops the copies that match (a user's, an IdP session's).
    pub fn invalidate_where(&self, matches: impl Fn(&Session) -> bool) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        // A poisoned shard cannot hold a copy anyone reads: `get` gives up on it.
        let _ = self.copies.retain(|copy| !matches(&copy.session));
    }

    /// Invalidations are (`true`) or are no longer (`false`) received. Either
    /// way every copy goes: messages may have been missed in between.
    pub fn set_live(&self, live: bool) {
        if !live {
            self.live.store(false, Ordering::Release);
        }
        self.invalidate_where(|_| true);
        if live {
            self.live.store(true, Ordering::Release);
        }
    }

    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }
}

impl Default for LocalSessions {
    fn default() -> Self {
        LocalSessions::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;

    fn session(sub: &str, sid: &str) -> Arc<Session> {
        let now = now();
        Arc::new(Session::new(
            Identity::new(sub.into(), sub.into(), sub.into(), sub.into())
                .with_sid(Some(sid.into())),
            now,
            now + 3600,
            now + 3600,
            None,
        ))
    }

    fn live() -> LocalSessions {
        let local = LocalSessions::new();
        local.set_live(true);
        local
    }

    #[test]
    fn nothing_is_cached_until_invalidations_are_live() {
        let local = LocalSessions::new();
        let id = SessionId::random();
        local.insert(&id, session("a", "s"), local.generation(), Instant::now());
        assert!(local.get(&id).is_none());
        local.set_live(true);
        local.insert(&id, session("a", "s"), local.generation(), Instant::now());
        assert!(local.get(&id).is_some());
        local.set_live(false);
        assert!(local.get(&id).is_none(), "losing the channel drops copies");
        local.set_live(true);
        assert!(local.get(&id).is_none(), "and they stay dropped");
    }

    #[test]
    fn a_copy_expires_after_the_local_ttl() {
        let local = live();
        let id = SessionId::random();
        let long_ago = Instant::now() - LOCAL_TTL;
        local.insert(&id, session("a", "s"), local.generation(), long_ago);
        assert!(local.get(&id).is_none());
    }

    #[test]
    fn a_read_that_raced_an_invalidation_is_not_kept() {
        let local = live();
        let id = SessionId::random();
        let before = local.generation();
        // The message arrives while the read is in flight…
        local.invalidate(&id);
        // …so the (possibly stale) result must not be cached.
        local.insert(&id, session("a", "s"), before, Instant::now());
        assert!(local.get(&id).is_none());
    }

    #[test]
    fn invalidations_drop_exactly_the_matching_copies() {
        let local = live();
        let ids: Vec<SessionId> = (0..4).map(|_| SessionId::random()).collect();
        let owners = [
            ("alice", "s1"),
            ("alice", "s2"),
            ("bob", "s3"),
            ("bob", "s1"),
        ];
        for (id, (sub, sid)) in ids.iter().zip(owners) {
            local.insert(id, session(sub, sid), local.generation(), Instant::now());
        }
        local.invalidate(&ids[0]);
        assert!(local.get(&ids[0]).is_none());
        assert!(local.get(&ids[1]).is_some());
        local.invalidate_where(|s| s.identity().sub() == "bob");
        assert!(local.get(&ids[2]).is_none() && local.get(&ids[3]).is_none());
        assert!(local.get(&ids[1]).is_some(), "alice's other session stays");
    }
}
