//! The v1 readings body: one reading object, or an array of them.

use serde_json::Value;

use crate::domain::{MAX_BATCH, Reading};
use crate::http::problem::{ApiError, FieldError};
use crate::http::wire::{MAX_LISTED_ERRORS, ParseContext, describe, finish, parse_reading_object};

/// Parses a v1 readings body: one reading object, or an array of 1 to 1000.
pub fn parse_batch(body: &Value, ctx: &ParseContext) -> Result<Vec<Reading>, ApiError> {
    let mut errors = Vec::new();
    let now = ctx.clock.now();
    let readings = match body {
        Value::Object(object) => parse_reading_object(object, "", false, ctx, now, &mut errors),
        Value::Array(items) if items.is_empty() => {
            return Err(ApiError::invalid(vec![FieldError::new(
                "",
                "the array is empty; send 1 to 1000 readings",
            )]));
        }
        Value::Array(items) if items.len() > MAX_BATCH => {
            return Err(ApiError::invalid(vec![FieldError::new(
                "",
                format!(
                    "the array holds {} readings; send at most {MAX_BATCH} per request",
                    items.len()
                ),
            )]));
        }
        Value::Array(items) => {
            let mut readings = Vec::with_capacity(items.len());
            for (index, item) in items.iter().enumerate() {
                if errors.len() >= MAX_LISTED_ERRORS {
                    break; // enough to act on; the rest would only cost time
                }
                let pointer = format!("/{index}");
                match item.as_object() {
                    Some(object) => {
                        readings.extend(parse_reading_object(
                            object,
                            &pointer,
                            false,
                            ctx,
                            now,
                            &mut errors,
                        ));
                    }
                    None => errors.push(FieldError::new(
                        pointer,
                        format!("each reading must be a JSON object, not {}", describe(item)),
                    )),
                }
            }
            readings
        }
        other => {
            return Err(ApiError::invalid(vec![FieldError::new(
                "",
                format!(
                    "the body must be a reading object such as {{\"engine_temperature\": 90.5}} or an array of them, not {}",
                    describe(other)
                ),
            )]));
        }
    };
    finish(errors, readings)
}
