//! Unit tests of the identity provider's variables.

use crate::config::test_support::{assert_one_problem, load, problems, TempFile, SERVICE_APP_KEY};
use crate::config::Provider;
use crate::secret::Secret;

#[test]
fn the_oidc_provider_needs_no_service_account() {
    let c = load(&[
        ("IDP_PROVIDER", Some("OIDC")),
        ("IDP_SERVICE_ACCOUNT", None),
    ]);
    assert_eq!(c.provider, Provider::Oidc);
    assert!(c.service_account.is_none());
}

#[test]
fn the_okta_provider_needs_a_service_account() {
    assert_one_problem(
        &[("IDP_SERVICE_ACCOUNT", None)],
        &["IDP_SERVICE_ACCOUNT", "OKTA_API_CLIENT_ID", "okta", "oidc"],
    );
}

#[test]
fn a_service_app_replaces_the_api_token() {
    let c = load(&[
        ("IDP_SERVICE_ACCOUNT", None),
        ("OKTA_API_CLIENT_ID", Some("0oasvc")),
        ("OKTA_API_PRIVATE_KEY", Some(SERVICE_APP_KEY)),
    ]);
    assert!(c.service_account.is_none());
    let app = c.service_app.expect("the service app");
    assert_eq!(app.client_id, "0oasvc");
    assert!(!format!("{app:?}").contains("MII"), "Debug shows no key");
}

#[test]
fn exactly_one_api_credential_and_both_halves_of_the_service_app() {
    type Changes<'a> = &'a [(&'a str, Option<&'a str>)];
    let cases: &[(Changes, &[&str])] = &[
        (
            &[
                ("OKTA_API_CLIENT_ID", Some("0oasvc")),
                ("OKTA_API_PRIVATE_KEY", Some(SERVICE_APP_KEY)),
            ],
            &["IDP_SERVICE_ACCOUNT and OKTA_API_CLIENT_ID are both set"],
        ),
        (
            &[
                ("IDP_SERVICE_ACCOUNT", None),
                ("OKTA_API_CLIENT_ID", Some("0oasvc")),
            ],
            &["OKTA_API_CLIENT_ID is set but OKTA_API_PRIVATE_KEY is not"],
        ),
        (
            &[
                ("IDP_SERVICE_ACCOUNT", None),
                ("OKTA_API_PRIVATE_KEY", Some(SERVICE_APP_KEY)),
            ],
            &["OKTA_API_PRIVATE_KEY is set but OKTA_API_CLIENT_ID is not"],
        ),
        (
            &[
                ("IDP_SERVICE_ACCOUNT", None),
                ("OKTA_API_CLIENT_ID", Some("0oasvc")),
                ("OKTA_API_PRIVATE_KEY", Some("hunter2")),
            ],
            &["OKTA_API_PRIVATE_KEY is neither a PEM nor a JWK"],
        ),
    ];
    for (changes, needles) in cases {
        assert_one_problem(changes, needles);
        assert!(problems(changes)
            .iter()
            .all(|p| !p.contains("hunter2") && !p.contains("MII")));
    }
}

#[test]
fn issuer_urls() {
    let cases = [
        (
            "https://dev-123.okta.com",
            "https://dev-123.okta.com",
            "https://dev-123.okta.com",
        ),
        (
            "https://dev-123.okta.com/",
            "https://dev-123.okta.com",
            "https://dev-123.okta.com",
        ),
        (
            "https://dev-123.okta.com/oauth2/default",
            "https://dev-123.okta.com/oauth2/default",
            "https://dev-123.okta.com",
        ),
        (
            "https://dev-123.okta.com/oauth2/default/",
            "https://dev-123.okta.com/oauth2/default",
            "https://dev-123.okta.com",
        ),
        (
            "https://login.example.com:8443/oauth2/aus1",
            "https://login.example.com:8443/oauth2/aus1",
            "https://login.example.com:8443",
        ),
        (
            "http://127.0.0.1:39001",
            "http://127.0.0.1:39001",
            "http://127.0.0.1:39001",
        ),
        (
            "http://localhost:8080/oauth2/default",
            "http://localhost:8080/oauth2/default",
            "http://localhost:8080",
        ),
        (
            "http://[::1]:9000/",
            "http://[::1]:9000",
            "http://[::1]:9000",
        ),
    ];
    for (given, issuer, org) in cases {
        let c = load(&[("IDP_PROVIDER_URL", Some(given))]);
        assert_eq!(
            (c.issuer.as_str(), c.org_url.as_str()),
            (issuer, org),
            "{given}"
        );
    }
}

#[test]
fn bad_issuer_urls() {
    let cases: &[(&str, &[&str])] = &[
        (
            "https://dev-123-admin.okta.com",
            &[
                "admin console",
                "use https://ORG.okta.com (without -admin)",
                "https://dev-123.okta.com",
            ],
        ),
        (
            "https://acme-admin.oktapreview.com/oauth2/default",
            &["without -admin", "https://acme.oktapreview.com"],
        ),
        ("https://acme-admin.okta-emea.com", &["without -admin"]),
        (
            "https://dev-123.okta.com/oauth2/default/.well-known/openid-configuration",
            &[
                "discovery document, not the issuer",
                "https://dev-123.okta.com/oauth2/default",
            ],
        ),
        (
            "https://dev-123.okta.com/.well-known/openid-configuration/",
            &["part before /.well-known, here https://dev-123.okta.com"],
        ),
        ("https://YOUR-ORG.okta.com", &["placeholder org"]),
        ("https://ORG.okta.com/oauth2/default", &["placeholder org"]),
        ("https://your_okta_domain.okta.com", &["placeholder org"]),
        ("https://yourOktaDomain", &["placeholder org"]),
        ("http://dev-123.okta.com", &["uses http", "loopback"]),
        ("http://10.0.0.1:8080", &["uses http"]),
        ("ftp://dev-123.okta.com", &["https"]),
        ("dev-123.okta.com", &["not an absolute URL"]),
        ("https://dev-123.okta.com?x=1", &["query"]),
        ("https://dev-123.okta.com/#frag", &["fragment"]),
        (
            "https://user:pw@dev-123.okta.com",
            &["user name or password"],
        ),
    ];
    for (given, needles) in cases {
        assert_one_problem(&[("IDP_PROVIDER_URL", Some(given))], needles);
    }
}

#[test]
fn a_url_with_a_password_is_never_echoed() {
    let problems = problems(&[(
        "IDP_PROVIDER_URL",
        Some("http://user:hunter2@dev-123.okta.com"),
    )]);
    assert!(
        problems.iter().all(|p| !p.contains("hunter2")),
        "{problems:#?}"
    );
}

#[test]
fn the_event_hook_secret_comes_from_its_variable_or_its_file_twin() {
    assert!(load(&[]).event_hook_secret.is_none(), "off by default");
    let c = load(&[("OKTA_EVENT_HOOK_SECRET", Some("hook-secret"))]);
    assert_eq!(
        c.event_hook_secret.as_ref().map(Secret::expose),
        Some("hook-secret")
    );
    let file = TempFile::new("hook", "hook-secret-from-file\n");
    let c = load(&[("OKTA_EVENT_HOOK_SECRET_FILE", Some(file.path()))]);
    assert_eq!(
        c.event_hook_secret.as_ref().map(Secret::expose),
        Some("hook-secret-from-file")
    );
    assert_one_problem(
        &[
            ("OKTA_EVENT_HOOK_SECRET", Some("a")),
            ("OKTA_EVENT_HOOK_SECRET_FILE", Some(file.path())),
        ],
        &["OKTA_EVENT_HOOK_SECRET and OKTA_EVENT_HOOK_SECRET_FILE are both set"],
    );
    assert!(!format!("{c:?}").contains("hook-secret-from-file"));
}
