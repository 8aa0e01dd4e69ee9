//! The one Redis pub/sub subscriber, for every local copy that must hear when
//! another replica changes what it copied (sessions, groups): connect with a
//! timeout, subscribe, read messages, reconnect with a short back-off, split
//! each `origin payload` message and skip this replica's own. It tells its
//! [`Listener`] when the channel comes up or goes down; what a message means,
//! and what a copy may do while the channel is down, is the listener's
//! business, not this module's. It never logs a message's payload.

use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use redis::Client;

use crate::redis_connection::describe;

/// How long connecting and subscribing may take before trying again.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(2);
/// The first wait before a new attempt; doubled after each failure…
const FIRST_RETRY: Duration = Duration::from_millis(100);
/// …up to this.
const MAX_RETRY: Duration = Duration::from_secs(1);
/// How often a quiet subscription looks whether its listener is gone.
const LOOK_FOR_OWNER: Duration = Duration::from_secs(5);

/// A local copy kept honest by one channel's messages.
#[async_trait]
pub(crate) trait Listener: Send + Sync + 'static {
    /// Names the listener in logs (`"groups"`, `"session store"`).
    const NAME: &'static str;
    /// The channel is subscribed (first time or again): messages may have
    /// been missed before, so nothing copied earlier may be trusted.
    fn up(&self);
    /// The subscription was lost; messages are missed until [`up`](Self::up).
    fn down(&self);
    /// Another replica's message: the text after the sender's origin tag.
    async fn message(&self, payload: &[u8]);
    /// A message that cannot be read: forget everything rather than guess.
    fn unreadable(&self);
}

/// Subscribes `listener` to `channel` for as long as it lives, skipping the
/// messages tagged `origin` (this replica's own). Needs a Tokio runtime;
/// without one (never in the service) nothing listens, and the listener
/// never hears [`Listener::up`].
pub(crate) fn listen<L: Listener>(
    client: Client,
    channel: &'static str,
    origin: Arc<str>,
    listener: Weak<L>,
) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(keep_subscribed(client, channel, origin, listener));
    }
}

/// Subscribes, reads until the subscription drops, and subscribes again,
/// until the listener is dropped.
async fn keep_subscribed<L: Listener>(
    client: Client,
    channel: &'static str,
    origin: Arc<str>,
    listener: Weak<L>,
) {
    let mut delay = FIRST_RETRY;
    let mut was_up = true;
    loop {
        let subscribed = tokio::time::timeout(SUBSCRIBE_TIMEOUT, async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        })
        .await;
        match subscribed {
            Ok(Ok(pubsub)) => {
                let Some(strong) = listener.upgrade() else {
                    return;
                };
                strong.up();
                drop(strong);
                delay = FIRST_RETRY;
                was_up = true;
                let mut messages = pubsub.into_on_message();
                loop {
                    let message = tokio::select! {
                        message = messages.next() => message,
                        // Wake up now and then to notice a dropped listener.
                        () = tokio::time::sleep(LOOK_FOR_OWNER) => {
                            if listener.strong_count() == 0 { return; }
                            continue;
                        }
                    };
                    let Some(strong) = listener.upgrade() else {
                        return;
                    };
                    let Some(message) = message else {
                        strong.down();
                        break;
                    };
                    match split_message(message.get_payload_bytes()) {
                        Some((sender, _)) if sender == origin.as_bytes() => {}
                        Some((_, payload)) => strong.message(payload).await,
                        None => strong.unreadable(),
                    }
                }
            }
            Ok(Err(e)) if was_up => {
                tracing::warn!(error = %describe(&e), "{}: no invalidation channel yet; retrying", L::NAME);
                was_up = false;
            }
            Err(_) if was_up => {
                tracing::warn!(
                    "{}: subscribing to invalidations timed out; retrying",
                    L::NAME
                );
                was_up = false;
            }
            _ => {}
        }
        if listener.strong_count() == 0 {
            return;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(MAX_RETRY);
    }
}

/// `origin payload` → (origin, payload), split at the first space; the origin
/// is never empty (every sender has one).
fn split_message(message: &[u8]) -> Option<(&[u8], &[u8])> {
    let space = message.iter().position(|b| *b == b' ')?;
    let (origin, payload) = (&message[..space], &message[space + 1..]);
    (!origin.is_empty()).then_some((origin, payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_splits_at_its_first_space_after_a_named_sender() {
        assert_eq!(
            split_message(b"abc 00ualice"),
            Some((&b"abc"[..], &b"00ualice"[..]))
        );
        assert_eq!(
            split_message(b"abc fa:s:a b"),
            Some((&b"abc"[..], &b"fa:s:a b"[..]))
        );
        assert_eq!(split_message(b"abc "), Some((&b"abc"[..], &b""[..])));
        assert_eq!(split_message(b"abc"), None);
        assert_eq!(split_message(b" 00ualice"), None);
    }
}
