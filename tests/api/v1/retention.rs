//! Retention: a silent vehicle is forgotten, on Redis by key expiry, in memory
//! by the sweep.

use std::time::Duration;

use super::{accept, assert_never_seen, collect_for, keys, now_millis, vehicle};
use crate::common::{Backend, TestApp, eventually, spawn_app_with};
use serde_json::json;
use tributary::config::ServeSettings;
use tributary::domain::{Reading, SignalName, StampedBy, Timestamp, VehicleId};
use tributary::store::{MemoryStore, Store};

/// `key`'s time to live in milliseconds (`PTTL`).
fn pttl(app: &mut TestApp, key: &str) -> i64 {
    let reply = app.redis().command(&["PTTL", key]);
    reply
        .strip_prefix(':')
        .and_then(|r| r.trim_end().parse().ok())
        .unwrap_or_else(|| panic!("PTTL {key} answered {reply:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_redis_a_vehicle_is_one_key_that_expires_within_the_retention_period() {
    let mut app = spawn_app_with(Backend::Redis, |s| {
        s.retention = Duration::from_secs(3600);
    })
    .await;
    accept(&app, "car-1", &json!({"engine_rpm": 800, "vehicle_speed": 10})).await;
    assert_eq!(keys(&mut app), ["tributary:{car-1}:meta"]);
    // The retention, plus the slack within which a silent vehicle is forgotten
    // (a sixtieth of the retention, at most a minute), as on the memory store.
    let ttl = pttl(&mut app, "tributary:{car-1}:meta");
    assert!(3_600_000 < ttl && ttl <= 3_660_000, "PTTL {ttl}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_redis_any_reading_keeps_all_of_the_vehicles_signals_alive() {
    let mut app = spawn_app_with(Backend::Redis, |s| {
        s.retention = Duration::from_secs(3600);
    })
    .await;
    let key = "tributary:{car-1}:meta";
    accept(&app, "car-1", &json!({"engine_rpm": 800})).await;
    // Age the vehicle as if it were refreshed 30 s ago (the slack is a minute),
    // then send another signal: the expiry is left alone (refreshed at most
    // once per slack), and still outlives the retention period.
    assert_eq!(app.redis().command(&["PEXPIRE", key, "3630000"]), ":1\r\n");
    accept(&app, "car-1", &json!({"vehicle_speed": 10})).await;
    let ttl = pttl(&mut app, key);
    assert!(3_600_000 < ttl && ttl <= 3_630_000, "PTTL {ttl}");

    // Age it as if its last refresh were long ago: then a reading of any one
    // signal refreshes the whole vehicle, the signal it stopped sending too.
    assert_eq!(app.redis().command(&["PEXPIRE", key, "5000"]), ":1\r\n");
    accept(&app, "car-1", &json!({"vehicle_speed": 11})).await;
    let ttl = pttl(&mut app, key);
    assert!(ttl > 3_600_000, "the expiry was not refreshed: PTTL {ttl}");
    let signals = &vehicle(&app, "car-1").await["signals"];
    assert_eq!(signals["engine_rpm"]["total"], 1, "{signals}");
    assert_eq!(signals["vehicle_speed"]["total"], 2, "{signals}");
}

async fn a_vehicle_silent_for_the_retention_period_is_forgotten(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.retention = Duration::from_secs(2)).await;
    accept(&app, "car-1", &json!({"engine_rpm": 800})).await;
    assert_eq!(vehicle(&app, "car-1").await["signals"]["engine_rpm"]["total"], 1);
    eventually(Duration::from_secs(10), "car-1 to be forgotten", || async {
        (app.get("/v1/vehicles/car-1").await.status == 404).then_some(())
    })
    .await;
    assert_never_seen(&app, "car-1").await;
    assert_eq!(
        collect_for(&app, "?vehicle_id=car-1").await,
        json!({"current_engine_temperature": null, "average_engine_temperature": null})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_store_forgets_vehicles_last_seen_before_the_cutoff_and_keeps_the_others() {
    let store = MemoryStore::new(ServeSettings::for_tests().store_limits());
    let now = Timestamp::from_millis(now_millis()).unwrap();
    let hour = 3_600_000_000;
    let cutoff = now.plus_micros(-hour);
    let rpm = SignalName::parse("engine_rpm").unwrap();
    let reading = Reading {
        signal: rpm.clone(),
        at: now.plus_micros(-3 * hour),
        value: 800.0,
        stamped_by: StampedBy::Device,
    };
    let silent = VehicleId::try_from("silent").unwrap();
    let at_cutoff = VehicleId::try_from("at-cutoff").unwrap();
    let active = VehicleId::try_from("active").unwrap();
    for (vehicle, received_at) in
        [(&silent, now.plus_micros(-2 * hour)), (&at_cutoff, cutoff), (&active, now)]
    {
        store.record(vehicle, std::slice::from_ref(&reading), received_at).await.unwrap();
    }
    // The device timestamp is old for all three: only the receive time counts.
    assert_eq!(store.forget_silent_since(cutoff), 1);
    let signals = std::slice::from_ref(&rpm);
    assert_eq!(store.history(&silent, signals).await.unwrap(), None);
    for vehicle in [&at_cutoff, &active] {
        let history = store.history(vehicle, signals).await.unwrap().unwrap();
        assert_eq!(history.signals[&rpm].samples.len(), 1, "{vehicle}");
    }
    assert_eq!(store.forget_silent_since(cutoff), 0);
}

on_both_stores!(a_vehicle_silent_for_the_retention_period_is_forgotten,);
