//! forward-auth: Okta sign-in in front of any web app, for reverse proxies that
//! ask "may this browser see this URL?" (nginx `auth_request`, Traefik
//! `forwardAuth`, Caddy `forward_auth`).
//!
//! The modules follow the request: `routes` calls `forwarded`, `session`,
//! `pending`, `oidc` (and the tokens verified with the IdP's keys: logout,
//! revocation and bearer tokens), `okta_events`, `groups` (through
//! `okta_api`), `policy`, `identity_headers` and `redirect`,
//! which rest on `config` and `error`. `startup` is the only module that knows
//! them all. `cli` parses the command line; `check` and `healthcheck` are the
//! two commands besides serving.

pub mod access;
pub mod audit;
pub mod check;
pub mod cli;
pub mod clock;
pub mod config;
pub mod error;
pub mod error_chain;
pub mod forwarded;
pub mod groups;
pub mod healthcheck;
pub mod html;
pub mod identity;
pub mod identity_headers;
pub mod identity_jwt;
pub mod metrics;
pub mod oidc;
pub mod okta_api;
pub mod okta_events;
pub mod pending;
pub mod policy;
#[cfg(test)]
mod proptests;
mod pubsub;
pub mod random;
pub mod redirect;
mod redis_connection;
pub mod routes;
pub mod secret;
pub mod session;
pub mod sites;
pub mod skip_routes;
pub mod startup;
pub mod telemetry;
