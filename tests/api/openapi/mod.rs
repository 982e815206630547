//! `GET /openapi.json` against the running server: the document and the router
//! agree, its examples are accepted, its schemas follow the signal catalog, and
//! what it says about requests is what the parser enforces.

mod answers;
mod document;
mod requests;

use std::collections::{BTreeMap, BTreeSet};

use crate::common::{Answer, TestApp};
use serde_json::{Value, json};

/// What the service documents, by method and path template: every route but
/// `/metrics`, which is not part of the API (see `metrics_is_served_but_not_documented`).
const SERVED: [(&str, &str); 12] = [
    ("POST", "/record"),
    ("GET", "/collect"),
    ("POST", "/collect"),
    ("GET", "/collect/stream"),
    ("GET", "/v1/vehicles/{vehicle_id}/stream"),
    ("POST", "/v1/vehicles/{vehicle_id}/readings"),
    ("GET", "/v1/vehicles/{vehicle_id}"),
    ("GET", "/v1/vehicles/{vehicle_id}/signals/{signal}"),
    ("GET", "/v1/signals"),
    ("GET", "/v1/vehicles"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
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
