//! `forward-auth check [--user LOGIN]`: tries a configuration against the real
//! IdP and the real Redis without serving, and says per check what is wrong and
//! how to fix it. It owns the probes (discovery, keys, the web app's client
//! credentials, the registered redirect URI, the API credential, Redis) and the
//! report; it must never print a secret, and never change anything at Okta: the
//! token endpoint is asked to redeem a code that does not exist, and the groups
//! API is asked about a user that does not exist (or the one given). This file
//! owns the report and the order; each group of probes has its own file
//! (`settings`, `idp`, `api`, `redis`).

mod api;
mod idp;
mod redis;
mod settings;

use std::fmt;
use std::time::Duration;

use crate::config::{Config, Provider, StoreKind};
use crate::error_chain::error_chain;
use api::check_api_credential;
use idp::{check_client, check_discovery, check_keys, check_redirect_uri};
use redis::check_redis;
use settings::check_cookie_and_proxies;

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// Works, but probably not what was meant; does not fail the run.
    Warn,
    Fail,
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub status: Status,
    pub what: &'static str,
    pub detail: String,
    /// How to fix it (failures and warnings).
    pub fix: Option<String>,
}

/// Every check's line, in order.
#[derive(Debug, Default)]
pub struct Report {
    pub lines: Vec<Line>,
}

impl Report {
    /// No check failed.
    pub fn passed(&self) -> bool {
        self.lines.iter().all(|l| l.status != Status::Fail)
    }

    fn ok(&mut self, what: &'static str, detail: impl Into<String>) {
        self.push(Status::Ok, what, detail.into(), None);
    }

    fn warn(&mut self, what: &'static str, detail: impl Into<String>, fix: impl Into<String>) {
        self.push(Status::Warn, what, detail.into(), Some(fix.into()));
    }

    fn fail(&mut self, what: &'static str, detail: impl Into<String>, fix: impl Into<String>) {
        self.push(Status::Fail, what, detail.into(), Some(fix.into()));
    }

    fn push(&mut self, status: Status, what: &'static str, detail: String, fix: Option<String>) {
        self.lines.push(Line {
            status,
            what,
            detail,
            fix,
        });
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in &self.lines {
            let tag = match line.status {
                Status::Ok => "ok  ",
                Status::Warn => "warn",
                Status::Fail => "FAIL",
            };
            writeln!(f, "{tag}  {}: {}", line.what, line.detail)?;
            if let Some(fix) = &line.fix {
                writeln!(f, "      fix: {fix}")?;
            }
        }
        let failed = self
            .lines
            .iter()
            .filter(|l| l.status == Status::Fail)
            .count();
        match failed {
            0 => writeln!(f, "all {} checks passed", self.lines.len()),
            1 => writeln!(f, "1 of {} checks failed", self.lines.len()),
            n => writeln!(f, "{n} of {} checks failed", self.lines.len()),
        }
    }
}

/// Reads the process environment, then runs every check.
pub async fn run_from_env(user: Option<&str>) -> Report {
    match Config::from_env() {
        Ok((config, warnings)) => run(&config, &warnings, user).await,
        Err(e) => {
            let mut report = Report::default();
            for problem in e.problems {
                report.fail(
                    "configuration",
                    problem,
                    "correct the variable as described, then run the check again",
                );
            }
            report
        }
    }
}

/// Runs every check against `config` (`warnings`: those the configuration
/// loader found, e.g. misspelt variables).
pub async fn run(config: &Config, warnings: &[String], user: Option<&str>) -> Report {
    let mut report = Report::default();
    report.ok(
        "configuration",
        format!("read; redirect URI {}", config.redirect_uri),
    );
    for warning in warnings {
        report.warn("configuration", warning.clone(), "see the message");
    }
    check_cookie_and_proxies(config, &mut report);

    let http = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .user_agent(concat!("forward-auth-check/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(http) => http,
        Err(e) => {
            report.fail(
                "HTTP client",
                error_chain(&e),
                "this machine's TLS set-up is broken",
            );
            return report;
        }
    };
    if let Some(metadata) = check_discovery(config, &http, &mut report).await {
        check_keys(&http, &metadata, &mut report).await;
        check_client(config, &http, &metadata, &mut report).await;
        check_redirect_uri(config, &http, &metadata, &mut report).await;
    }
    if config.provider == Provider::Okta {
        check_api_credential(config, &http, user, &mut report).await;
    } else if let Some(user) = user {
        report.warn(
            "user",
            format!("{user}: IDP_PROVIDER=oidc takes groups from the ID token, not the API"),
            "sign in as that user and look at /oauth2/userinfo",
        );
    }
    if let StoreKind::Redis(url) = &config.session_store {
        check_redis(url, &mut report).await;
    }
    report
}
