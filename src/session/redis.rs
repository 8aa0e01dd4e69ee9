//! The Redis-backed [`SessionStore`] (`SESSION_STORE=redis://…`/`rediss://…`):
//! replicas share sessions, so a sign-out on one is a sign-out on all. Keys:
//! `fa:s:<id>` (session JSON), the sets `fa:u:<sub>`, `fa:i:<sid>` and
//! `fa:m:<email>` of a user's, an IdP session's and an email's session keys,
//! `fa:j:<jti>` (one-time tokens seen) and `fa:st:<state>` (used sign-in
//! states). Checks read a local copy first (`local`), dropped when a change is
//! announced (`pubsub`). Errors must never name a key (keys hold session ids
//! and states, which are credentials) or the URL (it may hold a password).

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use redis::RedisError;

use super::local::{LocalSessions, LOCAL_TTL};
use super::{
    ending_matches, Ending, Session, SessionId, SessionStore, StoreError, ONE_TIME_TTL, PENDING_TTL,
};
use crate::clock::now;
use crate::metrics;
use crate::pubsub::{self, Listener};
use crate::redis_connection::{self, describe, eval, query_idempotent};

/// Saves a session, adds its key to the user's set (and to its IdP session's
/// set, when the third key is given) and keeps those sets alive as long as the
/// longest of their sessions, in one atomic step. A script rather than MULTI
/// because `EXPIRE … GT` needs Redis 7 and a set may have no TTL yet.
const SAVE: &str = r"
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('PUBLISH', 'fa:invalidate', ARGV[3] .. ' ' .. KEYS[1])
for i = 2, #KEYS do
  redis.call('SADD', KEYS[i], KEYS[1])
  if redis.call('TTL', KEYS[i]) < tonumber(ARGV[2]) then
    redis.call('EXPIRE', KEYS[i], ARGV[2])
  end
end
return 1
";

/// Ends the sessions in a set (a user's, an IdP session's or an email's) whose
/// user is `ARGV[1]` (any when empty) and that began at or before `ARGV[4]`
/// (any time when empty), tells every replica, and drops them and the gone
/// ones from the set; returns the ended sessions' JSON. With a second key,
/// first records that one-time token for `ARGV[3]` seconds, and ends nothing
/// (returns -1) if it was recorded before. Atomic: a sign-in cannot slip between read and delete, and a token
/// is never used up without its sessions ending.
const END_SESSIONS: &str = r"
if #KEYS > 1 and not redis.call('SET', KEYS[2], 1, 'NX', 'EX', ARGV[3]) then
  return -1
end
local ended = {}
for _, key in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local json = redis.call('GET', key)
  if not json then
    redis.call('SREM', KEYS[1], key)
  else
    local ends = true
    if ARGV[1] ~= '' or ARGV[4] ~= '' then
      local session = cjson.decode(json)
      ends = (ARGV[1] == '' or session.sub == ARGV[1])
        and (ARGV[4] == '' or tonumber(session.created_at) <= tonumber(ARGV[4]))
    end
    if ends then
      redis.call('DEL', key)
      redis.call('SREM', KEYS[1], key)
      redis.call('PUBLISH', 'fa:invalidate', ARGV[2] .. ' ' .. key)
      ended[#ended + 1] = json
    end
  end
end
return ended
";

/// Replaces a session that still exists (SET … XX keeps its place in the
/// user's and the IdP session's sets) and tells every replica; 0 if it was gone.
const UPDATE: &str = r"
if not redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2], 'XX') then
  return 0
end
redis.call('PUBLISH', 'fa:invalidate', ARGV[3] .. ' ' .. KEYS[1])
return 1
";

/// Ends one session and tells every replica.
const REMOVE: &str = r"
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', 'fa:invalidate', ARGV[1] .. ' ' .. KEYS[1])
return 1
";

/// The channel every change to a session is published on; the message is the
/// publishing store's origin tag, a space and the session's key.
const INVALIDATIONS: &str = "fa:invalidate";

/// Sessions in Redis, shared by every replica that points at it, with a
/// short-lived local copy of each session, kept honest by invalidation
/// messages on the Redis channel `fa:invalidate`.
#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
    local: Arc<LocalSessions>,
    /// Tags this store's own messages, which it ignores: it drops its copies
    /// itself, before and after each change (see [`RedisStore::changed`]).
    origin: Arc<str>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisStore")
    }
}

impl RedisStore {
    /// When the prefixed cookie names were first used with this Redis (epoch
    /// seconds): recorded once by the first replica that asks, then read by
    /// every later start, so restarts do not extend the cookie migration.
    pub async fn first_prefixed_start(&self, now: u64) -> Result<u64, StoreError> {
        let value: String = eval(
            "redis.call('SET', KEYS[1], ARGV[1], 'NX') return redis.call('GET', KEYS[1])",
            &[COOKIE_MIGRATION_KEY],
        )
        .arg(now)
        .query_async(&mut self.connection())
        .await
        .map_err(|e| fail("cookie migration start", &e))?;
        value.parse().map_err(|_| corrupt("cookie migration start"))
    }

    /// Prepares the store without connecting: the first command connects, and a
    /// Redis that is down now only makes `ping` (and `/readyz`) fail until it is
    /// back. Fails only for a URL the client cannot use. Needs a Tokio runtime.
    pub fn new(url: &str) -> Result<RedisStore, StoreError> {
        RedisStore::with_local_ttl(url, LOCAL_TTL)
    }

    /// Like [`new`](Self::new) with local copies kept for `ttl` instead of
    /// [`LOCAL_TTL`]. For tests: with a long `ttl` only the invalidation
    /// channel can end a copy.
    pub fn with_local_ttl(url: &str, ttl: Duration) -> Result<RedisStore, StoreError> {
        let client = redis_connection::client(url)
            .map_err(|e| StoreError(format!("SESSION_STORE is {e}")))?;
        let connection =
            redis_connection::manage(client.clone()).map_err(|e| StoreError(e.to_string()))?;
        let local = Arc::new(LocalSessions::with_ttl(ttl));
        let origin: Arc<str> = crate::random::random_token().into();
        // Without a runtime (never in the service) nothing listens, so nothing
        // is ever cached locally: correct, only slower.
        pubsub::listen(
            client,
            INVALIDATIONS,
            origin.clone(),
            Arc::downgrade(&local),
        );
        Ok(RedisStore {
            connection,
            local,
            origin,
        })
    }

    /// Whether invalidations are received (and so local copies are used).
    pub fn invalidations_live(&self) -> bool {
        self.local.is_live()
    }

    /// Runs a change to sessions in Redis, dropping this replica's matching
    /// copies before it (so they stop answering at once) and after it (so a
    /// copy read while the change was under way is not kept). Other replicas
    /// learn of it from the message the change's script publishes.
    async fn changed<T>(
        &self,
        drop_copies: impl Fn(&LocalSessions),
        change: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        drop_copies(&self.local);
        let result = change.await;
        drop_copies(&self.local);
        result
    }

    /// Ends the sessions `ending` names (after recording `token_id`, when
    /// given) and drops this replica's copies of them: the ended sessions'
    /// JSON, or `None` (only with a token) when the token was recorded before
    /// and nothing ended. `operation` names the step in errors. The one
    /// implementation behind every way of ending sessions.
    async fn end_sessions(
        &self,
        ending: Ending<'_>,
        token_id: Option<&str>,
        operation: &str,
    ) -> Result<Option<Vec<Vec<u8>>>, StoreError> {
        let (set, sub, before) = match ending {
            // A user's set holds only that user's sessions.
            Ending::User { sub } => (user_key(sub), "", None),
            Ending::IdpSession { sub, sid } => (sid_key(sid), sub.unwrap_or(""), None),
            Ending::UserBefore { sub, before } => (user_key(sub), "", Some(before)),
            Ending::Email { email } => (email_key(email), "", None),
        };
        let token_key = token_id.map(used_token_key);
        let mut command = match &token_key {
            Some(token_key) => eval(END_SESSIONS, &[&set, token_key]),
            None => eval(END_SESSIONS, &[&set]),
        };
        command
            .arg(sub)
            .arg(&*self.origin)
            .arg(ONE_TIME_TTL.as_secs())
            .arg(before.map(|b| b.to_string()).unwrap_or_default());
        self.changed(
            |local| local.invalidate_where(ending_matches(ending)),
            async {
                let answer: redis::Value = if token_id.is_some() {
                    // Not retried: a second run would find its own token and
                    // say "replay".
                    let answer = command.query_async(&mut self.connection()).await;
                    metrics::observed::redis(answer.is_ok());
                    answer
                } else {
                    query_idempotent(&self.connection, &command).await
                }
                .map_err(|e| fail(operation, &e))?;
                match answer {
                    // The script answers -1 only for a token seen before.
                    redis::Value::Int(_) => Ok(None),
                    ended => redis::from_redis_value(ended)
                        .map(Some)
                        .map_err(|_| corrupt("answer to ending sessions")),
                }
            },
        )
        .await
    }

    fn connection(&self) -> ConnectionManager {
        // A handle on the one multiplexed connection; cloning is an Arc bump.
        self.connection.clone()
    }
}

const SESSION_PREFIX: &str = "fa:s:";

fn session_key(id: &SessionId) -> String {
    format!("{SESSION_PREFIX}{}", id.to_key())
}

fn user_key(sub: &str) -> String {
    format!("fa:u:{sub}")
}

fn used_state_key(state: &str) -> String {
    format!("fa:st:{state}")
}

fn sid_key(sid: &str) -> String {
    format!("fa:i:{sid}")
}

/// The email index's key: Okta compares emails without case.
fn email_key(email: &str) -> String {
    format!("fa:m:{}", email.to_ascii_lowercase())
}

fn used_token_key(token_id: &str) -> String {
    format!("fa:j:{token_id}")
}

fn fail(operation: &str, e: &RedisError) -> StoreError {
    StoreError(format!("Redis {operation} failed: {}", describe(e)))
}

fn corrupt(what: &str) -> StoreError {
    StoreError(format!("a stored {what} could not be read"))
}

/// The sessions that ended. One that cannot be read still ended; it just has
/// no refresh token to revoke.
fn sessions(ended: Vec<Vec<u8>>) -> Vec<Session> {
    ended
        .iter()
        .filter_map(|json| serde_json::from_slice(json).ok())
        .collect()
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn load(&self, id: &SessionId) -> Result<Option<Arc<Session>>, StoreError> {
        if let Some(session) = self.load_held(id, now()) {
            return Ok(Some(session));
        }
        metrics::SESSION_READS_REDIS.inc();
        let generation = self.local.generation();
        let read_at = Instant::now();
        let bytes: Option<Vec<u8>> =
            query_idempotent(&self.connection, redis::cmd("GET").arg(session_key(id)))
                .await
                .map_err(|e| fail("GET session", &e))?;
        let Some(bytes) = bytes else {
            return Ok(None);
        };
        let session: Session = serde_json::from_slice(&bytes).map_err(|_| corrupt("session"))?;
        // Redis expires in whole seconds; the session's own clock decides.
        if session.is_expired(now()) {
            return Ok(None);
        }
        let session = Arc::new(session);
        self.local.insert(id, session.clone(), generation, read_at);
        Ok(Some(session))
    }

    /// The live local copy (its own clock decides its expiry).
    fn load_held(&self, id: &SessionId, _now: u64) -> Option<Arc<Session>> {
        let session = self.local.get(id)?;
        metrics::SESSION_READS_LOCAL.inc();
        Some(session)
    }

    async fn save(&self, id: &SessionId, session: &Session) -> Result<(), StoreError> {
        let seconds = session.remaining(now()).as_secs();
        if seconds == 0 {
            return self.remove(id).await;
        }
        let json = serde_json::to_vec(session).map_err(|_| corrupt("session"))?;
        let mut keys = vec![session_key(id), user_key(session.identity().sub())];
        keys.extend(session.identity().sid().map(sid_key));
        if !session.identity().email().is_empty() {
            keys.push(email_key(session.identity().email()));
        }
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let mut command = eval(SAVE, &keys);
        command.arg(json).arg(seconds).arg(&*self.origin);
        self.changed(|local| local.invalidate(id), async {
            query_idempotent::<()>(&self.connection, &command)
                .await
                .map_err(|e| fail("save session", &e))
        })
        .await
    }

    async fn update(&self, id: &SessionId, session: &Session) -> Result<bool, StoreError> {
        let seconds = session.remaining(now()).as_secs();
        if seconds == 0 {
            self.remove(id).await?;
            return Ok(false);
        }
        let json = serde_json::to_vec(session).map_err(|_| corrupt("session"))?;
        let mut command = eval(UPDATE, &[&session_key(id)]);
        command.arg(json).arg(seconds).arg(&*self.origin);
        self.changed(|local| local.invalidate(id), async {
            query_idempotent::<u8>(&self.connection, &command)
                .await
                .map(|replaced| replaced == 1)
                .map_err(|e| fail("update session", &e))
        })
        .await
    }

    async fn remove(&self, id: &SessionId) -> Result<(), StoreError> {
        // The key stays in the user's set until the set expires; `remove_user`
        // counts only keys that still exist.
        let mut command = eval(REMOVE, &[&session_key(id)]);
        command.arg(&*self.origin);
        self.changed(|local| local.invalidate(id), async {
            query_idempotent::<()>(&self.connection, &command)
                .await
                .map_err(|e| fail("remove session", &e))
        })
        .await
    }

    async fn remove_user(&self, sub: &str) -> Result<usize, StoreError> {
        let ending = Ending::User { sub };
        let ended = self.end_sessions(ending, None, "remove user sessions");
        Ok(ended.await?.unwrap_or_default().len())
    }

    async fn remove_sid(&self, sub: Option<&str>, sid: &str) -> Result<usize, StoreError> {
        let ending = Ending::IdpSession { sub, sid };
        let ended = self.end_sessions(ending, None, "remove IdP session");
        Ok(ended.await?.unwrap_or_default().len())
    }

    async fn end(&self, ending: Ending<'_>) -> Result<usize, StoreError> {
        let ended = self.end_sessions(ending, None, "end sessions");
        Ok(ended.await?.unwrap_or_default().len())
    }

    /// Counts every session the script ended, readable or not (the provided
    /// method would count only those that parse).
    async fn end_once(
        &self,
        token_id: &str,
        ending: Ending<'_>,
    ) -> Result<Option<usize>, StoreError> {
        let ended = self
            .end_sessions(ending, Some(token_id), "end sessions for a one-time token")
            .await?;
        Ok(ended.map(|sessions| sessions.len()))
    }

    async fn end_once_taking(
        &self,
        token_id: &str,
        ending: Ending<'_>,
    ) -> Result<Option<Vec<Session>>, StoreError> {
        let ended = self
            .end_sessions(ending, Some(token_id), "end sessions for a one-time token")
            .await?;
        Ok(ended.map(sessions))
    }

    async fn use_state(&self, state: &str) -> Result<bool, StoreError> {
        // SET NX: of two callbacks racing with one state, only one sets it.
        let set: Option<String> = redis::cmd("SET")
            .arg(used_state_key(state))
            .arg(1)
            .arg("NX")
            .arg("EX")
            .arg(PENDING_TTL.as_secs())
            .query_async(&mut self.connection())
            .await
            .inspect(|_| metrics::observed::redis(true))
            .inspect_err(|_| metrics::observed::redis(false))
            .map_err(|e| fail("SET NX used sign-in state", &e))?;
        Ok(set.is_some())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        query_idempotent::<()>(&self.connection, &redis::cmd("PING"))
            .await
            .map_err(|e| fail("PING", &e))
    }
}

/// When the prefixed cookie names were first used (`first_prefixed_start`).
const COOKIE_MIGRATION_KEY: &str = "fa:cookie-prefix-since";

/// The session copies hear every change another replica makes: the message
/// is the changed session's key. While the channel is down nothing is copied,
/// so every check asks Redis.
#[async_trait]
impl Listener for LocalSessions {
    const NAME: &'static str = "session store";

    fn up(&self) {
        self.set_live(true);
        tracing::info!("session store: receiving invalidations; local copies on");
    }

    fn down(&self) {
        self.set_live(false);
        tracing::warn!(
            "session store: lost the invalidation channel; every check asks Redis until it is back"
        );
    }

    async fn message(&self, key: &[u8]) {
        match key
            .strip_prefix(SESSION_PREFIX.as_bytes())
            .and_then(SessionId::from_key)
        {
            Some(id) => self.invalidate(&id),
            None => self.unreadable(),
        }
    }

    fn unreadable(&self) {
        // Drops every copy and stays live.
        self.set_live(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_store_is_made_without_reaching_redis() {
        // Nothing listens on port 1: creation must not connect, and a ping
        // reports the failure without naming the URL's password.
        let store = RedisStore::new("redis://:hunter2@127.0.0.1:1/0").expect("lazy");
        let e = store.ping().await.expect_err("nothing listens there");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(
            RedisStore::new("rediss://127.0.0.1:1/0").is_ok(),
            "TLS URLs are accepted"
        );
    }
}
