//! The integration tests' harness, compiled once into the `api` test binary
//! (`#[path = "../support/mod.rs"] mod support;` in `tests/api/main.rs`).
//!
//! It OWNS starting things and the steps several feature files share: the
//! service and its fake Okta ([`app`]), the binary as a child process, temporary
//! directories and ports, a real `redis-server`, the proxies and their upstreams,
//! a throw-away TLS CA, and an independent verifier of signed identities. It must
//! NOT hold a `#[test]`; feature files import from here, never from each other.

pub mod app;
pub mod checklist;
pub mod process;
pub mod proxies;
pub mod proxy_start;
pub mod redis;
pub mod service_process;
pub mod signed_identity;
pub mod tls;
pub mod upstream;
