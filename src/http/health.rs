//! Liveness and readiness, for orchestrators and load balancers.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::AppState;
use super::problem::ApiError;

/// The process is up and serving HTTP.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// The store answers; otherwise 503 with the reason.
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    match state.store.ping().await {
        Ok(()) => Ok(Json(
            json!({"status": "ready", "store": state.store.kind()}),
        )),
        Err(err) => Err(ApiError::NotReady(format!(
            "the {} store is not reachable: {err}",
            state.store.kind()
        ))),
    }
}
