//! `/oauth2/auth` and `/oauth2/forward`: statuses, headers, the forwarded-URL
//! rules, API-client detection, per-route policy and bad input.

use reqwest::StatusCode;

use crate::support::app::{
    assert_redirect_to, header, location, spawn_app, spawn_app_with, COOKIE_NAME,
};

fn start_url_with_rd(app: &crate::support::app::TestApp, rd: &str) -> String {
    let encoded: String = url::form_urlencoded::byte_serialize(rd.as_bytes()).collect();
    format!("{}/oauth2/start?rd={encoded}", app.address)
}

#[tokio::test]
async fn nginx_gets_401_with_the_start_url_and_never_a_redirect() {
    let app = spawn_app_with(&[("ALLOWED_REDIRECT_DOMAINS", ".example.com")]).await;
    let response = app.auth("https://app.example.com/a/b?c=d").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        location(&response),
        start_url_with_rd(&app, "https://app.example.com/a/b?c=d")
    );
    assert!(!header(&response, "www-authenticate").is_empty());
    assert!(response.headers().get("x-auth-request-user").is_none());
}

#[tokio::test]
async fn a_url_outside_the_redirect_allow_list_is_not_put_in_the_start_url() {
    let app = spawn_app().await;
    let response = app.auth("https://elsewhere.example.net/x").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(location(&response), format!("{}/oauth2/start", app.address));
}

#[tokio::test]
async fn forward_redirects_browser_navigations_and_uses_303_for_posts() {
    let app = spawn_app_with(&[("ALLOWED_REDIRECT_DOMAINS", ".example.com")]).await;
    let nav = [
        ("Accept", "text/html,application/xhtml+xml"),
        ("Sec-Fetch-Mode", "navigate"),
    ];
    let get = app
        .forward("GET", "app.example.com", "/page?x=1", &nav)
        .await;
    assert_eq!(get.status(), StatusCode::FOUND);
    assert_eq!(
        location(&get),
        start_url_with_rd(&app, "https://app.example.com/page?x=1")
    );
    let post = app.forward("POST", "app.example.com", "/form", &nav).await;
    assert_eq!(post.status(), StatusCode::SEE_OTHER);
    assert_redirect_to(&post, &format!("{}/oauth2/start", app.address));
}

#[tokio::test]
async fn forward_answers_api_clients_with_401_json() {
    let app = spawn_app().await;
    let cases: [&[(&str, &str)]; 6] = [
        &[
            ("Accept", "text/html"),
            ("X-Requested-With", "XMLHttpRequest"),
        ],
        &[("Accept", "text/html"), ("Sec-Fetch-Mode", "cors")],
        &[("Accept", "application/json")],
        &[("Accept", "text/html"), ("Authorization", "Bearer abc")],
        &[
            ("Accept", "text/html"),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
        ],
        &[],
    ];
    for extra in cases {
        let response = app.forward("GET", "app.example.com", "/api", extra).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{extra:?}");
        assert!(
            header(&response, "content-type").starts_with("application/json"),
            "{extra:?}"
        );
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"], "unauthenticated");
    }
}

#[tokio::test]
async fn a_websocket_handshake_with_a_session_passes() {
    let app = spawn_app().await;
    app.login_as("alice").await;
    let response = app
        .forward(
            "GET",
            "app.example.com",
            "/ws",
            &[("Upgrade", "websocket"), ("Connection", "Upgrade")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header(&response, "x-auth-request-user"),
        "alice@example.com"
    );
}

#[tokio::test]
async fn tampered_truncated_foreign_and_malformed_cookies_are_no_session() {
    let app = spawn_app().await;
    app.login_as("alice").await;
    let good = app.session_cookie().unwrap();
    assert_eq!(
        app.auth_with_cookie(&format!("{COOKIE_NAME}={good}"), "https://a.example.com/")
            .await
            .status(),
        StatusCode::OK
    );
    let mut flipped = good.clone().into_bytes();
    flipped[5] = if flipped[5] == b'x' { b'y' } else { b'x' };
    let flipped = String::from_utf8(flipped).unwrap();
    let foreign = "Zm9yZWlnbi1zZXNzaW9uLWlkLXh4.c2lnbmVkLWJ5LXNvbWVvbmUtZWxzZS13aXRoLWEta2V5LXh4eA";
    let cookies = [
        format!("{COOKIE_NAME}={flipped}"),
        format!("{COOKIE_NAME}={}", &good[..good.len() - 3]),
        format!("{COOKIE_NAME}={foreign}"),
        format!("{COOKIE_NAME}="),
        format!("{COOKIE_NAME}=%%%;;;==="),
        "garbage without equals".to_string(),
        format!("{COOKIE_NAME}={}", "A".repeat(5000)),
    ];
    for cookie in cookies {
        let response = app
            .auth_with_cookie(&cookie, "https://a.example.com/")
            .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{cookie:.60}");
    }
    // The real session survived all of that.
    assert_eq!(
        app.auth("https://a.example.com/").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_good_cookie_among_stale_ones_of_the_same_name_still_counts() {
    let app = spawn_app().await;
    app.login_as("alice").await;
    let good = app.session_cookie().unwrap();
    let cookie = format!("{COOKIE_NAME}=stale.value; other=1; {COOKIE_NAME}={good}");
    assert_eq!(
        app.auth_with_cookie(&cookie, "https://a.example.com/")
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn an_expired_session_is_no_session() {
    let app = spawn_app_with(&[("COOKIE_EXPIRE", "1s")]).await;
    app.login_as("alice").await;
    assert_eq!(
        app.auth("https://a.example.com/").await.status(),
        StatusCode::OK
    );
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(
        app.auth("https://a.example.com/").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn forwarded_headers_from_an_untrusted_peer_are_ignored() {
    let app = spawn_app_with(&[
        ("TRUSTED_PROXIES", "10.0.0.0/8"),
        ("ALLOWED_REDIRECT_DOMAINS", ".example.com"),
    ])
    .await;
    let response = app.auth("https://app.example.com/spoofed").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        location(&response),
        format!("{}/oauth2/start", app.address),
        "the spoofed URL is not used"
    );
    let response = app
        .forward(
            "GET",
            "app.example.com",
            "/spoofed",
            &[("Accept", "text/html")],
        )
        .await;
    assert_eq!(location(&response), format!("{}/oauth2/start", app.address));
}

#[tokio::test]
async fn a_bad_forwarded_url_from_a_trusted_proxy_is_a_400() {
    let app = spawn_app().await;
    for bad in ["not a url", "ftp://x.example.com/", "https://"] {
        let response = app.auth(bad).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    let response = app.forward("GET", "bad host/with space", "/", &[]).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn per_route_policy_narrows_the_global_one() {
    let app = spawn_app().await;
    app.login_as("bob").await; // Everyone, staff
    let cases = [
        ("/oauth2/auth?allowed_groups=staff", StatusCode::OK),
        ("/oauth2/auth?allowed_groups=admins", StatusCode::FORBIDDEN),
        ("/oauth2/auth?allowed_groups=admins,staff", StatusCode::OK),
        ("/oauth2/auth?allowed_users=bob@example.com", StatusCode::OK),
        (
            "/oauth2/auth?allowed_users=alice@example.com",
            StatusCode::FORBIDDEN,
        ),
        ("/oauth2/auth?allowed_domains=example.com", StatusCode::OK),
        (
            "/oauth2/auth?allowed_domains=example.org",
            StatusCode::FORBIDDEN,
        ),
        (
            "/oauth2/auth?allowed_groups=staff&allowed_domains=example.org",
            StatusCode::FORBIDDEN,
        ),
        ("/oauth2/auth?allowed_groups=", StatusCode::BAD_REQUEST),
    ];
    for (path, expected) in cases {
        let response = app.auth_at(path, "https://a.example.com/").await;
        assert_eq!(response.status(), expected, "{path}");
    }
    let bob = app.okta.user("bob");
    let staff_id = &bob.groups.iter().find(|(_, n)| n == "staff").unwrap().0;
    let by_id = app
        .auth_at(
            &format!("/oauth2/auth?allowed_groups={staff_id}"),
            "https://a.example.com/",
        )
        .await;
    assert_eq!(by_id.status(), StatusCode::OK, "groups match by id too");
}

#[tokio::test]
async fn the_global_policy_applies_on_top_of_the_route() {
    let app = spawn_app_with(&[("ALLOWED_DOMAINS", "example.org")]).await;
    app.login_as("bob").await;
    let response = app
        .auth_at(
            "/oauth2/auth?allowed_groups=staff",
            "https://a.example.com/",
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn userinfo_shows_the_session_and_401_without_one() {
    let app = spawn_app().await;
    let anonymous = app
        .client
        .get(app.url("/oauth2/userinfo"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    app.login_as("alice").await;
    let info: serde_json::Value = app
        .client
        .get(app.url("/oauth2/userinfo"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["user"], "alice@example.com");
    assert_eq!(info["email"], "alice@example.com");
    assert_eq!(info["preferred_username"], "alice@example.com");
    assert_eq!(info["groups"], serde_json::json!(["Everyone", "admins"]));
}

#[tokio::test]
async fn a_signed_in_decision_never_depends_on_the_forwarded_url() {
    let app = spawn_app_with(&[("ALLOWED_GROUPS", "admins")]).await;
    app.login_as("alice").await;
    // The URL is read only to send a stranger to sign in; for a signed-in user
    // the answer is the same whatever the proxy forwarded.
    for original in [
        "https://app.example.com/",
        "not a url",
        "ftp://x.example.com/",
    ] {
        assert_eq!(
            app.auth(original).await.status(),
            StatusCode::OK,
            "{original}"
        );
    }
}
