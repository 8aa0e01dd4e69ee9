//! The audit trail: one `info` line, under the `audit` target, per decision an
//! auditor asks about — sign-in (success or failure), sign-out, a denied
//! check, a session ended by Okta (event hook, Universal Logout, front- or
//! back-channel logout). Fields: event, user, host, path, decision, reason.
//! Never a token, cookie, secret or raw `sid`. Allowed checks are at `debug`
//! only (the hot path). Filter with `LOG_LEVEL=…,audit=info`.

/// One audited decision. `user`, `host` and `path` are empty when unknown.
pub struct Audit<'a> {
    pub event: &'static str,
    pub user: &'a str,
    pub host: &'a str,
    pub path: &'a str,
    pub decision: &'static str,
    pub reason: &'a str,
}

impl Audit<'_> {
    /// Writes the line at `info`.
    pub fn record(&self) {
        tracing::info!(
            target: "audit",
            event = self.event,
            user = self.user,
            host = self.host,
            path = self.path,
            decision = self.decision,
            reason = self.reason,
            "audit"
        );
    }
}

/// An allowed check, at `debug` (costs a level check when off).
pub fn allowed(user: &str) {
    tracing::debug!(target: "audit", event = "check", user, decision = "allowed", "audit");
}

/// A session (or all of a user's) ended by Okta's word, not the user's:
/// `way` is back_channel, front_channel, universal_logout or event_hook.
/// Also counted in `forward_auth_logouts_total`.
pub fn ended_by_okta(way: &'static str, user: &str, sessions: usize, reason: &str) {
    crate::metrics::observed::logout(way, if sessions > 0 { "ended" } else { "no_session" });
    Audit {
        event: way,
        user,
        host: "",
        path: "",
        decision: "session_ended",
        reason,
    }
    .record();
}

/// The host of one of our configured service URLs (never a request header: a
/// client could write anything there).
pub fn host_of(service_url: &str) -> String {
    url::Url::parse(service_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default()
}
