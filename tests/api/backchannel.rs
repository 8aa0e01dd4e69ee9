//! `POST /oauth2/backchannel_logout` against the real server and the fake Okta:
//! a valid logout token ends the Okta session it names (or, with only `sub`,
//! every session of the user) and nothing else, once; every forged, misaddressed
//! or malformed token and every bad body is a JSON 400 that ends nothing and
//! does not use up its `jti`; a rotated signing key is fetched; without
//! discovery the answer is 503; on Redis, a logout sent to one replica ends the
//! session on the other.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Client, Response, StatusCode};
use serde_json::{json, Value};

use crate::support::app::{header, spawn_app_for, spawn_app_with, TestApp, COOKIE_NAME};
use crate::support::redis::RedisServer;
use fake_okta::{random_token, FakeOkta};

const ORIGINAL: &str = "https://app.example.com/";
const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
const KEY_1_PEM: &[u8] = include_bytes!("../keys/test-key-1.pem");
const KEY_2_PEM: &[u8] = include_bytes!("../keys/test-key-2.pem");

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The claims of a good logout token from the fake's org issuer, with a fresh jti.
fn logout_claims(okta: &FakeOkta, sub: Option<&str>, sid: Option<&str>) -> Value {
    let mut claims = json!({
        "iss": okta.org_issuer(),
        "aud": FakeOkta::CLIENT_ID,
        "iat": now(),
        "jti": random_token(),
        "events": { EVENT: {} },
    });
    if let Some(sub) = sub {
        claims["sub"] = json!(sub);
    }
    if let Some(sid) = sid {
        claims["sid"] = json!(sid);
    }
    claims
}

/// `claims` with members replaced, or removed where the new value is null.
fn with(mut claims: Value, changes: Value) -> Value {
    for (name, value) in changes.as_object().unwrap() {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(name);
        } else {
            claims[name] = value.clone();
        }
    }
    claims
}

/// A JWT signed here rather than by the fake, to spoil the header or the key.
fn sign(
    alg: Algorithm,
    kid: Option<&str>,
    typ: Option<&str>,
    key: &EncodingKey,
    claims: &Value,
) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    header.typ = typ.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The IdP's POST: a form with `logout_token`, from a client without cookies.
async fn post_logout_token(app: &TestApp, token: &str) -> Response {
    post_form(app, &[("logout_token", token)]).await
}

async fn post_form(app: &TestApp, form: &[(&str, &str)]) -> Response {
    Client::new()
        .post(app.url("/oauth2/backchannel_logout"))
        .form(form)
        .send()
        .await
        .unwrap()
}

/// The proxy's check with one browser's cookies.
async fn check(app: &TestApp, browser: &Client) -> StatusCode {
    browser
        .get(app.url("/oauth2/auth"))
        .header("X-Original-URL", ORIGINAL)
        .send()
        .await
        .unwrap()
        .status()
}

async fn assert_logged_out_ok(response: Response) {
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "cache-control"), "no-store");
    assert!(
        response.headers().get("set-cookie").is_none(),
        "the IdP gets no cookie"
    );
    assert_eq!(
        response.text().await.unwrap(),
        "",
        "the spec wants an empty body"
    );
}

/// Asserts a JSON `invalid_request` 400 that does not repeat the token.
async fn assert_refused(response: Response, token: &str, case: &str) {
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{case}");
    assert_eq!(header(&response, "cache-control"), "no-store", "{case}");
    let text = response.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{case}: {text}"));
    assert_eq!(body["error"], "invalid_request", "{case}: {text}");
    assert!(body["error_description"].is_string(), "{case}: {text}");
    for part in token.split('.').filter(|p| p.len() > 8) {
        assert!(!text.contains(part), "{case}: the answer repeats the token");
    }
}

/// alice signed in in two browsers and bob in a third; `alice_sid_1` is the
/// Okta session of alice's first browser.
struct ThreeSessions {
    app: TestApp,
    alice_1: Client,
    alice_2: Client,
    bob: Client,
    alice_sid_1: String,
    alice_sid_2: String,
    alice: String,
    bob_sub: String,
}

impl ThreeSessions {
    async fn start() -> ThreeSessions {
        Self::start_with(&[]).await
    }

    async fn start_with(vars: &[(&str, &str)]) -> ThreeSessions {
        let app = spawn_app_with(vars).await;
        let (_, alice_1) = app.new_browser();
        app.login_in(&alice_1, "alice").await;
        let alice_sid_1 = app.okta.last_sid().expect("Okta put a sid in the ID token");
        let (_, alice_2) = app.new_browser();
        app.login_in(&alice_2, "alice").await;
        let alice_sid_2 = app.okta.last_sid().unwrap();
        assert_ne!(
            alice_sid_1, alice_sid_2,
            "each browser has its own Okta session"
        );
        let (_, bob) = app.new_browser();
        app.login_in(&bob, "bob").await;
        let sessions = ThreeSessions {
            alice: app.okta.user("alice").id,
            bob_sub: app.okta.user("bob").id,
            app,
            alice_1,
            alice_2,
            bob,
            alice_sid_1,
            alice_sid_2,
        };
        assert_eq!(sessions.statuses().await, [StatusCode::OK; 3]);
        sessions
    }

    /// The checks of alice's first and second browser and of bob's.
    async fn statuses(&self) -> [StatusCode; 3] {
        [
            check(&self.app, &self.alice_1).await,
            check(&self.app, &self.alice_2).await,
            check(&self.app, &self.bob).await,
        ]
    }

    fn claims_for_sid_1(&self) -> Value {
        logout_claims(&self.app.okta, Some(&self.alice), Some(&self.alice_sid_1))
    }
}

const OK: StatusCode = StatusCode::OK;
const UNAUTHORIZED: StatusCode = StatusCode::UNAUTHORIZED;

#[tokio::test]
async fn a_logout_token_with_a_sid_ends_only_that_okta_session() {
    let s = ThreeSessions::start().await;
    let token = s.app.okta.sign_logout_token(s.claims_for_sid_1());
    assert_logged_out_ok(post_logout_token(&s.app, &token).await).await;
    assert_eq!(
        s.statuses().await,
        [UNAUTHORIZED, OK, OK],
        "alice's other browser and bob keep their sessions"
    );
}

#[tokio::test]
async fn a_logout_token_with_only_a_sid_ends_that_okta_session() {
    let s = ThreeSessions::start().await;
    let claims = logout_claims(&s.app.okta, None, Some(&s.alice_sid_2));
    let token = s.app.okta.sign_logout_token(claims);
    assert_logged_out_ok(post_logout_token(&s.app, &token).await).await;
    assert_eq!(s.statuses().await, [OK, UNAUTHORIZED, OK]);
}

#[tokio::test]
async fn a_logout_token_with_only_a_sub_ends_every_session_of_that_user() {
    let s = ThreeSessions::start().await;
    let token = s
        .app
        .okta
        .sign_logout_token(logout_claims(&s.app.okta, Some(&s.alice), None));
    assert_logged_out_ok(post_logout_token(&s.app, &token).await).await;
    assert_eq!(s.statuses().await, [UNAUTHORIZED, UNAUTHORIZED, OK]);
}

#[tokio::test]
async fn a_sid_with_another_users_sub_ends_nothing() {
    let s = ThreeSessions::start().await;
    let claims = logout_claims(&s.app.okta, Some(&s.bob_sub), Some(&s.alice_sid_1));
    let token = s.app.okta.sign_logout_token(claims);
    assert_logged_out_ok(post_logout_token(&s.app, &token).await).await;
    assert_eq!(s.statuses().await, [OK; 3]);
}

#[tokio::test]
async fn a_replayed_logout_token_is_refused_and_ends_nothing() {
    let s = ThreeSessions::start().await;
    let token = s
        .app
        .okta
        .sign_logout_token(logout_claims(&s.app.okta, Some(&s.alice), None));
    assert_logged_out_ok(post_logout_token(&s.app, &token).await).await;
    assert_eq!(s.statuses().await, [UNAUTHORIZED, UNAUTHORIZED, OK]);

    // alice signs in again; the same token must not sign her out a second time.
    s.app.login_in(&s.alice_1, "alice").await;
    assert_eq!(check(&s.app, &s.alice_1).await, OK);
    assert_refused(post_logout_token(&s.app, &token).await, &token, "replay").await;
    assert_eq!(check(&s.app, &s.alice_1).await, OK);
}

/// Tokens that must be refused, each with alice's first session as its target.
fn bad_tokens(s: &ThreeSessions) -> Vec<(&'static str, String)> {
    let okta = &s.app.okta;
    let good = || s.claims_for_sid_1();
    let signed = |claims: Value| okta.sign_logout_token(claims);
    let key_1 = EncodingKey::from_rsa_pem(KEY_1_PEM).unwrap();
    let key_2 = EncodingKey::from_rsa_pem(KEY_2_PEM).unwrap();
    let kid = okta.current_kid();

    // A real token for another session, its payload swapped for a sub-only one.
    let genuine = signed(good());
    let parts: Vec<&str> = genuine.split('.').collect();
    let forged_payload = b64(with(good(), json!({ "sid": null })).to_string().as_bytes());
    let tampered = format!("{}.{forged_payload}.{}", parts[0], parts[2]);
    let none_header =
        b64(format!(r#"{{"alg":"none","typ":"logout+jwt","kid":"{kid}"}}"#).as_bytes());
    let alg_none = format!("{none_header}.{}.", b64(good().to_string().as_bytes()));

    vec![
        (
            "signed by a key the JWKS does not list, under its kid",
            sign(
                Algorithm::RS256,
                Some(&kid),
                Some("logout+jwt"),
                &key_2,
                &good(),
            ),
        ),
        (
            "signed by a key the JWKS does not list, under another kid",
            sign(
                Algorithm::RS256,
                Some("no-such-key"),
                Some("logout+jwt"),
                &key_2,
                &good(),
            ),
        ),
        ("tampered payload", tampered),
        ("alg none", alg_none),
        (
            "HS256 with the client secret",
            sign(
                Algorithm::HS256,
                Some(&kid),
                Some("logout+jwt"),
                &EncodingKey::from_secret(FakeOkta::CLIENT_SECRET.as_bytes()),
                &good(),
            ),
        ),
        (
            "RS512",
            sign(
                Algorithm::RS512,
                Some(&kid),
                Some("logout+jwt"),
                &key_1,
                &good(),
            ),
        ),
        (
            "wrong iss",
            signed(with(good(), json!({ "iss": "https://evil.example.com" }))),
        ),
        (
            "the org's other authorization server as iss",
            signed(with(good(), json!({ "iss": okta.custom_issuer() }))),
        ),
        ("no iss", signed(with(good(), json!({ "iss": null })))),
        (
            "wrong aud",
            signed(with(good(), json!({ "aud": "someone-else" }))),
        ),
        ("no aud", signed(with(good(), json!({ "aud": null })))),
        ("no events", signed(with(good(), json!({ "events": null })))),
        (
            "events without the back-channel logout event",
            signed(with(
                good(),
                json!({ "events": { "http://schemas.openid.net/event/frontchannel-logout": {} } }),
            )),
        ),
        (
            "events member not an object",
            signed(with(good(), json!({ "events": { EVENT: true } }))),
        ),
        (
            "a nonce",
            signed(with(good(), json!({ "nonce": "n-0S6_WzA2Mj" }))),
        ),
        ("no jti", signed(with(good(), json!({ "jti": null })))),
        ("empty jti", signed(with(good(), json!({ "jti": "" })))),
        (
            "neither sid nor sub",
            signed(with(good(), json!({ "sid": null, "sub": null }))),
        ),
        ("no iat", signed(with(good(), json!({ "iat": null })))),
        (
            "iat in the future",
            signed(with(good(), json!({ "iat": now() + 600 }))),
        ),
        (
            "iat too old",
            signed(with(good(), json!({ "iat": now() - 600 }))),
        ),
        (
            "exp passed",
            signed(with(good(), json!({ "exp": now() - 300 }))),
        ),
        (
            "typ of an access token",
            sign(
                Algorithm::RS256,
                Some(&kid),
                Some("at+jwt"),
                &key_1,
                &good(),
            ),
        ),
        ("not a JWT", "not-a-jwt".to_owned()),
        ("a JWE-shaped token", format!("{genuine}.e30.e30")),
    ]
}

#[tokio::test]
async fn every_bad_logout_token_gets_400_and_ends_nothing() {
    let s = ThreeSessions::start().await;
    for (case, token) in bad_tokens(&s) {
        assert_refused(post_logout_token(&s.app, &token).await, &token, case).await;
        assert_eq!(s.statuses().await, [OK; 3], "{case} ended a session");
    }
}

#[tokio::test]
async fn the_same_claims_signed_properly_are_accepted() {
    // The control for the test above: what it spoils works when unspoiled.
    let s = ThreeSessions::start().await;
    let key_1 = EncodingKey::from_rsa_pem(KEY_1_PEM).unwrap();
    let kid = s.app.okta.current_kid();
    let token = sign(
        Algorithm::RS256,
        Some(&kid),
        Some("JWT"),
        &key_1,
        &s.claims_for_sid_1(),
    );
    assert_logged_out_ok(post_logout_token(&s.app, &token).await).await;
    assert_eq!(s.statuses().await, [UNAUTHORIZED, OK, OK]);
}

#[tokio::test]
async fn a_refused_token_does_not_use_up_its_jti() {
    let s = ThreeSessions::start().await;
    let claims = s.claims_for_sid_1();
    let key_2 = EncodingKey::from_rsa_pem(KEY_2_PEM).unwrap();
    let kid = s.app.okta.current_kid();
    let forged = sign(
        Algorithm::RS256,
        Some(&kid),
        Some("logout+jwt"),
        &key_2,
        &claims,
    );
    assert_refused(post_logout_token(&s.app, &forged).await, &forged, "forged").await;

    let genuine = s.app.okta.sign_logout_token(claims);
    assert_logged_out_ok(post_logout_token(&s.app, &genuine).await).await;
    assert_eq!(s.statuses().await, [UNAUTHORIZED, OK, OK]);
}

#[tokio::test]
async fn bad_requests_get_400_and_end_nothing() {
    let s = ThreeSessions::start().await;
    let endpoint = s.app.url("/oauth2/backchannel_logout");
    let token = s.app.okta.sign_logout_token(s.claims_for_sid_1());
    let huge = "a".repeat(20 * 1024);
    let cases: Vec<(&str, reqwest::RequestBuilder)> = vec![
        (
            "no logout_token",
            Client::new()
                .post(&endpoint)
                .form(&[("token", token.as_str())]),
        ),
        (
            "empty logout_token",
            Client::new().post(&endpoint).form(&[("logout_token", "")]),
        ),
        (
            "empty body",
            Client::new()
                .post(&endpoint)
                .header("content-type", "application/x-www-form-urlencoded"),
        ),
        (
            "logout_token twice",
            Client::new().post(&endpoint).form(&[
                ("logout_token", token.as_str()),
                ("logout_token", token.as_str()),
            ]),
        ),
        (
            "JSON instead of a form",
            Client::new()
                .post(&endpoint)
                .json(&json!({ "logout_token": token })),
        ),
        (
            "garbage body",
            Client::new()
                .post(&endpoint)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(vec![0xff, 0xfe, b'%', b'%', 0x00, b'=', b'&']),
        ),
        (
            "a body over 16 KiB",
            Client::new()
                .post(&endpoint)
                .form(&[("logout_token", token.as_str()), ("padding", huge.as_str())]),
        ),
    ];
    for (case, request) in cases {
        let response = request.send().await.unwrap();
        assert_refused(response, &token, case).await;
    }
    assert_eq!(s.statuses().await, [OK; 3]);

    // The token was never read in full: it still works once.
    assert_logged_out_ok(post_logout_token(&s.app, &token).await).await;
}

#[tokio::test]
async fn other_methods_are_not_a_logout() {
    let s = ThreeSessions::start().await;
    let token = s.app.okta.sign_logout_token(s.claims_for_sid_1());
    let mut url = url::Url::parse(&s.app.url("/oauth2/backchannel_logout")).unwrap();
    url.query_pairs_mut().append_pair("logout_token", &token);
    for method in [
        reqwest::Method::GET,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    ] {
        let response = Client::new()
            .request(method.clone(), url.clone())
            .send()
            .await
            .unwrap();
        assert!(
            matches!(
                response.status(),
                StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_FOUND
            ),
            "{method} answered {}",
            response.status()
        );
    }
    assert_eq!(s.statuses().await, [OK; 3]);
}

#[tokio::test]
async fn a_token_signed_with_a_rotated_key_is_accepted_after_one_jwks_fetch() {
    let s = ThreeSessions::start().await;
    let fetches = s.app.okta.jwks_calls();
    s.app.okta.rotate_keys();
    let token = s.app.okta.sign_logout_token(s.claims_for_sid_1());
    assert_logged_out_ok(post_logout_token(&s.app, &token).await).await;
    assert_eq!(s.statuses().await, [UNAUTHORIZED, OK, OK]);
    assert_eq!(s.app.okta.jwks_calls(), fetches + 1);
}

#[tokio::test]
async fn unknown_kids_refetch_the_keys_at_most_once_per_interval() {
    let s = ThreeSessions::start().await;
    let fetches = s.app.okta.jwks_calls();
    let key_2 = EncodingKey::from_rsa_pem(KEY_2_PEM).unwrap();
    for _ in 0..3 {
        let claims = s.claims_for_sid_1();
        let token = sign(
            Algorithm::RS256,
            Some("no-such-key"),
            Some("logout+jwt"),
            &key_2,
            &claims,
        );
        assert_refused(
            post_logout_token(&s.app, &token).await,
            &token,
            "unknown kid",
        )
        .await;
    }
    assert_eq!(
        s.app.okta.jwks_calls(),
        fetches + 1,
        "never a fetch per request"
    );
    assert_eq!(s.statuses().await, [OK; 3]);
}

#[tokio::test]
async fn without_discovery_the_endpoint_answers_503() {
    let okta = FakeOkta::start().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let issuer = format!("http://127.0.0.1:{}", closed.local_addr().unwrap().port());
    drop(closed);
    let app = spawn_app_for(okta.clone(), &[("IDP_PROVIDER_URL", &issuer)]).await;
    let mut claims = logout_claims(&okta, Some(&okta.user("alice").id), None);
    claims["iss"] = json!(issuer);
    let token = okta.sign_logout_token(claims);
    let response = post_logout_token(&app, &token).await;
    assert_eq!(
        response.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "the keys cannot be known: the IdP should retry, never a 2xx"
    );
}

/// Polls `app`'s check with `cookie` until it is 401, for up to a second.
async fn assert_ends_within_a_second(app: &TestApp, cookie: &str, replica: &str) {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let status = app.auth_with_cookie(cookie, ORIGINAL).await.status();
        if status == UNAUTHORIZED {
            return;
        }
        assert!(
            status == OK && Instant::now() < deadline,
            "replica {replica} still answers {status}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn on_redis_a_logout_sent_to_one_replica_ends_the_session_on_the_other() {
    let Some(redis) = RedisServer::start(false) else {
        return;
    };
    let url = redis.url();
    let a = spawn_app_with(&[("SESSION_STORE", &url)]).await;
    let b = spawn_app_for(a.okta.clone(), &[("SESSION_STORE", &url)]).await;
    a.login_as("alice").await;
    let cookie = format!("{COOKIE_NAME}={}", a.session_cookie().expect("signed in"));
    let sid = a.okta.last_sid().unwrap();
    for app in [&a, &b] {
        assert_eq!(app.auth_with_cookie(&cookie, ORIGINAL).await.status(), OK);
    }

    let alice = a.okta.user("alice").id;
    let token = a
        .okta
        .sign_logout_token(logout_claims(&a.okta, Some(&alice), Some(&sid)));
    assert_logged_out_ok(post_logout_token(&b, &token).await).await;
    assert_ends_within_a_second(&a, &cookie, "A").await;
    assert_ends_within_a_second(&b, &cookie, "B").await;

    // The jti is shared too: the other replica refuses the replay.
    assert_refused(post_logout_token(&a, &token).await, &token, "replay on A").await;
}

#[tokio::test]
async fn a_store_outage_answers_503_and_the_idps_retry_then_works() {
    let Some(mut redis) = RedisServer::start(true) else {
        return;
    };
    let app = spawn_app_with(&[("SESSION_STORE", &redis.url())]).await;
    app.login_as("alice").await;
    let cookie = format!("{COOKIE_NAME}={}", app.session_cookie().expect("signed in"));
    let alice = app.okta.user("alice").id;
    let token = app
        .okta
        .sign_logout_token(logout_claims(&app.okta, Some(&alice), None));

    redis.stop();
    let response = post_logout_token(&app, &token).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);

    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let response = post_logout_token(&app, &token).await;
        if response.status() != StatusCode::SERVICE_UNAVAILABLE {
            assert_logged_out_ok(response).await;
            break;
        }
        assert!(Instant::now() < deadline, "Redis did not come back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        app.auth_with_cookie(&cookie, ORIGINAL).await.status(),
        UNAUTHORIZED
    );
}
