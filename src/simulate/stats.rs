//! What a simulator run tallies (requests, readings, errors, latencies) and
//! how it reports them: a summary line per interval and a last line for the
//! run.

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;

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

pub(super) enum Outcome {
    Accepted(Duration),
    /// Answered, but not with 2xx.
    Refused(Duration, String),
    /// No answer: refused connection, timeout, broken connection.
    Failed(String),
}

/// The counters every car adds to. A std `Mutex`: nothing awaits while it is
/// held, and holding it is a few additions.
pub(super) struct Stats(Mutex<Tally>);

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
    pub(super) fn new() -> Self {
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
    pub(super) fn record(&self, readings: usize, outcome: Outcome) -> Option<String> {
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
    pub(super) fn interval_line(&self, elapsed: Duration, vehicles: u32) -> String {
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

    pub(super) fn report(&self, vehicles: u32, elapsed: Duration) -> Report {
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
