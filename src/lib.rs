//! forward-auth: Okta sign-in in front of any web app, for reverse proxies that
//! ask "may this browser see this URL?" (nginx `auth_request`, Traefik
//! `forwardAuth`, Caddy `forward_auth`).
//!
//! Layering, from the edge inward. A module imports from its own layer or the
//! ones below, with two kinds of exceptions: `config` calls each module's own
//! parser for its settings, and a few plain types (`policy::Group`,
//! `identity_headers::UserGroups`, `redirect::shortened`) serve layer 4 too.
//!
//! 1. `main`/`cli` (commands) → `startup` (wires everything; the only module
//!    that knows them all), `check`, `healthcheck`.
//! 2. `routes`: HTTP in and out only. Each handler reads the request (through
//!    `forwarded` for the original URL, `routes::cookies` for our cookies),
//!    calls one core function and renders the answer; `error` maps every
//!    module's error to a status and a public message.
//! 3. The core, without actix types: `access` (cookie or bearer token →
//!    identity, groups and verdict; opening and ending sessions), `policy`,
//!    `redirect`, `identity_headers`, `identity_jwt`, `pending`, `okta_events`,
//!    `skip_routes`, `sites`, `audit`, `metrics`.
//! 4. State and the IdP: `session` (cookie codec, stores), `groups` (cache,
//!    cross-replica coordination, the Okta groups client), `oidc` (discovery,
//!    keys and the one JWS verifier, the flow, logout/revocation/bearer tokens),
//!    `okta_api` (the management API's credential), `pubsub`,
//!    `redis_connection`.
//! 5. The ground: `config` (environment → typed `Config`), `secret`,
//!    `identity` (who signed in, shared by `oidc` and `session`), `clock`,
//!    `memo`, `random`, `error_chain`, `html`, `telemetry`.

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
pub mod header_text;
pub mod healthcheck;
pub mod html;
pub mod identity;
pub mod identity_headers;
pub mod identity_jwt;
pub mod memo;
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
