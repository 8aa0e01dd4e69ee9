//! The session store check: the commands the Redis store and the shared
//! groups use, run on a throw-away key with a short expiry. It must never
//! print the Redis password and never touch a key it did not make.

use std::time::Duration;

use url::Url;

use super::Report;
use crate::random::random_token;

/// The commands the Redis store and the shared groups use, on a throw-away key.
pub(super) async fn check_redis(url: &Url, report: &mut Report) {
    let fix = "check SESSION_STORE (redis://[user:password@]host:port/db), that Redis runs, and that its ACL allows GET SET DEL EVAL EVALSHA PUBLISH SUBSCRIBE PING";
    let result = tokio::time::timeout(Duration::from_secs(5), redis_round_trip(url)).await;
    match result {
        Ok(Ok(())) => report.ok(
            "session store",
            "Redis answers PING, SET, GET, DEL, EVAL and PUBLISH",
        ),
        Ok(Err(e)) => report.fail("session store", format!("Redis: {e}"), fix),
        Err(_) => report.fail("session store", "Redis did not answer within 5 s", fix),
    }
}

async fn redis_round_trip(url: &Url) -> Result<(), String> {
    use crate::redis_connection::describe;
    let client = crate::redis_connection::client(url.as_str())?;
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| describe(&e))?;
    let key = format!("fa:check:{}", random_token());
    let step = |what: &'static str| move |e: redis::RedisError| format!("{what}: {}", describe(&e));
    redis::cmd("PING")
        .query_async::<String>(&mut conn)
        .await
        .map_err(step("PING"))?;
    redis::cmd("SET")
        .arg(&key)
        .arg("1")
        .arg("PX")
        .arg(10_000)
        .query_async::<()>(&mut conn)
        .await
        .map_err(step("SET"))?;
    let read: Option<String> = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .map_err(step("GET"))?;
    if read.as_deref() != Some("1") {
        return Err("GET did not read back what SET wrote".into());
    }
    redis::cmd("EVAL")
        .arg("return redis.call('DEL', KEYS[1])")
        .arg(1)
        .arg(&key)
        .query_async::<i64>(&mut conn)
        .await
        .map_err(step("EVAL"))?;
    redis::cmd("PUBLISH")
        .arg("fa:check")
        .arg("ping")
        .query_async::<i64>(&mut conn)
        .await
        .map_err(step("PUBLISH"))?;
    Ok(())
}
