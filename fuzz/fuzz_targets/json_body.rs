//! The strict JSON body layer (`body::parse_json`) on raw bytes: it never
//! panics, refuses only with a malformed-body problem, and agrees with
//! serde_json on every body except one that gives a key twice.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tributary::http::body::parse_json;
use tributary::http::problem::ApiError;

const EXAMPLE: &str = r#"{"engine_temperature": 90.5}"#;

fuzz_target!(|data: &[u8]| {
    let without_bom = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    let plain = serde_json::from_slice::<Value>(without_bom);
    match parse_json(data, EXAMPLE) {
        Ok(value) => {
            // Strictness only ever refuses more than serde_json, never reads differently.
            let plain = plain.expect("serde_json refuses what parse_json accepted");
            assert_eq!(plain, value);
            // What we accept, printed again, is accepted again as the same value.
            let printed = serde_json::to_vec(&value).expect("a value prints");
            assert_eq!(parse_json(&printed, EXAMPLE).expect("a printed value parses"), value);
        }
        Err(ApiError::MalformedBody(detail)) => {
            assert!(detail.starts_with("the request body"), "{detail}");
            if plain.is_ok() {
                assert!(detail.contains("appears twice"), "serde_json accepts it: {detail}");
            }
        }
        Err(other) => panic!("not a malformed-body problem: {other:?}"),
    }
});
