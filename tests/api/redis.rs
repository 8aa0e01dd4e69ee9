//! `SESSION_STORE=redis://…` against a real `redis-server` on a free loopback
//! port: two replicas share sessions and a sign-out on one ends it on both; a
//! Redis outage gives 503 (never 2xx, never a panic) and service resumes by
//! itself when Redis returns. [`RedisServer`] is also the conformance suite's.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::helpers::{spawn_app_for, spawn_app_with, TestApp, COOKIE_NAME};
use crate::proxies::{free_port, TempDir};

const ORIGINAL: &str = "https://app.example.com/";

/// A `redis-server` child on 127.0.0.1, stopped and reaped on drop.
pub(crate) struct RedisServer {
    child: Option<Child>,
    port: u16,
    persistent: bool,
    dir: TempDir,
}

impl RedisServer {
    /// Starts one, or `None` (loudly) when `redis-server` is not installed;
    /// with `CI=true` a missing binary fails the test instead. `persistent`
    /// keeps data across [`restart`](Self::restart) (append-only file in a
    /// temporary directory).
    pub(crate) fn start(persistent: bool) -> Option<RedisServer> {
        if Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_err()
        {
            let message = "redis-server not installed — apt-get install redis-server";
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{message} (CI=true: a missing Redis is a failure)");
            }
            eprintln!("\n!!!!! SKIPPED: {message}; the Redis store was NOT tested !!!!!\n");
            return None;
        }
        let mut server = RedisServer {
            child: None,
            port: free_port(),
            persistent,
            dir: TempDir::new("redis"),
        };
        server.run();
        Some(server)
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn run(&mut self) {
        let dir = self.dir.path("");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", if self.persistent { "yes" } else { "no" }])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.answers() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn answers(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
        let mut reply = [0u8; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut reply).is_ok()
            && &reply == b"+PONG\r\n"
    }

    /// Stops the server (SIGTERM: it writes its append-only file first).
    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and directory.
    pub(crate) fn restart(&mut self) {
        self.stop();
        self.run();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn cookie_of(app: &TestApp) -> String {
    format!("{COOKIE_NAME}={}", app.session_cookie().expect("signed in"))
}

async fn readyz(app: &TestApp) -> StatusCode {
    app.client
        .get(app.url("/readyz"))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn replicas_share_sessions_and_a_sign_out_on_one_ends_it_on_both() {
    let Some(redis) = RedisServer::start(false) else {
        return;
    };
    let url = redis.url();
    let a = spawn_app_with(&[("SESSION_STORE", &url)]).await;
    let b = spawn_app_for(a.okta.clone(), &[("SESSION_STORE", &url)]).await;
    a.login_as("alice").await;
    let cookie = cookie_of(&a);
    assert_eq!(
        a.auth_with_cookie(&cookie, ORIGINAL).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        b.auth_with_cookie(&cookie, ORIGINAL).await.status(),
        StatusCode::OK,
        "the other replica accepts the session"
    );

    let signed_out = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(b.url("/oauth2/sign_out"))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(signed_out.status(), StatusCode::FOUND);
    for app in [&a, &b] {
        assert_eq!(
            app.auth_with_cookie(&cookie, ORIGINAL).await.status(),
            StatusCode::UNAUTHORIZED,
            "a sign-out on one replica ends the session on all"
        );
    }
}

#[tokio::test]
async fn a_redis_outage_answers_503_and_service_resumes_when_redis_returns() {
    let Some(mut redis) = RedisServer::start(true) else {
        return;
    };
    let app = spawn_app_with(&[("SESSION_STORE", &redis.url())]).await;
    app.login_as("alice").await;
    let cookie = cookie_of(&app);
    assert_eq!(
        app.auth_with_cookie(&cookie, ORIGINAL).await.status(),
        StatusCode::OK
    );
    assert_eq!(readyz(&app).await, StatusCode::OK);

    redis.stop();
    assert_eq!(
        app.auth_with_cookie(&cookie, ORIGINAL).await.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "a session that cannot be verified is never let through"
    );
    assert_eq!(readyz(&app).await, StatusCode::SERVICE_UNAVAILABLE);

    redis.restart();
    // The connection manager reconnects by itself; the session survived in
    // the append-only file.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = app.auth_with_cookie(&cookie, ORIGINAL).await.status();
        if status == StatusCode::OK {
            break;
        }
        assert!(
            status == StatusCode::SERVICE_UNAVAILABLE && Instant::now() < deadline,
            "after Redis returned the check answered {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(readyz(&app).await, StatusCode::OK);
}

#[tokio::test]
async fn a_rediss_url_speaks_tls_and_fails_cleanly_against_a_plain_server() {
    use forward_auth::session::{RedisStore, SessionStore};
    let Some(redis) = RedisServer::start(false) else {
        return;
    };
    // The TLS stack (rustls with the ring provider) must build and fail the
    // handshake with an error, not a panic; the message names no secret.
    let url = redis.url().replacen("redis://", "rediss://:hunter2@", 1);
    let store = RedisStore::new(&url).expect("a valid URL");
    let e = store
        .ping()
        .await
        .expect_err("a plain server cannot do TLS");
    assert!(!e.to_string().contains("hunter2"), "{e}");
}
