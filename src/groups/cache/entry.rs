//! One cached answer about a user's groups ([`Entry`]: the answer and the
//! instants the freshness policy compares) and how long moka keeps it
//! ([`KeepUntil`]). Data only: which entry a check may use is decided in
//! `cache`, not here.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::Expiry;

use super::super::{now_ms, Group, GroupsError, SharedEntry, UserGroups};

/// What Okta last said about a user, and when.
#[derive(Clone)]
pub(super) struct Entry {
    /// The groups, or a definitive "no" ([`GroupsError::is_definitive`]).
    pub(super) answer: Result<Arc<UserGroups>, GroupsError>,
    /// When the Okta call that gave the answer began, here or on another replica.
    pub(super) fetched_at: Instant,
    /// The same instant on the wall clock, for comparing with Redis entries.
    pub(super) fetched_at_ms: u64,
    /// When this replica began the lookup (Okta call or Redis read) that gave
    /// the entry: an invalidation after this instant voids it.
    pub(super) looked_up_at: Instant,
    /// Set by the first check that plans this answer's refresh.
    pub(super) refresh_planned: Arc<AtomicBool>,
}

impl Entry {
    /// Okta's answer to a call that began at `started` (`started_ms` on the
    /// wall clock).
    pub(super) fn fetched(
        answer: Result<Vec<Group>, GroupsError>,
        started: Instant,
        started_ms: u64,
    ) -> Entry {
        Entry {
            answer: answer.map(|groups| Arc::new(UserGroups::new(groups))),
            fetched_at: started,
            fetched_at_ms: started_ms,
            looked_up_at: started,
            refresh_planned: Arc::default(),
        }
    }

    /// Another replica's answer, as old here as it is there.
    pub(super) fn from_shared(shared: SharedEntry, looked_up_at: Instant) -> Entry {
        let age = Duration::from_millis(now_ms().saturating_sub(shared.fetched_at_ms));
        Entry {
            answer: shared
                .groups
                .map(|groups| Arc::new(UserGroups::new(groups))),
            // Only an age beyond the monotonic clock's origin could fail; such
            // an entry would have expired in Redis long ago.
            fetched_at: Instant::now().checked_sub(age).unwrap_or_else(Instant::now),
            fetched_at_ms: shared.fetched_at_ms,
            looked_up_at,
            refresh_planned: Arc::default(),
        }
    }

    pub(super) fn age(&self) -> Duration {
        self.fetched_at.elapsed()
    }
}

/// Entries live until `fetched_at` + the keep time, wherever they were fetched:
/// one from another replica arrives part-way through its life.
pub(super) struct KeepUntil(pub(super) Duration);

impl KeepUntil {
    pub(super) fn left(&self, entry: &Entry, at: Instant) -> Option<Duration> {
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
