//! `GET /openapi.json` against the running server: the document and the router
//! agree, its examples are accepted, its schemas follow the signal catalog, and
//! what it says about requests is what the parser enforces.

use std::collections::{BTreeMap, BTreeSet};

use crate::common::{Answer, Backend, TestApp, spawn_app, spawn_app_with};
use serde_json::{Value, json};

/// What the service serves, by method and path template.
const SERVED: [(&str, &str); 10] = [
    ("POST", "/record"),
    ("GET", "/collect"),
    ("POST", "/collect"),
    ("POST", "/v1/vehicles/{vehicle_id}/readings"),
    ("GET", "/v1/vehicles/{vehicle_id}"),
    ("GET", "/v1/vehicles/{vehicle_id}/signals/{signal}"),
    ("GET", "/v1/signals"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
];

const HTTP_METHODS: [&str; 8] =
    ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

async fn document(app: &TestApp) -> Value {
    let answer = app.get("/openapi.json").await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.content_type, "application/json");
    answer.json()
}

/// Every operation, by (METHOD, path template).
fn operations(document: &Value) -> BTreeMap<(String, String), Value> {
    let mut operations = BTreeMap::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if HTTP_METHODS.contains(&method.as_str()) {
                operations.insert((method.to_uppercase(), path.clone()), operation.clone());
            }
        }
    }
    operations
}

/// `schema` itself, or what its `$ref` points to (transitively).
fn resolve<'a>(document: &'a Value, mut schema: &'a Value) -> &'a Value {
    while let Some(reference) = schema["$ref"].as_str() {
        let pointer = reference.strip_prefix('#').expect("local reference");
        schema =
            document.pointer(pointer).unwrap_or_else(|| panic!("{reference} does not resolve"));
    }
    schema
}

fn schema<'a>(document: &'a Value, name: &str) -> &'a Value {
    let schema = &document["components"]["schemas"][name];
    assert!(schema.is_object(), "no schema {name}");
    schema
}

/// Every `$ref` in `value`, recursively.
fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(object) => {
            for (key, child) in object {
                match (key.as_str(), child) {
                    ("$ref", Value::String(reference)) => out.push(reference),
                    _ => refs(child, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| refs(item, out)),
        _ => {}
    }
}

/// A concrete URL path for a template.
fn sample(template: &str) -> String {
    template.replace("{vehicle_id}", "openapi-probe").replace("{signal}", "engine_temperature")
}

/// Whether an answer is the router's "no such route" rather than a handler's 404.
fn is_unknown_route(answer: &Answer) -> bool {
    answer.status == 404
        && answer.json()["detail"].as_str().is_some_and(|d| d.starts_with("there is no route"))
}

/// Panics if `schema`, or anything it contains or references, accepts `null`.
fn assert_not_nullable(document: &Value, schema: &Value, at: &str, seen: &mut BTreeSet<String>) {
    if let Some(reference) = schema["$ref"].as_str()
        && !seen.insert(reference.to_owned())
    {
        return;
    }
    let schema = resolve(document, schema);
    assert_ne!(schema["nullable"], true, "{at} is nullable: {schema}");
    match &schema["type"] {
        Value::String(kind) => assert_ne!(kind, "null", "{at} is nullable: {schema}"),
        Value::Array(kinds) => {
            assert!(!kinds.contains(&json!("null")), "{at} is nullable: {schema}")
        }
        _ => {}
    }
    for key in ["properties", "patternProperties"] {
        for (name, property) in schema[key].as_object().into_iter().flatten() {
            assert_not_nullable(document, property, &format!("{at}/{name}"), seen);
        }
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        for (i, item) in schema[key].as_array().into_iter().flatten().enumerate() {
            assert_not_nullable(document, item, &format!("{at}/{key}/{i}"), seen);
        }
    }
    if schema["items"].is_object() {
        assert_not_nullable(document, &schema["items"], &format!("{at}/items"), seen);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_is_openapi_3_1() {
    let app = spawn_app(Backend::Memory).await;
    let document = document(&app).await;
    let version = document["openapi"].as_str().unwrap();
    assert!(version.starts_with("3.1."), "{version}");
    assert!(document["info"]["title"].is_string());
    assert!(document["info"]["version"].is_string());
    assert!(document["paths"].is_object());
    assert!(document["components"]["schemas"].is_object());
    for ((method, path), operation) in operations(&document) {
        let responses = operation["responses"].as_object().unwrap();
        assert!(!responses.is_empty(), "{method} {path}");
        for (status, response) in responses {
            assert!(
                response["description"].is_string(),
                "{method} {path} {status} has no description"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_served_route_is_documented_and_every_documented_one_is_routed() {
    let app = spawn_app(Backend::Memory).await;
    let document = document(&app).await;
    let documented = operations(&document);
    let expected: BTreeSet<(String, String)> =
        SERVED.iter().map(|(m, p)| ((*m).to_owned(), (*p).to_owned())).collect();
    assert_eq!(documented.keys().cloned().collect::<BTreeSet<_>>(), expected);

    // Every documented operation answers, with a status it documents.
    for ((method, path), operation) in &documented {
        let responses = operation["responses"].as_object().unwrap();
        for parameter in path.split('{').skip(1) {
            let name = parameter.split('}').next().unwrap();
            let params = operation["parameters"].as_array().unwrap();
            assert!(
                params
                    .iter()
                    .any(|p| p["name"] == name && p["in"] == "path" && p["required"] == true),
                "{method} {path} does not document its path parameter {name}"
            );
        }
        let url = app.url(&sample(path));
        let request = match method.as_str() {
            // An empty object: valid JSON that stores nothing.
            "POST" => app.client.post(url).json(&json!({})),
            "GET" => app.client.get(url),
            other => panic!("unexpected method {other}"),
        };
        let answer = app.send(request).await;
        assert!(
            !is_unknown_route(&answer) && answer.status != 405,
            "{method} {path} is documented but not routed: {} {}",
            answer.status,
            answer.text
        );
        assert!(
            responses.contains_key(answer.status.as_str()),
            "{method} {path} answered {}, which it does not document: {}",
            answer.status,
            answer.text
        );
    }

    // The probe above tells routes apart: a handler's 404 is not a missing route.
    assert!(!is_unknown_route(&app.get("/v1/vehicles/openapi-probe").await));
    assert!(is_unknown_route(&app.get("/v1/vehicles/openapi-probe/nothing").await));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operation_ids_are_unique() {
    let app = spawn_app(Backend::Memory).await;
    let document = document(&app).await;
    let mut seen = BTreeMap::new();
    for ((method, path), operation) in operations(&document) {
        let id = operation["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{method} {path} has no operationId"))
            .to_owned();
        if let Some(other) = seen.insert(id.clone(), format!("{method} {path}")) {
            panic!("operationId {id} is used by {other} and {method} {path}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reference_resolves() {
    let app = spawn_app(Backend::Memory).await;
    let document = document(&app).await;
    let mut references = Vec::new();
    refs(&document, &mut references);
    assert!(!references.is_empty());
    for reference in references {
        let pointer =
            reference.strip_prefix('#').unwrap_or_else(|| panic!("{reference} is not local"));
        assert!(document.pointer(pointer).is_some(), "{reference} does not resolve");
    }
}

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
    assert_eq!(vehicle_id["pattern"], "^[A-Za-z0-9._-]{1,64}$");
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_that_meets_an_unavailable_store_does_not_promise_nothing_was_stored() {
    let app = spawn_app(Backend::Memory).await;
    let document = document(&app).await;
    for ((method, path), operation) in operations(&document) {
        if method != "POST" || path == "/collect" {
            continue;
        }
        let unavailable = operation["responses"]["503"]["description"]
            .as_str()
            .unwrap_or_else(|| panic!("{method} {path} documents no 503"));
        assert!(
            unavailable.contains("may or may not have been stored")
                && !unavailable.contains("nothing was stored"),
            "{method} {path}: {unavailable}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_lead_to_the_readings_just_stored() {
    let app = spawn_app(Backend::Memory).await;
    let document = document(&app).await;
    let operations = operations(&document);
    let by_id: BTreeMap<String, (String, String)> = operations
        .iter()
        .map(|(key, operation)| {
            (operation["operationId"].as_str().unwrap().to_owned(), key.clone())
        })
        .collect();
    let mut followed = 0;
    for ((method, path), operation) in &operations {
        for (status, response) in operation["responses"].as_object().unwrap() {
            for (name, link) in response["links"].as_object().into_iter().flatten() {
                let at = format!("{method} {path} {status} link {name}");
                let id = link["operationId"].as_str().unwrap_or_else(|| panic!("{at}"));
                let (target_method, target_path) =
                    by_id.get(id).unwrap_or_else(|| panic!("{at}: no operation {id}"));
                let target = &operations[&(target_method.clone(), target_path.clone())];
                // Every parameter the link sets is one the target takes, and
                // every path parameter of the target is set.
                let parameters = link["parameters"].as_object().unwrap();
                let names: BTreeSet<&str> = target["parameters"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p["name"].as_str().unwrap())
                    .collect();
                assert!(parameters.keys().all(|k| names.contains(k.as_str())), "{at}");
                // Follow it: make the request it starts from, then the one it names.
                assert_eq!((method.as_str(), status.as_str()), ("POST", "200"), "{at}");
                let example = json!({"engine_temperature": 90.5});
                let stored = app.post_json(&sample(path), &example).await;
                assert_eq!(stored.status, 200, "{at}: {}", stored.text);
                let mut url = target_path.clone();
                for (parameter, value) in parameters {
                    let value = match value.as_str().unwrap() {
                        "$request.path.vehicle_id" => "openapi-probe",
                        constant => {
                            assert!(!constant.starts_with('$'), "{at}: {constant}");
                            constant
                        }
                    };
                    url = url.replace(&format!("{{{parameter}}}"), value);
                }
                assert!(!url.contains('{'), "{at}: {url}");
                let answer = app.get(&url).await;
                assert_eq!(answer.status, 200, "{at}: GET {url}: {}", answer.text);
                followed += 1;
            }
        }
    }
    assert!(followed >= 2, "only {followed} links");
}

/// Found by schemathesis: it sent `GET /collect` a body of "\n" as JSON that
/// breaks the schema, and the seed's API (frozen) answers 200, reading it as no
/// body. The document now says so; this keeps the two together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blank_collect_body_is_documented_as_none() {
    let app = spawn_app(Backend::Memory).await;
    let document = document(&app).await;
    for ((method, path), operation) in operations(&document) {
        if path != "/collect" {
            continue;
        }
        let description = operation["requestBody"]["description"].as_str().unwrap();
        assert!(description.contains("only whitespace"), "{method} {path}: {description}");
        assert_ne!(operation["requestBody"]["required"], true, "{method} {path}");
        for blank in ["\n", " \r\n\t", "\u{feff}\n"] {
            let request = match method.as_str() {
                "GET" => app.client.get(app.url(&path)),
                _ => app.client.post(app.url(&path)),
            };
            let answer =
                app.send(request.header("content-type", "application/json").body(blank)).await;
            assert_eq!(answer.status, 200, "{method} {path} {blank:?}: {}", answer.text);
            assert!(answer.json()["current_engine_temperature"].is_null(), "{}", answer.text);
        }
    }
}
