//! The Okta API through an OAuth 2.0 service app (`OKTA_API_CLIENT_ID` +
//! `OKTA_API_PRIVATE_KEY`) instead of an SSWS token, against the fake Okta's
//! faithful token endpoint and groups API: private_key_jwt assertions, DPoP
//! with the nonce dance and `ath`, one token for all concurrent callers, a new
//! token after a 401, scope and key problems reported by `forward-auth check`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, EllipticCurveKeyParameters,
    EllipticCurveKeyType, Jwk, RSAKeyParameters, RSAKeyType,
};
use jsonwebtoken::Algorithm;
use p256::elliptic_curve::sec1::ToEncodedPoint as _;
use p256::pkcs8::EncodePrivateKey as _;
use reqwest::StatusCode;
use rsa::pkcs1::DecodeRsaPrivateKey as _;
use rsa::traits::{PrivateKeyParts as _, PublicKeyParts as _};

use forward_auth::groups::OktaGroupsClient;
use forward_auth::okta_api::key::AssertionKey;
use forward_auth::okta_api::{ApiCredential, ServiceAppConfig};

use crate::support::app::{spawn_app_for, TestApp};
use crate::support::process::free_port;
use fake_okta::{FakeOkta, ServiceAppRegistration, SERVICE_APP_ID};

const RSA_PEM: &str = include_str!("../keys/test-key-2.pem");

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The RSA test key's public JWK, as Okta keeps it for the app.
fn rsa_public_jwk() -> Jwk {
    let key = rsa::RsaPrivateKey::from_pkcs1_pem(RSA_PEM).unwrap();
    Jwk {
        common: CommonParameters::default(),
        algorithm: AlgorithmParameters::RSA(RSAKeyParameters {
            key_type: RSAKeyType::RSA,
            n: b64(&key.n().to_bytes_be()),
            e: b64(&key.e().to_bytes_be()),
        }),
    }
}

/// The same key as the private JWK Okta's console generates.
fn rsa_private_jwk() -> String {
    let key = rsa::RsaPrivateKey::from_pkcs1_pem(RSA_PEM).unwrap();
    let primes = key.primes();
    serde_json::json!({
        "kty": "RSA", "alg": "RS256", "kid": "svc-1", "use": "sig",
        "n": b64(&key.n().to_bytes_be()),
        "e": b64(&key.e().to_bytes_be()),
        "d": b64(&key.d().to_bytes_be()),
        "p": b64(&primes[0].to_bytes_be()),
        "q": b64(&primes[1].to_bytes_be()),
    })
    .to_string()
}

/// An EC P-256 key: (PKCS#8 PEM, public JWK).
fn ec_key(seed: u8) -> (String, Jwk) {
    let secret = p256::SecretKey::from_slice(&[seed; 32]).unwrap();
    let pem = secret.to_pkcs8_pem(Default::default()).unwrap().to_string();
    let point = secret.public_key().to_encoded_point(false);
    let jwk = Jwk {
        common: CommonParameters::default(),
        algorithm: AlgorithmParameters::EllipticCurve(EllipticCurveKeyParameters {
            key_type: EllipticCurveKeyType::EC,
            curve: EllipticCurve::P256,
            x: b64(point.x().unwrap()),
            y: b64(point.y().unwrap()),
        }),
    };
    (pem, jwk)
}

fn registration(
    public_key: Jwk,
    algorithm: Algorithm,
    require_dpop: bool,
) -> ServiceAppRegistration {
    ServiceAppRegistration {
        public_key,
        algorithm,
        require_dpop,
        granted_scopes: vec!["okta.users.read".into()],
    }
}

/// A service whose API credential is the service app with `private_key`.
async fn spawn_with_service_app(okta: FakeOkta, private_key: &str) -> TestApp {
    spawn_app_for(
        okta,
        &[
            ("IDP_SERVICE_ACCOUNT", ""),
            ("OKTA_API_CLIENT_ID", SERVICE_APP_ID),
            ("OKTA_API_PRIVATE_KEY", private_key),
        ],
    )
    .await
}

/// Signs `login` in and answers one check; returns its status and groups header.
async fn check_as(app: &TestApp, login: &str) -> (StatusCode, String) {
    let (_, browser) = app.new_browser();
    app.login_in(&browser, login).await;
    let response = browser
        .get(app.url("/oauth2/auth"))
        .header("X-Original-URL", "http://app.example.com/")
        .send()
        .await
        .unwrap();
    let groups = response
        .headers()
        .get("X-Auth-Request-Groups")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (response.status(), groups)
}

#[tokio::test]
async fn an_rsa_pem_service_app_with_dpop_reads_groups() {
    let okta = FakeOkta::start().await;
    okta.register_service_app(registration(rsa_public_jwk(), Algorithm::RS256, true));
    let app = spawn_with_service_app(okta.clone(), RSA_PEM).await;

    let (status, groups) = check_as(&app, "alice").await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(groups, "Everyone,admins");
    assert!(
        okta.dpop_api_calls() >= 1,
        "the groups call carried a DPoP proof"
    );
    // No proof -> invalid_dpop_proof; a proof -> use_dpop_nonce; with the nonce -> a token.
    assert_eq!(okta.service_token_requests(), 3);
}

#[tokio::test]
async fn the_token_is_reused_and_fetched_once_for_concurrent_callers() {
    let okta = FakeOkta::start().await;
    okta.register_service_app(registration(rsa_public_jwk(), Algorithm::RS256, true));
    let config = ServiceAppConfig {
        client_id: SERVICE_APP_ID.into(),
        key: AssertionKey::parse(RSA_PEM).unwrap(),
    };
    let credential = ApiCredential::service_app(&config, &okta.org_issuer()).unwrap();
    let client =
        OktaGroupsClient::with_credential(reqwest::Client::new(), &okta.org_issuer(), credential)
            .unwrap();

    let fetches = ["alice", "bob", "carol"]
        .iter()
        .cycle()
        .take(12)
        .map(|login| client.fetch(login));
    let answers = futures_util::future::join_all(fetches).await;

    assert!(answers.iter().all(Result::is_ok), "{answers:?}");
    assert_eq!(okta.groups_calls(), 12);
    // Each lookup reads the groups and then the user's status, both with DPoP.
    assert_eq!(okta.dpop_api_calls(), 24);
    assert_eq!(okta.service_token_requests(), 3, "one token dance for all");
    assert_eq!(okta.service_tokens_issued(), 1);

    // Later calls reuse it.
    client.fetch("alice").await.unwrap();
    assert_eq!(okta.service_token_requests(), 3);
}

#[tokio::test]
async fn a_revoked_token_costs_one_new_token_and_one_retry() {
    let okta = FakeOkta::start().await;
    okta.register_service_app(registration(rsa_public_jwk(), Algorithm::RS256, true));
    let app = spawn_with_service_app(okta.clone(), RSA_PEM).await;
    assert_eq!(check_as(&app, "alice").await.0, StatusCode::OK);
    let before = okta.service_token_requests();

    okta.revoke_service_tokens();
    okta.rotate_dpop_nonce();
    let (status, groups) = check_as(&app, "bob").await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(groups, "Everyone,staff");
    // The stale nonce is answered with a fresh one: two requests for the new token.
    assert_eq!(okta.service_token_requests(), before + 2);
    assert_eq!(okta.service_tokens_issued(), 1);
}

#[tokio::test]
async fn a_resource_server_nonce_challenge_is_answered() {
    let okta = FakeOkta::start().await;
    okta.register_service_app(registration(rsa_public_jwk(), Algorithm::RS256, true));
    okta.require_api_dpop_nonce();
    let app = spawn_with_service_app(okta.clone(), RSA_PEM).await;

    assert_eq!(check_as(&app, "alice").await.0, StatusCode::OK);
    assert!(okta.dpop_api_calls() >= 1);
}

#[tokio::test]
async fn an_ec_jwk_key_without_dpop_uses_a_bearer_token() {
    let okta = FakeOkta::start().await;
    let (_, public) = ec_key(9);
    okta.register_service_app(registration(public, Algorithm::ES256, false));
    let d = b64(&[9u8; 32]);
    let jwk = format!(r#"{{"kty":"EC","crv":"P-256","kid":"svc-ec","d":"{d}","x":"-","y":"-"}}"#);
    let app = spawn_with_service_app(okta.clone(), &jwk).await;

    let (status, groups) = check_as(&app, "bob").await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(groups, "Everyone,staff");
    assert_eq!(okta.dpop_api_calls(), 0);
    assert_eq!(okta.service_token_requests(), 1);
}

#[tokio::test]
async fn an_rsa_private_jwk_works_like_its_pem() {
    let okta = FakeOkta::start().await;
    okta.register_service_app(registration(rsa_public_jwk(), Algorithm::RS256, true));
    let app = spawn_with_service_app(okta.clone(), &rsa_private_jwk()).await;

    assert_eq!(check_as(&app, "alice").await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_short_lived_token_is_replaced_before_it_expires() {
    let okta = FakeOkta::start().await;
    okta.register_service_app(registration(rsa_public_jwk(), Algorithm::RS256, false));
    okta.set_service_token_lifetime(2);
    let app = spawn_with_service_app(okta.clone(), RSA_PEM).await;
    assert_eq!(check_as(&app, "alice").await.0, StatusCode::OK);
    assert_eq!(okta.service_token_requests(), 1);

    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(check_as(&app, "bob").await.0, StatusCode::OK);

    assert_eq!(
        okta.service_token_requests(),
        2,
        "a new token, not a 401 first"
    );
}

/// Runs `forward-auth check` with the service app configured.
async fn check_command(okta: &FakeOkta, private_key: &str) -> (i32, String) {
    let port = free_port();
    let mut vars = crate::support::app::base_vars(okta, port);
    vars.retain(|(k, _)| k != "IDP_SERVICE_ACCOUNT");
    vars.push(("OKTA_API_CLIENT_ID".into(), SERVICE_APP_ID.into()));
    vars.push(("OKTA_API_PRIVATE_KEY".into(), private_key.into()));
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_forward-auth"))
        .arg("check")
        .env_clear()
        .envs(vars)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(!stdout.contains("PRIVATE KEY"), "{stdout}");
    (output.status.code().unwrap_or(-1), stdout)
}

#[tokio::test]
async fn check_accepts_a_working_service_app() {
    let okta = FakeOkta::start().await;
    okta.register_service_app(registration(rsa_public_jwk(), Algorithm::RS256, true));
    let (code, report) = check_command(&okta, RSA_PEM).await;
    assert_eq!(code, 0, "{report}");
    assert!(
        report.contains("ok    API credential: the groups API at")
            && report.contains("accepts OKTA_API_CLIENT_ID / OKTA_API_PRIVATE_KEY"),
        "{report}"
    );
}

#[tokio::test]
async fn check_names_a_missing_scope() {
    let okta = FakeOkta::start().await;
    let mut app = registration(rsa_public_jwk(), Algorithm::RS256, true);
    app.granted_scopes.clear();
    okta.register_service_app(app);
    let (code, report) = check_command(&okta, RSA_PEM).await;
    assert_eq!(code, 1, "{report}");
    assert!(
        report.contains("FAIL  API credential: the service app may not ask for okta.users.read"),
        "{report}"
    );
    assert!(
        report.contains("grant the okta.users.read scope"),
        "{report}"
    );
}

#[tokio::test]
async fn check_names_a_key_okta_does_not_know() {
    let okta = FakeOkta::start().await;
    let (_, registered) = ec_key(3);
    okta.register_service_app(registration(registered, Algorithm::ES256, true));
    let (other_pem, _) = ec_key(4);
    let (code, report) = check_command(&okta, &other_pem).await;
    assert_eq!(code, 1, "{report}");
    assert!(report.contains("invalid_client"), "{report}");
    assert!(
        report.contains("public keys hold the public half of OKTA_API_PRIVATE_KEY"),
        "{report}"
    );
}

#[tokio::test]
async fn without_the_scope_checks_fail_closed() {
    let okta = FakeOkta::start().await;
    let mut registered = registration(rsa_public_jwk(), Algorithm::RS256, true);
    registered.granted_scopes.clear();
    okta.register_service_app(registered);
    let app = spawn_with_service_app(okta.clone(), RSA_PEM).await;

    let (status, _) = check_as(&app, "alice").await;

    assert!(status.as_u16() >= 500, "no groups, no 2xx: {status}");
}
