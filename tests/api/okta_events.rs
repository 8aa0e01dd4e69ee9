//! `GET,POST /oauth2/okta/events` against the real server and the fake Okta's
//! event-hook deliveries: 404 without `OKTA_EVENT_HOOK_SECRET`; Okta's
//! verification; a wrong secret, a malformed delivery or a huge body is a 4xx
//! that changes nothing; deactivation, suspension, session ends and removal
//! from our app end the user's sessions, on every replica of a real
//! redis-server; a repeated delivery is applied once (also across replicas);
//! a late event never ends a session begun after it; hundreds of events in
//! one delivery are answered at once. The times from delivery to the first
//! refused check are printed.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::app::{spawn_app_for, spawn_app_with, TestApp, COOKIE_NAME};
use crate::support::redis::RedisServer;
use fake_okta::FakeOkta;

const ORIGINAL: &str = "https://app.example.com/";
const SECRET: &str = "event-hook-secret-0123456789";
/// Generous: the machine may be loaded. The figures printed are the real ones.
const PATIENCE: Duration = Duration::from_secs(10);

fn now() -> u64 {
    forward_auth::clock::now()
}

async fn app_with_hook(extra: &[(&str, &str)]) -> TestApp {
    let mut vars = vec![("OKTA_EVENT_HOOK_SECRET", SECRET)];
    vars.extend_from_slice(extra);
    let app = spawn_app_with(&vars).await;
    register(&app).await;
    app
}

async fn register(app: &TestApp) {
    app.okta
        .register_event_hook(&app.url("/oauth2/okta/events"), SECRET)
        .await
        .expect("the service answers Okta's verification");
}

fn hook_url(app: &TestApp) -> String {
    app.url("/oauth2/okta/events")
}

/// Signs `login` in with a fresh browser; its cookie header.
async fn signed_in(app: &TestApp, login: &str) -> String {
    let (jar, browser) = app.new_browser();
    app.login_in(&browser, login).await;
    let value = crate::support::app::session_cookie_in(&jar, &app.address).expect("signed in");
    format!("{COOKIE_NAME}={value}")
}

async fn check(app: &TestApp, cookie: &str) -> StatusCode {
    app.auth_with_cookie(cookie, ORIGINAL).await.status()
}

/// Checks until refused (401); how long after `since` that was.
async fn refused_after(app: &TestApp, cookie: &str, since: Instant) -> Duration {
    loop {
        let status = check(app, cookie).await;
        if status == StatusCode::UNAUTHORIZED {
            return since.elapsed();
        }
        assert_eq!(status, StatusCode::OK, "unexpected answer");
        assert!(
            since.elapsed() < PATIENCE,
            "still accepted {:?} after the event",
            since.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Delivers a session-ending event for a sentinel user and waits until it
/// took effect: the worker applies in order of arrival, so whatever was
/// delivered before it has been handled by then.
async fn settle(app: &TestApp) {
    let carol = app.okta.user("carol");
    let cookie = signed_in(app, "carol").await;
    let event = app.okta.event("user.session.end", &carol.id, vec![]);
    assert_eq!(app.okta.deliver_events(vec![event]).await, StatusCode::OK);
    refused_after(app, &cookie, Instant::now()).await;
}

#[tokio::test]
async fn without_a_secret_the_endpoint_does_not_exist() {
    let app = spawn_app_with(&[]).await;
    let get = app
        .client
        .get(hook_url(&app))
        .header("X-Okta-Verification-Challenge", "abc")
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), StatusCode::NOT_FOUND);
    let bob = app.okta.user("bob");
    let event = app.okta.event("user.lifecycle.deactivate", &bob.id, vec![]);
    assert_eq!(
        app.okta
            .deliver_events_to(&hook_url(&app), SECRET, vec![event])
            .await,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn okta_s_verification_challenge_is_echoed_as_json() {
    let app = app_with_hook(&[]).await;
    let answer = app
        .client
        .get(hook_url(&app))
        .header("X-Okta-Verification-Challenge", "We8rNh4-XV9sxyz")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(
        answer.json::<Value>().await.unwrap(),
        json!({ "verification": "We8rNh4-XV9sxyz" })
    );
    let without = app.client.get(hook_url(&app)).send().await.unwrap();
    assert_eq!(without.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn deactivating_a_user_ends_their_sessions_and_no_one_else_s() {
    let app = app_with_hook(&[]).await;
    let bob = app.okta.user("bob");
    let (laptop, phone) = (signed_in(&app, "bob").await, signed_in(&app, "bob").await);
    let alice = signed_in(&app, "alice").await;
    assert_eq!(check(&app, &laptop).await, StatusCode::OK);

    let sent = Instant::now();
    assert_eq!(app.okta.deactivate(&bob.id).await, Some(StatusCode::OK));
    let took = refused_after(&app, &laptop, sent).await;
    eprintln!("one instance: event hook delivery to the first refused check: {took:?}");
    assert_eq!(check(&app, &phone).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        check(&app, &alice).await,
        StatusCode::OK,
        "alice keeps hers"
    );
}

#[tokio::test]
async fn every_session_ending_event_type_ends_the_user_s_sessions() {
    let app = app_with_hook(&[]).await;
    let bob = app.okta.user("bob");
    for event_type in [
        "user.lifecycle.suspend",
        "user.lifecycle.delete.initiated",
        "user.session.clear",
        "user.session.end",
        "application.user_membership.remove",
    ] {
        let cookie = signed_in(&app, "bob").await;
        let targets = match event_type {
            "application.user_membership.remove" => vec![FakeOkta::app_target(FakeOkta::CLIENT_ID)],
            _ => vec![],
        };
        let event = app.okta.event(event_type, &bob.id, targets);
        assert_eq!(app.okta.deliver_events(vec![event]).await, StatusCode::OK);
        refused_after(&app, &cookie, Instant::now()).await;
    }
}

#[tokio::test]
async fn a_removal_from_another_app_and_unknown_event_types_change_nothing() {
    let app = app_with_hook(&[]).await;
    let bob = app.okta.user("bob");
    let cookie = signed_in(&app, "bob").await;
    let events = vec![
        app.okta.event(
            "application.user_membership.remove",
            &bob.id,
            vec![FakeOkta::app_target("0oa-some-other-app")],
        ),
        app.okta
            .event("user.account.update_profile", &bob.id, vec![]),
        json!({ "eventType": "system.something.new", "uuid": "9f1c2d7e" }),
    ];
    assert_eq!(app.okta.deliver_events(events).await, StatusCode::OK);
    settle(&app).await;
    assert_eq!(check(&app, &cookie).await, StatusCode::OK);
}

#[tokio::test]
async fn a_wrong_secret_or_a_bad_delivery_is_a_4xx_that_changes_nothing() {
    let app = app_with_hook(&[]).await;
    let bob = app.okta.user("bob");
    let cookie = signed_in(&app, "bob").await;
    let url = hook_url(&app);
    let end_bob = || app.okta.event("user.session.end", &bob.id, vec![]);

    for wrong in [
        "",
        "event-hook-secret-012345678",
        "Bearer event-hook-secret-0123456789",
    ] {
        assert_eq!(
            app.okta
                .deliver_events_to(&url, wrong, vec![end_bob()])
                .await,
            StatusCode::UNAUTHORIZED,
            "Authorization {wrong:?}"
        );
    }
    let no_auth = app
        .client
        .post(&url)
        .json(&json!({"data": {"events": [end_bob()]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(no_auth.status(), StatusCode::UNAUTHORIZED);

    // A bad event refuses the whole delivery: the good one with it is not applied.
    let mut no_target = end_bob();
    no_target["target"] = json!([]);
    let mut no_published = end_bob();
    no_published.as_object_mut().unwrap().remove("published");
    for bad in [no_target, no_published] {
        assert_eq!(
            app.okta
                .deliver_events_to(&url, SECRET, vec![end_bob(), bad])
                .await,
            StatusCode::BAD_REQUEST
        );
    }
    let post = |body: Vec<u8>| {
        app.client
            .post(&url)
            .header("Authorization", SECRET)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
    };
    for body in [&b"{not json"[..], b"{}", br#"{"data":{"events":"x"}}"#] {
        let answer = post(body.to_vec()).await.unwrap();
        assert_eq!(
            answer.status(),
            StatusCode::BAD_REQUEST,
            "{}",
            String::from_utf8_lossy(body)
        );
        let text = answer.text().await.unwrap();
        assert!(!text.contains("not json"), "the body is not echoed: {text}");
    }
    let huge = format!(
        r#"{{"data":{{"events":[{}]}},"pad":"{}"}}"#,
        end_bob(),
        "x".repeat(2 * 1024 * 1024)
    );
    assert_eq!(
        post(huge.into_bytes()).await.unwrap().status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );

    settle(&app).await;
    assert_eq!(
        check(&app, &cookie).await,
        StatusCode::OK,
        "nothing was applied"
    );
}

#[tokio::test]
async fn a_repeated_delivery_is_applied_once() {
    let app = app_with_hook(&[]).await;
    let bob = app.okta.user("bob");
    let first = signed_in(&app, "bob").await;
    let event = app.okta.event("user.session.end", &bob.id, vec![]);
    assert_eq!(
        app.okta.deliver_events(vec![event.clone()]).await,
        StatusCode::OK
    );
    refused_after(&app, &first, Instant::now()).await;

    // Bob signs in again; Okta delivers the same event once more (at least
    // once). Applied again, it would end the new session (it began within the
    // event's clock slack).
    let again = signed_in(&app, "bob").await;
    assert_eq!(
        app.okta.deliver_events(vec![event.clone(), event]).await,
        StatusCode::OK
    );
    settle(&app).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        check(&app, &again).await,
        StatusCode::OK,
        "the repeat was skipped"
    );
}

#[tokio::test]
async fn a_late_event_never_ends_a_session_begun_after_it() {
    let app = app_with_hook(&[]).await;
    let bob = app.okta.user("bob");
    let cookie = signed_in(&app, "bob").await;
    // Deactivated (and reactivated) ten minutes ago; the delivery comes now,
    // after bob signed in again.
    let late = app
        .okta
        .event_at("user.lifecycle.deactivate", &bob.id, vec![], now() - 600);
    assert_eq!(app.okta.deliver_events(vec![late]).await, StatusCode::OK);
    settle(&app).await;
    assert_eq!(check(&app, &cookie).await, StatusCode::OK);

    // Out of order within a delivery: the newer event counts whatever its place.
    let newer = app.okta.event("user.session.end", &bob.id, vec![]);
    let older = app
        .okta
        .event_at("user.session.start", &bob.id, vec![], now() - 5);
    assert_eq!(
        app.okta.deliver_events(vec![newer, older]).await,
        StatusCode::OK
    );
    refused_after(&app, &cookie, Instant::now()).await;
}

#[tokio::test]
async fn hundreds_of_events_in_one_delivery_are_accepted_at_once_and_all_applied() {
    let app = app_with_hook(&[]).await;
    let bob = app.okta.user("bob");
    let cookie = signed_in(&app, "bob").await;
    let mut events: Vec<Value> = (0..499)
        .map(|i| {
            app.okta.event_at(
                "user.session.end",
                &format!("00unobody{i:011}"),
                vec![],
                now(),
            )
        })
        .collect();
    events.push(app.okta.event("user.lifecycle.suspend", &bob.id, vec![]));
    let sent = Instant::now();
    assert_eq!(app.okta.deliver_events(events).await, StatusCode::OK);
    eprintln!("a delivery of 500 events answered in {:?}", sent.elapsed());
    refused_after(&app, &cookie, sent).await;
}

#[tokio::test]
async fn each_event_type_and_outcome_is_counted() {
    let app = app_with_hook(&[("METRICS_ADDRESS", "127.0.0.1:0")]).await;
    let bob = app.okta.user("bob");
    let cookie = signed_in(&app, "bob").await;
    let event = app.okta.event("user.lifecycle.suspend", &bob.id, vec![]);
    assert_eq!(
        app.okta.deliver_events(vec![event.clone(), event]).await,
        StatusCode::OK
    );
    refused_after(&app, &cookie, Instant::now()).await;
    settle(&app).await;
    let port = app.metrics_port.expect("a metrics listener");
    let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |series: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{series} not in {text}"))
    };
    assert!(
        value(r#"forward_auth_okta_events_total{type="user.lifecycle.suspend",outcome="applied"}"#)
            >= 1
    );
    assert!(
        value(
            r#"forward_auth_okta_events_total{type="user.lifecycle.suspend",outcome="duplicate"}"#
        ) >= 1
    );
    assert!(
        value(r#"forward_auth_okta_event_deliveries_total{hook="okta",outcome="accepted"}"#) >= 2
    );
}

#[tokio::test]
async fn on_redis_an_event_sent_to_one_replica_ends_the_session_on_all_three() {
    let Some(redis) = RedisServer::start(false) else {
        return;
    };
    let url = redis.url();
    let vars = [
        ("SESSION_STORE", url.as_str()),
        ("OKTA_EVENT_HOOK_SECRET", SECRET),
    ];
    let a = spawn_app_with(&vars).await;
    let b = spawn_app_for(a.okta.clone(), &vars).await;
    let c = spawn_app_for(a.okta.clone(), &vars).await;
    register(&b).await;
    let bob = a.okta.user("bob");
    let cookie = signed_in(&a, "bob").await;
    // Every replica subscribed and holds a local copy of the session.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for app in [&a, &b, &c] {
        for _ in 0..3 {
            assert_eq!(check(app, &cookie).await, StatusCode::OK);
        }
    }

    let event = a.okta.event("user.lifecycle.deactivate", &bob.id, vec![]);
    let sent = Instant::now();
    assert_eq!(
        a.okta.deliver_events(vec![event.clone()]).await,
        StatusCode::OK
    );
    let mut took = Vec::new();
    for (name, app) in [("A", &a), ("B", &b), ("C", &c)] {
        took.push(format!(
            "{name} {:?}",
            refused_after(app, &cookie, sent).await
        ));
    }
    eprintln!(
        "3 replicas on Redis: event hook delivery (to B) to the first refused check on: {}",
        took.join(", ")
    );

    // The same event delivered to another replica after bob signed in again
    // is recognised as a repeat through Redis.
    let again = signed_in(&c, "bob").await;
    assert_eq!(
        a.okta
            .deliver_events_to(&hook_url(&c), SECRET, vec![event])
            .await,
        StatusCode::OK
    );
    let carol = a.okta.user("carol");
    let sentinel = signed_in(&c, "carol").await;
    let end_carol = a.okta.event("user.session.end", &carol.id, vec![]);
    assert_eq!(
        a.okta
            .deliver_events_to(&hook_url(&c), SECRET, vec![end_carol])
            .await,
        StatusCode::OK
    );
    refused_after(&c, &sentinel, Instant::now()).await;
    // The repeat and the sentinel ran side by side: give a wrongly applied
    // repeat time to show.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for app in [&a, &b, &c] {
        assert_eq!(
            check(app, &again).await,
            StatusCode::OK,
            "the repeat was skipped"
        );
    }
}

/// Checks until the answer is `want`; how long after `since` that was.
async fn answers_after(app: &TestApp, cookie: &str, want: StatusCode, since: Instant) -> Duration {
    loop {
        let status = check(app, cookie).await;
        if status == want {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < PATIENCE,
            "still {status} {:?} after the event",
            since.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Groups cached for an hour: only the hook can make a change show sooner.
const LONG_TTL: [(&str, &str); 2] = [("ALLOWED_GROUPS", "staff"), ("GROUPS_CACHE_TTL", "1h")];

#[tokio::test]
async fn a_removal_from_a_group_shows_at_the_next_check_and_an_addition_too() {
    let app = app_with_hook(&LONG_TTL).await;
    let bob = app.okta.user("bob");
    let carol = app.okta.user("carol");
    let bob_cookie = signed_in(&app, "bob").await;
    let carol_cookie = signed_in(&app, "carol").await;
    assert_eq!(check(&app, &bob_cookie).await, StatusCode::OK);
    assert_eq!(check(&app, &carol_cookie).await, StatusCode::FORBIDDEN);

    let sent = Instant::now();
    assert_eq!(
        app.okta.remove_from_group(&bob.id, "staff").await,
        Some(StatusCode::OK)
    );
    let took = answers_after(&app, &bob_cookie, StatusCode::FORBIDDEN, sent).await;
    eprintln!("one instance: group removal delivered to the first 403: {took:?}");

    let sent = Instant::now();
    assert_eq!(
        app.okta.add_to_group(&carol.id, "staff").await,
        Some(StatusCode::OK)
    );
    answers_after(&app, &carol_cookie, StatusCode::OK, sent).await;
}

#[tokio::test]
async fn an_older_addition_delivered_after_a_newer_removal_does_not_give_access_back() {
    let app = app_with_hook(&LONG_TTL).await;
    let bob = app.okta.user("bob");
    let cookie = signed_in(&app, "bob").await;
    assert_eq!(check(&app, &cookie).await, StatusCode::OK);
    // In Okta: bob was added (a minute ago) and then removed (now); Okta
    // delivers the removal first and the addition after it.
    app.okta.set_groups(&bob.id, vec![fake_okta::everyone()]);
    let removed = app.okta.event(
        "group.user_membership.remove",
        &bob.id,
        vec![FakeOkta::group_target("staff")],
    );
    let added = app.okta.event_at(
        "group.user_membership.add",
        &bob.id,
        vec![FakeOkta::group_target("staff")],
        now() - 60,
    );
    assert_eq!(app.okta.deliver_events(vec![removed]).await, StatusCode::OK);
    answers_after(&app, &cookie, StatusCode::FORBIDDEN, Instant::now()).await;
    assert_eq!(app.okta.deliver_events(vec![added]).await, StatusCode::OK);
    settle(&app).await;
    for _ in 0..3 {
        assert_eq!(check(&app, &cookie).await, StatusCode::FORBIDDEN);
    }
}

#[tokio::test]
async fn on_redis_a_group_removal_shows_on_all_three_replicas() {
    let Some(redis) = RedisServer::start(false) else {
        return;
    };
    let url = redis.url();
    let mut vars = vec![
        ("SESSION_STORE", url.as_str()),
        ("OKTA_EVENT_HOOK_SECRET", SECRET),
    ];
    vars.extend_from_slice(&LONG_TTL);
    let a = spawn_app_with(&vars).await;
    let b = spawn_app_for(a.okta.clone(), &vars).await;
    let c = spawn_app_for(a.okta.clone(), &vars).await;
    register(&a).await;
    let bob = a.okta.user("bob");
    let cookie = signed_in(&a, "bob").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for app in [&a, &b, &c] {
        assert_eq!(check(app, &cookie).await, StatusCode::OK);
    }
    let sent = Instant::now();
    assert_eq!(
        a.okta.remove_from_group(&bob.id, "staff").await,
        Some(StatusCode::OK)
    );
    let mut took = Vec::new();
    for (name, app) in [("A", &a), ("B", &b), ("C", &c)] {
        let t = answers_after(app, &cookie, StatusCode::FORBIDDEN, sent).await;
        took.push(format!("{name} {t:?}"));
    }
    eprintln!(
        "3 replicas on Redis: group removal delivered (to A) to the first 403 on: {}",
        took.join(", ")
    );
}

#[tokio::test]
async fn a_delivery_is_answered_at_once_while_redis_is_stuck_and_applied_afterwards() {
    let Some(redis) = RedisServer::start(false) else {
        return;
    };
    let url = redis.url();
    let app = app_with_hook(&[("SESSION_STORE", url.as_str())]).await;
    let bob = app.okta.user("bob");
    let cookie = signed_in(&app, "bob").await;
    // A script that spins for two seconds holds every other Redis command.
    let stuck = std::thread::spawn(move || {
        let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
        let _: () = redis::cmd("EVAL")
            .arg(
                "local t = redis.call('TIME'); local s = tonumber(t[1]) + 2; \
                  while tonumber(redis.call('TIME')[1]) < s do end; return nil",
            )
            .arg(0)
            .query(&mut con)
            .unwrap();
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut events: Vec<Value> = (0..299)
        .map(|i| {
            app.okta
                .event("user.session.end", &format!("00ustuck{i:012}"), vec![])
        })
        .collect();
    events.push(app.okta.event("user.lifecycle.deactivate", &bob.id, vec![]));
    let sent = Instant::now();
    assert_eq!(app.okta.deliver_events(events).await, StatusCode::OK);
    eprintln!(
        "Redis stuck for 2 s: a delivery of 300 events answered in {:?}",
        sent.elapsed()
    );
    stuck.join().unwrap();
    refused_after(&app, &cookie, sent).await;
}
