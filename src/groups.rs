//! A user's Okta groups: the management API client (`GET /api/v1/users/{id}/groups`
//! with `SSWS`, following every `Link: rel="next"`) behind a moka cache.
//! Concurrent misses for one user cost one call (`try_get_with`); a due refresh
//! runs in the background while checks keep the last known groups, for a bounded
//! time; Okta's 429 stops all calls until `X-Rate-Limit-Reset`; calls in flight
//! are capped. The hot path never waits on Okta once a user's groups are known.
//! No actix types.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moka::future::Cache;
use reqwest::header::{HeaderMap, ACCEPT, AUTHORIZATION};
use reqwest::StatusCode;
use serde::Deserialize;
use tokio::sync::Semaphore;
use url::Url;

use crate::config::Secret;
pub use crate::identity_headers::UserGroups;
use crate::metrics;
pub use crate::policy::Group;
use crate::session::now;

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

/// Why a user's groups are not known.
#[derive(Debug, Clone, thiserror::Error)]
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
}

impl GroupsCache {
    pub fn new(client: OktaGroupsClient, fresh_for: Duration) -> GroupsCache {
        GroupsCache {
            inner: Arc::new(Inner {
                client,
                fresh_for,
                cache: Cache::builder()
                    .max_capacity(1_000_000)
                    .time_to_live(fresh_for + MAX_STALENESS)
                    .build(),
                failures: Cache::builder()
                    .max_capacity(100_000)
                    .time_to_live(NEGATIVE_TTL)
                    .build(),
                refreshing: Mutex::new(HashSet::new()),
            }),
        }
    }

    /// The groups of the user with Okta id `user_id`.
    pub async fn groups_of(&self, user_id: &str) -> Result<Arc<UserGroups>, GroupsError> {
        let inner = &self.inner;
        if let Some(entry) = inner.cache.get(user_id).await {
            if entry.fetched_at.elapsed() >= inner.fresh_for {
                metrics::GROUPS_STALE_SERVED.inc();
                self.refresh_in_background(user_id);
            }
            return Ok(entry.groups);
        }
        if let Some(error) = inner.failures.get(user_id).await {
            return Err(error);
        }
        let result = inner
            .cache
            .try_get_with_by_ref(user_id, async {
                let groups = inner.client.fetch(user_id).await?;
                Ok::<_, GroupsError>(Entry {
                    groups: Arc::new(UserGroups::new(groups)),
                    fetched_at: Instant::now(),
                })
            })
            .await;
        match result {
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

    fn refresh_in_background(&self, user_id: &str) {
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
            match this.inner.client.fetch(&user_id).await {
                Ok(groups) => {
                    let entry = Entry {
                        groups: Arc::new(UserGroups::new(groups)),
                        fetched_at: Instant::now(),
                    };
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
    token: Secret,
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
    pub fn new(
        http: reqwest::Client,
        org_url: &str,
        token: Secret,
    ) -> Result<OktaGroupsClient, String> {
        let org = Url::parse(org_url).map_err(|e| format!("org URL {org_url}: {e}"))?;
        Ok(OktaGroupsClient {
            http,
            org,
            token,
            in_flight: Arc::new(Semaphore::new(MAX_CALLS_IN_FLIGHT)),
            blocked_until: Arc::new(AtomicU64::new(0)),
        })
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
            .http
            .get(url.clone())
            .header(AUTHORIZATION, format!("SSWS {}", self.token.expose()))
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| GroupsError::Unavailable(crate::oidc::error_chain(&e)))?;
        let status = response.status();
        self.note_rate_limit(status, response.headers());
        match status {
            StatusCode::TOO_MANY_REQUESTS => {
                metrics::OKTA_RATE_LIMITED.inc();
                return Err(GroupsError::RateLimited);
            }
            StatusCode::NOT_FOUND => return Err(GroupsError::UserNotFound),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                tracing::error!(status = status.as_u16(), "Okta refused IDP_SERVICE_ACCOUNT: check the API token (revoked, expired after 30 days unused, or its admin lost the role)");
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
