//! Okta Event Hooks (`/oauth2/okta/events`): reading a delivery, deciding
//! what each event means for us, and handing it to a background worker that
//! applies it. A delivery is checked whole before anything is accepted: a bad
//! one changes nothing. The shared secret is compared in constant time. What
//! is applied and how duplicates and late events are kept harmless lives in
//! [`worker`] and [`ledger`]. No actix types.

use std::sync::Arc;
use std::time::UNIX_EPOCH;

use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::clock::now;
use crate::groups::GroupsCache;
use crate::secret::Secret;
use crate::session::SessionStore;

pub mod ledger;
pub mod worker;

pub use ledger::Ledger;

/// Largest delivery body read; Okta batches up to a few hundred events of a
/// few kilobytes each.
pub const MAX_BODY: usize = 1024 * 1024;
/// Events accepted but not yet applied, at most. A delivery that does not fit
/// whole is refused with a 503, which Okta retries once.
pub const QUEUE: usize = 10_000;
/// Clock difference allowed between Okta's `published` and our session times.
pub const CLOCK_SLACK: u64 = 60;
/// Longest `uuid` taken (Okta's are 36 characters).
const MAX_UUID: usize = 128;

/// What an event asks of us.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// The user's groups changed: fetch them afresh at the next check.
    RefreshGroups,
    /// The user's access ended: end their sessions that began before the event.
    EndSessions,
}

/// One event of a delivery, as far as we act on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Okta's `uuid`, the key for de-duplication.
    pub uuid: String,
    pub event_type: String,
    /// `published`, seconds since the epoch (0 for events we ignore).
    pub published: u64,
    /// `None`: a type we do not act on, or not about our app.
    pub action: Option<(Effect, String)>,
}

impl Event {
    /// For [`Effect::EndSessions`]: sessions that began at or before this end.
    /// An event delivered late never ends a session begun well after it (the
    /// user signed in again after being reactivated); [`CLOCK_SLACK`] covers
    /// clock differences and sign-ins finishing while Okta was publishing.
    pub fn ends_sessions_before(&self, received: u64) -> u64 {
        self.published.min(received) + CLOCK_SLACK
    }
}

/// The effect of an event type, when we act on it.
fn effect_of(event_type: &str) -> Option<Effect> {
    match event_type {
        "group.user_membership.add" | "group.user_membership.remove" => Some(Effect::RefreshGroups),
        "user.lifecycle.deactivate"
        | "user.lifecycle.suspend"
        | "user.lifecycle.delete.initiated"
        | "user.session.clear"
        | "user.session.end"
        | "application.user_membership.remove" => Some(Effect::EndSessions),
        _ => None,
    }
}

/// Reads a delivery body (`{"data":{"events":[…]}}`) into events sorted by
/// `published`. Any event we act on that lacks what it needs (`uuid`,
/// `published`, a `User` target) refuses the whole delivery, so nothing of a
/// bad delivery is applied. Types we do not act on, and app-membership
/// removals from other apps, come back with no action. The error names the
/// problem and the event's index, never a value from the body.
pub fn parse_delivery(body: &[u8], client_id: &str) -> Result<Vec<Event>, String> {
    let json: Value =
        serde_json::from_slice(body).map_err(|_| "the body is not JSON".to_owned())?;
    let events = json
        .get("data")
        .and_then(|data| data.get("events"))
        .and_then(Value::as_array)
        .ok_or("the body has no data.events array")?;
    let mut parsed = events
        .iter()
        .enumerate()
        .map(|(i, event)| parse_event(event, client_id).map_err(|e| format!("event {i}: {e}")))
        .collect::<Result<Vec<Event>, String>>()?;
    parsed.sort_by_key(|event| event.published);
    Ok(parsed)
}

fn parse_event(event: &Value, client_id: &str) -> Result<Event, String> {
    let event_type = event
        .get("eventType")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty() && t.len() <= 200)
        .ok_or("eventType is missing")?;
    let uuid = event
        .get("uuid")
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty() && u.len() <= MAX_UUID)
        .ok_or("uuid is missing or too long")?;
    let known = effect_of(event_type);
    let targets = event.get("target").and_then(Value::as_array);
    let about_us = event_type != "application.user_membership.remove"
        || targets.is_some_and(|targets| {
            targets.iter().any(|t| {
                t.get("type").and_then(Value::as_str) == Some("AppInstance")
                    && t.get("id").and_then(Value::as_str) == Some(client_id)
            })
        });
    let (Some(effect), true) = (known, about_us) else {
        return Ok(Event {
            uuid: uuid.to_owned(),
            event_type: event_type.to_owned(),
            published: 0,
            action: None,
        });
    };
    let published = event
        .get("published")
        .and_then(Value::as_str)
        .and_then(|p| humantime::parse_rfc3339_weak(p).ok())
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .ok_or("published is missing or not an RFC 3339 time")?
        .as_secs();
    let user = targets
        .into_iter()
        .flatten()
        .find(|t| t.get("type").and_then(Value::as_str) == Some("User"))
        .and_then(|t| t.get("id"))
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty() && id.len() <= 200)
        .ok_or("the event has no User target with an id")?;
    Ok(Event {
        uuid: uuid.to_owned(),
        event_type: event_type.to_owned(),
        published,
        action: Some((effect, user.to_owned())),
    })
}

/// The delivery could not be queued whole; nothing of it was queued.
#[derive(Debug, thiserror::Error)]
#[error("the event queue is full")]
pub struct Busy;

/// The event-hook receiver: the secret, and the queue to the worker.
pub struct EventHooks {
    /// SHA-256 of the secret: compared with the header's digest, so the
    /// comparison takes the same time whatever the header holds.
    secret_digest: [u8; 32],
    queue: mpsc::Sender<(Event, u64)>,
    client_id: String,
}

impl EventHooks {
    /// Starts the worker on the current Tokio runtime.
    pub fn start(
        secret: &Secret,
        client_id: &str,
        store: Arc<dyn SessionStore>,
        groups: Option<GroupsCache>,
        ledger: Ledger,
    ) -> EventHooks {
        let (queue, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(worker::run(
            receiver,
            Arc::new(worker::Applier::new(store, groups, ledger)),
        ));
        EventHooks {
            secret_digest: Sha256::digest(secret.expose().as_bytes()).into(),
            queue,
            client_id: client_id.to_owned(),
        }
    }

    /// Whether the `Authorization` header is the configured secret.
    pub fn authorized(&self, header: Option<&[u8]>) -> bool {
        let Some(header) = header else {
            return false;
        };
        let digest: [u8; 32] = Sha256::digest(header).into();
        digest
            .iter()
            .zip(self.secret_digest.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }

    pub fn parse(&self, body: &[u8]) -> Result<Vec<Event>, String> {
        parse_delivery(body, &self.client_id)
    }

    /// Queues a whole delivery for the worker, or nothing of it.
    pub fn accept(&self, events: Vec<Event>) -> Result<(), Busy> {
        if events.is_empty() {
            return Ok(());
        }
        let received = now();
        let permits = self
            .queue
            .try_reserve_many(events.len())
            .map_err(|_| Busy)?;
        for (permit, event) in permits.zip(events) {
            permit.send((event, received));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CLIENT: &str = "0oa-ours";

    fn event(event_type: &str, uuid: &str, published: &str, targets: Value) -> Value {
        json!({ "eventType": event_type, "uuid": uuid, "published": published, "target": targets })
    }

    fn user(id: &str) -> Value {
        json!({ "type": "User", "id": id, "alternateId": "bob@example.com" })
    }

    fn delivery(events: Vec<Value>) -> Vec<u8> {
        json!({ "eventType": "com.okta.event_hook", "eventId": "d-1", "data": { "events": events } })
            .to_string()
            .into_bytes()
    }

    #[test]
    fn membership_and_lifecycle_events_name_the_user_and_come_sorted_by_published() {
        let body = delivery(vec![
            event(
                "user.lifecycle.deactivate",
                "u-2",
                "2024-05-01T12:00:10.000Z",
                json!([user("00ubob")]),
            ),
            event(
                "group.user_membership.remove",
                "u-1",
                "2024-05-01T12:00:00.000Z",
                json!([user("00ubob"), { "type": "UserGroup", "id": "00gstaff", "displayName": "staff" }]),
            ),
        ]);
        let events = parse_delivery(&body, CLIENT).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].uuid, "u-1");
        assert_eq!(
            events[0].action,
            Some((Effect::RefreshGroups, "00ubob".into()))
        );
        assert_eq!(
            events[1].action,
            Some((Effect::EndSessions, "00ubob".into()))
        );
        assert_eq!(events[1].published, events[0].published + 10);
    }

    #[test]
    fn an_app_membership_removal_counts_only_for_our_app() {
        let ours = json!([user("00ubob"), { "type": "AppInstance", "id": CLIENT }]);
        let theirs = json!([user("00ubob"), { "type": "AppInstance", "id": "0oa-other" }]);
        let body = delivery(vec![
            event(
                "application.user_membership.remove",
                "a",
                "2024-05-01T12:00:00Z",
                ours,
            ),
            event(
                "application.user_membership.remove",
                "b",
                "2024-05-01T12:00:00Z",
                theirs,
            ),
        ]);
        let events = parse_delivery(&body, CLIENT).unwrap();
        let action = |uuid: &str| {
            events
                .iter()
                .find(|e| e.uuid == uuid)
                .unwrap()
                .action
                .clone()
        };
        assert_eq!(action("a"), Some((Effect::EndSessions, "00ubob".into())));
        assert_eq!(action("b"), None);
    }

    #[test]
    fn unknown_types_are_read_but_ask_nothing() {
        let body = delivery(vec![
            json!({ "eventType": "user.account.update_profile", "uuid": "x" }),
        ]);
        let events = parse_delivery(&body, CLIENT).unwrap();
        assert_eq!(events[0].action, None);
    }

    #[test]
    fn a_bad_event_refuses_the_whole_delivery() {
        let good = event(
            "user.session.end",
            "g",
            "2024-05-01T12:00:00Z",
            json!([user("00u1")]),
        );
        for bad in [
            event("user.session.end", "b", "2024-05-01T12:00:00Z", json!([])),
            event("user.session.end", "b", "2024-05-01T12:00:00Z", json!(null)),
            event(
                "user.session.end",
                "b",
                "2024-05-01T12:00:00Z",
                json!([{ "type": "User" }]),
            ),
            event("user.session.end", "b", "yesterday", json!([user("00u1")])),
            json!({ "eventType": "user.session.end", "published": "2024-05-01T12:00:00Z", "target": [user("00u1")] }),
            json!({ "uuid": "b" }),
            json!("not an object"),
        ] {
            let result = parse_delivery(&delivery(vec![good.clone(), bad.clone()]), CLIENT);
            assert!(
                result.as_ref().is_err_and(|e| e.starts_with("event 1:")),
                "{bad}: {result:?}"
            );
        }
    }

    #[test]
    fn a_body_without_events_is_refused() {
        for body in [
            &b"not json"[..],
            b"{}",
            br#"{"data":{}}"#,
            br#"{"data":{"events":{}}}"#,
        ] {
            assert!(
                parse_delivery(body, CLIENT).is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert_eq!(parse_delivery(&delivery(vec![]), CLIENT), Ok(vec![]));
    }

    #[test]
    fn a_late_event_ends_only_sessions_begun_before_it_with_some_slack() {
        let event = Event {
            uuid: "u".into(),
            event_type: "user.lifecycle.deactivate".into(),
            published: 1_000,
            action: Some((Effect::EndSessions, "00u1".into())),
        };
        assert_eq!(event.ends_sessions_before(5_000), 1_000 + CLOCK_SLACK);
        // An event stamped ahead of our clock ends nothing begun after its arrival.
        assert_eq!(event.ends_sessions_before(900), 900 + CLOCK_SLACK);
    }

    #[tokio::test]
    async fn only_the_configured_secret_is_authorized() {
        let hooks = EventHooks::start(
            &Secret::new("s3cret-value".into()),
            CLIENT,
            Arc::new(crate::session::MemoryStore::new()),
            None,
            Ledger::in_memory(),
        );
        assert!(hooks.authorized(Some(b"s3cret-value")));
        for wrong in [
            &b""[..],
            b"s3cret-valu",
            b"s3cret-value ",
            b"Bearer s3cret-value",
        ] {
            assert!(!hooks.authorized(Some(wrong)), "{wrong:?}");
        }
        assert!(!hooks.authorized(None));
    }
}
