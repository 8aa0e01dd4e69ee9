//! Integration tests: the real service against a fake Okta on loopback.

mod fake_okta;
mod fake_okta_shapes;
mod helpers;
mod sign_in;
mod auth;
mod session_store;
mod logs;
