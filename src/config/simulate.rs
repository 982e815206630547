//! The settings of `tributary simulate`, and the checks of settings that did
//! not come through the command line.

use std::ops::RangeInclusive;
use std::time::Duration;

use super::parse_duration;
use crate::domain::vehicle::VEHICLE_ID_RULE;
use crate::domain::{MAX_BATCH, VehicleId};

/// Most cars one simulator runs; ids then have at most five digits.
pub const MAX_VEHICLES: u32 = 10_000;

/// Readings per second a car may be asked for.
pub(crate) const RATES: RangeInclusive<f64> = 0.001..=1000.0;

#[derive(clap::Args, Debug, Clone)]
pub struct SimulateSettings {
    /// Base URL of the Tributary service to drive (plain HTTP).
    #[arg(
        long,
        env = "TRIBUTARY_SIMULATE_SERVER",
        default_value = "http://127.0.0.1:8000",
        value_parser = parse_server
    )]
    pub server: String,
    /// How many cars to simulate.
    #[arg(long, env = "TRIBUTARY_SIMULATE_VEHICLES", default_value_t = 10,
        value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_VEHICLES)))]
    pub vehicles: u32,
    /// Readings per second per car (e.g. `2`, `0.5`; 0.001 to 1000).
    #[arg(long, env = "TRIBUTARY_SIMULATE_RATE", default_value_t = 2.0, value_parser = parse_rate)]
    pub rate: f64,
    /// Readings a car buffers per request: 1 posts each reading as an object,
    /// more post JSON arrays (at most 1000).
    #[arg(long, env = "TRIBUTARY_SIMULATE_BATCH", default_value_t = 1,
        value_parser = clap::value_parser!(u32).range(1..=MAX_BATCH as i64))]
    pub batch: u32,
    /// Compress each request body (`Content-Encoding`), as a car on a metered
    /// cellular link would: `none`, `gzip` or `zstd`.
    #[arg(long, env = "TRIBUTARY_SIMULATE_COMPRESS", value_enum, default_value_t = Compress::None)]
    pub compress: Compress,
    /// Stop after this long (e.g. `30s`, `5m`). Unset: run until Ctrl-C.
    #[arg(long, env = "TRIBUTARY_SIMULATE_DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Vehicle id prefix: the cars are `<prefix>001`, `<prefix>002`, …
    #[arg(
        long,
        env = "TRIBUTARY_SIMULATE_PREFIX",
        default_value = "sim-",
        value_parser = parse_prefix
    )]
    pub prefix: String,
    /// Seed of the cars' curves: the same seed drives the same way again.
    /// Unset: a new seed each run, printed at the start.
    #[arg(long, env = "TRIBUTARY_SIMULATE_SEED")]
    pub seed: Option<u64>,
    /// How often to print a summary line. Its rate and latencies cover the
    /// last interval; its counts, the whole run.
    #[arg(long, env = "TRIBUTARY_SIMULATE_SUMMARY_INTERVAL", default_value = "1s",
        value_parser = parse_duration)]
    pub summary_interval: Duration,
}

/// How the simulator compresses its request bodies.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compress {
    #[default]
    None,
    Gzip,
    Zstd,
}

/// Checks settings that did not come through the command line, and returns
/// the server URL without a trailing slash.
pub(crate) fn check(settings: &SimulateSettings) -> anyhow::Result<String> {
    let server = parse_server(&settings.server)
        .map_err(|e| anyhow::anyhow!("server {:?}: {e}", settings.server))?;
    parse_prefix(&settings.prefix).map_err(|e| anyhow::anyhow!("prefix: {e}"))?;
    anyhow::ensure!(
        (1..=MAX_VEHICLES).contains(&settings.vehicles),
        "vehicles must be from 1 to {MAX_VEHICLES}"
    );
    anyhow::ensure!(
        RATES.contains(&settings.rate),
        "rate must be from 0.001 to 1000 readings per second"
    );
    anyhow::ensure!(
        (1..=MAX_BATCH).contains(&(settings.batch as usize)),
        "batch must be from 1 to {MAX_BATCH}"
    );
    anyhow::ensure!(
        !settings.summary_interval.is_zero() && settings.duration != Some(Duration::ZERO),
        "the summary interval and the duration must be longer than zero"
    );
    Ok(server)
}

pub(crate) fn parse_server(text: &str) -> Result<String, String> {
    let url =
        reqwest::Url::parse(text).map_err(|e| format!("{e} (example: http://127.0.0.1:8000)"))?;
    if url.scheme() != "http" {
        return Err(format!(
            "the scheme is {:?}; this build speaks plain http:// only",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("the URL names no host (example: http://127.0.0.1:8000)".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("the URL must not have a query or fragment".into());
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

pub(crate) fn parse_rate(text: &str) -> Result<f64, String> {
    let rate: f64 =
        text.parse().map_err(|_| format!("{text:?} is not a number (examples: 2, 0.5, 50)"))?;
    if !RATES.contains(&rate) {
        return Err("must be from 0.001 to 1000 readings per second".into());
    }
    Ok(rate)
}

pub(crate) fn parse_prefix(text: &str) -> Result<String, String> {
    // The longest id this prefix can begin.
    let longest = format!("{text}{MAX_VEHICLES}");
    VehicleId::try_from(longest.as_str())
        .map(|_| text.to_owned())
        .map_err(|_| format!("ids such as {longest:?} would not be valid: {VEHICLE_ID_RULE}"))
}
