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

use crate::config::{Config, Provider};
use crate::groups::{Group, GroupsCache, GroupsError, UserGroups};
use crate::metrics;
use crate::oidc::bearer::{BearerError, BearerVerifier, TokenIdentity};
use crate::oidc::Oidc;
use crate::policy::{decide, AllowLists, Decision, Subject};
use crate::session::{CookieCodec, Session, SessionCookie, SessionId, SessionStore, StoreError};

mod hot;
mod refresh;
mod sessions;
#[cfg(test)]
mod tests;
mod token_hot;

pub use hot::SessionHot;
pub use sessions::{new_session, Opened, SignedOut};
pub use token_hot::TokenHot;

/// At most this many of a request's session cookie values with a valid MAC are
/// looked up: a browser sends one or two (one per domain); more is an attack
/// that would otherwise cost a store read each.
pub const MAX_SESSION_LOOKUPS: usize = 3;

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
            Who::User(session) => session.identity().sub(),
            Who::Token(token) => &token.subject,
        }
    }

    pub fn login(&self) -> &str {
        match self {
            Who::User(session) => session.identity().login(),
            Who::Token(token) => &token.login,
        }
    }

    pub fn email(&self) -> &str {
        match self {
            Who::User(session) => session.identity().email(),
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
        let found = self.signed_in(cookies, host, now).await.inspect_err(|_| {
            // The store not answering is a check that could not be decided.
            metrics::AUTH_UNAVAILABLE.inc();
        });
        let Some(session) = found? else {
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
                login: session.identity().login().to_owned(),
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
        let Some((id, session)) = self.stored_session(cookies, now).await? else {
            return Ok(None);
        };
        // A session of another domain is no session here: it costs Okta no refresh.
        if !self.fits_host(&session, host) {
            return Ok(None);
        }
        let session = self.refreshed_when_due(id, session, now).await?;
        Ok(session.map(|(_, session)| session))
    }

    /// The session the cookie values name, refreshed when its tokens are due.
    /// `Ok(None)`: no cookie, a bad one, or an ended session.
    pub async fn current_session<'v>(
        &self,
        cookies: impl IntoIterator<Item = &'v str>,
        now: u64,
    ) -> Result<Option<(SessionId, Arc<Session>)>, StoreError> {
        let Some((id, session)) = self.stored_session(cookies, now).await? else {
            return Ok(None);
        };
        self.refreshed_when_due(id, session, now).await
    }

    /// The session, or its refreshed successor when its tokens are due
    /// (`None` when the refresh ended it).
    async fn refreshed_when_due(
        &self,
        id: SessionId,
        session: Arc<Session>,
        now: u64,
    ) -> Result<Option<(SessionId, Arc<Session>)>, StoreError> {
        if session.refresh_token().is_some()
            && now >= session.tokens_expire_at()
            && now >= session.refresh_not_before()
        {
            // Boxed: the refresh's Okta and store futures would otherwise make
            // every check's future (boxed by actix per request) ~10 KB.
            let refreshed = Box::pin(self.refresh(&id, session, now)).await;
            return Ok(refreshed.map(|s| (id, s)));
        }
        Ok(Some((id, session)))
    }

    /// The session the cookie values name, as stored: the first value with a
    /// valid MAC whose session exists, among at most [`MAX_SESSION_LOOKUPS`].
    ///
    /// A warm check computes no MAC: when this process holds the session and
    /// an earlier check of it verified this very tag, the value is one the MAC
    /// accepted. The held session is read before the MAC only because reading
    /// it costs no I/O; a session the store must fetch is fetched only for a
    /// value whose MAC verifies.
    pub async fn stored_session<'v>(
        &self,
        cookies: impl IntoIterator<Item = &'v str>,
        now: u64,
    ) -> Result<Option<(SessionId, Arc<Session>)>, StoreError> {
        let mut lookups = 0;
        for value in cookies {
            if lookups == MAX_SESSION_LOOKUPS {
                break;
            }
            let Some(cookie) = SessionCookie::parse(value) else {
                continue;
            };
            let held = self.store.load_held(&cookie.id, now);
            if let Some(session) = held.as_ref() {
                if SessionHot::verified_tag(session, &cookie.tag) {
                    return Ok(Some((cookie.id, session.clone())));
                }
            }
            if !self.codec.verifies(&cookie) {
                continue;
            }
            lookups += 1;
            let session = match held {
                Some(session) => Some(session),
                None => self.store.load(&cookie.id).await?,
            };
            if let Some(session) = session {
                SessionHot::remember_tag(&session, cookie.tag);
                return Ok(Some((cookie.id, session)));
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
        match (
            host.and_then(|h| sites.for_host(h)),
            session.cookie_domain(),
        ) {
            (Some(site), Some(domain)) => site.cookie_domain == domain,
            _ => false,
        }
    }

    /// The groups of a session's user: from Okta (cached) or the ID token claim.
    pub async fn groups_of(&self, session: &Session) -> Result<Arc<UserGroups>, GroupsError> {
        match (&self.groups, self.config.provider) {
            (Some(groups), Provider::Okta) => {
                let sub = session.identity().sub();
                SessionHot::kept(session).groups(groups, sub).await
            }
            _ => Ok(from_claim(session.identity().groups_claim())),
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
}

/// The access-token check; exists only when API clients are accepted.
pub struct Tokens<'a> {
    access: &'a Access,
    verifier: &'a BearerVerifier,
}

impl Tokens<'_> {
    /// Who an access token speaks for, their groups and the policy's answer.
    /// A bad token is [`Verdict::BadToken`], whatever cookie comes with it.
    /// `token` is the header's bytes: read as text only when it is not one
    /// verified lately (a token that is not text is refused as malformed).
    pub async fn check(&self, token: &[u8], route: &AllowLists) -> Result<Verdict, AccessError> {
        // A token verified lately whose groups are at hand is decided without
        // awaiting anything; every other check is boxed, as a rare path: the
        // handler's future (allocated per request) stays small.
        if let Some(identity) = self.verifier.verified_lately(token) {
            if let Ok(groups) = self.groups_at_hand(&identity) {
                return Ok(self.access.decide(route, Who::Token(identity), groups));
            }
        }
        Box::pin(self.verify_and_check(token, route)).await
    }

    /// A token's groups when no lookup is needed: a machine's (none), its
    /// claim's, or its user's answer through the token's link; else the
    /// cache to ask.
    fn groups_at_hand(&self, identity: &TokenIdentity) -> Result<Arc<UserGroups>, &GroupsCache> {
        if identity.machine {
            return Ok(TokenHot::fixed_groups(identity, || {
                Arc::new(UserGroups::new(Vec::new()))
            }));
        }
        match &self.access.groups {
            Some(cache) => TokenHot::kept(identity).linked(cache).ok_or(cache),
            None => Ok(TokenHot::fixed_groups(identity, || {
                from_claim(identity.groups_claim.as_deref())
            })),
        }
    }

    /// [`check`](Self::check) from the start: the token verified (cache or
    /// keys) and its groups looked up when they are not at hand.
    async fn verify_and_check(
        &self,
        token: &[u8],
        route: &AllowLists,
    ) -> Result<Verdict, AccessError> {
        let access = self.access;
        let verified = match crate::header_text::visible_ascii(token) {
            Some(token) => self.verifier.verify(&access.oidc, token).await,
            None => Err(BearerError::Malformed),
        };
        let identity = match verified {
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
        let groups = match self.groups_at_hand(&identity) {
            Ok(groups) => groups,
            Err(cache) => match TokenHot::kept(&identity)
                .groups(cache, &identity.subject)
                .await
            {
                Ok(groups) => groups,
                Err(error) => return access.groups_refused(Who::Token(identity), error),
            },
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
