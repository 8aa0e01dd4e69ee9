//! A user's Okta groups, for the policy's group rules: the public face of
//! four layers. `cache` is the freshness policy ([`GroupsCache`]: TTL,
//! refresh-ahead, stale-if-error, invalidation) and the only one that decides
//! which answer a check gets; it asks `okta` (the HTTP client: pagination,
//! 429s, user status) and, with Redis, `shared` (coordination between
//! replicas: shared answers, fetch leases, the 429 block, invalidations),
//! which speaks to Redis only through `redis` (the keys and scripts). No actix
//! types, and nothing here decides access: that is `policy`'s job.

use std::time::Duration;

pub use crate::identity_headers::UserGroups;
pub use crate::policy::Group;

mod cache;
mod okta;
mod redis;
mod shared;
pub use self::cache::{GroupsCache, GroupsLink, DEFAULT_STALE_IF_ERROR};
pub use self::okta::{next_link, status_grants_access, OktaGroupsClient};
pub use self::redis::{RedisGroups, SharedEntry, SharedError, Take};

/// Why a user's groups are not known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupsError {
    #[error("Okta rate limit reached; waiting for its reset")]
    RateLimited,
    #[error("Okta does not know this user")]
    UserNotFound,
    /// Okta knows the user, but their status (e.g. `SUSPENDED`,
    /// `DEPROVISIONED`) no longer grants access.
    #[error("the user's Okta status is {0}")]
    UserInactive(String),
    #[error("Okta groups API unavailable: {0}")]
    Unavailable(String),
}

impl GroupsError {
    /// Okta's own answer about the user, as opposed to Okta not answering:
    /// kept like groups, never replaced by last known groups.
    fn is_definitive(&self) -> bool {
        matches!(
            self,
            GroupsError::UserNotFound | GroupsError::UserInactive(_)
        )
    }
}

/// Milliseconds since the Unix epoch: how replicas compare when an answer was
/// fetched.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn as_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
