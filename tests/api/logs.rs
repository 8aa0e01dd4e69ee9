//! The real binary, as a process, never writes a secret, token or cookie value
//! to its log, even at debug level, through a sign-in, checks, a sign-out and
//! back-channel logouts.

use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::StatusCode;

use crate::support::app::{base_vars, browser, location, sign_in_at, COOKIE_SECRET};
use crate::support::process::{free_port, KillOnDrop};
use fake_okta::{random_token, FakeOkta};

#[tokio::test]
async fn no_secret_token_or_cookie_value_reaches_the_log() {
    let okta = FakeOkta::start().await;
    let port = free_port();
    let log = std::env::temp_dir().join(format!("forward-auth-log-test-{port}.log"));
    let mut command = Command::new(env!("CARGO_BIN_EXE_forward-auth"));
    command
        .env_clear()
        .envs(base_vars(&okta, port))
        .env("LOG_LEVEL", "debug")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    let _service = KillOnDrop(command.spawn().expect("the binary starts"));
    let base = format!("http://127.0.0.1:{port}");

    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let client = browser(jar.clone());
    let mut ready = false;
    for _ in 0..100 {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await {
            if r.status() == StatusCode::OK {
                ready = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "the service became ready");

    let cookie = sign_in_at(&client, &jar, &okta, &base, "alice").await;
    let check = client
        .get(format!("{base}/oauth2/auth"))
        .header("X-Original-URL", "https://a.example.com/")
        .send()
        .await
        .unwrap();
    assert_eq!(check.status(), StatusCode::OK);
    let refresh_tokens = okta.live_refresh_tokens();
    assert!(
        !refresh_tokens.is_empty(),
        "the sign-in obtained a refresh token"
    );
    let sign_out = client
        .get(format!("{base}/oauth2/sign_out"))
        .send()
        .await
        .unwrap();
    let id_token = url::Url::parse(&location(&sign_out))
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "id_token_hint")
        .map(|(_, v)| v.into_owned())
        .expect("sign-out sends the id_token_hint to Okta");

    // Back-channel logouts, one accepted and one refused (it carries a nonce).
    let sid = okta.last_sid().expect("the ID token carried a sid");
    let iat = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = |extra: serde_json::Value| {
        let mut claims = serde_json::json!({
            "iss": okta.org_issuer(),
            "aud": FakeOkta::CLIENT_ID,
            "iat": iat,
            "jti": random_token(),
            "sub": okta.user("alice").id,
            "sid": sid,
            "events": { "http://schemas.openid.net/event/backchannel-logout": {} },
        });
        claims
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        claims
    };
    let accepted = okta.sign_logout_token(claims(serde_json::json!({})));
    let refused = okta.sign_logout_token(claims(serde_json::json!({ "nonce": "n-0S6" })));
    for (token, status) in [
        (&accepted, StatusCode::OK),
        (&refused, StatusCode::BAD_REQUEST),
    ] {
        let response = client
            .post(format!("{base}/oauth2/backchannel_logout"))
            .form(&[("logout_token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status);
    }

    tokio::time::sleep(Duration::from_millis(200)).await;
    let text = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_file(&log);
    assert!(
        text.contains("signed in"),
        "the log has the sign-in event: {text}"
    );
    assert!(
        text.contains("back-channel logout") && text.contains("nonce"),
        "the log has the back-channel logout and the refusal's reason: {text}"
    );
    let secrets = [
        ("cookie value", cookie.as_str()),
        ("COOKIE_SECRET", COOKIE_SECRET),
        ("client secret", FakeOkta::CLIENT_SECRET),
        ("API token", FakeOkta::API_TOKEN),
        ("ID token", id_token.as_str()),
        ("accepted logout token", accepted.as_str()),
        ("refused logout token", refused.as_str()),
        ("Okta session id", sid.as_str()),
    ];
    for (what, value) in secrets {
        assert!(!text.contains(value), "the log shows the {what}");
    }
    for token in refresh_tokens {
        assert!(!text.contains(&token), "the log shows a refresh token");
    }
}
