//! The legacy API: `POST /record` and `GET`/`POST /collect`, the original
//! engine-temperature service's API. Existing sensors and apps depend on these
//! answers byte for byte: `{"success": true}`, and `current_…`/`average_…`
//! with `null` when nothing has been recorded. They only ever grow new fields.
//! `GET /collect/stream` pushes `/collect`'s answer live (`stream`).
//!
//! This module owns the surface's routes, body parsing (`wire`) and OpenAPI
//! annotations; its handlers share a [`Legacy`] state, which adds `/collect`'s
//! answer keys to the service's state.

mod collect;
mod record;
mod stream;
pub mod wire;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use self::collect::{COLLECT_BODY, COLLECT_RESPONSE, CollectBody, CollectKeys};
use self::record::RECORD_BODY;
use super::body::BodyTimeout;
use super::caller::Authenticates;
use super::openapi::add_signals;
use super::state::AppState;
use crate::auth::Auth;
use crate::domain::Catalog;

/// The legacy handlers' state: the service's, and `/collect`'s keys.
#[derive(Clone)]
struct Legacy(Arc<LegacyInner>);

struct LegacyInner {
    app: AppState,
    /// `/collect`'s keys for each signal of the catalog.
    collect_keys: CollectKeys,
}

impl std::ops::Deref for Legacy {
    type Target = LegacyInner;

    fn deref(&self) -> &LegacyInner {
        &self.0
    }
}

impl Authenticates for Legacy {
    fn auth(&self) -> &Auth {
        &self.app.auth
    }
}

impl BodyTimeout for Legacy {
    fn body_timeout(&self) -> Duration {
        self.app.body_timeout
    }
}

/// Schemas only referenced by name from the annotations.
#[derive(OpenApi)]
#[openapi(components(schemas(CollectBody)))]
struct LegacyDoc;

/// The surface's routes, documented.
pub(super) fn routes(app: &AppState) -> OpenApiRouter<AppState> {
    let collect_keys = CollectKeys::new(app.catalog.names());
    let state = Legacy(Arc::new(LegacyInner { app: app.clone(), collect_keys }));
    OpenApiRouter::with_openapi(LegacyDoc::openapi())
        .routes(routes!(record::record))
        .routes(routes!(collect::collect_get, collect::collect_post))
        .routes(routes!(stream::collect_stream))
        .with_state(state)
}

/// Adds what depends on the catalog to the surface's schemas in `schemas`.
pub(super) fn complete(schemas: &mut serde_json::Map<String, Value>, catalog: &Catalog) {
    let record = schemas.get_mut(RECORD_BODY).expect("the record body is documented");
    add_signals(record, catalog);
    let collect = schemas.get_mut(COLLECT_RESPONSE).expect("the collect response is documented");
    collect::add_collected_signals(collect, catalog);
    // `wire::parse_collect` refuses any field but `vehicle_id`.
    schemas.get_mut(COLLECT_BODY).expect("the collect body is documented")["additionalProperties"] =
        json!(false);
}
