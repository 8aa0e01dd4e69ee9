//! A session's link to its user's cached groups answer ([`GroupsLink`]) and
//! whether it may still answer a check ([`GroupsCache::linked`]). Owns only
//! that test; which answer is cached, and when a link is handed out, is
//! `cache`'s (`GroupsCache::groups_and_link`). Must NOT ask Okta or Redis.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::{GroupsCache, Shared, UserGroups};
use crate::metrics;

/// An answer a session may keep and use for its next checks without asking
/// the cache ([`GroupsCache::linked`]): only until the answer's refresh-ahead
/// point (half the TTL, where the cache itself would start a refresh), and
/// only while no invalidation came since it was read and the local answers
/// are trusted. Anything else goes through [`GroupsCache::groups_and_link`].
#[derive(Debug, Clone)]
pub struct GroupsLink {
    pub(super) groups: Arc<UserGroups>,
    /// The cache's invalidation count when the answer was read.
    pub(super) generation: u64,
    /// When the cache would start refreshing the answer.
    pub(super) until: Instant,
}

impl GroupsCache {
    /// The linked answer, if it may still be used: as [`groups_of`]
    /// would answer now, with no lookup. `None`: ask [`groups_and_link`].
    ///
    /// [`groups_of`]: Self::groups_of
    /// [`groups_and_link`]: Self::groups_and_link
    pub fn linked(&self, link: &GroupsLink) -> Option<Arc<UserGroups>> {
        let inner = &self.inner;
        let usable = link.generation == inner.generation.load(Ordering::SeqCst)
            && inner.shared.as_ref().is_none_or(Shared::trusts_local)
            && Instant::now() < link.until;
        if !usable {
            return None;
        }
        metrics::observed::groups_cache_hit();
        Some(link.groups.clone())
    }
}
