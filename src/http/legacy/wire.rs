//! The legacy API's bodies: `/record`'s reading (which may name its vehicle)
//! and `/collect`'s optional `{"vehicle_id": …}`.

use serde_json::Value;

use crate::domain::{Reading, VehicleId};
use crate::http::problem::{ApiError, FieldError};
use crate::http::wire::{
    ParseContext, describe, finish, parse_reading_object, parse_vehicle_field, pointer_to,
};

/// The legacy `/record` body.
#[derive(Debug)]
pub struct RecordRequest {
    pub vehicle: Option<VehicleId>,
    pub readings: Vec<Reading>,
}

/// Parses `{"engine_temperature": 90.5, "vehicle_id": "…", "timestamp": …}`.
pub fn parse_record(body: &Value, ctx: &ParseContext) -> Result<RecordRequest, ApiError> {
    let mut errors = Vec::new();
    let Some(object) = body.as_object() else {
        return Err(ApiError::invalid(vec![FieldError::new(
            "",
            format!(
                "the body must be a JSON object of signal values such as {{\"engine_temperature\": 90.5}}, not {}",
                describe(body)
            ),
        )]));
    };
    let vehicle = match object.get("vehicle_id") {
        None => None,
        Some(value) => parse_vehicle_field(value, "/vehicle_id", &mut errors),
    };
    let readings = parse_reading_object(object, "", true, ctx, ctx.clock.now(), &mut errors);
    finish(errors, RecordRequest { vehicle, readings })
}

/// The vehicle named in a `/collect` body, if any. The body may be absent, `{}`
/// or `{"vehicle_id": "…"}`.
pub fn parse_collect(body: Option<&Value>) -> Result<Option<VehicleId>, ApiError> {
    let Some(body) = body else { return Ok(None) };
    let Some(object) = body.as_object() else {
        return Err(ApiError::invalid(vec![FieldError::new(
            "",
            format!(
                "the body must be empty or a JSON object such as {{\"vehicle_id\": \"car-1\"}}, not {}",
                describe(body)
            ),
        )]));
    };
    let mut errors = Vec::new();
    let mut vehicle = None;
    for (key, value) in object {
        if key == "vehicle_id" {
            vehicle = parse_vehicle_field(value, "/vehicle_id", &mut errors);
        } else {
            errors.push(FieldError::new(
                pointer_to("", key),
                "unknown field; /collect accepts only `vehicle_id`",
            ));
        }
    }
    finish(errors, vehicle)
}
