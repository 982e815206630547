//! What browsers need: CORS for the origins in `TRIBUTARY_CORS_ORIGINS`
//! (tower-http's `CorsLayer`; none by default, so no cross-origin page may
//! call the API), and on every answer `X-Content-Type-Options: nosniff` and
//! `Cache-Control: no-store`. `no-store` is set on everything that does not
//! set its own (only `/openapi.json` does): nearly every answer carries a
//! vehicle's data or a refusal about it, and a per-route list could miss one.

use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;

/// `router` with the browser headers, and CORS when `origins` is not empty.
pub(super) fn layers(router: Router, origins: Vec<HeaderValue>) -> Router {
    let router = router
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ));
    if origins.is_empty() {
        return router;
    }
    // Outermost, so that a preflight (which carries no token) is answered here.
    router.layer(cors(origins))
}

fn cors(origins: Vec<HeaderValue>) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .expose_headers([header::WWW_AUTHENTICATE, header::RETRY_AFTER, header::LOCATION])
        .max_age(Duration::from_secs(600))
}
