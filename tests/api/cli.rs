//! The command line of the real binary: `--help`, `--version`, usage errors,
//! and `forward-auth check` against the fake Okta (and a real redis-server):
//! a good configuration passes, and each broken setting it can detect fails
//! with a line that names the problem and the fix.

use std::net::TcpListener;
use std::process::Output;

use crate::support::app::base_vars;
use crate::support::process::free_port;
use crate::support::redis::RedisServer;
use fake_okta::FakeOkta;

/// Runs the binary with exactly `vars` in its environment.
async fn run(args: &[&str], vars: &[(String, String)]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_forward-auth"))
        .args(args)
        .env_clear()
        .envs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .await
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The test service's variables with some changed (`None` removes one).
fn vars_with(okta: &FakeOkta, changes: &[(&str, Option<&str>)]) -> Vec<(String, String)> {
    let port = free_port();
    let mut vars = base_vars(okta, port);
    for (name, value) in changes {
        vars.retain(|(k, _)| k != name);
        if let Some(value) = value {
            vars.push((name.to_string(), value.to_string()));
        }
    }
    vars
}

/// Runs `check` and returns (exit code, stdout).
async fn check(okta: &FakeOkta, changes: &[(&str, Option<&str>)], args: &[&str]) -> (i32, String) {
    let vars = vars_with(okta, changes);
    let mut all = vec!["check"];
    all.extend_from_slice(args);
    let output = run(&all, &vars).await;
    let stdout = text(&output.stdout);
    for (name, value) in &vars {
        if name.ends_with("SECRET") || name.ends_with("ACCOUNT") {
            assert!(
                !stdout.contains(value.as_str()),
                "check printed the value of {name}:\n{stdout}"
            );
        }
    }
    (output.status.code().unwrap_or(-1), stdout)
}

/// The report line for `what`, e.g. "FAIL  client credentials: …".
fn line<'a>(report: &'a str, what: &str) -> &'a str {
    report
        .lines()
        .find(|l| {
            l.get(6..)
                .is_some_and(|rest| rest.starts_with(&format!("{what}:")))
        })
        .unwrap_or_else(|| panic!("no line for {what} in:\n{report}"))
}

#[tokio::test]
async fn help_and_version_print_and_exit_zero() {
    let help = run(&["--help"], &[]).await;
    assert_eq!(help.status.code(), Some(0));
    let out = text(&help.stdout);
    for word in ["Usage: forward-auth", "serve", "healthcheck", "check"] {
        assert!(out.contains(word), "{word} missing from --help:\n{out}");
    }

    let version = run(&["--version"], &[]).await;
    assert_eq!(version.status.code(), Some(0));
    assert_eq!(
        text(&version.stdout).trim(),
        format!("forward-auth {}", env!("CARGO_PKG_VERSION"))
    );
}

#[tokio::test]
async fn an_unknown_argument_is_a_usage_error_and_never_starts_the_server() {
    // A full, valid environment: if the argument were ignored, the server
    // would start and the call would not return.
    let okta = FakeOkta::start().await;
    let vars = vars_with(&okta, &[]);
    let call = run(&["--port", "8080"], &vars);
    let output = tokio::time::timeout(std::time::Duration::from_secs(20), call)
        .await
        .expect("an unknown argument must not start the server");
    assert_eq!(output.status.code(), Some(2));
    let err = text(&output.stderr);
    assert!(err.contains("unexpected argument '--port'"), "{err}");
    assert!(err.contains("Usage: forward-auth"), "{err}");
}

#[tokio::test]
async fn a_configuration_error_reads_in_the_singular_and_carries_no_colour() {
    let okta = FakeOkta::start().await;
    let vars = vars_with(&okta, &[("COOKIE_SECRET", Some("short"))]);
    let output = run(&[], &vars).await;
    assert_eq!(output.status.code(), Some(2));
    let err = text(&output.stderr);
    assert!(err.contains("invalid configuration (1 problem):"), "{err}");
    assert!(!err.contains('\u{1b}'), "escape codes in: {err:?}");
}

#[tokio::test]
async fn logs_carry_no_colour_codes_when_not_at_a_terminal() {
    let okta = FakeOkta::start().await;
    // An unknown variable that looks like ours is warned about at start-up;
    // the service then fails to bind a taken port and exits.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let vars = vars_with(
        &okta,
        &[
            ("ADDRESS", Some(&address)),
            ("COOKIE_SECRETT", Some("x")),
            ("LOG_LEVEL", Some("info")),
        ],
    );
    let output = run(&["serve"], &vars).await;
    assert_ne!(output.status.code(), Some(0));
    let err = text(&output.stderr);
    assert!(err.contains("WARN"), "{err}");
    assert!(!err.contains('\u{1b}'), "escape codes in: {err:?}");
}

#[tokio::test]
async fn a_good_configuration_passes_every_check() {
    let okta = FakeOkta::start().await;
    let (code, report) = check(&okta, &[], &[]).await;
    assert_eq!(code, 0, "{report}");
    for what in [
        "configuration",
        "cookies",
        "trusted proxies",
        "issuer",
        "signing keys",
        "client credentials",
        "redirect URI",
        "API credential",
    ] {
        assert!(line(&report, what).starts_with("ok"), "{what}:\n{report}");
    }
    assert!(report.trim_end().ends_with("checks passed"), "{report}");
    assert!(!report.contains("FAIL"), "{report}");
}

#[tokio::test]
async fn a_good_configuration_on_a_custom_authorization_server_passes() {
    let okta = FakeOkta::start().await;
    let issuer = okta.custom_issuer();
    let (code, report) = check(&okta, &[("IDP_PROVIDER_URL", Some(&issuer))], &[]).await;
    assert_eq!(code, 0, "{report}");
    assert!(line(&report, "issuer").contains(&issuer), "{report}");
}

#[tokio::test]
async fn a_wrong_client_secret_fails_as_invalid_client() {
    let okta = FakeOkta::start().await;
    let (code, report) = check(&okta, &[("IDP_CLIENT_SECRET", Some("not-the-secret"))], &[]).await;
    assert_eq!(code, 1, "{report}");
    let l = line(&report, "client credentials");
    assert!(
        l.starts_with("FAIL") && l.contains("invalid_client"),
        "{report}"
    );
    assert!(report.contains("IDP_CLIENT_SECRET"), "{report}");
}

#[tokio::test]
async fn a_wrong_client_id_fails_the_credentials_and_the_redirect_uri() {
    let okta = FakeOkta::start().await;
    let (code, report) = check(&okta, &[("IDP_CLIENT_ID", Some("0oa-someone-else"))], &[]).await;
    assert_eq!(code, 1, "{report}");
    assert!(
        line(&report, "client credentials").starts_with("FAIL"),
        "{report}"
    );
    assert!(
        line(&report, "redirect URI").starts_with("FAIL"),
        "{report}"
    );
}

#[tokio::test]
async fn an_unregistered_redirect_uri_fails_with_the_uri_to_register() {
    let okta = FakeOkta::start().await;
    // The fake app registers loopback URIs only.
    let (code, report) = check(
        &okta,
        &[("AUTHENTICATE_SERVICE_URL", Some("https://auth.example.org"))],
        &[],
    )
    .await;
    assert_eq!(code, 1, "{report}");
    assert!(
        line(&report, "redirect URI").starts_with("FAIL"),
        "{report}"
    );
    assert!(
        report.contains(
            "add https://auth.example.org/oauth2/callback to the Okta app's Sign-in redirect URIs"
        ),
        "{report}"
    );
}

#[tokio::test]
async fn a_wrong_api_token_fails_with_how_to_make_one() {
    let okta = FakeOkta::start().await;
    let (code, report) = check(
        &okta,
        &[("IDP_SERVICE_ACCOUNT", Some("00wrong-token"))],
        &[],
    )
    .await;
    assert_eq!(code, 1, "{report}");
    let l = line(&report, "API credential");
    assert!(l.starts_with("FAIL") && l.contains("401"), "{report}");
    assert!(report.contains("Security → API → Tokens"), "{report}");
}

#[tokio::test]
async fn an_issuer_that_does_not_answer_fails_and_skips_what_needs_it() {
    let okta = FakeOkta::start().await;
    let closed = free_port();
    let issuer = format!("http://127.0.0.1:{closed}");
    let (code, report) = check(&okta, &[("IDP_PROVIDER_URL", Some(&issuer))], &[]).await;
    assert_eq!(code, 1, "{report}");
    assert!(
        line(&report, "issuer").contains("cannot be reached"),
        "{report}"
    );
    assert!(!report.contains("client credentials:"), "{report}");
}

#[tokio::test]
async fn an_issuer_that_differs_from_discovery_fails_with_the_right_value() {
    let okta = FakeOkta::start().await;
    // `localhost` reaches the same fake, whose discovery names 127.0.0.1.
    let issuer = okta.org_issuer().replace("127.0.0.1", "localhost");
    let (code, report) = check(&okta, &[("IDP_PROVIDER_URL", Some(&issuer))], &[]).await;
    assert_eq!(code, 1, "{report}");
    assert!(
        report.contains(&format!("set IDP_PROVIDER_URL={}", okta.org_issuer())),
        "{report}"
    );
}

#[tokio::test]
async fn risky_cookie_and_proxy_settings_fail_with_the_fix() {
    let okta = FakeOkta::start().await;
    type Changes<'a> = &'a [(&'a str, Option<&'a str>)];
    let cases: &[(Changes, &str, &str)] = &[
        (
            &[("TRUSTED_PROXIES", Some("0.0.0.0/0"))],
            "trusted proxies",
            "every client could forge",
        ),
        (
            &[("TRUSTED_PROXIES", Some("10.0.0.1, ::/0"))],
            "trusted proxies",
            "::/0",
        ),
        (
            &[
                ("AUTHENTICATE_SERVICE_URL", Some("http://auth.example.test")),
                ("COOKIE_SECURE", None),
            ],
            "cookies",
            "never send a Secure cookie over http",
        ),
        (
            &[("COOKIE_DOMAIN", Some(".example.org"))],
            "cookie domain",
            "does not contain the host",
        ),
    ];
    for (changes, what, needle) in cases {
        let (code, report) = check(&okta, changes, &[]).await;
        assert_eq!(code, 1, "{changes:?}:\n{report}");
        let l = line(&report, what);
        assert!(
            l.starts_with("FAIL") && l.contains(needle),
            "{changes:?}:\n{report}"
        );
    }
}

#[tokio::test]
async fn a_broken_configuration_fails_the_check_with_every_problem() {
    let okta = FakeOkta::start().await;
    let (code, report) = check(
        &okta,
        &[("COOKIE_SECRET", Some("short")), ("IDP_CLIENT_ID", None)],
        &[],
    )
    .await;
    assert_eq!(code, 1, "{report}");
    assert!(report.contains("COOKIE_SECRET"), "{report}");
    assert!(report.contains("IDP_CLIENT_ID"), "{report}");
}

#[tokio::test]
async fn a_user_shows_their_groups_and_the_policys_answer() {
    let okta = FakeOkta::start().await;
    let (code, report) = check(
        &okta,
        &[("ALLOWED_GROUPS", Some("admins"))],
        &["--user", "alice@example.com"],
    )
    .await;
    assert_eq!(code, 0, "{report}");
    let l = line(&report, "user");
    assert!(l.contains("Everyone") && l.contains("admins"), "{report}");
    assert!(
        line(&report, "global policy").contains("is allowed"),
        "{report}"
    );

    let (code, report) = check(
        &okta,
        &[("ALLOWED_GROUPS", Some("admins"))],
        &["--user", "bob@example.com"],
    )
    .await;
    assert_eq!(code, 1, "{report}");
    let l = line(&report, "global policy");
    assert!(
        l.starts_with("FAIL") && l.contains("403") && l.contains("not in an allowed group"),
        "{report}"
    );
}

#[tokio::test]
async fn an_unknown_user_fails() {
    let okta = FakeOkta::start().await;
    let (code, report) = check(&okta, &[], &["--user", "nobody@example.com"]).await;
    assert_eq!(code, 1, "{report}");
    assert!(line(&report, "user").contains("does not know"), "{report}");
}

#[tokio::test]
async fn redis_is_tried_with_the_commands_the_store_needs() {
    let Some(redis) = RedisServer::start(false) else {
        return;
    };
    let okta = FakeOkta::start().await;
    let url = redis.url();
    let (code, report) = check(&okta, &[("SESSION_STORE", Some(&url))], &[]).await;
    assert_eq!(code, 0, "{report}");
    assert!(
        line(&report, "session store").contains("PUBLISH"),
        "{report}"
    );

    drop(redis);
    let (code, report) = check(&okta, &[("SESSION_STORE", Some(&url))], &[]).await;
    assert_eq!(code, 1, "{report}");
    let l = line(&report, "session store");
    assert!(
        l.starts_with("FAIL") && l.contains("connection refused"),
        "{report}"
    );
    assert!(report.contains("ACL"), "{report}");
}
