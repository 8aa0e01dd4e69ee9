//! The `SessionStore` conformance suite. Every store implementation runs
//! [`conformance`]: the in-memory store, and the Redis store against a real
//! `redis-server` on a free loopback port.

use std::sync::Arc;

use forward_auth::clock::now;
use forward_auth::identity::Identity;
use forward_auth::secret::Secret;
use forward_auth::session::{Ending, MemoryStore, RedisStore, Session, SessionId, SessionStore};

use crate::support::redis::RedisServer;

/// The identity of the sessions below: user `sub`, with `login`, `email` and IdP session `sid`.
fn identity(sub: &str, login: &str, email: &str, sid: Option<&str>) -> Identity {
    Identity::new(sub.into(), login.into(), email.into(), sub.into())
        .with_groups_claim(Some(vec!["g".into()]))
        .with_sid(sid.map(str::to_string))
}

fn session(sub: &str, lifetime: u64) -> Session {
    let now = now();
    let email = format!("{sub}@example.com");
    Session::new(
        identity(sub, &email, &email, Some("sid-1")),
        now,
        now + lifetime,
        now + 3600,
        Some(Secret::new("rt".into())),
    )
    .with_id_token(Some(Secret::new("idt".into())))
}

/// What every store must do.
pub async fn conformance(store: Arc<dyn SessionStore>) {
    store.ping().await.expect("a fresh store answers");

    // save / load / replace / remove
    let id = SessionId::random();
    assert!(
        store.load(&id).await.unwrap().is_none(),
        "unknown id loads nothing"
    );
    store.save(&id, &session("u1", 60)).await.unwrap();
    let loaded = store.load(&id).await.unwrap().expect("saved session loads");
    assert_eq!(loaded.identity().sub(), "u1");
    assert_eq!(loaded.refresh_token().map(|t| t.expose()), Some("rt"));
    assert_eq!(
        loaded.identity().groups_claim(),
        Some(&["g".to_string()][..])
    );
    let mut changed = session("u1", 60);
    changed.set_identity(identity(
        "u1",
        "renamed@example.com",
        "u1@example.com",
        Some("sid-1"),
    ));
    store.save(&id, &changed).await.unwrap();
    assert_eq!(
        store.load(&id).await.unwrap().unwrap().identity().login(),
        "renamed@example.com"
    );
    let mut updated = session("u1", 60);
    updated.set_identity(identity(
        "u1",
        "updated@example.com",
        "u1@example.com",
        Some("sid-1"),
    ));
    assert!(store.update(&id, &updated).await.unwrap(), "it exists");
    assert_eq!(
        store.load(&id).await.unwrap().unwrap().identity().login(),
        "updated@example.com"
    );
    store.remove(&id).await.unwrap();
    assert!(
        store.load(&id).await.unwrap().is_none(),
        "removed session is gone"
    );
    assert!(
        !store.update(&id, &updated).await.unwrap(),
        "an update never brings a removed session back"
    );
    assert!(store.load(&id).await.unwrap().is_none());
    store.remove(&id).await.expect("removing twice is fine");

    // expiry
    let short = SessionId::random();
    store.save(&short, &session("u2", 1)).await.unwrap();
    assert!(store.load(&short).await.unwrap().is_some());
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert!(
        store.load(&short).await.unwrap().is_none(),
        "expired session is gone"
    );

    // remove_user ends that user's sessions only
    let (a1, a2, b1) = (
        SessionId::random(),
        SessionId::random(),
        SessionId::random(),
    );
    store.save(&a1, &session("alice", 60)).await.unwrap();
    store.save(&a2, &session("alice", 60)).await.unwrap();
    store.save(&b1, &session("bob", 60)).await.unwrap();
    assert_eq!(store.remove_user("alice").await.unwrap(), 2);
    assert!(store.load(&a1).await.unwrap().is_none());
    assert!(store.load(&a2).await.unwrap().is_none());
    assert!(
        store.load(&b1).await.unwrap().is_some(),
        "other users keep their sessions"
    );

    // remove_sid ends the sessions of one IdP session, of the named user only
    let with_sid = |sub: &str, sid: Option<&str>| {
        let mut s = session(sub, 60);
        let email = format!("{sub}@example.com");
        s.set_identity(identity(sub, &email, &email, sid));
        s
    };
    let (s1, s2, s3, s4) = (
        SessionId::random(),
        SessionId::random(),
        SessionId::random(),
        SessionId::random(),
    );
    store
        .save(&s1, &with_sid("carol", Some("idp-1")))
        .await
        .unwrap();
    store
        .save(&s2, &with_sid("carol", Some("idp-2")))
        .await
        .unwrap();
    store.save(&s3, &with_sid("carol", None)).await.unwrap();
    store
        .save(&s4, &with_sid("dave", Some("idp-1")))
        .await
        .unwrap();
    assert_eq!(
        store.remove_sid(Some("carol"), "idp-1").await.unwrap(),
        1,
        "only carol's session in idp-1 ends"
    );
    assert!(store.load(&s1).await.unwrap().is_none());
    assert!(
        store.load(&s2).await.unwrap().is_some(),
        "other IdP session"
    );
    assert!(
        store.load(&s3).await.unwrap().is_some(),
        "session without sid"
    );
    assert!(
        store.load(&s4).await.unwrap().is_some(),
        "other user, same sid"
    );
    assert_eq!(store.remove_sid(None, "idp-1").await.unwrap(), 1);
    assert!(store.load(&s4).await.unwrap().is_none(), "no sub: any user");
    assert_eq!(store.remove_sid(None, "unknown").await.unwrap(), 0);

    // end_once: a one-time token ends sessions once, by IdP session or user
    let (e1, e2, e3) = (
        SessionId::random(),
        SessionId::random(),
        SessionId::random(),
    );
    store
        .save(&e1, &with_sid("erin", Some("idp-7")))
        .await
        .unwrap();
    store
        .save(&e2, &with_sid("erin", Some("idp-8")))
        .await
        .unwrap();
    store
        .save(&e3, &with_sid("frank", Some("idp-7")))
        .await
        .unwrap();
    let by_sid = Ending::IdpSession {
        sub: Some("erin"),
        sid: "idp-7",
    };
    assert_eq!(store.end_once("jti-1", by_sid).await.unwrap(), Some(1));
    assert!(store.load(&e1).await.unwrap().is_none());
    assert!(
        store.load(&e3).await.unwrap().is_some(),
        "frank's session stays"
    );
    store
        .save(&e1, &with_sid("erin", Some("idp-7")))
        .await
        .unwrap();
    assert_eq!(
        store.end_once("jti-1", by_sid).await.unwrap(),
        None,
        "a replay is seen"
    );
    assert!(
        store.load(&e1).await.unwrap().is_some(),
        "a replay ends nothing"
    );
    let by_user = Ending::User { sub: "erin" };
    assert_eq!(store.end_once("jti-2", by_user).await.unwrap(), Some(2));
    assert!(store.load(&e1).await.unwrap().is_none() && store.load(&e2).await.unwrap().is_none());
    assert!(store.load(&e3).await.unwrap().is_some());
    assert_eq!(store.end_once("jti-3", by_user).await.unwrap(), Some(0));

    // end: by email (any case, any user with that email), and by user for
    // sessions that began at or before a time only
    let by_email = |sub: &str, email: &str, created_at: u64| {
        let mut s = session(sub, 60);
        s.set_identity(identity(
            sub,
            &format!("{sub}@example.com"),
            email,
            Some("sid-1"),
        ));
        s.set_created_at(created_at);
        s
    };
    let start = now();
    let (m1, m2, m3, m4) = (
        SessionId::random(),
        SessionId::random(),
        SessionId::random(),
        SessionId::random(),
    );
    store
        .save(&m1, &by_email("gina", "Gina@Example.com", start - 100))
        .await
        .unwrap();
    store
        .save(&m2, &by_email("gina", "gina@example.com", start))
        .await
        .unwrap();
    store
        .save(&m3, &by_email("hank", "hank@example.com", start - 100))
        .await
        .unwrap();
    store
        .save(&m4, &by_email("hank", "hank@example.com", start + 100))
        .await
        .unwrap();
    assert_eq!(
        store
            .end(Ending::Email {
                email: "GINA@example.COM"
            })
            .await
            .unwrap(),
        2,
        "an email ends that user's sessions whatever the case"
    );
    assert!(store.load(&m1).await.unwrap().is_none() && store.load(&m2).await.unwrap().is_none());
    assert!(store.load(&m3).await.unwrap().is_some(), "another email");
    assert_eq!(
        store
            .end(Ending::Email {
                email: "nobody@example.com"
            })
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .end(Ending::UserBefore {
                sub: "hank",
                before: start
            })
            .await
            .unwrap(),
        1,
        "only the session that began before"
    );
    assert!(store.load(&m3).await.unwrap().is_none());
    assert!(
        store.load(&m4).await.unwrap().is_some(),
        "a session that began after the event stays"
    );

    // end_once_taking: the ended sessions come back (their refresh tokens are
    // revoked next); a replay ends and returns nothing
    let taken = store
        .end_once_taking("jti-4", Ending::User { sub: "hank" })
        .await
        .unwrap()
        .expect("first use");
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].refresh_token().map(|t| t.expose()), Some("rt"));
    assert!(store.load(&m4).await.unwrap().is_none());
    store
        .save(&m4, &by_email("hank", "hank@example.com", start))
        .await
        .unwrap();
    assert!(store
        .end_once_taking("jti-4", Ending::User { sub: "hank" })
        .await
        .unwrap()
        .is_none());
    assert!(
        store.load(&m4).await.unwrap().is_some(),
        "a replay ends nothing"
    );
    let none = store
        .end_once_taking(
            "jti-5",
            Ending::Email {
                email: "nobody@example.com",
            },
        )
        .await
        .unwrap();
    assert_eq!(none.map(|v| v.len()), Some(0));

    // a sign-in state is used once
    assert!(store.use_state("state-1").await.unwrap(), "first use");
    assert!(store.use_state("state-2").await.unwrap(), "another state");
    assert!(
        !store.use_state("state-1").await.unwrap(),
        "a state works once"
    );
}

#[tokio::test]
async fn the_memory_store_conforms() {
    conformance(Arc::new(MemoryStore::new())).await;
}

#[tokio::test]
async fn the_redis_store_conforms() {
    let Some(redis) = RedisServer::start(false) else {
        return;
    };
    let store = RedisStore::new(&redis.url()).expect("a valid URL");
    conformance(Arc::new(store)).await;
}
