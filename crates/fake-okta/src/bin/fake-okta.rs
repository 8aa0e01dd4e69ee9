//! `cargo run --release -p fake-okta -- [PORT]`: the test suite's fake Okta
//! as a stand-alone identity provider for `scripts/bench.sh`.
//!
//! Serves the fake Okta on 127.0.0.1:PORT (0 or none: a free port), approves
//! every `/authorize` at once as alice (an Okta session in the browser), and
//! serves its call counters as JSON on a second loopback port at `/__stats`, so
//! the benchmark can prove that its warm runs cost no Okta call. Prints
//! `FAKE_IDP_URL=…` and `FAKE_IDP_STATS=…` on stdout, then serves until killed.
//! DEVELOPMENT AND BENCHMARK ONLY: it signs in anyone, without a password.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test and benchmark code: a failure should stop loudly"
)]

use std::io::Write as _;
use std::net::TcpListener;

use actix_web::{web, App, HttpResponse, HttpServer};

use fake_okta::FakeOkta;

/// The user `/authorize` approves without a form.
const SIGNED_IN: &str = "alice";

async fn stats(okta: web::Data<FakeOkta>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "groups": okta.groups_calls(),
        "token": okta.token_calls(),
        "refresh": okta.refresh_calls(),
        "discovery": okta.discovery_calls(),
        "jwks": okta.jwks_calls(),
    }))
}

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    let port: u16 = match std::env::args().nth(1).map(|p| p.parse()) {
        None => 0,
        Some(Ok(port)) => port,
        Some(Err(_)) => {
            eprintln!("fake-okta: usage: fake-okta [PORT]");
            return std::process::ExitCode::from(2);
        }
    };
    let okta = match FakeOkta::start_on_port(port).await {
        Ok(okta) => okta,
        Err(e) => {
            eprintln!("fake-okta: cannot listen on 127.0.0.1:{port}: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    okta.sign_in_as(&okta.user(SIGNED_IN).id);

    let listener = match TcpListener::bind("127.0.0.1:0") {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("fake-okta: cannot listen for /__stats: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let stats_port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    let data = web::Data::new(okta.clone());
    let server = match HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/__stats", web::get().to(stats))
    })
    .workers(1)
    .listen(listener)
    {
        Ok(server) => server.run(),
        Err(e) => {
            eprintln!("fake-okta: cannot serve /__stats: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };

    println!("FAKE_IDP_URL={}", okta.base_url());
    println!("FAKE_IDP_STATS=http://127.0.0.1:{stats_port}/__stats");
    println!("FAKE_IDP_USER={}", okta.user(SIGNED_IN).login);
    // An access token of the custom server `default` for the bearer runs
    // (alice's, audience api://default, valid for an hour).
    let user = okta.user(SIGNED_IN);
    println!(
        "FAKE_IDP_ACCESS_TOKEN={}",
        okta.mint_access_token(Some(&user), FakeOkta::CLIENT_ID, &["openid"])
    );
    // The script reads these lines from a file while we keep running.
    let _ = std::io::stdout().flush();
    match server.await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fake-okta: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
