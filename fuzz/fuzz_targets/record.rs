//! The seed's `/record` body: JSON text through `body::parse_json`, then
//! `wire::parse_record`. What is accepted is a set of in-range catalog readings
//! at one instant; what is refused names each bad field with a pointer into the
//! body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tributary::domain::{Catalog, Clock, MAX_FUTURE_MICROS, StampedBy};
use tributary::http::body::parse_json;
use tributary::http::legacy::wire::parse_record;
use tributary::http::wire::ParseContext;
use tributary_fuzz::check_invalid;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = parse_json(data, "{}") else { return };
    let catalog = Catalog::builtin();
    let clock = Clock::new();
    let before = clock.now();
    match parse_record(&body, &ParseContext { catalog: &catalog, clock: &clock }) {
        Ok(request) => {
            let object = body.as_object().expect("only an object is a record");
            assert_eq!(request.vehicle.is_some(), object.contains_key("vehicle_id"));
            if let Some(vehicle) = &request.vehicle {
                assert_eq!(object["vehicle_id"], vehicle.as_str());
            }
            let reserved =
                ["vehicle_id", "timestamp"].iter().filter(|k| object.contains_key(**k)).count();
            assert_eq!(request.readings.len(), object.len() - reserved, "{body}");
            let first = request.readings.first().expect("an accepted record has a reading");
            for reading in &request.readings {
                let spec = catalog.get(reading.signal.as_str()).expect("a catalog signal");
                assert!(spec.contains(reading.value), "{body}");
                assert_eq!(reading.at, first.at);
                let device = object.contains_key("timestamp");
                assert_eq!(reading.stamped_by == StampedBy::Device, device);
                if device {
                    assert!(reading.at.as_millis() >= 946_684_800_000, "{body}");
                    assert!(reading.at <= clock.now().plus_micros(MAX_FUTURE_MICROS), "{body}");
                } else {
                    assert!(reading.at >= before, "{body}");
                }
            }
        }
        Err(err) => check_invalid(&body, err),
    }
});
