//! Issue 10's defects, each through the real service: bounded memory for
//! strangers flooding `/oauth2/start` (process RSS and Redis), no echo of huge
//! URLs, repeated cookies, strict policy parameters, the proxy's own forwarded
//! headers, backslashes in the query, cross-site sign-out everywhere, prefixed
//! cookie names, the binding cookie's lifetime, unverified emails, commas in
//! group names and empty `/oauth2/auth` bodies.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use reqwest::{Response, StatusCode};

use crate::support::app::{header, location, spawn_app, spawn_app_with, TestApp, COOKIE_NAME};
use crate::support::redis::RedisServer;
use crate::support::service_process::ServiceProcess;
use fake_okta::{FakeOkta, FakeUser, TokenTweak};

const ORIGINAL: &str = "https://app.example.com/";
const FLOOD: usize = 10_000;
const RD_BYTES: usize = 60 * 1024;
const MEMORY_BUDGET: u64 = 64 * 1024 * 1024;
const MAX_HEADER: usize = 4096;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn start_url_with_rd(app: &TestApp, rd: &str) -> String {
    let encoded: String = url::form_urlencoded::byte_serialize(rd.as_bytes()).collect();
    format!("{}/oauth2/start?rd={encoded}", app.address)
}

/// Every `Set-Cookie` of a response.
fn set_cookies(response: &Response) -> Vec<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

/// The `Set-Cookie` for cookie `name`, if any.
fn set_cookie(response: &Response, name: &str) -> Option<String> {
    set_cookies(response)
        .into_iter()
        .find(|c| c.starts_with(&format!("{name}=")))
}

/// The value part of a `Set-Cookie`.
fn value_of(set_cookie: &str) -> String {
    let pair = set_cookie.split(';').next().unwrap();
    pair.split_once('=').unwrap().1.to_string()
}

fn assert_headers_fit(response: &Response) {
    for (name, value) in response.headers() {
        assert!(value.len() <= MAX_HEADER, "{name} is {} bytes", value.len());
    }
}

/// `FLOOD` starts with a 60 KB `rd` from 8 connections at once; every answer
/// is a redirect to Okta whose headers stay small.
async fn flood_starts(base: &str) {
    let url = Arc::new(format!("{base}/oauth2/start?rd=/{}", "a".repeat(RD_BYTES)));
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (url, next) = (url.clone(), next.clone());
            tokio::spawn(async move {
                let client = client();
                while next.fetch_add(1, Ordering::Relaxed) < FLOOD {
                    let response = client.get(url.as_str()).send().await.unwrap();
                    assert_eq!(response.status(), StatusCode::FOUND);
                    assert_headers_fit(&response);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
}

/// A whole sign-in with a fresh client against `base`; returns the callback's answer.
async fn sign_in_at(okta: &FakeOkta, base: &str, login: &str, rd: &str) -> Response {
    okta.sign_in_as(&okta.user(login).id);
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let browser = crate::support::app::browser(jar);
    let to_okta = browser
        .get(format!("{base}/oauth2/start?rd={rd}"))
        .send()
        .await
        .unwrap();
    assert_eq!(to_okta.status(), StatusCode::FOUND);
    let back = browser.get(location(&to_okta)).send().await.unwrap();
    assert_eq!(back.status(), StatusCode::FOUND);
    browser.get(location(&back)).send().await.unwrap()
}

#[tokio::test]
async fn a_flood_of_starts_with_huge_rd_keeps_the_process_small_and_sign_ins_working() {
    let okta = FakeOkta::start().await;
    let service = ServiceProcess::start(&okta, &[]).await;
    // Warm up allocator arenas and connection buffers before the baseline.
    let done = sign_in_at(&okta, &service.base, "alice", "/warm").await;
    assert_eq!(location(&done), "/warm");
    let before = service.rss_bytes();
    flood_starts(&service.base).await;
    let after = service.rss_bytes();
    eprintln!("RSS before the flood: {before} bytes, after: {after} bytes");
    assert!(
        after <= before + MEMORY_BUDGET,
        "RSS grew from {before} to {after} bytes"
    );
    let done = sign_in_at(&okta, &service.base, "bob", "/after-flood").await;
    assert_eq!(
        done.status(),
        StatusCode::FOUND,
        "a real sign-in still works"
    );
    assert_eq!(location(&done), "/after-flood");
}

#[tokio::test]
async fn a_flood_of_starts_leaves_redis_memory_flat() {
    let Some(redis) = RedisServer::start(false) else {
        return;
    };
    let app = spawn_app_with(&[("SESSION_STORE", &redis.url())]).await;
    app.login_as("alice").await;
    let before = redis.info_number("used_memory").expect("used_memory");
    flood_starts(&app.address).await;
    let after = redis.info_number("used_memory").expect("used_memory");
    eprintln!("Redis used_memory before the flood: {before} bytes, after: {after} bytes");
    assert!(
        after <= before + MEMORY_BUDGET,
        "Redis used_memory grew from {before} to {after} bytes"
    );
    let done = app.login_with_rd("bob", "/after-flood").await;
    assert_eq!(location(&done), "/after-flood");
}

#[tokio::test]
async fn a_huge_original_url_is_cut_in_the_location_and_nginx_answers_have_no_body() {
    let app = spawn_app_with(&[("ALLOWED_REDIRECT_DOMAINS", ".example.com")]).await;
    let uri = format!("/deep/path?q={}", "x".repeat(64 * 1024));
    let navigate = [("Accept", "text/html"), ("Sec-Fetch-Mode", "navigate")];
    let forward = app.forward("GET", "app.example.com", &uri, &navigate).await;
    assert_eq!(forward.status(), StatusCode::FOUND);
    assert_headers_fit(&forward);
    assert_eq!(
        location(&forward),
        start_url_with_rd(&app, "https://app.example.com/deep/path")
    );

    let nginx = app.auth(&format!("https://app.example.com{uri}")).await;
    assert_eq!(nginx.status(), StatusCode::UNAUTHORIZED);
    assert_headers_fit(&nginx);
    assert_eq!(
        location(&nginx),
        start_url_with_rd(&app, "https://app.example.com/deep/path")
    );
    assert!(nginx.bytes().await.unwrap().is_empty(), "a 401 body");

    // A long path too: only the origin is left.
    let long_path = format!("https://app.example.com/{}", "p".repeat(3000));
    let nginx = app.auth(&long_path).await;
    assert_eq!(
        location(&nginx),
        start_url_with_rd(&app, "https://app.example.com/")
    );
}

#[tokio::test]
async fn nginx_403_and_400_answers_have_empty_bodies() {
    let app = spawn_app_with(&[("ALLOWED_GROUPS", "admins")]).await;
    app.login_as("carol").await;
    let forbidden = app.auth(ORIGINAL).await;
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
    assert!(forbidden.bytes().await.unwrap().is_empty(), "a 403 body");
    let bad = app.auth_at("/oauth2/auth?allowed_groups=", ORIGINAL).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert!(bad.bytes().await.unwrap().is_empty(), "a 400 body");
}

#[tokio::test]
async fn only_the_first_three_valid_session_cookies_are_looked_up() {
    let app = spawn_app().await;
    app.login_as("alice").await;
    let ended = app.session_cookie().unwrap();
    app.client
        .get(app.url("/oauth2/sign_out"))
        .send()
        .await
        .unwrap();
    app.login_as("alice").await;
    let live = app.session_cookie().unwrap();
    assert_ne!(ended, live);
    let n = COOKIE_NAME;
    let third = format!("{n}={ended}; {n}={ended}; {n}={live}");
    assert_eq!(
        app.auth_with_cookie(&third, ORIGINAL).await.status(),
        StatusCode::OK
    );
    let fourth = format!("{n}={ended}; {n}={ended}; {n}={ended}; {n}={live}");
    assert_eq!(
        app.auth_with_cookie(&fourth, ORIGINAL).await.status(),
        StatusCode::UNAUTHORIZED,
        "a fourth valid value was looked up"
    );
    // Values without a valid MAC cost nothing and do not count.
    let junk = format!("{n}=x; {n}=y; {n}=z; {n}=w; {n}={live}");
    assert_eq!(
        app.auth_with_cookie(&junk, ORIGINAL).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn repeated_or_unknown_policy_parameters_are_refused() {
    let app = spawn_app().await;
    app.login_as("alice").await;
    assert_eq!(
        app.auth_at("/oauth2/auth?allowed_groups=admins", ORIGINAL)
            .await
            .status(),
        StatusCode::OK
    );
    for path in [
        "/oauth2/auth?allowed_groups=nobody&allowed_groups=admins",
        "/oauth2/auth?allowed_groups=nobody&allowed_users=alice@example.com&allowed_users=x@y.z",
        "/oauth2/auth?allowed_groups=admins&foo=1",
        "/oauth2/auth?allowed_emails=alice@example.com",
        "/oauth2/forward?allowed_groups=nobody&allowed_groups=admins",
        "/oauth2/forward?x=1&allowed_emails=alice@example.com",
    ] {
        let response = app
            .client
            .get(app.url(path))
            .header("X-Original-URL", ORIGINAL)
            .header("X-Forwarded-Proto", "https")
            .header("X-Forwarded-Host", "app.example.com")
            .header("X-Forwarded-Uri", "/")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
        assert!(response.headers().get("x-auth-request-user").is_none());
    }
    // A client's own query that a Caddyfile passes on cannot be a rule there.
    let forward = app
        .forward("GET", "app.example.com", "/", &[("Accept", "text/html")])
        .await;
    assert_eq!(forward.status(), StatusCode::OK);
    let caddy_style = app
        .client
        .get(app.url("/oauth2/forward?page=2&allowed_groups=admins"))
        .header("X-Forwarded-Proto", "https")
        .header("X-Forwarded-Host", "app.example.com")
        .header("X-Forwarded-Uri", "/?page=2")
        .send()
        .await
        .unwrap();
    assert_eq!(caddy_style.status(), StatusCode::OK);
}

#[tokio::test]
async fn forward_reads_the_proxys_forwarded_headers_before_a_clients_original_url() {
    let app = spawn_app_with(&[("ALLOWED_REDIRECT_DOMAINS", ".example.com")]).await;
    let forward = app
        .forward(
            "GET",
            "app.example.com",
            "/real",
            &[
                ("Accept", "text/html"),
                ("Sec-Fetch-Mode", "navigate"),
                (
                    "X-Original-URL",
                    "https://other.example.com/chosen-by-client",
                ),
            ],
        )
        .await;
    assert_eq!(forward.status(), StatusCode::FOUND);
    assert_eq!(
        location(&forward),
        start_url_with_rd(&app, "https://app.example.com/real")
    );
    // nginx's endpoint keeps X-Original-URL first.
    let nginx = app
        .client
        .get(app.url("/oauth2/auth"))
        .header("X-Original-URL", "https://app.example.com/nginx")
        .header("X-Forwarded-Host", "other.example.com")
        .header("X-Forwarded-Uri", "/x")
        .send()
        .await
        .unwrap();
    assert_eq!(
        location(&nginx),
        start_url_with_rd(&app, "https://app.example.com/nginx")
    );
}

#[tokio::test]
async fn a_backslash_in_the_query_does_not_break_sign_in() {
    let app = spawn_app().await;
    let rd = "/search?q=a%5Cb&path=C:\\dir";
    let done = app.login_with_rd("alice", rd).await;
    assert_eq!(done.status(), StatusCode::FOUND);
    assert_eq!(location(&done), rd);
    // At the start of the path it is still refused.
    assert_eq!(
        app.start("/\\evil.example").await.status(),
        StatusCode::BAD_REQUEST
    );
}

async fn check_in(client: &reqwest::Client, app: &TestApp) -> StatusCode {
    client
        .get(app.url("/oauth2/auth"))
        .header("X-Original-URL", ORIGINAL)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn sign_out_everywhere_needs_a_post_from_our_own_origin() {
    let app = spawn_app().await;
    let (_, other) = app.new_browser();
    app.login_in(&other, "alice").await;
    let everywhere = app.url("/oauth2/sign_out?everywhere=true");

    app.login_as("alice").await;
    let get = app.client.get(&everywhere).send().await.unwrap();
    assert_eq!(get.status(), StatusCode::FOUND);
    assert_eq!(check_in(&app.client, &app).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        check_in(&other, &app).await,
        StatusCode::OK,
        "a GET ended the other browser's session"
    );

    app.login_as("alice").await;
    app.client
        .post(&everywhere)
        .header("Origin", "https://evil.example")
        .header("Sec-Fetch-Site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(check_in(&app.client, &app).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        check_in(&other, &app).await,
        StatusCode::OK,
        "a cross-site POST ended the other browser's session"
    );

    app.login_as("alice").await;
    app.client
        .post(&everywhere)
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(check_in(&other, &app).await, StatusCode::OK);

    app.login_as("alice").await;
    app.client
        .post(&everywhere)
        .header("Origin", app.address.as_str())
        .header("Sec-Fetch-Site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(
        check_in(&other, &app).await,
        StatusCode::UNAUTHORIZED,
        "a same-origin POST ends every session"
    );
}

#[tokio::test]
async fn secure_cookies_are_prefixed_and_a_planted_old_name_is_not_a_session() {
    for (domain, prefix) in [(None, "__Host-"), (Some("127.0.0.1"), "__Secure-")] {
        let mut vars = vec![("COOKIE_SECURE", "true")];
        if let Some(domain) = domain {
            vars.push(("COOKIE_DOMAIN", domain));
        }
        let app = spawn_app_with(&vars).await;
        let plain = client();
        let (session_name, binding_name) = (
            format!("{prefix}{COOKIE_NAME}"),
            // Host-only, so __Host- also with a domain.
            format!("__Host-{COOKIE_NAME}_csrf"),
        );
        app.okta.sign_in_as(&app.okta.user("alice").id);
        let start = plain
            .get(app.url("/oauth2/start?rd=/x"))
            .send()
            .await
            .unwrap();
        let binding = set_cookie(&start, &binding_name)
            .unwrap_or_else(|| panic!("{binding_name} set: {:?}", set_cookies(&start)));
        for attr in ["Secure", "Path=/", "HttpOnly"] {
            assert!(binding.contains(attr), "{binding} lacks {attr}");
        }
        assert!(!binding.contains("Domain"), "{binding}");
        let back = plain.get(location(&start)).send().await.unwrap();
        let done = plain
            .get(location(&back))
            .header("Cookie", format!("{binding_name}={}", value_of(&binding)))
            .send()
            .await
            .unwrap();
        assert_eq!(done.status(), StatusCode::FOUND);
        let session = set_cookie(&done, &session_name)
            .unwrap_or_else(|| panic!("{session_name} set: {:?}", set_cookies(&done)));
        assert!(session.contains("Secure") && session.contains("Path=/"));
        assert_eq!(session.contains("Domain="), domain.is_some(), "{session}");
        let value = value_of(&session);
        let check = app
            .auth_with_cookie(&format!("{session_name}={value}"), ORIGINAL)
            .await;
        assert_eq!(check.status(), StatusCode::OK);
        // The memory store holds no session of an earlier version: the
        // unprefixed name, which a sibling subdomain could plant, is not read.
        let planted = app
            .auth_with_cookie(&format!("{COOKIE_NAME}={value}"), ORIGINAL)
            .await;
        assert_eq!(planted.status(), StatusCode::UNAUTHORIZED);
        let out = plain
            .get(app.url("/oauth2/sign_out"))
            .header("Cookie", format!("{session_name}={value}"))
            .send()
            .await
            .unwrap();
        for name in [session_name.as_str(), COOKIE_NAME] {
            let cleared = set_cookie(&out, name).unwrap_or_else(|| panic!("{name} not cleared"));
            assert!(cleared.contains("Max-Age=0"), "{cleared}");
        }
        let check = app
            .auth_with_cookie(&format!("{session_name}={value}"), ORIGINAL)
            .await;
        assert_eq!(check.status(), StatusCode::UNAUTHORIZED, "signed out");
    }
}

#[tokio::test]
async fn with_redis_the_old_name_is_read_for_one_cookie_lifetime_from_the_first_prefixed_start() {
    let Some(redis) = RedisServer::start(false) else {
        return;
    };
    let url = redis.url();
    let vars = [("COOKIE_SECURE", "true"), ("SESSION_STORE", url.as_str())];
    let first = spawn_app_with(&vars).await;
    let plain = client();
    first.okta.sign_in_as(&first.okta.user("alice").id);
    let start = plain
        .get(first.url("/oauth2/start?rd=/x"))
        .send()
        .await
        .unwrap();
    let binding = set_cookie(&start, &format!("__Host-{COOKIE_NAME}_csrf")).unwrap();
    let back = plain.get(location(&start)).send().await.unwrap();
    let done = plain
        .get(location(&back))
        .header(
            "Cookie",
            format!("__Host-{COOKIE_NAME}_csrf={}", value_of(&binding)),
        )
        .send()
        .await
        .unwrap();
    let value = value_of(&set_cookie(&done, &format!("__Host-{COOKIE_NAME}")).unwrap());
    // A session in Redis may come from before the upgrade: the old name works.
    let old = first
        .auth_with_cookie(&format!("{COOKIE_NAME}={value}"), ORIGINAL)
        .await;
    assert_eq!(old.status(), StatusCode::OK);

    // The window starts at the first prefixed start recorded in Redis; a later
    // start (a restart, another replica) reads the same time, not its own.
    let mut con = redis::Client::open(redis.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let recorded: u64 = redis::cmd("GET")
        .arg("fa:cookie-prefix-since")
        .query(&mut con)
        .unwrap();
    let long_ago = recorded - 15 * 3600;
    let _: () = redis::cmd("SET")
        .arg("fa:cookie-prefix-since")
        .arg(long_ago)
        .query(&mut con)
        .unwrap();
    let later = spawn_app_with(&vars).await;
    let old = later
        .auth_with_cookie(&format!("{COOKIE_NAME}={value}"), ORIGINAL)
        .await;
    assert_eq!(
        old.status(),
        StatusCode::UNAUTHORIZED,
        "past one COOKIE_EXPIRE (14h) from the first start, the old name is ignored"
    );
    let new = later
        .auth_with_cookie(&format!("__Host-{COOKIE_NAME}={value}"), ORIGINAL)
        .await;
    assert_eq!(new.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_callback_clears_what_it_consumed_and_several_tabs_still_sign_in() {
    let app = spawn_app().await;
    app.okta.sign_in_as(&app.okta.user("alice").id);
    let tab_a = app.start("/a").await;
    let tab_b = app.start("/b").await;
    let back_a = app.follow(&tab_a).await;
    let back_b = app.follow(&tab_b).await;
    let done_b = app.follow(&back_b).await;
    assert_eq!(location(&done_b), "/b");
    let binding = format!("{COOKIE_NAME}_csrf");
    let kept = set_cookie(&done_b, &binding).expect("the binding cookie is rewritten");
    assert!(!value_of(&kept).is_empty(), "tab a's sign-in is kept");
    let done_a = app.follow(&back_a).await;
    assert_eq!(location(&done_a), "/a");
    let cleared = set_cookie(&done_a, &binding).expect("the binding cookie is cleared");
    assert!(
        cleared.contains("Max-Age=0") && value_of(&cleared).is_empty(),
        "{cleared}"
    );
    let jar =
        reqwest::cookie::CookieStore::cookies(&*app.jar, &url::Url::parse(&app.address).unwrap())
            .map(|h| h.to_str().unwrap().to_string())
            .unwrap_or_default();
    assert!(!jar.contains(&format!("{binding}=")), "{jar}");
}

#[tokio::test]
async fn an_unverified_email_matches_no_allow_list() {
    let app = spawn_app_with(&[("ALLOWED_DOMAINS", "example.com")]).await;
    app.login_as("alice").await;
    assert_eq!(app.auth(ORIGINAL).await.status(), StatusCode::OK);
    app.okta.set_token_tweak(TokenTweak::EmailUnverified);
    let (_, unverified) = app.new_browser();
    app.login_in(&unverified, "alice").await;
    assert_eq!(check_in(&unverified, &app).await, StatusCode::FORBIDDEN);

    let app = spawn_app_with(&[("ALLOWED_USERS", "boss@example.com")]).await;
    let mut mallory = FakeUser::new("mallory", &[]);
    mallory.login = "mallory".to_string();
    mallory.email = "boss@example.com".to_string();
    app.okta.add_user(mallory);
    app.okta.set_token_tweak(TokenTweak::EmailUnverified);
    app.login_as("mallory").await;
    let check = app.auth(ORIGINAL).await;
    assert_eq!(check.status(), StatusCode::FORBIDDEN);
    app.okta.set_token_tweak(TokenTweak::None);
    let (_, verified) = app.new_browser();
    app.login_in(&verified, "mallory").await;
    assert_eq!(check_in(&verified, &app).await, StatusCode::OK);
}

#[tokio::test]
async fn a_comma_in_a_group_name_stays_one_group_in_the_header() {
    let app = spawn_app().await;
    let alice = app.okta.user("alice");
    app.okta.set_groups(
        &alice.id,
        vec![
            ("00gsales".to_string(), "Sales, EMEA".to_string()),
            ("00gops".to_string(), "ops".to_string()),
        ],
    );
    app.login_as("alice").await;
    let check = app.auth(ORIGINAL).await;
    assert_eq!(check.status(), StatusCode::OK);
    assert_eq!(header(&check, "x-auth-request-groups"), "Sales%2C EMEA,ops");
}

/// Failed script calls (EVAL refused on a read-only server) so far.
fn failed_evals(port: u16) -> u64 {
    ["cmdstat_eval.failed_calls", "cmdstat_eval.rejected_calls"]
        .iter()
        .filter_map(|f| RedisServer::info_number_on(port, f))
        .sum()
}

#[tokio::test]
async fn a_failed_save_after_a_refresh_is_retried_so_the_rotated_token_is_kept() {
    let Some(redis) = RedisServer::start(false) else {
        return;
    };
    let url = redis.url();
    let a = spawn_app_with(&[("SESSION_STORE", &url)]).await;
    let b = crate::support::app::spawn_app_for(a.okta.clone(), &[("SESSION_STORE", &url)]).await;
    // Tokens due at once: every check past the coalescing window refreshes.
    a.okta.set_token_lifetime(5);
    a.login_as("alice").await;
    let cookie = format!("{COOKIE_NAME}={}", a.session_cookie().unwrap());
    let port = redis.port();
    let failed_before = failed_evals(port);
    // Redis turns read-only (a replica of nothing) until the save has failed once.
    let free = crate::support::process::free_port();
    let reply = RedisServer::command_on(port, &format!("REPLICAOF 127.0.0.1 {free}"));
    assert_eq!(reply.as_deref(), Some("+OK"));
    let watcher = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while failed_evals(port) == failed_before && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        RedisServer::command_on(port, "REPLICAOF NO ONE")
    });
    assert_eq!(
        a.auth_with_cookie(&cookie, ORIGINAL).await.status(),
        StatusCode::OK
    );
    assert_eq!(watcher.await.unwrap().as_deref(), Some("+OK"));
    assert!(failed_evals(port) > failed_before, "the first save failed");
    assert_eq!(a.okta.refresh_calls(), 1);
    // Another replica refreshes with the stored token: the rotated one, or
    // Okta (which kills a refresh token on use) refuses and the session ends.
    assert_eq!(
        b.auth_with_cookie(&cookie, ORIGINAL).await.status(),
        StatusCode::OK,
        "the rotated refresh token was lost"
    );
    assert_eq!(a.okta.refresh_calls(), 2);
}
