//! `forward-auth healthcheck`, the real binary as Docker's `HEALTHCHECK` runs it:
//! exit 0 against a serving instance, exit 1 with a reason against a closed
//! port, a wrong status or a peer that never answers.

use std::net::TcpListener;
use std::process::Output;
use std::time::{Duration, Instant};

use crate::support::app::spawn_app;

/// Runs `forward-auth healthcheck` with only `ADDRESS` in its environment
/// (a probe must not need the secrets). Async, so the test's own server keeps
/// serving while the child waits for it.
async fn healthcheck(address: &str) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_forward-auth"))
        .arg("healthcheck")
        .env_clear()
        .env("ADDRESS", address)
        .output()
        .await
        .expect("the binary runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A loopback port that nobody listens on.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn a_serving_instance_is_healthy() {
    let app = spawn_app().await;

    let output = healthcheck(&format!("127.0.0.1:{}", app.port)).await;

    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("/healthz"), "{stdout}");
}

#[tokio::test]
async fn a_wildcard_listen_address_is_probed_on_loopback() {
    // The container's ADDRESS is 0.0.0.0:4180; the test app listens on
    // 127.0.0.1 only, so this passes only if the probe goes to loopback.
    let app = spawn_app().await;

    let output = healthcheck(&format!("0.0.0.0:{}", app.port)).await;

    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(&output));
}

#[tokio::test]
async fn a_closed_port_is_unhealthy_with_the_reason() {
    let port = closed_port();

    let output = healthcheck(&format!("0.0.0.0:{port}")).await;

    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(
        message.contains("unhealthy") && message.contains(&format!("127.0.0.1:{port}")),
        "{message}"
    );
    assert!(message.contains("cannot connect"), "{message}");
}

#[tokio::test]
async fn a_status_other_than_200_is_unhealthy() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        if let Ok((mut stream, _)) = listener.accept() {
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request);
            let _ = stream.write_all(
                b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            );
        }
    });

    let output = healthcheck(&format!("127.0.0.1:{port}")).await;

    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(message.contains("status 503 instead of 200"), "{message}");
}

#[tokio::test]
async fn a_peer_that_never_answers_is_unhealthy_after_the_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accepts (the kernel completes the handshake) and then says nothing.
    let (release, held) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let accepted = listener.accept();
        let _ = held.recv_timeout(Duration::from_secs(30));
        drop(accepted);
    });

    let started = Instant::now();
    let output = healthcheck(&format!("127.0.0.1:{port}")).await;
    let took = started.elapsed();
    let _ = release.send(());

    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("no answer"), "{}", stderr(&output));
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(10),
        "gave up after {took:?}, not after its 2 s timeout"
    );
}

#[tokio::test]
async fn an_invalid_address_is_unhealthy_with_the_reason() {
    let output = healthcheck("no-port-here").await;

    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("ADDRESS `no-port-here` is not host:port"),
        "{}",
        stderr(&output)
    );
}
