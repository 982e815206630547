//! Who is calling: the [`Caller`] extractor authenticates a request once, from
//! its `Authorization` header (or, on the routes [`QUERY_TOKEN_ROUTES`] lists,
//! its `access_token` query parameter), and hands the handler the verified
//! [`Identity`]. What that identity may do is the fleet service's question.
//!
//! An extractor rather than a middleware: the open routes (`/healthz`,
//! `/readyz`, `/openapi.json`, the separate metrics port) simply do not ask for
//! one, so no list of exceptions can drift from the routes, and it runs before
//! the handler's other extractors (a 401 comes before a 422 or 404).

use axum::extract::{FromRequestParts, MatchedPath};
use axum::http::Method;
use axum::http::request::Parts;

use super::problem::ApiError;
use crate::auth::{Auth, Identity, TokenPlaces};

/// The GET routes whose token may also travel as `?access_token=` (RFC 6750
/// §2.3): streams and pages a browser opens with `EventSource` or a link,
/// which cannot set headers. Every other request sends the header.
pub const QUERY_TOKEN_ROUTES: &[&str] = &["/v1/vehicles/{vehicle_id}/stream", "/collect/stream"];

/// A state that can authenticate requests.
pub trait Authenticates {
    fn auth(&self) -> &Auth;
}

/// The verified identity of the request's caller (with auth off, unrestricted).
#[derive(Debug, Clone)]
pub struct Caller(pub Identity);

impl<S: Authenticates + Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let route = parts.extensions.get::<MatchedPath>().map(MatchedPath::as_str);
        let places = token_places(&parts.method, route);
        let identity = state.auth().authenticate(&parts.headers, parts.uri.query(), places)?;
        Ok(Self(identity))
    }
}

/// Where a request to `route` with `method` may carry its token.
pub fn token_places(method: &Method, route: Option<&str>) -> TokenPlaces {
    match route {
        Some(route) if method == Method::GET && QUERY_TOKEN_ROUTES.contains(&route) => {
            TokenPlaces::HeaderOrQuery
        }
        _ => TokenPlaces::HeaderOnly,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_get_requests_for_streams_may_carry_the_token_in_the_query() {
        let stream = Some("/v1/vehicles/{vehicle_id}/stream");
        assert_eq!(token_places(&Method::GET, stream), TokenPlaces::HeaderOrQuery);
        assert_eq!(token_places(&Method::GET, Some("/collect/stream")), TokenPlaces::HeaderOrQuery);
        assert_eq!(token_places(&Method::POST, stream), TokenPlaces::HeaderOnly);
        assert_eq!(token_places(&Method::GET, Some("/collect")), TokenPlaces::HeaderOnly);
        assert_eq!(token_places(&Method::GET, None), TokenPlaces::HeaderOnly);
    }
}
