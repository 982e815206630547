//! The HTTP layer: one module per API surface, each owning its routes, parsing
//! and OpenAPI annotations and exposing one `routes()`, merged here:
//! - [`legacy`]: `/record` and `/collect`, the original API;
//! - [`v1`]: the fleet API;
//! - [`stream`]: live streams of a vehicle's data (Server-Sent Events);
//! - [`ops`]: health, readiness and metrics;
//! - [`pages`]: the car and fleet views, HTML for people (not in the OpenAPI
//!   document).
//!
//! Beside them, what the surfaces share: the state ([`state`]), request bodies
//! ([`body`]), reading objects ([`wire`]), the vehicle a request is about
//! ([`vehicle`]), errors ([`problem`], and [`conversions`] from the layers
//! below), the OpenAPI pieces ([`openapi`]), request ids and the access log
//! ([`access`]), the in-flight limit ([`admission`]), who is calling ([`caller`]), browser headers and CORS
//! ([`browser`]) and the middleware. The layer calls the fleet service and
//! the domain, never a particular store.
//!
//! Content codings (compressed request bodies and answers) are tower-http's,
//! around every route, behind a switch that only requests naming a coding
//! take ([`coding`]).

pub mod access;
mod admission;
pub mod body;
mod browser;
pub mod caller;
mod coding;
mod conversions;
pub mod legacy;
mod middleware;
pub mod openapi;
mod ops;
mod pages;
pub mod problem;
mod state;
pub mod stream;
pub mod v1;
pub mod vehicle;
pub mod wire;

use axum::Router;
use axum::http::{Method, header};
use axum::routing::get;
use serde_json::Value;
use tower::ServiceBuilder;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

pub use ops::metrics_routes;
use problem::ApiError;
pub use state::AppState;

/// Every route of the service, with its middleware, and `/openapi.json`
/// generated from the same handlers and the same catalog so the document cannot
/// drift.
pub fn router(state: AppState) -> Router {
    let (routes, api) = api(&state).split_for_parts();
    let document = complete(api, &state);
    let document = bytes::Bytes::from(
        serde_json::to_vec_pretty(&document).expect("the OpenAPI document serializes"),
    );
    let serve_document = move || {
        let headers =
            [(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-cache")];
        std::future::ready((headers, document.clone()))
    };
    // One stack, added in one `layer` call: each call wraps every route in
    // a boxed service of its own, cloned for every request (five calls cost
    // five clones and allocations per request). Outermost first.
    let layers = ServiceBuilder::new()
        .option_layer(browser::cors(state.cors_origins.clone()))
        .layer(coding::CodingsLayer)
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::observe_request));
    routes
        .route("/openapi.json", get(serve_document))
        .merge(pages::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(layers)
        .with_state(state)
}

/// The OpenAPI document of a service with `state`.
pub fn document(state: &AppState) -> Value {
    complete(api(state).into_openapi(), state)
}

/// Every surface's documented routes, with the document's static part.
fn api(state: &AppState) -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(legacy::routes(state))
        .merge(v1::routes())
        .merge(stream::routes())
        .merge(ops::routes())
}

/// Adds what depends on the catalog, and the JSON Schema keywords utoipa has no
/// builder for (`patternProperties`, `not`), to the document `api()` produced.
/// Without auth, no operation needs a token, so none says it does.
/// The result's keys are sorted, as `serde_json::Value` keeps them.
fn complete(openapi: utoipa::openapi::OpenApi, state: &AppState) -> Value {
    let catalog = &state.catalog;
    let mut document = serde_json::to_value(&openapi).expect("the OpenAPI document serializes");
    let schemas = document
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
        .expect("the document has component schemas");
    legacy::complete(schemas, catalog);
    v1::complete(&mut document, catalog);
    if state.auth.authenticator().is_none() {
        openapi::drop_security(&mut document);
    }
    openapi::document_request_ids(&mut document);
    document
}

async fn not_found(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!(
        "there is no route {method} {}; see the README for the API",
        uri.path()
    ))
}

async fn method_not_allowed(method: Method) -> ApiError {
    ApiError::MethodNotAllowed { method: method.to_string() }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::config::ServeSettings;
    use crate::domain::Catalog;
    use crate::http::openapi::escape_regex;
    use crate::store::MemoryStore;

    #[test]
    fn every_signal_is_documented_with_its_range() {
        let catalog = Catalog::builtin();
        let store = Arc::new(MemoryStore::new(ServeSettings::for_tests().store_limits()));
        let state = AppState::new(store, catalog.clone(), Duration::from_secs(10));
        let document = document(&state);
        for schema in ["ReadingObject", "RecordBody"] {
            let schema = &document["components"]["schemas"][schema];
            for spec in catalog.signals() {
                let property = &schema["properties"][spec.name.as_str()];
                assert_eq!(property["minimum"], json!(spec.min), "{}", spec.name);
                assert_eq!(property["maximum"], json!(spec.max), "{}", spec.name);
                let path = spec.vss_path.as_deref().unwrap();
                let pattern = format!("^{}$", escape_regex(path));
                assert_eq!(schema["patternProperties"][&pattern]["maximum"], json!(spec.max));
            }
            assert_eq!(schema["additionalProperties"], false);
        }
    }
}
