//! The Redis live feed against a real `redis-server`: change messages
//! published by the write script or another connection arrive; a vehicle's channel is subscribed
//! only while someone watches it; and after Redis is SIGKILLed and restarted,
//! the feed resubscribes by itself and asks for fresh snapshots.

use std::sync::Arc;
use std::time::Duration;

use crate::common::faults::TcpProxy;
use crate::common::{RedisServer, eventually};
use tokio_util::sync::CancellationToken;
use tributary::config::ServeSettings;
use tributary::domain::{Catalog, Clock, Reading, SignalName, StampedBy, VehicleId};
use tributary::live::{
    Feed, FeedEvent, FeedEvents, Hub, LiveEvent, LiveMetrics, LiveSettings, RedisFeed, Resync,
    Signals, StoreSummaries, Subscription, Touched, channel,
};
use tributary::store::{RedisStore, Store};

const DEADLINE: Duration = Duration::from_secs(15);
const TIMEOUT: Duration = Duration::from_secs(1);

fn car(id: &str) -> VehicleId {
    VehicleId::try_from(id).unwrap()
}

fn signal(name: &str) -> SignalName {
    SignalName::parse(name).unwrap()
}

/// The last integer of a RESP reply (`:1`, or the count in a `SHARDNUMSUB` array).
fn last_integer(reply: &str) -> i64 {
    reply
        .lines()
        .rev()
        .find_map(|line| line.strip_prefix(':')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no integer in {reply:?}"))
}

/// How many connections subscribe to `vehicle`'s channel.
fn subscribers(redis: &RedisServer, vehicle: &VehicleId) -> i64 {
    last_integer(&redis.command(&["PUBSUB", "SHARDNUMSUB", &channel(vehicle)]))
}

/// Publishes as the write script will, from another connection; returns how
/// many subscribers received it.
fn publish(redis: &RedisServer, vehicle: &VehicleId, payload: &str) -> i64 {
    last_integer(&redis.command(&["SPUBLISH", &channel(vehicle), payload]))
}

async fn next_event(events: &mut FeedEvents) -> FeedEvent {
    tokio::time::timeout(DEADLINE, events.recv())
        .await
        .expect("no feed event within the deadline")
        .expect("the feed closed")
}

/// Subscribes, retrying while the feed is still connecting.
async fn subscribe(feed: &RedisFeed, vehicle: &VehicleId) {
    eventually(DEADLINE, "the feed to subscribe", || async { feed.subscribe(vehicle).await.ok() })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_published_by_another_connection_reaches_the_feed() {
    let redis = RedisServer::start();
    let feed = RedisFeed::start(&redis.url(), TIMEOUT).unwrap();
    let mut events = feed.events();
    let vehicle = car("car-1");
    subscribe(&feed, &vehicle).await;
    assert!(feed.is_connected());

    assert_eq!(publish(&redis, &vehicle, "engine_rpm vehicle_speed"), 1);
    assert_eq!(
        next_event(&mut events).await,
        FeedEvent::Touched(Touched {
            vehicle: vehicle.clone(),
            signals: vec![signal("engine_rpm"), signal("vehicle_speed")],
        })
    );

    // Nobody here watches another vehicle: Redis sends it nowhere.
    assert_eq!(publish(&redis, &car("car-2"), "engine_rpm"), 0);
    // A payload this version cannot read means "anything may have changed".
    assert_eq!(publish(&redis, &vehicle, ""), 1);
    assert_eq!(next_event(&mut events).await, FeedEvent::Resync(Resync::Vehicles(vec![vehicle])));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_write_script_publishes_the_signals_it_wrote_and_only_after_storing_them() {
    let redis = RedisServer::start();
    let feed = RedisFeed::start(&redis.url(), TIMEOUT).unwrap();
    let mut events = feed.events();
    let vehicle = car("car-1");
    subscribe(&feed, &vehicle).await;
    let store = RedisStore::connect_lazily(&redis.url(), ServeSettings::for_tests().store_limits())
        .unwrap();
    let clock = Clock::new();
    let readings: Vec<Reading> = ["vehicle_speed", "engine_rpm", "vehicle_speed"]
        .iter()
        .enumerate()
        .map(|(i, name)| Reading {
            signal: signal(name),
            at: clock.now().plus_micros(i as i64),
            value: 10.0,
            stamped_by: StampedBy::Device,
        })
        .collect();
    store.record(&vehicle, &readings, clock.now()).await.unwrap();
    assert_eq!(
        next_event(&mut events).await,
        FeedEvent::Touched(Touched {
            vehicle: vehicle.clone(),
            signals: vec![signal("engine_rpm"), signal("vehicle_speed")],
        })
    );
    // A write refused by Redis (here: the vehicle's meta key of the wrong
    // type) stores nothing and announces nothing.
    redis.command(&["SET", "tributary:{car-1}:meta", "x"]);
    assert!(store.record(&vehicle, &readings, clock.now()).await.is_err());
    assert_eq!(publish(&redis, &vehicle, "engine_rpm"), 1);
    assert_eq!(
        next_event(&mut events).await,
        FeedEvent::Touched(Touched { vehicle, signals: vec![signal("engine_rpm")] }),
        "the refused write announced nothing before this"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_channel_is_subscribed_while_a_stream_watches_and_unsubscribed_when_the_last_leaves() {
    let redis = RedisServer::start();
    let hub = redis_hub(&redis, CancellationToken::new());
    let vehicle = car("car-1");
    let first = open(&hub, &vehicle).await;
    let second = open(&hub, &vehicle).await;
    assert_eq!(subscribers(&redis, &vehicle), 1, "one connection for all the streams");

    drop(first);
    assert_eq!(subscribers(&redis, &vehicle), 1);
    drop(second);
    eventually(DEADLINE, "the channel to lose its subscriber", || async {
        (subscribers(&redis, &vehicle) == 0).then_some(())
    })
    .await;

    // And again from scratch.
    let _again = open(&hub, &vehicle).await;
    assert_eq!(subscribers(&redis, &vehicle), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_redis_is_killed_and_restarted_the_feed_resubscribes_by_itself_and_resyncs() {
    let mut redis = RedisServer::start();
    let feed = RedisFeed::start(&redis.url(), TIMEOUT).unwrap();
    let mut events = feed.events();
    let vehicle = car("car-1");
    subscribe(&feed, &vehicle).await;

    redis.kill();
    eventually(DEADLINE, "the feed to notice", || async { (!feed.is_connected()).then_some(()) })
        .await;
    redis.restart();
    assert_eq!(next_event(&mut events).await, FeedEvent::Resync(Resync::All));
    assert!(feed.is_connected());
    assert_eq!(subscribers(&redis, &vehicle), 1);
    assert_eq!(publish(&redis, &vehicle, "engine_rpm"), 1);
    assert!(matches!(next_event(&mut events).await, FeedEvent::Touched(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_goes_silent_is_replaced_and_the_streams_resynced() {
    let redis = RedisServer::start();
    let proxy = TcpProxy::start(redis.port).await;
    let feed = RedisFeed::start(&proxy.url(), TIMEOUT).unwrap();
    let mut events = feed.events();
    let vehicle = car("car-1");
    subscribe(&feed, &vehicle).await;

    // The path to Redis stops answering, with the socket still open: no
    // error arrives, only the unanswered PING tells.
    proxy.stall();
    eventually(DEADLINE, "the feed to give the connection up", || async {
        (!feed.is_connected()).then_some(())
    })
    .await;
    proxy.forward_new_connections();
    assert_eq!(next_event(&mut events).await, FeedEvent::Resync(Resync::All));
    assert!(proxy.connections() >= 2, "a new connection was made");
    // The new connection is subscribed. Redis may still count the stalled one
    // too (until its output buffer limit or the proxy's close cuts it), so the
    // count is 1 or 2 depending on timing: only the new one matters here.
    let receivers = publish(&redis, &vehicle, "engine_rpm");
    assert!((1..=2).contains(&receivers), "{receivers} subscribers received it");
    assert!(matches!(next_event(&mut events).await, FeedEvent::Touched(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_gets_a_fresh_snapshot_after_redis_returns_and_then_what_is_written() {
    let mut redis = RedisServer::start();
    let hub = redis_hub(&redis, CancellationToken::new());
    let store = RedisStore::connect_lazily(&redis.url(), ServeSettings::for_tests().store_limits())
        .unwrap();
    let vehicle = car("car-1");
    let mut stream = open(&hub, &vehicle).await;
    assert_eq!(stream.next().await.unwrap().event, LiveEvent::Snapshot(Signals::new()));

    redis.kill();
    redis.restart();
    // Written (and so announced by the write script) as soon as Redis
    // answers: before or after the feed is back, the stream must show it.
    eventually(DEADLINE, "a write to succeed", || async {
        write(&store, &vehicle, 77.0).await.then_some(())
    })
    .await;

    let deadline = tokio::time::Instant::now() + DEADLINE;
    let (mut state, mut snapshots) = (Signals::new(), 0);
    while snapshots == 0 || state.get(&signal("engine_rpm")).and_then(|s| s.current) != Some(77.0) {
        let event = tokio::time::timeout_at(deadline, stream.next())
            .await
            .unwrap_or_else(|_| panic!("after {snapshots} snapshots, the stream shows {state:?}"))
            .expect("the stream ended");
        match event.event {
            LiveEvent::Snapshot(signals) => (state, snapshots) = (signals, snapshots + 1),
            LiveEvent::Update { signals, .. } => state.extend(signals),
            LiveEvent::Shutdown => panic!("shut down"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_redis_backed_streams() {
    let redis = RedisServer::start();
    let shutdown = CancellationToken::new();
    let hub = redis_hub(&redis, shutdown.clone());
    let mut stream = open(&hub, &car("car-1")).await;
    stream.next().await.unwrap();
    shutdown.cancel();
    assert_eq!(stream.next().await.unwrap().event, LiveEvent::Shutdown);
    assert_eq!(stream.next().await, None);
}

/// A hub over a Redis store and a Redis feed, as the service will build it.
fn redis_hub(redis: &RedisServer, shutdown: CancellationToken) -> Hub {
    let store = RedisStore::connect_lazily(&redis.url(), ServeSettings::for_tests().store_limits())
        .unwrap();
    let source = StoreSummaries::new(Arc::new(store), Arc::new(Catalog::builtin()));
    let feed = RedisFeed::start(&redis.url(), TIMEOUT).unwrap();
    Hub::new(
        &LiveSettings::default(),
        Arc::new(source),
        Arc::new(feed),
        shutdown,
        LiveMetrics::default(),
    )
}

/// Opens a stream, retrying while the feed is still connecting.
async fn open(hub: &Hub, vehicle: &VehicleId) -> Subscription {
    eventually(DEADLINE, "a stream to open", || async {
        hub.subscribe(vehicle.clone(), None, None).await.ok()
    })
    .await
}

/// Stores one engine_rpm reading; whether it was stored.
async fn write(store: &RedisStore, vehicle: &VehicleId, value: f64) -> bool {
    let clock = Clock::new();
    let reading = Reading {
        signal: signal("engine_rpm"),
        at: clock.now(),
        value,
        stamped_by: StampedBy::Device,
    };
    store.record(vehicle, std::slice::from_ref(&reading), clock.now()).await.is_ok()
}
