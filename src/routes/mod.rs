//! HTTP handlers: thin functions that read the request, call the modules that
//! decide, and render the answer. One route table in [`configure`]; the shared
//! state in [`AppState`].

use std::sync::Arc;

use actix_web::http::Method;
use actix_web::{guard, web};

use crate::access::Access;
use crate::config::Config;
use crate::error::AppError;
use crate::groups::GroupsCache;
use crate::oidc::Oidc;
use crate::okta_events::EventHooks;
use crate::pending::PendingCodec;
use crate::session::SessionStore;

mod auth;
mod backchannel;
mod cookies;
mod frontchannel;
mod global_logout;
mod info;
mod jwks;
mod okta_events;
mod sign_in;
mod sign_out;
pub(crate) mod site;

pub use cookies::{cookie_values, session_cookie_header, CookieNames};

pub use crate::access::MAX_SESSION_LOOKUPS;

/// Everything a handler needs, shared by all workers.
pub struct AppState {
    pub config: Arc<Config>,
    /// Who is asking and may they pass: sessions, refresh, groups, tokens.
    pub access: Access,
    pub store: Arc<dyn SessionStore>,
    pub oidc: Arc<Oidc>,
    /// `Some` for `IDP_PROVIDER=okta`.
    pub groups: Option<GroupsCache>,
    /// `Some` with `OKTA_EVENT_HOOK_SECRET`: the event-hook receiver.
    pub event_hooks: Option<EventHooks>,
    /// Seals the pending sign-ins the binding cookie carries.
    pub pending: PendingCodec,
    /// Our cookies' names (prefixed) and the old ones still read.
    pub cookie_names: CookieNames,
    /// Front-channel logouts served this second (a credential-less endpoint).
    pub frontchannel_budget: frontchannel::Budget,
    /// `Some` with `IDENTITY_JWT_KEY`: the `X-Auth-Request-Jwt` signer and cache.
    pub identity_tokens: Option<crate::identity_jwt::IdentityTokens>,
    /// The sign-in and sign-out URLs denied checks send, per site.
    pub denial_urls: site::AllDenialUrls,
    /// This state's number in the process, as text: per-thread memos of
    /// answers that depend on the configuration key on it (tests run apps
    /// of different configurations on one thread).
    pub instance: Box<str>,
}

/// A number no other [`AppState`] of this process has, as text.
fn next_instance() -> Box<str> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        .to_string()
        .into()
}

impl AppState {
    pub fn new(
        config: Arc<Config>,
        store: Arc<dyn SessionStore>,
        oidc: Arc<Oidc>,
        groups: Option<GroupsCache>,
    ) -> AppState {
        AppState {
            access: Access::new(config.clone(), store.clone(), oidc.clone(), groups.clone()),
            identity_tokens: config
                .identity_keys
                .clone()
                .map(crate::identity_jwt::IdentityTokens::new),
            pending: PendingCodec::new(&config.cookie.keys),
            cookie_names: CookieNames::new(&config.cookie, None),
            frontchannel_budget: frontchannel::Budget::default(),
            denial_urls: site::AllDenialUrls::new(&config),
            instance: next_instance(),
            config,
            store,
            oidc,
            groups,
            event_hooks: None,
        }
    }

    /// Enables `/oauth2/okta/events` with this receiver.
    pub fn with_event_hooks(mut self, hooks: Option<EventHooks>) -> AppState {
        self.event_hooks = hooks;
        self
    }

    /// Reads the unprefixed session cookie of earlier versions for one
    /// `COOKIE_EXPIRE` after `first_prefixed_start` (see [`CookieNames`]).
    pub fn with_cookie_migration(mut self, first_prefixed_start: Option<u64>) -> AppState {
        self.cookie_names = CookieNames::new(&self.config.cookie, first_prefixed_start);
        self
    }

    /// Where to send the browser afterwards: `rd` when the allow-list accepts
    /// it, `/` when none was given, a 400 otherwise.
    pub fn return_address(&self, rd: Option<&str>) -> Result<String, AppError> {
        match rd {
            None | Some("") => Ok("/".to_owned()),
            Some(rd) => Ok(self.config.redirects.validate(rd)?),
        }
    }
}

/// The route table. `state` must also be the app's `app_data` (the other
/// handlers extract it from there).
pub fn configure(state: web::Data<AppState>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| checks_and_the_rest(cfg, state)
}

fn checks_and_the_rest(cfg: &mut web::ServiceConfig, state: web::Data<AppState>) {
    let forward_state = state.clone();
    // The two checks first, one resource each for GET and HEAD, matched by a
    // plain guard: actix's method guards record every method they test in
    // the request's extensions (a map and two allocations per check); any
    // other method finds no route (404), as before. They hold the state
    // rather than extract it: the extractor looks it up in the app-data map
    // on every request.
    cfg.service(
        web::resource("/oauth2/auth")
            .guard(guard::fn_guard(get_or_head))
            .to(move |req| auth::auth(req, state.clone())),
    )
    .service(
        web::resource("/oauth2/forward")
            .guard(guard::fn_guard(get_or_head))
            .to(move |req| auth::forward(req, forward_state.clone())),
    )
    .route("/oauth2/start", web::get().to(sign_in::start))
    .route("/oauth2/callback", web::get().to(sign_in::callback))
    .route("/oauth2/sign_out", web::get().to(sign_out::sign_out))
    .route("/oauth2/sign_out", web::post().to(sign_out::sign_out))
    .service(
        web::resource("/oauth2/backchannel_logout")
            .app_data(backchannel::form_config())
            .route(web::post().to(backchannel::backchannel_logout)),
    )
    .route("/oauth2/okta/events", web::get().to(okta_events::verify))
    .route("/oauth2/okta/events", web::post().to(okta_events::deliver))
    .service(
        web::resource("/oauth2/global-token-revocation")
            .app_data(global_logout::payload_config())
            .route(web::post().to(global_logout::global_token_revocation)),
    )
    .route(
        "/oauth2/frontchannel_logout",
        web::get().to(frontchannel::frontchannel_logout),
    )
    .route("/oauth2/userinfo", web::get().to(info::userinfo))
    .route("/oauth2/jwks.json", web::get().to(jwks::jwks))
    .route("/healthz", web::get().to(info::healthz))
    .route("/readyz", web::get().to(info::readyz));
}

/// GET or HEAD: the methods a proxy checks with.
fn get_or_head(ctx: &guard::GuardContext<'_>) -> bool {
    matches!(ctx.head().method, Method::GET | Method::HEAD)
}

/// The metrics listener's route table.
pub fn configure_metrics(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(info::metrics));
}
