//! The document itself: OpenAPI 3.1, every route documented and every
//! documented route served, unique operation ids, references that resolve.

use std::collections::{BTreeMap, BTreeSet};

use super::{SERVED, document, is_unknown_route, operations, refs, sample};
use crate::common::{Backend, spawn_app};
use serde_json::json;

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
            assert_eq!(
                response["headers"]["X-Request-Id"]["$ref"], "#/components/headers/RequestId",
                "{method} {path} {status} does not document X-Request-Id"
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
        // A stream's body never ends: only its head is read.
        let answer = if path.ends_with("/stream") {
            let response = request.send().await.unwrap();
            assert_eq!(response.headers()["content-type"], "text/event-stream", "{path}");
            crate::common::Answer {
                status: response.status(),
                content_type: "text/event-stream".into(),
                headers: response.headers().clone(),
                text: String::new(),
            }
        } else {
            app.send(request).await
        };
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

/// `/metrics` is for Prometheus, not part of the API: served, but not in the
/// document, so client generators make no call of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_is_served_but_not_documented() {
    let app = spawn_app(Backend::Memory).await;
    let document = document(&app).await;
    assert!(document["paths"].get("/metrics").is_none(), "{}", document["paths"]);
    let answer = app.get("/metrics").await;
    assert_eq!(answer.status, 200);
    assert!(answer.text.contains("tributary_http_requests_total"), "{}", answer.text);
}

/// The rules of a reading object that need `anyOf` and `not` sit in an
/// `allOf` beside `type: object`, so that client generators make a class of
/// it (a top-level `anyOf` made openapi-python-client type the body `Any`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_objects_are_typed_objects_with_their_rules_in_all_of() {
    let app = spawn_app(Backend::Memory).await;
    let document = document(&app).await;
    for name in ["ReadingObject", "RecordBody"] {
        let schema = &document["components"]["schemas"][name];
        assert_eq!(schema["type"], "object", "{name}: {schema}");
        assert!(schema.get("anyOf").is_none() && schema.get("not").is_none(), "{name}: {schema}");
        let rules = schema["allOf"].as_array().unwrap();
        assert!(rules[0]["anyOf"].as_array().is_some_and(|any| any.len() == 8), "{name}: {schema}");
        assert!(rules[1]["not"]["anyOf"].is_array(), "{name}: {schema}");
    }
}
