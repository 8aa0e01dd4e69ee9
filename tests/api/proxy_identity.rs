//! The shipped proxy configs and what the service tells apps beyond the
//! plain identity headers: the signed identity (`X-Auth-Request-Jwt`, with
//! `IDENTITY_JWT_KEY`) reaches the app through nginx, Caddy (2.6 and 2.11)
//! and Traefik and verifies with the keys `/oauth2/jwks.json` publishes
//! (jsonwebtoken, not our signing code), a client's own copy never does; and
//! an API client with a bad bearer token gets a 401 challenge through every
//! proxy (nginx's page locations included), never a redirect. The harness:
//! `tests/support/` (`proxies.rs`, `checklist.rs`, `signed_identity.rs`).

use std::sync::Arc;

use reqwest::cookie::Jar;
use reqwest::StatusCode;

use crate::support::app::{browser, location, spawn_app_for};
use crate::support::checklist::{get_html, get_with, sign_in_through, FORGED_JWT};
use crate::support::process::free_port;
use crate::support::proxies::{installed, launch, Build, Stack};
use crate::support::signed_identity::{jwks, verify, ES256_PEM};
use crate::support::upstream::{echoed, Echo};
use fake_okta::FakeOkta;

#[tokio::test]
async fn the_shipped_nginx_config_passes_the_signed_identity_and_never_a_clients() {
    signed_identity_through(Build::DebianNginx).await;
}

#[tokio::test]
async fn the_shipped_caddyfile_passes_the_signed_identity_and_never_a_clients() {
    signed_identity_through(Build::DebianCaddy).await;
}

#[tokio::test]
async fn the_shipped_caddyfile_in_caddy_2_11_passes_the_signed_identity_and_never_a_clients() {
    signed_identity_through(Build::CurrentCaddy).await;
}

#[tokio::test]
async fn the_shipped_traefik_config_passes_the_signed_identity_and_never_a_clients() {
    signed_identity_through(Build::CurrentTraefik).await;
}

/// A service with `IDENTITY_JWT_KEY` behind `build`'s shipped config: a
/// signed-in user's pages (the plain location and the `/admin/` one) reach
/// the app with the service's `X-Auth-Request-Jwt` for the page's origin, in
/// place of the one the client sent (hyphen or underscore spelling); without
/// a session a forged one gets nowhere. (Without a key: the checklist.)
async fn signed_identity_through(build: Build) {
    let Some(stack) = Stack::start_build_with(build, &[("IDENTITY_JWT_KEY", ES256_PEM)]).await
    else {
        return;
    };
    let anonymous = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // The published keys, fetched through the proxy as an app would.
    let keys = jwks(&anonymous, &stack.url("/oauth2/jwks.json")).await;
    let forged = [
        ("X-Auth-Request-Jwt", FORGED_JWT),
        ("X_Auth_Request_Jwt", FORGED_JWT),
    ];

    let before = stack.echo.count();
    let refused = get_html(&anonymous, &stack.url("/private/page"), &forged).await;
    assert_eq!(refused.status(), StatusCode::FOUND, "{build:?}");
    assert_eq!(
        stack.echo.count(),
        before,
        "{build:?}: nothing reached the app"
    );

    let client = browser(Arc::new(Jar::default()));
    sign_in_through(&stack, &client, "alice").await;
    let alice = stack.app.okta.user("alice");
    for path in ["/private/page?x=1", "/admin/settings"] {
        let answer = get_html(&client, &stack.url(path), &forged).await;
        assert_eq!(answer.status(), StatusCode::OK, "{build:?} {path}");
        let seen = echoed(answer).await;
        let token = seen.header("x-auth-request-jwt");
        assert!(
            !token.is_empty() && !token.contains(','),
            "{build:?} {path}: one signed identity, got {:?}",
            seen.headers
        );
        assert_ne!(token, FORGED_JWT, "{build:?} {path}");
        // iss = the service URL, aud = the origin the browser asked for: here
        // both are the proxy's.
        let claims = verify(token, &keys, &stack.proxy, &stack.proxy);
        assert_eq!(claims["sub"], alice.id.as_str(), "{build:?} {path}");
        assert_eq!(claims["email"], alice.email.as_str(), "{build:?} {path}");
        assert!(claims["exp"].as_u64().is_some(), "{build:?} {path}");
        for name in seen.headers.keys() {
            assert!(
                !name.contains('_'),
                "{build:?} {path}: {name} reached the app"
            );
        }
    }
    for request in stack.echo.seen() {
        assert_ne!(
            request.header("x-auth-request-jwt"),
            FORGED_JWT,
            "{build:?}"
        );
    }
}

/// nginx's page locations send a 401 to `@sign_in`. A script with a bad
/// `Authorization: Bearer` token gets the service's 401 with no start URL:
/// it must stay a 401 with `WWW-Authenticate: Bearer error="invalid_token"`
/// (not a 302 to an empty Location), on `/` and `/admin/`, whatever it
/// accepts; a good token passes there, and a browser is still sent to sign in.
#[tokio::test]
async fn through_the_shipped_nginx_config_a_bad_bearer_token_gets_401_invalid_token_on_pages() {
    bearer_tokens_through(Build::DebianNginx).await;
}

/// The same through Caddy and Traefik, which pass the service's 401 on as is.
#[tokio::test]
async fn through_the_shipped_caddyfile_and_traefik_config_a_bad_bearer_token_gets_401() {
    for build in [
        Build::DebianCaddy,
        Build::CurrentCaddy,
        Build::CurrentTraefik,
    ] {
        bearer_tokens_through(build).await;
    }
}

async fn bearer_tokens_through(build: Build) {
    let Some(binary) = installed(build) else {
        return;
    };
    let port = free_port();
    let proxy = format!("http://127.0.0.1:{port}");
    let okta = FakeOkta::start().await;
    let issuer = okta.custom_issuer();
    let app = spawn_app_for(
        okta,
        &[
            ("IDP_PROVIDER_URL", issuer.as_str()),
            ("BEARER_AUDIENCE", FakeOkta::API_AUDIENCE),
            ("AUTHENTICATE_SERVICE_URL", proxy.as_str()),
        ],
    )
    .await;
    let echo = Echo::start();
    let _proxy = launch(build, &binary, port, &[app.port], echo.port, None).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let alice = app.okta.user("alice");
    let good = app
        .okta
        .mint_access_token(Some(&alice), "0oaservicebackend01", &["items.read"]);
    // The same token with its signature changed, and an org server's opaque one.
    let mut tampered = good.clone();
    let last = if tampered.ends_with('A') { "B" } else { "A" };
    tampered.replace_range(tampered.len() - 1.., last);
    let bad = [tampered.as_str(), "00Topaque-org-server-token"];

    for path in ["/private/page", "/admin/settings", "/api/items"] {
        if path == "/api/items" && build != Build::DebianNginx {
            continue; // nginx's own location; for the others a page like any
        }
        for accept in ["text/html,application/xhtml+xml", "application/json"] {
            for token in bad {
                let answer = get_with(
                    &client,
                    &format!("{proxy}{path}"),
                    &[
                        ("Accept", accept),
                        ("Authorization", &format!("Bearer {token}")),
                    ],
                )
                .await;
                let what = format!("{build:?} {path} ({accept})");
                assert_eq!(answer.status(), StatusCode::UNAUTHORIZED, "{what}");
                assert!(answer.headers().get("location").is_none(), "{what}");
                let challenges: Vec<_> = answer
                    .headers()
                    .get_all("www-authenticate")
                    .iter()
                    .map(|v| v.to_str().unwrap_or("").to_string())
                    .collect();
                assert_eq!(challenges.len(), 1, "{what}: {challenges:?}");
                assert!(
                    challenges[0].starts_with("Bearer error=\"invalid_token\""),
                    "{what}: {challenges:?}"
                );
                let body = answer.text().await.unwrap_or_default();
                assert!(!body.contains(token), "{what}: the token is not echoed");
            }
        }
    }
    assert_eq!(echo.count(), 0, "{build:?}: no bad token reached the app");

    let ok = get_html(
        &client,
        &format!("{proxy}/private/page"),
        &[("Authorization", &format!("Bearer {good}"))],
    )
    .await;
    assert_eq!(ok.status(), StatusCode::OK, "{build:?}");
    assert_eq!(echoed(ok).await.header("x-auth-request-user"), alice.login);

    let navigation = get_html(&client, &format!("{proxy}/private/page"), &[]).await;
    assert_eq!(navigation.status(), StatusCode::FOUND, "{build:?}");
    assert!(
        location(&navigation).starts_with(&format!("{proxy}/oauth2/start?rd=")),
        "{build:?}: {}",
        location(&navigation)
    );
}
