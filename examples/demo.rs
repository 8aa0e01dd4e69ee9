//! `cargo run --example demo`: forward-auth on a laptop without an Okta tenant.
//!
//! Starts the test suite's fake Okta as a development identity provider on
//! 127.0.0.1:9000 (`DEMO_OKTA_PORT`) and the real service on 127.0.0.1:4180,
//! configured against it with a fresh random cookie secret and plain-HTTP
//! cookies. `DEMO_SERVICE_URL` (default `http://127.0.0.1:4180`) is the
//! service's public URL: set it to the proxy's origin when running behind the
//! shipped nginx or Caddy config. DEVELOPMENT ONLY: the fake signs in anyone who
//! types one of its usernames, without a password. The set-up lives in
//! `crates/demo` (tested by `tests/api/demo.rs`); this is its `main`.

use forward_auth::config::LogFormat;
use forward_auth_demo::{banner, connect_event_hook, start, Demo, Settings};

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("demo: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    forward_auth::telemetry::init(&settings.log_level, LogFormat::Text);
    let demo = match start(&settings).await {
        Ok(demo) => demo,
        Err(e) => {
            eprintln!("demo: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    println!("{}", banner(&demo));
    let Demo {
        okta,
        app,
        listen,
        hook_secret,
        ..
    } = demo;
    let server = actix_web::rt::spawn(app.run_until_stopped());
    if let Err(e) = connect_event_hook(&okta, &listen, &hook_secret).await {
        eprintln!("demo: the fake Okta's event hook is not connected: {e}");
    }
    match server.await {
        Ok(Ok(())) => std::process::ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("demo: the service stopped: {e}");
            std::process::ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("demo: the service stopped: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
