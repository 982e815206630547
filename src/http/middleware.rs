//! The middleware every request passes through: the request id and the
//! access-log line (see `access`), admission (see `admission`), metrics, the
//! request's span, and the one place where the cause of a failed answer is
//! logged (`IntoResponse` only attaches it).

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use super::access::{AccessLine, RequestId, RequestScope, X_REQUEST_ID};
use super::admission::admit;
use super::browser;
use super::problem::{AuthRefusal, Failure, ProblemType};
use super::state::AppState;
use crate::telemetry::Throttle;

/// The request id, admission (see `admit`), metrics and the access-log line
/// for every request. The causes of store failures are logged here, at most a
/// line a second. Bodies are never logged. Handlers add the vehicle to the
/// span and to the request's scope.
pub(super) async fn observe_request(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
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
    let scope = RequestScope::new(RequestId::of(request.headers()));
    let handled = async {
        match admit(&state, request.uri().path()) {
            Ok(_in_flight) => next.run(request).instrument(span.clone()).await,
            Err(shed) => shed.into_response(),
        }
    };
    let (scope, mut response) = scope.run(handled).await;
    let elapsed = started.elapsed();
    let status = response.status();
    state.metrics.request_finished(method, route, status.as_u16(), elapsed);
    if method == "POST" && is_write_route(route) && !status.is_success() {
        let reason = response.extensions().get::<ProblemType>().map_or("other", |kind| kind.0);
        state.metrics.write_rejected(reason);
    }
    if let Some(AuthRefusal(reason)) = response.extensions().get::<AuthRefusal>() {
        state.metrics.auth_refused(reason);
    }
    if let Some(Failure(err)) = response.extensions().get::<Failure>() {
        static STORE_FAILURES: Throttle = Throttle::new();
        if let Some(suppressed) = STORE_FAILURES.allow() {
            span.in_scope(|| {
                let request_id = scope.id.as_str();
                tracing::error!(error = %err.report(), suppressed, request_id, "store failure");
            });
        }
    }
    if let Some(sink) = crate::telemetry::access_sink() {
        let vehicle = scope.vehicle();
        let line = AccessLine {
            method,
            route,
            vehicle: vehicle.as_ref(),
            status: status.as_u16(),
            latency: elapsed,
            id: &scope.id,
        };
        line.write_to(sink);
    }
    let headers = response.headers_mut();
    headers.insert(X_REQUEST_ID.clone(), scope.id.into_header_value());
    browser::protect(headers);
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
