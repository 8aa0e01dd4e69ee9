//! A user's Okta groups: the management API client (`GET /api/v1/users/{id}/groups`
//! with `SSWS`, following every `Link: rel="next"`) behind a moka cache.
//! Concurrent misses for one user cost one call (`try_get_with`); a due refresh
//! runs in the background while checks keep the last known groups, for a bounded
//! time; Okta's 429 stops all calls until `X-Rate-Limit-Reset`; calls in flight
//! are capped. The hot path never waits on Okta once a user's groups are known.
//! With Redis ([`RedisGroups`]) replicas share answers, fetch leases and the 429
//! block, so N replicas cost Okta what one does; when Redis cannot answer, each
//! replica asks Okta on its own as without Redis. No actix types.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moka::future::Cache;
use moka::Expiry;
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde::Deserialize;
use tokio::sync::Semaphore;
use url::Url;

use crate::config::Secret;
pub use crate::identity_headers::UserGroups;
use crate::metrics;
use crate::okta_api::ApiCredential;
pub use crate::policy::Group;
use crate::session::{now, random_token, take_turn};

mod redis;
pub use self::redis::{RedisGroups, SharedEntry, SharedError, Take};

/// How long past `GROUPS_CACHE_TTL` the last known groups may still be used when
/// Okta cannot be asked.
pub const MAX_STALENESS: Duration = Duration::from_secs(3600);
/// Okta calls in flight at once, across all users.
const MAX_CALLS_IN_FLIGHT: usize = 4;
/// A user with more pages than this is cut off (200 groups a page = 10 000 groups).
const MAX_PAGES: usize = 50;
/// How long a failed lookup is remembered, so a broken Okta is not hammered.
const NEGATIVE_TTL: Duration = Duration::from_secs(2);
/// Upper bound for a 429 back-off, whatever `X-Rate-Limit-Reset` says.
const MAX_BACKOFF_SECS: u64 = 3600;
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

/// Why a user's groups are not known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupsError {
    #[error("Okta rate limit reached; waiting for its reset")]
    RateLimited,
    #[error("Okta does not know this user")]
    UserNotFound,
    #[error("Okta groups API unavailable: {0}")]
    Unavailable(String),
}

#[derive(Clone)]
struct Entry {
    groups: Arc<UserGroups>,
    fetched_at: Instant,
}

impl Entry {
    fn fetched_now(groups: Vec<Group>) -> Entry {
        Entry {
            groups: Arc::new(UserGroups::new(groups)),
            fetched_at: Instant::now(),
        }
    }

    /// Another replica's answer, as old here as it is there.
    fn from_shared(shared: SharedEntry) -> Result<Entry, GroupsError> {
        let groups = shared.groups.ok_or(GroupsError::UserNotFound)?;
        let age = Duration::from_millis(now_ms().saturating_sub(shared.fetched_at_ms));
        Ok(Entry {
            groups: Arc::new(UserGroups::new(groups)),
            // Only an age beyond the monotonic clock's origin could fail; such
            // an entry would have expired in Redis long ago.
            fetched_at: Instant::now().checked_sub(age).unwrap_or_else(Instant::now),
        })
    }
}

/// Entries live until `fetched_at` + the keep time, wherever they were fetched:
/// one from another replica arrives part-way through its life.
struct KeepUntil(Duration);

impl KeepUntil {
    fn left(&self, entry: &Entry, at: Instant) -> Option<Duration> {
        Some(match entry.fetched_at.checked_add(self.0) {
            Some(end) => end.saturating_duration_since(at),
            None => self.0,
        })
    }
}

impl Expiry<String, Entry> for KeepUntil {
    fn expire_after_create(&self, _: &String, entry: &Entry, at: Instant) -> Option<Duration> {
        self.left(entry, at)
    }

    fn expire_after_update(
        &self,
        _: &String,
        entry: &Entry,
        at: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        self.left(entry, at)
    }
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn as_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The Redis side of a cache, with what this replica knows about its health.
struct Shared {
    redis: RedisGroups,
    /// Epoch ms before which Redis is not asked again, after it failed.
    paused_until_ms: AtomicU64,
    /// Epoch ms of the last warning about Redis, so an outage warns once a minute.
    warned_at_ms: AtomicU64,
    /// The latest Okta block (epoch s) this replica knows Redis holds.
    block_known: AtomicU64,
}

impl Shared {
    fn available(&self) -> bool {
        now_ms() >= self.paused_until_ms.load(Ordering::Relaxed)
    }

    /// Redis failed: lookups ask Okta directly for a while.
    fn trouble(&self, error: &SharedError) {
        let now = now_ms();
        self.paused_until_ms
            .store(now.saturating_add(as_ms(REDIS_PAUSE)), Ordering::Relaxed);
        if take_turn(&self.warned_at_ms, now, as_ms(WARN_EVERY)) {
            tracing::warn!(%error, "groups are not shared with the other replicas while Redis cannot answer; asking Okta from this replica");
        } else {
            tracing::debug!(%error, "groups: Redis still cannot answer");
        }
    }
}

/// The groups of users, cached.
#[derive(Clone)]
pub struct GroupsCache {
    inner: Arc<Inner>,
}

struct Inner {
    client: OktaGroupsClient,
    fresh_for: Duration,
    cache: Cache<String, Entry>,
    failures: Cache<String, GroupsError>,
    refreshing: Mutex<HashSet<String>>,
    shared: Option<Shared>,
}

impl GroupsCache {
    /// A cache of this process alone.
    pub fn new(client: OktaGroupsClient, fresh_for: Duration) -> GroupsCache {
        GroupsCache::build(client, fresh_for, None)
    }

    /// A cache that shares what it learns with the other replicas through
    /// Redis: at most one Okta call per user per `fresh_for` among them all,
    /// and a 429 seen by one holds back all.
    pub fn with_redis(
        client: OktaGroupsClient,
        fresh_for: Duration,
        redis: RedisGroups,
    ) -> GroupsCache {
        let shared = Shared {
            redis,
            paused_until_ms: AtomicU64::new(0),
            warned_at_ms: AtomicU64::new(0),
            block_known: AtomicU64::new(0),
        };
        GroupsCache::build(client, fresh_for, Some(shared))
    }

    fn build(client: OktaGroupsClient, fresh_for: Duration, shared: Option<Shared>) -> GroupsCache {
        GroupsCache {
            inner: Arc::new(Inner {
                client,
                fresh_for,
                cache: Cache::builder()
                    .max_capacity(1_000_000)
                    .expire_after(KeepUntil(fresh_for + MAX_STALENESS))
                    .build(),
                failures: Cache::builder()
                    .max_capacity(100_000)
                    .time_to_live(NEGATIVE_TTL)
                    .build(),
                refreshing: Mutex::new(HashSet::new()),
                shared,
            }),
        }
    }

    /// The groups of the user with Okta id `user_id`.
    pub async fn groups_of(&self, user_id: &str) -> Result<Arc<UserGroups>, GroupsError> {
        let inner = &self.inner;
        if let Some(entry) = inner.cache.get(user_id).await {
            return Ok(self.serve(user_id, entry));
        }
        if let Some(error) = inner.failures.get(user_id).await {
            return Err(error);
        }
        let result = inner
            .cache
            .try_get_with_by_ref(
                user_id,
                self.obtain(user_id, inner.fresh_for + MAX_STALENESS),
            )
            .await;
        match result {
            // Only an entry from another replica can be due already.
            Ok(entry) if inner.shared.is_some() => Ok(self.serve(user_id, entry)),
            Ok(entry) => Ok(entry.groups),
            Err(error) => {
                let error = GroupsError::clone(&error);
                inner
                    .failures
                    .insert(user_id.to_owned(), error.clone())
                    .await;
                Err(error)
            }
        }
    }

    /// Fetches now, for the sign-in callback (warms the cache) and tests.
    pub async fn prefetch(&self, user_id: &str) -> Result<(), GroupsError> {
        self.groups_of(user_id).await.map(|_| ())
    }

    /// Stores a user's groups as if just fetched. For benchmarks and tests that
    /// need a warm cache without Okta; the service itself never calls it.
    pub async fn remember(&self, user_id: &str, groups: Vec<Group>) {
        let entry = Entry {
            groups: Arc::new(UserGroups::new(groups)),
            fetched_at: Instant::now(),
        };
        self.inner.cache.insert(user_id.to_owned(), entry).await;
    }

    /// The entry's groups; a due entry starts a refresh.
    fn serve(&self, user_id: &str, entry: Entry) -> Arc<UserGroups> {
        if entry.fetched_at.elapsed() >= self.inner.fresh_for {
            metrics::GROUPS_STALE_SERVED.inc();
            self.refresh_in_background(user_id);
        }
        entry.groups
    }

    /// Groups fetched less than `within` ago: another replica's through Redis
    /// when there are such, else Okta's (under the lease, when Redis answers).
    async fn obtain(&self, user_id: &str, within: Duration) -> Result<Entry, GroupsError> {
        if let Some(shared) = self.inner.shared.as_ref().filter(|s| s.available()) {
            let counts_from_ms = now_ms().saturating_sub(as_ms(within));
            match self.through_redis(shared, user_id, counts_from_ms).await {
                Ok(outcome) => return outcome,
                Err(error) => shared.trouble(&error),
            }
        }
        if self.inner.shared.is_some() {
            metrics::GROUPS_SHARED_FALLBACKS.inc();
        }
        let groups = self.inner.client.fetch(user_id).await?;
        Ok(Entry::fetched_now(groups))
    }

    /// The lookup among replicas. `Err` only when Redis failed before Okta was
    /// asked: then the caller may ask Okta itself without making a second call.
    async fn through_redis(
        &self,
        shared: &Shared,
        user_id: &str,
        counts_from_ms: u64,
    ) -> Result<Result<Entry, GroupsError>, SharedError> {
        let token = random_token();
        let deadline = Instant::now() + WAIT_FOR_OTHER;
        loop {
            match shared
                .redis
                .take(user_id, &token, LEASE, counts_from_ms)
                .await?
            {
                Take::Entry(entry) => {
                    metrics::GROUPS_SHARED_HITS.inc();
                    return Ok(Entry::from_shared(entry));
                }
                Take::Leased { blocked_until } => {
                    return Ok(self
                        .fetch_leased(shared, user_id, &token, blocked_until)
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
        shared: &Shared,
        user_id: &str,
        token: &str,
        blocked_until: u64,
    ) -> Result<Entry, GroupsError> {
        let inner = &self.inner;
        inner.client.raise_block(blocked_until);
        shared
            .block_known
            .fetch_max(blocked_until, Ordering::Relaxed);
        let result = inner.client.fetch(user_id).await;
        let fetched_at_ms = now_ms();
        self.share_block(shared).await;
        let published = match &result {
            Ok(groups) => Some((Some(groups.as_slice()), inner.fresh_for + MAX_STALENESS)),
            // Kept only while fresh: an old "unknown" is asked again, not served.
            Err(GroupsError::UserNotFound) => Some((None, inner.fresh_for)),
            Err(_) => None,
        };
        if let Some((groups, keep)) = published {
            if let Err(error) = shared
                .redis
                .publish(user_id, fetched_at_ms, groups, keep)
                .await
            {
                shared.trouble(&error);
            }
        }
        let failed = result.as_ref().err();
        if let Err(error) = shared
            .redis
            .release(user_id, token, failed, NEGATIVE_TTL)
            .await
        {
            shared.trouble(&error);
        }
        result.map(Entry::fetched_now)
    }

    /// A block this replica learnt from Okta goes to Redis for the others.
    async fn share_block(&self, shared: &Shared) {
        let local = self.inner.client.blocked_until();
        if local <= now() || local <= shared.block_known.load(Ordering::Relaxed) {
            return;
        }
        match shared.redis.raise_block(local).await {
            Ok(in_force) => {
                shared.block_known.fetch_max(in_force, Ordering::Relaxed);
                self.inner.client.raise_block(in_force);
            }
            Err(error) => shared.trouble(&error),
        }
    }

    fn refresh_in_background(&self, user_id: &str) {
        if now() < self.inner.client.blocked_until() {
            // Okta may not be asked before its reset, by this replica or (when
            // shared) any other: nobody can have newer groups.
            return;
        }
        let Ok(mut refreshing) = self.inner.refreshing.lock() else {
            return;
        };
        if !refreshing.insert(user_id.to_owned()) {
            return; // one refresh per user at a time
        }
        drop(refreshing);
        let this = self.clone();
        let user_id = user_id.to_owned();
        tokio::spawn(async move {
            // Another replica may have refreshed already: then no Okta call.
            match this.obtain(&user_id, this.inner.fresh_for).await {
                Ok(entry) => {
                    this.inner.cache.insert(user_id.clone(), entry).await;
                }
                Err(GroupsError::UserNotFound) => {
                    tracing::info!(user = %user_id, "user no longer exists in Okta; forgetting their groups");
                    this.inner.cache.invalidate(&user_id).await;
                }
                Err(error) => {
                    tracing::warn!(user = %user_id, %error, "keeping last known groups");
                }
            }
            if let Ok(mut refreshing) = this.inner.refreshing.lock() {
                refreshing.remove(&user_id);
            }
        });
    }
}

/// The Okta management API, as far as groups go.
#[derive(Clone)]
pub struct OktaGroupsClient {
    http: reqwest::Client,
    org: Url,
    credential: ApiCredential,
    in_flight: Arc<Semaphore>,
    /// Epoch seconds before which Okta must not be called (429 or quota used up).
    blocked_until: Arc<AtomicU64>,
}

#[derive(Deserialize)]
struct OktaGroup {
    id: String,
    profile: OktaGroupProfile,
}

#[derive(Deserialize)]
struct OktaGroupProfile {
    name: String,
}

impl OktaGroupsClient {
    /// With an `SSWS` API token.
    pub fn new(
        http: reqwest::Client,
        org_url: &str,
        token: Secret,
    ) -> Result<OktaGroupsClient, String> {
        OktaGroupsClient::with_credential(http, org_url, ApiCredential::Ssws(token))
    }

    /// With either API credential.
    pub fn with_credential(
        http: reqwest::Client,
        org_url: &str,
        credential: ApiCredential,
    ) -> Result<OktaGroupsClient, String> {
        let org = Url::parse(org_url).map_err(|e| format!("org URL {org_url}: {e}"))?;
        Ok(OktaGroupsClient {
            http,
            org,
            credential,
            in_flight: Arc::new(Semaphore::new(MAX_CALLS_IN_FLIGHT)),
            blocked_until: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Epoch seconds before which Okta must not be called (0: no block).
    pub fn blocked_until(&self) -> u64 {
        self.blocked_until.load(Ordering::Relaxed)
    }

    /// No call before `until` (epoch seconds), e.g. because another replica saw
    /// a 429; a later block already in force stays.
    pub fn raise_block(&self, until: u64) {
        let until = until.min(now().saturating_add(MAX_BACKOFF_SECS));
        self.blocked_until.fetch_max(until, Ordering::Relaxed);
    }

    /// All groups of a user, every page.
    pub async fn fetch(&self, user_id: &str) -> Result<Vec<Group>, GroupsError> {
        let mut url = self.org.clone();
        url.path_segments_mut()
            .map_err(|_| GroupsError::Unavailable("org URL cannot take a path".into()))?
            .pop_if_empty()
            .extend(["api", "v1", "users", user_id, "groups"]);
        url.set_query(Some("limit=200"));
        let mut groups = Vec::new();
        for _ in 0..MAX_PAGES {
            let (page, next) = self.page(&url).await?;
            groups.extend(page);
            match next {
                Some(next) => url = next,
                None => return Ok(groups),
            }
        }
        tracing::warn!(user = %user_id, pages = MAX_PAGES, "user has more groups than we read; the rest are ignored");
        Ok(groups)
    }

    async fn page(&self, url: &Url) -> Result<(Vec<Group>, Option<Url>), GroupsError> {
        if now() < self.blocked_until.load(Ordering::Relaxed) {
            return Err(GroupsError::RateLimited);
        }
        let _permit = self
            .in_flight
            .acquire()
            .await
            .map_err(|_| GroupsError::Unavailable("shutting down".into()))?;
        metrics::OKTA_GROUPS_CALLS.inc();
        let response = self
            .credential
            .get(&self.http, url)
            .await
            .map_err(|e| GroupsError::Unavailable(e.to_string()))?;
        let status = response.status();
        self.note_rate_limit(status, response.headers());
        match status {
            StatusCode::TOO_MANY_REQUESTS => {
                metrics::OKTA_RATE_LIMITED.inc();
                return Err(GroupsError::RateLimited);
            }
            StatusCode::NOT_FOUND => return Err(GroupsError::UserNotFound),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                tracing::error!(status = status.as_u16(), credential = self.credential.names(), "Okta refused the API credential: an API token may be revoked, expired after 30 days unused, or its admin lost the role; a service app may lack the okta.users.read scope or an admin role (forward-auth check tells which)");
                return Err(GroupsError::Unavailable(format!("Okta answered {status}")));
            }
            s if !s.is_success() => {
                return Err(GroupsError::Unavailable(format!("Okta answered {s}")))
            }
            _ => {}
        }
        let next = next_link(response.headers()).filter(|next| next.origin() == self.org.origin());
        let page: Vec<OktaGroup> = response
            .json()
            .await
            .map_err(|e| GroupsError::Unavailable(format!("groups body: {e}")))?;
        let page = page
            .into_iter()
            .map(|g| Group {
                id: g.id,
                name: g.profile.name,
            })
            .collect();
        Ok((page, next))
    }

    /// After a 429, or when the quota is used up, no call until the reset.
    fn note_rate_limit(&self, status: StatusCode, headers: &HeaderMap) {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        let exhausted = header("x-rate-limit-remaining") == Some(0);
        if status != StatusCode::TOO_MANY_REQUESTS && !exhausted {
            return;
        }
        let now = now();
        let reset = header("x-rate-limit-reset")
            .unwrap_or(now + 60)
            .clamp(now + 1, now + MAX_BACKOFF_SECS);
        self.blocked_until.fetch_max(reset, Ordering::Relaxed);
        tracing::warn!(
            retry_in_secs = reset - now,
            "Okta rate limit reached; no groups calls until its reset"
        );
    }
}

/// The `rel="next"` target among all `Link` headers (Okta sends `self` and `next`
/// as separate headers; one header may also hold several links).
pub fn next_link(headers: &HeaderMap) -> Option<Url> {
    headers
        .get_all(reqwest::header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|link| {
            let (target, params) = link.trim().strip_prefix('<')?.split_once('>')?;
            let is_next = params.split(';').any(|p| {
                let p = p.trim();
                p.eq_ignore_ascii_case("rel=\"next\"") || p.eq_ignore_ascii_case("rel=next")
            });
            is_next.then(|| Url::parse(target).ok()).flatten()
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderValue, LINK};

    fn headers(links: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for l in links {
            map.append(LINK, HeaderValue::from_str(l).unwrap());
        }
        map
    }

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
    fn an_entry_from_another_replica_keeps_its_age_and_expires_on_its_own_schedule() {
        let fetched_at_ms = now_ms() - 90_000;
        let entry = Entry::from_shared(SharedEntry {
            fetched_at_ms,
            groups: Some(vec![]),
        })
        .unwrap();
        let age = entry.fetched_at.elapsed();
        assert!(
            (Duration::from_secs(89)..Duration::from_secs(92)).contains(&age),
            "{age:?}"
        );
        let keep = KeepUntil(Duration::from_secs(100));
        let left = keep.left(&entry, Instant::now()).unwrap();
        assert!(left <= Duration::from_secs(11), "{left:?}");
        let gone = Entry::from_shared(SharedEntry {
            fetched_at_ms,
            groups: None,
        });
        assert_eq!(gone.err(), Some(GroupsError::UserNotFound));
    }

    #[test]
    fn next_link_is_found_among_separate_link_headers() {
        let h = headers(&[
            "<https://o.okta.com/api/v1/users/u/groups?limit=2>; rel=\"self\"",
            "<https://o.okta.com/api/v1/users/u/groups?after=00g2&limit=2>; rel=\"next\"",
        ]);
        assert_eq!(
            next_link(&h).unwrap().as_str(),
            "https://o.okta.com/api/v1/users/u/groups?after=00g2&limit=2"
        );
    }

    #[test]
    fn next_link_is_found_in_a_combined_header() {
        let h = headers(&["<https://o/a>; rel=\"self\", <https://o/b>; rel=\"next\""]);
        assert_eq!(next_link(&h).unwrap().as_str(), "https://o/b");
    }

    #[test]
    fn no_next_link_ends_pagination() {
        assert!(next_link(&headers(&["<https://o/a>; rel=\"self\""])).is_none());
        assert!(next_link(&headers(&[])).is_none());
        assert!(next_link(&headers(&["garbage; rel=\"next\""])).is_none());
    }
}
