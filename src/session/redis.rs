//! The Redis-backed [`SessionStore`] (`SESSION_STORE=redis://…` or `rediss://…`),
//! so several replicas share sessions and a sign-out on one is a sign-out on all.
//! Keys: `fa:s:<id>` (session JSON, expires with the session), `fa:u:<sub>` (the
//! set of that user's session keys, for `remove_user`), `fa:i:<sid>` (the same
//! for an IdP session, for back-channel logout), `fa:j:<jti>` (one-time token
//! ids seen) and `fa:p:<state>`
//! (pending sign-in JSON, taken once with GETDEL: Redis ≥ 6.2). One
//! `ConnectionManager` reconnects by itself. Errors never name a key: keys hold
//! session ids and states, which are credentials. No local cache yet (issue 5).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, RedisError};

use super::{
    now, PendingSignIn, Session, SessionId, SessionStore, StoreError, ONE_TIME_TTL, PENDING_TTL,
};

/// Saves a session, adds its key to the user's set (and to its IdP session's
/// set, when the third key is given) and keeps those sets alive as long as the
/// longest of their sessions, in one atomic step. A script rather than MULTI
/// because `EXPIRE … GT` needs Redis 7 and a set may have no TTL yet.
const SAVE: &str = r"
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
for i = 2, #KEYS do
  redis.call('SADD', KEYS[i], KEYS[1])
  if redis.call('TTL', KEYS[i]) < tonumber(ARGV[2]) then
    redis.call('EXPIRE', KEYS[i], ARGV[2])
  end
end
return 1
";

/// Ends every session in a user's set and drops the set; returns how many of
/// them still existed. Atomic, so a sign-in cannot slip between read and delete.
const REMOVE_USER: &str = r"
local ended = 0
for _, key in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  ended = ended + redis.call('DEL', key)
end
redis.call('DEL', KEYS[1])
return ended
";

/// Ends the sessions in an IdP session's set whose user is `ARGV[1]` (any user
/// when empty), and drops them and the gone ones from the set; returns how
/// many ended.
const REMOVE_SID: &str = r"
local ended = 0
for _, key in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local json = redis.call('GET', key)
  if not json then
    redis.call('SREM', KEYS[1], key)
  elseif ARGV[1] == '' or cjson.decode(json).sub == ARGV[1] then
    ended = ended + redis.call('DEL', key)
    redis.call('SREM', KEYS[1], key)
  end
end
return ended
";

/// Sessions in Redis, shared by every replica that points at it.
#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisStore")
    }
}

impl RedisStore {
    /// Prepares the store without connecting: the first command connects, and a
    /// Redis that is down now only makes `ping` (and `/readyz`) fail until it is
    /// back. Fails only for a URL the client cannot use. Needs a Tokio runtime.
    pub fn new(url: &str) -> Result<RedisStore, StoreError> {
        let client = Client::open(url).map_err(|e| {
            // The URL may hold a password: name the problem, not the URL.
            StoreError(format!(
                "SESSION_STORE is not a usable Redis URL ({})",
                describe(&e)
            ))
        })?;
        // A check waits for Redis: keep every wait short, so a dead Redis costs
        // a quick 503 rather than a proxy timeout, and retry reconnects briefly
        // (later commands trigger new attempts by themselves).
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(100))
            .set_max_delay(Duration::from_secs(1));
        let connection = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| fail("connection set-up", &e))?;
        Ok(RedisStore { connection })
    }

    fn connection(&self) -> ConnectionManager {
        // A handle on the one multiplexed connection; cloning is an Arc bump.
        self.connection.clone()
    }
}

fn session_key(id: &SessionId) -> String {
    format!("fa:s:{}", id.to_key())
}

fn user_key(sub: &str) -> String {
    format!("fa:u:{sub}")
}

fn pending_key(state: &str) -> String {
    format!("fa:p:{state}")
}

fn sid_key(sid: &str) -> String {
    format!("fa:i:{sid}")
}

fn used_token_key(token_id: &str) -> String {
    format!("fa:j:{token_id}")
}

/// What went wrong, without the command's arguments or the URL.
fn describe(e: &RedisError) -> String {
    if e.is_connection_refusal() {
        "connection refused".into()
    } else if e.is_timeout() {
        "timed out".into()
    } else if e.is_connection_dropped() || e.is_io_error() {
        "connection lost".into()
    } else if let Some(code) = e.code() {
        // Server error codes (NOAUTH, WRONGTYPE, READONLY…) are fixed words.
        format!("server answered {code}")
    } else {
        format!("{:?}", e.kind())
    }
}

fn fail(operation: &str, e: &RedisError) -> StoreError {
    StoreError(format!("Redis {operation} failed: {}", describe(e)))
}

fn corrupt(what: &str) -> StoreError {
    StoreError(format!("a stored {what} could not be read"))
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn load(&self, id: &SessionId) -> Result<Option<Arc<Session>>, StoreError> {
        let bytes: Option<Vec<u8>> = redis::cmd("GET")
            .arg(session_key(id))
            .query_async(&mut self.connection())
            .await
            .map_err(|e| fail("GET session", &e))?;
        let Some(bytes) = bytes else {
            return Ok(None);
        };
        let session: Session = serde_json::from_slice(&bytes).map_err(|_| corrupt("session"))?;
        // Redis expires in whole seconds; the session's own clock decides.
        Ok((!session.is_expired(now())).then(|| Arc::new(session)))
    }

    async fn save(&self, id: &SessionId, session: &Session) -> Result<(), StoreError> {
        let seconds = session.remaining(now()).as_secs();
        if seconds == 0 {
            return self.remove(id).await;
        }
        let json = serde_json::to_vec(session).map_err(|_| corrupt("session"))?;
        let mut command = redis::cmd("EVAL");
        command.arg(SAVE);
        match &session.sid {
            Some(_) => command.arg(3),
            None => command.arg(2),
        };
        command.arg(session_key(id)).arg(user_key(&session.sub));
        if let Some(sid) = &session.sid {
            command.arg(sid_key(sid));
        }
        command
            .arg(json)
            .arg(seconds)
            .query_async::<()>(&mut self.connection())
            .await
            .map_err(|e| fail("save session", &e))
    }

    async fn remove(&self, id: &SessionId) -> Result<(), StoreError> {
        // The key stays in the user's set until the set expires; `remove_user`
        // counts only keys that still exist.
        redis::cmd("DEL")
            .arg(session_key(id))
            .query_async::<()>(&mut self.connection())
            .await
            .map_err(|e| fail("DEL session", &e))
    }

    async fn remove_user(&self, sub: &str) -> Result<usize, StoreError> {
        redis::cmd("EVAL")
            .arg(REMOVE_USER)
            .arg(1)
            .arg(user_key(sub))
            .query_async(&mut self.connection())
            .await
            .map_err(|e| fail("remove user sessions", &e))
    }

    async fn remove_sid(&self, sub: Option<&str>, sid: &str) -> Result<usize, StoreError> {
        redis::cmd("EVAL")
            .arg(REMOVE_SID)
            .arg(1)
            .arg(sid_key(sid))
            .arg(sub.unwrap_or(""))
            .query_async(&mut self.connection())
            .await
            .map_err(|e| fail("remove IdP session", &e))
    }

    async fn first_use(&self, token_id: &str) -> Result<bool, StoreError> {
        // SET NX answers OK only to the first of any number of racing callers.
        let set: Option<String> = redis::cmd("SET")
            .arg(used_token_key(token_id))
            .arg(1)
            .arg("NX")
            .arg("EX")
            .arg(ONE_TIME_TTL.as_secs())
            .query_async(&mut self.connection())
            .await
            .map_err(|e| fail("SET one-time token", &e))?;
        Ok(set.is_some())
    }

    async fn save_pending(&self, state: &str, pending: &PendingSignIn) -> Result<(), StoreError> {
        let json = serde_json::to_vec(pending).map_err(|_| corrupt("pending sign-in"))?;
        redis::cmd("SET")
            .arg(pending_key(state))
            .arg(json)
            .arg("EX")
            .arg(PENDING_TTL.as_secs())
            .query_async::<()>(&mut self.connection())
            .await
            .map_err(|e| fail("SET pending sign-in", &e))
    }

    async fn take_pending(&self, state: &str) -> Result<Option<PendingSignIn>, StoreError> {
        // GETDEL: of two callbacks racing with one state, only one gets it.
        let bytes: Option<Vec<u8>> = redis::cmd("GETDEL")
            .arg(pending_key(state))
            .query_async(&mut self.connection())
            .await
            .map_err(|e| fail("GETDEL pending sign-in", &e))?;
        bytes
            .map(|b| serde_json::from_slice(&b).map_err(|_| corrupt("pending sign-in")))
            .transpose()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        redis::cmd("PING")
            .query_async::<()>(&mut self.connection())
            .await
            .map_err(|e| fail("PING", &e))
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
