//! Which Okta events were applied already (by `uuid`), so that a delivery
//! Okta sends twice is applied once. A bounded local memory answers most
//! repeats; with `SESSION_STORE=redis://…` every replica shares the record in
//! Redis (`fa:e:<uuid>`, kept for [`REMEMBER`]). A record is taken before the
//! event is applied and given back if applying fails, so a failure never
//! leaves an event marked done.

use std::time::Duration;

use moka::future::Cache;
use redis::aio::ConnectionManager;

use crate::redis_connection::{self, describe, query_idempotent};

/// How long an applied event is remembered. Okta retries within minutes; a
/// repeat after this is applied again, which is harmless (see `worker`).
pub const REMEMBER: Duration = Duration::from_secs(24 * 3600);
/// Events remembered locally at most; the oldest go first.
const LOCAL_CAPACITY: u64 = 100_000;

/// The record of applied events.
pub struct Ledger {
    local: Cache<String, ()>,
    redis: Option<ConnectionManager>,
}

impl Ledger {
    /// A record of this process alone.
    pub fn in_memory() -> Ledger {
        Ledger {
            local: Cache::builder()
                .max_capacity(LOCAL_CAPACITY)
                .time_to_live(REMEMBER)
                .build(),
            redis: None,
        }
    }

    /// A record shared through the Redis at `url` (connected lazily).
    pub fn with_redis(url: &str) -> Result<Ledger, String> {
        let mut ledger = Ledger::in_memory();
        ledger.redis = Some(redis_connection::manage(redis_connection::client(url)?)?);
        Ok(ledger)
    }

    /// `Ok(true)` for the first caller to claim `uuid`, on any replica;
    /// `Ok(false)` for a repeat. `Err` when Redis cannot answer.
    pub async fn claim(&self, uuid: &str) -> Result<bool, String> {
        if self.local.contains_key(uuid) {
            return Ok(false);
        }
        if let Some(redis) = &self.redis {
            let set: Option<String> = query_idempotent(
                redis,
                redis::cmd("SET")
                    .arg(key(uuid))
                    .arg(1)
                    .arg("NX")
                    .arg("EX")
                    .arg(REMEMBER.as_secs()),
            )
            .await
            .map_err(|e| format!("Redis SET event record failed: {}", describe(&e)))?;
            if set.is_none() {
                self.local.insert(uuid.to_owned(), ()).await;
                return Ok(false);
            }
        }
        // `or_insert` is atomic: of two racing claims in this process, one wins.
        Ok(self.local.entry_by_ref(uuid).or_insert(()).await.is_fresh())
    }

    /// Gives a claim back after applying failed, so a retry can apply it.
    pub async fn release(&self, uuid: &str) {
        self.local.invalidate(uuid).await;
        if let Some(redis) = &self.redis {
            if let Err(e) = query_idempotent::<()>(redis, redis::cmd("DEL").arg(key(uuid))).await {
                tracing::warn!(error = %describe(&e), "could not release an Okta event record; a redelivery of it will be taken for a repeat");
            }
        }
    }
}

fn key(uuid: &str) -> String {
    format!("fa:e:{uuid}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_event_is_claimed_once_until_released() {
        let ledger = Ledger::in_memory();
        assert_eq!(ledger.claim("u-1").await, Ok(true));
        assert_eq!(ledger.claim("u-1").await, Ok(false));
        assert_eq!(ledger.claim("u-2").await, Ok(true));
        ledger.release("u-1").await;
        assert_eq!(ledger.claim("u-1").await, Ok(true));
    }
}
