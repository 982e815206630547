//! The seed's endpoints, grown: `/record` with a vehicle, a timestamp and
//! several signals, and `/collect` for any vehicle, without breaking the seed.

use super::{accept, at, collect_for, signal};
use crate::common::{Backend, spawn_app};
use serde_json::{Value, json};

async fn record_takes_a_vehicle_a_timestamp_and_several_signals(backend: Backend) {
    let app = spawn_app(backend).await;
    for (second, temperature, speed) in [(1, 90, 50), (2, 92, 54)] {
        let answer = app
            .post_record(&json!({
                "vehicle_id": "car-1",
                "timestamp": at(second),
                "engine_temperature": temperature,
                "vehicle_speed": speed,
                "Vehicle.Powertrain.CombustionEngine.Speed": 2000,
            }))
            .await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        assert_eq!(answer.text, r#"{"success":true}"#);
    }
    let expected = json!({
        "current_engine_temperature": 92.0, "average_engine_temperature": 91.0,
        "current_vehicle_speed": 54.0, "average_vehicle_speed": 52.0,
        "current_engine_rpm": 2000.0, "average_engine_rpm": 2000.0,
    });
    assert_eq!(collect_for(&app, "?vehicle_id=car-1").await, expected);
    let posted = app.post_json("/collect", &json!({"vehicle_id": "car-1"})).await;
    assert_eq!(posted.status, 200, "{}", posted.text);
    assert_eq!(posted.json(), expected);
    // Naming the vehicle in both places is fine when they agree.
    let both = app.post_json("/collect?vehicle_id=car-1", &json!({"vehicle_id": "car-1"})).await;
    assert_eq!(both.json(), expected);

    // The same readings through v1, with the device's timestamp.
    let summary = signal(&app, "car-1", "engine_temperature").await;
    assert_eq!(summary["updated_at"], at(2));
    assert_eq!(summary["total"], 2);
    // And the default vehicle saw none of it.
    assert_eq!(
        app.collect().await,
        json!({"current_engine_temperature": null, "average_engine_temperature": null})
    );
}

async fn collect_always_answers_engine_temperature_even_without_data(backend: Backend) {
    let app = spawn_app(backend).await;
    app.post_record(&json!({"vehicle_id": "car-2", "vehicle_speed": 30})).await;
    let expected = json!({
        "current_engine_temperature": null, "average_engine_temperature": null,
        "current_vehicle_speed": 30.0, "average_vehicle_speed": 30.0,
    });
    assert_eq!(collect_for(&app, "?vehicle_id=car-2").await, expected);
    assert_eq!(
        collect_for(&app, "?vehicle_id=never-seen").await,
        json!({"current_engine_temperature": null, "average_engine_temperature": null})
    );
}

async fn collect_refuses_a_query_and_body_that_name_different_vehicles(backend: Backend) {
    let app = spawn_app(backend).await;
    let problem = app
        .post_json("/collect?vehicle_id=car-1", &json!({"vehicle_id": "car-2"}))
        .await
        .assert_problem(422, "name one");
    assert_eq!(problem["errors"][0]["pointer"], "/vehicle_id");
    let problem =
        app.get("/collect?vehicle_id=a%20b").await.assert_problem(422, "not a valid vehicle id");
    assert_eq!(problem["errors"][0]["parameter"], "vehicle_id");
}

async fn collect_ignores_other_query_parameters_such_as_cache_busters(backend: Backend) {
    let app = spawn_app(backend).await;
    accept(&app, "car-1", &json!({"engine_temperature": 71})).await;
    let answer = app.get("/collect?_=1764268317&vehicle_id=car-1").await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.json()["current_engine_temperature"], 71.0);
    let answer = app.get("/collect?_=1764268317").await;
    assert_eq!(answer.json()["current_engine_temperature"], Value::Null);
}

async fn the_default_vehicle_is_the_one_the_seed_speaks_for(backend: Backend) {
    let app = spawn_app(backend).await;
    accept(&app, "default", &json!({"timestamp": at(1), "engine_temperature": 77})).await;
    assert_eq!(
        app.collect().await,
        json!({"current_engine_temperature": 77.0, "average_engine_temperature": 77.0})
    );
    app.post_record(&json!({"engine_temperature": 79})).await;
    let summary = signal(&app, "default", "engine_temperature").await;
    assert_eq!(summary["current"], 79.0, "the server's stamp is newer");
    assert_eq!(summary["average"], 78.0);
    assert_eq!(collect_for(&app, "?vehicle_id=default").await, app.collect().await);
}

on_both_stores!(
    record_takes_a_vehicle_a_timestamp_and_several_signals,
    collect_always_answers_engine_temperature_even_without_data,
    collect_refuses_a_query_and_body_that_name_different_vehicles,
    collect_ignores_other_query_parameters_such_as_cache_busters,
    the_default_vehicle_is_the_one_the_seed_speaks_for,
);
