//! The v1 API's documented types: the readings body (parsed by `wire`, only
//! described here), the path parameters and the answers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ArrayBuilder, OneOfBuilder, Ref, Schema};
use utoipa::{IntoParams, PartialSchema, ToSchema};

use crate::domain::{MAX_BATCH, Sample, Timestamp};
use crate::http::openapi::{TimestampSchema, VehicleIdSchema};

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
    pub(super) timestamp: TimestampSchema,
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
                    .max_items(Some(MAX_BATCH)),
            )
            .description(Some(format!(
                "One reading object, or an array of 1 to {} stored all or nothing.",
                MAX_BATCH
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
    pub(super) vehicle_id: VehicleIdSchema,
}

/// The `{signal}` of a signal's URL (documented from the extractor).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SignalPath {
    /// Short name or VSS path; see `GET /v1/signals`.
    #[param(example = "engine_temperature")]
    pub(super) signal: String,
}

#[derive(Serialize, ToSchema)]
pub struct Accepted {
    /// Number of signal values accepted. A resent value, or a device-stamped one
    /// older than every reading of a full window, is accepted but changes nothing.
    pub(super) accepted: usize,
}

/// Aggregates of one signal over its window: one type with the streams
/// (see `live::SignalSummary`), so the two cannot drift apart.
pub use crate::live::SignalSummary;

#[derive(Serialize, ToSchema)]
pub struct VehicleSummary {
    pub(super) vehicle_id: String,
    /// When the server last received a reading from this vehicle.
    #[schema(value_type = String, format = DateTime)]
    pub(super) last_seen: Timestamp,
    /// Every signal with data, by short name.
    pub(super) signals: BTreeMap<String, SignalSummary>,
}

#[derive(Serialize, ToSchema)]
pub struct ReadingOut {
    #[schema(value_type = String, format = DateTime)]
    pub(super) timestamp: Timestamp,
    pub(super) value: f64,
}

impl From<&Sample> for ReadingOut {
    fn from(sample: &Sample) -> Self {
        Self { timestamp: sample.at, value: sample.value }
    }
}

#[derive(Serialize, ToSchema)]
pub struct SignalWindow {
    pub(super) vehicle_id: String,
    pub(super) signal: String,
    /// The window, newest first.
    pub(super) readings: Vec<ReadingOut>,
    #[serde(flatten)]
    pub(super) summary: SignalSummary,
}

#[derive(Serialize, ToSchema)]
pub struct SignalList {
    pub(super) signals: Vec<SignalInfo>,
}

#[derive(Serialize, ToSchema)]
pub struct SignalInfo {
    pub(super) name: String,
    pub(super) unit: String,
    /// Smallest plausible value, inclusive.
    pub(super) min: f64,
    /// Largest plausible value, inclusive.
    pub(super) max: f64,
    pub(super) description: String,
    /// COVESA VSS path, accepted in place of the name.
    pub(super) vss_path: Option<String>,
}
