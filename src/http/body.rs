//! Reading a JSON request body the way sensors and curl users expect: whatever
//! the Content-Type header says (the seed's server ignored it too), bounded in
//! size and in time, and with errors that say what to fix.
//!
//! A compressed body (`Content-Encoding: gzip`, `deflate` or `zstd`) reaches
//! this module already being decompressed, by tower-http's request
//! decompression layer (see `http::router`), as a stream: the size limit here
//! counts decompressed bytes and stops reading at 1 MiB of them, so a small
//! compressed bomb costs at most 1 MiB of memory and gets 413. Writing our own
//! decoder would gain nothing; the layer's only gap is its refusal of unknown
//! encodings (a bare 415), so it passes them through and they are refused
//! here, as a problem naming the accepted ones.

use std::future::Future;
use std::task::Poll;

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::Value;

use super::problem::ApiError;

/// Largest accepted request body: 1 MiB holds a batch of 1000 readings of every
/// built-in signal with timestamps several times over.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A state that knows how long a client may take to send a request body.
pub trait BodyTimeout {
    fn body_timeout(&self) -> std::time::Duration;
}

/// What a reading looks like, for error messages.
const READING_EXAMPLE: &str = r#"{"engine_temperature": 90.5}"#;

/// A request body parsed as JSON. Rejections are `ApiError`s, so malformed input
/// gets the same problem+json shape as every other error.
#[derive(Debug)]
pub struct JsonBody(pub Value);

impl<S: BodyTimeout + Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = read_body(req, state).await?;
        parse_json(&bytes, READING_EXAMPLE).map(JsonBody)
    }
}

/// Like `JsonBody`, but an empty body is `None` rather than an error (for
/// `/collect`, which the seed's app calls without a body).
#[derive(Debug)]
pub struct OptionalJsonBody(pub Option<Value>);

impl<S: BodyTimeout + Send + Sync> FromRequest<S> for OptionalJsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = read_body(req, state).await?;
        if strip_bom(&bytes).iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(None));
        }
        parse_json(&bytes, r#"{"vehicle_id": "car-1"}"#).map(|v| Self(Some(v)))
    }
}

async fn read_body(req: Request, state: &impl BodyTimeout) -> Result<Bytes, ApiError> {
    if let Some(encoding) = req
        .headers()
        .get_all(header::CONTENT_ENCODING)
        .iter()
        .find(|encoding| !encoding.as_bytes().eq_ignore_ascii_case(b"identity"))
    {
        return Err(ApiError::UnsupportedEncoding(
            String::from_utf8_lossy(encoding.as_bytes()).into_owned(),
        ));
    }
    let body: Body = req.into_body();
    let collect = Limited::new(body, MAX_BODY_BYTES).collect();
    let mut collect = std::pin::pin!(collect);
    // A sensor's small body nearly always arrives with its headers: then it is
    // read at once, and no timer is set up. The deadline (a timer, which costs
    // a registration in the runtime's timer wheel) is for bodies still on their
    // way after a first try.
    let collected = match std::future::poll_fn(|cx| Poll::Ready(collect.as_mut().poll(cx))).await {
        Poll::Ready(collected) => collected,
        Poll::Pending => {
            let timeout = state.body_timeout();
            tokio::time::timeout(timeout, collect)
                .await
                .map_err(|_| ApiError::BodyTimeout { timeout })?
        }
    };
    match collected {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<LengthLimitError>() => {
            Err(ApiError::BodyTooLarge { limit: MAX_BODY_BYTES })
        }
        Err(err) if decompression_failed(err.as_ref()) => Err(ApiError::CorruptEncoding(format!(
            "the compressed request body is corrupt or cut short ({err}); send the whole body, \
compressed as its Content-Encoding says"
        ))),
        Err(err) => Err(ApiError::MalformedBody(format!("could not read the request body: {err}"))),
    }
}

/// Whether a body failed to decompress: the decoders fail with an I/O error,
/// somewhere in the chain of sources (a connection's failure is hyper's own
/// error, not an I/O one).
fn decompression_failed(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(err);
    while let Some(err) = source {
        if err.is::<std::io::Error>() {
            return true;
        }
        source = err.source();
    }
    false
}

/// Parses a complete body; `example` shows the caller what to send instead.
/// serde_json refuses nesting deeper than 128 levels, numbers that overflow an
/// f64, and anything after the value; a key given twice in one object is refused
/// here too, since which of the two values was meant cannot be known.
pub fn parse_json(bytes: &[u8], example: &str) -> Result<Value, ApiError> {
    let bytes = strip_bom(bytes);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::MalformedBody(format!(
            "the request body is empty; send a JSON object such as {example}"
        )));
    }
    if let Err(err) = std::str::from_utf8(bytes) {
        return Err(ApiError::MalformedBody(format!(
            "the request body is not valid UTF-8 (first bad byte at offset {}); send JSON text encoded as UTF-8",
            err.valid_up_to()
        )));
    }
    serde_json::from_slice::<Strict>(bytes)
        .map(|Strict(value)| value)
        .map_err(|err| {
            let what = if err.to_string().contains("recursion limit") {
                "it nests deeper than 128 levels".to_owned()
            } else {
                err.to_string()
            };
            let form = bytes.contains(&b'=') && !bytes.starts_with(b"{") && !bytes.starts_with(b"[");
            let advice = if form {
                " (this looks like form data: send JSON, e.g. Python requests' json= rather than data=)"
            } else {
                ""
            };
            ApiError::MalformedBody(format!(
                "the request body is not valid JSON: {what}{advice}; send a JSON object such as {example}"
            ))
        })
}

/// RFC 8259 lets a parser skip a byte order mark; some Windows tools send one.
fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

/// A JSON value whose objects have no key twice.
struct Strict(Value);

impl<'de> serde::Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let Strict(value) = map.next_value()?;
            if object.contains_key(&key) {
                return Err(serde::de::Error::custom(format_args!(
                    "the key {key:?} appears twice in one object"
                )));
            }
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detail(bytes: &[u8]) -> String {
        match parse_json(bytes, READING_EXAMPLE) {
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
            (b"{\"a\": 1, \"a\": 2}", "the key \"a\" appears twice"),
            (b"[{\"b\": {\"c\": 1, \"c\": 1}}]", "the key \"c\" appears twice"),
            (b"engine_temperature=90", "looks like form data"),
        ];
        for (body, expected) in cases {
            let detail = detail(body);
            assert!(detail.contains(expected), "{detail:?} should mention {expected:?}");
        }
    }

    #[test]
    fn numbers_keep_every_bit_of_precision() {
        // serde_json's default float parser is only best-effort; the
        // `float_roundtrip` feature makes what a sensor sends what we store.
        let value = parse_json(b"[0.0012000000000000001, 0.1, 16383.75]", READING_EXAMPLE).unwrap();
        let numbers: Vec<f64> =
            value.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        assert_eq!(numbers, [12.0 * 1e-4, 0.1, 16_383.75]);
        assert_eq!(numbers[0].to_bits(), 0.0012000000000000001f64.to_bits());
    }

    #[test]
    fn well_formed_json_parses() {
        assert_eq!(
            parse_json(b"\xEF\xBB\xBF {\"a\": 1} ", READING_EXAMPLE).unwrap(),
            serde_json::json!({"a": 1})
        );
    }
}
