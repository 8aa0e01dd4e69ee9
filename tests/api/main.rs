//! Integration tests: the real service against a fake Okta on loopback.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test and benchmark code: a failure should stop loudly"
)]

// The harness, compiled once here; the feature modules below import from it,
// never from each other.
#[path = "../support/mod.rs"]
mod support;

mod access_end;
mod api_clients;
mod audit_log;
mod auth;
mod backchannel;
mod browser;
mod cli;
mod compose;
mod config_errors;
mod demo;
mod denied;
mod groups;
mod groups_freshness;
mod hardening;
mod health;
mod healthcheck;
mod kubernetes;
mod logs;
mod metrics_dashboard;
mod okta_events;
mod proxies;
mod proxy_identity;
mod public_routes;
mod redis;
mod redis_groups;
mod refresh;
mod service_app;
mod session_store;
mod several_domains;
mod sign_in;
mod sign_out;
mod signed_identity;
mod traefik;
