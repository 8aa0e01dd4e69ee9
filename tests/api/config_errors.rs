//! The binary's start-up errors: a bad environment stops `forward-auth` with exit
//! code 2 and one message on stderr that lists every problem at once, and never
//! echoes a secret it was given.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs the real binary with exactly `vars` as its environment and waits at most
/// 10 s for it to stop.
fn run_binary(vars: &[(&str, &str)]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_forward-auth"))
        .env_clear()
        .envs(vars.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the forward-auth binary runs");
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "forward-auth did not stop on a bad configuration; stderr: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn assert_mentions(text: &str, needles: &[&str]) {
    for needle in needles {
        assert!(
            text.contains(needle),
            "stderr does not mention {needle:?}:\n{text}"
        );
    }
}

#[test]
fn a_bad_environment_stops_with_code_2_and_lists_every_problem_without_secrets() {
    let cookie_secret = "c2l4dGVlbi1ieXRlLWtleQ=="; // 16 bytes, not 32
    let client_secret = "client-secret-never-printed";
    let api_token = "00ssws-token-never-printed";
    let typo_value = "typo-secret-never-printed";
    let output = run_binary(&[
        // IDP_PROVIDER missing, AUTHENTICATE_SERVICE_URL missing
        ("IDP_PROVIDER_URL", "https://acme-admin.okta.com"),
        ("IDP_CLIENT_ID", "0oaclientid"),
        ("IDP_CLIENT_SECRET", client_secret),
        ("IDP_SERVICE_ACCOUNT", api_token),
        ("COOKIE_SECRET", cookie_secret),
        ("GROUPS_CACHE_TTL", "soon"),
        ("IDP_CLIENT_SECERT", typo_value),
    ]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_mentions(
        &stderr,
        &[
            "IDP_PROVIDER is not set",
            "IDP_PROVIDER_URL",
            "without -admin",
            "https://acme.okta.com",
            "AUTHENTICATE_SERVICE_URL",
            "COOKIE_SECRET",
            "need 32",
            "GROUPS_CACHE_TTL",
            "IDP_CLIENT_SECERT",
        ],
    );
    let listed = stderr
        .lines()
        .filter(|l| l.trim_start().starts_with("- "))
        .count();
    assert!(
        listed >= 5,
        "every problem on its own line, all at once:\n{stderr}"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    for secret in [cookie_secret, client_secret, api_token, typo_value] {
        assert!(!stderr.contains(secret), "stderr shows a secret:\n{stderr}");
        assert!(!stdout.contains(secret), "stdout shows a secret:\n{stdout}");
    }
}

#[test]
fn an_empty_environment_names_every_required_variable() {
    let output = run_binary(&[]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_mentions(
        &stderr,
        &[
            "IDP_PROVIDER is not set",
            "IDP_PROVIDER_URL is not set",
            "IDP_CLIENT_ID is not set",
            "IDP_CLIENT_SECRET is not set",
            "AUTHENTICATE_SERVICE_URL is not set",
            "COOKIE_SECRET is not set",
        ],
    );
}

#[test]
fn an_okta_provider_without_an_api_token_and_a_bad_secret_file_are_both_reported() {
    let rotated = "cm90YXRlZC1zaXh0ZWVuIQ==";
    let output = run_binary(&[
        ("IDP_PROVIDER", "okta"),
        ("IDP_PROVIDER_URL", "https://acme.okta.com"),
        ("IDP_CLIENT_ID", "0oaclientid"),
        (
            "IDP_CLIENT_SECRET_FILE",
            "/nonexistent/forward-auth/client-secret",
        ),
        ("AUTHENTICATE_SERVICE_URL", "https://auth.example.com"),
        // the second key of a rotation list is too short
        (
            "COOKIE_SECRET",
            &format!("dGVzdC1jb29raWUtc2VjcmV0LTMyLWJ5dGVzLWxvbmc=,{rotated}"),
        ),
    ]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_mentions(
        &stderr,
        &[
            "IDP_SERVICE_ACCOUNT is not set",
            "IDP_CLIENT_SECRET_FILE",
            "/nonexistent/forward-auth/client-secret",
            "COOKIE_SECRET entry 2",
        ],
    );
    assert!(!stderr.contains(rotated), "{stderr}");
    assert!(!stderr.contains("dGVzdC1jb29raWUtc2VjcmV0"), "{stderr}");
}
