//! What browsers need: CORS for the origins in `TRIBUTARY_CORS_ORIGINS`
//! (tower-http's `CorsLayer`; none by default, so no cross-origin page may
//! call the API), and on every answer `X-Content-Type-Options: nosniff` and
//! `Cache-Control: no-store`. `no-store` is set on everything that does not
//! set its own (only `/openapi.json` does): nearly every answer carries a
//! vehicle's data or a refusal about it, and a per-route list could miss one.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// `X-Content-Type-Options: nosniff` on every answer, and `Cache-Control:
/// no-store` on every answer that does not say otherwise. Called by the
/// middleware every request passes through, rather than as two layers of
/// their own: each layer is a future and a clone per request.
pub(super) fn protect(headers: &mut HeaderMap) {
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

/// CORS for `origins`, if there are any. Outermost of the layers, so that a
/// preflight (which carries no token) is answered there.
pub(super) fn cors(origins: Vec<HeaderValue>) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .expose_headers([header::WWW_AUTHENTICATE, header::RETRY_AFTER, header::LOCATION])
        .max_age(Duration::from_secs(600));
    Some(cors)
}
