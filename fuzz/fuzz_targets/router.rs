//! The whole service: a few requests of any method, path, headers and body
//! through the router over a fresh memory store, as one client would send
//! them. No panic, no 5xx, and every answer well formed (see `check_answer`).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tributary_fuzz::{
    ArbitraryBody, ArbitraryQuery, VEHICLE_IDS, app, check_answer, percent_encode, request,
    runtime, send,
};

#[derive(Debug, Arbitrary)]
enum Method {
    Get,
    Post,
    Head,
    Put,
    Delete,
    Options,
    Patch,
    Other(String),
}

#[derive(Debug, Arbitrary)]
enum Segment {
    Known(u8),
    Text(String),
    Encoded(String),
}

impl Segment {
    fn text(&self) -> String {
        match self {
            Self::Known(i) => VEHICLE_IDS[usize::from(*i) % VEHICLE_IDS.len()].to_owned(),
            Self::Text(text) => text.clone(),
            Self::Encoded(text) => percent_encode(text, true),
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Path {
    Record,
    Collect,
    Readings(Segment),
    Vehicle(Segment),
    Signal(Segment, Segment),
    Signals,
    Healthz,
    Readyz,
    OpenApi,
    Raw(String),
}

impl Path {
    fn text(&self) -> String {
        match self {
            Self::Record => "/record".into(),
            Self::Collect => "/collect".into(),
            Self::Readings(id) => format!("/v1/vehicles/{}/readings", id.text()),
            Self::Vehicle(id) => format!("/v1/vehicles/{}", id.text()),
            Self::Signal(id, signal) => {
                let signal = match signal {
                    Segment::Known(i) => tributary_fuzz::KEYS
                        [usize::from(*i) % tributary_fuzz::KEYS.len()]
                    .to_owned(),
                    other => other.text(),
                };
                format!("/v1/vehicles/{}/signals/{signal}", id.text())
            }
            Self::Signals => "/v1/signals".into(),
            Self::Healthz => "/healthz".into(),
            Self::Readyz => "/readyz".into(),
            Self::OpenApi => "/openapi.json".into(),
            Self::Raw(text) => text.clone(),
        }
    }

    /// The vehicle segment of a v1 URL.
    fn vehicle(&self) -> Option<String> {
        match self {
            Self::Readings(id) | Self::Vehicle(id) | Self::Signal(id, _) => Some(id.text()),
            _ => None,
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Header {
    ContentType(String),
    Json,
    Form,
    ContentEncoding(String),
    Gzip,
    Identity,
    ContentLength(u64),
    Other(String, String),
}

impl Header {
    fn pair(&self) -> (String, String) {
        let (name, value) = match self {
            Self::ContentType(value) => ("content-type", value.as_str()),
            Self::Json => ("content-type", "application/json"),
            Self::Form => ("content-type", "application/x-www-form-urlencoded"),
            Self::ContentEncoding(value) => ("content-encoding", value.as_str()),
            Self::Gzip => ("content-encoding", "gzip"),
            Self::Identity => ("content-encoding", "identity"),
            Self::ContentLength(n) => return ("content-length".into(), n.to_string()),
            Self::Other(name, value) => return (name.clone(), value.clone()),
        };
        (name.to_owned(), value.to_owned())
    }
}

#[derive(Debug, Arbitrary)]
struct Call {
    method: Method,
    path: Path,
    query: ArbitraryQuery,
    headers: Vec<Header>,
    body: ArbitraryBody,
}

fuzz_target!(|calls: Vec<Call>| {
    runtime().block_on(async {
        let app = app();
        for call in calls.iter().take(8) {
            let method = match &call.method {
                Method::Get => "GET",
                Method::Post => "POST",
                Method::Head => "HEAD",
                Method::Put => "PUT",
                Method::Delete => "DELETE",
                Method::Options => "OPTIONS",
                Method::Patch => "PATCH",
                Method::Other(name) => name.as_str(),
            };
            let mut uri = call.path.text();
            if let Some(query) = &call.query.0 {
                uri = format!("{uri}?{query}");
            }
            let headers: Vec<(String, String)> =
                call.headers.iter().take(6).map(Header::pair).collect();
            let (bytes, sent) = call.body.encode();
            let Some(request) = request(method, &uri, &headers, bytes) else { continue };
            let method = request.method().as_str().to_owned();
            let answer = send(app, request).await;
            check_answer(&method, sent.as_ref(), &answer);
            if let Some(segment) = call.path.vehicle() {
                tributary_fuzz::check_vehicle_blame(&segment, &answer);
            }
        }
    });
});
