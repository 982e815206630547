//! Wire formats shared by the API surfaces: JSON reading objects and their
//! timestamps turned into domain types. Every rule about what a client may send
//! in a reading lives here (each surface's own body shapes live in its
//! `wire` module), and every rejection names the field (as a JSON pointer) and
//! says what was expected.

mod reading;
#[cfg(test)]
mod tests;
mod timestamp;

use serde_json::Value;

pub(super) use self::reading::parse_reading_object;
use super::problem::{ApiError, FieldError};
use crate::domain::{Catalog, Clock, VehicleId};

/// At most this many field errors are listed in one response.
pub(super) const MAX_LISTED_ERRORS: usize = 20;

/// What parsing needs from the server.
pub struct ParseContext<'a> {
    pub catalog: &'a Catalog,
    pub clock: &'a Clock,
}

/// The value, or every field error found on the way to it.
pub(super) fn finish<T>(mut errors: Vec<FieldError>, value: T) -> Result<T, ApiError> {
    if errors.is_empty() {
        Ok(value)
    } else {
        errors.truncate(MAX_LISTED_ERRORS);
        Err(ApiError::invalid(errors))
    }
}

/// Appends to `errors` the refusal of a body's vehicle id at `pointer`, or
/// returns the vehicle.
pub(super) fn parse_vehicle_field(
    value: &Value,
    pointer: &str,
    errors: &mut Vec<FieldError>,
) -> Option<VehicleId> {
    let Some(id) = value.as_str() else {
        errors.push(FieldError::new(pointer, format!("must be a string, not {}", describe(value))));
        return None;
    };
    VehicleId::try_from(id)
        .map_err(|err| errors.push(FieldError::new(pointer, err.to_string())))
        .ok()
}

/// A JSON pointer to `key` inside the object at `prefix` (RFC 6901 escaping).
pub(super) fn pointer_to(prefix: &str, key: &str) -> String {
    format!("{prefix}/{}", key.replace('~', "~0").replace('/', "~1"))
}

/// A number as a person reads it: `1e300`, not three hundred digits.
pub(super) fn short(number: f64) -> String {
    if number != 0.0 && !(1e-4..1e9).contains(&number.abs()) {
        format!("{number:e}")
    } else {
        number.to_string()
    }
}

/// "a string (\"NaN\")", "null", …: what the caller sent, for error messages.
pub(super) fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("a boolean ({b})"),
        Value::Number(n) => format!("a number ({n})"),
        Value::String(s) if s.chars().count() <= 32 => format!("a string ({s:?})"),
        Value::String(_) => "a string".into(),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}
