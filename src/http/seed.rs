//! The seed's API, `/record` and `/collect`. Existing sensors and apps depend on
//! these answers byte for byte: `{"success": true}`, and `current_…`/`average_…`
//! with `null` when nothing has been recorded. They only ever grow new fields.

use axum::Json;
use axum::extract::{RawQuery, State};
use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::body::{JsonBody, OptionalJsonBody};
use super::openapi::{BodyErrors, ReadErrors, TimestampSchema, VehicleIdSchema, WriteErrors};
use super::problem::{ApiError, Problem};
use super::{vehicle, wire};
use crate::domain::Aggregate;

/// The name of `RecordBody`'s schema, which `openapi` completes from the catalog.
pub(super) const RECORD_BODY: &str = "RecordBody";

/// A seed reading: one or more catalog signals, by name or VSS path, plus
/// optional `vehicle_id` and `timestamp`. The signal properties are added from
/// the catalog when the router is built.
#[derive(ToSchema)]
#[schema(examples(json!({"engine_temperature": 90.5})))]
#[allow(dead_code)] // documentation only: bodies are parsed by `wire`
pub struct RecordBody {
    /// The vehicle; `default` when absent.
    #[schema(required = false)]
    vehicle_id: VehicleIdSchema,
    #[schema(required = false)]
    timestamp: TimestampSchema,
}

/// The name of `CollectBody`'s schema, which `openapi` closes to other fields.
pub(super) const COLLECT_BODY: &str = "CollectBody";

/// A `/collect` body; an empty body or `{}` means the `default` vehicle.
#[derive(ToSchema)]
#[schema(examples(json!({"vehicle_id": "car-1"})))]
#[allow(dead_code)] // documentation only: bodies are parsed by `wire`
pub struct CollectBody {
    /// The vehicle; the same as `?vehicle_id=` if both are given.
    #[schema(required = false)]
    vehicle_id: VehicleIdSchema,
}

/// `/collect`'s query. Other parameters (cache busters such as `?_=…`) are ignored.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documentation only: the query is parsed by `vehicle`
pub struct CollectQuery {
    /// The vehicle; `default` when neither the query nor the body names one.
    vehicle_id: Option<VehicleIdSchema>,
}

#[derive(Serialize, ToSchema)]
pub struct RecordOk {
    /// Always `true`.
    success: bool,
}

/// The name of `CollectResponse`'s schema, which `openapi` completes from the catalog.
pub(super) const COLLECT_RESPONSE: &str = "CollectResponse";

/// `current_…` and `average_…` of every signal with data; engine temperature
/// always, `null` until the vehicle has sent one. The other signals' properties
/// are added from the catalog when the router is built.
#[derive(ToSchema)]
#[schema(
    example = json!({"current_engine_temperature": 90.5, "average_engine_temperature": 88.2})
)]
#[allow(dead_code)] // documentation only: built as a map
pub struct CollectResponse {
    /// The newest engine temperature, or null.
    current_engine_temperature: Option<f64>,
    /// The mean of the window's engine temperatures, or null.
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
        BodyErrors,
        (status = 422, description = "Invalid reading; nothing was stored. `errors[].pointer` names each bad field", body = Problem, content_type = "application/problem+json"),
        WriteErrors,
    )
)]
pub async fn record(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Json<RecordOk>, ApiError> {
    let request = wire::parse_record(&body, &state.parse_context())?;
    let vehicle = vehicle::named_or_default(request.vehicle);
    state.record(&vehicle, &request.readings).await?;
    Ok(Json(RecordOk { success: true }))
}

/// The current value and the window's average of every signal with data.
#[utoipa::path(
    get,
    path = "/collect",
    tag = "seed",
    params(CollectQuery),
    request_body(content = ref("#/components/schemas/CollectBody"), content_type = "application/json",
        description = "Optional, as for POST (an empty body, or one of only whitespace, is none); the query is the usual way to name the vehicle."),
    responses(
        (status = 200, description = "The vehicle's current and average values", body = CollectResponse),
        BodyErrors,
        (status = 422, description = "Invalid vehicle id, an unknown body field, or a query and body that name different vehicles", body = Problem, content_type = "application/problem+json"),
        ReadErrors,
    )
)]
pub async fn collect_get(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    OptionalJsonBody(body): OptionalJsonBody,
) -> Result<Json<Value>, ApiError> {
    collect(&state, query.as_deref(), body.as_ref()).await
}

/// The current value and the window's average of every signal with data.
#[utoipa::path(
    post,
    path = "/collect",
    tag = "seed",
    params(CollectQuery),
    request_body(content = ref("#/components/schemas/CollectBody"), content_type = "application/json",
        description = "Optional: none (an empty body, or one of only whitespace), `{}` or `{\"vehicle_id\": \"…\"}`."),
    responses(
        (status = 200, description = "The vehicle's current and average values", body = CollectResponse),
        BodyErrors,
        (status = 422, description = "Invalid vehicle id, an unknown body field, or a query and body that name different vehicles", body = Problem, content_type = "application/problem+json"),
        ReadErrors,
    )
)]
pub async fn collect_post(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    OptionalJsonBody(body): OptionalJsonBody,
) -> Result<Json<Value>, ApiError> {
    collect(&state, query.as_deref(), body.as_ref()).await
}

/// `/collect` answers GET and POST alike; two handlers give each its own operationId.
async fn collect(
    state: &AppState,
    query: Option<&str>,
    body: Option<&Value>,
) -> Result<Json<Value>, ApiError> {
    let vehicle = vehicle::for_collect(query, body)?;
    let history = state.history(&vehicle, state.catalog.names()).await?;

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
