//! Order and resends: device timestamps decide what is current, and a batch
//! sent again, or in another order, changes nothing.

use super::{accept, at, signal, vehicle, window};
use crate::common::{Backend, spawn_app, spawn_app_with};
use serde_json::{Value, json};

async fn a_late_old_reading_does_not_become_current(backend: Backend) {
    let app = spawn_app(backend).await;
    accept(&app, "car-1", &json!({"timestamp": at(10), "engine_temperature": 90})).await;
    accept(&app, "car-1", &json!({"timestamp": at(5), "engine_temperature": 40})).await;
    let summary = signal(&app, "car-1", "engine_temperature").await;
    assert_eq!(summary["current"], 90.0);
    assert_eq!(summary["updated_at"], at(10));
    assert_eq!(summary["average"], 65.0);
    assert_eq!(window(&app, "car-1", "engine_temperature").await, [(at(10), 90.0), (at(5), 40.0)]);

    // Within one batch, too: arrival order does not matter, timestamps do.
    accept(
        &app,
        "car-2",
        &json!([
            {"timestamp": at(3), "engine_rpm": 3000},
            {"timestamp": at(1), "engine_rpm": 1000},
            {"timestamp": at(2), "engine_rpm": 2000},
        ]),
    )
    .await;
    assert_eq!(
        window(&app, "car-2", "engine_rpm").await,
        [(at(3), 3000.0), (at(2), 2000.0), (at(1), 1000.0)]
    );
}

async fn a_late_reading_older_than_the_whole_window_changes_no_aggregate(backend: Backend) {
    let app = spawn_app(backend).await;
    let batch: Vec<Value> =
        (10..20).map(|s| json!({"timestamp": at(s), "engine_rpm": f64::from(s) * 100.0})).collect();
    accept(&app, "car-1", &Value::Array(batch)).await;
    let before = window(&app, "car-1", "engine_rpm").await;
    accept(&app, "car-1", &json!({"timestamp": at(0), "engine_rpm": 16_000})).await;
    let summary = signal(&app, "car-1", "engine_rpm").await;
    assert_eq!(window(&app, "car-1", "engine_rpm").await, before);
    assert_eq!(summary["count"], 10);
    assert_eq!(summary["max"], 1900.0);
    assert_eq!(
        summary["total"], 10,
        "a device-stamped reading older than a full window may be a resend: accepted, not kept, not counted"
    );
}

async fn the_order_of_readings_within_a_batch_changes_nothing(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.window = 3).await;
    let readings: Vec<Value> =
        (1..=6).map(|s| json!({"timestamp": at(s), "engine_rpm": f64::from(s) * 100.0})).collect();
    let newest_first: Vec<Value> = readings.iter().rev().cloned().collect();
    accept(&app, "oldest-first", &Value::Array(readings)).await;
    accept(&app, "newest-first", &Value::Array(newest_first)).await;
    let a = signal(&app, "oldest-first", "engine_rpm").await;
    let b = signal(&app, "newest-first", "engine_rpm").await;
    assert_eq!(a["total"], 6);
    for field in ["readings", "total", "count", "average"] {
        assert_eq!(a[field], b[field], "{field} differs with the order of the batch");
    }
}

async fn a_resent_batch_changes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let batch = json!([
        {"timestamp": at(1), "engine_rpm": 800, "vehicle_speed": 0},
        {"timestamp": at(2), "engine_rpm": 1200, "vehicle_speed": 12.5},
        {"timestamp": at(3), "engine_rpm": 2400, "vehicle_speed": 30},
    ]);
    assert_eq!(accept(&app, "car-1", &batch).await, 6);
    let signals_before = vehicle(&app, "car-1").await["signals"].clone();
    let rpm_before = signal(&app, "car-1", "engine_rpm").await;
    let speed_before = signal(&app, "car-1", "vehicle_speed").await;
    assert_eq!(rpm_before["total"], 3);

    for _ in 0..3 {
        // The resend is acknowledged like any other, so a device can retry blindly.
        assert_eq!(accept(&app, "car-1", &batch).await, 6);
    }
    // One reading resent alone, too.
    accept(&app, "car-1", &json!({"timestamp": at(2), "engine_rpm": 1200})).await;

    assert_eq!(vehicle(&app, "car-1").await["signals"], signals_before);
    assert_eq!(signal(&app, "car-1", "engine_rpm").await, rpm_before);
    assert_eq!(signal(&app, "car-1", "vehicle_speed").await, speed_before);
}

async fn a_resend_with_a_new_value_for_the_same_timestamp_replaces_it(backend: Backend) {
    let app = spawn_app(backend).await;
    accept(
        &app,
        "car-1",
        &json!([
            {"timestamp": at(1), "engine_rpm": 800},
            {"timestamp": at(2), "engine_rpm": 900},
        ]),
    )
    .await;
    accept(&app, "car-1", &json!({"timestamp": at(1), "engine_rpm": 850})).await;
    let summary = signal(&app, "car-1", "engine_rpm").await;
    assert_eq!(window(&app, "car-1", "engine_rpm").await, [(at(2), 900.0), (at(1), 850.0)]);
    assert_eq!(summary["count"], 2);
    assert_eq!(summary["total"], 2);
    assert_eq!(summary["min"], 850.0);

    // Within one batch the later of two readings with one timestamp wins, even
    // when one names the signal by its VSS path.
    accept(
        &app,
        "car-1",
        &json!([
            {"timestamp": at(2), "engine_rpm": 1000},
            {"timestamp": at(2), "Vehicle.Powertrain.CombustionEngine.Speed": 1100},
        ]),
    )
    .await;
    assert_eq!(window(&app, "car-1", "engine_rpm").await, [(at(2), 1100.0), (at(1), 850.0)]);
    assert_eq!(signal(&app, "car-1", "engine_rpm").await["total"], 2);
}

on_both_stores!(
    a_late_old_reading_does_not_become_current,
    a_late_reading_older_than_the_whole_window_changes_no_aggregate,
    a_resent_batch_changes_nothing,
    the_order_of_readings_within_a_batch_changes_nothing,
    a_resend_with_a_new_value_for_the_same_timestamp_replaces_it,
);
