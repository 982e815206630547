use std::process::ExitCode;

use clap::Parser;
use tributary::config::{Cli, Command};
use tributary::startup::Application;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Healthcheck(settings) => match tributary::healthcheck::check(&settings).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(reason) => {
                eprintln!("unhealthy: {reason}");
                ExitCode::FAILURE
            }
        },
        Command::Serve(settings) => {
            let run = async {
                tributary::telemetry::init(&cli.log)?;
                Application::build(&settings)
                    .await?
                    .run_until_stopped()
                    .await
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
