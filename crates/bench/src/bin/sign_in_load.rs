//! `cargo run --release --bin sign_in_load -- [--duration S] [--concurrency C]
//! http://127.0.0.1:PORT`: the sign-in load driver of `scripts/bench.sh`.
//! BENCHMARK ONLY.
//!
//! Each of C workers signs in again and again, as a browser would against the
//! fake Okta of `fake-okta` (crates/fake-okta) (which approves every `/authorize` at
//! once): `GET /oauth2/start` (302 to the IdP, binding cookie set) → the IdP's
//! `/authorize` (302 back with a code) → `GET /oauth2/callback` with the binding
//! cookie (302, session cookie set). Only a callback that sets the session
//! cookie counts. Keep-alive connections, redirects followed by hand, one
//! thread. Prints `SIGN_INS=`, `FAILED=`, `SECONDS=` and `SIGN_INS_PER_S=`
//! lines; exits 1 when any sign-in failed or none succeeded.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test and benchmark code: a failure should stop loudly"
)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Client, StatusCode};

struct Args {
    duration: Duration,
    concurrency: usize,
    service: String,
    cookie_name: String,
}

fn parse_args() -> Result<Args, String> {
    let mut duration = Duration::from_secs(5);
    let mut concurrency = 16;
    let mut cookie_name = "_forward_auth".to_string();
    let mut service = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--duration" => {
                let text = value("--duration")?;
                let secs: f64 = text
                    .trim_end_matches('s')
                    .parse()
                    .map_err(|_| "--duration takes seconds")?;
                duration = Duration::from_secs_f64(secs);
            }
            "--concurrency" => {
                concurrency = value("--concurrency")?
                    .parse()
                    .map_err(|_| "--concurrency takes a number")?
            }
            "--cookie-name" => cookie_name = value("--cookie-name")?,
            _ if service.is_none() && arg.starts_with("http://") => {
                service = Some(arg.trim_end_matches('/').to_string())
            }
            _ => return Err(format!("unknown argument {arg}")),
        }
    }
    Ok(Args {
        duration,
        concurrency: concurrency.max(1),
        service: service.ok_or("the service's URL (http://127.0.0.1:PORT) is missing")?,
        cookie_name,
    })
}

/// The `name=value` pairs of a response's `Set-Cookie` headers.
fn set_cookies(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .map(str::to_string)
        .collect()
}

fn location(response: &reqwest::Response) -> Result<String, String> {
    response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .ok_or_else(|| format!("{} without a Location", response.status()))
}

fn is_redirect(status: StatusCode) -> bool {
    status == StatusCode::FOUND || status == StatusCode::SEE_OTHER
}

/// One sign-in: start, authorize, callback. Ok when the callback set a
/// non-empty session cookie.
async fn sign_in(client: &Client, args: &Args) -> Result<(), String> {
    let start = client
        .get(format!("{}/oauth2/start?rd=/", args.service))
        .send()
        .await
        .map_err(|e| format!("start: {e}"))?;
    if !is_redirect(start.status()) {
        return Err(format!("start answered {}", start.status()));
    }
    let binding = set_cookies(&start).join("; ");
    let authorize = location(&start)?;
    let approved = client
        .get(&authorize)
        .send()
        .await
        .map_err(|e| format!("authorize: {e}"))?;
    if !is_redirect(approved.status()) {
        return Err(format!("authorize answered {}", approved.status()));
    }
    let callback = location(&approved)?;
    let done = client
        .get(&callback)
        .header(COOKIE, binding)
        .send()
        .await
        .map_err(|e| format!("callback: {e}"))?;
    if !is_redirect(done.status()) {
        return Err(format!("callback answered {}", done.status()));
    }
    let prefix = format!("{}=", args.cookie_name);
    let signed_in = set_cookies(&done)
        .iter()
        .any(|c| c.contains(&prefix) && c.len() > c.find('=').unwrap_or(0) + 1);
    if signed_in {
        Ok(())
    } else {
        Err("the callback set no session cookie".into())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let args = match parse_args() {
        Ok(args) => Arc::new(args),
        Err(e) => {
            eprintln!("sign_in_load: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let client = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(args.concurrency * 2)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("an HTTP client");
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(std::sync::Mutex::new(None::<String>));
    let started = Instant::now();
    let deadline = started + args.duration;
    let workers: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let (client, args) = (client.clone(), args.clone());
            let (done, failed, first_error) = (done.clone(), failed.clone(), first_error.clone());
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    match sign_in(&client, &args).await {
                        Ok(()) => done.fetch_add(1, Ordering::Relaxed),
                        Err(e) => {
                            first_error.lock().unwrap().get_or_insert(e);
                            failed.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("a worker");
    }
    let seconds = started.elapsed().as_secs_f64();
    let (done, failed) = (done.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    println!("SIGN_INS={done}");
    println!("FAILED={failed}");
    println!("SECONDS={seconds:.3}");
    println!("SIGN_INS_PER_S={:.0}", done as f64 / seconds);
    if let Some(e) = first_error.lock().unwrap().take() {
        eprintln!("sign_in_load: first failure: {e}");
    }
    if failed > 0 || done == 0 {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    }
}
