//! `/oauth2/sign_out`: the server-side session ends (a replayed cookie is no
//! session), the cookie is cleared, Okta's session is ended through its
//! `end_session_endpoint`, `rd` passes the allow-list, and `everywhere=true`
//! ends every session of the user and nobody else's.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use reqwest::{Client, Response, StatusCode};
use url::Url;

use crate::support::app::{location, spawn_app, spawn_app_with, TestApp, COOKIE_NAME};

const ORIGINAL: &str = "https://app.example.com/";

fn param(url: &str, name: &str) -> Option<String> {
    Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The `Set-Cookie` header that names the session cookie.
fn session_set_cookie(response: &Response) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{COOKIE_NAME}=")))
        .map(str::to_string)
}

fn assert_clears_the_cookie(response: &Response) {
    let cookie = session_set_cookie(response).expect("the answer sets the session cookie");
    assert!(cookie.starts_with(&format!("{COOKIE_NAME}=;")), "{cookie}");
    assert!(cookie.contains("Max-Age=0"), "{cookie}");
    assert!(cookie.contains("Path=/"), "{cookie}");
}

/// The claims of a JWT, unverified.
fn jwt_claims(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

async fn check_with(app: &TestApp, client: &Client) -> StatusCode {
    client
        .get(app.url("/oauth2/auth"))
        .header("X-Original-URL", ORIGINAL)
        .send()
        .await
        .unwrap()
        .status()
}

async fn sign_out_ends_the_session_at_home_and_at_okta(method: reqwest::Method) {
    let app = spawn_app().await;
    let alice = app.okta.user("alice");
    app.login_as("alice").await;
    let cookie = format!("{COOKIE_NAME}={}", app.session_cookie().unwrap());
    assert_eq!(
        app.auth_with_cookie(&cookie, ORIGINAL).await.status(),
        StatusCode::OK
    );

    let response = app
        .client
        .request(method.clone(), app.url("/oauth2/sign_out?rd=/bye"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND, "{method}");
    assert_clears_the_cookie(&response);
    let to_okta = location(&response);
    assert!(
        to_okta.starts_with(&format!("{}/oauth2/v1/logout?", app.okta.base_url())),
        "{to_okta}"
    );
    assert_eq!(
        param(&to_okta, "post_logout_redirect_uri"),
        Some(app.url("/bye"))
    );
    let hint = param(&to_okta, "id_token_hint").expect("Okta expects id_token_hint");
    assert_eq!(
        jwt_claims(&hint)["sub"],
        alice.id,
        "the hint is alice's ID token"
    );

    // The server-side session is gone: the old cookie value is worth nothing.
    assert_eq!(
        app.auth_with_cookie(&cookie, ORIGINAL).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.auth(ORIGINAL).await.status(), StatusCode::UNAUTHORIZED);

    // Okta ends its session and sends the browser back to rd.
    let at_okta = app.client.get(&to_okta).send().await.unwrap();
    assert_eq!(at_okta.status(), StatusCode::FOUND);
    assert_eq!(location(&at_okta), app.url("/bye"));
    let logouts = app.okta.logout_calls();
    assert_eq!(logouts.len(), 1);
    assert_eq!(param(logouts[0].as_str(), "id_token_hint"), Some(hint));
}

#[tokio::test]
async fn get_sign_out_ends_the_session_here_and_at_okta() {
    sign_out_ends_the_session_at_home_and_at_okta(reqwest::Method::GET).await;
}

#[tokio::test]
async fn post_sign_out_ends_the_session_here_and_at_okta() {
    sign_out_ends_the_session_at_home_and_at_okta(reqwest::Method::POST).await;
}

#[tokio::test]
async fn sign_out_refuses_an_rd_outside_the_allow_list_and_keeps_the_session() {
    let app = spawn_app_with(&[("ALLOWED_REDIRECT_DOMAINS", ".example.com")]).await;
    app.login_as("alice").await;
    for rd in [
        "https://evil.example",
        "//evil.example/",
        "https://example.com.evil.example/",
    ] {
        let mut url = Url::parse(&app.url("/oauth2/sign_out")).unwrap();
        url.query_pairs_mut().append_pair("rd", rd);
        let response = app.client.get(url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "rd {rd}");
        assert!(session_set_cookie(&response).is_none(), "rd {rd}");
    }
    assert_eq!(
        app.auth(ORIGINAL).await.status(),
        StatusCode::OK,
        "a refused sign-out changes nothing"
    );
    assert!(app.okta.logout_calls().is_empty());

    let allowed = "https://app.example.com/signed-out?x=1";
    let mut url = Url::parse(&app.url("/oauth2/sign_out")).unwrap();
    url.query_pairs_mut().append_pair("rd", allowed);
    let response = app.client.get(url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(
        param(&location(&response), "post_logout_redirect_uri").as_deref(),
        Some(allowed)
    );
    assert_eq!(app.auth(ORIGINAL).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn sign_out_everywhere_ends_all_of_the_users_sessions_and_only_theirs() {
    let app = spawn_app().await;
    app.login_as("alice").await;
    let (_, alice_laptop) = app.new_browser();
    app.login_in(&alice_laptop, "alice").await;
    let (_, bob_browser) = app.new_browser();
    app.login_in(&bob_browser, "bob").await;
    assert_eq!(app.auth(ORIGINAL).await.status(), StatusCode::OK);
    assert_eq!(check_with(&app, &alice_laptop).await, StatusCode::OK);
    assert_eq!(check_with(&app, &bob_browser).await, StatusCode::OK);

    // Ending more than this session takes a POST from the service's own origin.
    let response = app
        .client
        .post(app.url("/oauth2/sign_out?everywhere=true"))
        .header("Origin", app.address.as_str())
        .header("Sec-Fetch-Site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_clears_the_cookie(&response);

    assert_eq!(
        check_with(&app, &alice_laptop).await,
        StatusCode::UNAUTHORIZED,
        "alice's other browser"
    );
    assert_eq!(
        check_with(&app, &bob_browser).await,
        StatusCode::OK,
        "bob is not alice"
    );
}

#[tokio::test]
async fn plain_sign_out_ends_only_this_browsers_session() {
    let app = spawn_app().await;
    app.login_as("alice").await;
    let (_, alice_laptop) = app.new_browser();
    app.login_in(&alice_laptop, "alice").await;
    let response = app
        .client
        .get(app.url("/oauth2/sign_out"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(app.auth(ORIGINAL).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(check_with(&app, &alice_laptop).await, StatusCode::OK);
}

#[tokio::test]
async fn sign_out_without_a_session_clears_the_cookie_and_goes_to_rd() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/oauth2/sign_out?rd=/bye"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_clears_the_cookie(&response);
    assert_eq!(location(&response), "/bye");
    // A stale or forged cookie is no session either.
    let forged = app
        .client
        .get(app.url("/oauth2/sign_out?rd=/bye"))
        .header("Cookie", format!("{COOKIE_NAME}=forged.value"))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FOUND);
    assert_eq!(location(&forged), "/bye");
    assert!(app.okta.logout_calls().is_empty());
}

#[tokio::test]
async fn sign_out_revokes_the_refresh_token_at_okta() {
    let app = spawn_app().await;
    app.login_as("alice").await;
    assert_eq!(
        app.okta.live_refresh_tokens().len(),
        1,
        "the sign-in got a refresh token"
    );
    let response = app
        .client
        .get(app.url("/oauth2/sign_out"))
        .send()
        .await
        .unwrap();
    assert!(
        location(&response).contains("id_token_hint="),
        "Okta's sign-out gets a hint"
    );
    assert!(
        app.okta.live_refresh_tokens().is_empty(),
        "no refresh token of the session stays usable"
    );
}

#[tokio::test]
async fn when_okta_refuses_the_refresh_at_sign_out_the_local_session_still_ends() {
    let app = spawn_app().await;
    app.login_as("alice").await;
    let cookie = format!("{COOKIE_NAME}={}", app.session_cookie().unwrap());
    app.okta
        .set_refresh_mode(fake_okta::RefreshMode::InvalidGrant);
    let response = app
        .client
        .get(app.url("/oauth2/sign_out?rd=/bye"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(
        location(&response),
        "/bye",
        "no Okta sign-out without a hint"
    );
    assert_clears_the_cookie(&response);
    app.okta.set_refresh_mode(fake_okta::RefreshMode::Ok);
    assert_eq!(
        app.auth_with_cookie(&cookie, ORIGINAL).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn without_a_refresh_token_the_kept_id_token_is_the_hint() {
    let app = spawn_app_with(&[("IDP_SCOPES", "openid email profile")]).await;
    app.login_as("alice").await;
    let response = app
        .client
        .get(app.url("/oauth2/sign_out"))
        .send()
        .await
        .unwrap();
    let hint = param(&location(&response), "id_token_hint").expect("a hint");
    assert_eq!(jwt_claims(&hint)["sub"], app.okta.user("alice").id);
    assert_eq!(app.okta.refresh_calls(), 0, "no refresh was needed");
}

#[tokio::test]
async fn a_long_rd_never_pushes_the_sign_out_location_past_4_kb() {
    let app = spawn_app().await;
    app.login_as("alice").await;
    // 2,000 characters of path: allowed as rd, but each `/` triples when
    // encoded into Okta's post_logout_redirect_uri, beside the ID token.
    let rd = "/a".repeat(1000);
    let mut url = url::Url::parse(&app.url("/oauth2/sign_out")).unwrap();
    url.query_pairs_mut().append_pair("rd", &rd);

    let response = app.client.get(url).send().await.unwrap();

    assert_eq!(response.status(), StatusCode::FOUND);
    assert_clears_the_cookie(&response);
    let to_okta = location(&response);
    assert!(to_okta.len() <= 4000, "Location of {} bytes", to_okta.len());
    assert!(
        to_okta.starts_with(&format!("{}/oauth2/v1/logout?", app.okta.base_url())),
        "Okta's session still ends: {to_okta}"
    );
    assert_eq!(
        param(&to_okta, "post_logout_redirect_uri"),
        Some(app.url("/")),
        "the target is cut to the origin"
    );
    assert!(param(&to_okta, "id_token_hint").is_some());
}
