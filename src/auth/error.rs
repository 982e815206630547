//! Why a request was refused: [`AuthError`] when it did not prove who it is
//! (401, or 400 for a request that sends its token wrongly) and [`Forbidden`]
//! when it did but may not do what it asks (403).
//!
//! Each refusal carries three things the HTTP layer needs and nothing it must
//! not show: a stable metric label ([`AuthError::reason`]), the RFC 6750 §3
//! error code and a human description. Descriptions are fixed sentences: they
//! never echo the token or any of its parts (a `kid` or `alg` chosen by the
//! caller could be long, or carry log-injection bytes), so they are safe in a
//! problem body, a `WWW-Authenticate` header and a log line alike.

use std::fmt;

use axum::http::{HeaderValue, StatusCode};

use super::identity::Scope;
use crate::domain::VehicleId;

/// The largest token accepted, in bytes; larger ones are refused before parsing.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The realm named in every `WWW-Authenticate` challenge.
pub const REALM: &str = "tributary";

/// A request that did not prove who it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No token in the request.
    #[error("no access token: send one as `Authorization: Bearer <token>`")]
    Missing,
    /// A token in the `access_token` query parameter where only the header is accepted.
    #[error(
        "an access token in the query (`access_token`) is accepted only on GET requests for \
         streams and pages: send it as `Authorization: Bearer <token>`"
    )]
    QueryNotAllowed,
    /// More than one token (two headers, two query parameters, or header and query).
    #[error(
        "more than one access token: send exactly one, in a single `Authorization: Bearer` header \
         (or, for streams and pages, a single `access_token` query parameter)"
    )]
    MultipleTokens,
    /// An `Authorization` header that is not `Bearer <token>`.
    #[error("the Authorization header is not `Bearer <token>`: {0}")]
    MalformedHeader(&'static str),
    /// A token that is not a well-formed JWT.
    #[error("the access token is not a well-formed JWT: {0}")]
    Malformed(&'static str),
    /// A token over [`MAX_TOKEN_BYTES`].
    #[error("the access token is larger than 8 KiB")]
    TooLarge,
    /// A token whose `alg` this service does not accept (`none` among them).
    #[error(
        "the access token's algorithm ({0}) is not accepted: tokens must be signed with EdDSA, \
         ES256, RS256 or HS256"
    )]
    UnsupportedAlgorithm(&'static str),
    /// A token whose `alg` differs from the algorithm of the key it names.
    #[error("the access token's algorithm does not match the algorithm of the key it names")]
    AlgorithmMismatch,
    /// No configured key can have signed the token; the text says why.
    #[error("{0}")]
    UnknownKey(&'static str),
    /// The signature does not verify with the selected key.
    #[error("the access token's signature does not verify")]
    BadSignature,
    /// `exp` (plus the leeway) lies in the past.
    #[error("the access token has expired")]
    Expired,
    /// `nbf` or `iat` (less the leeway) lies in the future.
    #[error("the access token is not valid yet (its nbf or iat lies in the future)")]
    NotYetValid,
    /// `iss` is missing or not the configured issuer.
    #[error("the access token was not issued by the issuer this service trusts")]
    WrongIssuer,
    /// `aud` is missing, or does not name the configured audience, or is set
    /// when no audience is configured.
    #[error("the access token is not meant for this service's audience")]
    WrongAudience,
    /// A required claim is absent, or a claim has the wrong shape.
    #[error("the access token's `{claim}` claim {problem}")]
    InvalidClaim {
        /// The claim's name.
        claim: &'static str,
        /// What is wrong with it, as the end of a sentence.
        problem: &'static str,
    },
}

impl AuthError {
    /// The label for refusal metrics: a small fixed set, never derived from the
    /// token or its subject.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Missing => "missing_token",
            Self::QueryNotAllowed | Self::MultipleTokens => "invalid_request",
            Self::MalformedHeader(_) | Self::Malformed(_) => "invalid_token",
            Self::TooLarge => "token_too_large",
            Self::UnsupportedAlgorithm(_) | Self::AlgorithmMismatch => "unsupported_algorithm",
            Self::UnknownKey(_) => "unknown_key",
            Self::BadSignature => "bad_signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongAudience => "wrong_audience",
            Self::InvalidClaim { .. } => "invalid_claims",
        }
    }

    /// The RFC 6750 §3.1 error code: `invalid_request` for a request that sends
    /// its token wrongly, `invalid_token` for everything else (the issue asks for
    /// `invalid_token` even with no token at all, where RFC 6750 would allow a
    /// bare challenge).
    pub fn error_code(&self) -> &'static str {
        match self {
            Self::QueryNotAllowed | Self::MultipleTokens => "invalid_request",
            _ => "invalid_token",
        }
    }

    /// 400 for `invalid_request`, 401 otherwise.
    pub fn status(&self) -> StatusCode {
        match self.error_code() {
            "invalid_request" => StatusCode::BAD_REQUEST,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// The `WWW-Authenticate` challenge to send with the refusal.
    pub fn www_authenticate(&self) -> HeaderValue {
        challenge(self.error_code(), &self.to_string(), None)
    }
}

/// A request whose token is valid but does not allow what it asks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Forbidden {
    /// The scope the operation needs.
    pub scope: Scope,
    /// The vehicle the token does not hold, when the scope is present but does
    /// not cover it; `None` when the scope itself is lacking.
    pub vehicle: Option<VehicleId>,
}

impl fmt::Display for Forbidden {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.vehicle {
            None => write!(f, "the access token lacks the `{}` scope", self.scope),
            Some(vehicle) => write!(
                f,
                "the access token's `{}` scope does not cover vehicle `{vehicle}`",
                self.scope
            ),
        }
    }
}

impl Forbidden {
    /// The metric label: always `insufficient_scope`.
    pub fn reason(&self) -> &'static str {
        "insufficient_scope"
    }

    /// Always 403.
    pub fn status(&self) -> StatusCode {
        StatusCode::FORBIDDEN
    }

    /// The `WWW-Authenticate` challenge, with RFC 6750's `scope` attribute.
    pub fn www_authenticate(&self) -> HeaderValue {
        challenge("insufficient_scope", &self.to_string(), Some(self.scope))
    }
}

/// `Bearer realm="tributary", error="…", error_description="…"[, scope="…"]`.
fn challenge(error: &str, description: &str, scope: Option<Scope>) -> HeaderValue {
    // RFC 6750 §3 limits error_description to %x20-21 / %x23-5B / %x5D-7E. Our
    // descriptions are fixed ASCII (a vehicle id is too), but a quote or
    // backslash would end the quoted string early, so map them away anyway.
    let description: String = description
        .chars()
        .map(|c| match c {
            '"' => '\'',
            '\\' => '/',
            c if (' '..='~').contains(&c) => c,
            _ => '?',
        })
        .collect();
    let mut value =
        format!("Bearer realm=\"{REALM}\", error=\"{error}\", error_description=\"{description}\"");
    if let Some(scope) = scope {
        value.push_str(&format!(", scope=\"{scope}\""));
    }
    HeaderValue::from_str(&value).expect("a challenge is printable ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_challenge_names_the_error_and_says_why_without_breaking_the_quoting() {
        let header = AuthError::Expired.www_authenticate();
        assert_eq!(
            header.to_str().unwrap(),
            "Bearer realm=\"tributary\", error=\"invalid_token\", \
             error_description=\"the access token has expired\""
        );
        let odd = challenge("invalid_token", "a \"quoted\" \\ é", None);
        assert!(odd.to_str().unwrap().ends_with("error_description=\"a 'quoted' / ?\""));
    }

    #[test]
    fn forbidden_names_the_scope_or_the_vehicle_it_lacks() {
        let no_scope = Forbidden { scope: Scope::Record, vehicle: None };
        assert_eq!(no_scope.to_string(), "the access token lacks the `record` scope");
        assert!(no_scope.www_authenticate().to_str().unwrap().ends_with(", scope=\"record\""));
        let car = VehicleId::try_from("car-2").unwrap();
        let other_car = Forbidden { scope: Scope::Read, vehicle: Some(car) };
        assert!(other_car.to_string().contains("does not cover vehicle `car-2`"));
        assert_eq!(other_car.status(), StatusCode::FORBIDDEN);
        assert_eq!(other_car.reason(), "insufficient_scope");
    }

    #[test]
    fn a_token_sent_twice_is_a_bad_request_and_everything_else_unauthorized() {
        assert_eq!(AuthError::MultipleTokens.status(), StatusCode::BAD_REQUEST);
        assert_eq!(AuthError::Missing.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(AuthError::BadSignature.error_code(), "invalid_token");
    }
}
