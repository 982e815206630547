//! What the fuzz targets share: structured JSON bodies that reach past the JSON
//! syntax into the validation rules, the service's router over a fresh memory
//! store, and the oracle every answer is checked against.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Map, Number, Value};
use tower::ServiceExt;
use tributary::domain::{Catalog, Timestamp};
use tributary::http::{AppState, router};
use tributary::config::ServeSettings;
use tributary::store::MemoryStore;

/// Field names worth guessing: the catalog's signals by name and by VSS path,
/// the reserved fields, and near misses.
pub const KEYS: &[&str] = &[
    "engine_temperature",
    "vehicle_speed",
    "engine_rpm",
    "cabin_temperature",
    "Vehicle.Powertrain.CombustionEngine.EngineCoolant.Temperature",
    "Vehicle.Speed",
    "Vehicle.Powertrain.CombustionEngine.Speed",
    "Vehicle.Cabin.HVAC.AmbientAirTemperature",
    "timestamp",
    "vehicle_id",
    "engine_temprature",
    "",
    "~",
    "/",
    "a~1b/c~0",
];

/// Vehicle ids worth guessing, valid and not.
pub const VEHICLE_IDS: &[&str] =
    &["car-1", "default", "1HGCM82633A004352", ".", "..", "a b", "ü", "", "x/y", "%2F"];

/// Numbers worth guessing: range edges of the built-in signals, timestamp
/// edges (2000-01-01, "now", 2^53 µs), and floats that are hard to print.
pub const NUMBERS: &[f64] = &[
    0.0,
    -0.0,
    -40.0,
    215.0,
    215.000_000_000_000_03,
    500.0,
    16_383.75,
    16_383.750_000_000_002,
    100.0,
    -1.0,
    1e300,
    -1e300,
    5e-324,
    f64::MAX,
    946_684_800_000.0,
    946_684_799_999.0,
    1_764_268_317_000.0,
    9_007_199_254_740.0,
    9_007_199_254_741.0,
];

/// A JSON value built from the fuzzer's bytes, biased towards what the parsers
/// look at: known keys, range edges, timestamps.
#[derive(Debug)]
pub struct ArbitraryJson(pub Value);

impl<'a> Arbitrary<'a> for ArbitraryJson {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        json(u, 0).map(Self)
    }
}

fn json(u: &mut Unstructured, depth: u32) -> arbitrary::Result<Value> {
    let choices = if depth >= 4 { 9 } else { 12 };
    Ok(match u.choose_index(choices)? {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => Value::from(*u.choose(NUMBERS)?),
        3 => Number::from_f64(u.arbitrary()?).map_or(Value::Null, Value::Number),
        4 => Value::from(u.arbitrary::<i64>()?),
        5 => Value::from(u.arbitrary::<u64>()?),
        6 => Value::from(u.int_in_range(946_684_000_000_i64..=2_000_000_000_000)?),
        7 => Value::String(timestamp_text(u)?),
        8 => Value::String(if u.arbitrary()? {
            (*u.choose(VEHICLE_IDS)?).to_owned()
        } else {
            u.arbitrary()?
        }),
        9 | 10 => {
            let mut object = Map::new();
            for _ in 0..u.int_in_range(0..=5)? {
                let key =
                    if u.ratio(3, 4)? { (*u.choose(KEYS)?).to_owned() } else { u.arbitrary()? };
                object.insert(key, json(u, depth + 1)?);
            }
            Value::Object(object)
        }
        _ => {
            let n = u.int_in_range(0..=6)?;
            Value::Array((0..n).map(|_| json(u, depth + 1)).collect::<Result<_, _>>()?)
        }
    })
}

/// An RFC 3339-ish date-time: valid ones, and ones wrong in one place.
fn timestamp_text(u: &mut Unstructured) -> arbitrary::Result<String> {
    let year = *u.choose(&[0, 1969, 1970, 1999, 2000, 2026, 2255, 2256, 9999])?;
    let month = u.int_in_range(0..=13)?;
    let day = u.int_in_range(0..=32)?;
    let hour = u.int_in_range(0..=24)?;
    let minute = u.int_in_range(0..=60)?;
    let second = u.int_in_range(0..=61)?;
    let fraction = *u.choose(&["", ".5", ".250", ".123456", ".123456789", ".1234567891", "."])?;
    let zone = *u.choose(&["Z", "z", "+00:00", "-00:00", "+01:00", "+23:59", "+24:00", ""])?;
    let separator = *u.choose(&["T", "t", " "])?;
    Ok(format!(
        "{year:04}-{month:02}-{day:02}{separator}{hour:02}:{minute:02}:{second:02}{fraction}{zone}"
    ))
}

/// A current-thread runtime for the whole process.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime")
    })
}

/// The whole service, as `startup` builds it, over a memory store emptied for
/// each input, so that an input's answers depend on that input alone. Building
/// the router renders the OpenAPI document, which would cost more than the
/// requests, so it is built once per process.
pub fn app() -> &'static axum::Router {
    static APP: OnceLock<(axum::Router, MemoryStore)> = OnceLock::new();
    let (router, store) = APP.get_or_init(|| {
        let limits = ServeSettings::for_tests().store_limits();
        let store = MemoryStore::new(limits);
        let state =
            AppState::new(Arc::new(store.clone()), Catalog::builtin(), Duration::from_secs(10));
        (router(state), store)
    });
    let end_of_time = Timestamp::from_micros((1 << 53) - 1).expect("the latest timestamp");
    store.forget_silent_since(end_of_time);
    router
}

/// A request's answer, with its body read.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// Sends one request through `app` (inside the runtime).
pub async fn send(app: &axum::Router, request: Request<Body>) -> Answer {
    let response = app.clone().oneshot(request).await.expect("the router is infallible");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("a response body can be read").to_bytes().to_vec();
    Answer { status: parts.status, headers: parts.headers, body }
}

/// What every answer must be, whatever was asked: no server error, errors as
/// RFC 9457 problems whose `status` is the response's, a JSON body on success,
/// and, for an invalid body, pointers that point into the body that was sent.
pub fn check_answer(method: &str, sent: Option<&Value>, answer: &Answer) {
    let status = answer.status;
    let text = String::from_utf8_lossy(&answer.body);
    assert!(!status.is_server_error(), "{method}: a server error: {status} {text}");
    let content_type =
        answer.headers.get(header::CONTENT_TYPE).map(|v| v.to_str().expect("ASCII content type"));
    if method == "HEAD" {
        assert!(answer.body.is_empty(), "HEAD answered with a body: {text}");
        return;
    }
    if answer.headers.contains_key(header::CONTENT_ENCODING) {
        // A large answer to a request that sent Accept-Encoding, compressed:
        // its JSON is checked by the tests, not here.
        return;
    }
    let body: Value = serde_json::from_slice(&answer.body).unwrap_or_else(|e| {
        panic!("{method}: {status} with a body that is not JSON ({e}): {text}")
    });
    if status.is_success() {
        assert_eq!(content_type, Some("application/json"), "{status} {text}");
        assert!(body.is_object(), "{status} {text}");
        return;
    }
    assert!(status.is_client_error(), "{method}: unexpected {status} {text}");
    assert_eq!(content_type, Some("application/problem+json"), "{status} {text}");
    assert_eq!(body["status"], status.as_u16(), "{text}");
    let kind = body["type"].as_str().unwrap_or_default();
    assert!(kind.starts_with("urn:tributary:problem:"), "{text}");
    assert!(body["title"].as_str().is_some_and(|t| !t.is_empty()), "{text}");
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()), "{text}");
    if status == StatusCode::METHOD_NOT_ALLOWED {
        assert!(answer.headers.contains_key(header::ALLOW), "405 without Allow: {text}");
    }
    if status == StatusCode::UNPROCESSABLE_ENTITY {
        let errors =
            body["errors"].as_array().unwrap_or_else(|| panic!("422 without errors: {text}"));
        assert!((1..=20).contains(&errors.len()), "{} errors: {text}", errors.len());
        for error in errors {
            assert!(error["detail"].as_str().is_some_and(|d| !d.is_empty()), "{text}");
            match (error["pointer"].as_str(), error["parameter"].as_str()) {
                (Some(pointer), None) => {
                    check_pointer(sent, pointer, &text);
                    let detail = error["detail"].as_str().unwrap_or_default();
                    check_timestamp_error(sent.expect("a body"), pointer, detail);
                }
                (None, Some(parameter)) => assert!(!parameter.is_empty(), "{text}"),
                _ => panic!("an error names neither a pointer nor a parameter: {text}"),
            }
        }
    }
}

/// A pointer of an invalid-request problem must name a place in the body sent.
pub fn check_pointer(sent: Option<&Value>, pointer: &str, text: &str) {
    let sent = sent.unwrap_or_else(|| panic!("a body pointer {pointer:?} without a body: {text}"));
    assert!(
        sent.pointer(pointer).is_some(),
        "the pointer {pointer:?} names nothing in the body {sent}: {text}"
    );
}

/// A refused body is an invalid-request problem listing 1 to 20 errors, each
/// with a detail and a pointer to a place in `body`.
pub fn check_invalid(body: &Value, err: tributary::http::problem::ApiError) {
    use tributary::http::problem::ApiError;
    let ApiError::InvalidRequest { detail, errors } = err else {
        panic!("not an invalid-request problem: {err:?}");
    };
    assert!(!detail.is_empty());
    assert!((1..=20).contains(&errors.len()), "{} errors for {body}", errors.len());
    for error in errors {
        assert!(!error.detail.is_empty(), "{body}");
        let pointer = error.pointer.expect("a body error has a pointer");
        check_pointer(Some(body), &pointer, &error.detail);
        check_timestamp_error(body, &pointer, &error.detail);
    }
}

/// A request body: none, raw bytes, or JSON built to reach the validation rules.
#[derive(Debug, Arbitrary)]
pub enum ArbitraryBody {
    Empty,
    Raw(Vec<u8>),
    Json(ArbitraryJson),
}

impl ArbitraryBody {
    /// The bytes to send, and the JSON value they hold if they are JSON.
    pub fn encode(&self) -> (Vec<u8>, Option<Value>) {
        match self {
            Self::Empty => (Vec::new(), None),
            Self::Raw(bytes) => {
                let without_bom = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
                (bytes.clone(), serde_json::from_slice(without_bom).ok())
            }
            Self::Json(ArbitraryJson(value)) => {
                (serde_json::to_vec(value).expect("a value prints"), Some(value.clone()))
            }
        }
    }
}

/// A query string: raw text, or `key=value` pairs of likely keys and values.
#[derive(Debug)]
pub struct ArbitraryQuery(pub Option<String>);

impl<'a> Arbitrary<'a> for ArbitraryQuery {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Self(match u.choose_index(3)? {
            0 => None,
            1 => Some(u.arbitrary()?),
            _ => {
                let mut pairs = Vec::new();
                for _ in 0..u.int_in_range(0..=3)? {
                    let key = *u.choose(&["vehicle_id", "_", "vehicle_id[]", "VEHICLE_ID", ""])?;
                    let value: String = if u.arbitrary()? {
                        (*u.choose(VEHICLE_IDS)?).to_owned()
                    } else {
                        u.arbitrary()?
                    };
                    pairs.push(format!("{key}={}", percent_encode(&value, u.arbitrary()?)));
                }
                Some(pairs.join("&"))
            }
        }))
    }
}

/// Percent-encodes what a URI cannot hold (and, if `all`, everything but
/// unreserved characters).
pub fn percent_encode(text: &str, all: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        let unreserved = byte.is_ascii_alphanumeric() || b"-._~".contains(&byte);
        let allowed = !all && byte.is_ascii_graphic() && !b"#%&=?/".contains(&byte);
        if unreserved || allowed {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Builds a request, or `None` if the method, URI or a header cannot be one.
pub fn request(
    method: &str,
    path_and_query: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
) -> Option<Request<Body>> {
    let mut builder = Request::builder().method(method).uri(path_and_query);
    for (name, value) in headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder.body(Body::from(body)).ok()
}

/// Whether `text` is an RFC 3339 `date-time` (section 5.6, with the date and
/// time ranges of section 5.7), leaving out leap seconds, whose validity
/// depends on the leap-second table.
pub fn is_rfc3339(text: &str) -> bool {
    fn digits(bytes: &[u8]) -> Option<u32> {
        if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_digit) {
            return None;
        }
        bytes.iter().try_fold(0u32, |n, d| n.checked_mul(10)?.checked_add(u32::from(d - b'0')))
    }
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return false;
    }
    if b[13] != b':' || b[16] != b':' {
        return false;
    }
    let (Some(year), Some(month), Some(day)) =
        (digits(&b[0..4]), digits(&b[5..7]), digits(&b[8..10]))
    else {
        return false;
    };
    let (Some(hour), Some(minute), Some(second)) =
        (digits(&b[11..13]), digits(&b[14..16]), digits(&b[17..19]))
    else {
        return false;
    };
    let leap_year = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap_year => 29,
        2 => 28,
        _ => return false,
    };
    if !(1..=days).contains(&day) || hour > 23 || minute > 59 || second > 59 {
        return false;
    }
    let mut rest = &b[19..];
    if let Some(fraction) = rest.strip_prefix(b".") {
        let n = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return false;
        }
        rest = &fraction[n..];
    }
    match rest {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => {
            digits(&[*h1, *h2]).is_some_and(|h| h <= 23)
                && digits(&[*m1, *m2]).is_some_and(|m| m <= 59)
        }
        _ => false,
    }
}

/// A refused timestamp that is an RFC 3339 date-time, or an integer, is
/// refused for its range, not its form: the detail must not say it should be
/// "an RFC 3339 date-time … or integer milliseconds".
pub fn check_timestamp_error(body: &Value, pointer: &str, detail: &str) {
    if !pointer.ends_with("/timestamp") {
        return;
    }
    let Some(value) = body.pointer(pointer) else { return };
    let well_formed = match value {
        Value::String(text) => is_rfc3339(text),
        Value::Number(number) => number.as_f64().is_some_and(|x| x.fract() == 0.0),
        _ => false,
    };
    if well_formed {
        assert!(
            !detail.starts_with("must be"),
            "{value} is refused as malformed, but it is well formed: {detail}"
        );
    }
}

/// Percent-decodes a URL path segment as the router does: `%` and two hex
/// digits is a byte, any other `%` is itself.
pub fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let hex = |b: u8| char::from(b).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(high), Some(low)) =
                (bytes.get(i + 1).and_then(|b| hex(*b)), bytes.get(i + 2).and_then(|b| hex(*b)))
        {
            out.push(u8::try_from(high * 16 + low).expect("two hex digits are a byte"));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// Whether a v1 URL's vehicle segment names a valid vehicle id.
pub fn valid_vehicle_segment(segment: &str) -> bool {
    String::from_utf8(percent_decode(segment))
        .is_ok_and(|id| tributary::domain::VehicleId::try_from(id.as_str()).is_ok())
}

/// A v1 answer blames the vehicle id (a 422 on its `vehicle_id` parameter)
/// exactly when the URL's vehicle segment is not a valid id.
pub fn check_vehicle_blame(segment: &str, answer: &Answer) {
    // A HEAD answer has no body to read the blame from.
    let unread = answer.body.is_empty() || answer.status != StatusCode::UNPROCESSABLE_ENTITY;
    if unread || segment.contains(['/', '?', '#']) {
        return;
    }
    let body: Value = serde_json::from_slice(&answer.body).expect("a JSON problem");
    let blamed = body["errors"]
        .as_array()
        .is_some_and(|errors| errors.iter().any(|e| e["parameter"] == "vehicle_id"));
    assert_eq!(
        blamed,
        !valid_vehicle_segment(segment),
        "vehicle segment {segment:?}: {}",
        String::from_utf8_lossy(&answer.body)
    );
}
