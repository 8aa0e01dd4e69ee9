//! Scale figures for BENCHMARKS.md (`cargo run --release -p forward-auth-bench --bin scale`).
//!
//! `cold`: N distinct signed-in users (default 10 000) check at once with a cold
//! groups cache; the fake Okta counts the groups calls per user (must be exactly
//! one each), then the same checks again cost none.
//! `rss`: the service's resident memory with 0, 10k and 100k live sessions.
//! Sessions are created through the store API (`Application::store`), the
//! documented hook for tests and benchmarks; they are shaped like the ones a
//! real Okta sign-in leaves (refresh token kept, ID token not).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test and benchmark code: a failure should stop loudly"
)]

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Instant;

use forward_auth::clock::now;
use forward_auth::config::Config;
use forward_auth::identity::Identity;
use forward_auth::secret::Secret;
use forward_auth::session::{CookieCodec, Session, SessionId};
use forward_auth::startup::Application;

use fake_okta::{FakeOkta, FakeUser};

const COOKIE_SECRET: &str = "c2NhbGUtYmVuY2htYXJrLWNvb2tpZS1zZWNyZXQtMzI=";

fn vars(issuer: &str, port: u16) -> Vec<(String, String)> {
    [
        ("IDP_PROVIDER", "okta".to_string()),
        ("IDP_PROVIDER_URL", issuer.to_string()),
        ("IDP_CLIENT_ID", FakeOkta::CLIENT_ID.to_string()),
        ("IDP_CLIENT_SECRET", FakeOkta::CLIENT_SECRET.to_string()),
        ("IDP_SERVICE_ACCOUNT", FakeOkta::API_TOKEN.to_string()),
        (
            "AUTHENTICATE_SERVICE_URL",
            format!("http://127.0.0.1:{port}"),
        ),
        ("ADDRESS", format!("127.0.0.1:{port}")),
        ("COOKIE_SECRET", COOKIE_SECRET.to_string()),
        ("COOKIE_SECURE", "false".to_string()),
        ("LOG_LEVEL", "error".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// A session shaped like one from a real Okta sign-in.
fn session(i: usize, sub: &str) -> Session {
    let now = now();
    let login = format!("user{i:06}@example.com");
    Session {
        identity: Identity::new(
            sub.to_string(),
            login.clone(),
            login,
            format!("User {i:06}"),
        )
        .with_sid(Some(format!("102{i:017}"))),
        created_at: now,
        expires_at: now + 14 * 3600,
        tokens_expire_at: now + 3600,
        refresh_not_before: 0,
        // Okta refresh tokens are 43 characters.
        refresh_token: Some(Secret::new(format!("{i:043}"))),
        // With a refresh token the service keeps no ID token (sign-out refreshes).
        id_token: None,
        cookie_domain: None,
        hot: Default::default(),
    }
}

async fn build(issuer: &str) -> (Application, Config, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    let port = listener.local_addr().expect("bound").port();
    let (config, _) = Config::from_vars(vars(issuer, port)).expect("valid config");
    let app = Application::build_with_listener(config.clone(), listener)
        .await
        .expect("the service builds");
    (app, config, port)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

async fn cold(users: usize) {
    let okta = FakeOkta::start().await;
    // A real org's groups-API budget (often 600/min) would make most of a cold
    // 10k rush wait for the next minute (they get 503, never 2xx); here the
    // question is only how many calls the rush costs.
    okta.set_rate_limit(u64::MAX);
    let mut subs = Vec::with_capacity(users);
    for i in 0..users {
        let user = FakeUser::new(&format!("user{i:06}"), &["staff", "engineering"]);
        subs.push(user.id.clone());
        okta.add_user(user);
    }
    let (app, config, port) = build(&okta.org_issuer()).await;
    let store = app.store();
    let codec = CookieCodec::new(config.cookie.keys.clone());
    tokio::spawn(app.run_until_stopped());
    let mut cookies = Vec::with_capacity(users);
    for (i, sub) in subs.iter().enumerate() {
        let id = SessionId::random();
        store.save(&id, &session(i, sub)).await.expect("saved");
        cookies.push(format!("_forward_auth={}", codec.encode_session(&id)));
    }
    let cookies = Arc::new(cookies);
    let url = format!("http://127.0.0.1:{port}/oauth2/auth");
    let client = reqwest::Client::new();
    for round in ["cold", "warm"] {
        let before = okta.groups_calls();
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        let limit = Arc::new(tokio::sync::Semaphore::new(256));
        for i in 0..users {
            let (client, url, cookies, limit) =
                (client.clone(), url.clone(), cookies.clone(), limit.clone());
            tasks.spawn(async move {
                let _permit = limit.acquire().await.ok();
                client
                    .get(&url)
                    .header("Cookie", &cookies[i])
                    .header("X-Original-URL", "https://app.example.com/")
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0)
            });
        }
        let mut ok = 0;
        let mut other = std::collections::BTreeMap::<u16, usize>::new();
        while let Some(status) = tasks.join_next().await {
            match status.unwrap_or(0) {
                200 => ok += 1,
                s => *other.entry(s).or_default() += 1,
            }
        }
        let elapsed = started.elapsed();
        let calls = okta.groups_calls() - before;
        println!(
            "{round}: {users} distinct users checked at once (256 in flight): {ok} x 200, other {other:?}, \
             {calls} Okta groups calls, {:.2} s",
            elapsed.as_secs_f64()
        );
        if round == "cold" {
            let exactly_one = subs
                .iter()
                .filter(|s| okta.groups_calls_for(s) == 1)
                .count();
            println!("cold: users with exactly one groups call: {exactly_one}/{users}");
        }
    }
}

async fn rss() {
    // No IdP needed: sessions come through the store, and discovery retries in
    // the background against a closed port.
    let closed = TcpListener::bind("127.0.0.1:0")
        .expect("a port")
        .local_addr()
        .expect("bound")
        .port();
    let (app, _, _) = build(&format!("http://127.0.0.1:{closed}")).await;
    let store = app.store();
    tokio::spawn(app.run_until_stopped());
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let base = rss_kib();
    println!("rss: 0 sessions: {:.1} MiB", base as f64 / 1024.0);
    let mut made = 0;
    for target in [10_000usize, 100_000] {
        while made < target {
            let id = SessionId::random();
            store
                .save(&id, &session(made, &format!("00u{made:017}")))
                .await
                .expect("saved");
            made += 1;
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let now = rss_kib();
        println!(
            "rss: {target} sessions: {:.1} MiB ({:.0} bytes per session above the empty service)",
            now as f64 / 1024.0,
            (now - base) as f64 * 1024.0 / target as f64
        );
    }
}

#[actix_web::main]
async fn main() {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "all".into());
    let users = std::env::args()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    match mode.as_str() {
        "cold" => cold(users).await,
        "rss" => rss().await,
        _ => {
            eprintln!("usage: scale cold [USERS] | scale rss");
            std::process::exit(2);
        }
    }
}
