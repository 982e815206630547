//! The settings of `tributary watch` (the client itself is `crate::watch`).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use reqwest::Url;

use crate::domain::VehicleId;

#[derive(clap::Args, Debug, Clone)]
pub struct WatchSettings {
    /// The vehicle to watch, e.g. `sim-001`.
    #[arg(value_parser = parse_vehicle)]
    pub vehicle: VehicleId,
    /// Base URL of the Tributary service.
    #[arg(long, env = "TRIBUTARY_WATCH_URL", default_value = "http://127.0.0.1:8000",
        value_parser = parse_base_url)]
    pub url: Url,
    /// Only these signals (names or VSS paths, comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub signals: Vec<String>,
    /// At most one update per this interval (e.g. `250ms`). Unset: every change.
    #[arg(long, value_parser = super::parse_duration)]
    pub min_interval: Option<Duration>,
    /// Access token, sent as `Authorization: Bearer …`.
    #[arg(long, env = "TRIBUTARY_TOKEN", hide_env_values = true)]
    pub token: Option<Token>,
}

/// An access token; never printed.
#[derive(Clone)]
pub struct Token(String);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(***)")
    }
}

impl Token {
    /// The token itself, to send.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl FromStr for Token {
    type Err = String;

    fn from_str(token: &str) -> Result<Self, Self::Err> {
        if token.is_empty() || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("a token is one word of visible characters".into());
        }
        Ok(Self(token.to_owned()))
    }
}

fn parse_vehicle(id: &str) -> Result<VehicleId, String> {
    VehicleId::try_from(id).map_err(|e| e.to_string())
}

fn parse_base_url(url: &str) -> Result<Url, String> {
    let url = Url::parse(url).map_err(|e| format!("{e} (example: http://127.0.0.1:8000)"))?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err("the URL must be http:// or https://".into());
    }
    Ok(url)
}

impl WatchSettings {
    /// The stream's URL: `{url}/v1/vehicles/{id}/stream` with its query.
    pub fn stream_url(&self) -> Url {
        let mut url = self.url.clone();
        url.path_segments_mut().expect("checked to be a base URL").pop_if_empty().extend([
            "v1",
            "vehicles",
            self.vehicle.as_str(),
            "stream",
        ]);
        {
            let mut query = url.query_pairs_mut();
            if !self.signals.is_empty() {
                query.append_pair("signals", &self.signals.join(","));
            }
            if let Some(interval) = self.min_interval {
                query.append_pair("min_interval_ms", &interval.as_millis().to_string());
            }
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        url
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        watch: WatchSettings,
    }

    fn parse(args: &[&str]) -> Result<WatchSettings, clap::Error> {
        Cli::try_parse_from(std::iter::once("watch").chain(args.iter().copied())).map(|c| c.watch)
    }

    #[test]
    fn the_stream_url_carries_the_vehicle_and_the_options() {
        let settings = parse(&["sim-001"]).unwrap();
        assert_eq!(
            settings.stream_url().as_str(),
            "http://127.0.0.1:8000/v1/vehicles/sim-001/stream"
        );
        let settings = parse(&[
            "car.1",
            "--url",
            "https://fleet.example/base/",
            "--signals",
            "engine_rpm,Vehicle.Speed",
            "--min-interval",
            "250ms",
        ])
        .unwrap();
        assert_eq!(
            settings.stream_url().as_str(),
            "https://fleet.example/base/v1/vehicles/car.1/stream?signals=engine_rpm%2CVehicle.Speed&min_interval_ms=250"
        );
    }

    #[test]
    fn bad_arguments_are_refused_with_a_reason() {
        let err = parse(&["a b"]).err().unwrap().to_string();
        assert!(err.contains("vehicle id"), "{err}");
        let err = parse(&["car", "--url", "ftp://x"]).err().unwrap().to_string();
        assert!(err.contains("http://"), "{err}");
        let err = parse(&["car", "--token", "two words"]).err().unwrap().to_string();
        assert!(err.contains("one word"), "{err}");
    }

    #[test]
    fn a_token_is_never_printed() {
        let settings = parse(&["car", "--token", "s3cret"]).unwrap();
        assert!(!format!("{settings:?}").contains("s3cret"));
    }
}
