//! HTTP handlers: thin functions that read the request, call the modules that
//! decide, and render the answer. One route table in [`configure`]; the shared
//! state in [`AppState`].

use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, HttpRequest};
use moka::future::Cache;

use crate::clock::now;
use crate::config::{Config, Provider};
use crate::error::AppError;
use crate::groups::{Group, GroupsCache, GroupsError, UserGroups};
use crate::oidc::{Oidc, RefreshError};
use crate::okta_events::EventHooks;
use crate::pending::PendingCodec;
use crate::session::{CookieCodec, Session, SessionId, SessionStore};

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

/// At most this many of a request's session cookie values with a valid MAC are
/// looked up: a browser sends one or two (one per domain); more is an attack
/// that would otherwise cost a store read each.
pub const MAX_SESSION_LOOKUPS: usize = 3;

/// Everything a handler needs, shared by all workers.
pub struct AppState {
    pub config: Arc<Config>,
    pub codec: CookieCodec,
    pub store: Arc<dyn SessionStore>,
    pub oidc: Arc<Oidc>,
    /// `Some` for `IDP_PROVIDER=okta`.
    pub groups: Option<GroupsCache>,
    /// Coalesces concurrent refreshes of one session into one Okta call.
    refreshes: Cache<SessionId, Arc<Session>>,
    /// `Some` with `OKTA_EVENT_HOOK_SECRET`: the event-hook receiver.
    pub event_hooks: Option<EventHooks>,
    /// Seals the pending sign-ins the binding cookie carries.
    pub pending: PendingCodec,
    /// Our cookies' names (prefixed) and the old ones still read.
    pub cookie_names: CookieNames,
    /// Front-channel logouts served this second (a credential-less endpoint).
    pub frontchannel_budget: frontchannel::Budget,
    /// `Some` with `BEARER_AUDIENCE`: verified access tokens, cached.
    pub bearer: Option<crate::oidc::bearer::BearerVerifier>,
    /// `Some` with `IDENTITY_JWT_KEY`: the `X-Auth-Request-Jwt` signer and cache.
    pub identity_tokens: Option<crate::identity_jwt::IdentityTokens>,
}

impl AppState {
    pub fn new(
        config: Arc<Config>,
        store: Arc<dyn SessionStore>,
        oidc: Arc<Oidc>,
        groups: Option<GroupsCache>,
    ) -> AppState {
        AppState {
            bearer: config
                .bearer
                .clone()
                .map(|b| crate::oidc::bearer::BearerVerifier::new(b, &config.issuer)),
            identity_tokens: config
                .identity_keys
                .clone()
                .map(crate::identity_jwt::IdentityTokens::new),
            codec: CookieCodec::new(config.cookie.keys.clone()),
            pending: PendingCodec::new(&config.cookie.keys),
            cookie_names: CookieNames::new(&config.cookie, None),
            frontchannel_budget: frontchannel::Budget::default(),
            config,
            store,
            oidc,
            groups,
            refreshes: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(5))
                .build(),
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

    /// The session the request's cookie names, refreshed when its tokens are due.
    /// `Ok(None)`: no cookie, a bad one, or an ended session. `Err`: the store
    /// cannot answer.
    pub async fn current_session(
        &self,
        req: &HttpRequest,
    ) -> Result<Option<(SessionId, Arc<Session>)>, AppError> {
        let Some((id, session)) = self.current_session_without_refresh(req).await? else {
            return Ok(None);
        };
        let now = now();
        if session.refresh_token.is_some()
            && now >= session.tokens_expire_at
            && now >= session.refresh_not_before
        {
            return Ok(self.refresh(&id, session).await.map(|s| (id, s)));
        }
        Ok(Some((id, session)))
    }

    /// The session the request's cookie names, as stored.
    pub async fn current_session_without_refresh(
        &self,
        req: &HttpRequest,
    ) -> Result<Option<(SessionId, Arc<Session>)>, AppError> {
        let ids = self
            .cookie_names
            .session_values(req, now())
            .filter_map(|value| self.codec.decode_session(value))
            .take(MAX_SESSION_LOOKUPS);
        for id in ids {
            let session = self
                .store
                .load(&id)
                .await
                .map_err(|e| AppError::Unavailable(e.to_string()))?;
            if let Some(session) = session {
                return Ok(Some((id, session)));
            }
        }
        Ok(None)
    }

    /// Renews Okta's tokens once for all concurrent checks of a session. `None`
    /// when Okta refused (the session is then ended).
    async fn refresh(&self, id: &SessionId, session: Arc<Session>) -> Option<Arc<Session>> {
        let result = self
            .refreshes
            .try_get_with(id.clone(), async {
                crate::metrics::TOKEN_REFRESHES.inc();
                let Some(token) = session.refresh_token.as_ref() else {
                    return Ok(session.clone());
                };
                let mut renewed = Session::clone(&session);
                match self.oidc.refresh(token, &session.sub).await {
                    Ok(fresh) => {
                        renewed.tokens_expire_at = fresh.tokens_expire_at;
                        if fresh.refresh_token.is_some() {
                            renewed.refresh_token = fresh.refresh_token;
                        }
                        // A new ID token speaks for the groups: one without a
                        // `groups` claim means none (Okta leaves the claim out
                        // when no group matches the app's filter).
                        if fresh.id_token.is_some() {
                            renewed.groups_claim = fresh.groups_claim;
                        }
                        tracing::debug!(user = %session.login, "tokens refreshed");
                    }
                    Err(RefreshError::Refused(reason)) => {
                        tracing::info!(user = %session.login, %reason, "Okta refused the refresh; ending the session");
                        let _ = self.store.remove(id).await;
                        return Err(reason);
                    }
                    Err(RefreshError::Transient(reason)) => {
                        tracing::warn!(user = %session.login, %reason, "refresh failed; keeping the session and retrying later");
                        renewed.refresh_not_before = now() + 30;
                    }
                }
                let renewed = Arc::new(renewed);
                // A sign-out while Okta was answering must not be undone by the save.
                // A failed save would lose Okta's rotated refresh token (the old
                // one no longer works): retry once, then say so loudly.
                for attempt in 1..=SAVE_ATTEMPTS {
                    match self.store.update(id, &renewed).await {
                        Ok(true) => break,
                        Ok(false) => return Err("the session ended during the refresh".to_owned()),
                        Err(e) if attempt < SAVE_ATTEMPTS => {
                            tracing::warn!(user = %session.login, error = %e, "could not save the refreshed session; retrying");
                            let pause = 250 * u64::from(attempt);
                            tokio::time::sleep(Duration::from_millis(pause)).await;
                        }
                        Err(e) => tracing::error!(
                            user = %session.login,
                            error = %e,
                            rotated_refresh_token = fresh_token_rotated(&session, &renewed),
                            "could not save the refreshed session: the next check refreshes again and, if Okta rotated the refresh token, may end the session"
                        ),
                    }
                }
                Ok(renewed)
            })
            .await;
        result.ok()
    }

    /// Where to send the browser afterwards: `rd` when the allow-list accepts
    /// it, `/` when none was given, a 400 otherwise.
    pub fn return_address(&self, rd: Option<&str>) -> Result<String, AppError> {
        match rd {
            None | Some("") => Ok("/".to_owned()),
            Some(rd) => self.config.redirects.validate(rd).map_err(|e| {
                AppError::BadRequest(format!("The return address (rd) was refused: {e}"))
            }),
        }
    }

    /// The groups of a session's user: from Okta (cached) or the ID token claim.
    pub async fn groups_of(&self, session: &Session) -> Result<Arc<UserGroups>, GroupsError> {
        match (&self.groups, self.config.provider) {
            (Some(groups), Provider::Okta) => groups.groups_of(&session.sub).await,
            _ => Ok(Arc::new(UserGroups::new(
                session
                    .groups_claim
                    .iter()
                    .flatten()
                    .map(|name| Group {
                        id: name.clone(),
                        name: name.clone(),
                    })
                    .collect(),
            ))),
        }
    }
}

/// Saves of a refreshed session before giving up.
const SAVE_ATTEMPTS: u32 = 3;

/// Whether a refresh left the session with another refresh token than it had.
fn fresh_token_rotated(before: &Session, after: &Session) -> bool {
    match (&before.refresh_token, &after.refresh_token) {
        (Some(a), Some(b)) => a.expose() != b.expose(),
        (None, Some(_)) => true,
        _ => false,
    }
}

/// The route table.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/oauth2/auth", web::get().to(auth::auth))
        .route("/oauth2/auth", web::head().to(auth::auth))
        .route("/oauth2/forward", web::get().to(auth::forward))
        .route("/oauth2/forward", web::head().to(auth::forward))
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

/// The metrics listener's route table.
pub fn configure_metrics(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(info::metrics));
}
