//! The session and identity core: from a request's credentials (the session
//! cookie's values, or an API client's bearer token) to who is asking, their
//! groups and the policy's answer. Owns session lookup (MAC check, at most
//! [`MAX_SESSION_LOOKUPS`] store reads), the coalesced token refresh, groups
//! lookup, the check's decision with its metrics and logs, and making and
//! ending sessions at sign-in and sign-out.
//! Must NOT know HTTP: no actix types, no headers, no forwarded URL parsing,
//! no rendering; `routes` reads the request, calls this once, and answers.

use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;

use crate::bearer::{BearerError, BearerVerifier, TokenIdentity};
use crate::config::{Config, Provider};
use crate::groups::{Group, GroupsCache, GroupsError, UserGroups};
use crate::metrics;
use crate::oidc::{Oidc, RefreshError, SignedIn};
use crate::policy::{decide, AllowLists, Decision, Subject};
use crate::secret::Secret;
use crate::session::{CookieCodec, Session, SessionId, SessionStore, StoreError};

#[cfg(test)]
mod tests;

/// At most this many of a request's session cookie values with a valid MAC are
/// looked up: a browser sends one or two (one per domain); more is an attack
/// that would otherwise cost a store read each.
pub const MAX_SESSION_LOOKUPS: usize = 3;

/// Saves of a refreshed session before giving up.
const SAVE_ATTEMPTS: u32 = 3;

/// After a refresh Okta could not answer, the next try waits this long.
const TRANSIENT_REFRESH_PAUSE: u64 = 30;

/// Who a check found: a signed-in user's session, or an API client's token.
#[derive(Debug, Clone)]
pub enum Who {
    User(Arc<Session>),
    Token(Arc<TokenIdentity>),
}

impl Who {
    /// The Okta user id, or a machine's client id.
    pub fn subject(&self) -> &str {
        match self {
            Who::User(session) => &session.sub,
            Who::Token(token) => &token.subject,
        }
    }

    pub fn login(&self) -> &str {
        match self {
            Who::User(session) => &session.login,
            Who::Token(token) => &token.login,
        }
    }

    pub fn email(&self) -> &str {
        match self {
            Who::User(session) => &session.email,
            Who::Token(token) => &token.email,
        }
    }
}

/// Someone known, with their groups.
#[derive(Debug, Clone)]
pub struct Identified {
    pub who: Who,
    pub groups: Arc<UserGroups>,
}

/// The answer to "may this request pass?". Only `Allowed` may become a 2xx.
#[derive(Debug)]
pub enum Verdict {
    /// The policy allows this user or client.
    Allowed(Identified),
    /// No usable session: no cookie, a bad one, an ended session, or one of
    /// another root domain. "Who are you?"
    NoSession,
    /// Known, but not allowed: "not you". `reason` is for the audit log only.
    Forbidden { who: Who, reason: &'static str },
    /// An access token that is not accepted (never falls back to a cookie).
    BadToken(BearerError),
}

/// Why access could not be decided at all (the answer is a 5xx, or, for
/// `/oauth2/userinfo`, a refusal of a user Okta no longer lets in).
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("groups of {login}")]
    Groups {
        login: String,
        #[source]
        error: GroupsError,
    },
    /// The issuer's keys for access tokens are not loaded yet.
    #[error(transparent)]
    TokenKeys(BearerError),
}

/// A new session, made from a verified sign-in.
pub struct Opened {
    /// The session cookie's value.
    pub cookie: String,
    pub session: Session,
}

/// A session ended by its user.
pub struct SignedOut {
    pub session: Arc<Session>,
    /// How many sessions ended (all of the user's with `everywhere`).
    pub ended: usize,
}

/// The core every handler calls; one per process, owned by the app state.
pub struct Access {
    config: Arc<Config>,
    codec: CookieCodec,
    store: Arc<dyn SessionStore>,
    oidc: Arc<Oidc>,
    groups: Option<GroupsCache>,
    /// `Some` with `BEARER_AUDIENCE`: verified access tokens, cached.
    bearer: Option<BearerVerifier>,
    /// Coalesces concurrent refreshes of one session into one Okta call.
    refreshes: Cache<SessionId, Arc<Session>>,
}

impl Access {
    pub fn new(
        config: Arc<Config>,
        store: Arc<dyn SessionStore>,
        oidc: Arc<Oidc>,
        groups: Option<GroupsCache>,
    ) -> Access {
        Access {
            bearer: config
                .bearer
                .clone()
                .map(|b| BearerVerifier::new(b, &config.issuer)),
            codec: CookieCodec::new(config.cookie.keys.clone()),
            config,
            store,
            oidc,
            groups,
            refreshes: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(5))
                .build(),
        }
    }

    /// Checks of a session: who it is, their groups, and the policy's answer
    /// for `route`. `host` is the checked URL's host (several root domains: a
    /// session is only good on its own). Counts every outcome in the metrics.
    pub async fn check<'v>(
        &self,
        cookies: impl IntoIterator<Item = &'v str>,
        host: Option<&str>,
        route: &AllowLists,
        now: u64,
    ) -> Result<Verdict, AccessError> {
        let Some(session) = self.signed_in(cookies, host, now).await? else {
            metrics::AUTH_UNAUTHENTICATED.inc();
            return Ok(Verdict::NoSession);
        };
        let groups = match self.groups_of(&session).await {
            Ok(groups) => groups,
            Err(error) => return self.groups_refused(Who::User(session), error),
        };
        Ok(self.decide(route, Who::User(session), groups))
    }

    /// The access-token check, when API clients are accepted (`BEARER_AUDIENCE`).
    pub fn tokens(&self) -> Option<Tokens<'_>> {
        self.bearer.as_ref().map(|verifier| Tokens {
            access: self,
            verifier,
        })
    }

    /// The signed-in user and their groups, without a policy decision
    /// (`/oauth2/userinfo`). `None`: no usable session.
    pub async fn identify<'v>(
        &self,
        cookies: impl IntoIterator<Item = &'v str>,
        host: Option<&str>,
        now: u64,
    ) -> Result<Option<Identified>, AccessError> {
        let Some(session) = self.signed_in(cookies, host, now).await? else {
            return Ok(None);
        };
        match self.groups_of(&session).await {
            Ok(groups) => Ok(Some(Identified {
                who: Who::User(session),
                groups,
            })),
            Err(error) => Err(AccessError::Groups {
                login: session.login.clone(),
                error,
            }),
        }
    }

    /// The current session, refreshed when due, if it may be used on `host`.
    async fn signed_in<'v>(
        &self,
        cookies: impl IntoIterator<Item = &'v str>,
        host: Option<&str>,
        now: u64,
    ) -> Result<Option<Arc<Session>>, StoreError> {
        let session = self.current_session(cookies, now).await?;
        Ok(session
            .map(|(_, session)| session)
            .filter(|session| self.fits_host(session, host)))
    }

    /// The session the cookie values name, refreshed when its tokens are due.
    /// `Ok(None)`: no cookie, a bad one, or an ended session.
    pub async fn current_session<'v>(
        &self,
        cookies: impl IntoIterator<Item = &'v str>,
        now: u64,
    ) -> Result<Option<(SessionId, Arc<Session>)>, StoreError> {
        let Some((id, session)) = self.stored_session(cookies).await? else {
            return Ok(None);
        };
        if session.refresh_token.is_some()
            && now >= session.tokens_expire_at
            && now >= session.refresh_not_before
        {
            return Ok(self.refresh(&id, session, now).await.map(|s| (id, s)));
        }
        Ok(Some((id, session)))
    }

    /// The session the cookie values name, as stored: the first value with a
    /// valid MAC whose session exists, among at most [`MAX_SESSION_LOOKUPS`].
    pub async fn stored_session<'v>(
        &self,
        cookies: impl IntoIterator<Item = &'v str>,
    ) -> Result<Option<(SessionId, Arc<Session>)>, StoreError> {
        let ids = cookies
            .into_iter()
            .filter_map(|value| self.codec.decode_session(value))
            .take(MAX_SESSION_LOOKUPS);
        for id in ids {
            if let Some(session) = self.store.load(&id).await? {
                return Ok(Some((id, session)));
            }
        }
        Ok(None)
    }

    /// Whether a session may be used on a check for `host`: always with one
    /// domain; with several, only on the domain it was made for.
    pub fn fits_host(&self, session: &Session, host: Option<&str>) -> bool {
        let sites = &self.config.sites;
        if !sites.is_several() {
            return true;
        }
        match (host.and_then(|h| sites.for_host(h)), &session.cookie_domain) {
            (Some(site), Some(domain)) => site.cookie_domain == *domain,
            _ => false,
        }
    }

    /// Renews Okta's tokens once for all concurrent checks of a session. `None`
    /// when Okta refused (the session is then ended).
    async fn refresh(
        &self,
        id: &SessionId,
        session: Arc<Session>,
        now: u64,
    ) -> Option<Arc<Session>> {
        let result = self
            .refreshes
            .try_get_with(id.clone(), async {
                metrics::TOKEN_REFRESHES.inc();
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
                        renewed.refresh_not_before = now + TRANSIENT_REFRESH_PAUSE;
                    }
                }
                let renewed = Arc::new(renewed);
                self.save_refreshed(id, &session, &renewed).await?;
                Ok(renewed)
            })
            .await;
        result.ok()
    }

    /// A sign-out while Okta was answering must not be undone by the save. A
    /// failed save would lose Okta's rotated refresh token (the old one no
    /// longer works): retry, then say so loudly.
    async fn save_refreshed(
        &self,
        id: &SessionId,
        before: &Session,
        renewed: &Session,
    ) -> Result<(), String> {
        for attempt in 1..=SAVE_ATTEMPTS {
            match self.store.update(id, renewed).await {
                Ok(true) => break,
                Ok(false) => return Err("the session ended during the refresh".to_owned()),
                Err(e) if attempt < SAVE_ATTEMPTS => {
                    tracing::warn!(user = %before.login, error = %e, "could not save the refreshed session; retrying");
                    let pause = 250 * u64::from(attempt);
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
                Err(e) => tracing::error!(
                    user = %before.login,
                    error = %e,
                    rotated_refresh_token = fresh_token_rotated(before, renewed),
                    "could not save the refreshed session: the next check refreshes again and, if Okta rotated the refresh token, may end the session"
                ),
            }
        }
        Ok(())
    }

    /// The groups of a session's user: from Okta (cached) or the ID token claim.
    pub async fn groups_of(&self, session: &Session) -> Result<Arc<UserGroups>, GroupsError> {
        match (&self.groups, self.config.provider) {
            (Some(groups), Provider::Okta) => groups.groups_of(&session.sub).await,
            _ => Ok(from_claim(session.groups_claim.as_deref())),
        }
    }

    /// The policy's answer for someone whose groups are known.
    fn decide(&self, route: &AllowLists, who: Who, groups: Arc<UserGroups>) -> Verdict {
        let subject = Subject {
            login: who.login(),
            email: who.email(),
            groups: &groups.list,
        };
        match decide(&self.config.policy, route, &subject) {
            Decision::Allow => {
                metrics::AUTH_ALLOWED.inc();
                crate::audit::allowed(who.login());
                Verdict::Allowed(Identified { who, groups })
            }
            Decision::Deny(reason) => {
                metrics::AUTH_FORBIDDEN.inc();
                tracing::info!(user = %who.login(), reason, "access denied");
                Verdict::Forbidden { who, reason }
            }
        }
    }

    /// A groups lookup that failed: Okta's word about the user is a 403
    /// ("not you", never a sign-in loop); Okta not answering is a 503.
    fn groups_refused(&self, who: Who, error: GroupsError) -> Result<Verdict, AccessError> {
        let reason = match &error {
            GroupsError::UserNotFound => {
                tracing::info!(user = %who.login(), "denied: Okta no longer knows this user");
                "Okta no longer knows this user"
            }
            GroupsError::UserInactive(status) => {
                tracing::info!(user = %who.login(), %status, "denied: the user's Okta status no longer grants access");
                "the user's Okta status no longer grants access"
            }
            _ => {
                metrics::AUTH_UNAVAILABLE.inc();
                return Err(AccessError::Groups {
                    login: who.login().to_owned(),
                    error,
                });
            }
        };
        metrics::AUTH_FORBIDDEN.inc();
        Ok(Verdict::Forbidden { who, reason })
    }

    /// Makes the session of a sign-in Okta vouched for, once per `state`:
    /// `None` when the state was used before (a replayed callback).
    /// `cookie_domain`: the root domain it is for, with several.
    pub async fn open_session(
        &self,
        signed_in: SignedIn,
        state: &str,
        cookie_domain: Option<String>,
        now: u64,
    ) -> Result<Option<Opened>, StoreError> {
        // Only now does a sign-in cost the store a marker, which refuses a
        // replay of the same callback (cookie, state and code).
        if !self.store.use_state(state).await? {
            return Ok(None);
        }
        let session = new_session(
            signed_in,
            now,
            self.config.cookie.expire.as_secs(),
            cookie_domain,
        );
        // A fresh id for every sign-in: a cookie planted before cannot become a session.
        let id = SessionId::random();
        self.store.save(&id, &session).await?;
        if let Some(groups) = &self.groups {
            // Warm the cache so the first check does not wait on Okta.
            if let Err(e) = groups.prefetch(&session.sub).await {
                tracing::warn!(user = %session.login, error = %e, "could not load groups at sign-in");
            }
        }
        metrics::SIGN_INS.inc();
        tracing::info!(user = %session.login, "signed in");
        Ok(Some(Opened {
            cookie: self.codec.encode_session(&id),
            session,
        }))
    }

    /// Ends the session the cookie values name (or, with `everywhere`, all of
    /// its user's sessions). `None`: there was no session.
    pub async fn sign_out<'v>(
        &self,
        cookies: impl IntoIterator<Item = &'v str>,
        everywhere: bool,
    ) -> Result<Option<SignedOut>, StoreError> {
        let Some((id, session)) = self.stored_session(cookies).await? else {
            return Ok(None);
        };
        let ended = if everywhere {
            let ended = self.store.remove_user(&session.sub).await?;
            tracing::info!(user = %session.login, sessions = ended, "signed out everywhere");
            ended
        } else {
            self.store.remove(&id).await?;
            tracing::info!(user = %session.login, "signed out");
            1
        };
        Ok(Some(SignedOut { session, ended }))
    }

    /// The `id_token_hint` Okta's sign-out wants. Sessions with a refresh token
    /// do not keep the (large) ID token: one refresh gets a fresh one, and the
    /// refresh token is then revoked, as Okta recommends. `None` (Okta
    /// unreachable, token refused): Okta's session is left alone.
    pub async fn sign_out_hint(&self, session: &Session) -> Option<Secret> {
        if let Some(id_token) = &session.id_token {
            return Some(id_token.clone());
        }
        let refresh_token = session.refresh_token.as_ref()?;
        let fresh = match self.oidc.refresh(refresh_token, &session.sub).await {
            Ok(fresh) => fresh,
            Err(e) => {
                tracing::info!(user = %session.login, error = %e, "no ID token for Okta's sign-out; ending the local session only");
                return None;
            }
        };
        let latest = fresh.refresh_token.as_ref().unwrap_or(refresh_token);
        if let Err(e) = self.oidc.revoke_refresh_token(latest).await {
            tracing::info!(user = %session.login, error = %e, "could not revoke the refresh token");
        }
        fresh.id_token
    }
}

/// The access-token check; exists only when API clients are accepted.
pub struct Tokens<'a> {
    access: &'a Access,
    verifier: &'a BearerVerifier,
}

impl Tokens<'_> {
    /// Who an access token speaks for, their groups and the policy's answer.
    /// A bad token is [`Verdict::BadToken`], whatever cookie comes with it.
    pub async fn check(&self, token: &str, route: &AllowLists) -> Result<Verdict, AccessError> {
        let access = self.access;
        let identity = match self.verifier.verify(&access.oidc, token).await {
            Ok(identity) => identity,
            Err(BearerError::NotReady) => {
                return Err(AccessError::TokenKeys(BearerError::NotReady))
            }
            Err(error) => {
                metrics::AUTH_UNAUTHENTICATED.inc();
                tracing::info!(%error, "bearer token refused");
                return Ok(Verdict::BadToken(error));
            }
        };
        let groups = if identity.machine {
            Arc::new(UserGroups::new(Vec::new()))
        } else {
            match &access.groups {
                Some(cache) => match cache.groups_of(&identity.subject).await {
                    Ok(groups) => groups,
                    Err(error) => return access.groups_refused(Who::Token(identity), error),
                },
                None => from_claim(identity.groups_claim.as_deref()),
            }
        };
        Ok(access.decide(route, Who::Token(identity), groups))
    }
}

/// Groups named by a token's `groups` claim (ids are the names).
fn from_claim(claim: Option<&[String]>) -> Arc<UserGroups> {
    Arc::new(UserGroups::new(
        claim
            .into_iter()
            .flatten()
            .map(|name| Group {
                id: name.clone(),
                name: name.clone(),
            })
            .collect(),
    ))
}

/// The session a verified sign-in starts, lasting `lifetime` seconds.
pub fn new_session(
    signed_in: SignedIn,
    now: u64,
    lifetime: u64,
    cookie_domain: Option<String>,
) -> Session {
    let keep_id_token = signed_in.refresh_token.is_none();
    Session {
        sub: signed_in.sub,
        login: signed_in.login,
        email: signed_in.email,
        name: signed_in.name,
        groups_claim: signed_in.groups_claim,
        sid: signed_in.sid,
        created_at: now,
        expires_at: now + lifetime,
        tokens_expire_at: signed_in.tokens_expire_at,
        refresh_not_before: 0,
        refresh_token: signed_in.refresh_token,
        // An Okta ID token is ~1 kB, more than the rest of the session together:
        // with a refresh token, sign-out gets a fresh one instead of keeping it.
        id_token: keep_id_token.then_some(signed_in.id_token),
        cookie_domain,
    }
}

/// Whether a refresh left the session with another refresh token than it had.
fn fresh_token_rotated(before: &Session, after: &Session) -> bool {
    match (&before.refresh_token, &after.refresh_token) {
        (Some(a), Some(b)) => a.expose() != b.expose(),
        (None, Some(_)) => true,
        _ => false,
    }
}
