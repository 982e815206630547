//! The v1 API: a fleet of vehicles, each with many signals, readings stamped by
//! the device and sent one at a time or in batches.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::AppState;
use super::body::JsonBody;
use super::problem::{ApiError, Problem};
use super::vehicle::PathVehicle;
use super::wire;
use crate::domain::{Aggregate, Sample, SignalSpec, Timestamp};
use crate::store::SignalHistory;

/// A reading: one or more signals (short name or VSS path) at one instant.
#[derive(ToSchema)]
#[schema(
    example = json!({"timestamp": "2026-11-27T18:00:00.250Z", "engine_temperature": 88.5, "vehicle_speed": 42})
)]
#[allow(dead_code)] // documentation only: bodies are parsed by `wire`
pub struct ReadingObject {
    /// RFC 3339 date-time or integer milliseconds since the epoch, at most 5
    /// minutes ahead of the server; the server's receive time when absent.
    #[schema(value_type = Option<String>)]
    timestamp: Option<Value>,
    engine_temperature: Option<f64>,
    vehicle_speed: Option<f64>,
    engine_rpm: Option<f64>,
    cabin_temperature: Option<f64>,
}

/// One reading object, or an array of 1 to 1000.
#[derive(ToSchema)]
#[allow(dead_code)] // documentation only
pub enum ReadingsBody {
    One(ReadingObject),
    Many(Vec<ReadingObject>),
}

#[derive(Serialize, ToSchema)]
pub struct Accepted {
    /// Number of signal values stored.
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
    /// Readings accepted since the vehicle was first seen (within retention).
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
        Self {
            timestamp: sample.at,
            value: sample.value,
        }
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
    params(("vehicle_id" = String, Path, description = "1 to 64 of A-Z a-z 0-9 - _ .")),
    request_body(content = ReadingsBody, content_type = "application/json"),
    responses(
        (status = 200, description = "All readings stored", body = Accepted),
        (status = 400, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over 1 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 408, description = "The body did not arrive in time", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A reading is invalid; nothing was stored. `errors[].pointer` names the index and field", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Store unavailable; nothing was stored", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn post_readings(
    State(state): State<AppState>,
    PathVehicle(vehicle): PathVehicle,
    JsonBody(body): JsonBody,
) -> Result<Json<Accepted>, ApiError> {
    let readings = wire::parse_batch(&body, &state.parse_context())?;
    state
        .store
        .record(&vehicle, &readings, state.clock.now())
        .await?;
    Ok(Json(Accepted {
        accepted: readings.len(),
    }))
}

/// A vehicle's signals: current, average, min, max, count and total of each.
#[utoipa::path(
    get,
    path = "/v1/vehicles/{vehicle_id}",
    tag = "v1",
    params(("vehicle_id" = String, Path, description = "1 to 64 of A-Z a-z 0-9 - _ .")),
    responses(
        (status = 200, description = "The vehicle's summary", body = VehicleSummary),
        (status = 404, description = "The vehicle has sent nothing within the retention period", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid vehicle id", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Store unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_vehicle(
    State(state): State<AppState>,
    PathVehicle(vehicle): PathVehicle,
) -> Result<Json<VehicleSummary>, ApiError> {
    let history = state
        .store
        .history(&vehicle, state.catalog.names())
        .await?
        .ok_or_else(|| never_seen(&vehicle))?;
    let signals = state
        .catalog
        .signals()
        .iter()
        .filter_map(|spec| {
            let signal = history.signals.get(&spec.name)?;
            Some((
                spec.name.to_string(),
                SignalSummary::new(spec, Some(signal)),
            ))
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
    params(
        ("vehicle_id" = String, Path, description = "1 to 64 of A-Z a-z 0-9 - _ ."),
        ("signal" = String, Path, description = "Short name or VSS path"),
    ),
    responses(
        (status = 200, description = "The window", body = SignalWindow),
        (status = 404, description = "Unknown signal, or a vehicle that has sent nothing", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid vehicle id", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Store unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_signal(
    State(state): State<AppState>,
    PathVehicle(vehicle): PathVehicle,
    Path(params): Path<(String, String)>,
) -> Result<Json<SignalWindow>, ApiError> {
    let signal = params.1;
    let spec = state.catalog.get(&signal).ok_or_else(|| {
        ApiError::NotFound(format!(
            "there is no signal {signal:?}; known signals: {}",
            state.catalog.describe_names()
        ))
    })?;
    let history = state
        .store
        .history(&vehicle, std::slice::from_ref(&spec.name))
        .await?
        .ok_or_else(|| never_seen(&vehicle))?;
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

fn never_seen(vehicle: &crate::domain::VehicleId) -> ApiError {
    ApiError::NotFound(format!(
        "vehicle {:?} has sent no readings (or none within the retention period)",
        vehicle.as_str()
    ))
}
