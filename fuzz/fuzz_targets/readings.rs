//! The v1 readings body, one object or a batch: JSON text through
//! `body::parse_json`, then `wire::parse_batch`. A batch is all or nothing;
//! every refusal names the index and field with a pointer into the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tributary::domain::{Catalog, Clock, MAX_BATCH, MAX_FUTURE_MICROS, StampedBy};
use tributary::http::body::parse_json;
use tributary::http::v1::wire::parse_batch;
use tributary::http::wire::ParseContext;
use tributary_fuzz::check_invalid;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = parse_json(data, "{}") else { return };
    let catalog = Catalog::builtin();
    let clock = Clock::new();
    match parse_batch(&body, &ParseContext { catalog: &catalog, clock: &clock }) {
        Ok(readings) => {
            let objects: Vec<&serde_json::Map<String, Value>> = match &body {
                Value::Object(object) => vec![object],
                Value::Array(items) => {
                    assert!((1..=MAX_BATCH).contains(&items.len()), "{} items", items.len());
                    items.iter().map(|i| i.as_object().expect("only objects in a batch")).collect()
                }
                other => panic!("accepted {other}"),
            };
            let expected: usize =
                objects.iter().map(|o| o.len() - usize::from(o.contains_key("timestamp"))).sum();
            assert_eq!(readings.len(), expected, "{body}");
            let mut readings = readings.iter();
            for object in objects {
                let device = object.contains_key("timestamp");
                let signals = object.len() - usize::from(device);
                assert!(signals > 0, "a reading object without a signal: {body}");
                for reading in readings.by_ref().take(signals) {
                    let spec = catalog.get(reading.signal.as_str()).expect("a catalog signal");
                    assert!(spec.contains(reading.value), "{body}");
                    assert_eq!(reading.stamped_by == StampedBy::Device, device);
                    if device {
                        assert!(reading.at.as_millis() >= 946_684_800_000, "{body}");
                        assert!(reading.at <= clock.now().plus_micros(MAX_FUTURE_MICROS));
                    }
                }
            }
        }
        Err(err) => check_invalid(&body, err),
    }
});
