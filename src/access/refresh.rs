//! The coalesced refresh of a session's Okta tokens when they are due: one
//! Okta call for all concurrent checks of a session, the session ended when
//! Okta refuses, kept (and retried later) when Okta cannot answer. Must NOT
//! decide access or know HTTP; `super::Access` calls it during a lookup.

use std::sync::Arc;
use std::time::Duration;

use super::Access;
use crate::metrics;
use crate::oidc::RefreshError;
use crate::session::{Session, SessionId};

/// Saves of a refreshed session before giving up.
const SAVE_ATTEMPTS: u32 = 3;

/// After a refresh Okta could not answer, the next try waits this long.
pub(super) const TRANSIENT_REFRESH_PAUSE: u64 = 30;

impl Access {
    /// Renews Okta's tokens once for all concurrent checks of a session. `None`
    /// when Okta refused (the session is then ended).
    pub(super) async fn refresh(
        &self,
        id: &SessionId,
        session: Arc<Session>,
        now: u64,
    ) -> Option<Arc<Session>> {
        let result = self
            .refreshes
            .try_get_with(id.clone(), async {
                metrics::TOKEN_REFRESHES.inc();
                let Some(token) = session.refresh_token() else {
                    return Ok(session.clone());
                };
                let mut renewed = Session::clone(&session);
                match self.oidc.refresh(token, session.identity().sub()).await {
                    Ok(fresh) => {
                        renewed.set_tokens_expire_at(fresh.tokens_expire_at);
                        if let Some(rotated) = &fresh.refresh_token {
                            renewed.set_refresh_token(Some(rotated.borrowed()));
                        }
                        // A new ID token speaks for the groups: one without a
                        // `groups` claim means none (Okta leaves the claim out
                        // when no group matches the app's filter).
                        if fresh.id_token.is_some() {
                            renewed.set_groups_claim(fresh.groups_claim);
                        }
                        tracing::debug!(user = %session.identity().login(), "tokens refreshed");
                    }
                    Err(RefreshError::Refused(reason)) => {
                        tracing::info!(user = %session.identity().login(), %reason, "Okta refused the refresh; ending the session");
                        let _ = self.store.remove(id).await;
                        return Err(reason);
                    }
                    Err(RefreshError::Transient(reason)) => {
                        tracing::warn!(user = %session.identity().login(), %reason, "refresh failed; keeping the session and retrying later");
                        // Counted from Okta's answer, not the request's start:
                        // a slow failure must not shorten the pause.
                        renewed.set_refresh_not_before(
                            crate::clock::now().max(now) + TRANSIENT_REFRESH_PAUSE,
                        );
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
                    tracing::warn!(user = %before.identity().login(), error = %e, "could not save the refreshed session; retrying");
                    let pause = 250 * u64::from(attempt);
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
                Err(e) => tracing::error!(
                    user = %before.identity().login(),
                    error = %e,
                    rotated_refresh_token = fresh_token_rotated(before, renewed),
                    "could not save the refreshed session: the next check refreshes again and, if Okta rotated the refresh token, may end the session"
                ),
            }
        }
        Ok(())
    }
}

/// Whether a refresh left the session with another refresh token than it had.
fn fresh_token_rotated(before: &Session, after: &Session) -> bool {
    match (before.refresh_token(), after.refresh_token()) {
        (Some(a), Some(b)) => a.expose() != b.expose(),
        (None, Some(_)) => true,
        _ => false,
    }
}
