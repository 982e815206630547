use super::*;
use crate::config::ServeSettings;
use crate::store::changes::{Feed, FeedEvent, Touched};

#[tokio::test]
async fn a_write_to_a_watched_vehicle_is_announced_on_the_store_feed() {
    let store = MemoryStore::new(ServeSettings::for_tests().store_limits());
    let feed = store.feed();
    let mut events = feed.events();
    let vehicle = VehicleId::try_from("car-1").unwrap();
    feed.subscribe(&vehicle).await.unwrap();
    let clock = Clock::new();
    let reading = |name: &str| Reading {
        signal: SignalName::parse(name).unwrap(),
        at: clock.now(),
        value: 1.0,
        stamped_by: StampedBy::Device,
    };
    let readings = [reading("vehicle_speed"), reading("engine_rpm")];
    store.record(&vehicle, &readings, clock.now()).await.unwrap();
    let mut signals = vec![readings[1].signal.clone(), readings[0].signal.clone()];
    signals.sort();
    assert_eq!(events.recv().await, Some(FeedEvent::Touched(Touched { vehicle, signals })));
}
