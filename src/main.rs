use std::process::ExitCode;

use tributary::config::{Cli, Command};
use tributary::startup::Application;

/// mimalloc rather than glibc's malloc: tokio moves tasks between worker
/// threads, so memory allocated on one thread is often freed on another, and
/// glibc then takes the other thread's arena lock. Under load those locks were
/// the most frequent cause of futex calls in the profile (see `docs/performance.md`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse_with_settings_help();
    match cli.command {
        Command::Healthcheck(settings) => match tributary::healthcheck::check(&settings).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(reason) => {
                eprintln!("unhealthy: {reason}");
                ExitCode::FAILURE
            }
        },
        Command::Auth(command) => match tributary::auth::run(command) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("tributary auth: {err:#}");
                ExitCode::FAILURE
            }
        },
        Command::Simulate(settings) => {
            let run = async {
                let _log = tributary::telemetry::init(&cli.log)?;
                tributary::simulate::run(settings, tributary::startup::shutdown_signal()).await
            };
            match run.await {
                // Any failed request fails the run, so scripts can use it as a smoke test.
                Ok(report) if report.errors == 0 => ExitCode::SUCCESS,
                Ok(_) => ExitCode::FAILURE,
                Err(err) => {
                    eprintln!("tributary simulate: {err:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Watch(settings) => {
            let run = async {
                let _log = tributary::telemetry::init(&cli.log)?;
                tributary::watch::run(settings, tributary::startup::shutdown_signal()).await
            };
            match run.await {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("tributary watch: {err:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Serve(settings) => {
            let run = async {
                let _log = tributary::telemetry::init(&cli.log)?;
                // Before binding, so that a signal during start-up is handled too.
                let stop = tributary::startup::shutdown_signal();
                Application::build(&settings).await?.run_until(stop).await
            };
            match run.await {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("tributary: {err:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
