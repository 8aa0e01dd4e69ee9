//! The audit trail of the real binary with `LOG_FORMAT=json`: a sign-in (and a
//! failed one), a denied check and a sign-out each leave one JSON line under
//! the `audit` target with user, host, path, decision and reason, and no
//! cookie value or token. Its metrics count the memory store's sessions.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::support::app::{base_vars, browser, sign_in_at, COOKIE_SECRET};
use crate::support::process::{free_port, KillOnDrop};
use fake_okta::FakeOkta;

/// The audit events in the log so far, parsed.
fn audit_events(log: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["target"] == "audit")
        .collect()
}

fn find<'a>(
    events: &'a [serde_json::Value],
    event: &str,
    decision: &str,
) -> Option<&'a serde_json::Value> {
    events
        .iter()
        .map(|v| &v["fields"])
        .find(|f| f["event"] == event && f["decision"] == decision)
}

/// `forward_auth_sessions` as the process's metrics listener says it.
async fn sessions(port: u16) -> f64 {
    let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("forward_auth_sessions "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("a forward_auth_sessions sample: {text}"))
}

#[tokio::test]
async fn sign_in_denial_and_sign_out_leave_json_audit_lines_without_secrets() {
    let okta = FakeOkta::start().await;
    let port = free_port();
    let metrics_port = free_port();
    let log = std::env::temp_dir().join(format!("forward-auth-audit-test-{port}.log"));
    let mut command = Command::new(env!("CARGO_BIN_EXE_forward-auth"));
    command
        .env_clear()
        .envs(base_vars(&okta, port))
        .env("LOG_LEVEL", "info")
        .env("LOG_FORMAT", "json")
        .env("METRICS_ADDRESS", format!("127.0.0.1:{metrics_port}"))
        // alice signs in but her domain is not allowed: her check is a 403.
        .env("ALLOWED_DOMAINS", "example.org")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    let _service = KillOnDrop(command.spawn().expect("the binary starts"));
    let base = format!("http://127.0.0.1:{port}");

    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let client = browser(jar.clone());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await {
            if r.status() == StatusCode::OK {
                break;
            }
        }
        assert!(Instant::now() < deadline, "the service became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A callback nobody started: a failed sign-in.
    let forged = client
        .get(format!("{base}/oauth2/callback?code=forged&state=forged"))
        .send()
        .await
        .unwrap();
    assert!(forged.status().is_client_error(), "{}", forged.status());

    let cookie = sign_in_at(&client, &jar, &okta, &base, "alice").await;
    let check = client
        .get(format!("{base}/oauth2/auth"))
        .header("X-Original-URL", "https://app.example.com/reports/q3")
        .send()
        .await
        .unwrap();
    assert_eq!(check.status(), StatusCode::FORBIDDEN);
    // This process holds one session now, and none after the sign-out.
    assert_eq!(sessions(metrics_port).await, 1.0);
    let sign_out = client
        .get(format!("{base}/oauth2/sign_out"))
        .send()
        .await
        .unwrap();
    assert_eq!(sign_out.status(), StatusCode::FOUND);
    assert_eq!(sessions(metrics_port).await, 0.0);

    // Poll: the log is written by another process.
    let deadline = Instant::now() + Duration::from_secs(30);
    let events = loop {
        let events = audit_events(&log);
        if find(&events, "sign_out", "session_ended").is_some() || Instant::now() > deadline {
            break events;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let text = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_file(&log);

    let failed = find(&events, "sign_in", "failed").expect("an audit line for the failed sign-in");
    assert_eq!(failed["path"], "/oauth2/callback", "{failed}");
    assert!(!failed["reason"].as_str().unwrap_or("").is_empty());
    let signed_in = find(&events, "sign_in", "signed_in").expect("an audit line for the sign-in");
    assert_eq!(signed_in["user"], okta.user("alice").login, "{signed_in}");
    assert_eq!(signed_in["host"], "127.0.0.1", "{signed_in}");
    assert_eq!(signed_in["path"], "/oauth2/callback", "{signed_in}");
    let denied = find(&events, "check", "forbidden").expect("an audit line for the 403");
    assert_eq!(denied["user"], okta.user("alice").login, "{denied}");
    assert_eq!(denied["host"], "app.example.com", "{denied}");
    assert_eq!(denied["path"], "/reports/q3", "{denied}");
    assert!(
        !denied["reason"].as_str().unwrap_or("").is_empty(),
        "the 403's reason: {denied}"
    );
    let signed_out =
        find(&events, "sign_out", "session_ended").expect("an audit line for the sign-out");
    assert_eq!(signed_out["user"], okta.user("alice").login, "{signed_out}");
    // Allowed checks are debug only; at info there are none.
    assert!(find(&events, "check", "allowed").is_none());

    for (what, value) in [
        ("cookie value", cookie.as_str()),
        ("COOKIE_SECRET", COOKIE_SECRET),
        ("client secret", FakeOkta::CLIENT_SECRET),
        ("API token", FakeOkta::API_TOKEN),
    ] {
        assert!(!text.contains(value), "the log shows the {what}");
    }
    for token in okta.live_refresh_tokens() {
        assert!(!text.contains(&token), "the log shows a refresh token");
    }
    if let Some(sid) = okta.last_sid() {
        assert!(!text.contains(&sid), "the log shows the Okta session id");
    }
}
