//! The v1 API: a fleet of vehicles, each with many signals, readings stamped by
//! the device and sent one at a time or in batches.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ArrayBuilder, OneOfBuilder, Ref, Schema};
use utoipa::{IntoParams, PartialSchema, ToSchema};

use super::AppState;
use super::body::JsonBody;
use super::openapi::{BodyErrors, ReadErrors, TimestampSchema, VehicleIdSchema, WriteErrors};
use super::problem::{ApiError, Problem};
use super::vehicle::PathVehicle;
use super::wire;
use crate::domain::{Aggregate, Sample, SignalName, SignalSpec, Timestamp, VehicleId};
use crate::store::{SignalHistory, VehicleHistory};

/// The name of `ReadingObject`'s schema, which `openapi` completes from the catalog.
pub(super) const READING_OBJECT: &str = "ReadingObject";

/// A reading: one or more catalog signals, by name or VSS path, at one instant.
/// The signal properties are added from the catalog when the router is built.
#[derive(ToSchema)]
#[schema(
    examples(json!({"timestamp": "2026-11-27T18:00:00.250Z", "engine_temperature": 88.5, "vehicle_speed": 42}))
)]
#[allow(dead_code)] // documentation only: bodies are parsed by `wire`
pub struct ReadingObject {
    #[schema(required = false)]
    timestamp: TimestampSchema,
}

/// One reading object, or an array of 1 to 1000 stored all or nothing.
pub struct ReadingsBody;

impl PartialSchema for ReadingsBody {
    fn schema() -> RefOr<Schema> {
        let reading = || Ref::from_schema_name(READING_OBJECT);
        OneOfBuilder::new()
            .item(reading())
            .item(
                ArrayBuilder::new()
                    .items(reading())
                    .min_items(Some(1))
                    .max_items(Some(wire::MAX_BATCH)),
            )
            .description(Some(format!(
                "One reading object, or an array of 1 to {} stored all or nothing.",
                wire::MAX_BATCH
            )))
            .examples([json!([
                {"timestamp": "2026-11-27T18:00:00.250Z", "engine_rpm": 2400, "vehicle_speed": 61.5},
                {"timestamp": 1_795_802_400_500_i64, "engine_rpm": 2450},
            ])])
            .into()
    }
}

impl ToSchema for ReadingsBody {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((READING_OBJECT.to_owned(), ReadingObject::schema()));
        ReadingObject::schemas(schemas);
    }
}

/// The `{vehicle_id}` of every v1 URL.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // documentation only: the path is parsed by `PathVehicle`
pub struct VehiclePath {
    /// The vehicle.
    vehicle_id: VehicleIdSchema,
}

/// The `{signal}` of a signal's URL (documented from the extractor).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SignalPath {
    /// Short name or VSS path; see `GET /v1/signals`.
    #[param(example = "engine_temperature")]
    signal: String,
}

#[derive(Serialize, ToSchema)]
pub struct Accepted {
    /// Number of signal values accepted. A resent value, or a device-stamped one
    /// older than every reading of a full window, is accepted but changes nothing.
    accepted: usize,
}

/// Aggregates of one signal over its window.
#[derive(Serialize, ToSchema)]
pub struct SignalSummary {
    /// The newest value by timestamp.
    current: Option<f64>,
    /// Mean of the values in the window.
    average: Option<f64>,
    min: Option<f64>,
    max: Option<f64>,
    /// Readings in the window.
    count: usize,
    /// Distinct readings since the vehicle was first seen (within retention); a
    /// device-stamped reading that arrives older than every reading of a full
    /// window is not counted, since it cannot be told from a resend.
    total: u64,
    unit: String,
    /// Timestamp of the newest reading.
    #[schema(value_type = Option<String>, format = DateTime)]
    updated_at: Option<Timestamp>,
}

impl SignalSummary {
    fn new(spec: &SignalSpec, history: Option<&SignalHistory>) -> Self {
        let aggregate = history.and_then(|h| Aggregate::of(&h.samples));
        Self {
            current: aggregate.map(|a| a.current),
            average: aggregate.map(|a| a.average),
            min: aggregate.map(|a| a.min),
            max: aggregate.map(|a| a.max),
            count: aggregate.map_or(0, |a| a.count),
            total: history.map_or(0, |h| h.total),
            unit: spec.unit.clone(),
            updated_at: aggregate.map(|a| a.updated_at),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct VehicleSummary {
    vehicle_id: String,
    /// When the server last received a reading from this vehicle.
    #[schema(value_type = String, format = DateTime)]
    last_seen: Timestamp,
    /// Every signal with data, by short name.
    signals: BTreeMap<String, SignalSummary>,
}

#[derive(Serialize, ToSchema)]
pub struct ReadingOut {
    #[schema(value_type = String, format = DateTime)]
    timestamp: Timestamp,
    value: f64,
}

impl From<&Sample> for ReadingOut {
    fn from(sample: &Sample) -> Self {
        Self { timestamp: sample.at, value: sample.value }
    }
}

#[derive(Serialize, ToSchema)]
pub struct SignalWindow {
    vehicle_id: String,
    signal: String,
    /// The window, newest first.
    readings: Vec<ReadingOut>,
    #[serde(flatten)]
    summary: SignalSummary,
}

#[derive(Serialize, ToSchema)]
pub struct SignalList {
    signals: Vec<SignalInfo>,
}

#[derive(Serialize, ToSchema)]
pub struct SignalInfo {
    name: String,
    unit: String,
    /// Smallest plausible value, inclusive.
    min: f64,
    /// Largest plausible value, inclusive.
    max: f64,
    description: String,
    /// COVESA VSS path, accepted in place of the name.
    vss_path: Option<String>,
}

/// Record readings of one vehicle: one object, or a batch that is stored all or nothing.
#[utoipa::path(
    post,
    path = "/v1/vehicles/{vehicle_id}/readings",
    tag = "v1",
    params(VehiclePath),
    request_body(content = ReadingsBody, content_type = "application/json",
        description = "Any Content-Type is accepted; the body must be JSON."),
    responses(
        (status = 200, description = "All readings stored", body = Accepted),
        BodyErrors,
        (status = 422, description = "An invalid vehicle id, or an invalid reading; nothing was stored. `errors[].pointer` names the index and field", body = Problem, content_type = "application/problem+json"),
        WriteErrors,
    )
)]
pub async fn post_readings(
    State(state): State<AppState>,
    PathVehicle(vehicle): PathVehicle,
    JsonBody(body): JsonBody,
) -> Result<Json<Accepted>, ApiError> {
    let readings = wire::parse_batch(&body, &state.parse_context())?;
    state.record(&vehicle, &readings).await?;
    Ok(Json(Accepted { accepted: readings.len() }))
}

/// A vehicle's signals: current, average, min, max, count and total of each.
#[utoipa::path(
    get,
    path = "/v1/vehicles/{vehicle_id}",
    tag = "v1",
    params(VehiclePath),
    responses(
        (status = 200, description = "The vehicle's summary", body = VehicleSummary),
        (status = 404, description = "The vehicle has sent nothing within the retention period", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid vehicle id", body = Problem, content_type = "application/problem+json"),
        ReadErrors,
    )
)]
pub async fn get_vehicle(
    State(state): State<AppState>,
    PathVehicle(vehicle): PathVehicle,
) -> Result<Json<VehicleSummary>, ApiError> {
    let history = history_or_404(&state, &vehicle, state.catalog.names()).await?;
    let signals = state
        .catalog
        .signals()
        .iter()
        .filter_map(|spec| {
            let signal = history.signals.get(&spec.name)?;
            Some((spec.name.to_string(), SignalSummary::new(spec, Some(signal))))
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
    params(VehiclePath, SignalPath),
    responses(
        (status = 200, description = "The window", body = SignalWindow),
        (status = 404, description = "Unknown signal, or a vehicle that has sent nothing", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid vehicle id", body = Problem, content_type = "application/problem+json"),
        ReadErrors,
    )
)]
pub async fn get_signal(
    State(state): State<AppState>,
    PathVehicle(vehicle): PathVehicle,
    Path(SignalPath { signal }): Path<SignalPath>,
) -> Result<Json<SignalWindow>, ApiError> {
    let spec = state.catalog.get(&signal).ok_or_else(|| {
        ApiError::NotFound(format!(
            "there is no signal {signal:?}; known signals: {}",
            state.catalog.describe_names()
        ))
    })?;
    let history = history_or_404(&state, &vehicle, std::slice::from_ref(&spec.name)).await?;
    let signal = history.signals.get(&spec.name);
    Ok(Json(SignalWindow {
        vehicle_id: vehicle.to_string(),
        signal: spec.name.to_string(),
        readings: signal
            .map(|s| s.samples.iter().map(ReadingOut::from).collect())
            .unwrap_or_default(),
        summary: SignalSummary::new(spec, signal),
    }))
}

/// The signal catalog.
#[utoipa::path(get, path = "/v1/signals", tag = "v1", responses((status = 200, body = SignalList)))]
pub async fn list_signals(State(state): State<AppState>) -> Json<SignalList> {
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
    vehicle: &VehicleId,
    signals: &[SignalName],
) -> Result<VehicleHistory, ApiError> {
    state.history(vehicle, signals).await?.ok_or_else(|| {
        ApiError::NotFound(format!(
            "vehicle {:?} has sent no readings (or none within the retention period)",
            vehicle.as_str()
        ))
    })
}
