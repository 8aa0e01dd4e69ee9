//! The freshness policy for a user's groups: a moka cache with
//! `GROUPS_CACHE_TTL` as a hard bound while Okta answers, refresh-ahead for
//! active users, one coalesced lookup per user, the last known groups for at
//! most `GROUPS_STALE_IF_ERROR` past the TTL while Okta fails, and
//! invalidations that void every answer known before them (local instants,
//! and messages from the other replicas). Asks Okta through `okta` and the
//! other replicas through `shared`; knows no HTTP details and no Redis command.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use moka::future::Cache;

use super::shared::{self, Shared};
use super::{as_ms, now_ms, Group, GroupsError, OktaGroupsClient, RedisGroups};
use super::{SharedError, UserGroups};
use crate::clock::now;
use crate::metrics;
use crate::pubsub::Listener;

mod entry;
mod link;
use self::entry::{Entry, KeepUntil};
pub use self::link::GroupsLink;

/// `GROUPS_STALE_IF_ERROR`'s default: how long past `GROUPS_CACHE_TTL` the last
/// known groups may still be used while Okta cannot be asked.
pub const DEFAULT_STALE_IF_ERROR: Duration = Duration::from_secs(15 * 60);
/// How long a failed lookup is remembered, so a broken Okta is not hammered.
const NEGATIVE_TTL: Duration = Duration::from_secs(2);
/// Lookups in a row that an invalidation may void before a check gives up.
const LOOKUP_ATTEMPTS: usize = 3;
/// While invalidations from other replicas cannot be received, how long an
/// answer is used before Redis is asked again (as for sessions).
const UNCONFIRMED_FOR: Duration = Duration::from_secs(1);

/// How long before the TTL runs out an active user's refresh starts: a tenth
/// of the TTL, at most 10 s (an Okta call takes well under a second; the HTTP
/// client gives up after 10 s). With the default 5m, 1.03 lookups per TTL.
fn refresh_lead(ttl: Duration) -> Duration {
    (ttl / 10).min(Duration::from_secs(10))
}

/// What answer a lookup needs.
#[derive(Clone, Copy)]
enum Want {
    /// One fetched within the TTL.
    Fresh,
    /// One fetched after this instant (epoch ms): a refresh.
    NewerThan(u64),
    /// This one (fetched at this instant) if it still stands, or a newer one;
    /// never an Okta call just because Redis cannot answer.
    Confirm(u64),
}

/// The groups of users, cached.
#[derive(Clone)]
pub struct GroupsCache {
    inner: Arc<Inner>,
}

struct Inner {
    client: OktaGroupsClient,
    ttl: Duration,
    stale_if_error: Duration,
    /// Answers, kept for the TTL plus the stale-if-error window.
    cache: Cache<String, Entry>,
    /// Coalesces concurrent lookups of one user; emptied as each one ends.
    lookups: Cache<String, Entry>,
    /// Failed lookups, for [`NEGATIVE_TTL`].
    failures: Cache<String, GroupsError>,
    /// When each user's groups were last invalidated on this replica.
    invalidated: Cache<String, Instant>,
    /// Counts invalidations (of one user or all, and trust in local answers
    /// lost): a [`GroupsLink`] read before the latest one is void.
    generation: AtomicU64,
    shared: Option<Shared>,
}

impl GroupsCache {
    /// A cache of this process alone.
    pub fn new(client: OktaGroupsClient, ttl: Duration) -> GroupsCache {
        GroupsCache::configured(client, ttl, DEFAULT_STALE_IF_ERROR, None)
    }

    /// A cache that shares what it learns with the other replicas through
    /// Redis: at most one Okta call per user per TTL among them all, a 429 seen
    /// by one holds back all, and an invalidation on one reaches all.
    pub fn with_redis(client: OktaGroupsClient, ttl: Duration, redis: RedisGroups) -> GroupsCache {
        GroupsCache::configured(client, ttl, DEFAULT_STALE_IF_ERROR, Some(redis))
    }

    /// A cache with every setting: `stale_if_error` is `GROUPS_STALE_IF_ERROR`
    /// (zero: a check past the TTL that cannot reach Okta is refused at once);
    /// with `redis`, shared with the other replicas.
    pub fn configured(
        client: OktaGroupsClient,
        ttl: Duration,
        stale_if_error: Duration,
        redis: Option<RedisGroups>,
    ) -> GroupsCache {
        let shared = redis.map(Shared::new);
        let cache = GroupsCache {
            inner: Arc::new(Inner {
                client,
                ttl,
                stale_if_error,
                cache: Cache::builder()
                    .max_capacity(1_000_000)
                    .expire_after(KeepUntil(ttl + stale_if_error))
                    .build(),
                lookups: Cache::builder()
                    .max_capacity(100_000)
                    .time_to_live(ttl)
                    .build(),
                failures: Cache::builder()
                    .max_capacity(100_000)
                    .time_to_live(NEGATIVE_TTL)
                    .build(),
                invalidated: Cache::builder()
                    .max_capacity(1_000_000)
                    // Older invalidations void nothing: every entry fetched
                    // before them has expired.
                    .time_to_live(ttl + stale_if_error)
                    .build(),
                generation: AtomicU64::new(0),
                shared,
            }),
        };
        if let Some(shared) = &cache.inner.shared {
            shared.subscribe(Arc::downgrade(&cache.inner));
        }
        cache
    }

    /// The groups of the user with Okta id `user_id`.
    pub async fn groups_of(&self, user_id: &str) -> Result<Arc<UserGroups>, GroupsError> {
        Ok(self.groups_and_link(user_id).await?.0)
    }

    /// [`groups_of`](Self::groups_of), and, when the answer is a cached one
    /// in the first half of its TTL, a link to it that the caller may keep
    /// for its next checks of the same user ([`linked`](Self::linked)).
    pub async fn groups_and_link(
        &self,
        user_id: &str,
    ) -> Result<(Arc<UserGroups>, Option<GroupsLink>), GroupsError> {
        let inner = &self.inner;
        // Read before the entry: an invalidation that removes the entry after
        // this read counts after it too, and so voids the link.
        let generation = inner.generation.load(Ordering::SeqCst);
        let known = inner.cache.get(user_id).await;
        if let Some(entry) = &known {
            let age = entry.age();
            if age < inner.ttl {
                if !inner.trusted(entry) {
                    let confirmed = Box::pin(self.confirm(user_id, entry)).await?;
                    return Ok((confirmed, None));
                }
                let linkable = age < inner.ttl / 2;
                if !linkable {
                    self.refresh_ahead(user_id, entry);
                }
                metrics::observed::groups_cache_hit();
                let groups = entry.answer.clone()?;
                let link = linkable.then(|| GroupsLink {
                    groups: groups.clone(),
                    generation,
                    until: entry.fetched_at + inner.ttl / 2,
                });
                return Ok((groups, link));
            }
        }
        // Unknown, or past the TTL: wait for Okta. Boxed, so that the common
        // check's future (boxed by actix per request) does not carry it.
        let groups = Box::pin(self.missed(user_id, known)).await?;
        Ok((groups, None))
    }

    /// No answer within the TTL in the cache: Okta's, or the last known one
    /// while Okta fails.
    async fn missed(
        &self,
        user_id: &str,
        known: Option<Entry>,
    ) -> Result<Arc<UserGroups>, GroupsError> {
        let inner = &self.inner;
        if let Some(error) = inner.failures.get(user_id).await {
            return self.stale_or(user_id, known, error).await;
        }
        metrics::GROUPS_WAITED.inc();
        match self.look_up(user_id, Want::Fresh).await {
            Ok(entry) => entry.answer,
            Err(error) => {
                inner
                    .failures
                    .insert(user_id.to_owned(), error.clone())
                    .await;
                self.stale_or(user_id, known, error).await
            }
        }
    }

    /// Makes the user's next check, on this replica and (through Redis, within
    /// a second) on every other, fetch groups afresh from Okta instead of using
    /// any answer known before this call, including one being fetched now.
    /// This replica forgets at once; `Err` when Redis could not be told, so the
    /// other replicas may keep their answers until the TTL.
    pub async fn invalidate(&self, user_id: &str) -> Result<(), SharedError> {
        self.inner.forget(user_id).await;
        match &self.inner.shared {
            Some(shared) => shared.invalidate(user_id).await,
            None => Ok(()),
        }
    }

    /// Fetches now, for the sign-in callback (warms the cache) and tests. Okta
    /// just let the user sign in, so a "no" known from before (suspended,
    /// deactivated, unknown) is asked again, on every replica.
    pub async fn prefetch(&self, user_id: &str) -> Result<(), GroupsError> {
        let refused_before = self
            .inner
            .cache
            .get(user_id)
            .await
            .is_some_and(|entry| entry.answer.is_err());
        if refused_before {
            if let Err(error) = self.invalidate(user_id).await {
                tracing::warn!(%error, "could not tell the other replicas that a refused user signed in again");
            }
        }
        self.groups_of(user_id).await.map(|_| ())
    }

    /// Stores a user's groups as if just fetched. For benchmarks and tests that
    /// need a warm cache without Okta; the service itself never calls it.
    pub async fn remember(&self, user_id: &str, groups: Vec<Group>) {
        let entry = Entry::fetched(Ok(groups), Instant::now(), now_ms());
        self.inner.cache.insert(user_id.to_owned(), entry).await;
    }

    /// Stores Okta's "no" about a user as if just fetched (tests).
    #[cfg(test)]
    pub(crate) async fn remember_refusal(&self, user_id: &str, refusal: GroupsError) {
        let entry = Entry::fetched(Err(refusal), Instant::now(), now_ms());
        self.inner.cache.insert(user_id.to_owned(), entry).await;
    }

    /// An answer within the TTL that an invalidation might have voided
    /// unseen (the channel is down): Redis says whether it still stands, or
    /// gives the newer one. If Redis cannot say, it stands.
    async fn confirm(&self, user_id: &str, entry: &Entry) -> Result<Arc<UserGroups>, GroupsError> {
        match self
            .look_up(user_id, Want::Confirm(entry.fetched_at_ms))
            .await
        {
            Ok(confirmed) => confirmed.answer,
            Err(_) => entry.answer.clone(),
        }
    }

    /// Past the TTL and Okta could not be asked: the last known answer while
    /// within `GROUPS_STALE_IF_ERROR`, else the error.
    async fn stale_or(
        &self,
        user_id: &str,
        known: Option<Entry>,
        error: GroupsError,
    ) -> Result<Arc<UserGroups>, GroupsError> {
        let inner = &self.inner;
        match known {
            Some(entry)
                if entry.age() < inner.ttl + inner.stale_if_error
                    && inner.current(user_id, &entry).await =>
            {
                metrics::GROUPS_STALE_SERVED.inc();
                entry.answer
            }
            _ => Err(error),
        }
    }

    /// Okta's answer (or another replica's, through Redis) from a lookup that
    /// no invalidation voided, stored for the next checks. Concurrent lookups
    /// of one user are one.
    async fn look_up(&self, user_id: &str, want: Want) -> Result<Entry, GroupsError> {
        let inner = &self.inner;
        for _ in 0..LOOKUP_ATTEMPTS {
            let result = inner
                .lookups
                .try_get_with_by_ref(user_id, self.obtain(user_id, want))
                .await;
            // The next lookup asks again; those that joined this one have it.
            inner.lookups.invalidate(user_id).await;
            let entry = result.map_err(|e| GroupsError::clone(&e))?;
            if self.satisfies(&entry, want) && self.store(user_id, &entry).await {
                return Ok(entry);
            }
            // Voided by an invalidation (or left over from a lookup long
            // gone): look again.
        }
        Err(GroupsError::Unavailable(
            "the user's groups were invalidated during every lookup".into(),
        ))
    }

    /// Whether `entry` is what the lookup wanted (one that joined another
    /// lookup may get an answer wanted differently).
    fn satisfies(&self, entry: &Entry, want: Want) -> bool {
        entry.age() < self.inner.ttl
            && match want {
                Want::Fresh => true,
                Want::NewerThan(ms) => entry.fetched_at_ms > ms,
                Want::Confirm(ms) => entry.fetched_at_ms >= ms,
            }
    }

    /// Keeps `entry` unless an invalidation since its lookup voided it; says
    /// whether it was kept. Checked again after the insert, so an invalidation
    /// racing with it cannot leave a voided entry behind.
    async fn store(&self, user_id: &str, entry: &Entry) -> bool {
        let inner = &self.inner;
        if !inner.current(user_id, entry).await {
            return false;
        }
        inner.cache.insert(user_id.to_owned(), entry.clone()).await;
        if inner.current(user_id, entry).await {
            return true;
        }
        inner.cache.invalidate(user_id).await;
        false
    }

    /// One lookup: another replica's answer through Redis when there is one
    /// recent enough, else Okta's (under the lease, when Redis answers).
    async fn obtain(&self, user_id: &str, want: Want) -> Result<Entry, GroupsError> {
        let inner = &self.inner;
        let looked_up_at = Instant::now();
        let counts_from_ms = match want {
            Want::Fresh => now_ms().saturating_sub(as_ms(inner.ttl)),
            Want::NewerThan(ms) => ms.saturating_add(1),
            Want::Confirm(ms) => ms,
        };
        if let Some(shared) = inner.shared.as_ref().filter(|s| s.available()) {
            match shared
                .look_up(
                    &inner.client,
                    user_id,
                    counts_from_ms,
                    inner.ttl,
                    inner.ttl + inner.stale_if_error,
                )
                .await
            {
                Ok(Ok(shared::Found::Shared(entry))) => {
                    return Ok(Entry::from_shared(entry, looked_up_at))
                }
                Ok(Ok(shared::Found::Fetched {
                    answer,
                    started,
                    started_ms,
                })) => {
                    let mut entry = Entry::fetched(answer, started, started_ms);
                    entry.looked_up_at = looked_up_at;
                    return Ok(entry);
                }
                Ok(Err(error)) => return Err(error),
                Err(error) => {
                    shared.trouble(&error);
                    if let Want::Confirm(_) = want {
                        return Err(GroupsError::Unavailable(error.to_string()));
                    }
                }
            }
        }
        if inner.shared.is_some() {
            metrics::GROUPS_SHARED_FALLBACKS.inc();
        }
        let (started, started_ms) = (Instant::now(), now_ms());
        let answer = inner.client.fetch(user_id).await;
        match answer {
            Err(error) if !error.is_definitive() => Err(error),
            answer => {
                let mut entry = Entry::fetched(answer, started, started_ms);
                entry.looked_up_at = looked_up_at;
                Ok(entry)
            }
        }
    }

    /// A check found the user's groups in the second half of their life: the
    /// user is active, so refresh them shortly before the TTL runs out, once,
    /// in the background. Users without checks cost no call.
    fn refresh_ahead(&self, user_id: &str, entry: &Entry) {
        if entry.refresh_planned.load(Ordering::Relaxed) {
            return; // the common case: planned by an earlier check
        }
        if now() < self.inner.client.blocked_until() {
            // Okta may not be asked before its reset, by this replica or (when
            // shared) any other: nobody can have newer groups.
            return;
        }
        if entry.refresh_planned.swap(true, Ordering::Relaxed) {
            return; // one refresh per answer
        }
        let this = self.clone();
        let user_id = user_id.to_owned();
        let (fetched_at, fetched_at_ms) = (entry.fetched_at, entry.fetched_at_ms);
        tokio::spawn(async move {
            let inner = &this.inner;
            let due = fetched_at + inner.ttl.saturating_sub(refresh_lead(inner.ttl));
            tokio::time::sleep_until(due.into()).await;
            // A check that waited, or an invalidation, may have replaced the
            // entry meanwhile: then there is nothing to refresh.
            let unchanged = inner
                .cache
                .get(&user_id)
                .await
                .is_some_and(|e| e.fetched_at_ms == fetched_at_ms);
            if unchanged {
                metrics::GROUPS_REFRESHED_AHEAD.inc();
                if let Err(error) = this.look_up(&user_id, Want::NewerThan(fetched_at_ms)).await {
                    tracing::warn!(user = %user_id, %error, "could not refresh groups ahead of their TTL");
                }
            }
        });
    }
}

impl Inner {
    /// Whether a local answer may be used without asking Redis: always
    /// without Redis, and while invalidations from the other replicas are
    /// received or Redis cannot answer anyway; else only for a moment.
    fn trusted(&self, entry: &Entry) -> bool {
        self.shared.as_ref().is_none_or(Shared::trusts_local)
            || entry.looked_up_at.elapsed() < UNCONFIRMED_FOR
    }

    /// Whether no invalidation came since the entry's lookup began.
    async fn current(&self, user_id: &str, entry: &Entry) -> bool {
        self.invalidated
            .get(user_id)
            .await
            .is_none_or(|at| entry.looked_up_at > at)
    }

    /// Forgets what this replica knows of the user; a lookup under way when
    /// this is called is voided.
    async fn forget(&self, user_id: &str) {
        // First the instant, then the entries: a lookup storing its answer in
        // between sees the instant when it checks again.
        self.invalidated
            .insert(user_id.to_owned(), Instant::now())
            .await;
        self.cache.invalidate(user_id).await;
        self.failures.invalidate(user_id).await;
        // Last: a link read before this point is void, and one read after it
        // cannot have seen the entries forgotten above.
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Whether invalidations from other replicas are received.
    fn set_live(&self, live: bool) {
        if let Some(shared) = &self.shared {
            shared.set_live(live);
        }
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Forgets every user (invalidations may have been missed).
    fn forget_all(&self) {
        self.cache.invalidate_all();
        self.failures.invalidate_all();
        self.generation.fetch_add(1, Ordering::SeqCst);
    }
}

/// Invalidations from the other replicas: each names a user whose answers
/// this replica forgets. Every (re)subscription forgets every user, since
/// messages may have been missed while the channel was down.
#[async_trait]
impl Listener for Inner {
    const NAME: &'static str = "groups";

    fn up(&self) {
        self.forget_all();
        self.set_live(true);
    }

    fn down(&self) {
        self.set_live(false);
        tracing::warn!("groups: lost the invalidation channel; each answer is checked against Redis after a second until it is back");
    }

    async fn message(&self, payload: &[u8]) {
        match shared::invalidated_user(payload) {
            Some(user_id) => self.forget(user_id).await,
            None => self.forget_all(),
        }
    }

    fn unreadable(&self) {
        self.forget_all();
    }
}

#[cfg(test)]
mod tests;
