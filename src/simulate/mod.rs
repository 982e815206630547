//! `tributary simulate`: a fleet of make-believe cars, the embedded team's
//! stand-in, so a person can check the whole path from sensor to app by hand.
//!
//! Each car is its own task: it samples a small seeded model at a fixed rate
//! and posts the readings, stamped with their sample times, to
//! `/v1/vehicles/{id}/readings`. A car sends one request after another, like a
//! device with one connection, so a slow server lowers the achieved rate (the
//! summary line shows it) instead of piling up requests. The model integrates
//! in fixed 0.1 s steps, so its curves are the same at any sampling rate.

mod model;
mod stats;

use model::SplitMix64;
pub use model::{Values, VehicleModel};
pub use stats::Report;
use stats::{Outcome, Stats};

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};

use crate::config::simulate::check;
pub use crate::config::{Compress, MAX_VEHICLES, SimulateSettings};
use crate::domain::VehicleId;

/// How long one request may take before it counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Drives the fleet until `settings.duration` is over or `shutdown` completes,
/// printing a summary line every interval. Each car then sends what it has
/// buffered, and the final summary is printed and returned. Request failures
/// are counted, not returned: the `Err` case is a setup problem.
pub async fn run(
    settings: SimulateSettings,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<Report> {
    let server = check(&settings)?;
    let seed = settings.seed.unwrap_or_else(seed_from_clock);
    let cars = fleet(&server, &settings.prefix, settings.vehicles, seed)?;
    let client = reqwest::Client::builder()
        // Proxy variables in the environment are for the outside world, not this server.
        .no_proxy()
        .timeout(REQUEST_TIMEOUT)
        .pool_max_idle_per_host(settings.vehicles as usize)
        .user_agent(concat!("tributary-simulate/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("cannot build the HTTP client")?;
    let start = Instant::now();
    let shared = Arc::new(Shared {
        client,
        stats: Stats::new(),
        batch: settings.batch as usize,
        compress: settings.compress,
        start,
        start_millis: epoch_millis(SystemTime::now()),
    });
    println!("{}", start_line(&settings, &server, &cars, seed));

    let period = Duration::from_secs_f64(1.0 / settings.rate);
    // Spread the cars' first ticks over one period so they do not all post at once.
    let stagger = period.min(Duration::from_secs(1));
    let (stop, stopped) = watch::channel(false);
    let mut tasks = JoinSet::new();
    for (index, car) in cars.into_iter().enumerate() {
        let first = start + stagger.mul_f64(index as f64 / f64::from(settings.vehicles));
        tasks.spawn(car.drive(shared.clone(), first, period, stopped.clone()));
    }

    let mut summaries =
        tokio::time::interval_at(start + settings.summary_interval, settings.summary_interval);
    summaries.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let deadline = async {
        match settings.duration {
            Some(duration) => tokio::time::sleep_until(start + duration).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(shutdown, deadline);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            () = &mut deadline => break,
            _ = summaries.tick() => {
                println!("{}", shared.stats.interval_line(start.elapsed(), settings.vehicles));
            }
        }
    }
    let _ = stop.send(true);
    // Keep reporting while the cars send what they have buffered: against a
    // server that has stopped answering, that takes up to the request timeout.
    loop {
        tokio::select! {
            joined = tasks.join_next() => match joined {
                Some(joined) => joined.context("a simulated car failed")?,
                None => break,
            },
            _ = summaries.tick() => {
                println!("{}", shared.stats.interval_line(start.elapsed(), settings.vehicles));
            }
        }
    }
    let report = shared.stats.report(settings.vehicles, start.elapsed());
    println!("{report}");
    Ok(report)
}

/// One car of the fleet: its id, where it posts, and its model.
struct Car {
    id: String,
    url: String,
    model: VehicleModel,
}

/// What every car's task shares.
struct Shared {
    /// One client for the fleet, so connections are pooled.
    client: reqwest::Client,
    stats: Stats,
    batch: usize,
    compress: Compress,
    start: Instant,
    /// Wall-clock time at `start`; sample times are offsets from it on the
    /// monotonic clock, so they never jump when the wall clock is adjusted.
    start_millis: i64,
}

/// A reading as posted: the sample time in epoch milliseconds and the values.
#[derive(Debug, Serialize)]
struct Sample {
    timestamp: i64,
    #[serde(flatten)]
    values: Values,
}

fn fleet(server: &str, prefix: &str, vehicles: u32, seed: u64) -> anyhow::Result<Vec<Car>> {
    let width = vehicles.to_string().len().max(3);
    (1..=vehicles)
        .map(|number| {
            let id = format!("{prefix}{number:0width$}");
            VehicleId::try_from(id.as_str()).map_err(anyhow::Error::new)?;
            Ok(Car {
                url: format!("{server}/v1/vehicles/{id}/readings"),
                id,
                model: VehicleModel::new(vehicle_seed(seed, number)),
            })
        })
        .collect()
}

impl Car {
    async fn drive(
        mut self,
        shared: Arc<Shared>,
        first: Instant,
        period: Duration,
        mut stopped: watch::Receiver<bool>,
    ) {
        let mut ticks = tokio::time::interval_at(first, period);
        // After a slow request, sample on the next tick of the grid rather than
        // in a burst: sample times stay evenly spaced and distinct.
        ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut previous = first;
        let mut buffer = Vec::with_capacity(shared.batch);
        loop {
            let tick = tokio::select! {
                biased;
                _ = stopped.wait_for(|&stop| stop) => break,
                tick = ticks.tick() => tick,
            };
            let values = self.model.step((tick - previous).as_secs_f64());
            previous = tick;
            let offset = i64::try_from((tick - shared.start).as_millis()).unwrap_or(i64::MAX);
            buffer.push(Sample { timestamp: shared.start_millis.saturating_add(offset), values });
            if buffer.len() >= shared.batch {
                shared.post(&self.url, &buffer).await;
                buffer.clear();
            }
        }
        if !buffer.is_empty() {
            shared.post(&self.url, &buffer).await;
        }
        tracing::debug!(vehicle = %self.id, "simulated car stopped");
    }
}

impl Shared {
    /// Posts `samples`, as one object when batching is off, compressed if
    /// asked, and counts the outcome.
    async fn post(&self, url: &str, samples: &[Sample]) {
        let json = match samples {
            [one] if self.batch == 1 => serde_json::to_vec(one),
            _ => serde_json::to_vec(samples),
        }
        .expect("samples serialize");
        let (body, encoding) = compress(json, self.compress);
        let mut request = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(encoding) = encoding {
            request = request.header(reqwest::header::CONTENT_ENCODING, encoding);
        }
        let started = Instant::now();
        let outcome = match request.send().await {
            Err(err) => Outcome::Failed(format!("POST {url} failed: {}", transport(&err))),
            Ok(response) => {
                let status = response.status();
                // Reading the whole body lets the connection go back to the pool.
                match response.bytes().await {
                    Err(err) => Outcome::Failed(format!(
                        "POST {url}: the answer broke off: {}",
                        transport(&err)
                    )),
                    Ok(_) if status.is_success() => Outcome::Accepted(started.elapsed()),
                    Ok(body) => Outcome::Refused(
                        started.elapsed(),
                        format!("POST {url} answered {status}: {}", problem_detail(&body)),
                    ),
                }
            }
        };
        if let Some(message) = self.stats.record(samples.len(), outcome) {
            eprintln!("simulate: first error (later ones are only counted): {message}");
        }
    }
}

/// `json` compressed as `how` says, and its `Content-Encoding`.
fn compress(json: Vec<u8>, how: Compress) -> (Vec<u8>, Option<&'static str>) {
    use std::io::Write;
    match how {
        Compress::None => (json, None),
        Compress::Gzip => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(&json).expect("writing to memory");
            (encoder.finish().expect("writing to memory"), Some("gzip"))
        }
        Compress::Zstd => {
            (zstd::bulk::compress(&json, 3).expect("compressing in memory"), Some("zstd"))
        }
    }
}

fn start_line(settings: &SimulateSettings, server: &str, cars: &[Car], seed: u64) -> String {
    let (first, last) = (&cars[0].id, &cars[cars.len() - 1].id);
    let until = match settings.duration {
        Some(duration) => format!("for {}", humantime::format_duration(duration)),
        None => "until Ctrl-C".to_owned(),
    };
    format!(
        "simulating {} cars ({first} to {last}) at {} readings/s each, {} per request, \
         against {} {until} (seed {seed}); watch one with: curl {}/v1/vehicles/{first}",
        settings.vehicles, settings.rate, settings.batch, server, server
    )
}

/// A transport error by its causes ("connection refused" sits a few levels
/// down); reqwest's own message only repeats the URL.
fn transport(err: &reqwest::Error) -> String {
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        causes.push(cause.to_string());
        source = cause.source();
    }
    let mut text = if causes.is_empty() { err.to_string() } else { causes.join(": ") };
    if err.is_timeout() {
        text.push_str(&format!(" (no answer within {REQUEST_TIMEOUT:?})"));
    } else if err.is_connect() {
        text.push_str(" (is `tributary serve` running there?)");
    }
    text
}

/// The `detail` of a problem+json body, else the start of the body.
fn problem_detail(body: &[u8]) -> String {
    let detail = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|problem| problem.get("detail")?.as_str().map(str::to_owned));
    match detail {
        Some(detail) => detail,
        None if body.is_empty() => "(empty body)".to_owned(),
        None => String::from_utf8_lossy(body).chars().take(300).collect(),
    }
}

fn epoch_millis(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |since| i64::try_from(since.as_millis()).unwrap_or(i64::MAX))
}

fn seed_from_clock() -> u64 {
    let nanos =
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_nanos() as u64);
    SplitMix64::new(nanos).next_u64()
}

/// Car `number`'s seed: the same for a given fleet seed however many cars run.
fn vehicle_seed(fleet_seed: u64, number: u32) -> u64 {
    SplitMix64::new(fleet_seed ^ u64::from(number).wrapping_mul(0x9E37_79B9_7F4A_7C15)).next_u64()
}

#[cfg(test)]
mod tests;
