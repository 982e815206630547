//! The HTTP layer: routes, request parsing and error rendering. It depends on
//! the domain and on the `Store` trait, never on a particular store.

pub mod body;
mod health;
pub mod openapi;
pub mod problem;
mod seed;
mod v1;
mod vehicle;
pub mod wire;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::{Method, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use tower_http::timeout::RequestBodyDeadlineLayer;
use tracing::Instrument;

use crate::domain::{Catalog, Clock};
use crate::store::DynStore;
use problem::ApiError;

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: DynStore,
    pub catalog: Arc<Catalog>,
    pub clock: Arc<Clock>,
    /// How long a client may take to send a request body.
    pub body_timeout: Duration,
}

impl AppState {
    pub fn new(store: DynStore, catalog: Catalog, body_timeout: Duration) -> Self {
        Self { store, catalog: Arc::new(catalog), clock: Arc::new(Clock::new()), body_timeout }
    }

    pub fn parse_context(&self) -> wire::ParseContext<'_> {
        wire::ParseContext { catalog: &self.catalog, clock: &self.clock }
    }
}

/// Every route of the service, with its middleware, and `/openapi.json`
/// generated from the same handlers and the same catalog so the document cannot
/// drift.
pub fn router(state: AppState) -> Router {
    let (routes, api) = openapi::api().split_for_parts();
    let document = openapi::complete(api, &state.catalog);
    let document = bytes::Bytes::from(
        serde_json::to_vec_pretty(&document).expect("the OpenAPI document serializes"),
    );
    let serve_document = move || {
        std::future::ready(([(header::CONTENT_TYPE, "application/json")], document.clone()))
    };
    routes
        .route("/openapi.json", get(serve_document))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(RequestBodyDeadlineLayer::new(state.body_timeout))
        .layer(middleware::from_fn(log_request))
        .with_state(state)
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

/// One log line per request: method, matched route, status, latency. Bodies are
/// never logged. Handlers add the vehicle to the span.
async fn log_request(request: Request, next: Next) -> Response {
    // A clone of the matched path is a reference count, not a copy of the string.
    let route = request.extensions().get::<MatchedPath>().cloned();
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        route = route.as_ref().map_or("<unmatched>", MatchedPath::as_str),
        vehicle = tracing::field::Empty,
    );
    let started = Instant::now();
    let response = next.run(request).instrument(span.clone()).await;
    let latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    let status = response.status().as_u16();
    span.in_scope(|| {
        if response.status().is_server_error() {
            tracing::warn!(status, latency_us, "request finished");
        } else {
            tracing::info!(status, latency_us, "request finished");
        }
    });
    response
}
