//! `GET /v1/signals` and the catalog file that adds signals to every endpoint.

use super::{accept, at, post_readings, signal};
use crate::common::{Backend, spawn_app, spawn_app_with};
use serde_json::{Value, json};

const BUILTIN_SIGNALS: [(&str, &str, f64, f64, &str); 4] = [
    (
        "engine_temperature",
        "celsius",
        -40.0,
        215.0,
        "Vehicle.Powertrain.CombustionEngine.EngineCoolant.Temperature",
    ),
    ("vehicle_speed", "km/h", 0.0, 500.0, "Vehicle.Speed"),
    ("engine_rpm", "rpm", 0.0, 16_383.75, "Vehicle.Powertrain.CombustionEngine.Speed"),
    ("cabin_temperature", "celsius", -40.0, 100.0, "Vehicle.Cabin.HVAC.AmbientAirTemperature"),
];

fn assert_signal_info(
    info: &Value,
    (name, unit, min, max, vss_path): (&str, &str, f64, f64, &str),
) {
    assert_eq!(info["name"], name, "{info}");
    assert_eq!(info["unit"], unit, "{info}");
    assert_eq!(info["min"].as_f64(), Some(min), "{info}");
    assert_eq!(info["max"].as_f64(), Some(max), "{info}");
    assert_eq!(info["vss_path"], vss_path, "{info}");
    assert!(!info["description"].as_str().unwrap().is_empty(), "{info}");
}

async fn the_signal_list_has_the_four_built_ins(backend: Backend) {
    let app = spawn_app(backend).await;
    let answer = app.get("/v1/signals").await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let list = answer.json();
    let signals = list["signals"].as_array().unwrap();
    assert_eq!(signals.len(), 4, "{list}");
    for (info, expected) in signals.iter().zip(BUILTIN_SIGNALS) {
        assert_signal_info(info, expected);
    }
}

async fn a_catalog_file_adds_a_signal_that_every_endpoint_accepts(backend: Backend) {
    let file = crate::common::battery_voltage_catalog();
    let path = file.path().to_owned();
    let app = spawn_app_with(backend, |s| s.signals = Some(path)).await;

    let list = app.get("/v1/signals").await.json();
    let signals = list["signals"].as_array().unwrap();
    assert_eq!(signals.len(), 5, "{list}");
    for (info, expected) in signals.iter().zip(BUILTIN_SIGNALS) {
        assert_signal_info(info, expected);
    }
    assert_signal_info(
        &signals[4],
        ("battery_voltage", "V", 0.0, 60.0, "Vehicle.LowVoltageBattery.CurrentVoltage"),
    );

    let answer = app.post_record(&json!({"battery_voltage": 12.6})).await;
    assert_eq!(answer.text, r#"{"success":true}"#);
    assert_eq!(
        app.collect().await,
        json!({
            "current_engine_temperature": null, "average_engine_temperature": null,
            "current_battery_voltage": 12.6, "average_battery_voltage": 12.6,
        })
    );
    let body = json!({"timestamp": at(1), "Vehicle.LowVoltageBattery.CurrentVoltage": 13.1});
    assert_eq!(accept(&app, "car-1", &body).await, 1);
    let summary = signal(&app, "car-1", "battery_voltage").await;
    assert_eq!(summary["current"], 13.1);
    assert_eq!(summary["unit"], "V");
    assert_eq!(signal(&app, "car-1", "Vehicle.LowVoltageBattery.CurrentVoltage").await, summary);
    // Its range is enforced like a built-in's.
    post_readings(&app, "car-1", &json!({"battery_voltage": 61}))
        .await
        .assert_problem(422, "0 to 60 V");
    assert_eq!(signal(&app, "car-1", "battery_voltage").await["count"], 1);
}

on_both_stores!(
    the_signal_list_has_the_four_built_ins,
    a_catalog_file_adds_a_signal_that_every_endpoint_accepts,
);
