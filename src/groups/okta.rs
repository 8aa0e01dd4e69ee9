//! The Okta management API as far as access goes: `GET /api/v1/users/{id}/groups`
//! with the API credential (`SSWS` token or service app, see `okta_api`),
//! following every `Link: rel="next"`, then the user's `status`
//! (`GET /api/v1/users/{id}`), since suspended and deactivated users keep their
//! groups. Okta's 429 (and a used-up quota) stops all calls until
//! `X-Rate-Limit-Reset`; calls in flight are capped. Knows nothing of caching
//! or replicas.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde::Deserialize;
use tokio::sync::Semaphore;
use url::Url;

use super::{Group, GroupsError};
use crate::clock::now;
use crate::metrics;
use crate::okta_api::ApiCredential;
use crate::secret::Secret;

/// Okta calls in flight at once, across all users.
const MAX_CALLS_IN_FLIGHT: usize = 4;
/// A user with more pages than this is cut off (200 groups a page = 10 000 groups).
const MAX_PAGES: usize = 50;
/// Upper bound for a 429 back-off, whatever `X-Rate-Limit-Reset` says.
const MAX_BACKOFF_SECS: u64 = 3600;

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

#[derive(Deserialize)]
struct OktaUser {
    status: String,
}

/// Whether a user with this Okta status keeps access. `ACTIVE`, and the
/// statuses of an existing account that is mid-way through a password or
/// unlock flow (`PROVISIONED`, `RECOVERY`, `PASSWORD_EXPIRED`, `LOCKED_OUT`)
/// do; `SUSPENDED`, `DEPROVISIONED` (deactivated), `STAGED` (never activated)
/// and any status Okta may add later do not: unknown means no.
pub fn status_grants_access(status: &str) -> bool {
    matches!(
        status,
        "ACTIVE" | "PROVISIONED" | "RECOVERY" | "PASSWORD_EXPIRED" | "LOCKED_OUT"
    )
}

/// A status as it may appear in logs: Okta's words are upper-case letters
/// and underscores; anything else is cut off.
fn printable(status: &str) -> String {
    status
        .chars()
        .take_while(|c| c.is_ascii_uppercase() || *c == '_')
        .take(32)
        .collect()
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

    /// All groups of a user, every page, then the user's status: a user Okta
    /// does not know, or whose status no longer grants access
    /// ([`status_grants_access`]), is a definitive `Err`. Groups first, so a
    /// deleted user costs one call.
    pub async fn fetch(&self, user_id: &str) -> Result<Vec<Group>, GroupsError> {
        let mut url = self.user_url(user_id, Some("groups"))?;
        url.set_query(Some("limit=200"));
        let mut groups = Vec::new();
        let mut complete = false;
        for _ in 0..MAX_PAGES {
            let (page, next) = self.page(&url).await?;
            groups.extend(page);
            match next {
                Some(next) => url = next,
                None => {
                    complete = true;
                    break;
                }
            }
        }
        if !complete {
            tracing::warn!(user = %user_id, pages = MAX_PAGES, "user has more groups than we read; the rest are ignored");
        }
        let status = self.status(user_id).await?;
        if !status_grants_access(&status) {
            return Err(GroupsError::UserInactive(printable(&status)));
        }
        Ok(groups)
    }

    /// `{org}/api/v1/users/{id}` (and `/{tail}`).
    fn user_url(&self, user_id: &str, tail: Option<&str>) -> Result<Url, GroupsError> {
        let mut url = self.org.clone();
        url.path_segments_mut()
            .map_err(|_| GroupsError::Unavailable("org URL cannot take a path".into()))?
            .pop_if_empty()
            .extend(["api", "v1", "users", user_id])
            .extend(tail);
        Ok(url)
    }

    /// The user's `status` from `GET /api/v1/users/{id}`.
    async fn status(&self, user_id: &str) -> Result<String, GroupsError> {
        let url = self.user_url(user_id, None)?;
        let (_, body) = self.call(&url, &metrics::OKTA_USER_CALLS, "user").await?;
        let user: OktaUser = serde_json::from_slice(&body)
            .map_err(|e| GroupsError::Unavailable(format!("user body: {e}")))?;
        Ok(user.status)
    }

    async fn page(&self, url: &Url) -> Result<(Vec<Group>, Option<Url>), GroupsError> {
        let (headers, body) = self
            .call(url, &metrics::OKTA_GROUPS_CALLS, "groups")
            .await?;
        let next = next_link(&headers).filter(|next| next.origin() == self.org.origin());
        let page: Vec<OktaGroup> = serde_json::from_slice(&body)
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

    /// One GET to the management API, counted in `counter`: the headers and
    /// body of a 2xx, else the error it stands for.
    async fn call(
        &self,
        url: &Url,
        counter: &metrics::Counter,
        endpoint: &'static str,
    ) -> Result<(HeaderMap, Vec<u8>), GroupsError> {
        if now() < self.blocked_until.load(Ordering::Relaxed) {
            return Err(GroupsError::RateLimited);
        }
        let _permit = self
            .in_flight
            .acquire()
            .await
            .map_err(|_| GroupsError::Unavailable("shutting down".into()))?;
        counter.inc();
        let started = std::time::Instant::now();
        let response = self.credential.get(&self.http, url).await;
        let status = response.as_ref().ok().map(|r| r.status().as_u16());
        metrics::observed::okta_call(endpoint, status, started.elapsed());
        let response = response.map_err(|e| GroupsError::Unavailable(e.to_string()))?;
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
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|e| GroupsError::Unavailable(crate::error_chain::error_chain(&e)))?;
        Ok((headers, body.to_vec()))
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
        let before = self.blocked_until.fetch_max(reset, Ordering::Relaxed);
        metrics::observed::okta_backoff(reset.saturating_sub(before.max(now)) as f64);
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
    fn only_the_statuses_of_an_existing_usable_account_grant_access() {
        for status in [
            "ACTIVE",
            "PROVISIONED",
            "RECOVERY",
            "PASSWORD_EXPIRED",
            "LOCKED_OUT",
        ] {
            assert!(status_grants_access(status), "{status}");
        }
        for status in [
            "SUSPENDED",
            "DEPROVISIONED",
            "STAGED",
            "",
            "active",
            "SOMETHING_NEW",
        ] {
            assert!(!status_grants_access(status), "{status}");
        }
    }

    #[test]
    fn a_status_is_logged_only_as_okta_spells_statuses() {
        assert_eq!(printable("SUSPENDED"), "SUSPENDED");
        assert_eq!(printable("DE\nPROVISIONED"), "DE");
        assert_eq!(printable(&"A".repeat(100)).len(), 32);
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
