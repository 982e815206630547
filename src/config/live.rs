//! The settings of live streams, part of `tributary serve`'s (the streams
//! themselves are `crate::live`).

use std::time::Duration;

/// Settings of live streams (part of `tributary serve`'s settings).
#[derive(Debug, Clone, clap::Args)]
pub struct LiveSettings {
    /// Live streams (`GET /v1/vehicles/{id}/stream`) this instance serves at
    /// once; past it, new streams are answered 503 with `Retry-After`.
    #[arg(long, env = "TRIBUTARY_MAX_STREAMS", default_value_t = 10_000,
        value_parser = clap::value_parser!(u32).range(1..))]
    pub max_streams: u32,
    /// How often an open stream sends a comment line when it has nothing else
    /// to send, so proxies and mobile networks keep it open and dead clients
    /// are found (e.g. `15s`).
    #[arg(long = "stream-heartbeat", env = "TRIBUTARY_STREAM_HEARTBEAT", default_value = "15s",
        value_parser = super::parse_duration)]
    pub heartbeat: Duration,
}

impl Default for LiveSettings {
    /// The same defaults as the command line's (a test checks it).
    fn default() -> Self {
        Self { max_streams: 10_000, heartbeat: Duration::from_secs(15) }
    }
}

#[cfg(test)]
mod tests {
    use clap::{Args, FromArgMatches};

    use super::*;

    fn parse(args: &[&str]) -> Result<LiveSettings, clap::Error> {
        // Environment variables ignored, so the test reads the flags alone.
        let command = LiveSettings::augment_args(clap::Command::new("serve"))
            .mut_args(|arg| arg.env(None::<&str>));
        let matches =
            command.try_get_matches_from(std::iter::once("serve").chain(args.iter().copied()))?;
        LiveSettings::from_arg_matches(&matches)
    }

    #[test]
    fn the_defaults_are_the_command_lines() {
        let parsed = parse(&[]).unwrap();
        let default = LiveSettings::default();
        assert_eq!(
            (parsed.max_streams, parsed.heartbeat),
            (default.max_streams, default.heartbeat)
        );
        assert_eq!((default.max_streams, default.heartbeat), (10_000, Duration::from_secs(15)));
    }

    #[test]
    fn settings_are_checked_when_read() {
        let parsed = parse(&["--max-streams", "5", "--stream-heartbeat", "500ms"]).unwrap();
        assert_eq!((parsed.max_streams, parsed.heartbeat), (5, Duration::from_millis(500)));
        assert!(parse(&["--max-streams", "0"]).is_err());
        assert!(parse(&["--stream-heartbeat", "0s"]).is_err());
    }
}
