//! What streams receive: snapshots, updates in order, skipped states for slow
//! readers, one fetch per burst of touches, `min_interval` and filters.

use super::*;

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
