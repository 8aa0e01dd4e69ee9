//! The one way this service talks to Redis: a lazy, self-reconnecting
//! `ConnectionManager` with short waits, and Redis errors put into words that
//! name neither a key (keys hold session ids and user ids) nor the URL (it may
//! hold a password). Used by the session store, the shared groups layer and
//! `pubsub`. Knows no key, script or channel: those belong to its users.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Cmd, FromRedisValue, RedisError, RedisResult};

/// A client for `url` (nothing connects yet); the error names the problem,
/// not the URL.
pub(crate) fn client(url: &str) -> Result<Client, String> {
    Client::open(url).map_err(|e| format!("not a usable Redis URL ({})", describe(&e)))
}

/// A handle on one multiplexed connection of `client`, made without
/// connecting: the first command connects, and a Redis that is down only makes
/// commands fail (fast) until it is back. The client can also open other
/// connections, e.g. for pub/sub. Needs a Tokio runtime.
pub(crate) fn manage(client: Client) -> Result<ConnectionManager, String> {
    // Callers may be waited on by a check: keep every wait short and retry a
    // reconnect only briefly (later commands start new attempts by themselves).
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_secs(2)))
        .set_number_of_retries(1)
        .set_min_delay(Duration::from_millis(100))
        .set_max_delay(Duration::from_secs(1));
    ConnectionManager::new_lazy_with_config(client, config)
        .map_err(|e| format!("Redis connection set-up failed: {}", describe(&e)))
}

/// `EVAL script` over `keys`, the script's `KEYS`; the caller adds its `ARGV`.
pub(crate) fn eval(script: &str, keys: &[&str]) -> Cmd {
    let mut command = redis::cmd("EVAL");
    command.arg(script).arg(keys.len()).arg(keys);
    command
}

/// What went wrong, without the command's arguments or the URL.
pub(crate) fn describe(e: &RedisError) -> String {
    if e.is_connection_refusal() {
        "connection refused".into()
    } else if e.is_timeout() {
        "timed out".into()
    } else if e.is_connection_dropped() || e.is_io_error() {
        "connection lost".into()
    } else if let Some(code) = e.code() {
        // Server error codes (NOAUTH, WRONGTYPE, NOSCRIPT…) are fixed words.
        format!("server answered {code}")
    } else {
        format!("{:?}", e.kind())
    }
}

/// Runs `command`, and once more if the connection turned out to be dropped:
/// the manager reconnects only when a command meets a dropped connection, so
/// the first command after Redis came back would fail otherwise. Only for
/// commands that may run twice. Not after a timeout: a Redis that does not
/// answer would cost twice.
pub(crate) async fn query_idempotent<T: FromRedisValue>(
    connection: &ConnectionManager,
    command: &Cmd,
) -> RedisResult<T> {
    // A handle on the one multiplexed connection; cloning is an Arc bump.
    let first = command.query_async(&mut connection.clone()).await;
    crate::metrics::observed::redis(first.is_ok());
    match first {
        Err(e) if e.is_connection_dropped() && !e.is_timeout() => {
            let second = command.query_async(&mut connection.clone()).await;
            crate::metrics::observed::redis(second.is_ok());
            second
        }
        other => other,
    }
}
