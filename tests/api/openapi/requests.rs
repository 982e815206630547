//! What the document says about requests: its examples are accepted, nothing
//! is nullable, catalog signals appear with their ranges, and the documented
//! rules are the parser's.

use std::collections::BTreeSet;

use super::{assert_not_nullable, document, operations, resolve, sample, schema};
use crate::common::{Backend, spawn_app, spawn_app_with};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_body_example_is_accepted() {
    let app = spawn_app(Backend::Memory).await;
    let document = document(&app).await;
    let mut tried = 0;
    for ((method, path), operation) in operations(&document) {
        let Some(content) = operation["requestBody"]["content"].as_object() else {
            continue;
        };
        let body = resolve(&document, &content["application/json"]["schema"]);
        // The body's own examples, and those of each alternative it allows.
        let mut schemas = vec![body];
        for item in body["oneOf"].as_array().into_iter().flatten() {
            schemas.push(resolve(&document, item));
        }
        let examples: Vec<&Value> = schemas
            .iter()
            .flat_map(|s| {
                s.get("example").into_iter().chain(s["examples"].as_array().into_iter().flatten())
            })
            .collect();
        assert!(!examples.is_empty(), "{method} {path} has no example");
        for example in examples {
            let url = app.url(&sample(&path));
            let request = match method.as_str() {
                "POST" => app.client.post(url),
                "GET" => app.client.get(url),
                other => panic!("unexpected method {other}"),
            };
            let answer = app.send(request.json(example)).await;
            assert!(
                answer.status.is_success(),
                "{method} {path} refused its own example {example}: {} {}",
                answer.status,
                answer.text
            );
            tried += 1;
        }
    }
    assert!(tried >= 4, "only {tried} examples");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_request_body_or_parameter_is_nullable() {
    let app = spawn_app(Backend::Memory).await;
    let document = document(&app).await;
    for ((method, path), operation) in operations(&document) {
        let at = format!("{method} {path}");
        for content in
            operation["requestBody"]["content"].as_object().into_iter().flat_map(|c| c.values())
        {
            assert_not_nullable(&document, &content["schema"], &at, &mut BTreeSet::new());
        }
        for parameter in operation["parameters"].as_array().into_iter().flatten() {
            let at = format!("{at} parameter {}", parameter["name"]);
            assert_not_nullable(&document, &parameter["schema"], &at, &mut BTreeSet::new());
        }
    }
    // And the server agrees: `null` is refused wherever the document allows a value.
    app.post_json("/v1/vehicles/car-1/readings", &json!({"engine_rpm": null}))
        .await
        .assert_problem(422, "must be a number");
    app.post_record(&json!({"engine_temperature": 90, "vehicle_id": null}))
        .await
        .assert_problem(422, "must be a string");
    app.post_record(&json!({"engine_temperature": 90, "timestamp": null}))
        .await
        .assert_problem(422, "RFC 3339");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_from_a_catalog_file_are_documented_with_their_ranges() {
    let file = crate::common::battery_voltage_catalog();
    let path = file.path().to_owned();
    let app = spawn_app_with(Backend::Memory, |s| s.signals = Some(path)).await;
    let document = document(&app).await;

    for name in ["ReadingObject", "RecordBody"] {
        let schema = schema(&document, name);
        let battery = &schema["properties"]["battery_voltage"];
        assert_eq!(battery["type"], "number", "{name}: {battery}");
        assert_eq!(battery["minimum"].as_f64(), Some(0.0), "{name}: {battery}");
        assert_eq!(battery["maximum"].as_f64(), Some(60.0), "{name}: {battery}");
        let description = battery["description"].as_str().unwrap();
        assert!(
            description.contains('V')
                && description.contains("Vehicle.LowVoltageBattery.CurrentVoltage"),
            "{description}"
        );
        let by_path = &schema["patternProperties"][r"^Vehicle\.LowVoltageBattery\.CurrentVoltage$"];
        assert_eq!(by_path["maximum"].as_f64(), Some(60.0), "{name}: {schema}");
        // The built-ins are still there.
        assert_eq!(schema["properties"]["engine_temperature"]["maximum"].as_f64(), Some(215.0));
    }
    let collect = schema(&document, "CollectResponse");
    assert!(collect["properties"]["current_battery_voltage"].is_object());

    // The catalog-less document does not list it.
    let builtin = spawn_app(Backend::Memory).await;
    let document = self::document(&builtin).await;
    assert!(schema(&document, "ReadingObject")["properties"]["battery_voltage"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_request_rules_are_the_parsers_rules() {
    let app = spawn_app(Backend::Memory).await;
    let document = document(&app).await;

    // A readings body is one object or an array of 1 to 1000, untagged.
    let body = schema(&document, "ReadingsBody");
    let [one, many] = body["oneOf"].as_array().unwrap().as_slice() else {
        panic!("{body}");
    };
    assert_eq!(one["$ref"], "#/components/schemas/ReadingObject");
    assert_eq!(many["type"], "array");
    assert_eq!(many["items"]["$ref"], "#/components/schemas/ReadingObject");
    assert_eq!((many["minItems"].as_u64(), many["maxItems"].as_u64()), (Some(1), Some(1000)));
    let readings = |n: usize| Value::Array(vec![json!({"engine_rpm": 800}); n]);
    let url = "/v1/vehicles/car-1/readings";
    assert_eq!(app.post_json(url, &readings(1000)).await.status, 200);
    app.post_json(url, &readings(1001)).await.assert_problem(422, "at most 1000");
    app.post_json(url, &readings(0)).await.assert_problem(422, "empty");

    // A reading needs a signal; nothing else is allowed.
    for name in ["ReadingObject", "RecordBody"] {
        let reading = schema(&document, name);
        assert_eq!(reading["minProperties"], 1, "{name}");
        assert_eq!(reading["additionalProperties"], false, "{name}");
    }
    app.post_json(url, &json!({})).await.assert_problem(422, "no signal values");
    app.post_json(url, &json!({"timestamp": 1_764_268_317_000i64}))
        .await
        .assert_problem(422, "no signal values");

    // A timestamp is a date-time string or integer milliseconds.
    let timestamp = schema(&document, "Timestamp");
    let kinds: Vec<(&Value, &Value)> =
        timestamp["oneOf"].as_array().unwrap().iter().map(|s| (&s["type"], &s["format"])).collect();
    assert_eq!(
        kinds,
        [(&json!("string"), &json!("date-time")), (&json!("integer"), &json!("int64"))]
    );
    assert!(timestamp["description"].as_str().unwrap().contains("5 minutes"));
    for at in [json!("2026-01-01T00:00:00Z"), json!(1_767_225_600_000i64)] {
        let answer = app.post_json(url, &json!({"timestamp": at, "engine_rpm": 800})).await;
        assert_eq!(answer.status, 200, "{at}: {}", answer.text);
    }

    // Every vehicle id, in a path, a query or a body, has the id's rule.
    let vehicle_id = schema(&document, "VehicleId");
    assert_eq!(vehicle_id["pattern"], r"^([A-Za-z0-9._-]*[A-Za-z0-9_-][A-Za-z0-9._-]*|\.{3,})$");
    assert_eq!(
        (vehicle_id["minLength"].as_u64(), vehicle_id["maxLength"].as_u64()),
        (Some(1), Some(64))
    );
    for ((method, path), operation) in operations(&document) {
        for parameter in operation["parameters"].as_array().into_iter().flatten() {
            if parameter["name"] == "vehicle_id" {
                assert_eq!(
                    parameter["schema"]["$ref"], "#/components/schemas/VehicleId",
                    "{method} {path}"
                );
            }
        }
    }
    for name in ["RecordBody", "CollectBody"] {
        assert_eq!(
            schema(&document, name)["properties"]["vehicle_id"]["$ref"],
            "#/components/schemas/VehicleId",
            "{name}"
        );
    }
    app.get(&format!("/v1/vehicles/{}", "x".repeat(65)))
        .await
        .assert_problem(422, "not a valid vehicle id");

    // The fleet list's query: a limit of 1 to 1000, a prefix of id characters,
    // a cursor as the service hands them out; the page's schema.
    let list = &operations(&document)[&("GET".to_owned(), "/v1/vehicles".to_owned())];
    let parameter = |name: &str| {
        let parameters = list["parameters"].as_array().unwrap();
        let found =
            parameters.iter().find(|p| p["name"] == name).unwrap_or_else(|| panic!("{name}"));
        assert_eq!((&found["in"], &found["required"]), (&json!("query"), &json!(false)), "{name}");
        found["schema"].clone()
    };
    let limit = parameter("limit");
    assert_eq!(
        (&limit["minimum"], &limit["maximum"], &limit["default"]),
        (&json!(1), &json!(1000), &json!(50))
    );
    assert_eq!(parameter("prefix")["pattern"], "^[A-Za-z0-9._-]{0,64}$");
    assert!(parameter("cursor")["pattern"].is_string());
    let page = schema(&document, "VehicleList");
    assert_eq!(page["required"], json!(["vehicles", "next_cursor"]), "{page}");
    assert_eq!(
        page["properties"]["vehicles"]["items"]["$ref"],
        "#/components/schemas/VehicleListed"
    );
    let listed = schema(&document, "VehicleListed");
    assert_eq!(listed["properties"]["last_seen"]["format"], "date-time", "{listed}");
    assert_eq!(app.get("/v1/vehicles?limit=1000&prefix=car-1").await.status, 200);
    app.get("/v1/vehicles?limit=1001").await.assert_problem(422, "from 1 to 1000");
    app.get("/v1/vehicles?prefix=car%201").await.assert_problem(422, "cannot start a vehicle id");
}
