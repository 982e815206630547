//! The operations surface: liveness and readiness, for orchestrators and load
//! balancers, and Prometheus metrics. Health and readiness are open; `/metrics`
//! needs the `metrics` scope on the API port, and nothing on the separate
//! metrics port ([`metrics_routes`]), which the operator keeps private.
//! `/metrics` is not part of the API, so it is left out of the OpenAPI
//! document (a client generator would otherwise make a call of it);
//! Prometheus is its only client.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::caller::Caller;
use super::problem::{ApiError, Problem};
use super::state::AppState;

/// The surface's routes, documented.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .route("/metrics", axum::routing::get(metrics))
}

#[derive(Serialize, ToSchema)]
pub struct Status {
    /// `ok` (alive) or `ready`.
    status: &'static str,
    /// The store in use, on `/readyz`: `memory`, `redis` or `redis-cluster`.
    #[serde(skip_serializing_if = "Option::is_none")]
    store: Option<&'static str>,
    /// On `/readyz` with a Redis Cluster: its `cluster_state`, `ok` when it
    /// serves every slot (otherwise `/readyz` answers 503, saying which state).
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster_state: Option<&'static str>,
    /// On `/readyz`: `off` (every client may write and read every vehicle) or
    /// `required` (tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    auth: Option<&'static str>,
}

/// The process is up and serving HTTP.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Status)))]
pub async fn healthz() -> Json<Status> {
    Json(Status { status: "ok", store: None, cluster_state: None, auth: None })
}

/// The store answers and the service is not shutting down; otherwise 503 with
/// the reason (`store-unavailable` or `shutting-down`).
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, body = Status),
        (status = 503, description = "The store is not reachable, or the service is shutting down", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait before asking again"))),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Status>, ApiError> {
    if state.is_shutting_down() {
        return Err(ApiError::ShuttingDown);
    }
    let store = state.fleet.store_kind();
    match state.fleet.ping().await {
        Ok(()) => Ok(Json(Status {
            status: "ready",
            store: Some(store),
            // The cluster's ping is its `CLUSTER INFO`, which fails unless `ok`.
            cluster_state: (store == "redis-cluster").then_some("ok"),
            auth: Some(state.auth.mode_name()),
        })),
        Err(err) => {
            Err(ApiError::NotReady(format!("the {store} store is not reachable: {}", err.report())))
        }
    }
}

/// Prometheus metrics, in the text exposition format: requests, latencies,
/// readings accepted and refused, store operations, shed and rate-limited
/// requests, vehicles held, the build, and the process. Needs the `metrics`
/// scope when auth is on.
pub async fn metrics(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<impl IntoResponse, ApiError> {
    caller.may_metrics()?;
    Ok(render_metrics(&state).await)
}

/// The routes of the separate metrics port (`TRIBUTARY_METRICS_LISTEN`): only
/// `/metrics`, needing no token.
pub fn metrics_routes(state: AppState) -> axum::Router {
    axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(|State(state): State<AppState>| async move {
                render_metrics(&state).await
            }),
        )
        .with_state(state)
}

async fn render_metrics(state: &AppState) -> impl IntoResponse + use<> {
    state.metrics.in_flight().set(state.in_flight.count() as f64);
    state.fleet.refresh_vehicle_count().await;
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.metrics.render())
}
