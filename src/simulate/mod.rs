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

use model::SplitMix64;
pub use model::{Values, VehicleModel};

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};

use crate::config::simulate::check;
pub use crate::config::{MAX_VEHICLES, SimulateSettings};
use crate::domain::VehicleId;

/// How long one request may take before it counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What a run did, also printed as its last line.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub vehicles: u32,
    pub elapsed: Duration,
    /// Readings in requests the server answered with 2xx.
    pub sent_readings: u64,
    pub requests: u64,
    /// Requests answered with a non-2xx status or not answered at all.
    pub errors: u64,
    /// Request latencies in µs, over the requests that got an answer; 0 when none did.
    pub p50_us: u64,
    /// 99th percentile, µs.
    pub p99_us: u64,
    /// Slowest answer, µs.
    pub max_us: u64,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rate = per_second(self.sent_readings, self.elapsed);
        write!(
            f,
            "done: t={} vehicles={} sent={} ({rate:.1}/s) requests={} errors={} {}",
            seconds(self.elapsed),
            self.vehicles,
            self.sent_readings,
            self.requests,
            self.errors,
            latencies(self.p50_us, self.p99_us, self.max_us),
        )
    }
}

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
    /// Posts `samples`, as one object when batching is off, and counts the outcome.
    async fn post(&self, url: &str, samples: &[Sample]) {
        let request = match samples {
            [one] if self.batch == 1 => self.client.post(url).json(one),
            _ => self.client.post(url).json(samples),
        };
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

enum Outcome {
    Accepted(Duration),
    /// Answered, but not with 2xx.
    Refused(Duration, String),
    /// No answer: refused connection, timeout, broken connection.
    Failed(String),
}

/// The counters every car adds to. A std `Mutex`: nothing awaits while it is
/// held, and holding it is a few additions.
struct Stats(Mutex<Tally>);

struct Tally {
    sent: u64,
    requests: u64,
    errors: u64,
    first_error_shown: bool,
    latency: Histogram<u64>,
    /// Since the last summary line.
    recent_latency: Histogram<u64>,
    recent_sent: u64,
    last_line: Duration,
}

impl Stats {
    fn new() -> Self {
        let histogram = || {
            // 1 µs to 1 minute at 3 significant digits: a few tens of kB.
            Histogram::new_with_bounds(1, 60_000_000, 3).expect("the bounds are valid")
        };
        Self(Mutex::new(Tally {
            sent: 0,
            requests: 0,
            errors: 0,
            first_error_shown: false,
            latency: histogram(),
            recent_latency: histogram(),
            recent_sent: 0,
            last_line: Duration::ZERO,
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tally> {
        // The counters stay meaningful even if a car panicked mid-update.
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts one request; returns the error message if it is the first error.
    fn record(&self, readings: usize, outcome: Outcome) -> Option<String> {
        let mut tally = self.lock();
        tally.requests += 1;
        let (latency, error) = match outcome {
            Outcome::Accepted(latency) => {
                tally.sent += readings as u64;
                tally.recent_sent += readings as u64;
                (Some(latency), None)
            }
            Outcome::Refused(latency, message) => (Some(latency), Some(message)),
            Outcome::Failed(message) => (None, Some(message)),
        };
        if let Some(latency) = latency {
            let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX).max(1);
            tally.latency.saturating_record(micros);
            tally.recent_latency.saturating_record(micros);
        }
        let error = error?;
        tally.errors += 1;
        let first = !std::mem::replace(&mut tally.first_error_shown, true);
        first.then_some(error)
    }

    /// The live summary line, which starts a new interval.
    fn interval_line(&self, elapsed: Duration, vehicles: u32) -> String {
        let mut tally = self.lock();
        let rate = per_second(tally.recent_sent, elapsed.saturating_sub(tally.last_line));
        let recent = &tally.recent_latency;
        let line = format!(
            "t={} vehicles={vehicles} sent={} ({rate:.1}/s) errors={} {}",
            seconds(elapsed),
            tally.sent,
            tally.errors,
            latencies(recent.value_at_quantile(0.5), recent.value_at_quantile(0.99), recent.max()),
        );
        tally.recent_latency.reset();
        tally.recent_sent = 0;
        tally.last_line = elapsed;
        line
    }

    fn report(&self, vehicles: u32, elapsed: Duration) -> Report {
        let tally = self.lock();
        Report {
            vehicles,
            elapsed,
            sent_readings: tally.sent,
            requests: tally.requests,
            errors: tally.errors,
            p50_us: tally.latency.value_at_quantile(0.5),
            p99_us: tally.latency.value_at_quantile(0.99),
            max_us: tally.latency.max(),
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

fn per_second(count: u64, over: Duration) -> f64 {
    if over.is_zero() { 0.0 } else { count as f64 / over.as_secs_f64() }
}

/// `12s`, or `12.5s` when not a whole second.
fn seconds(duration: Duration) -> String {
    let tenths = (duration.as_secs_f64() * 10.0).round() as u64;
    if tenths.is_multiple_of(10) {
        format!("{}s", tenths / 10)
    } else {
        format!("{}.{}s", tenths / 10, tenths % 10)
    }
}

fn latencies(p50_us: u64, p99_us: u64, max_us: u64) -> String {
    if max_us == 0 {
        return "p50=- p99=- max=-".to_owned();
    }
    let ms = |us: u64| {
        let ms = us as f64 / 1000.0;
        if ms < 1.0 { format!("{ms:.2}ms") } else { format!("{ms:.1}ms") }
    };
    format!("p50={} p99={} max={}", ms(p50_us), ms(p99_us), ms(max_us))
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
mod tests {
    use clap::Parser;
    use serde_json::json;

    use super::*;
    use crate::domain::{Catalog, Clock};
    use crate::http::v1::wire::parse_batch;
    use crate::http::wire::ParseContext;

    /// Samples `car` every `dt` seconds for `seconds` of simulated time.
    #[test]
    fn a_sample_is_a_reading_the_server_accepts() {
        let values = VehicleModel::new(1).step(0.0);
        let now = epoch_millis(SystemTime::now());
        let single = serde_json::to_value(Sample { timestamp: now, values }).unwrap();
        assert_eq!(single["timestamp"], json!(now));
        assert_eq!(single["engine_rpm"], json!(values.engine_rpm));
        let batch = serde_json::to_value([
            Sample { timestamp: now, values },
            Sample { timestamp: now + 500, values },
        ])
        .unwrap();
        let (catalog, clock) = (Catalog::builtin(), Clock::new());
        let ctx = ParseContext { catalog: &catalog, clock: &clock };
        assert_eq!(parse_batch(&single, &ctx).unwrap().len(), 4);
        let readings = parse_batch(&batch, &ctx).unwrap();
        assert_eq!(readings.len(), 8);
        assert_eq!(readings[0].at.as_millis(), now);
        assert_eq!(readings[7].at.as_millis(), now + 500);
    }

    #[test]
    fn cars_are_numbered_with_the_prefix_and_keep_their_curves_as_the_fleet_grows() {
        let small = fleet("http://h:1", "sim-", 10, 5).unwrap();
        let ids: Vec<_> = small.iter().map(|car| car.id.as_str()).collect();
        assert_eq!(ids[0], "sim-001");
        assert_eq!(ids[9], "sim-010");
        assert_eq!(small[0].url, "http://h:1/v1/vehicles/sim-001/readings");
        let large = fleet("http://h:1", "", 1000, 5).unwrap();
        assert_eq!((large[0].id.as_str(), large[999].id.as_str()), ("0001", "1000"));
        let (mut a, mut b) = (small[3].model.clone(), large[3].model.clone());
        assert_eq!(a.step(60.0), b.step(60.0));
    }

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        settings: SimulateSettings,
    }

    fn parse(args: &[&str]) -> Result<SimulateSettings, String> {
        Cli::try_parse_from(std::iter::once("simulate").chain(args.iter().copied()))
            .map(|cli| cli.settings)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_defaults_simulate_ten_cars_against_a_local_server() {
        let settings = parse(&[]).unwrap();
        assert_eq!(settings.server, "http://127.0.0.1:8000");
        assert_eq!((settings.vehicles, settings.rate, settings.batch), (10, 2.0, 1));
        assert_eq!(settings.duration, None);
        assert_eq!(settings.prefix, "sim-");
        assert_eq!(settings.summary_interval, Duration::from_secs(1));
        let settings = parse(&[
            "--server=http://tributary:8000/",
            "--vehicles=3",
            "--rate=0.5",
            "--batch=20",
            "--duration=1m",
            "--prefix=bench.",
            "--seed=9",
            "--summary-interval=500ms",
        ])
        .unwrap();
        assert_eq!(settings.server, "http://tributary:8000");
        assert_eq!(settings.duration, Some(Duration::from_secs(60)));
        assert_eq!(settings.seed, Some(9));
    }

    #[test]
    fn bad_settings_are_refused_with_a_reason() {
        let cases: [(&[&str], &str); 11] = [
            (&["--rate=0"], "0.001 to 1000"),
            (&["--rate=fast"], "not a number"),
            (&["--rate=NaN"], "0.001 to 1000"),
            (&["--batch=0"], "1..=1000"),
            (&["--batch=1001"], "1..=1000"),
            (&["--vehicles=0"], "1..=10000"),
            (&["--prefix=a b"], "vehicle id"),
            (&["--server=https://tributary.example"], "plain http"),
            (&["--server=localhost:8000"], "plain http"),
            (&["--server=http://h:1/?x=1"], "query"),
            (&["--duration=0s"], "longer than zero"),
        ];
        for (args, expected) in cases {
            let err = parse(args).expect_err(&format!("{args:?}"));
            assert!(err.contains(expected), "{args:?}: {err}");
        }
    }

    #[tokio::test]
    async fn settings_built_in_code_are_checked_too() {
        let good = parse(&["--duration=1s"]).unwrap();
        assert_eq!(check(&good).unwrap(), "http://127.0.0.1:8000");
        type Spoil = fn(&mut SimulateSettings);
        let cases: [(Spoil, &str); 6] = [
            (|s| s.rate = 0.0, "rate"),
            (|s| s.vehicles = 0, "vehicles"),
            (|s| s.batch = 1001, "batch"),
            (|s| s.summary_interval = Duration::ZERO, "longer than zero"),
            (|s| s.prefix = "a/".into(), "prefix"),
            (|s| s.server = "ftp://h".into(), "server"),
        ];
        for (spoil, expected) in cases {
            let mut settings = good.clone();
            spoil(&mut settings);
            let err = run(settings, std::future::ready(())).await.unwrap_err();
            assert!(err.to_string().contains(expected), "{err}");
        }
    }

    #[test]
    fn the_summary_counts_readings_errors_and_recent_latency() {
        let stats = Stats::new();
        assert!(stats.record(5, Outcome::Accepted(Duration::from_micros(800))).is_none());
        assert_eq!(
            stats.record(1, Outcome::Refused(Duration::from_millis(2), "422: bad".into())),
            Some("422: bad".to_owned())
        );
        assert!(stats.record(1, Outcome::Failed("refused".into())).is_none());
        let line = stats.interval_line(Duration::from_secs(2), 3);
        assert!(line.starts_with("t=2s vehicles=3 sent=5 (2.5/s) errors=2 p50=0.80ms"), "{line}");
        let line = stats.interval_line(Duration::from_millis(2500), 3);
        assert!(line.ends_with("(0.0/s) errors=2 p50=- p99=- max=-"), "{line}");
        let report = stats.report(3, Duration::from_secs(5));
        assert_eq!((report.sent_readings, report.requests, report.errors), (5, 3, 2));
        assert!(report.max_us >= 2000 && report.p50_us >= 800, "{report:?}");
        assert!(report.to_string().starts_with("done: t=5s vehicles=3 sent=5 (1.0/s)"));
    }

    #[test]
    fn problem_details_are_shown_as_their_detail() {
        let body = br#"{"type":"about:blank","title":"Invalid","status":422,"detail":"engine_rpm is out of range"}"#;
        assert_eq!(problem_detail(body), "engine_rpm is out of range");
        assert_eq!(problem_detail(b"Bad Gateway"), "Bad Gateway");
        assert_eq!(problem_detail(b""), "(empty body)");
    }
}
