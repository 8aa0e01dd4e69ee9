//! Applies accepted Okta events in the background, so a delivery is answered
//! at once however many events it holds and however slow Redis is. Effects
//! are idempotent and commute, so events may be applied concurrently and a
//! repeat or a late one cannot undo a newer change: a membership change only
//! makes the next check fetch the groups afresh from Okta (which knows the
//! current truth, whatever the order of the events), and a session-ending
//! event ends only sessions begun before it. A failure is retried with
//! back-off, then logged and counted; never dropped silently.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Semaphore};

use super::{Effect, Event, Ledger};
use crate::groups::GroupsCache;
use crate::metrics::OKTA_EVENTS;
use crate::session::{Ending, SessionStore};

/// Events applied at once.
pub const CONCURRENCY: usize = 32;
/// Tries per event; the waits between them double from [`FIRST_WAIT`].
pub const ATTEMPTS: u32 = 5;
pub const FIRST_WAIT: Duration = Duration::from_millis(500);

/// What applying needs.
pub struct Applier {
    store: Arc<dyn SessionStore>,
    groups: Option<GroupsCache>,
    ledger: Ledger,
}

impl Applier {
    pub fn new(store: Arc<dyn SessionStore>, groups: Option<GroupsCache>, ledger: Ledger) -> Self {
        Applier {
            store,
            groups,
            ledger,
        }
    }

    /// Applies one event (claimed in the ledger first), retrying failures.
    pub async fn handle(&self, event: &Event, received: u64) {
        let kind = event.event_type.as_str();
        let Some((effect, user)) = &event.action else {
            OKTA_EVENTS.inc(kind, "ignored");
            return;
        };
        let mut wait = FIRST_WAIT;
        let mut last_error = String::new();
        for attempt in 1..=ATTEMPTS {
            if attempt > 1 {
                OKTA_EVENTS.inc(kind, "retried");
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            let claimed = match self.ledger.claim(&event.uuid).await {
                Ok(false) => {
                    OKTA_EVENTS.inc(kind, "duplicate");
                    tracing::debug!(event = kind, uuid = %event.uuid, "Okta event seen before; skipped");
                    return;
                }
                Ok(true) => true,
                // Without the record, apply anyway: applying twice is harmless.
                Err(e) => {
                    tracing::warn!(error = %e, "Okta event record unavailable; applying without de-duplication");
                    false
                }
            };
            match self.apply(*effect, user, event, received).await {
                Ok(ended) => {
                    OKTA_EVENTS.inc(kind, "applied");
                    tracing::info!(event = kind, user = %user, sessions_ended = ended, "Okta event applied");
                    if ended > 0 {
                        crate::audit::ended_by_okta("event_hook", &user.to_string(), ended, kind);
                    }
                    return;
                }
                Err(e) => {
                    if claimed {
                        self.ledger.release(&event.uuid).await;
                    }
                    tracing::warn!(event = kind, user = %user, attempt, error = %e, "could not apply an Okta event; retrying");
                    last_error = e;
                }
            }
        }
        OKTA_EVENTS.inc(kind, "failed");
        tracing::error!(event = kind, user = %user, uuid = %event.uuid, error = %last_error, "gave up applying an Okta event: the user's access ends only by GROUPS_CACHE_TTL or their session's end");
    }

    /// The event's effect; how many sessions ended.
    async fn apply(
        &self,
        effect: Effect,
        user: &str,
        event: &Event,
        received: u64,
    ) -> Result<usize, String> {
        match effect {
            Effect::RefreshGroups => match &self.groups {
                Some(groups) => groups
                    .invalidate(user)
                    .await
                    .map(|()| 0)
                    .map_err(|e| e.to_string()),
                // IDP_PROVIDER=oidc: groups come with the ID token at refresh.
                None => Ok(0),
            },
            Effect::EndSessions => self
                .store
                .end(Ending::UserBefore {
                    sub: user,
                    before: event.ends_sessions_before(received),
                })
                .await
                .map_err(|e| e.to_string()),
        }
    }
}

/// Takes events off the queue and applies up to [`CONCURRENCY`] at once,
/// until every sender is gone.
pub async fn run(mut queue: mpsc::Receiver<(Event, u64)>, applier: Arc<Applier>) {
    let limit = Arc::new(Semaphore::new(CONCURRENCY));
    while let Some((event, received)) = queue.recv().await {
        let Ok(permit) = limit.clone().acquire_owned().await else {
            return;
        };
        let applier = applier.clone();
        tokio::spawn(async move {
            applier.handle(&event, received).await;
            drop(permit);
        });
    }
}
