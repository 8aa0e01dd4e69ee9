//! The `forward-auth` binary: reads the command line, then serves (config,
//! logging, build, run), probes a running instance (`healthcheck`) or checks a
//! configuration against the real IdP (`check`).

use std::process::ExitCode;

use clap::Parser;
use forward_auth::cli::{Cli, Command};
use forward_auth::config::Config;
use forward_auth::startup::Application;
use forward_auth::telemetry;

fn main() -> ExitCode {
    // Before anything reads or signs a token: jsonwebtoken keeps its first provider.
    forward_auth::oidc::jwt_crypto::install();
    let cli = Cli::parse();
    match cli.to_run() {
        Command::Serve => serve(),
        Command::Healthcheck => forward_auth::healthcheck::main(),
        Command::Check { user } => check(user.clone()),
    }
}

#[actix_web::main]
async fn serve() -> ExitCode {
    let (config, warnings) = match Config::from_env() {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("forward-auth: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&config.log_level, config.log_format);
    for warning in warnings {
        tracing::warn!("{warning}");
    }
    let address = config.address.clone();
    let app = match Application::build(config).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!("cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(%address, port = app.port(), "forward-auth listening");
    match app.run_until_stopped().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("server stopped: {e}");
            ExitCode::FAILURE
        }
    }
}

#[actix_web::main]
async fn check(user: Option<String>) -> ExitCode {
    let report = forward_auth::check::run_from_env(user.as_deref()).await;
    print!("{report}");
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
