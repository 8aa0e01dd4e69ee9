//! What both benchmarks check against: one signed-in user's session and a
//! list of Okta groups. Included by `benches/decision.rs` and
//! `benches/allocations.rs` (`mod shared;`), not a benchmark of its own.

use forward_auth::clock::now;
use forward_auth::groups::Group;
use forward_auth::identity::Identity;
use forward_auth::secret::Secret;
use forward_auth::session::Session;

/// The benchmarks' user (an Okta user id).
pub const USER: &str = "00ualice0000000000000";

/// Alice's session: an hour of life, tokens valid as long, a refresh token.
pub fn session() -> Session {
    let now = now();
    Session::new(
        Identity::new(
            USER.into(),
            "alice@example.com".into(),
            "alice@example.com".into(),
            "Alice".into(),
        ),
        now,
        now + 3600,
        now + 3600,
        Some(Secret::new("rt".into())),
    )
}

/// `n` groups named `group-0`, `group-1`, … with Okta-shaped ids.
pub fn groups(n: usize) -> Vec<Group> {
    (0..n)
        .map(|i| Group {
            id: format!("00g{i:017}"),
            name: format!("group-{i}"),
        })
        .collect()
}
