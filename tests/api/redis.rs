//! `SESSION_STORE=redis://…` against a real `redis-server` on a free loopback
//! port: two replicas share sessions and a sign-out on one ends it on both; a
//! Redis outage gives 503 (never 2xx, never a panic) and service resumes by
//! itself when Redis returns. The server: [`RedisServer`] in `tests/support/redis.rs`.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::support::app::{session_cookie_in, spawn_app_for, spawn_app_with, TestApp, COOKIE_NAME};
use crate::support::redis::RedisServer;

const ORIGINAL: &str = "https://app.example.com/";

fn cookie_of(app: &TestApp) -> String {
    format!("{COOKIE_NAME}={}", app.session_cookie().expect("signed in"))
}

async fn readyz(app: &TestApp) -> StatusCode {
    app.client
        .get(app.url("/readyz"))
        .send()
        .await
        .unwrap()
        .status()
}

/// A synchronous connection for looking inside Redis from a test.
fn inspect(redis: &RedisServer) -> redis::Connection {
    redis::Client::open(redis.url())
        .and_then(|c| c.get_connection())
        .expect("the test connects to its redis-server")
}

/// How many times Redis has run `command` (from `INFO commandstats`).
fn calls(con: &mut redis::Connection, command: &str) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(con)
        .expect("INFO answers");
    let prefix = format!("cmdstat_{command}:calls=");
    info.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().expect("a count"))
}

async fn sign_out_on(app: &TestApp, cookie: &str, query: &str) {
    let signed_out = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        // A POST from the service's own origin, as everywhere=true needs.
        .post(app.url(&format!("/oauth2/sign_out{query}")))
        .header("Origin", app.address.as_str())
        .header("Sec-Fetch-Site", "same-origin")
        .header("Cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(signed_out.status(), StatusCode::FOUND);
}

/// Checks `cookie` on `app` until it is refused; how long that took. Fails if
/// it is still accepted after `limit`, or answers anything but 200/401.
async fn refused_within(app: &TestApp, cookie: &str, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let status = app.auth_with_cookie(cookie, ORIGINAL).await.status();
        if status == StatusCode::UNAUTHORIZED {
            return start.elapsed();
        }
        assert_eq!(status, StatusCode::OK, "unexpected answer");
        assert!(
            start.elapsed() < limit,
            "the cookie was still accepted {:?} after the sign-out",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Three replicas on one Redis, sharing one fake Okta.
async fn three_replicas(redis: &RedisServer) -> [TestApp; 3] {
    let url = redis.url();
    let a = spawn_app_with(&[("SESSION_STORE", &url)]).await;
    let b = spawn_app_for(a.okta.clone(), &[("SESSION_STORE", &url)]).await;
    let c = spawn_app_for(a.okta.clone(), &[("SESSION_STORE", &url)]).await;
    [a, b, c]
}

/// Checks the cookie on every replica until each has it in its local copy
/// (and waits until they all subscribed to invalidations).
async fn warm(apps: &[&TestApp], cookie: &str) {
    for app in apps {
        for _ in 0..3 {
            assert_eq!(
                app.auth_with_cookie(cookie, ORIGINAL).await.status(),
                StatusCode::OK,
                "every replica accepts the session"
            );
        }
    }
}

#[tokio::test]
async fn a_sign_out_on_one_replica_is_refused_by_all_three_within_a_second() {
    let Some(redis) = RedisServer::start(false) else {
        return;
    };
    let [a, b, c] = three_replicas(&redis).await;
    a.login_as("alice").await;
    let cookie = cookie_of(&a);
    // Copies are only kept once a replica listens to invalidations; give the
    // subscriptions a moment, then make sure every replica holds a copy.
    tokio::time::sleep(Duration::from_millis(300)).await;
    warm(&[&a, &b, &c], &cookie).await;

    sign_out_on(&b, &cookie, "").await;
    let mut took = Vec::new();
    for (name, app) in [("A", &a), ("B", &b), ("C", &c)] {
        let t = refused_within(app, &cookie, Duration::from_secs(1)).await;
        took.push(format!("{name} {t:?}"));
    }
    eprintln!("sign-out on B refused by: {}", took.join(", "));
}

#[tokio::test]
async fn checks_answer_from_the_local_copy_without_a_redis_round_trip_each() {
    let Some(redis) = RedisServer::start(false) else {
        return;
    };
    let url = redis.url();
    let app = spawn_app_with(&[("SESSION_STORE", &url)]).await;
    app.login_as("alice").await;
    let cookie = cookie_of(&app);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut con = inspect(&redis);
    let before = calls(&mut con, "get");
    let start = Instant::now();
    for _ in 0..200 {
        assert_eq!(
            app.auth_with_cookie(&cookie, ORIGINAL).await.status(),
            StatusCode::OK
        );
    }
    let seconds = start.elapsed().as_secs() + 1;
    let gets = calls(&mut con, "get") - before;
    eprintln!("200 checks in {:?}: {gets} Redis GETs", start.elapsed());
    // One read per local-copy lifetime (1 s), not one per check.
    assert!(
        gets <= seconds + 1,
        "{gets} GETs for 200 checks in {seconds} s"
    );
}

#[tokio::test]
async fn sign_out_everywhere_on_one_replica_ends_every_session_of_the_user_on_all() {
    let Some(redis) = RedisServer::start(false) else {
        return;
    };
    let [a, b, c] = three_replicas(&redis).await;
    a.login_as("alice").await;
    let first = cookie_of(&a);
    let (laptop_jar, laptop) = a.new_browser();
    a.login_in(&laptop, "alice").await;
    let second = format!(
        "{COOKIE_NAME}={}",
        session_cookie_in(&laptop_jar, &a.address).expect("signed in")
    );
    c.login_as("bob").await;
    let bob = cookie_of(&c);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let apps = [&a, &b, &c];
    for cookie in [&first, &second, &bob] {
        warm(&apps, cookie).await;
    }

    sign_out_on(&b, &first, "?everywhere=true").await;
    for app in apps {
        for cookie in [&first, &second] {
            refused_within(app, cookie, Duration::from_secs(1)).await;
        }
        assert_eq!(
            app.auth_with_cookie(&bob, ORIGINAL).await.status(),
            StatusCode::OK,
            "other users keep their sessions"
        );
    }
}

#[tokio::test]
async fn a_lost_invalidation_channel_never_lets_a_signed_out_cookie_in() {
    let Some(redis) = RedisServer::start(false) else {
        return;
    };
    let [a, b, _c] = three_replicas(&redis).await;
    a.login_as("alice").await;
    let cookie = cookie_of(&a);
    tokio::time::sleep(Duration::from_millis(300)).await;
    warm(&[&a, &b], &cookie).await;
    // Cut every replica's subscription: they must stop trusting their copies
    // (and subscribe again by themselves).
    let mut con = inspect(&redis);
    let killed: u64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query(&mut con)
        .expect("CLIENT KILL answers");
    assert!(killed >= 3, "each replica subscribed ({killed} killed)");
    sign_out_on(&b, &cookie, "").await;
    refused_within(&a, &cookie, Duration::from_secs(1)).await;

    // Subscribed again: a new session is cached and a sign-out still reaches A.
    b.login_as("bob").await;
    let bob = cookie_of(&b);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut subscribers: Vec<String> = redis::cmd("PUBSUB")
        .arg("CHANNELS")
        .query(&mut con)
        .expect("PUBSUB answers");
    subscribers.sort();
    // Sessions' channel, and the groups cache's (which resubscribes too).
    assert_eq!(subscribers, ["fa:groups:invalidate", "fa:invalidate"]);
    let subscribers: Vec<(String, u64)> = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg("fa:invalidate")
        .query(&mut con)
        .expect("PUBSUB answers");
    assert!(
        subscribers[0].1 >= 3,
        "replicas subscribed again: {subscribers:?}"
    );
    warm(&[&a, &b], &bob).await;
    sign_out_on(&a, &bob, "").await;
    refused_within(&b, &bob, Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_redis_outage_answers_503_and_service_resumes_when_redis_returns() {
    let Some(mut redis) = RedisServer::start(true) else {
        return;
    };
    let app = spawn_app_with(&[("SESSION_STORE", &redis.url())]).await;
    app.login_as("alice").await;
    let cookie = cookie_of(&app);
    assert_eq!(
        app.auth_with_cookie(&cookie, ORIGINAL).await.status(),
        StatusCode::OK
    );
    assert_eq!(readyz(&app).await, StatusCode::OK);

    redis.stop();
    // A copy read less than a second ago may still answer until the replica
    // notices the lost connection; after that, never a 2xx.
    let stopped = Instant::now();
    loop {
        let status = app.auth_with_cookie(&cookie, ORIGINAL).await.status();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        assert!(
            status == StatusCode::OK && stopped.elapsed() < Duration::from_secs(1),
            "{:?} after Redis stopped the check answered {status}",
            stopped.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!(
        "checks answered 503 {:?} after Redis stopped",
        stopped.elapsed()
    );
    for _ in 0..20 {
        assert_eq!(
            app.auth_with_cookie(&cookie, ORIGINAL).await.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "a session that cannot be verified is never let through"
        );
    }
    assert_eq!(readyz(&app).await, StatusCode::SERVICE_UNAVAILABLE);

    redis.restart();
    // Once Redis answers again, so does the very first check (the connection
    // is re-made on the spot), with the session that survived in the
    // append-only file.
    assert_eq!(
        app.auth_with_cookie(&cookie, ORIGINAL).await.status(),
        StatusCode::OK,
        "the first check after Redis returned"
    );
    assert_eq!(readyz(&app).await, StatusCode::OK);

    // The same when no check came while Redis was away: the replica finds
    // its connection dead only with the first check after the restart.
    redis.restart();
    assert_eq!(
        app.auth_with_cookie(&cookie, ORIGINAL).await.status(),
        StatusCode::OK,
        "the first check after a restart nobody saw"
    );
}

#[tokio::test]
async fn a_rediss_url_speaks_tls_and_fails_cleanly_against_a_plain_server() {
    use forward_auth::session::{RedisStore, SessionStore};
    let Some(redis) = RedisServer::start(false) else {
        return;
    };
    // The TLS stack (rustls with the ring provider) must build and fail the
    // handshake with an error, not a panic; the message names no secret.
    let url = redis.url().replacen("redis://", "rediss://:hunter2@", 1);
    let store = RedisStore::new(&url).expect("a valid URL");
    let e = store
        .ping()
        .await
        .expect_err("a plain server cannot do TLS");
    assert!(!e.to_string().contains("hunter2"), "{e}");
}

/// Two stores on one Redis whose local copies would live an hour: only the
/// invalidation channel can end them.
mod invalidation {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use forward_auth::clock::now;
    use forward_auth::identity::Identity;
    use forward_auth::secret::Secret;
    use forward_auth::session::{RedisStore, Session, SessionId, SessionStore};

    use super::inspect;
    use crate::support::redis::RedisServer;

    const HOUR: Duration = Duration::from_secs(3600);

    fn session(sub: &str, sid: &str) -> Session {
        let now = now();
        Session::new(
            Identity::new(sub.into(), sub.into(), sub.into(), sub.into())
                .with_sid(Some(sid.into())),
            now,
            now + 600,
            now + 600,
            Some(Secret::new("rt".into())),
        )
    }

    async fn store(redis: &RedisServer) -> RedisStore {
        let store = RedisStore::with_local_ttl(&redis.url(), HOUR).expect("a valid URL");
        let deadline = Instant::now() + Duration::from_secs(5);
        while !store.invalidations_live() {
            assert!(Instant::now() < deadline, "never subscribed");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        store
    }

    /// Polls until `store` no longer loads `id`; fails after a second.
    async fn gone_within_a_second(store: &RedisStore, id: &SessionId) {
        let deadline = Instant::now() + Duration::from_secs(1);
        while store.load(id).await.unwrap().is_some() {
            assert!(
                Instant::now() < deadline,
                "the local copy outlived the change"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn a_one_time_token_counts_every_session_it_ended_even_an_unreadable_one() {
        let Some(redis) = RedisServer::start(false) else {
            return;
        };
        let store = store(&redis).await;
        let mut raw = inspect(&redis);
        let (readable, unreadable) = (SessionId::random(), SessionId::random());
        store
            .save(&readable, &session("frank", "idp-9"))
            .await
            .unwrap();
        store
            .save(&unreadable, &session("frank", "idp-9"))
            .await
            .unwrap();
        // A session this version cannot read (corrupted, or written by
        // another one) still ends and still counts.
        redis::cmd("SET")
            .arg(format!("fa:s:{}", unreadable.to_key()))
            .arg("{\"not\": \"a session\"}")
            .query::<()>(&mut raw)
            .unwrap();
        let ending = forward_auth::session::Ending::IdpSession {
            sub: None,
            sid: "idp-9",
        };
        assert_eq!(store.end_once("jti-9", ending).await.unwrap(), Some(2));
        assert_eq!(store.end_once("jti-9", ending).await.unwrap(), None);
        let left: bool = redis::cmd("EXISTS")
            .arg(format!("fa:s:{}", unreadable.to_key()))
            .query(&mut raw)
            .unwrap();
        assert!(!left);
    }

    #[tokio::test]
    async fn a_copy_answers_alone_and_every_change_elsewhere_ends_it() {
        let Some(redis) = RedisServer::start(false) else {
            return;
        };
        let (a, b) = (store(&redis).await, store(&redis).await);
        let mut raw = inspect(&redis);

        // The copy answers without Redis: deleting the key behind the stores'
        // backs (no message) leaves A's copy in place. Sessions are saved on A
        // (a store ignores its own messages) so that no late message about
        // the save itself can drop the copy before the change under test.
        let id = SessionId::random();
        a.save(&id, &session("alice", "idp-1")).await.unwrap();
        assert!(a.load(&id).await.unwrap().is_some());
        redis::cmd("DEL")
            .arg(format!("fa:s:{}", id.to_key()))
            .query::<()>(&mut raw)
            .unwrap();
        assert!(
            a.load(&id).await.unwrap().is_some(),
            "a check answered from the copy"
        );

        // remove, remove_user, remove_sid and a changed session on B all
        // reach A through the channel.
        let one = SessionId::random();
        a.save(&one, &session("bob", "idp-2")).await.unwrap();
        assert!(a.load(&one).await.unwrap().is_some());
        b.remove(&one).await.unwrap();
        gone_within_a_second(&a, &one).await;

        let (u1, u2) = (SessionId::random(), SessionId::random());
        a.save(&u1, &session("carol", "idp-3")).await.unwrap();
        a.save(&u2, &session("carol", "idp-4")).await.unwrap();
        assert!(a.load(&u1).await.unwrap().is_some() && a.load(&u2).await.unwrap().is_some());
        assert_eq!(b.remove_user("carol").await.unwrap(), 2);
        gone_within_a_second(&a, &u1).await;
        gone_within_a_second(&a, &u2).await;

        let s = SessionId::random();
        a.save(&s, &session("dave", "idp-5")).await.unwrap();
        assert!(a.load(&s).await.unwrap().is_some());
        assert_eq!(b.remove_sid(Some("dave"), "idp-5").await.unwrap(), 1);
        gone_within_a_second(&a, &s).await;

        let r = SessionId::random();
        a.save(&r, &session("erin", "idp-6")).await.unwrap();
        assert_eq!(
            a.load(&r).await.unwrap().unwrap().identity().login(),
            "erin"
        );
        let mut renamed = session("erin", "idp-6");
        renamed.set_identity(
            Identity::new(
                "erin".into(),
                "erin.renamed".into(),
                "erin".into(),
                "erin".into(),
            )
            .with_sid(Some("idp-6".into())),
        );
        b.save(&r, &renamed).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(1);
        while a.load(&r).await.unwrap().unwrap().identity().login() != "erin.renamed" {
            assert!(Instant::now() < deadline, "A kept the old copy");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn when_redis_goes_away_no_copy_answers() {
        let Some(mut redis) = RedisServer::start(false) else {
            return;
        };
        let a = store(&redis).await;
        let id = SessionId::random();
        a.save(&id, &session("alice", "idp-1")).await.unwrap();
        assert!(a.load(&id).await.unwrap().is_some());
        redis.stop();
        // The copy would live an hour; losing the channel must end it.
        let deadline = Instant::now() + Duration::from_secs(1);
        while a.load(&id).await.is_ok() {
            assert!(
                Instant::now() < deadline,
                "answered from a copy without Redis"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(!a.invalidations_live());
    }

    #[tokio::test]
    async fn without_the_channel_copies_are_dropped_and_every_check_asks_redis() {
        let Some(redis) = RedisServer::start(false) else {
            return;
        };
        let a = Arc::new(store(&redis).await);
        let mut raw = inspect(&redis);
        let id = SessionId::random();
        a.save(&id, &session("alice", "idp-1")).await.unwrap();
        assert!(a.load(&id).await.unwrap().is_some());

        // Cut the subscription, then delete behind its back: A must not
        // answer from its copy any more.
        redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("pubsub")
            .query::<()>(&mut raw)
            .unwrap();
        redis::cmd("DEL")
            .arg(format!("fa:s:{}", id.to_key()))
            .query::<()>(&mut raw)
            .unwrap();
        gone_within_a_second(&a, &id).await;

        // It subscribes again by itself and caches again.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !a.invalidations_live() {
            assert!(Instant::now() < deadline, "never subscribed again");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let again = SessionId::random();
        a.save(&again, &session("bob", "idp-2")).await.unwrap();
        assert!(a.load(&again).await.unwrap().is_some());
        redis::cmd("DEL")
            .arg(format!("fa:s:{}", again.to_key()))
            .query::<()>(&mut raw)
            .unwrap();
        assert!(a.load(&again).await.unwrap().is_some(), "cached again");
    }
}
