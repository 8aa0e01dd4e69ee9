//! Process-wide counters, rendered in Prometheus text format on the separate
//! `METRICS_ADDRESS` listener (never on the public one). Plain atomics: counting
//! must cost nothing on the hot path.

mod latency;
pub mod observed;

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// One counter with its Prometheus name, help and optional label.
pub struct Counter {
    name: &'static str,
    help: &'static str,
    label: Option<&'static str>,
    value: AtomicU64,
}

impl Counter {
    const fn new(name: &'static str, help: &'static str, label: Option<&'static str>) -> Counter {
        Counter {
            name,
            help,
            label,
            value: AtomicU64::new(0),
        }
    }

    pub fn inc(&self) {
        self.value.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.value.load(Ordering::Relaxed)
    }
}

/// One outcome of `forward_auth_decisions_total`.
const fn decision(label: &'static str) -> Counter {
    Counter::new(
        "forward_auth_decisions_total",
        "Auth decisions by outcome.",
        Some(label),
    )
}

pub static AUTH_ALLOWED: Counter = decision("outcome=\"allowed\"");
pub static AUTH_UNAUTHENTICATED: Counter = decision("outcome=\"unauthenticated\"");
pub static AUTH_FORBIDDEN: Counter = decision("outcome=\"forbidden\"");
pub static AUTH_UNAVAILABLE: Counter = decision("outcome=\"unavailable\"");
pub static SIGN_INS: Counter =
    Counter::new("forward_auth_sign_ins_total", "Completed sign-ins.", None);
pub static SIGN_IN_FAILURES: Counter = Counter::new(
    "forward_auth_sign_in_failures_total",
    "Failed sign-in callbacks.",
    None,
);
pub static OKTA_GROUPS_CALLS: Counter = Counter::new(
    "forward_auth_okta_groups_requests_total",
    "Requests to Okta's groups API.",
    None,
);
pub static OKTA_USER_CALLS: Counter = Counter::new(
    "forward_auth_okta_user_requests_total",
    "Requests to Okta's user API (a user's status).",
    None,
);
pub static OKTA_RATE_LIMITED: Counter = Counter::new(
    "forward_auth_okta_rate_limited_total",
    "Okta 429 answers.",
    None,
);
pub static GROUPS_STALE_SERVED: Counter = Counter::new(
    "forward_auth_groups_stale_served_total",
    "Checks answered with last known groups past GROUPS_CACHE_TTL because Okta failed or rate-limited.",
    None,
);
pub static GROUPS_WAITED: Counter = Counter::new(
    "forward_auth_groups_waited_total",
    "Checks that waited for Okta because the user's groups were unknown, past GROUPS_CACHE_TTL or invalidated.",
    None,
);
pub static GROUPS_REFRESHED_AHEAD: Counter = Counter::new(
    "forward_auth_groups_refreshed_ahead_total",
    "Background refreshes of an active user's groups before GROUPS_CACHE_TTL ran out.",
    None,
);
pub static GROUPS_SHARED_HITS: Counter = Counter::new(
    "forward_auth_groups_shared_hits_total",
    "Groups taken from Redis, as another replica fetched them, instead of asking Okta.",
    None,
);
pub static GROUPS_SHARED_FALLBACKS: Counter = Counter::new(
    "forward_auth_groups_shared_fallbacks_total",
    "Groups lookups that asked Okta without the other replicas because Redis could not answer.",
    None,
);
pub static TOKEN_REFRESHES: Counter = Counter::new(
    "forward_auth_token_refreshes_total",
    "Token refreshes attempted.",
    None,
);

pub static SESSION_READS_LOCAL: Counter = Counter::new(
    "forward_auth_session_reads_total",
    "Session lookups with SESSION_STORE=redis, by where they were answered.",
    Some("source=\"local\""),
);
pub static SESSION_READS_REDIS: Counter = Counter::new(
    "forward_auth_session_reads_total",
    "Session lookups with SESSION_STORE=redis, by where they were answered.",
    Some("source=\"redis\""),
);

static ALL: [&Counter; 17] = [
    &AUTH_ALLOWED,
    &AUTH_UNAUTHENTICATED,
    &AUTH_FORBIDDEN,
    &AUTH_UNAVAILABLE,
    &SIGN_INS,
    &SIGN_IN_FAILURES,
    &OKTA_GROUPS_CALLS,
    &OKTA_USER_CALLS,
    &OKTA_RATE_LIMITED,
    &GROUPS_STALE_SERVED,
    &GROUPS_SHARED_HITS,
    &GROUPS_SHARED_FALLBACKS,
    &GROUPS_WAITED,
    &GROUPS_REFRESHED_AHEAD,
    &TOKEN_REFRESHES,
    &SESSION_READS_LOCAL,
    &SESSION_READS_REDIS,
];

/// All counters in Prometheus text exposition format.
pub fn render() -> String {
    let mut out = String::new();
    let mut last = "";
    for c in ALL {
        if c.name != last {
            let _ = writeln!(
                out,
                "# HELP {} {}\n# TYPE {} counter",
                c.name, c.help, c.name
            );
            last = c.name;
        }
        match c.label {
            Some(label) => {
                let _ = writeln!(out, "{}{{{}}} {}", c.name, label, c.get());
            }
            None => {
                let _ = writeln!(out, "{} {}", c.name, c.get());
            }
        }
    }
    OKTA_EVENTS.render(&mut out);
    OKTA_EVENT_DELIVERIES.render(&mut out);
    observed::render(&mut out);
    out
}

/// Counters with two labels, one per row and column: every combination is
/// rendered, zeros included, so dashboards see each series from the start.
pub struct CounterGrid<const R: usize, const C: usize> {
    name: &'static str,
    help: &'static str,
    row_label: &'static str,
    rows: [&'static str; R],
    column_label: &'static str,
    columns: [&'static str; C],
    values: [[AtomicU64; C]; R],
}

impl<const R: usize, const C: usize> CounterGrid<R, C> {
    const fn new(
        name: &'static str,
        help: &'static str,
        (row_label, rows): (&'static str, [&'static str; R]),
        (column_label, columns): (&'static str, [&'static str; C]),
    ) -> Self {
        CounterGrid {
            name,
            help,
            row_label,
            rows,
            column_label,
            columns,
            values: [const { [const { AtomicU64::new(0) }; C] }; R],
        }
    }

    /// Counts one for (`row`, `column`); a name not in the grid counts
    /// under the last row or column (the catch-all, e.g. `other`).
    pub fn inc(&self, row: &str, column: &str) {
        self.cell(row, column).fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self, row: &str, column: &str) -> u64 {
        self.cell(row, column).load(Ordering::Relaxed)
    }

    fn cell(&self, row: &str, column: &str) -> &AtomicU64 {
        let r = self.rows.iter().position(|x| *x == row).unwrap_or(R - 1);
        let c = self
            .columns
            .iter()
            .position(|x| *x == column)
            .unwrap_or(C - 1);
        &self.values[r][c]
    }

    fn render(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP {} {}\n# TYPE {} counter",
            self.name, self.help, self.name
        );
        for (r, row) in self.rows.iter().enumerate() {
            for (c, column) in self.columns.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "{}{{{}=\"{}\",{}=\"{}\"}} {}",
                    self.name,
                    self.row_label,
                    row,
                    self.column_label,
                    column,
                    self.values[r][c].load(Ordering::Relaxed)
                );
            }
        }
    }
}

/// Okta event-hook events by type (the last row counts types we do not act
/// on) and outcome (the last column is the catch-all).
pub static OKTA_EVENTS: CounterGrid<9, 5> = CounterGrid::new(
    "forward_auth_okta_events_total",
    "Okta event-hook events by type and outcome (applied, duplicate, ignored, retried, failed).",
    (
        "type",
        [
            "group.user_membership.add",
            "group.user_membership.remove",
            "user.lifecycle.deactivate",
            "user.lifecycle.suspend",
            "user.lifecycle.delete.initiated",
            "user.session.clear",
            "user.session.end",
            "application.user_membership.remove",
            "other",
        ],
    ),
    (
        "outcome",
        ["applied", "duplicate", "ignored", "retried", "failed"],
    ),
);

/// Okta event-hook deliveries (POSTs) by answer.
pub static OKTA_EVENT_DELIVERIES: CounterGrid<1, 6> = CounterGrid::new(
    "forward_auth_okta_event_deliveries_total",
    "Okta event-hook deliveries by answer.",
    ("hook", ["okta"]),
    (
        "outcome",
        [
            "accepted",
            "unauthorized",
            "malformed",
            "too_large",
            "busy",
            "other",
        ],
    ),
);
