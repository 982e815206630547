//! The hub over the real memory store and memory feed, on tokio's paused
//! clock: time-based behaviour (min_interval, retries) without sleeping.

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

#[tokio::test(start_paused = true)]
async fn a_vehicle_without_data_starts_with_an_empty_snapshot_then_gets_its_updates_in_order() {
    let f = fixture(10);
    let vehicle = car("car-1");
    let mut stream = f.subscribe(&vehicle).await;
    let first = stream.next().await.unwrap();
    assert_eq!(first, StreamEvent { id: 1, event: LiveEvent::Snapshot(Signals::new()) });

    for (id, value) in [(2, 1000.0), (3, 2000.0)] {
        f.write(&vehicle, "engine_rpm", value).await;
        let StreamEvent { id: got, event: LiveEvent::Update { signals, skipped } } =
            stream.next().await.unwrap()
        else {
            panic!("expected an update");
        };
        assert_eq!((got, skipped), (id, 0));
        assert_eq!(signals.keys().collect::<Vec<_>>(), [&signal("engine_rpm")]);
        assert_eq!(current(&signals, "engine_rpm"), Some(value));
        assert_eq!(signals[&signal("engine_rpm")].unit, "rpm");
    }
    let average = |e: StreamEvent| match e.event {
        LiveEvent::Update { signals, .. } => signals[&signal("engine_rpm")].average,
        other => panic!("expected an update, got {other:?}"),
    };
    f.write(&vehicle, "engine_rpm", 3000.0).await;
    assert_eq!(average(stream.next().await.unwrap()), Some(2000.0));
    assert_eq!(f.metric("tributary_stream_events_sent_total{event=\"update\"}"), 3.0);
    assert_eq!(f.metric("tributary_streams_open"), 1.0);
}

#[tokio::test(start_paused = true)]
async fn a_snapshot_holds_every_signal_with_data_and_later_subscribers_get_their_own() {
    let f = fixture(10);
    let vehicle = car("car-1");
    f.write(&vehicle, "engine_rpm", 900.0).await;
    f.write(&vehicle, "vehicle_speed", 50.0).await;
    let mut early = f.subscribe(&vehicle).await;
    let Some(StreamEvent { event: LiveEvent::Snapshot(signals), .. }) = early.next().await else {
        panic!("expected a snapshot");
    };
    assert_eq!(current(&signals, "engine_rpm"), Some(900.0));
    assert_eq!(current(&signals, "vehicle_speed"), Some(50.0));
    assert_eq!(signals.len(), 2);

    f.write(&vehicle, "vehicle_speed", 60.0).await;
    let mut late = f.subscribe(&vehicle).await;
    let Some(StreamEvent { id: 1, event: LiveEvent::Snapshot(signals) }) = late.next().await else {
        panic!("expected a snapshot");
    };
    assert_eq!(current(&signals, "vehicle_speed"), Some(60.0));
    // The early one sees the change as an update, and nothing twice.
    let Some(StreamEvent { id: 2, event: LiveEvent::Update { signals, .. } }) = early.next().await
    else {
        panic!("expected an update");
    };
    assert_eq!(current(&signals, "vehicle_speed"), Some(60.0));
    assert_eq!(next_within(&mut early).await, None);
    assert_eq!(next_within(&mut late).await, None);
}

#[tokio::test(start_paused = true)]
async fn a_reader_that_falls_behind_gets_the_newest_state_and_how_many_it_skipped() {
    let f = fixture(10);
    let vehicle = car("car-1");
    let mut slow = f.subscribe(&vehicle).await;
    let mut fast = f.subscribe(&vehicle).await;
    slow.next().await.unwrap();
    fast.next().await.unwrap();
    for value in 1..=5 {
        f.write(&vehicle, "engine_rpm", f64::from(value)).await;
        f.write(&vehicle, "vehicle_speed", f64::from(value)).await;
        settle().await;
        // The fast reader keeps up; the slow one does not read at all.
        let Some(StreamEvent { event: LiveEvent::Update { skipped: 0, signals }, .. }) =
            fast.next().await
        else {
            panic!("expected an update with nothing skipped");
        };
        assert_eq!(current(&signals, "engine_rpm"), Some(f64::from(value)));
    }
    let Some(StreamEvent { id: 2, event: LiveEvent::Update { signals, skipped } }) =
        slow.next().await
    else {
        panic!("expected one update");
    };
    assert_eq!(current(&signals, "engine_rpm"), Some(5.0));
    assert_eq!(current(&signals, "vehicle_speed"), Some(5.0));
    assert_eq!(skipped, 8, "4 states of each of 2 signals were merged over");
    assert_eq!(f.metric("tributary_stream_updates_skipped_total"), 8.0);
    assert_eq!(f.metric("tributary_stream_updates_coalesced_total"), 0.0);
    assert_eq!(next_within(&mut slow).await, None);
}

#[tokio::test(start_paused = true)]
async fn a_thousand_streams_that_never_read_hold_one_state_per_signal_each() {
    let f = fixture(10_000);
    let vehicle = car("car-1");
    let mut streams = Vec::new();
    for _ in 0..1000 {
        let mut stream = f.subscribe(&vehicle).await;
        stream.next().await.unwrap();
        streams.push(stream);
    }
    for value in 1..=100 {
        // The write path never waits on a stream: `announce` is not async.
        f.write(&vehicle, "engine_rpm", f64::from(value)).await;
        settle().await;
    }
    let fetches = f.source.calls.load(Ordering::Relaxed);
    assert!(fetches <= 1000 + 100, "{fetches} fetches: one per write, not one per stream");
    for stream in &mut streams {
        let Some(StreamEvent { event: LiveEvent::Update { signals, skipped }, .. }) =
            stream.next().await
        else {
            panic!("expected an update");
        };
        assert_eq!((current(&signals, "engine_rpm"), skipped), (Some(100.0), 99));
    }
    assert_eq!(f.metric("tributary_stream_updates_skipped_total"), 99.0 * 1000.0);
}

#[test]
fn events_bring_a_clients_state_up_to_date() {
    let summary = |current| {
        Arc::new(SignalSummary {
            current: Some(current),
            average: None,
            min: None,
            max: None,
            count: 1,
            total: 1,
            unit: "x".into(),
            updated_at: None,
        })
    };
    let mut state = Signals::from([(signal("engine_rpm"), summary(1.0))]);
    let update = Signals::from([(signal("vehicle_speed"), summary(2.0))]);
    LiveEvent::Update { signals: update, skipped: 0 }.apply_to(&mut state);
    assert_eq!(state.len(), 2);
    let snapshot = Signals::from([(signal("vehicle_speed"), summary(3.0))]);
    LiveEvent::Snapshot(snapshot.clone()).apply_to(&mut state);
    assert_eq!(state, snapshot);
    LiveEvent::Shutdown.apply_to(&mut state);
    assert_eq!(state, snapshot);
}

#[tokio::test(start_paused = true)]
async fn touches_during_a_fetch_cost_one_more_fetch_not_one_each() {
    let f = fixture(10);
    let vehicle = car("car-1");
    let mut stream = f.subscribe(&vehicle).await;
    stream.next().await.unwrap();
    let before = f.source.calls.load(Ordering::Relaxed);
    for value in 1..=200 {
        f.write(&vehicle, "engine_rpm", f64::from(value)).await;
    }
    settle().await;
    let fetches = f.source.calls.load(Ordering::Relaxed) - before;
    assert!((1..=3).contains(&fetches), "{fetches} fetches for 200 touches");
    let Some(StreamEvent { event: LiveEvent::Update { signals, .. }, .. }) = stream.next().await
    else {
        panic!("expected an update");
    };
    assert_eq!(current(&signals, "engine_rpm"), Some(200.0));
}

#[tokio::test(start_paused = true)]
async fn min_interval_sends_at_most_one_update_per_interval_with_the_newest_state() {
    let f = fixture(10);
    let vehicle = car("car-1");
    let interval = Duration::from_millis(250);
    let mut stream = f.hub.subscribe(vehicle.clone(), None, Some(interval)).await.unwrap();
    stream.next().await.unwrap();

    f.write(&vehicle, "engine_rpm", 1.0).await;
    let first = stream.next().await.unwrap();
    let sent_at = Instant::now();
    assert!(matches!(first.event, LiveEvent::Update { skipped: 0, .. }));

    for value in [2.0, 3.0, 4.0] {
        f.write(&vehicle, "engine_rpm", value).await;
        settle().await;
    }
    let Some(StreamEvent { event: LiveEvent::Update { signals, skipped }, .. }) =
        stream.next().await
    else {
        panic!("expected an update");
    };
    assert!(Instant::now() - sent_at >= interval, "sent after {:?}", Instant::now() - sent_at);
    assert_eq!(current(&signals, "engine_rpm"), Some(4.0));
    assert_eq!(skipped, 2);
    assert_eq!(f.metric("tributary_stream_updates_coalesced_total"), 2.0);
    assert_eq!(f.metric("tributary_stream_updates_skipped_total"), 0.0);

    // After a quiet interval, the next change goes at once.
    tokio::time::sleep(interval).await;
    f.write(&vehicle, "engine_rpm", 5.0).await;
    let quiet_since = Instant::now();
    stream.next().await.unwrap();
    assert!(Instant::now() - quiet_since < interval);
}

#[tokio::test(start_paused = true)]
async fn a_filtered_stream_sees_only_its_signals() {
    let f = fixture(10);
    let vehicle = car("car-1");
    f.write(&vehicle, "engine_rpm", 900.0).await;
    f.write(&vehicle, "vehicle_speed", 50.0).await;
    let filter = BTreeSet::from([signal("vehicle_speed")]);
    let mut stream = f.hub.subscribe(vehicle.clone(), Some(filter), None).await.unwrap();
    let Some(StreamEvent { event: LiveEvent::Snapshot(signals), .. }) = stream.next().await else {
        panic!("expected a snapshot");
    };
    assert_eq!(signals.keys().collect::<Vec<_>>(), [&signal("vehicle_speed")]);

    f.write(&vehicle, "engine_rpm", 1000.0).await;
    assert_eq!(next_within(&mut stream).await, None, "an unselected signal sends nothing");
    f.write(&vehicle, "vehicle_speed", 55.0).await;
    let Some(StreamEvent { event: LiveEvent::Update { signals, .. }, .. }) = stream.next().await
    else {
        panic!("expected an update");
    };
    assert_eq!(signals.keys().collect::<Vec<_>>(), [&signal("vehicle_speed")]);
}

#[tokio::test(start_paused = true)]
async fn past_the_stream_limit_subscribing_is_refused_and_the_open_streams_keep_flowing() {
    let f = fixture(2);
    let vehicle = car("car-1");
    let mut first = f.subscribe(&vehicle).await;
    let second = f.subscribe(&car("car-2")).await;
    let refused = f.hub.subscribe(vehicle.clone(), None, None).await.err();
    assert!(
        matches!(refused, Some(SubscribeError::TooManyStreams { limit: 2 })),
        "{:?}",
        refused.map(|e| e.to_string())
    );
    assert_eq!(f.hub.open_streams(), 2);

    first.next().await.unwrap();
    f.write(&vehicle, "engine_rpm", 1.0).await;
    assert!(matches!(first.next().await.unwrap().event, LiveEvent::Update { .. }));

    drop(second);
    assert_eq!(f.hub.open_streams(), 1);
    let _third = f.subscribe(&car("car-3")).await;
    assert_eq!(f.metric("tributary_streams_open"), 2.0);
}

#[tokio::test(start_paused = true)]
async fn shutdown_ends_every_stream_with_a_shutdown_event() {
    let f = fixture(10);
    let vehicle = car("car-1");
    let mut idle = f.subscribe(&vehicle).await;
    let mut behind = f.subscribe(&vehicle).await;
    idle.next().await.unwrap();
    // `behind` has not even read its snapshot: shutdown still comes first.
    let waiting = tokio::spawn(async move {
        let event = idle.next().await;
        (event, idle.next().await)
    });
    settle().await;
    f.shutdown.cancel();
    let (event, after) = waiting.await.unwrap();
    assert_eq!(event, Some(StreamEvent { id: 2, event: LiveEvent::Shutdown }));
    assert_eq!(after, None);
    assert_eq!(behind.next().await, Some(StreamEvent { id: 1, event: LiveEvent::Shutdown }));
    assert_eq!(behind.next().await, None);
    assert_eq!(f.metric("tributary_stream_events_sent_total{event=\"shutdown\"}"), 2.0);

    // As a stream body: it ends.
    let stream = f.subscribe(&vehicle).await.into_stream();
    let events: Vec<StreamEvent> = futures_util::StreamExt::collect(stream).await;
    assert_eq!(events, [StreamEvent { id: 1, event: LiveEvent::Shutdown }]);
}

#[tokio::test(start_paused = true)]
async fn the_last_stream_leaving_unsubscribes_the_feed_from_the_vehicle() {
    let f = fixture(10);
    let vehicle = car("car-1");
    let first = f.subscribe(&vehicle).await;
    let second = f.subscribe(&vehicle).await;
    assert_eq!(f.hub.watched_vehicles(), 1);
    drop(first);
    assert_eq!(f.hub.watched_vehicles(), 1);
    let mut events = f.feed.events();
    f.write(&vehicle, "engine_rpm", 1.0).await;
    assert!(matches!(events.recv().await, Some(FeedEvent::Touched(_))));

    drop(second);
    assert_eq!(f.hub.watched_vehicles(), 0);
    f.write(&vehicle, "engine_rpm", 2.0).await;
    let nothing = tokio::time::timeout(Duration::from_secs(1), events.recv()).await;
    assert!(nothing.is_err(), "announced for an unwatched vehicle: {nothing:?}");

    // Watching it again works from a fresh subscription.
    let mut again = f.subscribe(&vehicle).await;
    let Some(StreamEvent { event: LiveEvent::Snapshot(signals), .. }) = again.next().await else {
        panic!("expected a snapshot");
    };
    assert_eq!(current(&signals, "engine_rpm"), Some(2.0));
    f.write(&vehicle, "engine_rpm", 3.0).await;
    assert!(matches!(again.next().await.unwrap().event, LiveEvent::Update { .. }));
}

#[tokio::test(start_paused = true)]
async fn when_the_hub_falls_behind_its_feed_every_stream_gets_a_fresh_snapshot() {
    let f = fixture(10);
    let vehicle = car("car-1");
    let mut stream = f.subscribe(&vehicle).await;
    stream.next().await.unwrap();
    // Announced without yielding: the hub's receiver overflows.
    let mut at = crate::domain::Clock::new().now().as_micros();
    for value in 0..=FEED_BUFFER {
        at += 1;
        let reading = Reading {
            signal: signal("engine_rpm"),
            at: Timestamp::from_micros(at).unwrap(),
            value: value as f64,
            stamped_by: StampedBy::Device,
        };
        let received = reading.at;
        f.store.record(&vehicle, std::slice::from_ref(&reading), received).await.unwrap();
        f.feed.announce(&vehicle, [&reading.signal]);
    }
    let mut snapshot = None;
    while let Some(event) = next_within(&mut stream).await {
        if let LiveEvent::Snapshot(signals) = event.event {
            snapshot = Some(signals);
        }
    }
    let signals = snapshot.expect("a fresh snapshot after the overflow");
    assert_eq!(current(&signals, "engine_rpm"), Some(FEED_BUFFER as f64));
    assert_eq!(f.metric("tributary_stream_resyncs_total"), 1.0);
}

/// Not paused: a real Redis client's connection attempt is timed.
#[tokio::test]
async fn subscribing_while_the_store_is_down_is_refused_quickly() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("redis://127.0.0.1:{port}");
    let store = crate::store::RedisStore::connect_lazily(
        &url,
        crate::config::ServeSettings::for_tests().store_limits(),
    )
    .unwrap();
    let source = StoreSummaries::new(Arc::new(store), Arc::new(Catalog::builtin()));
    let hub = Hub::new(
        &LiveSettings { max_streams: 1, ..LiveSettings::default() },
        Arc::new(source),
        Arc::new(MemoryFeed::new()),
        CancellationToken::new(),
        LiveMetrics::default(),
    );
    let started = std::time::Instant::now();
    let refused = hub.subscribe(car("car-1"), None, None).await.err();
    assert!(matches!(refused, Some(SubscribeError::Unavailable(_))), "{refused:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    // Its stream permit and its vehicle were given back.
    assert_eq!(hub.open_streams(), 0);
    assert_eq!(hub.watched_vehicles(), 0);
}
