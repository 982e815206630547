//! Prometheus metrics, rendered at `GET /metrics`.
//!
//! Each `Metrics` owns its own recorder rather than installing a global one, so
//! that several services in one process (the tests start dozens) count
//! separately. Fixed series are registered once and kept as handles; series
//! with a label per request (route, status) go through the recorder's registry.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::upkeep::{self, Upkeep};
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Metadata, Recorder, Unit};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

const HTTP_REQUESTS: &str = "tributary_http_requests_total";
const HTTP_DURATION: &str = "tributary_http_request_duration_seconds";
const HTTP_IN_FLIGHT: &str = "tributary_http_requests_in_flight";
const HTTP_CONNECTIONS: &str = "tributary_http_connections_open";
const SHED: &str = "tributary_http_requests_shed_total";
const RATE_LIMITED: &str = "tributary_rate_limited_requests_total";
const READINGS_ACCEPTED: &str = "tributary_readings_accepted_total";
const WRITES_REJECTED: &str = "tributary_write_requests_rejected_total";
const STORE_DURATION: &str = "tributary_store_operation_duration_seconds";
const STORE_ERRORS: &str = "tributary_store_errors_total";
const VEHICLES: &str = "tributary_vehicles";
const BUILD_INFO: &str = "tributary_build_info";

/// The commit this binary was built from: `TRIBUTARY_BUILD_COMMIT` at build
/// time (the Dockerfile passes it), else `unknown`. Cargo rebuilds when the
/// variable changes: `option_env!` is tracked.
pub const BUILD_COMMIT: &str = match option_env!("TRIBUTARY_BUILD_COMMIT") {
    Some(commit) if !commit.is_empty() => commit,
    _ => "unknown",
};
const AUTH_REFUSALS: &str = "tributary_auth_refusals_total";
const LOG_LINES_DROPPED: &str = "tributary_log_lines_dropped_total";

/// Latency buckets, in seconds: from 100 µs (a memory-store request) to 10 s.
const BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    10.0,
];

/// Every metric's name, unit and help text.
const DESCRIPTIONS: [(&str, Unit, &str); 14] = [
    (HTTP_REQUESTS, Unit::Count, "HTTP requests answered, by method, route and status."),
    (HTTP_DURATION, Unit::Seconds, "Time to answer an HTTP request, by method and route."),
    (HTTP_IN_FLIGHT, Unit::Count, "HTTP requests being handled now."),
    (HTTP_CONNECTIONS, Unit::Count, "Open client connections."),
    (SHED, Unit::Count, "Requests answered 503 at once because the in-flight limit was reached."),
    (RATE_LIMITED, Unit::Count, "Write requests refused by a vehicle's rate limit (429)."),
    (READINGS_ACCEPTED, Unit::Count, "Readings stored (one per reading object)."),
    (
        WRITES_REJECTED,
        Unit::Count,
        "Write requests refused, by problem type; a refused request stores none of its readings.",
    ),
    (
        STORE_DURATION,
        Unit::Seconds,
        "Time Redis took, by operation (not kept for the embedded store).",
    ),
    (STORE_ERRORS, Unit::Count, "Store operations that failed, by operation and kind."),
    (VEHICLES, Unit::Count, "Vehicles the store holds (heard from within the retention period)."),
    (BUILD_INFO, Unit::Count, "Always 1; the labels say which version and commit run."),
    (
        AUTH_REFUSALS,
        Unit::Count,
        "Requests refused for their token (401, 400) or its scope (403), by reason.",
    ),
    (
        LOG_LINES_DROPPED,
        Unit::Count,
        "Log lines (access log included) dropped because stderr did not keep up.",
    ),
];

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

/// The service's metrics. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    recorder: PrometheusRecorder,
    /// Handles of the per-request series, by route: registering a series means
    /// building and hashing a labelled key, which is worth doing once per
    /// series rather than once per request.
    /// By matched route (a fixed set), with foldhash: looked up per request.
    http: RwLock<foldhash::HashMap<Box<str>, RouteSeries>>,
    handle: PrometheusHandle,
    in_flight: Gauge,
    connections: Gauge,
    shed: Counter,
    rate_limited: Counter,
    readings_accepted: Counter,
    vehicles: Gauge,
    log_lines_dropped: Counter,
    store_durations: Vec<(&'static str, Histogram)>,
    process: metrics_process::Collector,
}

/// The store operations that are timed, registered up front.
const STORE_OPERATIONS: [&str; 4] = ["record", "history", "ping", "vehicle_count"];

#[derive(Default)]
struct RouteSeries {
    durations: Vec<(&'static str, Histogram)>,
    requests: Vec<(&'static str, u16, Counter)>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
            .expect("the buckets are not empty")
            .build_recorder();
        // Every metric is described through `describe_counter`, whatever its
        // kind: the exporter keys descriptions by name.
        for (name, unit, help) in DESCRIPTIONS.into_iter().chain(crate::live::metrics::DESCRIPTIONS)
        {
            recorder.describe_counter(KeyName::from_const_str(name), Some(unit), help.into());
        }
        let fixed = |name: &'static str| Key::from_static_name(name);
        let build_labels = vec![
            Label::from_static_parts("version", env!("CARGO_PKG_VERSION")),
            Label::from_static_parts("commit", BUILD_COMMIT),
        ];
        recorder.register_gauge(&Key::from_parts(BUILD_INFO, build_labels), &METADATA).set(1.0);
        let process = metrics_process::Collector::default();
        metrics::with_local_recorder(&recorder, || process.describe());
        let inner = Inner {
            in_flight: recorder.register_gauge(&fixed(HTTP_IN_FLIGHT), &METADATA),
            connections: recorder.register_gauge(&fixed(HTTP_CONNECTIONS), &METADATA),
            shed: recorder.register_counter(&fixed(SHED), &METADATA),
            rate_limited: recorder.register_counter(&fixed(RATE_LIMITED), &METADATA),
            readings_accepted: recorder.register_counter(&fixed(READINGS_ACCEPTED), &METADATA),
            vehicles: recorder.register_gauge(&fixed(VEHICLES), &METADATA),
            log_lines_dropped: recorder.register_counter(&fixed(LOG_LINES_DROPPED), &METADATA),
            store_durations: STORE_OPERATIONS
                .iter()
                .map(|&operation| (operation, store_duration(&recorder, operation)))
                .collect(),
            handle: recorder.handle(),
            http: RwLock::default(),
            process,
            recorder,
        };
        Self { inner: Arc::new(inner) }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        // The process series are read now, through this recorder rather than
        // a global one (see the module's header).
        metrics::with_local_recorder(&self.inner.recorder, || self.inner.process.collect());
        self.inner.log_lines_dropped.absolute(crate::telemetry::dropped_lines());
        self.inner.handle.render()
    }

    /// Histogram samples pile up until they are folded into buckets: do that
    /// every few seconds, whether or not anyone scrapes, for as long as these
    /// metrics are in use.
    pub fn upkeep(&self) -> Upkeep {
        upkeep::every(Duration::from_secs(5), &self.inner, |inner| inner.handle.run_upkeep())
    }

    /// Counts and times one request. `method` is one of a fixed set of names
    /// and `route` a route template, so the series stay few.
    pub fn request_finished(
        &self,
        method: &'static str,
        route: &str,
        status: u16,
        elapsed: Duration,
    ) {
        let seconds = elapsed.as_secs_f64();
        {
            let http = self.inner.http.read().expect("never poisoned: no panics inside");
            if let Some(series) = http.get(route) {
                let duration = series.durations.iter().find(|(m, _)| *m == method);
                let requests =
                    series.requests.iter().find(|(m, s, _)| *m == method && *s == status);
                if let (Some((_, duration)), Some((_, _, requests))) = (duration, requests) {
                    duration.record(seconds);
                    requests.increment(1);
                    return;
                }
            }
        }
        // A series not seen before: register it (rare; a few per route).
        let mut http = self.inner.http.write().expect("never poisoned: no panics inside");
        let series = http.entry(route.into()).or_default();
        let labels = || {
            vec![Label::from_static_parts("method", method), Label::new("route", route.to_owned())]
        };
        let recorder = &self.inner.recorder;
        if !series.durations.iter().any(|(m, _)| *m == method) {
            let histogram =
                recorder.register_histogram(&Key::from_parts(HTTP_DURATION, labels()), &METADATA);
            series.durations.push((method, histogram));
        }
        if !series.requests.iter().any(|(m, s, _)| *m == method && *s == status) {
            let mut labels = labels();
            labels.push(Label::new("status", status.to_string()));
            let counter =
                recorder.register_counter(&Key::from_parts(HTTP_REQUESTS, labels), &METADATA);
            series.requests.push((method, status, counter));
        }
        drop(http);
        self.request_finished(method, route, status, elapsed);
    }

    pub fn in_flight(&self) -> &Gauge {
        &self.inner.in_flight
    }

    pub fn connections(&self) -> &Gauge {
        &self.inner.connections
    }

    pub fn shed(&self) {
        self.inner.shed.increment(1);
    }

    pub fn rate_limited(&self) {
        self.inner.rate_limited.increment(1);
    }

    pub fn readings_accepted(&self, count: usize) {
        self.inner.readings_accepted.increment(count as u64);
    }

    pub fn write_rejected(&self, reason: &'static str) {
        let key =
            Key::from_parts(WRITES_REJECTED, vec![Label::from_static_parts("reason", reason)]);
        self.inner.recorder.register_counter(&key, &METADATA).increment(1);
    }

    /// Counts a request refused for its token, by a reason from a small fixed
    /// set (`expired`, `insufficient_scope`, …), never by token or subject.
    pub fn auth_refused(&self, reason: &'static str) {
        let key = Key::from_parts(AUTH_REFUSALS, vec![Label::from_static_parts("reason", reason)]);
        self.inner.recorder.register_counter(&key, &METADATA).increment(1);
    }

    pub fn store_operation(
        &self,
        operation: &'static str,
        elapsed: Duration,
        error: Option<&'static str>,
    ) {
        let recorder = &self.inner.recorder;
        match self.inner.store_durations.iter().find(|(name, _)| *name == operation) {
            Some((_, histogram)) => histogram.record(elapsed.as_secs_f64()),
            None => store_duration(recorder, operation).record(elapsed.as_secs_f64()),
        }
        if let Some(kind) = error {
            let labels = vec![
                Label::from_static_parts("operation", operation),
                Label::from_static_parts("kind", kind),
            ];
            recorder
                .register_counter(&Key::from_parts(STORE_ERRORS, labels), &METADATA)
                .increment(1);
        }
    }

    /// The live streams' metrics, on this recorder.
    pub fn live(&self) -> crate::live::LiveMetrics {
        crate::live::LiveMetrics::register(&self.inner.recorder)
    }

    pub fn set_vehicles(&self, count: u64) {
        self.inner.vehicles.set(count as f64);
    }
}

/// The histogram of one store operation's durations.
fn store_duration(recorder: &PrometheusRecorder, operation: &'static str) -> Histogram {
    let labels = vec![Label::from_static_parts("operation", operation)];
    recorder.register_histogram(&Key::from_parts(STORE_DURATION, labels), &METADATA)
}
