//! `GET /v1/vehicles/{id}` and `/v1/vehicles/{id}/signals/{signal}`: summaries,
//! windows, names, 404s and per-vehicle isolation.

use super::{accept, assert_never_seen, at, collect_for, now_millis, signal, vehicle, window};
use crate::common::{Backend, spawn_app};
use serde_json::{Value, json};
use tributary::domain::Timestamp;

async fn a_vehicle_summary_has_every_aggregate_of_every_signal_with_data(backend: Backend) {
    let app = spawn_app(backend).await;
    let before = Timestamp::from_millis(now_millis() - 1).unwrap();
    accept(
        &app,
        "car-1",
        &json!([
            {"timestamp": at(1), "engine_temperature": 80, "vehicle_speed": 50},
            {"timestamp": at(3), "engine_temperature": 100},
            {"timestamp": at(2), "engine_temperature": 90},
        ]),
    )
    .await;
    let after = Timestamp::from_millis(now_millis() + 1).unwrap();

    let summary = vehicle(&app, "car-1").await;
    assert_eq!(summary["vehicle_id"], "car-1");
    let last_seen = Timestamp::parse_rfc3339(summary["last_seen"].as_str().unwrap())
        .expect("last_seen is RFC 3339");
    assert!(
        before <= last_seen && last_seen <= after,
        "last_seen is the server's receive time: {summary}"
    );
    assert_eq!(
        summary["signals"],
        json!({
            "engine_temperature": {
                "current": 100.0, "average": 90.0, "min": 80.0, "max": 100.0,
                "count": 3, "total": 3, "unit": "celsius", "updated_at": at(3),
            },
            "vehicle_speed": {
                "current": 50.0, "average": 50.0, "min": 50.0, "max": 50.0,
                "count": 1, "total": 1, "unit": "km/h", "updated_at": at(1),
            },
        }),
        "signals without data are left out"
    );
}

async fn a_vehicle_that_never_sent_anything_is_a_404_problem(backend: Backend) {
    let app = spawn_app(backend).await;
    let problem = app.get("/v1/vehicles/ghost").await.assert_problem(404, "has sent no readings");
    assert_eq!(problem["type"], "urn:tributary:problem:not-found");
    app.get("/v1/vehicles/ghost/signals/engine_rpm")
        .await
        .assert_problem(404, "has sent no readings");
}

async fn the_default_window_keeps_the_newest_ten_and_counts_them_all(backend: Backend) {
    let app = spawn_app(backend).await;
    let batch: Vec<Value> =
        (1..=25).map(|s| json!({"timestamp": at(s), "engine_temperature": f64::from(s)})).collect();
    assert_eq!(accept(&app, "car-1", &Value::Array(batch)).await, 25);
    let summary = signal(&app, "car-1", "engine_temperature").await;
    assert_eq!(summary["count"], 10);
    assert_eq!(summary["total"], 25);
    assert_eq!(summary["current"], 25.0);
    assert_eq!(summary["average"], 20.5);
    assert_eq!(summary["min"], 16.0);
    assert_eq!(summary["max"], 25.0);
    let expected: Vec<(String, f64)> = (16..=25).rev().map(|s| (at(s), f64::from(s))).collect();
    assert_eq!(window(&app, "car-1", "engine_temperature").await, expected);
    let in_summary = &vehicle(&app, "car-1").await["signals"]["engine_temperature"];
    assert_eq!((&in_summary["count"], &in_summary["total"]), (&json!(10), &json!(25)));
}

async fn a_signal_is_read_by_short_name_or_vss_path_newest_first(backend: Backend) {
    let app = spawn_app(backend).await;
    accept(
        &app,
        "car-1",
        &json!([
            {"timestamp": at(1), "vehicle_speed": 10},
            {"timestamp": at(3), "vehicle_speed": 30},
            {"timestamp": at(2), "vehicle_speed": 20},
        ]),
    )
    .await;
    let by_name = signal(&app, "car-1", "vehicle_speed").await;
    assert_eq!(
        by_name,
        json!({
            "vehicle_id": "car-1",
            "signal": "vehicle_speed",
            "readings": [
                {"timestamp": at(3), "value": 30.0},
                {"timestamp": at(2), "value": 20.0},
                {"timestamp": at(1), "value": 10.0},
            ],
            "current": 30.0, "average": 20.0, "min": 10.0, "max": 30.0,
            "count": 3, "total": 3, "unit": "km/h", "updated_at": at(3),
        })
    );
    assert_eq!(signal(&app, "car-1", "Vehicle.Speed").await, by_name);
}

async fn a_known_signal_without_data_is_an_empty_window(backend: Backend) {
    let app = spawn_app(backend).await;
    accept(&app, "car-1", &json!({"engine_rpm": 800})).await;
    assert_eq!(
        signal(&app, "car-1", "cabin_temperature").await,
        json!({
            "vehicle_id": "car-1", "signal": "cabin_temperature", "readings": [],
            "current": null, "average": null, "min": null, "max": null,
            "count": 0, "total": 0, "unit": "celsius", "updated_at": null,
        })
    );
}

async fn an_unknown_signal_is_a_404_problem_listing_the_known_ones(backend: Backend) {
    let app = spawn_app(backend).await;
    accept(&app, "car-1", &json!({"engine_rpm": 800})).await;
    for name in ["oil_pressure", "Vehicle.Nope", "ENGINE_RPM"] {
        app.get(&format!("/v1/vehicles/car-1/signals/{name}"))
            .await
            .assert_problem(404, "known signals: engine_temperature");
    }
    // The signal is checked before the vehicle.
    app.get("/v1/vehicles/ghost/signals/oil_pressure")
        .await
        .assert_problem(404, "there is no signal");
}

async fn vehicles_are_isolated(backend: Backend) {
    let app = spawn_app(backend).await;
    accept(&app, "car-a", &json!({"timestamp": at(1), "engine_rpm": 1000, "vehicle_speed": 40}))
        .await;
    assert_never_seen(&app, "car-b").await;
    accept(&app, "car-b", &json!({"timestamp": at(1), "engine_rpm": 3000})).await;

    let a = vehicle(&app, "car-a").await;
    let b = vehicle(&app, "car-b").await;
    assert_eq!(a["signals"]["engine_rpm"]["current"], 1000.0);
    assert_eq!(a["signals"]["engine_rpm"]["total"], 1);
    assert_eq!(b["signals"]["engine_rpm"]["current"], 3000.0);
    assert_eq!(b["signals"]["engine_rpm"]["total"], 1);
    assert!(b["signals"].get("vehicle_speed").is_none(), "{b}");
    assert_eq!(
        collect_for(&app, "?vehicle_id=car-b").await,
        json!({
            "current_engine_temperature": null, "average_engine_temperature": null,
            "current_engine_rpm": 3000.0, "average_engine_rpm": 3000.0,
        })
    );
    // Ids differ by case: `CAR-A` is another vehicle.
    assert_never_seen(&app, "CAR-A").await;
    assert_never_seen(&app, "default").await;
}

on_both_stores!(
    a_vehicle_summary_has_every_aggregate_of_every_signal_with_data,
    a_vehicle_that_never_sent_anything_is_a_404_problem,
    the_default_window_keeps_the_newest_ten_and_counts_them_all,
    a_signal_is_read_by_short_name_or_vss_path_newest_first,
    a_known_signal_without_data_is_an_empty_window,
    an_unknown_signal_is_a_404_problem_listing_the_known_ones,
    vehicles_are_isolated,
);
