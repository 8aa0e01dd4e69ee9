//! The sign-in flow: `/oauth2/start` → fake Okta → `/oauth2/callback` → `rd`, and
//! every way it must refuse (state, browser binding, ID-token checks, rd).

use reqwest::StatusCode;
use url::Url;

use crate::support::app::{assert_redirect_to, header, location, spawn_app, spawn_app_with};
use fake_okta::TokenTweak;

fn query(url: &str) -> Vec<(String, String)> {
    Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

fn param(url: &str, name: &str) -> Option<String> {
    query(url)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

#[tokio::test]
async fn a_full_sign_in_lands_on_rd_and_the_auth_endpoints_let_a_member_in() {
    let app = spawn_app_with(&[("ALLOWED_GROUPS", "admins")]).await;
    let done = app.login_as("alice").await;
    assert_redirect_to(&done, "/after-login");
    assert!(app.session_cookie().is_some(), "the session cookie is set");

    let nginx = app.auth("https://app.example.com/private?x=1").await;
    assert_eq!(nginx.status(), StatusCode::OK);
    assert_eq!(header(&nginx, "x-auth-request-user"), "alice@example.com");
    assert_eq!(header(&nginx, "x-auth-request-email"), "alice@example.com");
    assert_eq!(header(&nginx, "x-auth-request-groups"), "Everyone,admins");
    assert_eq!(
        header(&nginx, "x-auth-request-preferred-username"),
        "alice@example.com"
    );

    let traefik = app
        .forward(
            "GET",
            "app.example.com",
            "/private",
            &[("Accept", "text/html")],
        )
        .await;
    assert_eq!(traefik.status(), StatusCode::OK);
    assert_eq!(header(&traefik, "x-auth-request-groups"), "Everyone,admins");
}

#[tokio::test]
async fn a_signed_in_non_member_gets_403_not_a_redirect() {
    let app = spawn_app_with(&[("ALLOWED_GROUPS", "admins")]).await;
    app.login_as("carol").await;
    let nginx = app.auth("https://app.example.com/").await;
    assert_eq!(nginx.status(), StatusCode::FORBIDDEN);
    assert!(nginx.headers().get("x-auth-request-user").is_none());
    let forward = app
        .forward("GET", "app.example.com", "/", &[("Accept", "text/html")])
        .await;
    assert_eq!(forward.status(), StatusCode::FORBIDDEN);
    let page = forward.text().await.unwrap();
    assert!(
        page.contains("carol@example.com"),
        "the 403 page names the user: {page}"
    );
    assert!(
        page.contains("/oauth2/sign_out"),
        "the 403 page links to sign-out"
    );
}

#[tokio::test]
async fn start_sends_state_nonce_and_an_s256_pkce_challenge() {
    let app = spawn_app().await;
    let response = app.start("/x").await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let to = location(&response);
    assert!(
        to.starts_with(&format!("{}/oauth2/v1/authorize?", app.okta.base_url())),
        "{to}"
    );
    assert_eq!(param(&to, "response_type").as_deref(), Some("code"));
    assert_eq!(param(&to, "code_challenge_method").as_deref(), Some("S256"));
    assert_eq!(
        param(&to, "redirect_uri"),
        Some(app.url("/oauth2/callback"))
    );
    let scope = param(&to, "scope").unwrap();
    for s in ["openid", "email", "profile", "offline_access"] {
        assert!(scope.split(' ').any(|x| x == s), "scope {scope} lacks {s}");
    }
    for p in ["state", "nonce", "code_challenge"] {
        assert!(
            param(&to, p).is_some_and(|v| v.len() >= 20),
            "{p} missing or short"
        );
    }
    // Two starts never share state or nonce.
    let again = location(&app.start("/x").await);
    assert_ne!(param(&to, "state"), param(&again, "state"));
    assert_ne!(param(&to, "nonce"), param(&again, "nonce"));
}

#[tokio::test]
async fn a_replayed_callback_is_refused_and_creates_no_session() {
    let app = spawn_app().await;
    let user = app.okta.user("alice");
    app.okta.sign_in_as(&user.id);
    let to_okta = app.start("/x").await;
    let back = app.follow(&to_okta).await;
    let callback = location(&back);
    let first = app.client.get(&callback).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::FOUND);

    let (_, other) = app.new_browser();
    let replay = app.client.get(&callback).send().await.unwrap();
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    assert!(replay.headers().get("set-cookie").is_none());
    let replay_elsewhere = other.get(&callback).send().await.unwrap();
    assert_eq!(replay_elsewhere.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn an_unknown_or_missing_state_is_refused() {
    let app = spawn_app().await;
    for path in [
        "/oauth2/callback?code=abc&state=made-up",
        "/oauth2/callback?code=abc",
        "/oauth2/callback",
        "/oauth2/callback?state=&code=",
    ] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
        assert!(response.headers().get("set-cookie").is_none(), "{path}");
        let body = response.text().await.unwrap();
        assert!(
            body.contains("/oauth2/start"),
            "the page offers a retry: {body}"
        );
    }
}

#[tokio::test]
async fn a_callback_finished_in_another_browser_is_refused() {
    let app = spawn_app().await;
    let user = app.okta.user("alice");
    app.okta.sign_in_as(&user.id);
    // The attacker starts a sign-in and lures the victim to the callback.
    let to_okta = app.start("/x").await;
    let back = app.follow(&to_okta).await;
    let (victim_jar, victim) = app.new_browser();
    let response = victim.get(location(&back)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let url = Url::parse(&app.address).unwrap();
    assert!(reqwest::cookie::CookieStore::cookies(&*victim_jar, &url).is_none());
}

#[tokio::test]
async fn okta_refusing_the_sign_in_gives_a_403_page_with_a_retry_link() {
    let app = spawn_app().await;
    app.okta.set_authorize_error(Some("access_denied"));
    let to_okta = app.start("/x").await;
    let back = app.follow(&to_okta).await;
    let response = app.follow(&back).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body = response.text().await.unwrap();
    assert!(
        body.contains("access_denied") && body.contains("/oauth2/start"),
        "{body}"
    );
    assert!(app.session_cookie().is_none());
}

#[tokio::test]
async fn spoiled_id_tokens_are_rejected_without_a_session() {
    let tweaks = [
        TokenTweak::WrongAudience,
        TokenTweak::WrongNonce,
        TokenTweak::Expired,
        TokenTweak::WrongIssuer,
        TokenTweak::UnknownKid,
        TokenTweak::BadSignature,
        TokenTweak::NoneAlg,
    ];
    let app = spawn_app().await;
    for tweak in tweaks {
        app.okta.set_token_tweak(tweak);
        let response = app.login_with_rd("alice", "/x").await;
        assert_eq!(
            response.status(),
            StatusCode::BAD_REQUEST,
            "{tweak:?} was accepted"
        );
        assert!(
            app.session_cookie().is_none(),
            "{tweak:?} created a session"
        );
    }
}

#[tokio::test]
async fn a_token_request_whose_connection_closes_is_sent_once_more() {
    let app = spawn_app().await;
    let before = app.okta.token_calls();
    app.okta.drop_token_connections(1);
    let done = app.login_as("alice").await;
    assert_redirect_to(&done, "/after-login");
    assert!(app.session_cookie().is_some());
    assert_eq!(
        app.okta.token_calls(),
        before + 2,
        "one retry, on a fresh connection"
    );
}

#[tokio::test]
async fn a_token_request_is_retried_only_once() {
    let app = spawn_app().await;
    let before = app.okta.token_calls();
    app.okta.drop_token_connections(2);
    let response = app.login_as("alice").await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert!(app.session_cookie().is_none());
    assert_eq!(app.okta.token_calls(), before + 2);
}

#[tokio::test]
async fn a_rotated_signing_key_is_fetched_once_and_accepted() {
    let app = spawn_app().await;
    let fetched = app.okta.jwks_calls();
    app.okta.rotate_keys();
    let done = app.login_as("alice").await;
    assert_redirect_to(&done, "/after-login");
    assert_eq!(
        app.okta.jwks_calls(),
        fetched + 1,
        "one JWKS refetch for the new kid"
    );
    // Later sign-ins use the cached keys.
    app.login_as("bob").await;
    assert_eq!(app.okta.jwks_calls(), fetched + 1);
}

#[tokio::test]
async fn unknown_kids_do_not_make_us_hammer_the_jwks_endpoint() {
    let app = spawn_app().await;
    let fetched = app.okta.jwks_calls();
    app.okta.set_token_tweak(TokenTweak::UnknownKid);
    for _ in 0..3 {
        let response = app.login_with_rd("alice", "/x").await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    }
    assert!(
        app.okta.jwks_calls() <= fetched + 1,
        "JWKS refetch is rate-limited"
    );
}

#[tokio::test]
async fn open_redirects_are_refused_at_start() {
    let app = spawn_app().await;
    for rd in [
        "//evil.example",
        "/\\evil.example",
        "https://evil.example/",
        "http://127.0.0.1.evil.example/",
        "javascript:alert(1)",
        "https://user@evil.example/",
        "/%2F%2Fevil.example",
        "\t//evil.example",
    ] {
        let response = app.start(rd).await;
        assert_eq!(
            response.status(),
            StatusCode::BAD_REQUEST,
            "rd {rd:?} accepted"
        );
    }
}

#[tokio::test]
async fn the_allowed_rd_is_where_the_browser_lands() {
    let app = spawn_app_with(&[("ALLOWED_REDIRECT_DOMAINS", ".example.com")]).await;
    let done = app
        .login_with_rd("alice", "https://app.example.com/deep/link?q=1")
        .await;
    assert_eq!(location(&done), "https://app.example.com/deep/link?q=1");
}

#[tokio::test]
async fn the_session_cookie_is_opaque_small_and_http_only() {
    let app = spawn_app_with(&[("COOKIE_SECURE", "true"), ("COOKIE_DOMAIN", "127.0.0.1")]).await;
    let done = app.login_with_rd("alice", "/x").await;
    let set_cookie: Vec<String> = done
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    // Secure with a COOKIE_DOMAIN: the `__Secure-` prefix.
    let cookie = set_cookie
        .iter()
        .find(|c| c.starts_with("__Secure-_forward_auth="))
        .expect("session cookie");
    let value = cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("__Secure-_forward_auth=");
    assert!(value.len() < 100, "cookie value is {} bytes", value.len());
    for attr in [
        "HttpOnly",
        "SameSite=Lax",
        "Secure",
        "Path=/",
        "Domain=127.0.0.1",
        "Max-Age=50400",
    ] {
        assert!(cookie.contains(attr), "{cookie} lacks {attr}");
    }
    assert!(!cookie.contains("eyJ"), "no JWT in the cookie");
}
