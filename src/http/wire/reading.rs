//! A reading object: signal values by name or VSS path, plus an optional
//! `timestamp`.

use serde_json::{Map, Value};

use super::timestamp::parse_timestamp;
use super::{MAX_LISTED_ERRORS, ParseContext, describe, pointer_to, short};
use crate::domain::signal::RESERVED_NAMES;
use crate::domain::{Catalog, Reading, SignalSpec, StampedBy, Timestamp};
use crate::http::problem::FieldError;

/// Parses one reading object: signal values plus an optional `timestamp` (and,
/// on `/record`, `vehicle_id`, which the caller reads).
pub(in crate::http) fn parse_reading_object(
    object: &Map<String, Value>,
    prefix: &str,
    allow_vehicle_id: bool,
    ctx: &ParseContext,
    now: Timestamp,
    errors: &mut Vec<FieldError>,
) -> Vec<Reading> {
    let errors_before = errors.len();
    let at = match object.get("timestamp") {
        None => None,
        Some(value) => parse_timestamp(value, prefix, now, errors),
    };
    let mut values: Vec<(&SignalSpec, f64)> = Vec::with_capacity(object.len());
    for (key, value) in object {
        if errors.len() >= MAX_LISTED_ERRORS {
            break;
        }
        if key == "timestamp" || (allow_vehicle_id && key == "vehicle_id") {
            continue;
        }
        // Made only for an error: most readings have none.
        let pointer = || pointer_to(prefix, key);
        let Some(spec) = ctx.catalog.get(key) else {
            errors.push(FieldError::new(
                pointer(),
                unknown_field(key, allow_vehicle_id, ctx.catalog),
            ));
            continue;
        };
        if values.iter().any(|(seen, _)| seen.name == spec.name) {
            errors.push(FieldError::new(
                pointer(),
                format!("{} is given twice (by name and by VSS path)", spec.name),
            ));
            continue;
        }
        match value.as_f64() {
            Some(number) if spec.contains(number) => values.push((spec, number)),
            Some(number) => errors.push(FieldError::new(
                pointer(),
                format!(
                    "{} is outside the plausible range for {}: {} to {} {}",
                    short(number),
                    spec.name,
                    spec.min,
                    spec.max,
                    spec.unit
                ),
            )),
            None => errors.push(FieldError::new(
                pointer(),
                format!(
                    "must be a number ({}, from {} to {}), not {}",
                    spec.unit,
                    spec.min,
                    spec.max,
                    describe(value)
                ),
            )),
        }
    }
    if values.is_empty() && errors.len() == errors_before {
        errors.push(FieldError::new(
            prefix,
            format!("no signal values; send at least one of: {}", ctx.catalog.describe_names()),
        ));
    }
    // Stamp only readings that will be stored, so rejected input costs no stamps.
    let (at, stamped_by) = match at {
        Some(at) => (at, StampedBy::Device),
        None => (ctx.clock.stamp(), StampedBy::Server),
    };
    values
        .into_iter()
        .map(|(spec, value)| Reading { signal: spec.name.clone(), at, value, stamped_by })
        .collect()
}

fn unknown_field(key: &str, allow_vehicle_id: bool, catalog: &Catalog) -> String {
    let mut candidates: Vec<&str> = catalog.signals().iter().map(|s| s.name.as_str()).collect();
    candidates.push("timestamp");
    if allow_vehicle_id {
        candidates.push("vehicle_id");
    }
    let suggestion = candidates
        .iter()
        .map(|c| (strsim::levenshtein(key, c), *c))
        .filter(|(distance, c)| *distance <= 3.max(c.len() / 4))
        .min();
    let extra =
        if allow_vehicle_id { ", plus `vehicle_id` and `timestamp`" } else { ", plus `timestamp`" };
    let known = format!("known signals: {}{extra}", catalog.describe_names());
    match suggestion {
        Some((_, name)) => format!("unknown field; did you mean `{name}`? ({known})"),
        None if RESERVED_NAMES.contains(&key) => format!("`{key}` is not accepted here ({known})"),
        None => format!("unknown field ({known})"),
    }
}
