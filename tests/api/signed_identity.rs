//! Signed identity (`IDENTITY_JWT_KEY`): `X-Auth-Request-Jwt` on every 2xx,
//! verified here with jsonwebtoken against the keys `/oauth2/jwks.json`
//! publishes — an independent verifier, not the service's signing code.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::app::{base_vars, header, spawn_app_for, spawn_app_with, TestApp};
use crate::support::signed_identity::{jwks, verify, ES256_PEM};
use fake_okta::FakeOkta;

const ES256_NEXT_PEM: &str = include_str!("../keys/identity-es256-next.pem");
const ED25519_PEM: &str = include_str!("../keys/identity-ed25519.pem");

async fn signed_in(key: &str) -> TestApp {
    let app = spawn_app_with(&[("IDENTITY_JWT_KEY", key)]).await;
    assert_eq!(app.login_as("alice").await.status(), StatusCode::FOUND);
    app
}

#[tokio::test]
async fn every_2xx_carries_a_short_lived_identity_that_verifies_with_the_published_key() {
    let app = signed_in(ES256_PEM).await;
    let keys = jwks(&app.client, &app.url("/oauth2/jwks.json")).await;
    assert_eq!(keys.keys.len(), 1);
    let alice = app.okta.user("alice");
    for (endpoint, check) in [
        (
            "auth",
            app.auth("https://app.example.com/reports?x=1").await,
        ),
        (
            "forward",
            app.forward("GET", "app.example.com", "/reports", &[]).await,
        ),
    ] {
        assert_eq!(check.status(), StatusCode::OK, "{endpoint}");
        let token = header(&check, "x-auth-request-jwt");
        assert!(!token.is_empty(), "{endpoint}: no X-Auth-Request-Jwt");
        assert_eq!(decode_header(&token).unwrap().alg, Algorithm::ES256);
        let claims = verify(&token, &keys, &app.address, "https://app.example.com");
        assert_eq!(claims["sub"], alice.id.as_str());
        assert_eq!(claims["email"], alice.email.as_str());
        assert_eq!(claims["groups"], serde_json::json!(["Everyone", "admins"]));
        let lifetime = claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap();
        assert!((60..=600).contains(&lifetime), "{lifetime} s");
    }
}

#[tokio::test]
async fn the_identity_is_for_one_origin_and_reused_rather_than_signed_per_check() {
    let app = signed_in(ES256_PEM).await;
    let keys = jwks(&app.client, &app.url("/oauth2/jwks.json")).await;
    let first = header(
        &app.auth("https://app.example.com/a").await,
        "x-auth-request-jwt",
    );
    let again = header(
        &app.auth("https://app.example.com/b").await,
        "x-auth-request-jwt",
    );
    assert_eq!(first, again, "the same origin reuses the token");
    let other = header(
        &app.auth("https://wiki.example.com/").await,
        "x-auth-request-jwt",
    );
    assert_ne!(first, other);
    verify(&other, &keys, &app.address, "https://wiki.example.com");
    // A token for one app is refused by another (aud).
    let head = decode_header(&first).unwrap();
    let mut validation = Validation::new(head.alg);
    validation.set_audience(&["https://wiki.example.com"]);
    let jwk = keys.find(head.kid.as_deref().unwrap()).unwrap();
    assert!(decode::<Value>(&first, &DecodingKey::from_jwk(jwk).unwrap(), &validation).is_err());
}

#[tokio::test]
async fn ed25519_signs_first_and_every_listed_key_is_published() {
    let app = signed_in(&format!("{ED25519_PEM},{ES256_NEXT_PEM}")).await;
    let response = app
        .client
        .get(app.url("/oauth2/jwks.json"))
        .send()
        .await
        .unwrap();
    assert!(header(&response, "cache-control").contains("max-age"));
    let body = response.text().await.unwrap();
    assert!(!body.contains("\"d\""), "no private key material: {body}");
    let keys: JwkSet = serde_json::from_str(&body).unwrap();
    assert_eq!(keys.keys.len(), 2);
    let token = header(
        &app.auth("https://app.example.com/").await,
        "x-auth-request-jwt",
    );
    assert_eq!(decode_header(&token).unwrap().alg, Algorithm::EdDSA);
    verify(&token, &keys, &app.address, "https://app.example.com");
}

/// A service that signs identities and accepts access tokens of the fake
/// Okta's custom authorization server, with `extra` variables.
async fn accepting_api_clients(extra: &[(&str, &str)]) -> TestApp {
    let okta = FakeOkta::start().await;
    let issuer = okta.custom_issuer();
    let mut vars = vec![
        ("IDP_PROVIDER_URL", issuer.as_str()),
        ("BEARER_AUDIENCE", FakeOkta::API_AUDIENCE),
        ("IDENTITY_JWT_KEY", ES256_PEM),
    ];
    vars.extend_from_slice(extra);
    spawn_app_for(okta, &vars).await
}

#[tokio::test]
async fn an_api_client_gets_a_signed_identity_too() {
    let app = accepting_api_clients(&[]).await;
    let token = app
        .okta
        .mint_access_token(None, "0oamachine", &["items.read"]);
    let response = app
        .client
        .get(app.url("/oauth2/auth"))
        .header("X-Original-URL", "https://api.example.com/items")
        .header("Authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let keys = jwks(&app.client, &app.url("/oauth2/jwks.json")).await;
    let claims = verify(
        &header(&response, "x-auth-request-jwt"),
        &keys,
        &app.address,
        "https://api.example.com",
    );
    assert_eq!(claims["sub"], "0oamachine");
    assert_eq!(claims["groups"], serde_json::json!([]));
}

#[tokio::test]
async fn a_users_token_keeps_its_identity_per_origin_until_its_groups_change() {
    const HOOK_SECRET: &str = "event-hook-secret-0123456789";
    let app = accepting_api_clients(&[("OKTA_EVENT_HOOK_SECRET", HOOK_SECRET)]).await;
    app.okta
        .register_event_hook(&app.url("/oauth2/okta/events"), HOOK_SECRET)
        .await
        .expect("the service answers Okta's verification");
    let alice = app.okta.user("alice");
    let token = app
        .okta
        .mint_access_token(Some(&alice), "0oaservice", &["items.read"]);
    let jwt_for = |url: &'static str| {
        let request = app
            .client
            .get(app.url("/oauth2/auth"))
            .header("X-Original-URL", url)
            .header("Authorization", format!("Bearer {token}"));
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{url}");
            header(&response, "x-auth-request-jwt")
        }
    };
    let keys = jwks(&app.client, &app.url("/oauth2/jwks.json")).await;
    let app_jwt = jwt_for("https://app.example.com/a").await;
    assert_eq!(
        app_jwt,
        jwt_for("https://app.example.com/b?c=d").await,
        "reused"
    );
    let wiki = jwt_for("https://wiki.example.com/").await;
    let port = jwt_for("https://app.example.com:8443/").await;
    assert_ne!(app_jwt, wiki);
    assert_ne!(app_jwt, port);
    verify(&wiki, &keys, &app.address, "https://wiki.example.com");
    verify(&port, &keys, &app.address, "https://app.example.com:8443");
    assert_eq!(
        app_jwt,
        jwt_for("https://app.example.com/").await,
        "each origin's own, not the last one made"
    );
    let claims = verify(&app_jwt, &keys, &app.address, "https://app.example.com");
    assert_eq!(claims["groups"], serde_json::json!(["Everyone", "admins"]));
    // Okta says alice left admins: the next identity names her groups as they are.
    app.okta.remove_from_group(&alice.id, "admins").await;
    let after = jwt_for("https://app.example.com/").await;
    assert_ne!(after, app_jwt);
    let claims = verify(&after, &keys, &app.address, "https://app.example.com");
    assert_eq!(claims["groups"], serde_json::json!(["Everyone"]));
}

#[tokio::test]
async fn without_a_key_there_is_no_header_and_no_jwks() {
    let app = spawn_app_with(&[]).await;
    app.login_as("alice").await;
    let check = app.auth("https://app.example.com/").await;
    assert_eq!(check.status(), StatusCode::OK);
    assert!(check.headers().get("x-auth-request-jwt").is_none());
    let jwks = app
        .client
        .get(app.url("/oauth2/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(jwks.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_key_that_cannot_sign_stops_the_start_without_showing_it() {
    let okta = FakeOkta::start().await;
    let p384 = include_str!("../keys/identity-p384.pem");
    let file = std::env::temp_dir().join(format!("identity-{}.pem", std::process::id()));
    std::fs::write(&file, format!("{ES256_PEM}{p384}")).unwrap();
    for (name, value) in [
        ("IDENTITY_JWT_KEY", p384.to_string()),
        ("IDENTITY_JWT_KEY", "not a key".to_string()),
        ("IDENTITY_JWT_KEY_FILE", file.display().to_string()),
    ] {
        let mut vars = base_vars(&okta, 4180);
        vars.push((name.to_string(), value));
        let error = forward_auth::config::Config::from_vars(vars)
            .unwrap_err()
            .to_string();
        assert!(error.contains(name), "{error}");
        assert!(error.contains("EC P-256 or Ed25519"), "{error}");
        assert!(!error.contains("MIG"), "no key material: {error}");
    }
    let _ = std::fs::remove_file(file);
}
