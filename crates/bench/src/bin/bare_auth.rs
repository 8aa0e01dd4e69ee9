//! `cargo run --release -p forward-auth-bench --bin bare_auth -- [PORT]`: the framework's ceiling
//! for `scripts/bench.sh`.
//!
//! An actix-web server, built like the service (same actix-web, default worker
//! count: one per core the process may run on, so the same `taskset` gives the
//! same workers), whose `GET /oauth2/auth` answers 200 with the same headers as
//! an allowed check of alice (`Cache-Control: no-store` and the four
//! `X-Auth-Request-*`) from constants: no cookie, no session, no groups, no
//! policy; `GET /oauth2/denied` answers an empty 401 with the headers of the
//! service's denied check in the benchmark (`Cache-Control`, `WWW-Authenticate`,
//! a `Location` of the same length: nginx reads and copies them), from constants.
//! Prints `BARE_AUTH_URL=…`, then serves on 127.0.0.1 until killed.
//! BENCHMARK ONLY: it lets everyone in.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test and benchmark code: a failure should stop loudly"
)]

use std::io::Write as _;
use std::net::TcpListener;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, App, HttpResponse, HttpServer};

async fn allow() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .insert_header(("x-auth-request-user", "alice@example.com"))
        .insert_header(("x-auth-request-email", "alice@example.com"))
        .insert_header(("x-auth-request-groups", "Everyone,admins"))
        .insert_header(("x-auth-request-preferred-username", "alice@example.com"))
        .finish()
}

async fn deny() -> HttpResponse {
    HttpResponse::Unauthorized()
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .insert_header((
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Cookie realm=\"forward-auth\""),
        ))
        .insert_header((
            header::LOCATION,
            HeaderValue::from_static("http://127.0.0.1:40000/oauth2/start"),
        ))
        .finish()
}

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    let port: u16 = match std::env::args().nth(1).map(|p| p.parse()) {
        None => 0,
        Some(Ok(port)) => port,
        Some(Err(_)) => {
            eprintln!("bare_auth: usage: bare_auth [PORT]");
            return std::process::ExitCode::from(2);
        }
    };
    let listener = match TcpListener::bind(("127.0.0.1", port)) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("bare_auth: cannot listen on 127.0.0.1:{port}: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(port);
    let server = match HttpServer::new(|| {
        App::new()
            .route("/oauth2/auth", web::get().to(allow))
            .route("/oauth2/denied", web::get().to(deny))
    })
    .listen(listener)
    {
        Ok(server) => server.run(),
        Err(e) => {
            eprintln!("bare_auth: cannot serve: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    println!("BARE_AUTH_URL=http://127.0.0.1:{port}");
    let _ = std::io::stdout().flush();
    match server.await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bare_auth: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
