//! `/healthz`, `/readyz` and `/metrics`: liveness always, readiness only with
//! discovery loaded (and a start that survives an unreachable Okta), metrics on
//! their own listener and never on the public one.

use std::net::TcpListener;

use reqwest::StatusCode;

use crate::support::app::{spawn_app, spawn_app_for, spawn_app_with};
use fake_okta::FakeOkta;

#[tokio::test]
async fn healthz_and_readyz_answer_200_once_discovery_is_loaded() {
    let app = spawn_app().await;
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"oidc": true, "session_store": true})
    );
    // Without METRICS_ADDRESS there is no metrics listener at all.
    assert!(app.metrics_port.is_none());
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_unreachable_issuer_leaves_the_service_live_but_not_ready() {
    // A loopback port nobody listens on: connections are refused at once.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let issuer = format!("http://127.0.0.1:{port}");
    let app = spawn_app_for(FakeOkta::start().await, &[("IDP_PROVIDER_URL", &issuer)]).await;

    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK, "the process serves");
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["oidc"], false);

    let start = app.start("/x").await;
    assert_eq!(
        start.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "no sign-in without discovery, and no panic"
    );
    assert!(start.headers().get("location").is_none());
    // Checks still answer: without a session that is a plain 401.
    assert_eq!(
        app.auth("https://app.example.com/").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn metrics_are_served_on_the_metrics_listener_only() {
    let app = spawn_app_with(&[("METRICS_ADDRESS", "127.0.0.1:0")]).await;
    let metrics_port = app
        .metrics_port
        .expect("METRICS_ADDRESS gives a metrics listener");
    assert_ne!(metrics_port, app.port);
    app.login_as("alice").await;
    assert_eq!(
        app.auth("https://app.example.com/").await.status(),
        StatusCode::OK
    );

    let response = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        crate::support::app::header(&response, "content-type").starts_with("text/plain"),
        "Prometheus text format"
    );
    let text = response.text().await.unwrap();
    assert!(
        text.contains("# TYPE forward_auth_decisions_total counter"),
        "{text}"
    );
    // Counters are process-wide and other tests run in parallel: only "at least".
    let allowed = text
        .lines()
        .find_map(|l| l.strip_prefix("forward_auth_decisions_total{outcome=\"allowed\"} "))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .expect("an allowed-decisions sample");
    assert!(allowed >= 1, "{text}");
    for name in [
        "forward_auth_sign_ins_total",
        "forward_auth_okta_groups_requests_total",
        "forward_auth_token_refreshes_total",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(name)),
            "{name} missing: {text}"
        );
    }

    let public = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(
        public.status(),
        StatusCode::NOT_FOUND,
        "metrics are never public"
    );
    // And the metrics listener serves nothing else.
    let other = reqwest::get(format!("http://127.0.0.1:{metrics_port}/oauth2/userinfo"))
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
}
