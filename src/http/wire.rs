//! Wire formats: JSON request bodies turned into domain types. Every rule about
//! what a client may send lives here, and every rejection names the field (as a
//! JSON pointer) and says what was expected.

use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::problem::{ApiError, FieldError};
use crate::domain::signal::RESERVED_NAMES;
use crate::domain::{Catalog, Clock, Reading, SignalSpec, StampedBy, Timestamp, VehicleId};

/// Most readings one request may carry in a JSON array.
pub const MAX_BATCH: usize = 1000;

/// How far ahead of the server's clock a device timestamp may be.
pub const MAX_FUTURE_MICROS: i64 = 5 * 60 * 1_000_000;

/// 2000-01-01T00:00:00Z in milliseconds: no telemetry reading is older.
pub(crate) const MILLIS_2000: i64 = 946_684_800_000;

/// At most this many field errors are listed in one response.
const MAX_LISTED_ERRORS: usize = 20;

/// What parsing needs from the server.
pub struct ParseContext<'a> {
    pub catalog: &'a Catalog,
    pub clock: &'a Clock,
}

/// The seed's `/record` body.
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

/// A vehicle id from a path segment or query parameter.
pub fn parse_vehicle_param(id: &str) -> Result<VehicleId, ApiError> {
    VehicleId::try_from(id).map_err(|rule| {
        ApiError::invalid(vec![FieldError::parameter(
            "vehicle_id",
            format!("{id:?} is not a valid vehicle id: {rule}"),
        )])
    })
}

fn finish<T>(mut errors: Vec<FieldError>, value: T) -> Result<T, ApiError> {
    if errors.is_empty() {
        Ok(value)
    } else {
        errors.truncate(MAX_LISTED_ERRORS);
        Err(ApiError::invalid(errors))
    }
}

fn parse_vehicle_field(
    value: &Value,
    pointer: &str,
    errors: &mut Vec<FieldError>,
) -> Option<VehicleId> {
    let Some(id) = value.as_str() else {
        errors.push(FieldError::new(pointer, format!("must be a string, not {}", describe(value))));
        return None;
    };
    VehicleId::try_from(id)
        .map_err(|rule| {
            errors.push(FieldError::new(pointer, format!("{id:?} is not valid: {rule}")))
        })
        .ok()
}

/// Parses one reading object: signal values plus an optional `timestamp` (and,
/// on `/record`, `vehicle_id`, which the caller reads).
fn parse_reading_object(
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

/// The timestamp of the reading object at `prefix`.
fn parse_timestamp(
    value: &Value,
    prefix: &str,
    now: Timestamp,
    errors: &mut Vec<FieldError>,
) -> Option<Timestamp> {
    let pointer = || pointer_to(prefix, "timestamp");
    let millis = match value {
        Value::Number(number) => integer_millis(number),
        _ => None,
    };
    let at = match value {
        Value::String(text) => Timestamp::parse_rfc3339(text),
        _ => millis.and_then(|n| i64::try_from(n).ok()).and_then(Timestamp::from_millis),
    };
    let hint = match millis.and_then(|n| i64::try_from(n).ok()) {
        Some(n) if (0..MILLIS_2000).contains(&n) && n >= MILLIS_2000 / 1000 => {
            "; it looks like seconds: send milliseconds (multiply by 1000)"
        }
        Some(n) if n > MILLIS_2000 * 1000 => "; it looks like microseconds: send milliseconds",
        _ => "",
    };
    match at {
        Some(at) if at > now.plus_micros(MAX_FUTURE_MICROS) => {
            errors.push(FieldError::new(
                pointer(),
                format!(
                    "{} is more than 5 minutes ahead of the server's clock ({}){hint}; check the device's clock",
                    at.to_rfc3339(),
                    now.to_rfc3339()
                ),
            ));
            None
        }
        Some(at) if at.as_millis() < MILLIS_2000 => {
            // A device clock that booted at 1970, or seconds sent as milliseconds:
            // either way the reading would land decades in the past.
            errors.push(FieldError::new(
                pointer(),
                format!("{} is before 2000-01-01{hint}; check the device's clock", at.to_rfc3339()),
            ));
            None
        }
        Some(at) => Some(at),
        None => {
            errors.push(FieldError::new(pointer(), unusable_timestamp(value, millis, now, hint)));
            None
        }
    }
}

/// Why a timestamp that names no instant a reading can have was refused. A
/// date-time or integer beyond the range a timestamp can hold (1970 to 2255) is
/// refused for its range, like one just outside the accepted range; anything
/// else is not a timestamp at all.
fn unusable_timestamp(value: &Value, millis: Option<i128>, now: Timestamp, hint: &str) -> String {
    const EXPECTED: &str = "an RFC 3339 date-time such as \"2026-11-27T18:00:00.250Z\" or integer milliseconds since the Unix epoch";
    let before =
        |what: String| format!("{what} is before 2000-01-01{hint}; check the device's clock");
    let ahead = |what: String| {
        format!(
            "{what} is more than 5 minutes ahead of the server's clock ({}){hint}; check the device's clock",
            now.to_rfc3339()
        )
    };
    match value {
        Value::String(text) => {
            let shown = if text.chars().count() <= 40 {
                format!("{text:?}")
            } else {
                "the date-time".into()
            };
            match OffsetDateTime::parse(text, &Rfc3339) {
                Ok(at) if at.unix_timestamp() < 0 => before(shown),
                Ok(_) => ahead(shown),
                Err(_) => format!("must be {EXPECTED}, not {}", describe(value)),
            }
        }
        Value::Number(n) if millis.is_some_and(|m| m < 0) => before(format!("{n} ms")),
        Value::Number(n) if millis.is_some() => ahead(format!("{n} ms")),
        _ => format!("must be {EXPECTED}, not {}{hint}", describe(value)),
    }
}

/// A number as integer milliseconds, if it is an integer in JSON Schema's sense
/// (the document's type for a timestamp): `1764268317000`, and also
/// `1764268317000.0` or `1.764268317e12`, which some JSON encoders write.
fn integer_millis(number: &serde_json::Number) -> Option<i128> {
    if let Some(n) = number.as_i64() {
        return Some(n.into());
    }
    if let Some(n) = number.as_u64() {
        return Some(n.into());
    }
    // `as` saturates, beyond any range a timestamp has; every integral f64 in
    // the accepted range is exact.
    number.as_f64().filter(|x| x.fract() == 0.0).map(|x| x as i128)
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

/// A JSON pointer to `key` inside the object at `prefix` (RFC 6901 escaping).
fn pointer_to(prefix: &str, key: &str) -> String {
    format!("{prefix}/{}", key.replace('~', "~0").replace('/', "~1"))
}

/// A number as a person reads it: `1e300`, not three hundred digits.
fn short(number: f64) -> String {
    if number != 0.0 && !(1e-4..1e9).contains(&number.abs()) {
        format!("{number:e}")
    } else {
        number.to_string()
    }
}

/// "a string (\"NaN\")", "null", …: what the caller sent, for error messages.
fn describe(value: &Value) -> String {
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn record(body: Value) -> Result<RecordRequest, Vec<FieldError>> {
        let catalog = Catalog::builtin();
        let clock = Clock::new();
        parse_record(&body, &ParseContext { catalog: &catalog, clock: &clock }).map_err(|err| {
            match err {
                ApiError::InvalidRequest { errors, .. } => errors,
                other => panic!("unexpected {other:?}"),
            }
        })
    }

    fn batch(body: Value) -> Result<Vec<Reading>, Vec<FieldError>> {
        let catalog = Catalog::builtin();
        let clock = Clock::new();
        parse_batch(&body, &ParseContext { catalog: &catalog, clock: &clock }).map_err(|err| {
            match err {
                ApiError::InvalidRequest { errors, .. } => errors,
                other => panic!("unexpected {other:?}"),
            }
        })
    }

    #[test]
    fn the_seed_body_parses() {
        for body in [json!({"engine_temperature": 0.3}), json!({"engine_temperature": 90})] {
            let request = record(body).unwrap();
            assert_eq!(request.vehicle, None);
            assert_eq!(request.readings.len(), 1);
            assert_eq!(request.readings[0].signal.as_str(), "engine_temperature");
        }
    }

    #[test]
    fn bad_record_bodies_name_the_field_and_what_was_expected() {
        let cases = [
            (json!(null), "", "not null"),
            (json!([1]), "", "not an array"),
            (json!("hot"), "", "not a string"),
            (json!({}), "", "no signal values"),
            (json!({"engine_temperature": null}), "/engine_temperature", "must be a number"),
            (json!({"engine_temperature": "NaN"}), "/engine_temperature", "not a string (\"NaN\")"),
            (json!({"engine_temperature": "90"}), "/engine_temperature", "must be a number"),
            (json!({"engine_temperature": true}), "/engine_temperature", "not a boolean"),
            (json!({"engine_temperature": [90]}), "/engine_temperature", "not an array"),
            (json!({"engine_temperature": {"v": 90}}), "/engine_temperature", "not an object"),
            (json!({"engine_temperature": 215.5}), "/engine_temperature", "-40 to 215 celsius"),
            (
                json!({"engine_temperature": -273}),
                "/engine_temperature",
                "outside the plausible range",
            ),
            (json!({"engine_temperature": 1e300}), "/engine_temperature", "outside"),
            (
                json!({"engine_temprature": 90}),
                "/engine_temprature",
                "did you mean `engine_temperature`",
            ),
            (json!({"engine_temperature": 90, "foo/bar": 1}), "/foo~1bar", "unknown field"),
            (json!({"engine_temperature": 90, "vehicle_id": "a b"}), "/vehicle_id", "not valid"),
            (json!({"engine_temperature": 90, "vehicle_id": 7}), "/vehicle_id", "must be a string"),
            (json!({"engine_temperature": 90, "timestamp": "noon"}), "/timestamp", "RFC 3339"),
            (
                json!({"engine_temperature": 90, "timestamp": 1.5}),
                "/timestamp",
                "integer milliseconds",
            ),
            (
                json!({"engine_temperature": 90, "timestamp": 99_999_999_999_999i64}),
                "/timestamp",
                "5 minutes ahead",
            ),
            (
                json!({"engine_temperature": 90, "timestamp": 1_764_268_317i64}),
                "/timestamp",
                "looks like seconds",
            ),
            (
                json!({"engine_temperature": 90, "timestamp": 1_764_268_317_000_000i64}),
                "/timestamp",
                "looks like microseconds",
            ),
            (json!({"engine_temperature": 90, "timestamp": 0}), "/timestamp", "before 2000-01-01"),
            (
                json!({"engine_temperature": 90, "timestamp": "1999-12-31T23:59:59Z"}),
                "/timestamp",
                "before 2000-01-01",
            ),
            (json!({"engine_temperature": 1e300}), "/engine_temperature", "1e300 is outside"),
            (
                json!({"engine_temperature": 90, "Vehicle.Powertrain.CombustionEngine.EngineCoolant.Temperature": 91}),
                "",
                "given twice",
            ),
        ];
        for (body, pointer, expected) in cases {
            let errors = record(body.clone()).expect_err(&body.to_string());
            let error = &errors[0];
            assert!(
                error.pointer.as_deref() == Some(pointer)
                    || pointer.is_empty() && error.detail.contains(expected),
                "{body}: pointer {:?}, expected {pointer:?}",
                error.pointer
            );
            assert!(
                error.detail.contains(expected),
                "{body}: {:?} should mention {expected:?}",
                error.detail
            );
        }
    }

    /// Found by fuzzing: a well-formed date-time or integer beyond what a
    /// timestamp can hold (before 1970, after 2255) was refused as if it were
    /// not a timestamp at all ("must be an RFC 3339 date-time …").
    #[test]
    fn timestamps_beyond_the_representable_range_are_refused_for_their_range() {
        let cases = [
            (json!("1969-12-31T23:59:59Z"), "\"1969-12-31T23:59:59Z\" is before 2000-01-01"),
            (json!("0000-01-01T00:00:00+01:00"), "is before 2000-01-01"),
            (
                json!("3193-01-15T00:22:21Z"),
                "\"3193-01-15T00:22:21Z\" is more than 5 minutes ahead",
            ),
            (json!("9999-12-31T23:59:59.999999999Z"), "is more than 5 minutes ahead"),
            (json!(-1), "-1 ms is before 2000-01-01"),
            (json!(i64::MIN), "is before 2000-01-01"),
            (json!(u64::MAX), "18446744073709551615 ms is more than 5 minutes ahead"),
            (json!(i64::MAX), "is more than 5 minutes ahead"),
        ];
        for (at, expected) in cases {
            let errors = record(json!({"engine_temperature": 90, "timestamp": at})).unwrap_err();
            assert_eq!(errors.len(), 1, "{at}: {errors:?}");
            assert_eq!(errors[0].pointer.as_deref(), Some("/timestamp"));
            assert!(errors[0].detail.contains(expected), "{at}: {:?}", errors[0].detail);
        }
        // What is not a timestamp is still refused for its form.
        for at in
            [json!("1969-12-31"), json!("2026-02-29T00:00:00Z"), json!(1.5e12 + 0.5), json!(true)]
        {
            let errors = record(json!({"engine_temperature": 90, "timestamp": at})).unwrap_err();
            assert!(errors[0].detail.starts_with("must be an RFC 3339"), "{at}: {errors:?}");
        }
    }

    /// Found by schemathesis: the document types a millisecond timestamp as a
    /// JSON Schema `integer`, which `1767225600000.0` is, but it was refused as
    /// "not a number (1767225600000.0)".
    #[test]
    fn integer_milliseconds_may_be_written_as_integral_floats() {
        let expected =
            record(json!({"engine_temperature": 90, "timestamp": 1_767_225_600_000i64})).unwrap();
        for at in [json!(1_767_225_600_000.0), json!(1.7672256e12)] {
            let request = record(json!({"engine_temperature": 90, "timestamp": at})).unwrap();
            assert_eq!(request.readings[0].at, expected.readings[0].at, "{at}");
        }
        let readings =
            batch(json!([{"engine_rpm": 800, "timestamp": 1_767_225_600_000.0}])).unwrap();
        assert_eq!(readings[0].at, expected.readings[0].at);
        // Integral floats get the same range checks and hints as integers.
        let cases = [
            (json!(1_764_268_317.0), "looks like seconds"),
            (json!(-1.0), "before 2000-01-01"),
            (json!(1e300), "ms is more than 5 minutes ahead"),
            (json!(-1e300), "before 2000-01-01"),
        ];
        for (at, expected) in cases {
            let errors = record(json!({"engine_temperature": 90, "timestamp": at})).unwrap_err();
            assert!(errors[0].detail.contains(expected), "{at}: {:?}", errors[0].detail);
        }
        // Far beyond an i64, a number is no misplaced unit.
        let errors = record(json!({"engine_temperature": 90, "timestamp": 1e300})).unwrap_err();
        assert!(!errors[0].detail.contains("looks like"), "{:?}", errors[0].detail);
    }

    #[test]
    fn every_bad_field_is_reported() {
        let errors =
            record(json!({"engine_temperature": "x", "speed": 3, "timestamp": false})).unwrap_err();
        let pointers: Vec<_> = errors.iter().map(|e| e.pointer.as_deref()).collect();
        assert_eq!(pointers.len(), 3, "{pointers:?}");
    }

    #[test]
    fn timestamps_accept_rfc3339_and_epoch_millis() {
        let a =
            record(json!({"engine_temperature": 90, "timestamp": "2026-01-01T00:00:00Z"})).unwrap();
        let b =
            record(json!({"engine_temperature": 90, "timestamp": 1_767_225_600_000i64})).unwrap();
        assert_eq!(a.readings[0].at, b.readings[0].at);
    }

    #[test]
    fn readings_without_timestamps_get_distinct_server_stamps() {
        let readings = batch(json!([{"engine_rpm": 800}, {"engine_rpm": 900}])).unwrap();
        assert!(readings[0].at < readings[1].at);
    }

    #[test]
    fn a_batch_error_names_the_index_and_field() {
        let errors = batch(json!([{"engine_rpm": 800}, {"engine_rpm": -1}])).unwrap_err();
        assert_eq!(errors[0].pointer.as_deref(), Some("/1/engine_rpm"));
        let errors = batch(json!([{"engine_rpm": 800}, 5])).unwrap_err();
        assert_eq!(errors[0].pointer.as_deref(), Some("/1"));
        let errors = batch(json!({"engine_rpm": 800, "vehicle_id": "x"})).unwrap_err();
        assert_eq!(errors[0].pointer.as_deref(), Some("/vehicle_id"));
    }

    #[test]
    fn batches_are_limited_to_1000() {
        let item = json!({"engine_rpm": 800});
        assert_eq!(batch(Value::Array(vec![item.clone(); 1000])).unwrap().len(), 1000);
        assert!(
            batch(Value::Array(vec![item; 1001])).unwrap_err()[0].detail.contains("at most 1000")
        );
        assert!(batch(json!([])).unwrap_err()[0].detail.contains("empty"));
    }

    #[test]
    fn vss_paths_name_signals() {
        let readings =
            batch(json!({"Vehicle.Speed": 88, "Vehicle.Powertrain.CombustionEngine.Speed": 2500}))
                .unwrap();
        let mut names: Vec<_> = readings.iter().map(|r| r.signal.as_str()).collect();
        names.sort();
        assert_eq!(names, ["engine_rpm", "vehicle_speed"]);
    }

    #[test]
    fn collect_bodies() {
        assert_eq!(parse_collect(None).unwrap(), None);
        assert_eq!(parse_collect(Some(&json!({}))).unwrap(), None);
        assert_eq!(
            parse_collect(Some(&json!({"vehicle_id": "car-1"}))).unwrap().unwrap().as_str(),
            "car-1"
        );
        assert!(parse_collect(Some(&json!({"vehicle": "car-1"}))).is_err());
        assert!(parse_collect(Some(&json!([]))).is_err());
    }
}
