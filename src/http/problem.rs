//! The one error type of the HTTP layer, rendered as RFC 9457 problem details.
//!
//! Caller mistakes become 4xx with a `detail` that says what to fix and, for
//! invalid readings, an `errors` list with a JSON pointer per bad field. Store
//! failures become an opaque 503 or 500. Rendering has no side effects: the
//! cause of a failure is attached to the response ([`Failure`]) and logged by
//! the request middleware. Each kind of problem's status and `type` come from
//! one table, [`ProblemKind`].

use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::auth::{AuthError, Forbidden};
use crate::store::StoreError;

/// One bad field of a request: in the body (a JSON pointer) or in the URL (a
/// path or query parameter's name).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// RFC 6901 JSON pointer into the request body, e.g. `/3/timestamp`; `""`
    /// is the whole body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    /// The path or query parameter at fault, e.g. `vehicle_id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameter: Option<String>,
    pub detail: String,
}

impl FieldError {
    /// A problem at `pointer` in the JSON body.
    pub fn new(pointer: impl Into<String>, detail: impl Into<String>) -> Self {
        Self { pointer: Some(pointer.into()), parameter: None, detail: detail.into() }
    }

    /// A problem with a path or query parameter.
    pub fn parameter(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Self { pointer: None, parameter: Some(name.into()), detail: detail.into() }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not JSON at all (syntax, encoding, emptiness, nesting).
    #[error("{0}")]
    MalformedBody(String),
    /// A compressed body that cannot be decompressed (corrupt, cut short):
    /// a malformed body whose rest is left unread.
    #[error("{0}")]
    CorruptEncoding(String),
    /// The body is JSON but not a valid request: wrong shape, unknown field,
    /// implausible value.
    #[error("{detail}")]
    InvalidRequest { detail: String, errors: Vec<FieldError> },
    #[error(
        "Content-Encoding {0:?} is not accepted; send the JSON body compressed with one of gzip, deflate or zstd, or uncompressed"
    )]
    UnsupportedEncoding(String),
    #[error("request body is larger than the limit of {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("the request body did not arrive within {} ms; send the whole body promptly", timeout.as_millis())]
    BodyTimeout { timeout: std::time::Duration },
    #[error("{0}")]
    NotFound(String),
    #[error("{method} is not allowed here")]
    MethodNotAllowed { method: String },
    /// The service is up but cannot serve yet (for `/readyz`).
    #[error("{0}")]
    NotReady(String),
    /// Shutdown has begun (for `/readyz`): requests are still served for
    /// `TRIBUTARY_SHUTDOWN_DELAY`, then drained.
    #[error("the service is shutting down; send requests to another instance")]
    ShuttingDown,
    /// More requests are in flight than the server takes at once.
    #[error("the server is handling its limit of {limit} requests at once; retry in a second")]
    Overloaded { limit: usize },
    /// More live streams are open than the instance serves.
    #[error("this instance serves its limit of {limit} live streams; retry shortly")]
    TooManyStreams { limit: usize },
    /// The vehicle sent more readings than its rate limit allows.
    #[error(
        "vehicle {:?} may send {} readings per second (bursts of up to {}); this request's {} would exceed that, so none were stored; retry after {} s",
        limit.vehicle, limit.readings_per_second, limit.burst, limit.requested, limit.retry_after_seconds
    )]
    RateLimited { limit: RateLimit },
    /// The request did not prove who it is (no token, or a token that does
    /// not verify): 401, or 400 for a token sent wrongly.
    #[error(transparent)]
    Unauthorized(AuthError),
    /// The caller's token does not allow this (a scope or a vehicle it lacks).
    #[error(transparent)]
    Forbidden(Forbidden),
    #[error(transparent)]
    Store(StoreError),
}

impl ApiError {
    /// An invalid request with its field errors; the detail names the first.
    pub fn invalid(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [] => "the request is not valid".to_owned(),
            [only] => field_sentence(only),
            [first, rest @ ..] => format!(
                "{} (and {} more problems, see `errors`)",
                field_sentence(first),
                rest.len()
            ),
        };
        Self::InvalidRequest { detail, errors }
    }

    /// The kind of problem this is.
    pub fn kind(&self) -> ProblemKind {
        match self {
            Self::MalformedBody(_) | Self::CorruptEncoding(_) => ProblemKind::MalformedBody,
            Self::InvalidRequest { .. } => ProblemKind::InvalidRequest,
            Self::BodyTooLarge { .. } => ProblemKind::BodyTooLarge,
            Self::UnsupportedEncoding(_) => ProblemKind::UnsupportedEncoding,
            Self::BodyTimeout { .. } => ProblemKind::BodyTimeout,
            Self::NotFound(_) => ProblemKind::NotFound,
            Self::MethodNotAllowed { .. } => ProblemKind::MethodNotAllowed,
            Self::NotReady(_) | Self::Store(StoreError::Unavailable(_)) => {
                ProblemKind::StoreUnavailable
            }
            Self::Overloaded { .. } | Self::TooManyStreams { .. } => ProblemKind::Overloaded,
            Self::ShuttingDown => ProblemKind::ShuttingDown,
            Self::RateLimited { .. } => ProblemKind::RateLimited,
            Self::Unauthorized(err) if err.status() == StatusCode::BAD_REQUEST => {
                ProblemKind::TokenRequest
            }
            Self::Unauthorized(_) => ProblemKind::Unauthorized,
            Self::Forbidden(_) => ProblemKind::Forbidden,
            Self::Store(StoreError::Internal(_)) => ProblemKind::Internal,
            Self::Store(StoreError::Full(_)) => ProblemKind::VehicleLimit,
        }
    }
}

/// Every kind of problem the service answers, and the one table of their
/// statuses and `type`s (documented in the README; the OpenAPI error sets in
/// `openapi` are built from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    MalformedBody,
    InvalidRequest,
    BodyTooLarge,
    UnsupportedEncoding,
    BodyTimeout,
    NotFound,
    MethodNotAllowed,
    StoreUnavailable,
    Overloaded,
    ShuttingDown,
    RateLimited,
    VehicleLimit,
    /// A token sent wrongly (twice, or in the query where only the header counts).
    TokenRequest,
    Unauthorized,
    Forbidden,
    Internal,
}

impl ProblemKind {
    /// The status and the stable, machine-readable problem type.
    const fn row(self) -> (StatusCode, &'static str) {
        match self {
            Self::MalformedBody => (StatusCode::BAD_REQUEST, "malformed-body"),
            Self::InvalidRequest => (StatusCode::UNPROCESSABLE_ENTITY, "invalid-request"),
            Self::BodyTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "body-too-large"),
            Self::UnsupportedEncoding => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-encoding")
            }
            Self::BodyTimeout => (StatusCode::REQUEST_TIMEOUT, "body-timeout"),
            Self::NotFound => (StatusCode::NOT_FOUND, "not-found"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed"),
            Self::StoreUnavailable => (StatusCode::SERVICE_UNAVAILABLE, "store-unavailable"),
            Self::Overloaded => (StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
            Self::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, "shutting-down"),
            Self::RateLimited => (StatusCode::TOO_MANY_REQUESTS, "rate-limited"),
            Self::VehicleLimit => (StatusCode::INSUFFICIENT_STORAGE, "vehicle-limit"),
            Self::TokenRequest => (StatusCode::BAD_REQUEST, "invalid-token-request"),
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
            Self::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    pub const fn status(self) -> StatusCode {
        self.row().0
    }

    /// The suffix of the problem's `type` URN.
    pub const fn slug(self) -> &'static str {
        self.row().1
    }

    /// Whether its answers carry a `WWW-Authenticate` challenge.
    pub const fn challenges(self) -> bool {
        matches!(self, Self::TokenRequest | Self::Unauthorized | Self::Forbidden)
    }

    /// Whether its answers carry `Retry-After`: the refusals worth retrying
    /// as they are, later.
    pub const fn retry_after(self) -> bool {
        matches!(self, Self::RateLimited | Self::StoreUnavailable | Self::Overloaded)
    }
}

fn field_sentence(error: &FieldError) -> String {
    match (error.pointer.as_deref(), error.parameter.as_deref()) {
        (Some(pointer), _) if !pointer.is_empty() => format!("{pointer}: {}", error.detail),
        (_, Some(parameter)) => format!("parameter {parameter}: {}", error.detail),
        _ => error.detail.clone(),
    }
}

/// An RFC 9457 problem details body (`application/problem+json`).
#[derive(Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A stable URN per kind of problem, e.g. `urn:tributary:problem:invalid-request`.
    #[serde(rename = "type")]
    kind: String,
    title: String,
    status: u16,
    /// What went wrong and what to change.
    detail: String,
    /// One entry per bad field, for invalid requests.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<FieldError>,
    /// The limit that was hit, for `rate-limited`.
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<RateLimit>,
    /// The scope the token lacks, for `forbidden`.
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'static str>,
    /// The vehicle the token does not hold, for `forbidden`.
    #[serde(skip_serializing_if = "Option::is_none")]
    vehicle: Option<String>,
    /// The request's id, also in the answer's `X-Request-Id` and the access
    /// log: the client's own `X-Request-Id` when it sent a sane one.
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
}

/// Which rate limit refused a request, and when to try again.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RateLimit {
    /// The limit's name: `vehicle-readings`, readings per second per vehicle.
    pub name: &'static str,
    pub vehicle: String,
    pub readings_per_second: u32,
    /// How many readings a vehicle may send at once after a quiet spell.
    pub burst: u32,
    /// Readings in the refused request.
    pub requested: usize,
    /// Also in the `Retry-After` header.
    pub retry_after_seconds: u64,
}

/// The problem type of an error response, as a response extension, so that
/// metrics can count refusals by reason without parsing the body.
#[derive(Debug, Clone, Copy)]
pub struct ProblemType(pub &'static str);

/// Why a request was refused for its token (`missing_token`, `expired`,
/// `insufficient_scope`, …), as a response extension: the request middleware
/// counts refusals by it. Never the token or its subject.
#[derive(Debug, Clone, Copy)]
pub struct AuthRefusal(pub &'static str);

/// The cause of a failure that is not the caller's (a store failure), as a
/// response extension: the request middleware logs it.
#[derive(Debug, Clone)]
pub struct Failure(pub Arc<StoreError>);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let kind = self.kind();
        let (status, slug) = (kind.status(), kind.slug());
        let detail = match &self {
            Self::Store(StoreError::Unavailable(_)) => {
                "the store is unavailable; retry shortly".to_owned()
            }
            Self::Store(StoreError::Internal(_)) => "internal error; it has been logged".to_owned(),
            Self::Store(StoreError::Full(limit)) => format!("{limit}; nothing was stored"),
            other => other.to_string(),
        };
        // A refusal before the whole body was read leaves the rest of it on
        // the connection: say that it closes, so that a client does not send
        // its next request on it (hyper closes it, but does not say so).
        let closes = matches!(
            self,
            Self::BodyTooLarge { .. } | Self::BodyTimeout { .. } | Self::CorruptEncoding(_)
        );
        let retry_after = match &self {
            Self::RateLimited { limit } => Some(limit.retry_after_seconds),
            _ if kind.retry_after() => Some(1),
            _ => None,
        };
        let kind = format!("urn:tributary:problem:{slug}");
        let challenge = match &self {
            Self::Unauthorized(err) => Some((err.www_authenticate(), err.reason())),
            Self::Forbidden(err) => Some((err.www_authenticate(), err.reason())),
            _ => None,
        };
        let (mut scope, mut vehicle) = (None, None);
        let (errors, limit, failure) = match self {
            Self::InvalidRequest { errors, .. } => (errors, None, None),
            Self::RateLimited { limit } => (Vec::new(), Some(limit), None),
            Self::Store(StoreError::Full(_)) => (Vec::new(), None, None),
            Self::Store(err) => (Vec::new(), None, Some(Failure(Arc::new(err)))),
            Self::Forbidden(err) => {
                scope = Some(err.scope.as_str());
                vehicle = err.vehicle.map(|vehicle| vehicle.as_str().to_owned());
                (Vec::new(), None, None)
            }
            _ => (Vec::new(), None, None),
        };
        let problem = Problem {
            kind,
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail,
            errors,
            limit,
            scope,
            vehicle,
            request_id: super::access::current_id(),
        };
        let mut response = (status, axum::Json(problem)).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if closes {
            response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response.extensions_mut().insert(ProblemType(slug));
        if let Some((challenge, reason)) = challenge {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, challenge);
            response.extensions_mut().insert(AuthRefusal(reason));
        }
        if let Some(failure) = failure {
            response.extensions_mut().insert(failure);
        }
        response
    }
}
