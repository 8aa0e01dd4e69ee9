//! How a replica coordinates Okta lookups with the others through Redis: take a
//! recent enough answer another replica published, or the user's fetch lease
//! and ask Okta (unless some replica saw a 429), publish, give the lease back;
//! wait while another replica holds it. Invalidations go out through Redis and
//! come in on a subscription that drops this replica's answers for that user.
//! Redis trouble pauses sharing for a moment (lookups ask Okta directly) and
//! is logged once a minute. Its own type, [`Shared`], which the cache holds
//! and asks; the cache policy (which answer a check gets) is not this file's.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::redis::INVALIDATIONS;
use super::{as_ms, now_ms, Group, GroupsError, OktaGroupsClient};
use super::{RedisGroups, SharedEntry, SharedError, Take};
use crate::clock::now;
use crate::clock::take_turn;
use crate::metrics;
use crate::pubsub::{self, Listener};
use crate::random::random_token;

/// How long a replica may hold a user's fetch lease: longer than one Okta call
/// may take (the HTTP client gives up after 10 s), short enough that a replica
/// that died while fetching is replaced within one wait.
const LEASE: Duration = Duration::from_secs(10);
/// How long a lookup waits for another replica's fetch: past [`LEASE`], so that
/// the waiter takes over when the fetching replica died.
const WAIT_FOR_OTHER: Duration = Duration::from_secs(11);
/// How often a waiting lookup looks whether the other replica has published.
const POLL: Duration = Duration::from_millis(25);
/// After Redis failed to answer, how long lookups ask Okta directly before
/// trying Redis again (so a dead Redis costs no timeout per lookup).
const REDIS_PAUSE: Duration = Duration::from_secs(5);
/// Redis trouble is logged as a warning at most this often.
const WARN_EVERY: Duration = Duration::from_secs(60);
/// How long a failed fetch's outcome stands in for the lease.
const FAILURE_MARKER: Duration = Duration::from_secs(2);

/// What a shared lookup found.
pub(super) enum Found {
    /// Another replica's answer, recent enough.
    Shared(SharedEntry),
    /// Okta's answer (groups or a definitive "no") to this replica's call,
    /// which began at `started` (`started_ms` on the wall clock).
    Fetched {
        answer: Result<Vec<Group>, GroupsError>,
        started: Instant,
        started_ms: u64,
    },
}

/// The Redis side of a cache, with what this replica knows about its health.
pub(super) struct Shared {
    redis: RedisGroups,
    /// Tags this replica's invalidation messages, which it ignores on receipt.
    origin: Arc<str>,
    /// The invalidation channel is subscribed.
    live: AtomicBool,
    /// Epoch ms before which Redis is not asked again, after it failed.
    paused_until_ms: AtomicU64,
    /// Epoch ms of the last warning about Redis, so an outage warns once a minute.
    warned_at_ms: AtomicU64,
    /// The latest Okta block (epoch s) this replica knows Redis holds.
    block_known: AtomicU64,
}

impl Shared {
    pub(super) fn new(redis: RedisGroups) -> Shared {
        Shared {
            redis,
            origin: random_token().into(),
            live: AtomicBool::new(false),
            paused_until_ms: AtomicU64::new(0),
            warned_at_ms: AtomicU64::new(0),
            block_known: AtomicU64::new(0),
        }
    }

    /// Whether this replica's answers stay valid until the TTL: while it
    /// receives invalidations, or while Redis cannot answer (then nobody can
    /// send one through it, and asking it again would only cost time).
    pub(super) fn trusts_local(&self) -> bool {
        self.live.load(Ordering::Acquire) || !self.available()
    }

    pub(super) fn set_live(&self, live: bool) {
        self.live.store(live, Ordering::Release);
    }

    pub(super) fn available(&self) -> bool {
        now_ms() >= self.paused_until_ms.load(Ordering::Relaxed)
    }

    /// Redis failed: lookups ask Okta directly for a while.
    pub(super) fn trouble(&self, error: &SharedError) {
        let now = now_ms();
        self.paused_until_ms
            .store(now.saturating_add(as_ms(REDIS_PAUSE)), Ordering::Relaxed);
        if take_turn(&self.warned_at_ms, now, as_ms(WARN_EVERY)) {
            tracing::warn!(%error, "groups are not shared with the other replicas while Redis cannot answer; asking Okta from this replica");
        } else {
            tracing::debug!(%error, "groups: Redis still cannot answer");
        }
    }

    /// Tells every replica (this one included, which ignores its own message)
    /// to forget the user's groups, and voids a fetch under way anywhere.
    pub(super) async fn invalidate(&self, user_id: &str) -> Result<(), SharedError> {
        self.redis.invalidate(user_id, &self.origin).await
    }

    /// The lookup among replicas: an answer fetched at or after
    /// `counts_from_ms`, else Okta's under the lease; groups published for
    /// `keep`, a definitive "no" for `ttl`. `Ok(Err)`: Okta could not be asked
    /// or failed (here or on the replica that held the lease). `Err` only when
    /// Redis failed before Okta was asked: then the caller may ask Okta itself
    /// without making a second call.
    pub(super) async fn look_up(
        &self,
        client: &OktaGroupsClient,
        user_id: &str,
        counts_from_ms: u64,
        ttl: Duration,
        keep: Duration,
    ) -> Result<Result<Found, GroupsError>, SharedError> {
        let token = random_token();
        let deadline = Instant::now() + WAIT_FOR_OTHER;
        loop {
            match self
                .redis
                .take(user_id, &token, LEASE, counts_from_ms)
                .await?
            {
                Take::Entry(entry) => {
                    metrics::GROUPS_SHARED_HITS.inc();
                    return Ok(Ok(Found::Shared(entry)));
                }
                Take::Leased { blocked_until } => {
                    return Ok(self
                        .fetch_leased(client, user_id, &token, blocked_until, ttl, keep)
                        .await)
                }
                Take::Failed(error) => return Ok(Err(error)),
                Take::Held => {}
            }
            if Instant::now() >= deadline {
                return Ok(Err(GroupsError::Unavailable(
                    "another replica is still asking Okta for this user".into(),
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// With the lease: ask Okta (unless some replica saw a 429), publish the
    /// answer, share a new block, give the lease back. Redis failing after the
    /// call costs the sharing, never the answer.
    async fn fetch_leased(
        &self,
        client: &OktaGroupsClient,
        user_id: &str,
        token: &str,
        blocked_until: u64,
        ttl: Duration,
        keep: Duration,
    ) -> Result<Found, GroupsError> {
        client.raise_block(blocked_until);
        self.block_known.fetch_max(blocked_until, Ordering::Relaxed);
        let (started, started_ms) = (Instant::now(), now_ms());
        let result = client.fetch(user_id).await;
        self.share_block(client).await;
        let published = match &result {
            Ok(groups) => Some((Ok(groups.as_slice()), keep)),
            // Kept only while fresh: an old "no" is asked again, not served.
            Err(error) if error.is_definitive() => Some((Err(error), ttl)),
            Err(_) => None,
        };
        if let Some((answer, keep)) = published {
            if let Err(error) = self
                .redis
                .publish(user_id, token, started_ms, answer, keep)
                .await
            {
                self.trouble(&error);
            }
        }
        let failed = result.as_ref().err();
        if let Err(error) = self
            .redis
            .release(user_id, token, failed, FAILURE_MARKER)
            .await
        {
            self.trouble(&error);
        }
        match result {
            Err(error) if !error.is_definitive() => Err(error),
            answer => Ok(Found::Fetched {
                answer,
                started,
                started_ms,
            }),
        }
    }

    /// A block this replica learnt from Okta goes to Redis for the others.
    async fn share_block(&self, client: &OktaGroupsClient) {
        let local = client.blocked_until();
        if local <= now() || local <= self.block_known.load(Ordering::Relaxed) {
            return;
        }
        match self.redis.raise_block(local).await {
            Ok(in_force) => {
                self.block_known.fetch_max(in_force, Ordering::Relaxed);
                client.raise_block(in_force);
            }
            Err(error) => self.trouble(&error),
        }
    }

    /// Subscribes `cache` to the invalidations of the other replicas for as
    /// long as it lives (needs a Tokio runtime; without one, never in the
    /// service, nothing listens).
    pub(super) fn subscribe<L: Listener>(&self, cache: Weak<L>) {
        let client = self.redis.client().clone();
        pubsub::listen(client, INVALIDATIONS, self.origin.clone(), cache);
    }
}

/// The user an invalidation message names (the text after the sender's
/// origin tag): non-empty text, else `None`.
pub(super) fn invalidated_user(payload: &[u8]) -> Option<&str> {
    std::str::from_utf8(payload)
        .ok()
        .filter(|user| !user.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_trouble_warns_once_per_period_however_many_lookups_meet_it() {
        let last = AtomicU64::new(0);
        assert!(take_turn(&last, 1_000, 60_000), "the first trouble warns");
        assert!(!take_turn(&last, 1_001, 60_000));
        assert!(!take_turn(&last, 60_999, 60_000));
        assert!(
            take_turn(&last, 61_000, 60_000),
            "a minute later it warns again"
        );
        assert_eq!(last.load(Ordering::Relaxed), 61_000);
        let warned = (0..1000)
            .filter(|i| take_turn(&last, 61_001 + i, 60_000))
            .count();
        assert_eq!(warned, 0);
    }

    #[test]
    fn an_invalidation_message_names_one_user_in_text() {
        assert_eq!(invalidated_user(b"00ualice"), Some("00ualice"));
        assert_eq!(invalidated_user(b""), None);
        assert_eq!(invalidated_user(b"\xff"), None);
    }
}
