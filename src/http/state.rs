//! What every handler can reach: the fleet service, the catalog and clock that
//! parsing needs, the metrics, and the HTTP layer's own limits.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::admission::InFlight;
use super::body::BodyTimeout;
use super::wire::ParseContext;
use crate::config::ServeSettings;
use crate::domain::{Catalog, Clock};
use crate::fleet::{Fleet, VehicleLimiter};
use crate::metrics::Metrics;
use crate::store::DynStore;

/// A small handle around one shared `AppStateInner`, as in mini-redis: every
/// request clones it a few times (middleware, handler), and one reference
/// count is cheaper than one per field.
#[derive(Clone)]
pub struct AppState(Arc<AppStateInner>);

impl std::ops::Deref for AppState {
    type Target = AppStateInner;

    fn deref(&self) -> &AppStateInner {
        &self.0
    }
}

pub struct AppStateInner {
    pub fleet: Fleet,
    pub catalog: Arc<Catalog>,
    pub clock: Arc<Clock>,
    pub metrics: Metrics,
    /// How long a client may take to send a request body.
    pub body_timeout: Duration,
    /// Requests in flight; past its limit, requests are shed.
    pub in_flight: InFlight,
    /// Set when shutdown begins: `/readyz` then answers 503.
    shutting_down: AtomicBool,
}

impl AppState {
    /// A state with the default limits and no rate limit, for embedding and tests.
    pub fn new(store: DynStore, catalog: Catalog, body_timeout: Duration) -> Self {
        let mut settings = ServeSettings::for_tests();
        settings.client_timeout = body_timeout;
        Self::from_settings(store, catalog, &settings)
    }

    pub fn from_settings(store: DynStore, catalog: Catalog, settings: &ServeSettings) -> Self {
        let clock = Arc::new(Clock::new());
        let metrics = Metrics::new();
        let limiter = VehicleLimiter::new(settings.vehicle_rate, settings.vehicle_burst);
        Self(Arc::new(AppStateInner {
            fleet: Fleet::new(store, clock.clone(), metrics.clone(), limiter),
            catalog: Arc::new(catalog),
            clock,
            metrics,
            body_timeout: settings.client_timeout,
            in_flight: InFlight::new(settings.max_in_flight as usize),
            shutting_down: AtomicBool::new(false),
        }))
    }

    /// From now on `/readyz` answers 503: the service is shutting down.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Relaxed);
    }

    /// Whether shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Relaxed)
    }

    pub fn parse_context(&self) -> ParseContext<'_> {
        ParseContext { catalog: &self.catalog, clock: &self.clock }
    }
}

impl BodyTimeout for AppState {
    fn body_timeout(&self) -> Duration {
        self.body_timeout
    }
}
