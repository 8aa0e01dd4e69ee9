//! The `forward-auth` binary: configuration, logging, build, run; or, as
//! `forward-auth healthcheck`, the container's probe of a running instance.

use forward_auth::config::Config;
use forward_auth::startup::Application;
use forward_auth::telemetry;

fn main() -> std::process::ExitCode {
    let subcommand = std::env::args_os().nth(1);
    if subcommand.is_some_and(|arg| arg == "healthcheck") {
        return forward_auth::healthcheck::main();
    }
    serve()
}

#[actix_web::main]
async fn serve() -> std::process::ExitCode {
    let (config, warnings) = match Config::from_env() {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("forward-auth: {e}");
            return std::process::ExitCode::from(2);
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
            return std::process::ExitCode::FAILURE;
        }
    };
    tracing::info!(%address, port = app.port(), "forward-auth listening");
    match app.run_until_stopped().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("server stopped: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
