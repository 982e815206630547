//! The live streams' metrics, as handles registered once on the service's
//! recorder.
//!
//! Not the `metrics` macros: they report to the process-wide recorder, and
//! this service gives each instance its own recorder (`crate::metrics`), so
//! that the many services one test process starts count separately.

use metrics::{Counter, Gauge, Key, Label, Metadata, Recorder, Unit};

pub const STREAMS_OPEN: &str = "tributary_streams_open";
pub const EVENTS_SENT: &str = "tributary_stream_events_sent_total";
pub const UPDATES_COALESCED: &str = "tributary_stream_updates_coalesced_total";
pub const UPDATES_SKIPPED: &str = "tributary_stream_updates_skipped_total";
pub const RESYNCS: &str = "tributary_stream_resyncs_total";

/// Every live metric's name, unit and help text, for the recorder's descriptions.
pub const DESCRIPTIONS: [(&str, Unit, &str); 5] = [
    (STREAMS_OPEN, Unit::Count, "Live streams open now."),
    (
        EVENTS_SENT,
        Unit::Count,
        "Events handed to live streams, by event (snapshot, update, shutdown).",
    ),
    (
        UPDATES_COALESCED,
        Unit::Count,
        "Signal states replaced by a newer one while a stream waited out its min_interval.",
    ),
    (
        UPDATES_SKIPPED,
        Unit::Count,
        "Signal states replaced by a newer one because a stream's client read too slowly.",
    ),
    (
        RESYNCS,
        Unit::Count,
        "Fresh snapshots sent to streams because change messages may have been lost.",
    ),
];

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

/// The live metrics' handles. Cheap to clone; [`LiveMetrics::default`] counts nothing.
#[derive(Clone)]
pub struct LiveMetrics {
    pub(super) streams_open: Gauge,
    pub(super) snapshots: Counter,
    pub(super) updates: Counter,
    pub(super) shutdowns: Counter,
    pub(super) coalesced: Counter,
    pub(super) skipped: Counter,
    pub(super) resyncs: Counter,
}

impl Default for LiveMetrics {
    fn default() -> Self {
        Self {
            streams_open: Gauge::noop(),
            snapshots: Counter::noop(),
            updates: Counter::noop(),
            shutdowns: Counter::noop(),
            coalesced: Counter::noop(),
            skipped: Counter::noop(),
            resyncs: Counter::noop(),
        }
    }
}

impl LiveMetrics {
    /// Registers every series on `recorder` (describe them with [`DESCRIPTIONS`]).
    pub fn register(recorder: &impl Recorder) -> Self {
        let key = |name: &'static str| Key::from_static_name(name);
        let sent = |event: &'static str| {
            let labels = vec![Label::from_static_parts("event", event)];
            recorder.register_counter(&Key::from_parts(EVENTS_SENT, labels), &METADATA)
        };
        Self {
            streams_open: recorder.register_gauge(&key(STREAMS_OPEN), &METADATA),
            snapshots: sent("snapshot"),
            updates: sent("update"),
            shutdowns: sent("shutdown"),
            coalesced: recorder.register_counter(&key(UPDATES_COALESCED), &METADATA),
            skipped: recorder.register_counter(&key(UPDATES_SKIPPED), &METADATA),
            resyncs: recorder.register_counter(&key(RESYNCS), &METADATA),
        }
    }
}

#[cfg(test)]
mod tests {
    use metrics_exporter_prometheus::PrometheusBuilder;

    use super::*;

    #[test]
    fn every_series_renders_under_its_documented_name() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let metrics = LiveMetrics::register(&recorder);
        metrics.streams_open.increment(2.0);
        metrics.updates.increment(3);
        metrics.resyncs.increment(1);
        let text = recorder.handle().render();
        assert!(text.contains("tributary_streams_open 2"), "{text}");
        assert!(text.contains("tributary_stream_events_sent_total{event=\"update\"} 3"), "{text}");
        assert!(text.contains("tributary_stream_resyncs_total 1"), "{text}");
    }
}
