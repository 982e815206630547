//! The seed's `/collect`, GET and POST, with any query and any body, through
//! the whole router over a memory store that holds one reading of `car-1`.
//! It never fails with a 5xx, refuses with a problem whose pointers point into
//! the body, and answers `current_…`/`average_…` of catalog signals only.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use tributary::domain::Catalog;
use tributary::http::legacy::wire::parse_collect;
use tributary_fuzz::{ArbitraryBody, ArbitraryQuery, app, check_answer, request, runtime, send};

#[derive(Debug, Arbitrary)]
struct Input {
    post: bool,
    query: ArbitraryQuery,
    body: ArbitraryBody,
}

fuzz_target!(|input: Input| {
    let method = if input.post { "POST" } else { "GET" };
    let (bytes, sent) = input.body.encode();
    // The body rule alone: whatever `parse_collect` refuses, it says where.
    if let Some(value) = &sent
        && let Err(err) = parse_collect(Some(value))
    {
        tributary_fuzz::check_invalid(value, err);
    }
    let uri = match &input.query.0 {
        Some(query) => format!("/collect?{query}"),
        None => "/collect".to_owned(),
    };
    let Some(request) = request(method, &uri, &[], bytes) else { return };
    runtime().block_on(async {
        let app = app();
        let record = tributary_fuzz::request(
            "POST",
            "/record",
            &[],
            json!({"vehicle_id": "car-1", "engine_rpm": 900}).to_string().into_bytes(),
        )
        .unwrap();
        assert_eq!(send(app, record).await.status, 200);

        let answer = send(app, request).await;
        check_answer(method, sent.as_ref(), &answer);
        if answer.status == 200 {
            let body: Value = serde_json::from_slice(&answer.body).unwrap();
            let body = body.as_object().unwrap();
            assert!(body.contains_key("current_engine_temperature"), "{body:?}");
            assert!(body.contains_key("average_engine_temperature"), "{body:?}");
            let catalog = Catalog::builtin();
            for (key, value) in body {
                let signal = key
                    .strip_prefix("current_")
                    .or_else(|| key.strip_prefix("average_"))
                    .unwrap_or_else(|| panic!("unexpected key {key}"));
                let spec = catalog.get(signal).unwrap_or_else(|| panic!("unknown signal {key}"));
                match value.as_f64() {
                    Some(number) => assert!(spec.contains(number), "{key}: {number}"),
                    None => assert!(value.is_null(), "{key}: {value}"),
                }
            }
        }
    });
});
