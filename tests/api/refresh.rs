//! Refresh tokens (DESIGN.md §5): kept server-side, used on the first check after
//! the tokens are due (30 s before expiry), once for all concurrent checks of a
//! session; Okta refusing ends the session, Okta failing keeps it and backs off.

use std::time::Duration;

use reqwest::StatusCode;
use tokio::task::JoinSet;

use crate::support::app::{spawn_app, spawn_app_with, COOKIE_NAME};
use fake_okta::RefreshMode;

const ORIGINAL: &str = "https://app.example.com/";

/// Tokens that live 5 s are due at once: the service renews 30 s before expiry.
const DUE_AT_ONCE: u64 = 5;

#[tokio::test]
async fn a_due_session_is_refreshed_once_and_the_new_expiry_is_kept() {
    let app = spawn_app().await;
    app.okta.set_token_lifetime(DUE_AT_ONCE);
    app.login_as("alice").await;
    assert_eq!(
        app.okta.refresh_calls(),
        0,
        "sign-in itself does not refresh"
    );
    // The refreshed tokens live an hour, so after this refresh nothing is due.
    app.okta.set_token_lifetime(3600);

    let first = app.auth(ORIGINAL).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(app.okta.refresh_calls(), 1, "the due tokens were renewed");

    for _ in 0..3 {
        assert_eq!(app.auth(ORIGINAL).await.status(), StatusCode::OK);
    }
    assert_eq!(
        app.okta.refresh_calls(),
        1,
        "the renewed expiry was stored with the session"
    );
}

#[tokio::test]
async fn the_rotated_refresh_token_is_the_one_used_next_time() {
    let app = spawn_app().await;
    app.okta.set_token_lifetime(DUE_AT_ONCE);
    app.login_as("alice").await;
    assert_eq!(app.auth(ORIGINAL).await.status(), StatusCode::OK);
    assert_eq!(app.okta.refresh_calls(), 1);
    // The new tokens are due at once again, but one refresh result is reused for
    // 5 s (coalescing); after that the next check refreshes again, which only
    // works with the rotated token (the fake kills the old one on use).
    tokio::time::sleep(Duration::from_millis(5200)).await;
    assert_eq!(app.auth(ORIGINAL).await.status(), StatusCode::OK);
    assert_eq!(app.okta.refresh_calls(), 2);
}

#[tokio::test]
async fn a_refused_refresh_ends_the_session() {
    let app = spawn_app().await;
    app.okta.set_token_lifetime(DUE_AT_ONCE);
    app.login_as("alice").await;
    let cookie = format!("{COOKIE_NAME}={}", app.session_cookie().unwrap());
    app.okta.set_refresh_mode(RefreshMode::InvalidGrant);

    let response = app.auth(ORIGINAL).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers().get("x-auth-request-user").is_none());
    assert_eq!(app.okta.refresh_calls(), 1);

    // Okta would now renew, but the session is gone for good.
    app.okta.set_refresh_mode(RefreshMode::Ok);
    assert_eq!(
        app.auth_with_cookie(&cookie, ORIGINAL).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.okta.refresh_calls(),
        1,
        "an ended session is not refreshed"
    );
}

#[tokio::test]
async fn an_okta_outage_during_refresh_keeps_the_session_and_backs_off() {
    let app = spawn_app().await;
    app.okta.set_token_lifetime(DUE_AT_ONCE);
    app.login_as("alice").await;
    app.okta.set_refresh_mode(RefreshMode::ServerError);

    let first = app.auth(ORIGINAL).await;
    assert_eq!(
        first.status(),
        StatusCode::OK,
        "a 5xx from Okta is no reason to sign the user out"
    );
    assert_eq!(app.okta.refresh_calls(), 1);

    // One refresh result is shared for 5 s anyway; only past that window does the
    // 30 s back-off (refresh_not_before) show.
    tokio::time::sleep(Duration::from_millis(5200)).await;
    let second = app.auth(ORIGINAL).await;
    assert_eq!(second.status(), StatusCode::OK);
    assert_eq!(
        app.okta.refresh_calls(),
        1,
        "a refresh was retried within the 30 s back-off"
    );
}

#[tokio::test]
async fn concurrent_checks_of_a_due_session_cost_one_refresh() {
    let app = spawn_app().await;
    app.okta.set_token_lifetime(DUE_AT_ONCE);
    app.login_as("alice").await;

    let mut checks = JoinSet::new();
    for _ in 0..10 {
        let client = app.client.clone();
        let url = app.url("/oauth2/auth");
        checks.spawn(async move {
            client
                .get(url)
                .header("X-Original-URL", ORIGINAL)
                .send()
                .await
                .unwrap()
                .status()
        });
    }
    let mut statuses = Vec::new();
    while let Some(status) = checks.join_next().await {
        statuses.push(status.unwrap());
    }
    // With rotating refresh tokens a second, parallel refresh would use a dead
    // token and end the session: every check must pass.
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    assert_eq!(app.okta.refresh_calls(), 1);
    assert_eq!(app.auth(ORIGINAL).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn without_offline_access_there_is_no_refresh_and_checks_keep_working() {
    let app = spawn_app_with(&[("IDP_SCOPES", "openid email profile")]).await;
    app.okta.set_token_lifetime(DUE_AT_ONCE);
    app.login_as("alice").await;
    let scope = app
        .okta
        .last_authorize_query()
        .unwrap()
        .into_iter()
        .find(|(k, _)| k == "scope")
        .map(|(_, v)| v)
        .unwrap();
    assert!(!scope.split(' ').any(|s| s == "offline_access"), "{scope}");
    for _ in 0..3 {
        assert_eq!(app.auth(ORIGINAL).await.status(), StatusCode::OK);
    }
    assert_eq!(app.okta.refresh_calls(), 0);
}

#[tokio::test]
async fn with_the_oidc_provider_a_refreshed_id_token_without_a_groups_claim_means_no_groups() {
    let app = spawn_app_with(&[("IDP_PROVIDER", "oidc")]).await;
    let alice = app.okta.user("alice");
    app.okta.set_token_lifetime(DUE_AT_ONCE);
    app.login_as("alice").await;
    let admins_only = "/oauth2/auth?allowed_groups=admins";
    let check = app.auth_at(admins_only, ORIGINAL).await;
    assert_eq!(check.status(), StatusCode::OK, "the sign-in's claim");
    assert_eq!(app.okta.refresh_calls(), 1);
    // Alice leaves every group the app's claim filter matches: Okta's next ID
    // token has no `groups` claim at all.
    app.okta.set_groups(&alice.id, vec![]);
    tokio::time::sleep(Duration::from_millis(5200)).await; // past the refresh coalescing
    let check = app.auth_at(admins_only, ORIGINAL).await;
    assert_eq!(app.okta.refresh_calls(), 2, "the tokens were renewed");
    assert_eq!(
        check.status(),
        StatusCode::FORBIDDEN,
        "the old groups claim outlived the refresh"
    );
    let check = app.auth(ORIGINAL).await;
    assert_eq!(check.status(), StatusCode::OK);
    assert_eq!(
        crate::support::app::header(&check, "x-auth-request-groups"),
        ""
    );
}
