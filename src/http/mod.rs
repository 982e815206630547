//! The HTTP layer: routes, request parsing and error rendering. It depends on
//! the domain and on the `Store` trait, never on a particular store.

pub mod body;
mod health;
mod limit;
pub mod openapi;
pub mod problem;
mod seed;
mod state;
mod v1;
mod vehicle;
pub mod wire;

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tracing::Instrument;

use crate::telemetry::Throttle;
use problem::{ApiError, ProblemType};
pub use state::AppState;
use state::InFlightGuard;

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
        .layer(middleware::from_fn_with_state(state.clone(), observe_request))
        .with_state(state)
}

/// Admits a request, or answers 503 at once when the in-flight limit is
/// reached, instead of letting requests queue without bound. Health checks and
/// metrics are never shed: they are how an operator sees the overload, and an
/// overload should not make every replica look dead at once.
fn admit<'a>(state: &'a AppState, path: &str) -> Result<Option<InFlightGuard<'a>>, ApiError> {
    if matches!(path, "/healthz" | "/readyz" | "/metrics") {
        return Ok(None);
    }
    let Some(in_flight) = state.in_flight.try_enter() else {
        let limit = state.in_flight.limit();
        static SHEDDING: Throttle = Throttle::new();
        if let Some(suppressed) = SHEDDING.allow() {
            tracing::warn!(limit, suppressed, "in-flight limit reached: shedding load");
        }
        state.metrics.shed();
        return Err(ApiError::Overloaded { limit });
    };
    Ok(Some(in_flight))
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

/// Admission (see `admit`), metrics for every request, and a log line at
/// debug level: at thousands of requests a second, a line each would cost more
/// than the request, and the metrics count them. The causes of 5xx answers are logged where they arise,
/// at most a line a second each. Bodies are never logged. Handlers add the
/// vehicle to the span.
async fn observe_request(State(state): State<AppState>, request: Request, next: Next) -> Response {
    // A clone of the matched path is a reference count, not a copy of the string.
    let route = request.extensions().get::<MatchedPath>().cloned();
    let route = route.as_ref().map_or("<unmatched>", MatchedPath::as_str);
    let method = method_label(request.method());
    let span = tracing::debug_span!(
        "request",
        %method,
        route,
        vehicle = tracing::field::Empty,
    );
    let started = Instant::now();
    let response = match admit(&state, request.uri().path()) {
        Ok(_in_flight) => next.run(request).instrument(span.clone()).await,
        Err(shed) => shed.into_response(),
    };
    let elapsed = started.elapsed();
    let status = response.status();
    state.metrics.request_finished(method, route, status.as_u16(), elapsed);
    if method == "POST" && is_write_route(route) && !status.is_success() {
        let reason = response.extensions().get::<ProblemType>().map_or("other", |kind| kind.0);
        state.metrics.write_rejected(reason);
    }
    let latency_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    span.in_scope(|| tracing::debug!(status = status.as_u16(), latency_us, "request finished"));
    response
}

/// The standard methods by name; any other token a client makes up is `OTHER`,
/// so that made-up methods cannot create metric series without end.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "OTHER",
    }
}

fn is_write_route(route: &str) -> bool {
    matches!(route, "/record" | "/v1/vehicles/{vehicle_id}/readings")
}
