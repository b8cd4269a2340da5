//! `confab`: serve (default), migrate, or print the effective configuration.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use confab_server::config::Settings;
use confab_server::{compose, start_on, telemetry};

#[derive(Parser)]
#[command(name = "confab", version, about = "A self-hostable chatbot platform")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Start the server (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Print the effective configuration, secrets masked.
    Config,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("confab: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::Config => {
            print!("{settings}");
            ExitCode::SUCCESS
        }
        Command::Migrate => {
            telemetry::init_logging(settings.log_format);
            match compose::open_database(&settings.database).await {
                Ok(_) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("confab: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Serve => serve(settings).await,
    }
}

async fn serve(settings: Settings) -> ExitCode {
    telemetry::init_logging(settings.log_format);
    if let Err(e) = settings.check_safe_to_serve() {
        eprintln!("confab: refusing to start: {e}");
        return ExitCode::from(2);
    }
    // The address is taken before anything is composed: a second `confab` started by
    // mistake on the same address (and the same SQLite file) stops here, before its start-up
    // sweep could end the replies the first one is still generating.
    let listener = match std::net::TcpListener::bind(settings.bind) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("confab: cannot listen on {}: {e}", settings.bind);
            return ExitCode::FAILURE;
        }
    };
    let state = match compose::application(&settings).await {
        Ok(state) => state,
        Err(e) => {
            eprintln!("confab: {e}");
            return ExitCode::FAILURE;
        }
    };
    let server = match start_on(listener, state, settings.workers) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("confab: cannot listen on {}: {e}", settings.bind);
            return ExitCode::FAILURE;
        }
    };
    tracing::info!("Confab is ready at http://{}", server.addr);
    wait_for_signal().await;
    tracing::info!(
        grace_secs = settings.shutdown_grace.as_secs(),
        "shutting down"
    );
    server.shutdown(settings.shutdown_grace).await;
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
