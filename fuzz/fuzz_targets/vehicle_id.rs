//! A vehicle id from a path or query (`wire::parse_vehicle_param`): accepted
//! exactly when it is 1 to 64 characters matching the documented pattern
//! (`A-Z a-z 0-9 . _ -`, other than `.` and `..`),
//! and refused as an invalid `vehicle_id` parameter otherwise.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tributary::http::problem::ApiError;
use tributary::http::vehicle::parse_vehicle_param;

fuzz_target!(|id: &str| {
    let documented = (1..=64).contains(&id.chars().count())
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && !matches!(id, "." | "..");
    match parse_vehicle_param(id) {
        Ok(vehicle) => {
            assert!(documented, "{id:?} was accepted");
            assert_eq!(vehicle.as_str(), id);
        }
        Err(ApiError::InvalidRequest { errors, .. }) => {
            assert!(!documented, "{id:?} was refused");
            assert_eq!(errors.len(), 1);
            assert_eq!(errors[0].parameter.as_deref(), Some("vehicle_id"));
            assert_eq!(errors[0].pointer, None);
        }
        Err(other) => panic!("not an invalid-request problem: {other:?}"),
    }
});
