//! What replicas share about Okta groups through Redis (`SESSION_STORE=redis://…`):
//! each user's last answer from Okta with the time it was fetched
//! (`fa:g:<user>`, `"<epoch ms> <json>"`), a per-user fetch lease (`fa:gl:<user>`:
//! a random token while fetching, `!limited` or `!unavailable` for a moment after
//! a failed fetch), and the instant before which no replica calls Okta
//! (`fa:okta:blocked_until`, epoch seconds). Every read-and-write step is one Lua
//! script, so racing replicas cannot interleave. Errors never name a key or the
//! URL. What to do with the answers is `shared`'s and `cache`'s, not this file's.

use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{Client, FromRedisValue};
use serde::{Deserialize, Serialize};

use super::GroupsError;
use crate::policy::Group;
use crate::redis_connection::{client, describe, eval, manage, query_idempotent};

/// Returns the user's entry if it was fetched at or after `ARGV[3]` (epoch ms);
/// else takes the lease for `ARGV[1]` for `ARGV[2]` ms if it is free (or is
/// `ARGV[1]`'s already, so a retried call is harmless) and returns the shared
/// block; else returns who holds the lease. One step, so that a replica cannot
/// miss an entry published between its look and its lease.
const TAKE: &str = r"
local entry = redis.call('GET', KEYS[1])
if entry then
  local at = tonumber(string.match(entry, '^(%d+) '))
  if at and at >= tonumber(ARGV[3]) then return {'entry', entry} end
end
local holder = redis.call('GET', KEYS[2])
if not holder then
  redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
  holder = ARGV[1]
end
if holder == ARGV[1] then
  return {'leased', redis.call('GET', KEYS[3]) or '0'}
end
return {'held', holder}
";

/// Stores an entry if the publisher still holds the lease `ARGV[4]` (an
/// invalidation takes the lease away, so an answer fetched before it is never
/// shared after it) and no newer entry (fetched later) is there already.
const PUBLISH: &str = r"
if redis.call('GET', KEYS[2]) ~= ARGV[4] then return 0 end
local old = redis.call('GET', KEYS[1])
if old then
  local at = tonumber(string.match(old, '^(%d+) '))
  if at and at > tonumber(ARGV[2]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1
";

/// Gives the lease back if `ARGV[1]` still holds it (compare and delete), or
/// leaves the failure marker `ARGV[2]` in its place for `ARGV[3]` ms, so the
/// replicas waiting on it learn the outcome without asking Okta themselves.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return 1
";

/// Raises the shared block to `ARGV[1]` (epoch seconds) unless it is later
/// already; the key expires at that instant. Returns the block in force.
const RAISE_BLOCK: &str = r"
local current = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
local wanted = tonumber(ARGV[1])
if wanted > current then
  redis.call('SET', KEYS[1], ARGV[1], 'EXAT', ARGV[1])
  return wanted
end
return current
";

/// Forgets a user's shared answer and takes the fetch lease away from whoever
/// holds it (a fetch under way started before the change, so its answer must not
/// be published), then tells every replica on `INVALIDATIONS`.
const INVALIDATE: &str = r"
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('PUBLISH', ARGV[1], ARGV[2] .. ' ' .. ARGV[3])
return 1
";

/// The channel on which replicas announce that a user's groups must be fetched
/// afresh; the message is the sender's origin tag, a space and the user id.
pub const INVALIDATIONS: &str = "fa:groups:invalidate";

const BLOCK_KEY: &str = "fa:okta:blocked_until";
const FAILED_LIMITED: &str = "!limited";
const FAILED_UNAVAILABLE: &str = "!unavailable";

/// Redis could not answer (or answered something unreadable).
#[derive(Debug, Clone, thiserror::Error)]
#[error("Redis {0}")]
pub struct SharedError(String);

/// A user's groups as some replica last fetched them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedEntry {
    /// When the replica asked Okta, epoch milliseconds.
    pub fetched_at_ms: u64,
    /// The groups, or Okta's definitive "no": [`GroupsError::UserNotFound`]
    /// (404) or [`GroupsError::UserInactive`] (the user's status).
    pub groups: Result<Vec<Group>, GroupsError>,
}

/// The outcome of [`RedisGroups::take`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Take {
    /// An entry recent enough was there; nobody needs to ask Okta.
    Entry(SharedEntry),
    /// The caller holds the lease now and may ask Okta, unless the shared block
    /// (epoch seconds, 0 if none) says to wait.
    Leased { blocked_until: u64 },
    /// Another replica is asking Okta for this user right now.
    Held,
    /// Another replica's fetch for this user failed a moment ago.
    Failed(GroupsError),
}

/// Exactly one of the three fields: an entry that is none is unreadable, not
/// a user without groups.
#[derive(Serialize, Deserialize)]
struct Body {
    /// `[id, name]` pairs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    groups: Option<Vec<(String, String)>>,
    /// Okta does not know the user.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    gone: bool,
    /// The user's Okta status, which no longer grants access.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    inactive: Option<String>,
}

impl Body {
    fn of(answer: Result<&[Group], &GroupsError>) -> Body {
        let mut body = Body {
            groups: None,
            gone: false,
            inactive: None,
        };
        match answer {
            Ok(list) => {
                body.groups = Some(
                    list.iter()
                        .map(|g| (g.id.clone(), g.name.clone()))
                        .collect(),
                )
            }
            Err(GroupsError::UserInactive(status)) => body.inactive = Some(status.clone()),
            Err(_) => body.gone = true,
        }
        body
    }

    fn answer(self) -> Option<Result<Vec<Group>, GroupsError>> {
        match (self.groups, self.gone, self.inactive) {
            (Some(list), false, None) => Some(Ok(list
                .into_iter()
                .map(|(id, name)| Group { id, name })
                .collect())),
            (None, true, None) => Some(Err(GroupsError::UserNotFound)),
            (None, false, Some(status)) => Some(Err(GroupsError::UserInactive(status))),
            _ => None,
        }
    }
}

/// The shared groups layer in Redis, one multiplexed connection of its own.
#[derive(Clone)]
pub struct RedisGroups {
    connection: ConnectionManager,
    /// For the invalidation subscription, which needs a connection of its own.
    client: Client,
}

impl std::fmt::Debug for RedisGroups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisGroups")
    }
}

fn entry_key(user_id: &str) -> String {
    format!("fa:g:{user_id}")
}

fn lease_key(user_id: &str) -> String {
    format!("fa:gl:{user_id}")
}

fn fail(operation: &str, e: &redis::RedisError) -> SharedError {
    SharedError(format!("{operation} failed: {}", describe(e)))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl RedisGroups {
    /// Prepares the layer without connecting (see
    /// [`RedisStore::new`](crate::session::RedisStore::new)). Fails only for a URL
    /// the client cannot use, with a message that does not repeat the URL.
    pub fn new(url: &str) -> Result<RedisGroups, String> {
        let client = client(url)?;
        Ok(RedisGroups {
            connection: manage(client.clone())?,
            client,
        })
    }

    /// The client, for opening the invalidation subscription.
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// Runs a command; once more if the connection turned out dead, since the
    /// manager only reconnects when a command meets a dropped connection (the
    /// first one after Redis came back would fail otherwise). Every command
    /// here may run twice: the scripts are written for it.
    async fn run<T: FromRedisValue>(
        &self,
        command: &redis::Cmd,
        operation: &str,
    ) -> Result<T, SharedError> {
        query_idempotent(&self.connection, command)
            .await
            .map_err(|e| fail(operation, &e))
    }

    /// The user's entry if it was fetched at or after `counts_from_ms`; else the
    /// lease, taken for `hold` under `token` (a random value only its taker
    /// knows); else who holds it. The lease expires by itself after `hold`, so a
    /// replica that dies while fetching holds nobody up for longer.
    pub async fn take(
        &self,
        user_id: &str,
        token: &str,
        hold: Duration,
        counts_from_ms: u64,
    ) -> Result<Take, SharedError> {
        let (kind, value): (String, String) = self
            .run(
                eval(TAKE, &[&entry_key(user_id), &lease_key(user_id), BLOCK_KEY])
                    .arg(token)
                    .arg(millis(hold))
                    .arg(counts_from_ms),
                "take groups lease",
            )
            .await?;
        match kind.as_str() {
            "entry" => parse_entry(&value).map(Take::Entry),
            "leased" => Ok(Take::Leased {
                blocked_until: value.parse().unwrap_or(0),
            }),
            _ => Ok(match value.as_str() {
                FAILED_LIMITED => Take::Failed(GroupsError::RateLimited),
                FAILED_UNAVAILABLE => Take::Failed(GroupsError::Unavailable(
                    "another replica's Okta call for this user failed a moment ago".into(),
                )),
                // Another replica's token: it is asking Okta now.
                _ => Take::Held,
            }),
        }
    }

    /// Publishes what Okta answered to a call made at `fetched_at_ms`: the
    /// groups, or a definitive "no" (a user Okta does not know, or whose status
    /// denies; other errors are not answers and are stored as "unknown user").
    /// Kept for `keep`. Only while `token` still
    /// holds the user's lease (an invalidation since the lease was taken voids
    /// the answer), and an entry fetched later is not overwritten; the answer
    /// says whether this one was stored.
    pub async fn publish(
        &self,
        user_id: &str,
        token: &str,
        fetched_at_ms: u64,
        answer: Result<&[Group], &GroupsError>,
        keep: Duration,
    ) -> Result<bool, SharedError> {
        let body = Body::of(answer);
        let json = serde_json::to_string(&body)
            .map_err(|_| SharedError("groups entry could not be written".into()))?;
        let stored: i64 = self
            .run(
                eval(PUBLISH, &[&entry_key(user_id), &lease_key(user_id)])
                    .arg(format!("{fetched_at_ms} {json}"))
                    .arg(fetched_at_ms)
                    .arg(millis(keep))
                    .arg(token),
                "publish groups",
            )
            .await?;
        Ok(stored == 1)
    }

    /// Gives the lease back if `token` still holds it; after a failed fetch
    /// (`failed`: a 429 or Okta unavailable) leaves a marker for `marker_for`
    /// instead, which waiting replicas take as the answer. Says whether the
    /// lease was still the caller's.
    pub async fn release(
        &self,
        user_id: &str,
        token: &str,
        failed: Option<&GroupsError>,
        marker_for: Duration,
    ) -> Result<bool, SharedError> {
        let marker = match failed {
            None | Some(GroupsError::UserNotFound | GroupsError::UserInactive(_)) => "",
            Some(GroupsError::RateLimited) => FAILED_LIMITED,
            Some(GroupsError::Unavailable(_)) => FAILED_UNAVAILABLE,
        };
        let released: i64 = self
            .run(
                eval(RELEASE, &[&lease_key(user_id)])
                    .arg(token)
                    .arg(marker)
                    .arg(millis(marker_for)),
                "release groups lease",
            )
            .await?;
        Ok(released == 1)
    }

    /// Forgets the user's shared answer, voids a fetch under way (its lease is
    /// taken away) and tells every replica, tagging the message with `origin`
    /// so the sender can recognise its own.
    pub async fn invalidate(&self, user_id: &str, origin: &str) -> Result<(), SharedError> {
        self.run(
            eval(INVALIDATE, &[&entry_key(user_id), &lease_key(user_id)])
                .arg(INVALIDATIONS)
                .arg(origin)
                .arg(user_id),
            "invalidate groups",
        )
        .await
    }

    /// Raises the instant before which no replica calls Okta (epoch seconds) to
    /// `until`, never lowers it; it disappears at that instant. Returns the
    /// instant in force.
    pub async fn raise_block(&self, until: u64) -> Result<u64, SharedError> {
        self.run(
            eval(RAISE_BLOCK, &[BLOCK_KEY]).arg(until),
            "raise Okta block",
        )
        .await
    }

    /// The instant before which no replica calls Okta (epoch seconds), 0 if none.
    pub async fn blocked_until(&self) -> Result<u64, SharedError> {
        let value: Option<u64> = self
            .run(redis::cmd("GET").arg(BLOCK_KEY), "read Okta block")
            .await?;
        Ok(value.unwrap_or(0))
    }
}

fn parse_entry(value: &str) -> Result<SharedEntry, SharedError> {
    let unreadable = || SharedError("groups entry could not be read".into());
    let (at, json) = value.split_once(' ').ok_or_else(unreadable)?;
    let fetched_at_ms = at.parse().map_err(|_| unreadable())?;
    let body: Body = serde_json::from_str(json).map_err(|_| unreadable())?;
    Ok(SharedEntry {
        fetched_at_ms,
        groups: body.answer().ok_or_else(unreadable)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_reads_back_as_written_and_garbage_is_an_error_not_a_user() {
        let groups = [Group {
            id: "00g1".into(),
            name: "Every one, \"quoted\"".into(),
        }];
        let body = serde_json::to_string(&Body::of(Ok(&groups))).unwrap();
        let entry = parse_entry(&format!("1700000000123 {body}")).unwrap();
        assert_eq!(entry.fetched_at_ms, 1_700_000_000_123);
        assert_eq!(entry.groups, Ok(groups.to_vec()));
        let gone = parse_entry("5 {\"gone\":true}").unwrap();
        assert_eq!(
            gone.groups,
            Err(GroupsError::UserNotFound),
            "Okta does not know the user"
        );
        let inactive = serde_json::to_string(&Body::of(Err(&GroupsError::UserInactive(
            "SUSPENDED".into(),
        ))))
        .unwrap();
        assert_eq!(
            parse_entry(&format!("5 {inactive}")).unwrap().groups,
            Err(GroupsError::UserInactive("SUSPENDED".into()))
        );
        let none = parse_entry("5 {\"groups\":[]}").unwrap();
        assert_eq!(none.groups, Ok(vec![]));
        for bad in [
            "",
            "5",
            "x {}",
            "5 [",
            "5 {}",
            "5 {\"groups\":3}",
            "5 {\"groups\":[],\"gone\":true}",
            "5 {\"groups\":[],\"inactive\":\"SUSPENDED\"}",
            "5 {\"gone\":true,\"inactive\":\"SUSPENDED\"}",
        ] {
            assert!(parse_entry(bad).is_err(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn errors_name_neither_the_url_nor_a_key() {
        let shared = RedisGroups::new("redis://:hunter2@127.0.0.1:1/0").expect("lazy");
        let e = shared
            .take("00usecret", "token", Duration::from_secs(1), 0)
            .await
            .expect_err("nothing listens there");
        let text = e.to_string();
        assert!(
            !text.contains("hunter2") && !text.contains("00usecret"),
            "{text}"
        );
    }
}
