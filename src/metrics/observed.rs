//! Histograms and labelled counters kept with the `prometheus-client` crate:
//! check latency and decisions by endpoint, Okta call latency by endpoint and
//! status class, the groups cache's hits, Okta back-off, logout outcomes,
//! Redis round-trips and the memory store's sessions.
//! Every hot-path handle is created once, at first use, so a check costs
//! three atomic adds (its decision, its latency's bucket and sum), never a
//! label lookup or a lock.

use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use super::latency::Latency;
use crate::session::MemoryStore;

/// The two check endpoints, as the `endpoint` label says them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `/oauth2/auth` (nginx).
    Auth,
    /// `/oauth2/forward` (Traefik, Caddy).
    Forward,
}

/// How a check ended, as the `outcome` label says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Allowed,
    Unauthenticated,
    Forbidden,
    Error,
}

const ENDPOINTS: [&str; 2] = ["auth", "forward"];
const LOGOUT_WAYS: [&str; 6] = [
    "sign_out",
    "sign_out_everywhere",
    "back_channel",
    "front_channel",
    "universal_logout",
    "event_hook",
];
const OUTCOMES: [&str; 4] = ["allowed", "unauthenticated", "forbidden", "error"];

type Labels = [(&'static str, &'static str); 2];
type HistogramFamily = Family<Labels, Histogram, fn() -> Histogram>;

/// The registry and the handles the code counts with.
pub struct Observed {
    registry: Registry,
    check_seconds: [Latency; 2],
    decisions: [[Counter; 4]; 2],
    okta_seconds: HistogramFamily,
    groups_cache_hits: Counter,
    okta_backoff_seconds: Counter<f64, std::sync::atomic::AtomicU64>,
    logouts: Family<Labels, Counter>,
    redis: [Counter; 2],
    sessions: Gauge,
}

/// The memory store whose sessions `forward_auth_sessions` counts at each
/// scrape (the latest started; none with `SESSION_STORE=redis`).
static SESSION_SOURCE: Mutex<Option<Weak<MemoryStore>>> = Mutex::new(None);

fn okta_histogram() -> Histogram {
    // 5 ms … ~10 s.
    Histogram::new(exponential_buckets(0.005, 2.0, 12))
}

static OBSERVED: LazyLock<Observed> = LazyLock::new(Observed::new);

impl Observed {
    fn new() -> Observed {
        let mut registry = Registry::default();
        // 100 µs … ~1.6 s: a cached check is well under a millisecond, one
        // that waits for Okta takes tens to hundreds.
        let check_family: Family<Labels, Latency> = Family::default();
        let check_seconds = ENDPOINTS.map(|e| {
            check_family
                .get_or_create(&[("endpoint", e), ("path", path_of(e))])
                .clone()
        });
        registry.register(
            "forward_auth_check_duration_seconds",
            "Time to answer a check, by endpoint (auth = /oauth2/auth, forward = /oauth2/forward)",
            check_family,
        );
        let decision_family: Family<Labels, Counter> = Family::default();
        let decisions = ENDPOINTS.map(|e| {
            OUTCOMES.map(|o| {
                decision_family
                    .get_or_create(&[("endpoint", e), ("outcome", o)])
                    .clone()
            })
        });
        registry.register(
            "forward_auth_check_decisions",
            "Check answers by endpoint and outcome (allowed, unauthenticated, forbidden, error)",
            decision_family,
        );
        let okta_seconds: HistogramFamily = Family::new_with_constructor(okta_histogram);
        // Series a dashboard sees from the start, before the first call.
        for endpoint in ["groups", "user", "token", "keys", "discovery", "revoke"] {
            let _ = okta_seconds.get_or_create(&[("endpoint", endpoint), ("status_class", "2xx")]);
        }
        registry.register(
            "forward_auth_okta_request_duration_seconds",
            "Time of each call to Okta, by endpoint (groups, user, token, keys, discovery, revoke) and status class (2xx, 3xx, 4xx, 429, 5xx; error: no answer, or for token, keys and discovery any failure)",
            okta_seconds.clone(),
        );
        let groups_cache_hits = Counter::default();
        registry.register(
            "forward_auth_groups_cache_hits",
            "Checks answered from the groups cache within GROUPS_CACHE_TTL (misses: forward_auth_groups_waited_total; stale: forward_auth_groups_stale_served_total)",
            groups_cache_hits.clone(),
        );
        let okta_backoff_seconds = Counter::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "forward_auth_okta_backoff_seconds",
            "Seconds of Okta API calls held back after a 429 or a used-up rate limit",
            okta_backoff_seconds.clone(),
        );
        let logouts: Family<Labels, Counter> = Family::default();
        for way in LOGOUT_WAYS {
            for outcome in ["ended", "no_session"] {
                let _ = logouts.get_or_create(&[("way", way), ("outcome", outcome)]);
            }
        }
        registry.register(
            "forward_auth_logouts",
            "Sessions ended other than by expiry, by way (sign_out, sign_out_everywhere, back_channel, front_channel, universal_logout, event_hook) and outcome",
            logouts.clone(),
        );
        let redis_family: Family<[(&'static str, &'static str); 1], Counter> = Family::default();
        let redis = ["ok", "failed"].map(|o| redis_family.get_or_create(&[("outcome", o)]).clone());
        registry.register(
            "forward_auth_redis_commands",
            "Redis round-trips (sessions, sign-in states, shared groups) by outcome (ok, failed)",
            redis_family,
        );
        let sessions = Gauge::default();
        registry.register(
            "forward_auth_sessions",
            "Sessions held in the memory store, counted at the scrape (expired ones not yet swept included; 0 with SESSION_STORE=redis)",
            sessions.clone(),
        );
        Observed {
            registry,
            redis,
            sessions,
            check_seconds,
            decisions,
            okta_seconds,
            groups_cache_hits,
            okta_backoff_seconds,
            logouts,
        }
    }
}

fn path_of(endpoint: &str) -> &'static str {
    if endpoint == "auth" {
        "/oauth2/auth"
    } else {
        "/oauth2/forward"
    }
}

/// One check answered: its latency and outcome.
pub fn check(endpoint: Endpoint, outcome: Outcome, took: Duration) {
    let e = endpoint as usize;
    OBSERVED.check_seconds[e].observe(took);
    OBSERVED.decisions[e][outcome as usize].inc();
}

/// The count of `endpoint`'s checks that ended in `outcome`.
pub fn decisions(endpoint: Endpoint, outcome: Outcome) -> u64 {
    OBSERVED.decisions[endpoint as usize][outcome as usize].get()
}

/// One call to Okta: `endpoint` is groups, user, token, keys, discovery or
/// revoke; `status` the HTTP status, `None` when no answer came.
pub fn okta_call(endpoint: &'static str, status: Option<u16>, took: Duration) {
    let class = match status {
        None => "error",
        Some(429) => "429",
        Some(200..=299) => "2xx",
        Some(300..=399) => "3xx",
        Some(400..=499) => "4xx",
        Some(_) => "5xx",
    };
    OBSERVED
        .okta_seconds
        .get_or_create(&[("endpoint", endpoint), ("status_class", class)])
        .observe(took.as_secs_f64());
}

/// A check answered from the groups cache.
pub fn groups_cache_hit() {
    OBSERVED.groups_cache_hits.inc();
}

/// Okta calls held back for `seconds` after a 429 or a used-up quota.
pub fn okta_backoff(seconds: f64) {
    OBSERVED.okta_backoff_seconds.inc_by(seconds);
}

/// A session ended by `way` (sign_out, back_channel, …) with `outcome`
/// (`ended`, or `no_session` when none was left to end).
pub fn logout(way: &'static str, outcome: &'static str) {
    OBSERVED
        .logouts
        .get_or_create(&[("way", way), ("outcome", outcome)])
        .inc();
}

/// One Redis round-trip, answered or failed.
pub fn redis(answered: bool) {
    OBSERVED.redis[usize::from(!answered)].inc();
}

/// Counts `store`'s sessions in `forward_auth_sessions` from now on.
pub fn watch_sessions(store: &Arc<MemoryStore>) {
    if let Ok(mut source) = SESSION_SOURCE.lock() {
        *source = Some(Arc::downgrade(store));
    }
}

/// Appends these metrics in Prometheus text format 0.0.4, as the
/// hand-written counters: without OpenMetrics' `# EOF`, and a counter's
/// `# HELP` and `# TYPE` name the samples' `_total` name.
pub(super) fn render(out: &mut String) {
    let store = SESSION_SOURCE
        .lock()
        .ok()
        .and_then(|s| s.as_ref().and_then(Weak::upgrade));
    if let Some(store) = store {
        let count = i64::try_from(store.session_count()).unwrap_or(i64::MAX);
        OBSERVED.sessions.set(count);
    }
    let mut text = String::new();
    if encode(&mut text, &OBSERVED.registry).is_ok() {
        let counters: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
            .collect();
        for line in text.lines().filter(|l| *l != "# EOF") {
            let named = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
                let rest = line.strip_prefix(prefix)?;
                let (name, tail) = rest.split_once(' ')?;
                counters
                    .contains(&name)
                    .then(|| format!("{prefix}{name}_total {tail}"))
            });
            match named {
                Some(renamed) => out.push_str(&renamed),
                None => out.push_str(line),
            }
            out.push('\n');
        }
    }
}
