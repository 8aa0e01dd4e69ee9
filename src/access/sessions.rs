//! Opening a session at sign-in (once per sign-in state, with a fresh id) and
//! ending it at sign-out, with the `id_token_hint` Okta's sign-out wants.
//! Must NOT know HTTP: cookies' `Set-Cookie`, redirects and audit lines are
//! the handlers'.

use std::sync::Arc;

use super::Access;
use crate::metrics;
use crate::oidc::SignedIn;
use crate::secret::Secret;
use crate::session::{Session, SessionId, StoreError};

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

impl Access {
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
            if let Err(e) = groups.prefetch(session.identity().sub()).await {
                tracing::warn!(user = %session.identity().login(), error = %e, "could not load groups at sign-in");
            }
        }
        metrics::SIGN_INS.inc();
        tracing::info!(user = %session.identity().login(), "signed in");
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
        let Some((id, session)) = self.stored_session(cookies, crate::clock::now()).await? else {
            return Ok(None);
        };
        let ended = if everywhere {
            let ended = self.store.remove_user(session.identity().sub()).await?;
            tracing::info!(user = %session.identity().login(), sessions = ended, "signed out everywhere");
            ended
        } else {
            self.store.remove(&id).await?;
            tracing::info!(user = %session.identity().login(), "signed out");
            1
        };
        Ok(Some(SignedOut { session, ended }))
    }

    /// The `id_token_hint` Okta's sign-out wants. Sessions with a refresh token
    /// do not keep the (large) ID token: one refresh gets a fresh one, and the
    /// refresh token is then revoked, as Okta recommends. `None` (Okta
    /// unreachable, token refused): Okta's session is left alone.
    pub async fn sign_out_hint(&self, session: &Session) -> Option<Secret> {
        if let Some(id_token) = session.id_token() {
            return Some(id_token.clone());
        }
        let refresh_token = session.refresh_token()?;
        let fresh = match self
            .oidc
            .refresh(refresh_token, session.identity().sub())
            .await
        {
            Ok(fresh) => fresh,
            Err(e) => {
                tracing::info!(user = %session.identity().login(), error = %e, "no ID token for Okta's sign-out; ending the local session only");
                return None;
            }
        };
        let latest = fresh
            .refresh_token
            .as_ref()
            .map_or(refresh_token, Secret::borrowed);
        if let Err(e) = self.oidc.revoke_refresh_token(latest).await {
            tracing::info!(user = %session.identity().login(), error = %e, "could not revoke the refresh token");
        }
        fresh.id_token
    }
}

/// The session a verified sign-in starts, lasting `lifetime` seconds.
pub fn new_session(
    signed_in: SignedIn,
    now: u64,
    lifetime: u64,
    cookie_domain: Option<String>,
) -> Session {
    let keep_id_token = signed_in.refresh_token.is_none();
    Session::new(
        signed_in.identity,
        now,
        now + lifetime,
        signed_in.tokens_expire_at,
        signed_in.refresh_token,
    )
    // An Okta ID token is ~1 kB, more than the rest of the session together:
    // with a refresh token, sign-out gets a fresh one instead of keeping it.
    .with_id_token(keep_id_token.then_some(signed_in.id_token))
    .with_cookie_domain(cookie_domain)
}
