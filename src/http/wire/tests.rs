//! The reading rules, through both surfaces' parsers.

use serde_json::{Value, json};

use super::ParseContext;
use crate::domain::{Catalog, Clock, Reading};
use crate::http::legacy::wire::{RecordRequest, parse_collect, parse_record};
use crate::http::problem::{ApiError, FieldError};
use crate::http::v1::wire::parse_batch;

fn record(body: Value) -> Result<RecordRequest, Vec<FieldError>> {
    let catalog = Catalog::builtin();
    let clock = Clock::new();
    parse_record(&body, &ParseContext { catalog: &catalog, clock: &clock }).map_err(|err| match err
    {
        ApiError::InvalidRequest { errors, .. } => errors,
        other => panic!("unexpected {other:?}"),
    })
}

fn batch(body: Value) -> Result<Vec<Reading>, Vec<FieldError>> {
    let catalog = Catalog::builtin();
    let clock = Clock::new();
    parse_batch(&body, &ParseContext { catalog: &catalog, clock: &clock }).map_err(
        |err| match err {
            ApiError::InvalidRequest { errors, .. } => errors,
            other => panic!("unexpected {other:?}"),
        },
    )
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
        (json!({"engine_temperature": -273}), "/engine_temperature", "outside the plausible range"),
        (json!({"engine_temperature": 1e300}), "/engine_temperature", "outside"),
        (
            json!({"engine_temprature": 90}),
            "/engine_temprature",
            "did you mean `engine_temperature`",
        ),
        (json!({"engine_temperature": 90, "foo/bar": 1}), "/foo~1bar", "unknown field"),
        (
            json!({"engine_temperature": 90, "vehicle_id": "a b"}),
            "/vehicle_id",
            "not a valid vehicle id",
        ),
        (json!({"engine_temperature": 90, "vehicle_id": 7}), "/vehicle_id", "must be a string"),
        (json!({"engine_temperature": 90, "timestamp": "noon"}), "/timestamp", "RFC 3339"),
        (json!({"engine_temperature": 90, "timestamp": 1.5}), "/timestamp", "integer milliseconds"),
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
        (json!("3193-01-15T00:22:21Z"), "\"3193-01-15T00:22:21Z\" is more than 5 minutes ahead"),
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
    for at in [json!("1969-12-31"), json!("2026-02-29T00:00:00Z"), json!(1.5e12 + 0.5), json!(true)]
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
    let readings = batch(json!([{"engine_rpm": 800, "timestamp": 1_767_225_600_000.0}])).unwrap();
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
    let a = record(json!({"engine_temperature": 90, "timestamp": "2026-01-01T00:00:00Z"})).unwrap();
    let b = record(json!({"engine_temperature": 90, "timestamp": 1_767_225_600_000i64})).unwrap();
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
    assert!(batch(Value::Array(vec![item; 1001])).unwrap_err()[0].detail.contains("at most 1000"));
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
