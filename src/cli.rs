//! The command line: `forward-auth [serve]`, `healthcheck`, `check [--user
//! LOGIN]`, `--help`, `--version`. It only parses arguments (clap) and picks
//! what to run; the work lives in `startup`, `healthcheck` and `check`. An
//! unknown argument is a usage error (exit 2), never a silent start.

use clap::{Parser, Subcommand};

/// Okta sign-in in front of any web app, for nginx auth_request, Traefik
/// forwardAuth and Caddy forward_auth.
///
/// Configuration comes from the environment (IDP_PROVIDER, IDP_PROVIDER_URL,
/// IDP_CLIENT_ID, IDP_CLIENT_SECRET, AUTHENTICATE_SERVICE_URL, COOKIE_SECRET, …);
/// the README lists every variable.
#[derive(Debug, Parser)]
#[command(name = "forward-auth", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand, PartialEq, Eq)]
pub enum Command {
    /// Serve auth checks, sign-in and sign-out (the default).
    Serve,
    /// Probe a running instance's /healthz on the port of ADDRESS (exit 0 or 1),
    /// for container health checks.
    Healthcheck,
    /// Check the configuration against the real IdP without serving: one line
    /// per check with the fix for each failure; exit 1 if any fails.
    Check {
        /// Also look up this user's Okta groups (login or user id) and what the
        /// global policy decides for them.
        #[arg(long, value_name = "LOGIN")]
        user: Option<String>,
    },
}

impl Cli {
    /// What to run; no subcommand means serve.
    pub fn to_run(&self) -> &Command {
        self.command.as_ref().unwrap_or(&Command::Serve)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("forward-auth").chain(args.iter().copied()))
    }

    #[test]
    fn no_argument_serves() {
        assert_eq!(parse(&[]).unwrap().to_run(), &Command::Serve);
        assert_eq!(parse(&["serve"]).unwrap().to_run(), &Command::Serve);
    }

    #[test]
    fn check_takes_an_optional_user() {
        assert_eq!(
            parse(&["check"]).unwrap().to_run(),
            &Command::Check { user: None }
        );
        assert_eq!(
            parse(&["check", "--user", "alice@example.com"])
                .unwrap()
                .to_run(),
            &Command::Check {
                user: Some("alice@example.com".into())
            }
        );
    }

    #[test]
    fn unknown_arguments_are_usage_errors() {
        for args in [&["--port", "80"][..], &["serv"], &["check", "--usr", "x"]] {
            let e = parse(args).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{args:?}");
        }
    }

    #[test]
    fn help_and_version_are_not_errors_of_use() {
        for flag in ["--help", "-h", "--version", "-V"] {
            let e = parse(&[flag]).unwrap_err();
            assert_eq!(e.exit_code(), 0, "{flag}");
        }
    }

    #[test]
    fn the_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
