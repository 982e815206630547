//! Building and running the service. `Application::build` binds the listener and
//! builds everything; `run_until` serves until a shutdown future completes (in
//! production, `shutdown_signal()`). Tests start exactly what production starts.
//!
//! This module only wires: settings to the store, the state, the router and
//! the server's [`Listener`], which owns the accept loop.

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::config::ServeSettings;
use crate::domain::Catalog;
use crate::http::{AppState, router};
use crate::server::{Limits, Listener};
use crate::store::{DynStore, MemoryStore, RedisStore, StoreLimits};

pub struct Application {
    listener: Listener,
}

impl Application {
    /// Binds the listener and builds the store and routes. Does not need Redis to
    /// be up: the Redis store connects on first use and reconnects by itself.
    pub async fn build(settings: &ServeSettings) -> anyhow::Result<Self> {
        if settings.redis_url().is_some_and(|url| url.ends_with("#insecure")) {
            tracing::warn!(
                "TRIBUTARY_REDIS_URL ends in #insecure: Redis's TLS certificate is not verified; use this only for testing"
            );
        }
        let catalog = match &settings.signals {
            Some(path) => Catalog::with_file(path)?,
            None => Catalog::builtin(),
        };
        let store = build_store(settings, &catalog)?;
        let listener = TcpListener::bind(&settings.listen)
            .await
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        let state = AppState::from_settings(store, catalog, settings);
        state.metrics.spawn_upkeep();
        if let Some(limiter) = &state.limiter {
            limiter.spawn_cleanup();
        }
        tracing::info!(
            listen = %listener.local_addr()?,
            store = state.store.kind(),
            redis_url = settings.redacted_redis_url().as_deref(),
            window = settings.window,
            retention = %humantime::format_duration(settings.retention),
            signals = state.catalog.signals().len(),
            max_in_flight = settings.max_in_flight,
            max_connections = settings.max_connections,
            vehicle_rate = settings.vehicle_rate,
            "tributary listening"
        );
        let limits = Limits {
            max_connections: settings.max_connections as usize,
            client_timeout: settings.client_timeout,
            shutdown_timeout: settings.shutdown_timeout,
        };
        let open = state.metrics.connections().clone();
        Ok(Self { listener: Listener::new(listener, router(state), limits, open) })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr()
    }

    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    /// Serves until `shutdown` completes, then stops accepting, lets in-flight
    /// requests finish (up to the shutdown timeout) and returns.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        self.listener.run_until(shutdown).await;
        Ok(())
    }
}

/// The store the settings ask for.
pub fn build_store(settings: &ServeSettings, catalog: &Catalog) -> anyhow::Result<DynStore> {
    let limits = StoreLimits {
        window: settings.window as usize,
        retention: settings.retention,
        timeout: settings.store_timeout,
    };
    Ok(match settings.redis_url() {
        None => std::sync::Arc::new(MemoryStore::new(limits)),
        Some(url) => std::sync::Arc::new(
            RedisStore::connect_lazily(url, limits)
                .map_err(|e| anyhow::anyhow!("TRIBUTARY_REDIS_URL is not usable: {e}"))?
                .with_signals(catalog.names()),
        ),
    })
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM (what `docker stop` sends to PID 1).
///
/// The handlers are installed when this is called, not when the future is first
/// polled: call it before binding the listener, so that a signal arriving while
/// the service starts up still leads to a clean exit instead of the default
/// action (death by signal).
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let interrupt = signal(SignalKind::interrupt());
    let terminate = signal(SignalKind::terminate());
    async move {
        let (mut interrupt, mut terminate) = match (interrupt, terminate) {
            (Ok(interrupt), Ok(terminate)) => (interrupt, terminate),
            (Err(err), _) | (_, Err(err)) => {
                tracing::error!(error = %err, "cannot listen for SIGINT or SIGTERM");
                return std::future::pending().await;
            }
        };
        tokio::select! {
            _ = interrupt.recv() => tracing::info!("received Ctrl-C"),
            _ = terminate.recv() => tracing::info!("received SIGTERM"),
        }
    }
}
