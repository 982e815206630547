//! The seed's API, `/record` and `/collect`. Existing sensors and apps depend on
//! these answers byte for byte: `{"success": true}`, and `current_…`/`average_…`
//! with `null` when nothing has been recorded. They only ever grow new fields.

use axum::Json;
use axum::extract::{RawQuery, State};
use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use super::AppState;
use super::body::{JsonBody, OptionalJsonBody};
use super::problem::{ApiError, Problem};
use super::{vehicle, wire};
use crate::domain::Aggregate;

/// A seed reading: catalog signals by name or VSS path, plus optional fields.
#[derive(ToSchema)]
#[schema(
    example = json!({"engine_temperature": 90.5})
)]
#[allow(dead_code)] // documentation only: bodies are parsed by `wire`
pub struct RecordBody {
    /// Engine coolant temperature, celsius, -40 to 215.
    engine_temperature: Option<f64>,
    /// The vehicle; `default` when absent.
    vehicle_id: Option<String>,
    /// RFC 3339 date-time or integer milliseconds since the epoch; the server's
    /// receive time when absent.
    #[schema(value_type = Option<String>)]
    timestamp: Option<Value>,
}

#[derive(Serialize, ToSchema)]
pub struct RecordOk {
    /// Always `true`.
    success: bool,
}

/// Current and average of every signal with data; engine temperature always present.
#[derive(ToSchema)]
#[schema(
    example = json!({"current_engine_temperature": 90.5, "average_engine_temperature": 88.2})
)]
#[allow(dead_code)] // documentation only: built as a map
pub struct CollectResponse {
    /// The newest engine temperature, or null.
    current_engine_temperature: Option<f64>,
    /// The mean of the newest N engine temperatures, or null.
    average_engine_temperature: Option<f64>,
}

/// Record one reading of the seed's car (or of `vehicle_id`).
#[utoipa::path(
    post,
    path = "/record",
    tag = "seed",
    request_body(content = RecordBody, content_type = "application/json",
        description = "Any Content-Type is accepted; the body must be JSON."),
    responses(
        (status = 200, description = "Stored", body = RecordOk),
        (status = 400, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over 1 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 408, description = "The body did not arrive in time", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid reading", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Store unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn record(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Json<RecordOk>, ApiError> {
    let request = wire::parse_record(&body, &state.parse_context())?;
    let vehicle = vehicle::named_or_default(request.vehicle);
    state
        .store
        .record(&vehicle, &request.readings, state.clock.now())
        .await?;
    Ok(Json(RecordOk { success: true }))
}

/// The current value and the window's average of every signal with data.
#[utoipa::path(
    method(get, post),
    path = "/collect",
    tag = "seed",
    params(("vehicle_id" = Option<String>, Query, description = "The vehicle; `default` when absent")),
    request_body(content = Option<Object>, content_type = "application/json",
        description = "Optional: `{\"vehicle_id\": \"…\"}`"),
    responses(
        (status = 200, description = "The vehicle's current and average values", body = CollectResponse),
        (status = 400, description = "A body that is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 408, description = "The body did not arrive in time", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over 1 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid vehicle id", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Store unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn collect(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    OptionalJsonBody(body): OptionalJsonBody,
) -> Result<Json<Value>, ApiError> {
    let vehicle = vehicle::for_collect(query.as_deref(), body.as_ref())?;
    let history = state.store.history(&vehicle, state.catalog.names()).await?;

    let mut answer = Map::new();
    answer.insert("current_engine_temperature".into(), Value::Null);
    answer.insert("average_engine_temperature".into(), Value::Null);
    for (signal, history) in history.iter().flat_map(|h| &h.signals) {
        if let Some(aggregate) = Aggregate::of(&history.samples) {
            answer.insert(format!("current_{signal}"), json!(aggregate.current));
            answer.insert(format!("average_{signal}"), json!(aggregate.average));
        }
    }
    Ok(Json(Value::Object(answer)))
}
