//! Integration tests: the real service against a fake Okta on loopback.

mod auth;
mod backchannel;
mod browser;
mod cli;
mod compose;
mod config_errors;
mod demo;
mod fake_okta;
mod fake_okta_shapes;
mod groups;
mod health;
mod healthcheck;
mod helpers;
mod logs;
mod proxies;
mod redis;
mod redis_groups;
mod refresh;
mod service_app;
mod session_store;
mod sign_in;
mod sign_out;
mod traefik;
