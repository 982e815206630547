//! The one error type of the HTTP layer, rendered as RFC 9457 problem details.
//!
//! Caller mistakes become 4xx with a `detail` that says what to fix and, for
//! invalid readings, an `errors` list with a JSON pointer per bad field. Store
//! failures become an opaque 503 or 500, logged once here.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

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
    /// The body is JSON but not a valid request: wrong shape, unknown field,
    /// implausible value.
    #[error("{detail}")]
    InvalidRequest { detail: String, errors: Vec<FieldError> },
    #[error("Content-Encoding {0:?} is not accepted; send the JSON body uncompressed")]
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
    #[error(transparent)]
    Store(#[from] StoreError),
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

    fn status(&self) -> StatusCode {
        match self {
            Self::MalformedBody(_) => StatusCode::BAD_REQUEST,
            Self::InvalidRequest { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::NotReady(_) | Self::Store(StoreError::Unavailable(_)) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Store(StoreError::Internal(_)) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable, machine-readable problem type; documented in the README.
    fn slug(&self) -> &'static str {
        match self {
            Self::MalformedBody(_) => "malformed-body",
            Self::InvalidRequest { .. } => "invalid-request",
            Self::BodyTooLarge { .. } => "body-too-large",
            Self::UnsupportedEncoding(_) => "unsupported-encoding",
            Self::BodyTimeout { .. } => "body-timeout",
            Self::NotFound(_) => "not-found",
            Self::MethodNotAllowed { .. } => "method-not-allowed",
            Self::NotReady(_) | Self::Store(StoreError::Unavailable(_)) => "store-unavailable",
            Self::Store(StoreError::Internal(_)) => "internal",
        }
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
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let detail = match &self {
            Self::Store(err) => {
                tracing::error!(error = %err, "store failure");
                match err {
                    StoreError::Unavailable(_) => {
                        "the store is unavailable; retry shortly".to_owned()
                    }
                    StoreError::Internal(_) => "internal error; it has been logged".to_owned(),
                }
            }
            other => other.to_string(),
        };
        let kind = format!("urn:tributary:problem:{}", self.slug());
        let errors = match self {
            Self::InvalidRequest { errors, .. } => errors,
            _ => Vec::new(),
        };
        let problem = Problem {
            kind,
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail,
            errors,
        };
        let mut response = (status, axum::Json(problem)).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
