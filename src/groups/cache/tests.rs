use super::*;
use crate::groups::SharedEntry;

#[test]
fn an_entry_from_another_replica_keeps_its_age_and_expires_on_its_own_schedule() {
    let fetched_at_ms = now_ms() - 90_000;
    let entry = Entry::from_shared(
        SharedEntry {
            fetched_at_ms,
            groups: Ok(vec![]),
        },
        Instant::now(),
    );
    let age = entry.age();
    assert!(
        (Duration::from_secs(89)..Duration::from_secs(92)).contains(&age),
        "{age:?}"
    );
    let keep = KeepUntil(Duration::from_secs(100));
    let left = keep.left(&entry, Instant::now()).unwrap();
    assert!(left <= Duration::from_secs(11), "{left:?}");
    let gone = Entry::from_shared(
        SharedEntry {
            fetched_at_ms,
            groups: Err(GroupsError::UserNotFound),
        },
        Instant::now(),
    );
    assert_eq!(gone.answer.err(), Some(GroupsError::UserNotFound));
}

#[test]
fn the_refresh_starts_a_tenth_of_the_ttl_early_and_at_most_10_s() {
    assert_eq!(
        refresh_lead(Duration::from_secs(3)),
        Duration::from_millis(300)
    );
    assert_eq!(
        refresh_lead(Duration::from_secs(60)),
        Duration::from_secs(6)
    );
    assert_eq!(
        refresh_lead(Duration::from_secs(300)),
        Duration::from_secs(10)
    );
    assert_eq!(
        refresh_lead(Duration::from_secs(3600)),
        Duration::from_secs(10)
    );
}
