//! `POST /record`: one reading of `vehicle_id`, else of the device token's one
//! vehicle, else of the default car.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::Legacy;
use super::wire::parse_record;
use crate::http::body::JsonBody;
use crate::http::caller::Caller;
use crate::http::openapi::{AuthErrors, BodyErrors, TimestampSchema, VehicleIdSchema, WriteErrors};
use crate::http::problem::{ApiError, Problem};
use crate::http::vehicle;

/// The name of `RecordBody`'s schema, which `openapi` completes from the catalog.
pub(super) const RECORD_BODY: &str = "RecordBody";

/// A legacy reading: one or more catalog signals, by name or VSS path, plus
/// optional `vehicle_id` and `timestamp`. The signal properties are added from
/// the catalog when the router is built.
#[derive(ToSchema)]
#[schema(examples(json!({"engine_temperature": 90.5})))]
#[allow(dead_code)] // documentation only: bodies are parsed by `wire`
pub struct RecordBody {
    /// The vehicle; when absent, the device token's one vehicle, else `default`.
    #[schema(required = false)]
    vehicle_id: VehicleIdSchema,
    #[schema(required = false)]
    timestamp: TimestampSchema,
}

#[derive(Serialize, ToSchema)]
pub struct RecordOk {
    /// Always `true`.
    success: bool,
}

/// Record one reading of the seed's car (or of `vehicle_id`).
#[utoipa::path(
    post,
    path = "/record",
    tag = "seed",
    security(("token" = ["record"])),
    request_body(content = RecordBody, content_type = "application/json",
        description = "Any Content-Type is accepted; the body must be JSON."),
    responses(
        (status = 200, description = "Stored", body = RecordOk),
        BodyErrors,
        (status = 422, description = "Invalid reading; nothing was stored. `errors[].pointer` names each bad field", body = Problem, content_type = "application/problem+json"),
        AuthErrors,
        WriteErrors,
    )
)]
pub async fn record(
    State(state): State<Legacy>,
    Caller(caller): Caller,
    JsonBody(body): JsonBody,
) -> Result<Json<RecordOk>, ApiError> {
    let request = parse_record(&body, &state.app.parse_context())?;
    let vehicle = vehicle::named_or_own(request.vehicle, &caller);
    state.app.fleet.record(&caller, &vehicle, &request.readings).await?;
    Ok(Json(RecordOk { success: true }))
}
