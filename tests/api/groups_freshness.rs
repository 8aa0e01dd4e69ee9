//! `GROUPS_CACHE_TTL` as a hard bound (issue 9, items 1 and 2), through the real
//! service and the fake Okta: a change in Okta is seen by the first check after
//! the TTL whether or not checks came in between; an idle user costs no call and
//! never sees old groups; active users are refreshed ahead of the TTL at one
//! call per TTL; while Okta rate-limits, last known groups serve for
//! `GROUPS_STALE_IF_ERROR` and then a 503 follows; suspended and deactivated
//! users are refused (403) within the TTL. Short TTLs stand in for real ones.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::support::app::{header, spawn_app_with, TestApp};
use fake_okta::everyone;

const ORIGINAL: &str = "https://app.example.com/private";
const ADMINS_ONLY: &str = "/oauth2/auth?allowed_groups=admins";

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn sleep_until(instant: Instant) {
    tokio::time::sleep(instant.saturating_duration_since(Instant::now())).await;
}

/// Signs alice in; the instant by which her groups had been fetched.
async fn signed_in_alice(app: &TestApp) -> Instant {
    app.login_as("alice").await;
    Instant::now()
}

#[tokio::test]
async fn a_removed_user_is_denied_by_the_first_check_after_the_ttl_with_no_check_in_between() {
    let app = spawn_app_with(&[("GROUPS_CACHE_TTL", "2s")]).await;
    let alice = app.okta.user("alice");
    let fetched = signed_in_alice(&app).await;
    assert_eq!(
        app.auth_at(ADMINS_ONLY, ORIGINAL).await.status(),
        StatusCode::OK
    );
    app.okta.set_groups(&alice.id, vec![everyone()]);
    sleep_until(fetched + Duration::from_millis(2100)).await;
    let first = app.auth_at(ADMINS_ONLY, ORIGINAL).await;
    assert_eq!(
        first.status(),
        StatusCode::FORBIDDEN,
        "the first check after the TTL used the old groups"
    );
    let check = app.auth(ORIGINAL).await;
    assert_eq!(header(&check, "x-auth-request-groups"), "Everyone");
}

#[tokio::test]
async fn a_removed_user_is_denied_by_the_first_check_after_the_ttl_with_checks_in_between() {
    let app = spawn_app_with(&[("GROUPS_CACHE_TTL", "2s")]).await;
    let alice = app.okta.user("alice");
    signed_in_alice(&app).await;
    app.okta.set_groups(&alice.id, vec![everyone()]);
    let changed = Instant::now();
    // Checks inside the TTL may still see the old groups (or already the new
    // ones, once refreshed ahead of the TTL)...
    for at in [400, 1200] {
        sleep_until(changed + Duration::from_millis(at)).await;
        let status = app.auth_at(ADMINS_ONLY, ORIGINAL).await.status();
        assert!(
            status == StatusCode::OK || status == StatusCode::FORBIDDEN,
            "{status}"
        );
    }
    // ...but not the first one more than a TTL after the change.
    sleep_until(changed + Duration::from_millis(2050)).await;
    assert_eq!(
        app.auth_at(ADMINS_ONLY, ORIGINAL).await.status(),
        StatusCode::FORBIDDEN,
        "a check a TTL after the change let the removed user in"
    );
    // And from then on, with checks every 50 ms, never again.
    for _ in 0..20 {
        assert_eq!(
            app.auth_at(ADMINS_ONLY, ORIGINAL).await.status(),
            StatusCode::FORBIDDEN
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_idle_users_first_check_long_after_never_sees_old_groups_and_idling_costs_no_call() {
    let app = spawn_app_with(&[("GROUPS_CACHE_TTL", "1s")]).await;
    let alice = app.okta.user("alice");
    signed_in_alice(&app).await;
    assert_eq!(
        app.auth_at(ADMINS_ONLY, ORIGINAL).await.status(),
        StatusCode::OK
    );
    let calls = (
        app.okta.groups_calls_for(&alice.id),
        app.okta.user_calls_for(&alice.id),
    );
    assert_eq!(calls, (1, 1), "the sign-in read groups and status once");
    app.okta.set_groups(&alice.id, vec![everyone()]);
    // Four TTLs without a check (an hour with the default TTL of 5m would be
    // twelve): nothing is refreshed for a user who does nothing.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        (
            app.okta.groups_calls_for(&alice.id),
            app.okta.user_calls_for(&alice.id)
        ),
        calls,
        "an idle user cost Okta calls"
    );
    assert_eq!(
        app.auth_at(ADMINS_ONLY, ORIGINAL).await.status(),
        StatusCode::FORBIDDEN,
        "the first check after a long idle time used old groups"
    );
    assert_eq!(app.okta.groups_calls_for(&alice.id), 2);
}

#[tokio::test]
async fn refresh_ahead_keeps_an_active_user_fresh_for_one_call_per_ttl_and_stops_when_idle() {
    let ttl = Duration::from_secs(3);
    let app = spawn_app_with(&[("GROUPS_CACHE_TTL", "3s")]).await;
    let alice = app.okta.user("alice");
    let fetched = signed_in_alice(&app).await;
    // Active for three TTLs: a check every 100 ms.
    let active_until = fetched + 3 * ttl;
    while Instant::now() < active_until {
        assert_eq!(app.auth(ORIGINAL).await.status(), StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let times = app.okta.groups_call_times_for(&alice.id);
    // The sign-in's call, then one refresh shortly before each TTL ran out.
    assert!(
        (3..=4).contains(&times.len()),
        "{} groups calls in three TTLs of activity",
        times.len()
    );
    assert_eq!(app.okta.user_calls_for(&alice.id), times.len());
    for pair in times.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap < ttl,
            "a refresh came {gap:?} after the previous answer: checks had to wait for Okta"
        );
        assert!(
            gap > ttl / 2,
            "refreshed {gap:?} after the previous answer: more than one call per TTL"
        );
    }
    // Idle from here: at most the refresh already due, then nothing.
    tokio::time::sleep(ttl).await;
    let settled = app.okta.groups_calls_for(&alice.id);
    assert!(settled <= times.len() + 1);
    tokio::time::sleep(2 * ttl).await;
    assert_eq!(
        app.okta.groups_calls_for(&alice.id),
        settled,
        "an idle user's groups kept being refreshed"
    );
}

#[tokio::test]
async fn while_okta_rate_limits_last_known_groups_serve_for_the_stale_window_then_503() {
    let app = spawn_app_with(&[("GROUPS_CACHE_TTL", "1s"), ("GROUPS_STALE_IF_ERROR", "2s")]).await;
    let before_sign_in = Instant::now();
    let fetched = signed_in_alice(&app).await;
    app.okta.set_rate_limited(Some(now_secs() + 60));
    let calls = app.okta.groups_calls();

    // Past the TTL, within the stale window: the last known groups.
    sleep_until(fetched + Duration::from_millis(1200)).await;
    let stale = app.auth(ORIGINAL).await;
    assert_eq!(stale.status(), StatusCode::OK, "inside the stale window");
    assert_eq!(header(&stale, "x-auth-request-groups"), "Everyone,admins");
    let deadline = before_sign_in + Duration::from_millis(2900);
    while Instant::now() < deadline {
        let status = app.auth(ORIGINAL).await.status();
        if Instant::now() < deadline {
            assert_eq!(status, StatusCode::OK);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Past TTL + stale window: a clear 503, never 2xx, 401 or 403.
    sleep_until(fetched + Duration::from_millis(3100)).await;
    for _ in 0..3 {
        let response = app.auth(ORIGINAL).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(response.headers().get("retry-after").is_some());
        assert!(response.headers().get("x-auth-request-user").is_none());
    }
    assert_eq!(
        app.okta.groups_calls(),
        calls + 1,
        "one call met the 429; none after it before the reset"
    );
}

#[tokio::test]
async fn with_no_stale_window_a_check_past_the_ttl_is_refused_at_once_while_okta_fails() {
    let app = spawn_app_with(&[("GROUPS_CACHE_TTL", "1s"), ("GROUPS_STALE_IF_ERROR", "0")]).await;
    let fetched = signed_in_alice(&app).await;
    assert_eq!(app.auth(ORIGINAL).await.status(), StatusCode::OK);
    app.okta.set_groups_failure(Some(503));
    sleep_until(fetched + Duration::from_millis(1100)).await;
    let response = app.auth(ORIGINAL).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    // Okta answers again: so does the check.
    app.okta.set_groups_failure(None);
    tokio::time::sleep(Duration::from_millis(2100)).await; // the failure is remembered 2 s
    assert_eq!(app.auth(ORIGINAL).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn suspended_and_deactivated_users_are_refused_within_the_ttl_and_a_locked_out_one_is_not() {
    let app = spawn_app_with(&[("GROUPS_CACHE_TTL", "1s")]).await;
    let alice = app.okta.user("alice");
    let bob = app.okta.user("bob");
    let carol = app.okta.user("carol");
    let (_, bob_browser) = app.new_browser();
    let (_, carol_browser) = app.new_browser();
    app.login_as("alice").await;
    app.login_in(&bob_browser, "bob").await;
    app.login_in(&carol_browser, "carol").await;
    let fetched = Instant::now();
    let check = |client: reqwest::Client| {
        let url = app.url("/oauth2/auth");
        async move {
            client
                .get(url)
                .header("X-Original-URL", ORIGINAL)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    for client in [&app.client, &bob_browser, &carol_browser] {
        assert_eq!(check(client.clone()).await, StatusCode::OK);
    }
    // The groups API still answers for all three, as Okta's does.
    app.okta.set_status(&alice.id, "SUSPENDED");
    app.okta.set_active(&bob.id, false);
    app.okta.set_status(&carol.id, "LOCKED_OUT");
    sleep_until(fetched + Duration::from_millis(1100)).await;
    assert_eq!(check(app.client.clone()).await, StatusCode::FORBIDDEN);
    assert_eq!(check(bob_browser.clone()).await, StatusCode::FORBIDDEN);
    assert_eq!(
        check(carol_browser.clone()).await,
        StatusCode::OK,
        "a locked-out account still exists"
    );
    // The refusal is Okta's answer: kept for the TTL, not asked per check.
    let calls = app.okta.user_calls_for(&alice.id);
    for _ in 0..5 {
        assert_eq!(check(app.client.clone()).await, StatusCode::FORBIDDEN);
    }
    assert_eq!(app.okta.user_calls_for(&alice.id), calls);
    // Unsuspended: back within the TTL.
    app.okta.set_status(&alice.id, "ACTIVE");
    let deadline = Instant::now() + Duration::from_secs(4);
    let mut status = check(app.client.clone()).await;
    while status != StatusCode::OK && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        status = check(app.client.clone()).await;
    }
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_reactivated_user_who_signs_in_again_is_let_in_at_once() {
    let app = spawn_app_with(&[("GROUPS_CACHE_TTL", "3s")]).await;
    let alice = app.okta.user("alice");
    let fetched = signed_in_alice(&app).await;
    app.okta.set_status(&alice.id, "SUSPENDED");
    sleep_until(fetched + Duration::from_millis(3100)).await;
    assert_eq!(app.auth(ORIGINAL).await.status(), StatusCode::FORBIDDEN);
    // The admin unsuspends her; she signs in again (Okta allows it): the
    // refusal learnt a moment ago must not outlive that sign-in.
    app.okta.set_status(&alice.id, "ACTIVE");
    app.login_as("alice").await;
    assert_eq!(app.auth(ORIGINAL).await.status(), StatusCode::OK);
}
