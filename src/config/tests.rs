//! Tests of the whole: defaults, every problem at once, settings from several
//! areas together, warnings, and that no secret shows in `Debug` or a message.

use std::time::Duration;

use crate::config::test_support::{
    assert_one_problem, load, minimal, problems, with, TempFile, API_TOKEN, CLIENT_SECRET, KEY_A,
};
use crate::config::{Config, ConfigError, LogFormat, Provider, StoreKind};
use crate::secret::Secret;

#[test]
fn a_minimal_okta_config_gets_the_documented_defaults() {
    let (c, warnings) = Config::from_vars(minimal()).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(c.provider, Provider::Okta);
    assert_eq!(c.issuer, "https://dev-123.okta.com");
    assert_eq!(c.org_url, "https://dev-123.okta.com");
    assert_eq!(c.client_id, "0oa1client");
    assert_eq!(c.client_secret.expose(), CLIENT_SECRET);
    assert_eq!(
        c.service_account.as_ref().map(Secret::expose),
        Some(API_TOKEN)
    );
    assert_eq!(c.scopes, ["openid", "email", "profile", "offline_access"]);
    assert_eq!(c.service_url, "https://auth.example.com");
    assert_eq!(c.redirect_uri, "https://auth.example.com/oauth2/callback");
    assert_eq!(c.address, "0.0.0.0:4180");
    assert_eq!(c.cookie.name, "_forward_auth");
    assert_eq!(c.cookie.domain, None);
    assert!(c.cookie.secure);
    assert_eq!(c.cookie.expire, Duration::from_secs(14 * 3600));
    assert_eq!(c.cookie.keys.len(), 1);
    assert_eq!(c.cookie.keys[0].expose()[31], 31);
    assert!(c.policy.is_empty());
    assert!(c.trusted_proxies.contains("127.0.0.1".parse().unwrap()));
    assert!(c.trusted_proxies.contains("::1".parse().unwrap()));
    assert!(!c.trusted_proxies.contains("10.0.0.1".parse().unwrap()));
    assert_eq!(c.groups_cache_ttl, Duration::from_secs(300));
    assert_eq!(c.session_store, StoreKind::Memory);
    assert_eq!(c.metrics_address, None);
    assert_eq!(c.log_level, "info");
    assert_eq!(c.log_format, LogFormat::Text);
    assert!(c.redirects.validate("https://auth.example.com/x").is_ok());
    assert!(c.redirects.validate("https://other.example.com/x").is_err());
}

#[test]
fn an_empty_environment_lists_every_required_variable() {
    let e = Config::from_vars(Vec::new()).unwrap_err();
    for name in [
        "IDP_PROVIDER ",
        "IDP_PROVIDER_URL",
        "IDP_CLIENT_ID",
        "IDP_CLIENT_SECRET",
        "AUTHENTICATE_SERVICE_URL",
        "COOKIE_SECRET",
    ] {
        assert!(
            e.problems
                .iter()
                .any(|p| p.starts_with(name.trim()) && p.contains("not set")),
            "{name}: {e}"
        );
    }
    assert_eq!(e.problems.len(), 6, "{e}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let problems = problems(&[
        ("IDP_PROVIDER", Some("auth0")),
        ("IDP_PROVIDER_URL", Some("http://dev-123.okta.com")),
        ("COOKIE_SECRET", Some("c2hvcnQ=")),
        ("COOKIE_EXPIRE", Some("forever")),
        ("TRUSTED_PROXIES", Some("10.0.0.0/99")),
        ("LOG_FORMAT", Some("xml")),
        ("SESSION_STORE", Some("postgres://db")),
    ]);
    assert_eq!(problems.len(), 7, "{problems:#?}");
    for (i, var) in [
        "IDP_PROVIDER ",
        "IDP_PROVIDER_URL",
        "COOKIE_SECRET",
        "COOKIE_EXPIRE",
        "TRUSTED_PROXIES",
        "LOG_FORMAT",
        "SESSION_STORE",
    ]
    .iter()
    .enumerate()
    {
        assert!(
            problems.iter().any(|p| p.starts_with(var)),
            "{i} {var}: {problems:#?}"
        );
    }
}

#[test]
fn the_error_counts_problems_in_words() {
    let one = ConfigError {
        problems: vec!["a".into()],
    };
    assert!(one
        .to_string()
        .starts_with("invalid configuration (1 problem):"));
    let two = ConfigError {
        problems: vec!["a".into(), "b".into()],
    };
    assert!(two
        .to_string()
        .starts_with("invalid configuration (2 problems):"));
}

#[test]
fn other_settings() {
    let c = load(&[
        ("IDP_SCOPES", Some("openid,email  groups")),
        ("ADDRESS", Some("127.0.0.1:0")),
        ("METRICS_ADDRESS", Some("127.0.0.1:9090")),
        ("COOKIE_NAME", Some("_sso.session-1")),
        ("COOKIE_DOMAIN", Some(".Example.com")),
        ("COOKIE_SECURE", Some("No")),
        ("ALLOWED_GROUPS", Some("admins, 00g1")),
        ("ALLOWED_USERS", Some("Alice@Example.com")),
        ("ALLOWED_DOMAINS", Some("@example.com")),
        (
            "ALLOWED_REDIRECT_DOMAINS",
            Some(".example.net, app.example.org:8443,"),
        ),
        ("LOG_LEVEL", Some("info,forward_auth=debug")),
        ("LOG_FORMAT", Some("JSON")),
    ]);
    assert_eq!(c.scopes, ["openid", "email", "groups"]);
    assert_eq!(c.address, "127.0.0.1:0");
    assert_eq!(c.metrics_address.as_deref(), Some("127.0.0.1:9090"));
    assert_eq!(c.cookie.name, "_sso.session-1");
    assert_eq!(c.cookie.domain.as_deref(), Some(".example.com"));
    assert!(!c.cookie.secure);
    assert_eq!(c.policy.groups, ["admins", "00g1"]);
    assert_eq!(c.policy.users, ["alice@example.com"]);
    assert_eq!(c.policy.domains, ["example.com"]);
    assert!(c.redirects.validate("https://x.example.net/").is_ok());
    assert!(c
        .redirects
        .validate("https://app.example.org:8443/")
        .is_ok());
    assert!(c.redirects.validate("https://app.example.org/").is_err());
    assert!(
        c.redirects.validate("https://www.example.com/").is_ok(),
        "COOKIE_DOMAIN is allowed"
    );
    assert_eq!(c.log_level, "info,forward_auth=debug");
    assert_eq!(c.log_format, LogFormat::Json);
    assert_eq!(load(&[("LOG_LEVEL", Some("DEBUG"))]).log_level, "debug");
    assert!(load(&[("COOKIE_SECURE", Some("1"))]).cookie.secure);
}

#[test]
fn empty_values_count_as_unset() {
    let c = load(&[
        ("COOKIE_DOMAIN", Some("")),
        ("LOG_LEVEL", Some(" ")),
        ("METRICS_ADDRESS", Some("")),
    ]);
    assert_eq!(c.cookie.domain, None);
    assert_eq!(c.log_level, "info");
    assert_eq!(c.metrics_address, None);
    assert_one_problem(
        &[("IDP_CLIENT_ID", Some(""))],
        &["IDP_CLIENT_ID is not set"],
    );
}

#[test]
fn bad_other_settings() {
    type Changes<'a> = &'a [(&'a str, Option<&'a str>)];
    let cases: &[(Changes, &[&str])] = &[
        (
            &[("IDP_SCOPES", Some("email profile"))],
            &["IDP_SCOPES", "openid"],
        ),
        (&[("ADDRESS", Some("4180"))], &["ADDRESS", "host:port"]),
        (
            &[("ADDRESS", Some("0.0.0.0:99999"))],
            &["ADDRESS", "host:port"],
        ),
        (
            &[("METRICS_ADDRESS", Some("0.0.0.0:4180"))],
            &["METRICS_ADDRESS", "same as ADDRESS"],
        ),
        (
            &[
                ("ADDRESS", Some("127.0.0.1:8080")),
                ("METRICS_ADDRESS", Some("0.0.0.0:8080")),
            ],
            &["same as ADDRESS"],
        ),
        (
            &[("METRICS_ADDRESS", Some("metrics"))],
            &["METRICS_ADDRESS", "host:port"],
        ),
        (
            &[("COOKIE_NAME", Some("my cookie"))],
            &["COOKIE_NAME", "letters, digits"],
        ),
        (&[("COOKIE_NAME", Some("a;b=c"))], &["COOKIE_NAME"]),
        (
            &[("COOKIE_DOMAIN", Some("https://example.com"))],
            &["COOKIE_DOMAIN", "not a domain name"],
        ),
        (
            &[("COOKIE_DOMAIN", Some("example..com"))],
            &["COOKIE_DOMAIN"],
        ),
        (
            &[("COOKIE_SECURE", Some("maybe"))],
            &["COOKIE_SECURE", "true or false"],
        ),
        (
            &[("ALLOWED_REDIRECT_DOMAINS", Some("https://example.com"))],
            &[
                "ALLOWED_REDIRECT_DOMAINS",
                "`https://example.com`",
                "scheme",
            ],
        ),
        (
            &[("LOG_LEVEL", Some("verbose"))],
            &["LOG_LEVEL", "trace, debug, info, warn or error"],
        ),
        (
            &[("IDP_PROVIDER", Some("auth0"))],
            &["IDP_PROVIDER", "okta", "oidc"],
        ),
    ];
    for (changes, needles) in cases {
        assert_one_problem(changes, needles);
    }
}

#[test]
fn suspicious_but_valid_settings_are_warned_about() {
    let (_, warnings) = Config::from_vars(with(&[
        ("AUTHENTICATE_SERVICE_URL", Some("http://auth.example.com")),
        ("COOKIE_DOMAIN", Some("example.org")),
    ]))
    .unwrap();
    assert_eq!(warnings.len(), 2, "{warnings:#?}");
    assert!(warnings[0].contains("COOKIE_DOMAIN"));
    assert!(warnings[1].contains("COOKIE_SECURE"));
    let (_, warnings) = Config::from_vars(with(&[
        ("AUTHENTICATE_SERVICE_URL", Some("http://127.0.0.1:4180")),
        ("COOKIE_DOMAIN", Some("127.0.0.1")),
    ]))
    .unwrap();
    assert!(warnings.is_empty(), "{warnings:#?}");
}

#[test]
fn debug_output_never_contains_secrets() {
    let file = TempFile::new("debug-token", API_TOKEN);
    let (c, _) = Config::from_vars(with(&[
        ("IDP_SERVICE_ACCOUNT", None),
        ("IDP_SERVICE_ACCOUNT_FILE", Some(file.path())),
    ]))
    .unwrap();
    let shown = format!("{c:?} {:#?}", c);
    for secret in [CLIENT_SECRET, API_TOKEN, KEY_A, "AAECAwQF"] {
        assert!(!shown.contains(secret), "Debug shows {secret}");
    }
    assert!(shown.contains("[redacted]"));
    // The raw bytes of the key (0, 1, 2, ...) must not show either.
    assert!(!shown.contains("0, 1, 2, 3"));
}

#[test]
fn problems_never_contain_secret_values() {
    let problems = problems(&[
        ("IDP_CLIENT_SECRET_FILE", Some("/nonexistent")),
        ("COOKIE_SECRET", Some("bm90LTMyLWJ5dGVzLWxvbmc=")),
    ]);
    let all = problems.join("\n");
    assert!(
        !all.contains(CLIENT_SECRET) && !all.contains("bm90LTMyLWJ5dGVzLWxvbmc"),
        "{all}"
    );
}
