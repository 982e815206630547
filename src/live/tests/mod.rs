//! The hub over the real memory store and memory feed, on tokio's paused
//! clock: time-based behaviour (min_interval, retries) without sleeping.//!
//! Files: this one holds the fixture and helpers; `delivery` what streams
//! receive (snapshots, updates, skipping, `min_interval`, filters);
//! `lifecycle` limits, shutdown, leaving, resyncs and a store that is down.

mod delivery;
mod lifecycle;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::domain::{Catalog, Reading, SignalName, StampedBy, Timestamp, VehicleId};
use crate::store::{MemoryStore, Store, StoreError};

/// `StoreSummaries`, counting its calls.
struct Counted {
    inner: StoreSummaries,
    calls: AtomicUsize,
}

#[async_trait]
impl SummarySource for Counted {
    async fn summaries(
        &self,
        vehicle: &VehicleId,
        signals: Option<&[SignalName]>,
    ) -> Result<BTreeMap<SignalName, SignalSummary>, StoreError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.inner.summaries(vehicle, signals).await
    }
}

struct Fixture {
    store: MemoryStore,
    feed: MemoryFeed,
    hub: Hub,
    source: Arc<Counted>,
    shutdown: CancellationToken,
    metrics: PrometheusHandle,
    next_micros: std::cell::Cell<i64>,
}

fn fixture(max_streams: u32) -> Fixture {
    let store = MemoryStore::new(crate::config::ServeSettings::for_tests().store_limits());
    let feed = MemoryFeed::new();
    let catalog = Arc::new(Catalog::builtin());
    let source = Arc::new(Counted {
        inner: StoreSummaries::new(Arc::new(store.clone()), catalog),
        calls: AtomicUsize::new(0),
    });
    let shutdown = CancellationToken::new();
    let recorder = PrometheusBuilder::new().build_recorder();
    let settings = LiveSettings { max_streams, ..LiveSettings::default() };
    let hub = Hub::new(
        &settings,
        source.clone(),
        Arc::new(feed.clone()),
        shutdown.clone(),
        LiveMetrics::register(&recorder),
    );
    Fixture {
        store,
        feed,
        hub,
        source,
        shutdown,
        metrics: recorder.handle(),
        // Now, by the wall clock: the store's retention sweep forgets old vehicles.
        next_micros: std::cell::Cell::new(crate::domain::Clock::new().now().as_micros()),
    }
}

fn car(id: &str) -> VehicleId {
    VehicleId::try_from(id).unwrap()
}

fn signal(name: &str) -> SignalName {
    SignalName::parse(name).unwrap()
}

impl Fixture {
    /// Stores one reading and announces it, as the memory store will.
    async fn write(&self, vehicle: &VehicleId, name: &str, value: f64) {
        let at = self.next_micros.get();
        self.next_micros.set(at + 1);
        let reading = Reading {
            signal: signal(name),
            at: Timestamp::from_micros(at).unwrap(),
            value,
            stamped_by: StampedBy::Device,
        };
        let received = Timestamp::from_micros(at).unwrap();
        self.store.record(vehicle, std::slice::from_ref(&reading), received).await.unwrap();
        self.feed.announce(vehicle, [&reading.signal]);
    }

    fn metric(&self, series: &str) -> f64 {
        let text = self.metrics.render();
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    }

    async fn subscribe(&self, vehicle: &VehicleId) -> Subscription {
        self.hub.subscribe(vehicle.clone(), None, None).await.unwrap()
    }
}

/// Lets every ready task run (the paused clock moves on only when none is).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

/// The next event, or `None` if none comes within 10 (paused) seconds.
async fn next_within(subscription: &mut Subscription) -> Option<StreamEvent> {
    tokio::time::timeout(Duration::from_secs(10), subscription.next()).await.ok().flatten()
}

fn current(signals: &Signals, name: &str) -> Option<f64> {
    signals.get(&signal(name))?.current
}
