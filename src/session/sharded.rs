//! The sharded map both session maps are made of: the in-memory store's
//! sessions and the Redis store's local copies. A read lock per lookup on one
//! of 64 shards, no allocation, a cheap hasher, and a sweep of dead entries
//! spread over the period one shard at a time (so no write waits on a walk of
//! every entry). An entry carries its own id ([`Keyed`]), so a shard is a set
//! of entries, not id → entry: a stored session costs its map one pointer, not
//! an id and a pointer (at 1M sessions a shard is ~half full, so every byte of
//! a slot counts twice). Knows nothing of sessions' meaning or expiry rules:
//! its users pass them in.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::RwLock;
use std::time::{SystemTime, UNIX_EPOCH};

use super::SessionId;
use crate::clock::take_turn;

/// Independent locks, so checks on both cores rarely meet.
const SHARDS: usize = 64;

/// Hashes a session id by folding its bytes. Session ids are 160 random bits made
/// by us, and a lookup happens only after the cookie's MAC verified, so nobody
/// can choose keys to collide: a keyed (SipHash) hasher would only cost time.
#[derive(Default)]
pub(super) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word))
                .wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// An entry that knows the id it is kept under.
pub(super) trait Keyed {
    fn key(&self) -> &SessionId;
}

/// An entry in a shard's set: hashed, compared and looked up by its
/// [`Keyed::key`] alone, so `set.get(id)` finds it as a map would.
pub(super) struct Slot<V>(pub(super) V);

impl<V: Keyed> Hash for Slot<V> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // The same as the id's own hash, as `Borrow` requires.
        self.0.key().hash(state);
    }
}

impl<V: Keyed> PartialEq for Slot<V> {
    fn eq(&self, other: &Self) -> bool {
        self.0.key() == other.0.key()
    }
}

impl<V: Keyed> Eq for Slot<V> {}

impl<V: Keyed> Borrow<SessionId> for Slot<V> {
    fn borrow(&self) -> &SessionId {
        self.0.key()
    }
}

impl<V> std::ops::Deref for Slot<V> {
    type Target = V;
    fn deref(&self) -> &V {
        &self.0
    }
}

pub(super) type Shard<V> = RwLock<HashSet<Slot<V>, BuildHasherDefault<IdHasher>>>;

/// A shard's lock was poisoned (a thread panicked holding it).
#[derive(Debug)]
pub(super) struct Poisoned;

/// Values by session id, in [`SHARDS`] independently locked maps.
pub(super) struct ShardedMap<V> {
    shards: Box<[Shard<V>]>,
    /// Epoch milliseconds of the last shard's sweep.
    last_sweep: AtomicU64,
    /// The shard the next sweep takes (modulo [`SHARDS`]).
    next_sweep: AtomicUsize,
}

/// Milliseconds since the Unix epoch, for [`ShardedMap::sweep_if_due`].
pub(super) fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl<V: Keyed> ShardedMap<V> {
    pub(super) fn new() -> ShardedMap<V> {
        ShardedMap {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            last_sweep: AtomicU64::new(now_millis()),
            next_sweep: AtomicUsize::new(0),
        }
    }

    /// The shard that holds `id`.
    pub(super) fn shard(&self, id: &SessionId) -> &Shard<V> {
        &self.shards[usize::from(id.0[0]) % SHARDS]
    }

    /// Keeps only the entries `keep` accepts, in every shard it can lock;
    /// returns how many went, or [`Poisoned`] if a shard could not be locked.
    pub(super) fn retain(&self, keep: impl Fn(&V) -> bool) -> Result<usize, Poisoned> {
        let mut removed = 0;
        let mut poisoned = false;
        for shard in self.shards.iter() {
            match shard.write() {
                Ok(mut map) => {
                    let before = map.len();
                    map.retain(|slot| keep(&slot.0));
                    removed += before - map.len();
                }
                Err(_) => poisoned = true,
            }
        }
        if poisoned {
            Err(Poisoned)
        } else {
            Ok(removed)
        }
    }

    /// Removes and returns the entries `matches` accepts, in every shard it
    /// can lock, or [`Poisoned`] if a shard could not be locked.
    pub(super) fn take_where(&self, matches: impl Fn(&V) -> bool) -> Result<Vec<V>, Poisoned> {
        let mut taken = Vec::new();
        let mut poisoned = false;
        for shard in self.shards.iter() {
            match shard.write() {
                Ok(mut map) => {
                    let ids: Vec<SessionId> = map
                        .iter()
                        .filter(|slot| matches(&slot.0))
                        .map(|slot| slot.0.key().clone())
                        .collect();
                    taken.extend(ids.iter().filter_map(|id| map.take(id)).map(|slot| slot.0));
                }
                Err(_) => poisoned = true,
            }
        }
        if poisoned {
            Err(Poisoned)
        } else {
            Ok(taken)
        }
    }

    /// How many entries are held.
    pub(super) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().map(|m| m.len()).unwrap_or(0))
            .sum()
    }

    /// Sweeps out the entries that are no longer `live`, spread over
    /// `every_secs`: each call that finds a [`SHARDS`]th of the period passed
    /// since the last sweep (of racing callers, one) sweeps ONE shard, the
    /// next in turn. The caller (a write, e.g. a sign-in's save) thus holds
    /// one shard's lock for a [`SHARDS`]th of the entries, never walks them
    /// all; every shard is still swept about once per period.
    pub(super) fn sweep_if_due(&self, now_ms: u64, every_secs: u64, live: impl Fn(&V) -> bool) {
        let every_ms = (every_secs.saturating_mul(1000) / SHARDS as u64).max(1);
        if take_turn(&self.last_sweep, now_ms, every_ms) {
            let next = self.next_sweep.fetch_add(1, Ordering::Relaxed) % SHARDS;
            if let Some(Ok(mut map)) = self.shards.get(next).map(RwLock::write) {
                map.retain(|slot| live(&slot.0));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::ID_BYTES;
    use std::hash::BuildHasher;

    #[test]
    fn the_id_hasher_spreads_random_ids() {
        let build = BuildHasherDefault::<IdHasher>::default();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            seen.insert(build.hash_one(SessionId::random()) >> 54); // top 10 bits
        }
        assert!(
            seen.len() > 500,
            "only {} distinct buckets of 1024",
            seen.len()
        );
    }

    /// A test entry: a number kept under an id.
    struct Numbered(SessionId, u32);

    impl Keyed for Numbered {
        fn key(&self) -> &SessionId {
            &self.0
        }
    }

    fn insert(map: &ShardedMap<Numbered>, id: SessionId, n: u32) {
        map.shard(&id)
            .write()
            .unwrap()
            .replace(Slot(Numbered(id, n)));
    }

    #[test]
    fn an_entry_is_found_by_its_id_alone_and_replaced_not_doubled() {
        let map = ShardedMap::<Numbered>::new();
        let (a, b) = (SessionId::random(), SessionId::random());
        insert(&map, a.clone(), 1);
        insert(&map, b.clone(), 2);
        insert(&map, a.clone(), 3);
        assert_eq!(map.len(), 2);
        let read = |id: &SessionId| map.shard(id).read().unwrap().get(id).map(|e| e.1);
        assert_eq!((read(&a), read(&b)), (Some(3), Some(2)));
        assert_eq!(read(&SessionId::random()), None);
    }

    #[test]
    fn retain_counts_what_went() {
        let map = ShardedMap::<Numbered>::new();
        for n in 0..100 {
            insert(&map, SessionId::random(), n);
        }
        assert_eq!(map.retain(|e| e.1 % 2 == 0).unwrap(), 50);
        assert_eq!(map.len(), 50);
    }

    /// A map with `per_shard` entries (numbered from 0) in every shard.
    fn filled(per_shard: u32) -> ShardedMap<Numbered> {
        let map = ShardedMap::<Numbered>::new();
        for shard in 0..SHARDS {
            for n in 0..per_shard {
                let mut bytes: [u8; ID_BYTES] = crate::random::random_bytes();
                bytes[0] = shard as u8;
                insert(&map, SessionId(bytes), n);
            }
        }
        map
    }

    #[test]
    fn a_sweep_takes_one_shard_per_slice_of_its_period_and_all_within_it() {
        let map = filled(10);
        let start = now_millis();
        map.last_sweep.store(start, Ordering::Relaxed);
        // 60 s over 64 shards: one shard every 937 ms.
        let slice = 60_000 / SHARDS as u64;
        map.sweep_if_due(start + slice - 1, 60, |_| false);
        assert_eq!(map.len(), SHARDS * 10, "not due yet");
        map.sweep_if_due(start + slice, 60, |_| false);
        assert_eq!(map.len(), (SHARDS - 1) * 10, "one shard, not all");
        map.sweep_if_due(start + slice, 60, |_| false);
        assert_eq!(map.len(), (SHARDS - 1) * 10, "once per slice");
        for step in 2..=SHARDS as u64 {
            map.sweep_if_due(start + slice * step, 60, |_| false);
        }
        assert_eq!(map.len(), 0, "every shard swept within the period");

        let kept = filled(4);
        kept.last_sweep.store(start, Ordering::Relaxed);
        for step in 1..=SHARDS as u64 {
            kept.sweep_if_due(start + slice * step, 60, |e| e.1 % 2 == 0);
        }
        assert_eq!(kept.len(), SHARDS * 2, "live entries stay");
    }
}
