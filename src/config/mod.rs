//! Settings: one typed struct per command, filled from flags and `TRIBUTARY_*`
//! environment variables (Docker Compose passes environment variables), with
//! defaults that run without any setup. Each default is written once, in the
//! clap definition; tests and embedders get theirs from it
//! (`ServeSettings::for_tests`).

mod live;
mod secret;
mod serve;
pub(crate) mod simulate;
mod watch;

pub use self::live::LiveSettings;
pub use self::secret::RedisUrl;
pub use self::serve::{RedisTarget, ServeSettings};
pub use self::simulate::{Compress, MAX_VEHICLES, SimulateSettings};
pub use self::watch::{Token, WatchSettings};

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(name = "tributary", version, about = "Tributary: a backend for live car telemetry.")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub log: LogSettings,
}

// Parsed once at start and moved out at once: the size of the largest
// variant costs nothing, and boxing it would only complicate clap's derive.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service.
    Serve(ServeSettings),
    /// Exit 0 if a running service answers its health check, else 1 (for
    /// container HEALTHCHECKs; needs no curl).
    Healthcheck(HealthcheckSettings),
    /// Drive a fleet of simulated cars against a running service, printing a
    /// summary line of readings sent, errors and latency.
    Simulate(SimulateSettings),
    /// Make keys and mint tokens, for development and provisioning.
    #[command(subcommand)]
    Auth(crate::auth::AuthCommand),
    /// Show a vehicle's live data, as a table redrawn in place on a terminal
    /// (one line per event when piped), from its stream on a running service.
    Watch(WatchSettings),
}

#[derive(Debug, Clone, Args)]
pub struct LogSettings {
    /// Log filter, in tracing's EnvFilter syntax (e.g. `info`, `tributary=debug`).
    #[arg(long = "log", env = "TRIBUTARY_LOG", default_value = "info", global = true)]
    pub filter: String,
    /// Log format.
    #[arg(long = "log-format", env = "TRIBUTARY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub format: LogFormat,
    /// The access log: a line per request (method, route, vehicle, status,
    /// latency, request id) in the log format, whatever the log filter.
    #[arg(long = "access-log", env = "TRIBUTARY_ACCESS_LOG", value_enum, default_value_t = AccessLog::On, global = true)]
    pub access_log: AccessLog,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AccessLog {
    On,
    Off,
}

impl AccessLog {
    pub fn is_on(self) -> bool {
        self == Self::On
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl Cli {
    /// Parses the command line. `tributary --help` also lists every setting of
    /// `serve` with its environment variable and default, read from the
    /// definitions below so the list cannot drift.
    pub fn parse_with_settings_help() -> Self {
        use clap::{CommandFactory, FromArgMatches};
        let command = Self::command().after_help(serve_settings_summary());
        let matches = command.get_matches();
        Self::from_arg_matches(&matches).unwrap_or_else(|err| err.exit())
    }
}

/// "Settings of `tributary serve`:" and one line per setting.
fn serve_settings_summary() -> String {
    let serve = ServeSettings::augment_args(clap::Command::new("serve"));
    let mut lines =
        vec!["Settings of `tributary serve` (flags override environment variables):".to_owned()];
    for arg in serve.get_arguments() {
        let (Some(long), Some(env)) = (arg.get_long(), arg.get_env()) else {
            continue;
        };
        let default = arg
            .get_default_values()
            .first()
            .map_or_else(|| "unset".to_owned(), |v| v.to_string_lossy().into_owned());
        lines.push(format!("  {:<28} --{long:<18} default: {default}", env.to_string_lossy()));
    }
    lines.push("Run `tributary serve --help` for what each one does.".to_owned());
    lines.join("\n")
}

#[derive(Debug, Clone, Args)]
pub struct HealthcheckSettings {
    /// The URL to check.
    #[arg(
        long,
        env = "TRIBUTARY_HEALTHCHECK_URL",
        default_value = "http://127.0.0.1:8000/healthz"
    )]
    pub url: String,
    /// How long to wait for the answer.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// Parses `30s`, `12h`, `7d`…; zero is refused.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text)
        .map_err(|e| format!("{e} (examples: 500ms, 30s, 12h, 7d)"))?;
    if duration.is_zero() {
        return Err("must be longer than zero".into());
    }
    Ok(duration)
}

/// Like `parse_duration`, for a setting where zero means "none" (a delay).
pub(crate) fn parse_duration_or_zero(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (examples: 0s, 500ms, 5s)"))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(7 * 86_400));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").unwrap_err().contains("examples"));
    }
}
