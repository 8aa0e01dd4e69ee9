//! Time: seconds since the epoch, and "at most once per period" turns.
//! Owns no state of its own; every caller keeps its own `AtomicU64` stamp.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// True for the one caller that finds `last` at least `every` before `now`, or
/// never set (0); `last` becomes `now`. Any unit, as long as all three agree.
/// For "at most once per period" work: sweeps, warnings.
pub fn take_turn(last: &AtomicU64, now: u64, every: u64) -> bool {
    let previous = last.load(Ordering::Relaxed);
    (previous == 0 || now >= previous.saturating_add(every))
        && last
            .compare_exchange(previous, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
}
