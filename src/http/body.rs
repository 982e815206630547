//! Reading a JSON request body the way sensors and curl users expect: whatever
//! the Content-Type header says (the seed's server ignored it too), bounded in
//! size and in time, and with errors that say what to fix.

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::Value;

use super::AppState;
use super::problem::ApiError;

/// Largest accepted request body: 1 MiB holds a batch of 1000 readings of every
/// built-in signal with timestamps several times over.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A request body parsed as JSON. Rejections are `ApiError`s, so malformed input
/// gets the same problem+json shape as every other error.
#[derive(Debug)]
pub struct JsonBody(pub Value);

impl FromRequest<AppState> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let bytes = read_body(req.into_body(), state).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Like `JsonBody`, but an empty body is `None` rather than an error (for
/// `/collect`, which the seed's app calls without a body).
#[derive(Debug)]
pub struct OptionalJsonBody(pub Option<Value>);

impl FromRequest<AppState> for OptionalJsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let bytes = read_body(req.into_body(), state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(None));
        }
        parse_json(&bytes).map(|v| Self(Some(v)))
    }
}

async fn read_body(body: Body, state: &AppState) -> Result<Bytes, ApiError> {
    match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<LengthLimitError>() => Err(ApiError::BodyTooLarge {
            limit: MAX_BODY_BYTES,
        }),
        Err(err) if is_timeout(err.as_ref()) => Err(ApiError::BodyTimeout {
            timeout: state.body_timeout,
        }),
        Err(err) => Err(ApiError::MalformedBody(format!(
            "could not read the request body: {err}"
        ))),
    }
}

fn is_timeout(mut err: &(dyn std::error::Error + 'static)) -> bool {
    loop {
        if err.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        match err.source() {
            Some(source) => err = source,
            None => return false,
        }
    }
}

/// Parses a complete body. serde_json refuses nesting deeper than 128 levels,
/// numbers that overflow an f64, and anything after the value.
pub fn parse_json(bytes: &[u8]) -> Result<Value, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::MalformedBody(
            "the request body is empty; send a JSON object such as {\"engine_temperature\": 90.5}"
                .into(),
        ));
    }
    if let Err(err) = std::str::from_utf8(bytes) {
        return Err(ApiError::MalformedBody(format!(
            "the request body is not valid UTF-8 (first bad byte at offset {}); send JSON text encoded as UTF-8",
            err.valid_up_to()
        )));
    }
    serde_json::from_slice(bytes).map_err(|err| {
        let what = if err.to_string().contains("recursion limit") {
            "it nests deeper than 128 levels".to_owned()
        } else {
            err.to_string()
        };
        ApiError::MalformedBody(format!(
            "the request body is not valid JSON: {what}; send a JSON object such as {{\"engine_temperature\": 90.5}}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detail(bytes: &[u8]) -> String {
        match parse_json(bytes) {
            Err(ApiError::MalformedBody(detail)) => detail,
            other => panic!("expected a malformed-body error, got {other:?}"),
        }
    }

    #[test]
    fn malformed_bodies_are_explained() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let cases: &[(&[u8], &str)] = &[
            (b"", "empty"),
            (b"  \n", "empty"),
            (b"{\"engine_temperature\": 1", "EOF"),
            (b"{engine_temperature: 1}", "key must be a string"),
            (b"{\"engine_temperature\": 1} x", "trailing characters"),
            (b"{\"engine_temperature\": 1e999}", "out of range"),
            (b"{\"engine_temperature\": NaN}", "expected value"),
            (b"{\"a\": \"\xff\"}", "UTF-8"),
            (deep.as_bytes(), "deeper than 128"),
        ];
        for (body, expected) in cases {
            let detail = detail(body);
            assert!(
                detail.contains(expected),
                "{detail:?} should mention {expected:?}"
            );
        }
    }

    #[test]
    fn numbers_keep_every_bit_of_precision() {
        // serde_json's default float parser is only best-effort; the
        // `float_roundtrip` feature makes what a sensor sends what we store.
        let value = parse_json(b"[0.0012000000000000001, 0.1, 16383.75]").unwrap();
        let numbers: Vec<f64> = value
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(numbers, [12.0 * 1e-4, 0.1, 16_383.75]);
        assert_eq!(numbers[0].to_bits(), 0.0012000000000000001f64.to_bits());
    }

    #[test]
    fn well_formed_json_parses() {
        assert_eq!(
            parse_json(b" {\"a\": 1} ").unwrap(),
            serde_json::json!({"a": 1})
        );
    }
}
