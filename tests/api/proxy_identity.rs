//! The shipped proxy configs and what the service tells apps beyond the
//! plain identity headers: the signed identity (`X-Auth-Request-Jwt`, with
//! `IDENTITY_JWT_KEY`) reaches the app through nginx, Caddy (2.6 and 2.11)
//! and Traefik and verifies with the keys `/oauth2/jwks.json` publishes
//! (jsonwebtoken, not our signing code), and a client's own copy never does.
//! The harness: `proxy_harness.rs`.

use std::sync::Arc;

use reqwest::cookie::Jar;
use reqwest::StatusCode;

use crate::helpers::browser;
use crate::proxies::{echoed, get_html, sign_in_through, Build, Stack, FORGED_JWT};
use crate::signed_identity::{jwks, verify, ES256_PEM};

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
