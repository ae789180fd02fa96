use std::{process::ExitCode, sync::Arc};

use anyhow::Context;
use clap::{Parser, Subcommand};
use esim_gateway::{AppState, build_app, config::Config, store, telemetry};
use tokio::net::TcpListener;

#[derive(Parser)]
#[command(
    name = "esim-gateway",
    version,
    about = "Sell travel eSIMs from the cheapest wholesale vendor through one REST API"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP service (the default). Configuration comes from the environment.
    Serve,
    /// Create the database if needed and apply migrations, then exit.
    Migrate,
    /// Print the OpenAPI document to stdout.
    Openapi,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Openapi) = cli.command {
        println!("{}", esim_gateway::http::openapi_json());
        return ExitCode::SUCCESS;
    }
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("esim-gateway: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init_tracing(config.log_format);
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config).await,
        Command::Migrate => migrate(&config).await,
        Command::Openapi => unreachable!("handled above"),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("esim-gateway: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn migrate(config: &Config) -> anyhow::Result<()> {
    let url = config.database_url.expose();
    store::ensure_database(url).await?;
    let pool = store::connect(url).await?;
    store::migrate(&pool).await?;
    tracing::info!("migrations applied");
    Ok(())
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let url = config.database_url.expose();
    store::ensure_database(url).await?;
    let pool = store::connect(url).await?;
    store::migrate(&pool).await?;

    let listener = TcpListener::bind(config.bind_addr)
        .await
        .with_context(|| format!("cannot listen on BIND_ADDR {}", config.bind_addr))?;
    tracing::info!(addr = %config.bind_addr, public_base_url = %config.public_base_url, "esim-gateway listening");
    if config.admin_token.is_none() {
        tracing::warn!("ADMIN_TOKEN is not set: the admin API is disabled");
    }
    let state = AppState {
        pool,
        config: Arc::new(config),
        metrics: telemetry::metrics_handle(),
        vendors: Default::default(),
    };
    esim_gateway::serve(listener, build_app(state), shutdown_signal())
        .await
        .context("server error")?;
    tracing::info!("shut down cleanly");
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM; in-flight requests then finish before the server exits.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received: finishing in-flight requests");
}
