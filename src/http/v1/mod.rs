//! The v1 API: a fleet of vehicles, each with many signals, readings stamped by
//! the device and sent one at a time or in batches.
//!
//! This module owns the surface's routes and handlers; `schemas` documents its
//! types, `wire` parses its readings body, and `list` lists the fleet.

mod list;
mod schemas;
pub mod wire;

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Map, Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use self::schemas::{
    Accepted, READING_OBJECT, ReadingOut, ReadingsBody, SignalInfo, SignalList, SignalPath,
    SignalSummary, SignalWindow, VehiclePath, VehicleSummary,
};
use super::body::JsonBody;
use super::caller::Caller;
use super::openapi::{AuthErrors, BodyErrors, ReadErrors, TokenErrors, WriteErrors, add_signals};
use super::problem::{ApiError, Problem};
use super::state::AppState;
use super::vehicle::PathVehicle;
use crate::auth::Identity;
use crate::domain::{Catalog, SignalName, VehicleId};
use crate::store::VehicleHistory;

/// The surface's routes, documented.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(post_readings))
        .routes(routes!(get_vehicle))
        .routes(routes!(get_signal))
        .routes(routes!(list_signals))
        .routes(routes!(list::list_vehicles))
}

/// Adds what depends on the catalog to the surface's part of `document`.
pub(super) fn complete(document: &mut Value, catalog: &Catalog) {
    let schemas = document
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
        .expect("the document has component schemas");
    let reading = schemas.get_mut(READING_OBJECT).expect("the reading object is documented");
    add_signals(reading, catalog);
    add_read_back_links(document, catalog);
}

/// Links from storing readings to reading them back, which clients (and
/// schemathesis' stateful tests) can follow: the vehicle's summary, and the
/// window of the catalog's first signal, both 200 once a reading is stored.
fn add_read_back_links(document: &mut Value, catalog: &Catalog) {
    let stored = document
        .pointer_mut("/paths/~1v1~1vehicles~1{vehicle_id}~1readings/post/responses/200")
        .expect("storing readings is documented");
    let mut links = Map::new();
    links.insert(
        "GetVehicle".into(),
        json!({
            "operationId": "get_vehicle",
            "parameters": {"vehicle_id": "$request.path.vehicle_id"},
            "description": "The vehicle's signals, the readings just stored among them.",
        }),
    );
    if let Some(spec) = catalog.signals().first() {
        links.insert(
            "GetSignal".into(),
            json!({
                "operationId": "get_signal",
                "parameters": {"vehicle_id": "$request.path.vehicle_id", "signal": spec.name.as_str()},
                "description": format!("The vehicle's window of `{}` (any other signal works the same way).", spec.name),
            }),
        );
    }
    stored["links"] = Value::Object(links);
}

/// Record readings of one vehicle: one object, or a batch that is stored all or nothing.
#[utoipa::path(
    post,
    path = "/v1/vehicles/{vehicle_id}/readings",
    tag = "v1",
    security(("token" = ["record"])),
    params(VehiclePath),
    request_body(content = ReadingsBody, content_type = "application/json",
        description = "Any Content-Type is accepted; the body must be JSON."),
    responses(
        (status = 200, description = "All readings stored", body = Accepted),
        BodyErrors,
        (status = 422, description = "An invalid vehicle id, or an invalid reading; nothing was stored. `errors[].pointer` names the index and field", body = Problem, content_type = "application/problem+json"),
        AuthErrors,
        WriteErrors,
    )
)]
pub async fn post_readings(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathVehicle(vehicle): PathVehicle,
    JsonBody(body): JsonBody,
) -> Result<Json<Accepted>, ApiError> {
    let readings = wire::parse_batch(&body, &state.parse_context())?;
    state.fleet.record(&caller, &vehicle, &readings).await?;
    Ok(Json(Accepted { accepted: readings.len() }))
}

/// A vehicle's signals: current, average, min, max, count and total of each.
#[utoipa::path(
    get,
    path = "/v1/vehicles/{vehicle_id}",
    tag = "v1",
    security(("token" = ["read"]), ("token" = ["fleet"])),
    params(VehiclePath),
    responses(
        (status = 200, description = "The vehicle's summary", body = VehicleSummary),
        (status = 404, description = "The vehicle has sent nothing within the retention period", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid vehicle id", body = Problem, content_type = "application/problem+json"),
        TokenErrors,
        AuthErrors,
        ReadErrors,
    )
)]
pub async fn get_vehicle(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathVehicle(vehicle): PathVehicle,
) -> Result<Json<VehicleSummary>, ApiError> {
    let history = history_or_404(&state, &caller, &vehicle, state.catalog.names()).await?;
    let signals = state
        .catalog
        .signals()
        .iter()
        .filter_map(|spec| {
            let signal = history.signals.get(&spec.name)?;
            Some((spec.name.to_string(), SignalSummary::new(&spec.unit, Some(signal))))
        })
        .collect();
    Ok(Json(VehicleSummary {
        vehicle_id: vehicle.to_string(),
        last_seen: history.last_seen,
        signals,
    }))
}

/// One signal of a vehicle: the window's readings, newest first, and its aggregates.
#[utoipa::path(
    get,
    path = "/v1/vehicles/{vehicle_id}/signals/{signal}",
    tag = "v1",
    security(("token" = ["read"]), ("token" = ["fleet"])),
    params(VehiclePath, SignalPath),
    responses(
        (status = 200, description = "The window", body = SignalWindow),
        (status = 404, description = "Unknown signal, or a vehicle that has sent nothing", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid vehicle id", body = Problem, content_type = "application/problem+json"),
        TokenErrors,
        AuthErrors,
        ReadErrors,
    )
)]
pub async fn get_signal(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathVehicle(vehicle): PathVehicle,
    Path(SignalPath { signal }): Path<SignalPath>,
) -> Result<Json<SignalWindow>, ApiError> {
    let spec = state.catalog.get(&signal).ok_or_else(|| {
        ApiError::NotFound(format!(
            "there is no signal {signal:?}; known signals: {}",
            state.catalog.describe_names()
        ))
    })?;
    let history =
        history_or_404(&state, &caller, &vehicle, std::slice::from_ref(&spec.name)).await?;
    let signal = history.signals.get(&spec.name);
    Ok(Json(SignalWindow {
        vehicle_id: vehicle.to_string(),
        signal: spec.name.to_string(),
        readings: signal
            .map(|s| s.samples.iter().map(ReadingOut::from).collect())
            .unwrap_or_default(),
        summary: SignalSummary::new(&spec.unit, signal),
    }))
}

/// The signal catalog.
#[utoipa::path(
    get,
    path = "/v1/signals",
    tag = "v1",
    security(("token" = [])),
    responses((status = 200, body = SignalList), TokenErrors, AuthErrors)
)]
pub async fn list_signals(
    State(state): State<AppState>,
    Caller(_caller): Caller,
) -> Json<SignalList> {
    let signals = state
        .catalog
        .signals()
        .iter()
        .map(|s| SignalInfo {
            name: s.name.to_string(),
            unit: s.unit.clone(),
            min: s.min,
            max: s.max,
            description: s.description.clone(),
            vss_path: s.vss_path.clone(),
        })
        .collect();
    Json(SignalList { signals })
}

/// The stored history of `signals`, or a 404 for a vehicle never seen (within
/// the retention period).
async fn history_or_404(
    state: &AppState,
    caller: &Identity,
    vehicle: &VehicleId,
    signals: &[SignalName],
) -> Result<VehicleHistory, ApiError> {
    state.fleet.history(caller, vehicle, signals).await?.ok_or_else(|| {
        ApiError::NotFound(format!(
            "vehicle {:?} has sent no readings (or none within the retention period)",
            vehicle.as_str()
        ))
    })
}
