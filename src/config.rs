//! Settings: one typed struct per command, filled from flags and `TRIBUTARY_*`
//! environment variables (Docker Compose passes environment variables), with
//! defaults that run without any setup.

use std::path::PathBuf;
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

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service.
    Serve(ServeSettings),
    /// Exit 0 if a running service answers its health check, else 1 (for
    /// container HEALTHCHECKs; needs no curl).
    Healthcheck(HealthcheckSettings),
    /// Drive a fleet of simulated cars against a running service, printing a
    /// summary line of readings sent, errors and latency.
    Simulate(crate::simulate::SimulateSettings),
}

#[derive(Debug, Clone, Args)]
pub struct LogSettings {
    /// Log filter, in tracing's EnvFilter syntax (e.g. `info`, `tributary=debug`).
    #[arg(long = "log", env = "TRIBUTARY_LOG", default_value = "info", global = true)]
    pub filter: String,
    /// Log format.
    #[arg(long = "log-format", env = "TRIBUTARY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct ServeSettings {
    /// Address and port to listen on.
    #[arg(long, env = "TRIBUTARY_LISTEN", default_value = "0.0.0.0:8000")]
    pub listen: String,
    /// Redis URL (`redis://[:password@]host[:port][/db]`, or `rediss://` for TLS).
    /// Unset or empty: the embedded in-memory store, which keeps nothing across restarts.
    #[arg(long, env = "TRIBUTARY_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// How many newest readings per vehicle and signal are kept and averaged.
    #[arg(long, env = "TRIBUTARY_WINDOW", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub window: u32,
    /// How long a vehicle that sends nothing is remembered (e.g. `7d`, `12h`).
    #[arg(long, env = "TRIBUTARY_RETENTION", default_value = "7d", value_parser = parse_duration)]
    pub retention: Duration,
    /// A TOML file of extra signals (see `signals.example.toml`). Unset: the built-ins.
    #[arg(long, env = "TRIBUTARY_SIGNALS")]
    pub signals: Option<PathBuf>,
    /// How long a client may take to send a request's headers, and again its body,
    /// before it is cut off (408 for a body).
    #[arg(long, env = "TRIBUTARY_CLIENT_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub client_timeout: Duration,
    /// How long in-flight requests may take to finish after SIGTERM or Ctrl-C.
    #[arg(long, env = "TRIBUTARY_SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,
    /// How long one store operation may take before the request is answered 503.
    #[arg(long, env = "TRIBUTARY_STORE_TIMEOUT", default_value = "1s", value_parser = parse_duration)]
    pub store_timeout: Duration,
    /// Requests handled at once; above this, requests are answered 503 with
    /// `Retry-After` at once instead of queueing.
    #[arg(long, env = "TRIBUTARY_MAX_IN_FLIGHT", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_in_flight: u32,
    /// Open client connections; above this, new connections wait in the
    /// kernel's accept queue until one closes.
    #[arg(long, env = "TRIBUTARY_MAX_CONNECTIONS", default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// Readings per second one vehicle may send (a batch of 100 counts 100);
    /// above it, 429 with `Retry-After`. 0 turns the limit off.
    #[arg(long, env = "TRIBUTARY_VEHICLE_RATE", default_value_t = 1000)]
    pub vehicle_rate: u32,
    /// Readings one vehicle may send at once after a quiet spell (at least 1000,
    /// the largest batch).
    #[arg(long, env = "TRIBUTARY_VEHICLE_BURST", default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1000..))]
    pub vehicle_burst: u32,
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

impl ServeSettings {
    /// Settings for tests and embedding: the defaults on a free loopback port,
    /// but no per-vehicle rate limit (tests write far faster than a car).
    pub fn for_tests() -> Self {
        Self {
            listen: "127.0.0.1:0".into(),
            redis_url: None,
            window: 10,
            retention: Duration::from_secs(7 * 24 * 3600),
            signals: None,
            client_timeout: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(10),
            store_timeout: Duration::from_secs(1),
            max_in_flight: 256,
            max_connections: 4096,
            vehicle_rate: 0,
            vehicle_burst: 2000,
        }
    }

    /// The Redis URL, if one is set; an empty value (`TRIBUTARY_REDIS_URL=` in a
    /// `.env` file) means none.
    pub fn redis_url(&self) -> Option<&str> {
        self.redis_url.as_deref().map(str::trim).filter(|url| !url.is_empty())
    }

    /// The Redis URL with any password replaced, safe to log.
    pub fn redacted_redis_url(&self) -> Option<String> {
        let url = self.redis_url()?;
        let Some((scheme, rest)) = url.split_once("://") else {
            return Some("<unparseable>".into());
        };
        Some(match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://***@{host}"),
            None => url.to_owned(),
        })
    }
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn passwords_are_redacted() {
        let mut settings = ServeSettings::for_tests();
        settings.redis_url = Some("redis://:s3cret@redis:6379/2".into());
        assert_eq!(settings.redacted_redis_url().unwrap(), "redis://***@redis:6379/2");
        settings.redis_url = Some("redis://redis:6379".into());
        assert_eq!(settings.redacted_redis_url().unwrap(), "redis://redis:6379");
        settings.redis_url = Some(" ".into());
        assert_eq!(settings.redis_url(), None);
    }

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(7 * 86_400));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").unwrap_err().contains("examples"));
    }
}
