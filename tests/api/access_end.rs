//! Okta's other ways of saying that access ended, against the real server and
//! the fake Okta: Universal Logout (`POST /oauth2/global-token-revocation`:
//! both subject formats, refresh tokens revoked at Okta, every bad token a
//! 401 and every bad body a 400 that end nothing), front-channel Single
//! Logout (`GET /oauth2/frontchannel_logout`), both across three replicas on
//! a real redis-server; and signing-key rotation under load: concurrent
//! sign-ins and refreshes racing the key refetch all succeed, and tokens with
//! made-up keys cannot spend the refetch that sign-ins need.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{json, Value};
use url::Url;

use crate::support::app::{
    header, location, session_cookie_in, spawn_app, spawn_app_for, spawn_app_with, TestApp,
    COOKIE_NAME,
};
use crate::support::redis::RedisServer;
use fake_okta::FakeOkta;

const ORIGINAL: &str = "https://app.example.com/";
const PATIENCE: Duration = Duration::from_secs(10);
const KEY_2_PEM: &[u8] = include_bytes!("../keys/test-key-2.pem");

/// Signs `login` in with a fresh browser; its cookie header and Okta `sid`.
async fn signed_in(app: &TestApp, login: &str) -> (String, String) {
    let (jar, browser) = app.new_browser();
    app.login_in(&browser, login).await;
    let value = session_cookie_in(&jar, &app.address).expect("signed in");
    let sid = app
        .okta
        .last_sid()
        .expect("the sign-in had an Okta session");
    (format!("{COOKIE_NAME}={value}"), sid)
}

async fn check(app: &TestApp, cookie: &str) -> StatusCode {
    app.auth_with_cookie(cookie, ORIGINAL).await.status()
}

async fn refused_within_patience(app: &TestApp, cookie: &str) -> Duration {
    let start = Instant::now();
    loop {
        let status = check(app, cookie).await;
        if status == StatusCode::UNAUTHORIZED {
            return start.elapsed();
        }
        assert_eq!(status, StatusCode::OK, "unexpected answer");
        assert!(start.elapsed() < PATIENCE, "still accepted");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn endpoint(app: &TestApp) -> String {
    app.url("/oauth2/global-token-revocation")
}

async fn revoke(app: &TestApp, token: Option<&str>, body: &Value) -> reqwest::Response {
    let mut request = app.client.post(endpoint(app)).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

fn iss_sub(okta: &FakeOkta, sub: &str) -> Value {
    json!({ "sub_id": { "format": "iss_sub", "iss": okta.org_issuer(), "sub": sub } })
}

#[tokio::test]
async fn universal_logout_ends_every_session_of_the_user_and_revokes_their_refresh_tokens() {
    let app = spawn_app().await;
    let bob = app.okta.user("bob");
    let (laptop, _) = signed_in(&app, "bob").await;
    let (phone, _) = signed_in(&app, "bob").await;
    let (alice, _) = signed_in(&app, "alice").await;
    let live = app.okta.live_refresh_tokens().len();
    assert_eq!(live, 3, "one refresh token per session");

    assert_eq!(
        app.okta.universal_logout(&endpoint(&app), &bob.id).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(check(&app, &laptop).await, StatusCode::UNAUTHORIZED);
    assert_eq!(check(&app, &phone).await, StatusCode::UNAUTHORIZED);
    assert_eq!(check(&app, &alice).await, StatusCode::OK);
    let start = Instant::now();
    while app.okta.live_refresh_tokens().len() != 1 {
        assert!(
            start.elapsed() < PATIENCE,
            "bob's refresh tokens were not revoked"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn universal_logout_by_email_ends_the_sessions_with_that_email() {
    let app = spawn_app().await;
    let (bob, _) = signed_in(&app, "bob").await;
    let (alice, _) = signed_in(&app, "alice").await;
    let token = app
        .okta
        .sign_universal_logout_token(&endpoint(&app), json!({}));
    let body = json!({ "sub_id": { "format": "email", "email": "Bob@Example.com" } });
    assert_eq!(
        revoke(&app, Some(&token), &body).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(check(&app, &bob).await, StatusCode::UNAUTHORIZED);
    assert_eq!(check(&app, &alice).await, StatusCode::OK);
}

#[tokio::test]
async fn a_revocation_token_works_once() {
    let app = spawn_app().await;
    let bob = app.okta.user("bob");
    let token = app
        .okta
        .sign_universal_logout_token(&endpoint(&app), json!({}));
    let body = iss_sub(&app.okta, &bob.id);
    assert_eq!(
        revoke(&app, Some(&token), &body).await.status(),
        StatusCode::NO_CONTENT
    );
    let (again, _) = signed_in(&app, "bob").await;
    let replay = revoke(&app, Some(&token), &body).await;
    assert_eq!(replay.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        check(&app, &again).await,
        StatusCode::OK,
        "a replay ends nothing"
    );
}

#[tokio::test]
async fn every_bad_revocation_token_is_a_401_that_ends_nothing() {
    let app = spawn_app().await;
    let bob = app.okta.user("bob");
    let (cookie, _) = signed_in(&app, "bob").await;
    let body = iss_sub(&app.okta, &bob.id);
    let aud = endpoint(&app);
    let okta = &app.okta;
    let now = forward_auth::clock::now();
    let mut tokens = vec![
        okta.sign_universal_logout_token(&aud, json!({ "aud": FakeOkta::CLIENT_ID })),
        okta.sign_universal_logout_token("https://elsewhere.example.com/oauth2/global-token-revocation", json!({})),
        okta.sign_universal_logout_token(&aud, json!({ "aud": null })),
        okta.sign_universal_logout_token(&aud, json!({ "iss": "https://evil.example.com" })),
        okta.sign_universal_logout_token(&aud, json!({ "exp": now - 600 })),
        okta.sign_universal_logout_token(&aud, json!({ "exp": null })),
        okta.sign_universal_logout_token(&aud, json!({ "nbf": now + 600 })),
        okta.sign_universal_logout_token(&aud, json!({ "iat": null })),
        okta.sign_universal_logout_token(&aud, json!({ "jti": null })),
        // A back-channel logout token is not a revocation token.
        okta.sign_logout_token(json!({
            "iss": okta.org_issuer(), "aud": aud, "iat": now, "exp": now + 300, "jti": "x", "sub": bob.id,
        })),
        "not-a-jwt".to_string(),
    ];
    // Signed by a key Okta does not list.
    let mut header = Header::new(Algorithm::RS256);
    header.typ = Some("global-token-revocation+jwt".into());
    header.kid = Some("test-key-2".into());
    let claims = json!({ "iss": okta.org_issuer(), "sub": FakeOkta::CLIENT_ID, "aud": aud, "iat": now, "exp": now + 300, "jti": "forged" });
    tokens.push(
        jsonwebtoken::encode(
            &header,
            &claims,
            &EncodingKey::from_rsa_pem(KEY_2_PEM).unwrap(),
        )
        .unwrap(),
    );
    for token in &tokens {
        let answer = revoke(&app, Some(token), &body).await;
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
        assert!(header_of(&answer, "www-authenticate").starts_with("Bearer"));
        let text = answer.text().await.unwrap();
        assert!(!text.contains(token.as_str()), "the token is not echoed");
    }
    assert_eq!(
        revoke(&app, None, &body).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(check(&app, &cookie).await, StatusCode::OK);
}

fn header_of(response: &reqwest::Response, name: &str) -> String {
    header(response, name)
}

#[tokio::test]
async fn a_bad_body_is_a_400_that_does_not_use_up_the_token() {
    let app = spawn_app().await;
    let bob = app.okta.user("bob");
    let (cookie, _) = signed_in(&app, "bob").await;
    let token = app
        .okta
        .sign_universal_logout_token(&endpoint(&app), json!({}));
    for body in [
        json!({}),
        json!({ "sub_id": { "format": "opaque", "id": "x" } }),
        json!({ "sub_id": { "format": "iss_sub", "sub": bob.id } }),
        json!({ "sub_id": { "format": "email" } }),
    ] {
        assert_eq!(
            revoke(&app, Some(&token), &body).await.status(),
            StatusCode::BAD_REQUEST,
            "{body}"
        );
    }
    assert_eq!(check(&app, &cookie).await, StatusCode::OK);
    let good = iss_sub(&app.okta, &bob.id);
    assert_eq!(
        revoke(&app, Some(&token), &good).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(check(&app, &cookie).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_user_of_another_issuer_is_unknown() {
    let app = spawn_app().await;
    let bob = app.okta.user("bob");
    let (cookie, _) = signed_in(&app, "bob").await;
    let token = app
        .okta
        .sign_universal_logout_token(&endpoint(&app), json!({}));
    let body = json!({ "sub_id": { "format": "iss_sub", "iss": "https://other.okta.com", "sub": bob.id } });
    assert_eq!(
        revoke(&app, Some(&token), &body).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(check(&app, &cookie).await, StatusCode::OK);
}

#[tokio::test]
async fn single_logout_ends_the_sessions_of_that_okta_session_only() {
    let app = spawn_app().await;
    app.okta
        .set_frontchannel_logout_uri(Some(&app.url("/oauth2/frontchannel_logout")));
    let (first, first_sid) = signed_in(&app, "bob").await;
    let (second, _) = signed_in(&app, "bob").await;
    let (alice, _) = signed_in(&app, "alice").await;

    let page = app
        .okta
        .single_logout(&first_sid)
        .await
        .expect("a URI is registered");
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(header(&page, "cache-control"), "no-store");
    let okta_origin = app.okta.base_url();
    let csp = header(&page, "content-security-policy");
    assert!(
        csp.contains(&format!("frame-ancestors {okta_origin}")),
        "{csp}"
    );
    assert!(page.text().await.unwrap().len() < 200, "a tiny page");

    assert_eq!(check(&app, &first).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        check(&app, &second).await,
        StatusCode::OK,
        "another Okta session"
    );
    assert_eq!(check(&app, &alice).await, StatusCode::OK);
}

#[tokio::test]
async fn a_front_channel_logout_for_another_issuer_or_without_sid_ends_nothing() {
    let app = spawn_app().await;
    let (cookie, sid) = signed_in(&app, "bob").await;
    let mut url = Url::parse(&app.url("/oauth2/frontchannel_logout")).unwrap();
    for query in [
        vec![("iss", "https://evil.example.com"), ("sid", sid.as_str())],
        vec![("sid", sid.as_str())],
        vec![("iss", &app.okta.org_issuer())],
        vec![("iss", &app.okta.org_issuer()), ("sid", "")],
    ] {
        url.query_pairs_mut().clear().extend_pairs(&query);
        let answer = app.client.get(url.clone()).send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::BAD_REQUEST, "{query:?}");
    }
    assert_eq!(check(&app, &cookie).await, StatusCode::OK);
}

#[tokio::test]
async fn a_flood_of_front_channel_logouts_is_refused_past_the_budget_and_ends_nothing() {
    let app = spawn_app().await;
    let (cookie, _) = signed_in(&app, "bob").await;
    let mut url = Url::parse(&app.url("/oauth2/frontchannel_logout")).unwrap();
    url.query_pairs_mut()
        .append_pair("iss", &app.okta.org_issuer())
        .append_pair("sid", "102-not-bobs");
    let answers = join_all((0..60).map(|_| app.client.get(url.clone()).send())).await;
    let statuses: Vec<StatusCode> = answers.into_iter().map(|a| a.unwrap().status()).collect();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    // 60 requests cross at most two seconds: at most 40 fit the budget.
    assert!(refused >= 20, "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    assert_eq!(check(&app, &cookie).await, StatusCode::OK);
}

#[tokio::test]
async fn on_redis_universal_logout_and_single_logout_reach_all_three_replicas() {
    let Some(redis) = RedisServer::start(false) else {
        return;
    };
    let url = redis.url();
    let a = spawn_app_with(&[("SESSION_STORE", &url)]).await;
    let b = spawn_app_for(a.okta.clone(), &[("SESSION_STORE", &url)]).await;
    let c = spawn_app_for(a.okta.clone(), &[("SESSION_STORE", &url)]).await;
    let (bob, _) = signed_in(&a, "bob").await;
    let (alice, alice_sid) = signed_in(&a, "alice").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for app in [&a, &b, &c] {
        for cookie in [&bob, &alice] {
            assert_eq!(check(app, cookie).await, StatusCode::OK);
        }
    }
    let bob_id = a.okta.user("bob").id;
    let sent = Instant::now();
    assert_eq!(
        a.okta.universal_logout(&endpoint(&b), &bob_id).await,
        StatusCode::NO_CONTENT
    );
    for app in [&a, &b, &c] {
        refused_within_patience(app, &bob).await;
    }
    eprintln!(
        "3 replicas on Redis: Universal Logout (to B) refused everywhere after {:?}",
        sent.elapsed()
    );

    a.okta
        .set_frontchannel_logout_uri(Some(&c.url("/oauth2/frontchannel_logout")));
    let page = a.okta.single_logout(&alice_sid).await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    for app in [&a, &b, &c] {
        refused_within_patience(app, &alice).await;
    }
}

/// A sign-in in a fresh browser, all the way; the callback's status.
async fn sign_in_status(app: &TestApp, login: &str) -> StatusCode {
    let (_, browser) = app.new_browser();
    app.okta.sign_in_as(&app.okta.user(login).id);
    let mut start = Url::parse(&app.url("/oauth2/start")).unwrap();
    start.query_pairs_mut().append_pair("rd", "/after-login");
    let to_okta = browser.get(start).send().await.unwrap();
    let back = browser.get(location(&to_okta)).send().await.unwrap();
    browser.get(location(&back)).send().await.unwrap().status()
}

#[tokio::test]
async fn concurrent_sign_ins_across_a_key_rotation_all_succeed() {
    let app = spawn_app().await;
    assert_eq!(sign_in_status(&app, "alice").await, StatusCode::FOUND);
    app.okta.rotate_keys();
    let statuses = join_all((0..24).map(|_| sign_in_status(&app, "alice"))).await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::FOUND),
        "sign-ins racing the key refetch: {statuses:?}"
    );
}

#[tokio::test]
async fn concurrent_refreshes_across_a_key_rotation_keep_every_session() {
    let app = spawn_app().await;
    // Tokens that live 5 s are due at once (renewed 30 s before expiry).
    app.okta.set_token_lifetime(5);
    let mut cookies = Vec::new();
    for _ in 0..12 {
        cookies.push(signed_in(&app, "alice").await.0);
    }
    app.okta.set_token_lifetime(3600);
    app.okta.rotate_keys();
    let statuses = join_all(cookies.iter().map(|c| check(&app, c))).await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "refreshes racing the key refetch: {statuses:?}"
    );
    for cookie in &cookies {
        assert_eq!(
            check(&app, cookie).await,
            StatusCode::OK,
            "the session was kept"
        );
    }
}

#[tokio::test]
async fn tokens_with_made_up_keys_cannot_spend_the_refetch_sign_ins_need() {
    let app = spawn_app().await;
    let bob = app.okta.user("bob");
    // A revocation token signed by a key Okta does not list makes the service
    // refetch the keys (finding nothing new)…
    let now = forward_auth::clock::now();
    let mut header = Header::new(Algorithm::RS256);
    header.typ = Some("global-token-revocation+jwt".into());
    header.kid = Some("test-key-2".into());
    let claims = json!({ "iss": app.okta.org_issuer(), "sub": FakeOkta::CLIENT_ID, "aud": endpoint(&app), "iat": now, "exp": now + 300, "jti": "forged-kid" });
    let forged = jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_rsa_pem(KEY_2_PEM).unwrap(),
    )
    .unwrap();
    let fetches = app.okta.jwks_calls();
    assert_eq!(
        revoke(&app, Some(&forged), &iss_sub(&app.okta, &bob.id))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.okta.jwks_calls(), fetches + 1);
    // …and then Okta really rotates: a sign-in must still be able to refetch.
    app.okta.rotate_keys();
    assert_eq!(sign_in_status(&app, "alice").await, StatusCode::FOUND);
}
