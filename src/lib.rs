//! forward-auth: Okta sign-in in front of any web app, for reverse proxies that
//! ask "may this browser see this URL?" (nginx `auth_request`, Traefik
//! `forwardAuth`, Caddy `forward_auth`).
//!
//! The modules follow the request: `routes` calls `forwarded`, `session`,
//! `oidc`, `logout_token`, `groups`, `policy`, `identity_headers` and
//! `redirect`, which rest on `config` and `error`. `startup` is the only module
//! that knows them all. `cli` parses the command line; `check` and
//! `healthcheck` are the two commands besides serving.

pub mod check;
pub mod cli;
pub mod config;
pub mod error;
pub mod forwarded;
pub mod groups;
pub mod healthcheck;
pub mod html;
pub mod identity_headers;
pub mod logout_token;
pub mod metrics;
pub mod oidc;
pub mod okta_api;
pub mod policy;
pub mod redirect;
mod redis_connection;
pub mod routes;
pub mod session;
pub mod startup;
pub mod telemetry;
