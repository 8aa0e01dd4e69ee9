//! Okta groups shared by replicas through Redis (issue 5): first checks spread
//! over three replicas cost one Okta call, a due entry is refreshed by one call
//! for all replicas and the change reaches every one, a user deleted in Okta
//! loses access everywhere, a 429 seen by one replica holds the others back until
//! the reset, and a replica that died holding a fetch lease is replaced. Issue 9:
//! past the TTL the first check on every replica sees a change (groups or a
//! suspension) for one call, active replicas refresh ahead at one call per TTL
//! among them, and an invalidation reaches every replica within a second, also
//! voiding a fetch under way. The Lua steps (lease, publish, block,
//! invalidate) are checked against the real redis-server.
//!
//! A Redis outage cannot be watched through checks: sessions live in the same
//! Redis, so every check answers 503 before groups are looked at (redis.rs).
//! The fallback to asking Okta directly is tested on `GroupsCache` itself.

use std::time::{Duration, Instant};

use forward_auth::groups::{GroupsCache, GroupsError, OktaGroupsClient, RedisGroups, Take};
use forward_auth::policy::Group;
use forward_auth::secret::Secret;
use reqwest::StatusCode;
use tokio::task::JoinSet;

use crate::support::app::{header, spawn_app_for, TestApp, COOKIE_NAME};
use crate::support::redis::RedisServer;
use fake_okta::{everyone, FakeOkta, FakeUser};

const ORIGINAL: &str = "https://app.example.com/private";
const ADMINS_ONLY: &str = "/oauth2/auth?allowed_groups=admins";

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// `count` replicas sharing one Redis and one fake Okta.
async fn replicas(redis: &RedisServer, count: usize, vars: &[(&str, &str)]) -> Vec<TestApp> {
    let okta = FakeOkta::start().await;
    let url = redis.url();
    let mut all_vars = vec![("SESSION_STORE", url.as_str())];
    all_vars.extend_from_slice(vars);
    let mut apps = Vec::new();
    for _ in 0..count {
        apps.push(spawn_app_for(okta.clone(), &all_vars).await);
    }
    apps
}

/// The `Cookie` header of `app`'s browser session, for any replica.
fn cookie_of(app: &TestApp) -> String {
    format!("{COOKIE_NAME}={}", app.session_cookie().expect("signed in"))
}

/// A check at `path` on `app` with that cookie: status and groups header.
async fn check(app: &TestApp, path: &str, cookie: &str) -> (StatusCode, String) {
    let response = reqwest::Client::new()
        .get(app.url(path))
        .header("X-Original-URL", ORIGINAL)
        .header("Cookie", cookie)
        .send()
        .await
        .unwrap();
    (
        response.status(),
        header(&response, "x-auth-request-groups"),
    )
}

/// Checks every 50 ms until `expected` or `within` passed; the last status.
async fn check_until(
    app: &TestApp,
    path: &str,
    cookie: &str,
    expected: StatusCode,
    within: Duration,
) -> StatusCode {
    let deadline = Instant::now() + within;
    loop {
        let (status, _) = check(app, path, cookie).await;
        if status == expected || Instant::now() >= deadline {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn sixty_first_checks_spread_over_three_replicas_cost_one_okta_call() {
    let Some(redis) = RedisServer::start(false) else {
        return;
    };
    let apps = replicas(&redis, 3, &[]).await;
    let okta = apps[0].okta.clone();
    let alice = okta.user("alice");
    // The prefetch at sign-in fails, so nobody knows alice's groups yet.
    okta.set_groups_failure(Some(500));
    apps[0].login_as("alice").await;
    let cookie = cookie_of(&apps[0]);
    assert_eq!(
        okta.groups_calls_for(&alice.id),
        1,
        "the prefetch was tried"
    );
    // That failure is shared for a moment: another replica does not retry it.
    let (status, _) = check(&apps[1], "/oauth2/auth", &cookie).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        okta.groups_calls_for(&alice.id),
        1,
        "a failure one replica just met is not asked again by another"
    );
    // Failures are remembered for 2 s (locally and in Redis); let them lapse.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    okta.set_groups_failure(None);
    // Slow enough that every check below arrives while the one call is in flight.
    okta.set_groups_delay(Duration::from_millis(300));

    let mut checks = JoinSet::new();
    for i in 0..60 {
        let url = apps[i % 3].url("/oauth2/auth");
        let cookie = cookie.clone();
        checks.spawn(async move {
            let response = reqwest::Client::new()
                .get(url)
                .header("X-Original-URL", ORIGINAL)
                .header("Cookie", cookie)
                .send()
                .await
                .unwrap();
            (
                response.status(),
                header(&response, "x-auth-request-groups"),
            )
        });
    }
    let answers = checks.join_all().await;
    assert_eq!(answers.len(), 60);
    for (status, groups) in &answers {
        assert_eq!(*status, StatusCode::OK, "{answers:?}");
        assert_eq!(groups, "Everyone,admins");
    }
    assert_eq!(
        okta.groups_calls_for(&alice.id),
        2,
        "60 first checks on 3 replicas: one Okta call besides the failed prefetch"
    );
}

#[tokio::test]
async fn after_the_ttl_one_call_refreshes_every_replica_and_a_change_reaches_all() {
    let Some(redis) = RedisServer::start(false) else {
        return;
    };
    let apps = replicas(&redis, 3, &[("GROUPS_CACHE_TTL", "3s")]).await;
    let okta = apps[0].okta.clone();
    let alice = okta.user("alice");
    apps[0].login_as("alice").await;
    let signed_in = Instant::now();
    let cookie = cookie_of(&apps[0]);
    for app in &apps {
        assert_eq!(
            check(app, ADMINS_ONLY, &cookie).await,
            (StatusCode::OK, "Everyone,admins".to_string())
        );
    }
    assert_eq!(
        okta.groups_calls_for(&alice.id),
        1,
        "the other replicas took the sign-in's answer from Redis"
    );

    okta.set_groups(&alice.id, vec![everyone()]);
    // Refreshes overlap: each replica's starts while the first is in flight.
    okta.set_groups_delay(Duration::from_millis(300));
    tokio::time::sleep(
        (signed_in + Duration::from_millis(3100)).saturating_duration_since(Instant::now()),
    )
    .await;
    let mut polls = JoinSet::new();
    for app in &apps {
        let (address, cookie) = (app.address.clone(), cookie.clone());
        polls.spawn(async move {
            let deadline = Instant::now() + Duration::from_millis(2500);
            loop {
                let status = reqwest::Client::new()
                    .get(format!("{address}{ADMINS_ONLY}"))
                    .header("X-Original-URL", ORIGINAL)
                    .header("Cookie", &cookie)
                    .send()
                    .await
                    .unwrap()
                    .status();
                if status != StatusCode::OK || Instant::now() >= deadline {
                    return status;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
    }
    let seen = polls.join_all().await;
    assert_eq!(
        seen,
        vec![StatusCode::FORBIDDEN; 3],
        "the removed group must be noticed on every replica"
    );
    assert_eq!(
        okta.groups_calls_for(&alice.id),
        2,
        "three due replicas, one refresh call among them"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(okta.groups_calls_for(&alice.id), 2, "and no late one");
}

#[tokio::test]
async fn a_user_deleted_in_okta_loses_access_on_every_replica_for_one_call() {
    let Some(redis) = RedisServer::start(false) else {
        return;
    };
    let apps = replicas(&redis, 3, &[("GROUPS_CACHE_TTL", "3s")]).await;
    let okta = apps[0].okta.clone();
    let alice = okta.user("alice");
    apps[0].login_as("alice").await;
    let signed_in = Instant::now();
    let cookie = cookie_of(&apps[0]);
    for app in &apps[..2] {
        assert_eq!(check(app, "/oauth2/auth", &cookie).await.0, StatusCode::OK);
    }
    okta.delete_user(&alice.id);
    okta.set_groups_delay(Duration::from_millis(300));
    tokio::time::sleep(
        (signed_in + Duration::from_millis(3100)).saturating_duration_since(Instant::now()),
    )
    .await;
    for app in &apps[..2] {
        assert_eq!(
            check_until(
                app,
                "/oauth2/auth",
                &cookie,
                StatusCode::FORBIDDEN,
                Duration::from_millis(2000)
            )
            .await,
            StatusCode::FORBIDDEN,
            "a deleted user kept access"
        );
    }
    // A replica that never knew alice learns from Redis that Okta does not
    // know her: no stale groups from before, and no call of its own.
    assert_eq!(
        check(&apps[2], "/oauth2/auth", &cookie).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        okta.groups_calls_for(&alice.id),
        2,
        "the sign-in's call and one 404 for all replicas"
    );
}

#[tokio::test]
async fn a_429_seen_by_one_replica_holds_the_others_back_until_the_reset() {
    let Some(redis) = RedisServer::start(false) else {
        return;
    };
    let apps = replicas(&redis, 2, &[]).await;
    let (a, b) = (&apps[0], &apps[1]);
    let okta = a.okta.clone();
    a.login_as("alice").await;
    let alice_cookie = cookie_of(a);

    let until = now_secs() + 4;
    okta.set_rate_limited(Some(until));
    let (_, bob_browser) = a.new_browser();
    a.login_in(&bob_browser, "bob").await;
    let bob = okta.user("bob");
    assert_eq!(okta.groups_calls_for(&bob.id), 1, "replica A met the 429");
    let shared = RedisGroups::new(&redis.url()).unwrap();
    assert_eq!(
        shared.blocked_until().await.unwrap(),
        until,
        "and shared it"
    );

    // Replica B is not told by Okta; it must not ask before the reset.
    let carol = okta.user("carol");
    let (carol_jar, carol_browser) = b.new_browser();
    b.login_in(&carol_browser, "carol").await;
    let carol_cookie = format!(
        "{COOKIE_NAME}={}",
        crate::support::app::session_cookie_in(&carol_jar, &b.address).expect("carol signed in")
    );
    for _ in 0..3 {
        let (status, _) = check(b, "/oauth2/auth", &carol_cookie).await;
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "unknown groups are never let through"
        );
    }
    assert_eq!(
        okta.groups_calls_for(&carol.id),
        0,
        "replica B called Okta during a back-off replica A had seen"
    );
    // Those already known keep working, on both replicas (B learns alice's
    // groups from Redis, without Okta).
    let calls = okta.groups_calls();
    for app in [b, a] {
        assert_eq!(
            check(app, "/oauth2/auth", &alice_cookie).await,
            (StatusCode::OK, "Everyone,admins".to_string())
        );
    }
    assert_eq!(okta.groups_calls(), calls);

    // After the reset, B asks Okta again.
    while now_secs() <= until {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        check_until(
            b,
            "/oauth2/auth",
            &carol_cookie,
            StatusCode::OK,
            Duration::from_secs(4)
        )
        .await,
        StatusCode::OK
    );
    assert_eq!(okta.groups_calls_for(&carol.id), 1);
}

fn cache_for(okta: &FakeOkta, redis_url: &str, ttl: Duration) -> GroupsCache {
    let client = OktaGroupsClient::new(
        reqwest::Client::new(),
        &okta.org_issuer(),
        Secret::new(FakeOkta::API_TOKEN.into()),
    )
    .unwrap();
    GroupsCache::with_redis(client, ttl, RedisGroups::new(redis_url).unwrap())
}

fn names(groups: &forward_auth::groups::UserGroups) -> &str {
    groups.rendered.as_str()
}

#[tokio::test]
async fn a_replica_that_died_holding_the_lease_is_replaced_when_the_lease_expires() {
    let Some(redis) = RedisServer::start(false) else {
        return;
    };
    let okta = FakeOkta::start().await;
    let alice = okta.user("alice");
    // A replica took alice's lease and died: nothing will be published.
    let shared = RedisGroups::new(&redis.url()).unwrap();
    let taken = shared
        .take(&alice.id, "dead-replica", Duration::from_millis(800), 0)
        .await
        .unwrap();
    assert_eq!(taken, Take::Leased { blocked_until: 0 });

    let cache = cache_for(&okta, &redis.url(), Duration::from_secs(60));
    let started = Instant::now();
    let groups = cache
        .groups_of(&alice.id)
        .await
        .expect("groups after the takeover");
    assert_eq!(names(&groups), "Everyone,admins");
    assert!(
        started.elapsed() >= Duration::from_millis(700),
        "the lease was not respected: {:?}",
        started.elapsed()
    );
    assert_eq!(okta.groups_calls_for(&alice.id), 1);
    // What the new holder published serves the next replica.
    let other = cache_for(&okta, &redis.url(), Duration::from_secs(60));
    assert_eq!(
        names(&other.groups_of(&alice.id).await.unwrap()),
        "Everyone,admins"
    );
    assert_eq!(okta.groups_calls_for(&alice.id), 1);
}

#[tokio::test]
async fn while_redis_is_down_each_replica_asks_okta_itself_and_sharing_resumes_after() {
    let Some(mut redis) = RedisServer::start(false) else {
        return;
    };
    let okta = FakeOkta::start().await;
    let (alice, bob, carol) = (okta.user("alice"), okta.user("bob"), okta.user("carol"));
    let ttl = Duration::from_secs(60);
    let a = cache_for(&okta, &redis.url(), ttl);
    let b = cache_for(&okta, &redis.url(), ttl);
    a.groups_of(&alice.id).await.unwrap();
    b.groups_of(&alice.id).await.unwrap();
    assert_eq!(
        okta.groups_calls_for(&alice.id),
        1,
        "shared while Redis answers"
    );

    redis.stop();
    let started = Instant::now();
    for cache in [&a, &b] {
        let groups = cache
            .groups_of(&bob.id)
            .await
            .expect("groups without Redis");
        assert_eq!(names(&groups), "Everyone,staff");
    }
    assert_eq!(okta.groups_calls_for(&bob.id), 2, "one call per replica");
    // Concurrent misses on one replica are still one call.
    okta.set_groups_delay(Duration::from_millis(200));
    let mut lookups = JoinSet::new();
    for _ in 0..10 {
        let (b, id) = (b.clone(), carol.id.clone());
        lookups.spawn(async move {
            b.groups_of(&id)
                .await
                .map(|g| g.rendered.as_str().to_owned())
        });
    }
    for answer in lookups.join_all().await {
        assert_eq!(answer.as_deref(), Ok("Everyone"));
    }
    assert_eq!(okta.groups_calls_for(&carol.id), 1);
    // Known users never needed Redis.
    assert_eq!(
        names(&a.groups_of(&alice.id).await.unwrap()),
        "Everyone,admins"
    );
    assert_eq!(
        names(&b.groups_of(&alice.id).await.unwrap()),
        "Everyone,admins"
    );
    assert_eq!(okta.groups_calls_for(&alice.id), 1);
    let without_redis = started.elapsed();
    assert!(
        without_redis < Duration::from_secs(2),
        "a dead Redis slowed lookups down: {without_redis:?}"
    );

    // Back: after the pause, replicas share again.
    redis.restart();
    okta.set_groups_delay(Duration::ZERO);
    tokio::time::sleep(Duration::from_millis(5200)).await;
    let dave = FakeUser::new("dave", &["ops"]);
    okta.add_user(dave.clone());
    a.groups_of(&dave.id).await.unwrap();
    assert_eq!(names(&b.groups_of(&dave.id).await.unwrap()), "Everyone,ops");
    assert_eq!(okta.groups_calls_for(&dave.id), 1, "sharing resumed");
}

fn group(name: &str) -> Group {
    Group {
        id: format!("00g{name}"),
        name: name.into(),
    }
}

#[tokio::test]
async fn a_lease_goes_to_one_taker_is_freed_only_by_it_and_expires_by_itself() {
    let Some(redis) = RedisServer::start(false) else {
        return;
    };
    let shared = RedisGroups::new(&redis.url()).unwrap();
    let hold = Duration::from_millis(500);
    assert_eq!(
        shared.take("u", "a", hold, 0).await.unwrap(),
        Take::Leased { blocked_until: 0 }
    );
    assert_eq!(
        shared.take("u", "a", hold, 0).await.unwrap(),
        Take::Leased { blocked_until: 0 },
        "taking it again is harmless for its holder (a retried command)"
    );
    assert_eq!(shared.take("u", "b", hold, 0).await.unwrap(), Take::Held);
    assert_eq!(
        shared.take("other-user", "b", hold, 0).await.unwrap(),
        Take::Leased { blocked_until: 0 },
        "leases are per user"
    );
    assert!(
        !shared.release("u", "b", None, hold).await.unwrap(),
        "only the holder can release"
    );
    assert_eq!(shared.take("u", "b", hold, 0).await.unwrap(), Take::Held);
    assert!(shared.release("u", "a", None, hold).await.unwrap());
    assert_eq!(
        shared.take("u", "b", hold, 0).await.unwrap(),
        Take::Leased { blocked_until: 0 },
        "a released lease is free"
    );

    // A failed fetch leaves its outcome in the lease's place, for a while.
    let marker_for = Duration::from_millis(300);
    assert!(shared
        .release("u", "b", Some(&GroupsError::RateLimited), marker_for)
        .await
        .unwrap());
    assert_eq!(
        shared.take("u", "c", hold, 0).await.unwrap(),
        Take::Failed(GroupsError::RateLimited)
    );
    assert!(
        !shared.release("u", "c", None, hold).await.unwrap(),
        "a marker is nobody's lease"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        shared.take("u", "c", hold, 0).await.unwrap(),
        Take::Leased { blocked_until: 0 }
    );
    assert!(shared
        .release(
            "u",
            "c",
            Some(&GroupsError::Unavailable("x".into())),
            marker_for
        )
        .await
        .unwrap());
    assert!(matches!(
        shared.take("u", "d", hold, 0).await.unwrap(),
        Take::Failed(GroupsError::Unavailable(_))
    ));
    tokio::time::sleep(Duration::from_millis(400)).await;

    // A holder that never releases loses the lease when it expires.
    assert_eq!(
        shared.take("u", "d", hold, 0).await.unwrap(),
        Take::Leased { blocked_until: 0 }
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        shared.take("u", "e", hold, 0).await.unwrap(),
        Take::Leased { blocked_until: 0 }
    );
    assert!(
        !shared.release("u", "d", None, hold).await.unwrap(),
        "the late holder cannot free its successor's lease"
    );
    assert_eq!(shared.take("u", "f", hold, 0).await.unwrap(), Take::Held);
}

#[tokio::test]
async fn an_entry_counts_only_when_recent_enough_and_a_newer_one_is_never_overwritten() {
    let Some(redis) = RedisServer::start(false) else {
        return;
    };
    let shared = RedisGroups::new(&redis.url()).unwrap();
    let keep = Duration::from_secs(60);
    let hold = Duration::from_secs(1);
    let groups = vec![group("Everyone"), group("admins")];
    assert_eq!(
        shared.take("u", "p", keep, 0).await.unwrap(),
        Take::Leased { blocked_until: 0 }
    );
    assert!(shared
        .publish("u", "p", 1000, Ok(&groups), keep)
        .await
        .unwrap());
    assert!(shared.release("u", "p", None, hold).await.unwrap());
    let Take::Entry(entry) = shared.take("u", "t", hold, 1000).await.unwrap() else {
        panic!("an entry fetched at the limit counts");
    };
    assert_eq!(
        (entry.fetched_at_ms, entry.groups),
        (1000, Ok(groups.clone()))
    );
    assert_eq!(
        shared.take("u", "t", hold, 1001).await.unwrap(),
        Take::Leased { blocked_until: 0 },
        "an older entry does not count: the taker gets the lease instead"
    );
    assert!(
        !shared.publish("u", "t", 900, Ok(&[]), keep).await.unwrap(),
        "an answer older than the stored one is dropped"
    );
    assert!(shared
        .publish("u", "t", 2000, Err(&GroupsError::UserNotFound), keep)
        .await
        .unwrap());
    assert!(shared.release("u", "t", None, hold).await.unwrap());
    let Take::Entry(entry) = shared.take("u", "t", hold, 0).await.unwrap() else {
        panic!("the newer entry");
    };
    assert_eq!(
        (entry.fetched_at_ms, entry.groups),
        (2000, Err(GroupsError::UserNotFound)),
        "Okta does not know u"
    );

    // Only the lease holder publishes.
    assert!(
        !shared
            .publish("w", "nobody", now_ms(), Ok(&groups), keep)
            .await
            .unwrap(),
        "a publisher without the lease is refused"
    );
    assert_eq!(
        shared.take("w", "t", hold, 0).await.unwrap(),
        Take::Leased { blocked_until: 0 }
    );

    // Entries expire in Redis after `keep`.
    assert_eq!(
        shared.take("v", "p", hold, 0).await.unwrap(),
        Take::Leased { blocked_until: 0 }
    );
    assert!(shared
        .publish("v", "p", now_ms(), Ok(&groups), Duration::from_millis(300))
        .await
        .unwrap());
    assert!(shared.release("v", "p", None, hold).await.unwrap());
    assert!(matches!(
        shared.take("v", "t", hold, 0).await.unwrap(),
        Take::Entry(_)
    ));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        shared.take("v", "t", hold, 0).await.unwrap(),
        Take::Leased { blocked_until: 0 }
    );
}

#[tokio::test]
async fn an_invalidation_forgets_the_shared_answer_and_voids_the_fetch_under_way() {
    let Some(redis) = RedisServer::start(false) else {
        return;
    };
    let shared = RedisGroups::new(&redis.url()).unwrap();
    let keep = Duration::from_secs(60);
    let groups = vec![group("Everyone"), group("admins")];
    shared.take("u", "a", keep, 0).await.unwrap();
    assert!(shared
        .publish("u", "a", now_ms(), Ok(&groups), keep)
        .await
        .unwrap());
    assert!(shared.release("u", "a", None, keep).await.unwrap());
    // Replica B is fetching u again when the invalidation comes.
    assert_eq!(
        shared.take("u", "b", keep, now_ms() + 1).await.unwrap(),
        Take::Leased { blocked_until: 0 }
    );
    shared.invalidate("u", "origin").await.unwrap();
    assert_eq!(
        shared.take("u", "c", keep, 0).await.unwrap(),
        Take::Leased { blocked_until: 0 },
        "no answer from before, and the lease is free for a fresh fetch"
    );
    assert!(
        !shared
            .publish("u", "b", now_ms(), Ok(&groups), keep)
            .await
            .unwrap(),
        "the fetch that began before the invalidation is not shared"
    );
    assert!(!shared.release("u", "b", None, keep).await.unwrap());
    assert!(shared
        .publish("u", "c", now_ms(), Ok(&[]), keep)
        .await
        .unwrap());
}

#[tokio::test]
async fn the_okta_block_only_rises_reaches_lease_takers_and_ends_at_its_instant() {
    let Some(redis) = RedisServer::start(false) else {
        return;
    };
    let shared = RedisGroups::new(&redis.url()).unwrap();
    assert_eq!(shared.blocked_until().await.unwrap(), 0);
    let now = now_secs();
    assert_eq!(shared.raise_block(now + 1).await.unwrap(), now + 1);
    assert_eq!(
        shared
            .take("u", "t", Duration::from_millis(100), 0)
            .await
            .unwrap(),
        Take::Leased {
            blocked_until: now + 1
        },
        "the one about to call Okta learns of the block"
    );
    while now_secs() <= now + 1 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        shared.blocked_until().await.unwrap(),
        0,
        "gone at its instant"
    );

    let now = now_secs();
    assert_eq!(shared.raise_block(now + 100).await.unwrap(), now + 100);
    assert_eq!(
        shared.raise_block(now + 50).await.unwrap(),
        now + 100,
        "never lowered"
    );
    assert_eq!(shared.raise_block(now + 200).await.unwrap(), now + 200);
    assert_eq!(shared.blocked_until().await.unwrap(), now + 200);
    let client = ::redis::Client::open(redis.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let ttl: i64 = ::redis::cmd("TTL")
        .arg("fa:okta:blocked_until")
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(
        (198..=200).contains(&ttl),
        "expires at the raised instant: TTL {ttl}"
    );
}

/// Asks `cache` for the user's groups until they read `expected` or `within`
/// has passed; the last answer.
async fn groups_until(
    cache: &GroupsCache,
    user_id: &str,
    expected: &str,
    within: Duration,
) -> String {
    let deadline = Instant::now() + within;
    loop {
        let seen = cache
            .groups_of(user_id)
            .await
            .map(|g| g.rendered.as_str().to_owned())
            .unwrap_or_else(|e| e.to_string());
        if seen == expected || Instant::now() >= deadline {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_invalidation_on_one_replica_makes_every_replica_fetch_afresh_within_a_second() {
    let Some(redis) = RedisServer::start(false) else {
        return;
    };
    let okta = FakeOkta::start().await;
    let alice = okta.user("alice");
    let ttl = Duration::from_secs(3600);
    let caches: Vec<GroupsCache> = (0..3)
        .map(|_| cache_for(&okta, &redis.url(), ttl))
        .collect();
    // Let every replica subscribe before anything is cached.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for cache in &caches {
        assert_eq!(
            names(&cache.groups_of(&alice.id).await.unwrap()),
            "Everyone,admins"
        );
    }
    assert_eq!(okta.groups_calls_for(&alice.id), 1);

    okta.set_groups(&alice.id, vec![everyone()]);
    assert_eq!(
        names(&caches[2].groups_of(&alice.id).await.unwrap()),
        "Everyone,admins",
        "an hour-long TTL: nothing would ask Okta again"
    );
    caches[0].invalidate(&alice.id).await.unwrap();
    let invalidated = Instant::now();
    assert_eq!(
        names(&caches[0].groups_of(&alice.id).await.unwrap()),
        "Everyone",
        "the invalidating replica's next lookup asks Okta"
    );
    for cache in &caches[1..] {
        assert_eq!(
            groups_until(cache, &alice.id, "Everyone", Duration::from_secs(1)).await,
            "Everyone",
            "another replica still answers from before the invalidation"
        );
    }
    assert!(invalidated.elapsed() < Duration::from_secs(1));
    assert_eq!(
        okta.groups_calls_for(&alice.id),
        2,
        "one fresh Okta call for the three replicas"
    );
}

#[tokio::test]
async fn a_fetch_under_way_when_the_invalidation_comes_is_not_kept_on_any_replica() {
    let Some(redis) = RedisServer::start(false) else {
        return;
    };
    let okta = FakeOkta::start().await;
    let bob = okta.user("bob");
    let ttl = Duration::from_secs(3600);
    let (a, b, c) = (
        cache_for(&okta, &redis.url(), ttl),
        cache_for(&okta, &redis.url(), ttl),
        cache_for(&okta, &redis.url(), ttl),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    okta.set_groups_delay(Duration::from_millis(600));
    let lookup = {
        let (a, id) = (a.clone(), bob.id.clone());
        tokio::spawn(async move {
            a.groups_of(&id)
                .await
                .map(|g| g.rendered.as_str().to_owned())
        })
    };
    // The call is in flight at Okta when the invalidation comes from B.
    let deadline = Instant::now() + Duration::from_secs(5);
    while okta.groups_calls_for(&bob.id) == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    b.invalidate(&bob.id).await.unwrap();
    okta.set_groups_delay(Duration::ZERO);
    assert_eq!(lookup.await.unwrap().as_deref(), Ok("Everyone,staff"));
    assert_eq!(
        okta.groups_calls_for(&bob.id),
        2,
        "the answer begun before the invalidation was replaced by a fresh call"
    );
    for cache in [&a, &b, &c] {
        assert_eq!(
            names(&cache.groups_of(&bob.id).await.unwrap()),
            "Everyone,staff"
        );
    }
    assert_eq!(
        okta.groups_calls_for(&bob.id),
        2,
        "and the fresh answer serves every replica"
    );
}

#[tokio::test]
async fn past_the_ttl_the_first_check_on_every_replica_sees_the_change_for_one_okta_call() {
    let Some(redis) = RedisServer::start(false) else {
        return;
    };
    let apps = replicas(&redis, 3, &[("GROUPS_CACHE_TTL", "2s")]).await;
    let okta = apps[0].okta.clone();
    let (alice, bob) = (okta.user("alice"), okta.user("bob"));
    apps[0].login_as("alice").await;
    let (bob_jar, bob_browser) = apps[0].new_browser();
    apps[0].login_in(&bob_browser, "bob").await;
    let signed_in = Instant::now();
    let alice_cookie = cookie_of(&apps[0]);
    let bob_cookie = format!(
        "{COOKIE_NAME}={}",
        crate::support::app::session_cookie_in(&bob_jar, &apps[0].address).expect("bob signed in")
    );
    for app in &apps {
        assert_eq!(
            check(app, ADMINS_ONLY, &alice_cookie).await.0,
            StatusCode::OK
        );
        assert_eq!(
            check(app, "/oauth2/auth", &bob_cookie).await.0,
            StatusCode::OK
        );
    }
    okta.set_groups(&alice.id, vec![everyone()]);
    okta.set_status(&bob.id, "SUSPENDED");
    tokio::time::sleep(
        (signed_in + Duration::from_millis(2100)).saturating_duration_since(Instant::now()),
    )
    .await;
    for app in &apps {
        assert_eq!(
            check(app, ADMINS_ONLY, &alice_cookie).await.0,
            StatusCode::FORBIDDEN,
            "a replica's first check after the TTL used the old groups"
        );
        assert_eq!(
            check(app, "/oauth2/auth", &bob_cookie).await.0,
            StatusCode::FORBIDDEN,
            "a replica's first check after the TTL let a suspended user in"
        );
    }
    for user in [&alice, &bob] {
        assert_eq!(
            (
                okta.groups_calls_for(&user.id),
                okta.user_calls_for(&user.id)
            ),
            (2, 2),
            "the sign-in's calls and one lookup for all replicas"
        );
    }
}

#[tokio::test]
async fn refresh_ahead_across_replicas_costs_one_call_per_ttl_for_all_of_them() {
    let Some(redis) = RedisServer::start(false) else {
        return;
    };
    let ttl = Duration::from_secs(3);
    let apps = replicas(&redis, 3, &[("GROUPS_CACHE_TTL", "3s")]).await;
    let okta = apps[0].okta.clone();
    let alice = okta.user("alice");
    apps[0].login_as("alice").await;
    let signed_in = Instant::now();
    let cookie = cookie_of(&apps[0]);
    let mut i = 0;
    while Instant::now() < signed_in + 3 * ttl {
        let (status, _) = check(&apps[i % 3], "/oauth2/auth", &cookie).await;
        assert_eq!(status, StatusCode::OK);
        i += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let times = okta.groups_call_times_for(&alice.id);
    assert!(
        (3..=4).contains(&times.len()),
        "{} groups calls in three TTLs on three active replicas",
        times.len()
    );
    for pair in times.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap < ttl && gap > ttl / 2,
            "calls {gap:?} apart: a replica waited, or refreshed on its own"
        );
    }
}

#[tokio::test]
async fn a_replica_that_cannot_hear_invalidations_confirms_its_answers_in_redis_after_a_second() {
    let Some(redis) = RedisServer::start(false) else {
        return;
    };
    let okta = FakeOkta::start().await;
    let alice = okta.user("alice");
    let ttl = Duration::from_secs(3600);
    let (a, b) = (
        cache_for(&okta, &redis.url(), ttl),
        cache_for(&okta, &redis.url(), ttl),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    for cache in [&a, &b] {
        assert_eq!(
            names(&cache.groups_of(&alice.id).await.unwrap()),
            "Everyone,admins"
        );
    }
    // B loses its subscription and cannot get it back (SUBSCRIBE refused),
    // so it will not hear A's invalidation.
    let client = ::redis::Client::open(redis.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = ::redis::cmd("ACL")
        .arg("SETUSER")
        .arg("default")
        .arg("-subscribe")
        .query_async(&mut connection)
        .await
        .unwrap();
    let _: u64 = ::redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut connection)
        .await
        .unwrap();
    okta.set_groups(&alice.id, vec![everyone()]);
    a.invalidate(&alice.id).await.unwrap();
    // An hour-long TTL: only asking Redis again can end B's old answer.
    assert_eq!(
        groups_until(&b, &alice.id, "Everyone", Duration::from_secs(3)).await,
        "Everyone",
        "a replica without the invalidation channel kept a voided answer"
    );
    assert_eq!(okta.groups_calls_for(&alice.id), 2);
    // Still deaf, but with a confirmed answer: no further Okta call.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(names(&b.groups_of(&alice.id).await.unwrap()), "Everyone");
    assert_eq!(okta.groups_calls_for(&alice.id), 2);
}
