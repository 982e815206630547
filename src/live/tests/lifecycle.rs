//! A stream's life: the stream limit, shutdown, the last stream leaving,
//! resyncs when the hub falls behind, and subscribing while the store is down.

use super::*;

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
