//! Time: seconds since the epoch (exact, and a coarse copy that costs one
//! atomic load), and "at most once per period" turns.
//! Owns the coarse clock's one global stamp and the thread that advances it;
//! every other stamp belongs to its caller (an `AtomicU64` of its own).
//! Must not sleep, lock or allocate on a read: the check path reads it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// How often the coarse clock's thread copies [`now`]: a coarse read is at
/// most this much (plus scheduling delay) behind the exact one.
pub const COARSE_TICK: Duration = Duration::from_millis(100);

/// The coarse clock's stamp: epoch seconds, or 0 when no ticker runs (then
/// [`coarse_now`] reads the exact clock).
static COARSE: AtomicU64 = AtomicU64::new(0);
static TICKER: Once = Once::new();

/// Seconds since the Unix epoch, for the check path: one atomic load of a stamp
/// a background thread refreshes every [`COARSE_TICK`], never behind [`now`] by
/// more than that (plus scheduling), never ahead of it. The first call starts
/// the thread; if it cannot start, every call reads [`now`].
pub fn coarse_now() -> u64 {
    TICKER.call_once(start_ticker);
    match COARSE.load(Ordering::Relaxed) {
        0 => now(),
        seconds => seconds,
    }
}

/// Sets the stamp, then keeps it current from a thread of its own (a thread,
/// not a task: the stamp must move whichever runtime, if any, is running).
fn start_ticker() {
    COARSE.store(now(), Ordering::Relaxed);
    let started = std::thread::Builder::new()
        .name("coarse-clock".into())
        .spawn(|| loop {
            std::thread::sleep(COARSE_TICK);
            COARSE.store(now(), Ordering::Relaxed);
        });
    if started.is_err() {
        // A stamp nobody advances would freeze time: fall back to `now()`.
        COARSE.store(0, Ordering::Relaxed);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coarse_now_is_never_ahead_of_now_nor_seconds_behind() {
        for _ in 0..5 {
            let coarse = coarse_now();
            let exact = now();
            assert!(coarse <= exact, "coarse {coarse} ahead of exact {exact}");
            // A tick of lag can cross a second boundary; a loaded machine may
            // delay the ticker a little more, but never by seconds.
            assert!(exact - coarse <= 2, "coarse {coarse} lags exact {exact}");
            std::thread::sleep(Duration::from_millis(30));
        }
    }

    #[test]
    fn coarse_now_follows_the_exact_clock_across_a_second() {
        let first = coarse_now();
        // Two seconds on, the stamp must follow (bounded wait: a loaded
        // machine may run the ticker late, but it must run).
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut later = coarse_now();
        while later < first + 2 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            later = coarse_now();
        }
        assert!(
            later >= first + 2,
            "the coarse clock stood still: {first} then {later}"
        );
    }

    #[test]
    fn take_turn_gives_one_caller_per_period() {
        let last = AtomicU64::new(0);
        assert!(take_turn(&last, 100, 10));
        assert!(!take_turn(&last, 105, 10));
        assert!(take_turn(&last, 110, 10));
        assert!(!take_turn(&last, 110, 10));
    }
}
