//! Each request's id and its access-log line.
//!
//! The id is the client's `X-Request-Id` when it sends a sane one (1 to 128
//! characters among letters, digits and `-_.:+=/@`, so it can be written into
//! a log line or a JSON body as it is), else one made here: 32 hex digits, a
//! random per-process half and a counter, unique without a system call per
//! request. It is returned in the answer's `X-Request-Id`, written in the
//! access-log line and in every problem body (`request_id`), so that a
//! firmware engineer can quote it and an operator can find the line.
//!
//! The id and the vehicle (once a handler knows it) live in a task-local
//! [`RequestScope`] for the request's handling: problem bodies are rendered deep
//! inside handlers and extractors, which have no other way to reach them.
//!
//! The line is formatted by hand into a reused buffer, in the log format
//! (`TRIBUTARY_LOG_FORMAT`), and handed whole to the logger's non-blocking
//! writer (see `telemetry`): formatting through a tracing event would build a
//! span per request, which cost more than the line itself.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderName, HeaderValue};

use crate::config::LogFormat;
use crate::domain::VehicleId;
use crate::telemetry::AccessSink;

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest client request id taken as it is.
const MAX_CLIENT_ID: usize = 128;

/// A request's id: the client's, or a new one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(HeaderValue);

impl RequestId {
    /// The client's `X-Request-Id` if it is sane, else a new id.
    pub fn of(headers: &HeaderMap) -> Self {
        match headers.get(&X_REQUEST_ID) {
            Some(value) if is_sane(value.as_bytes()) => Self(value.clone()),
            _ => Self::generate(),
        }
    }

    fn generate() -> Self {
        static PROCESS: OnceLock<u64> = OnceLock::new();
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let process = *PROCESS.get_or_init(|| {
            let mut bytes = [0; 8];
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
                .expect("the system has randomness");
            u64::from_le_bytes(bytes)
        });
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        // By hand rather than `write!("{:016x}")`: the formatting machinery
        // cost more than a thousand instructions, a few percent of a request.
        let id = (u128::from(process) << 64) | u128::from(n);
        let mut digits = [0; 32];
        for (i, digit) in digits.iter_mut().enumerate() {
            *digit = b"0123456789abcdef"[(id >> (124 - 4 * i)) as usize & 0xf];
        }
        Self(HeaderValue::from_bytes(&digits).expect("hex digits are a valid header value"))
    }

    /// The id as the answer's header (moved: a generated id's bytes would be
    /// copied to be shared).
    pub fn into_header_value(self) -> HeaderValue {
        self.0
    }

    pub fn as_str(&self) -> &str {
        // Sane ids and generated ones are ASCII.
        self.0.to_str().unwrap_or_default()
    }
}

fn is_sane(id: &[u8]) -> bool {
    (1..=MAX_CLIENT_ID).contains(&id.len())
        && id.iter().all(|&b| b.is_ascii_alphanumeric() || b"-_.:+=/@".contains(&b))
}

/// What is known about the request being handled, for the code that renders
/// its answer: its id, and the vehicle it is about once that is known.
pub struct RequestScope {
    pub id: RequestId,
    vehicle: RefCell<Option<VehicleId>>,
}

tokio::task_local! {
    static SCOPE: RequestScope;
}

impl RequestScope {
    pub fn new(id: RequestId) -> Self {
        Self { id, vehicle: RefCell::new(None) }
    }

    /// Runs `f` with this scope as the current request's.
    pub async fn run<F: Future>(self, f: F) -> (Self, F::Output) {
        let mut f = std::pin::pin!(SCOPE.scope(self, f));
        let output = (&mut f).await;
        let scope = f.as_mut().take_value().expect("the scope is returned once, at the end");
        (scope, output)
    }

    /// The vehicle noted for this request, if any (borrowed: no copy per line).
    pub fn vehicle(&self) -> std::cell::Ref<'_, Option<VehicleId>> {
        self.vehicle.borrow()
    }
}

/// The current request's id, if a request is being handled on this task.
pub fn current_id() -> Option<String> {
    SCOPE.try_with(|scope| scope.id.as_str().to_owned()).ok()
}

/// Notes the vehicle the current request is about, for its access-log line.
pub fn note_vehicle(vehicle: &VehicleId) {
    let _ = SCOPE.try_with(|scope| *scope.vehicle.borrow_mut() = Some(vehicle.clone()));
}

/// One request's line.
pub struct AccessLine<'a> {
    pub method: &'a str,
    pub route: &'a str,
    pub vehicle: Option<&'a VehicleId>,
    pub status: u16,
    pub latency: Duration,
    pub id: &'a RequestId,
}

impl AccessLine<'_> {
    /// Formats the line and hands it to `sink`.
    pub fn write_to(&self, sink: &AccessSink) {
        thread_local! {
            static BUFFER: RefCell<String> = RefCell::new(String::with_capacity(256));
        }
        BUFFER.with_borrow_mut(|line| {
            line.clear();
            self.format(sink.format, SystemTime::now(), line);
            sink.write_line(line.as_bytes());
        });
    }

    fn format(&self, format: LogFormat, now: SystemTime, line: &mut String) {
        let latency_us = u64::try_from(self.latency.as_micros()).unwrap_or(u64::MAX);
        let vehicle = self.vehicle.map(VehicleId::as_str);
        // Every field is either a number or made of characters that need no
        // escaping in JSON or in `key=value` text: route templates, vehicle ids
        // and request ids are all checked for that.
        match format {
            LogFormat::Text => {
                timestamp(now, line);
                let _ = writeln!(
                    line,
                    "  INFO tributary::access: request method={} route={} vehicle={} status={} latency_us={latency_us} request_id={}",
                    self.method,
                    self.route,
                    vehicle.unwrap_or("-"),
                    self.status,
                    self.id.as_str(),
                );
            }
            LogFormat::Json => {
                line.push_str("{\"timestamp\":\"");
                timestamp(now, line);
                let _ = write!(
                    line,
                    "\",\"level\":\"INFO\",\"target\":\"tributary::access\",\"message\":\"request\",\"method\":\"{}\",\"route\":\"{}\",",
                    self.method, self.route,
                );
                match vehicle {
                    Some(vehicle) => {
                        let _ = write!(line, "\"vehicle\":\"{vehicle}\",");
                    }
                    None => line.push_str("\"vehicle\":null,"),
                }
                let _ = writeln!(
                    line,
                    "\"status\":{},\"latency_us\":{latency_us},\"request_id\":\"{}\"}}",
                    self.status,
                    self.id.as_str(),
                );
            }
        }
    }
}

/// `now` as RFC 3339 in UTC with microseconds, as the rest of the log has it.
fn timestamp(now: SystemTime, line: &mut String) {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = i64::try_from(since.as_secs()).unwrap_or(i64::MAX);
    let at = time::OffsetDateTime::from_unix_timestamp(seconds)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let _ = write!(
        line,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        since.subsec_micros(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(value: &'static str) -> RequestId {
        RequestId(HeaderValue::from_static(value))
    }

    #[test]
    fn a_sane_client_id_is_kept_and_any_other_replaced() {
        let mut headers = HeaderMap::new();
        headers.insert(&X_REQUEST_ID, HeaderValue::from_static("f3a9-01:trace/7+x=@y_z.1"));
        assert_eq!(RequestId::of(&headers).as_str(), "f3a9-01:trace/7+x=@y_z.1");
        for bad in ["", "has space", "quote\"d", "back\\slash", &"x".repeat(129)] {
            headers.insert(&X_REQUEST_ID, HeaderValue::from_str(bad).unwrap());
            let made = RequestId::of(&headers);
            assert_ne!(made.as_str(), bad);
            assert_eq!(made.as_str().len(), 32, "{made:?}");
        }
    }

    #[test]
    fn generated_ids_are_distinct_hex() {
        let (a, b) = (RequestId::generate(), RequestId::generate());
        assert_ne!(a, b);
        assert!(a.as_str().bytes().all(|b| b.is_ascii_hexdigit()), "{a:?}");
        // Same process: same first half.
        assert_eq!(a.as_str()[..16], b.as_str()[..16]);
    }

    #[tokio::test]
    async fn the_scope_carries_the_id_and_the_vehicle() {
        assert_eq!(current_id(), None);
        let scope = RequestScope::new(id("req-1"));
        let (scope, seen) = scope
            .run(async {
                note_vehicle(&VehicleId::try_from("car-7").unwrap());
                current_id()
            })
            .await;
        assert_eq!(seen.as_deref(), Some("req-1"));
        assert_eq!(scope.vehicle().as_ref().unwrap().as_str(), "car-7");
    }

    fn line(format: LogFormat, vehicle: Option<&VehicleId>) -> String {
        let request_id = id("abc");
        let access = AccessLine {
            method: "POST",
            route: "/v1/vehicles/{vehicle_id}/readings",
            vehicle,
            status: 202,
            latency: Duration::from_micros(1234),
            id: &request_id,
        };
        let mut line = String::new();
        let now = UNIX_EPOCH + Duration::from_micros(1_764_524_400_123_456);
        access.format(format, now, &mut line);
        line
    }

    #[test]
    fn text_lines_read_as_key_values() {
        let car = VehicleId::try_from("car-1").unwrap();
        assert_eq!(
            line(LogFormat::Text, Some(&car)),
            "2025-11-30T17:40:00.123456Z  INFO tributary::access: request method=POST route=/v1/vehicles/{vehicle_id}/readings vehicle=car-1 status=202 latency_us=1234 request_id=abc\n"
        );
        assert!(line(LogFormat::Text, None).contains(" vehicle=- "));
    }

    #[test]
    fn json_lines_are_json_objects() {
        let car = VehicleId::try_from("car-1").unwrap();
        for vehicle in [Some(&car), None] {
            let line = line(LogFormat::Json, vehicle);
            assert!(line.ends_with("}\n"));
            let value: serde_json::Value = serde_json::from_str(&line).unwrap();
            assert_eq!(value["timestamp"], "2025-11-30T17:40:00.123456Z");
            assert_eq!(value["target"], "tributary::access");
            assert_eq!(value["method"], "POST");
            assert_eq!(value["status"], 202);
            assert_eq!(value["latency_us"], 1234);
            assert_eq!(value["request_id"], "abc");
            assert_eq!(
                value["vehicle"],
                vehicle.map_or(serde_json::Value::Null, |v| v.as_str().into())
            );
        }
    }
}
