//! Building and running the service. `Application::build` binds the listener and
//! builds everything; `run_until` serves until a shutdown future completes (in
//! production, `shutdown_signal()`). Tests start exactly what production starts.
//!
//! The accept loop uses hyper directly rather than `axum::serve`, because
//! `axum::serve` gives no way to set a header-read timeout: without one, a client
//! that stops halfway through its headers would hold a connection forever.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::http::{HeaderValue, header};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::Service;

use crate::config::ServeSettings;
use crate::connection::HeaderDeadline;
use crate::domain::Catalog;
use crate::http::{AppState, router};
use crate::metrics::Metrics;
use crate::store::{DynStore, MemoryStore, RedisStore, StoreLimits};

/// After SIGTERM, how long connections keep being served (each answer closing
/// its connection) before the idle ones are closed; see `run_until`.
const DRAIN_GRACE: Duration = Duration::from_millis(500);

pub struct Application {
    listener: TcpListener,
    router: Router,
    metrics: Metrics,
    client_timeout: Duration,
    shutdown_timeout: Duration,
    max_connections: usize,
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
        Ok(Self {
            listener,
            metrics: state.metrics.clone(),
            router: router(state),
            max_connections: settings.max_connections as usize,
            client_timeout: settings.client_timeout,
            shutdown_timeout: settings.shutdown_timeout,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    /// Serves until `shutdown` completes, then stops accepting, lets in-flight
    /// requests finish (up to the shutdown timeout) and returns.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        // HTTP/1.1 only: sensors and phones speak it, and hyper-util's automatic
        // HTTP/2 detection waits for a first byte with no timeout at all.
        let mut builder = http1::Builder::new();
        // The header deadline is kept per connection (see `HeaderDeadline`):
        // hyper's own would set up a timer for every request.
        //
        // A client may fill a connection's read buffer before its header deadline:
        // 64 KiB (hyper's default is about 400 KiB) keeps MAX_CONNECTIONS of them
        // affordable. Longer headers get a 431.
        builder.header_read_timeout(None).max_buf_size(64 * 1024);
        let graceful = GracefulShutdown::new();
        // As in mini-redis: a permit per open connection, taken before accepting,
        // so that past the limit new connections wait in the kernel's accept
        // queue instead of costing this process memory.
        let connections = Arc::new(Semaphore::new(self.max_connections));
        let draining = Arc::new(AtomicBool::new(false));
        tokio::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                permit = connections.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
                () = &mut shutdown => break,
            };
            let (stream, _peer) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %err, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let _ = stream.set_nodelay(true);
            let router = self.router.clone();
            // One handle per connection for its requests to clone: the shared
            // `draining` flag is cloned here once, not on every request.
            let served = Arc::new(Served {
                headers_due: HeaderDeadline::new(self.client_timeout),
                draining: draining.clone(),
            });
            let watched = served.clone();
            let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
                served.headers_due.request_started();
                let answer = router.clone().call(request);
                let served = served.clone();
                async move {
                    let mut response = answer.await?;
                    served.headers_due.request_finished();
                    if served.draining.load(Ordering::Relaxed) {
                        // hyper closes the connection once this answer is written.
                        let close = HeaderValue::from_static("close");
                        response.headers_mut().insert(header::CONNECTION, close);
                    }
                    Ok::<_, std::convert::Infallible>(response)
                }
            });
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            let connection = graceful.watch(connection);
            let open = self.metrics.connections().clone();
            open.increment(1.0);
            tokio::spawn(async move {
                tokio::select! {
                    // The connection first: headers that arrived before the
                    // deadline are read (and stop it) even if this task only
                    // runs after it.
                    biased;
                    ended = connection => if let Err(err) = ended {
                        tracing::debug!(error = %err, "connection ended with an error");
                    },
                    // Dropping the connection closes it: it was waiting for a
                    // request's headers, or for its client to read an answer.
                    () = watched.headers_due.expired() => tracing::debug!("headers not received in time: connection closed"),
                }
                open.decrement(1.0);
                drop(permit);
            });
        }
        drop(self.listener);
        tracing::info!("shutting down: finishing in-flight requests");
        // hyper's graceful shutdown closes a keep-alive connection at once when
        // no request has begun on it, even if the next one has already arrived
        // unread: a client that sent it before the signal would get no answer.
        // So keep serving for a moment first, every answer closing its connection.
        draining.store(true, Ordering::Relaxed);
        let drain = async move {
            let grace = tokio::time::Instant::now() + DRAIN_GRACE;
            while graceful.count() > 0 && tokio::time::Instant::now() < grace {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            graceful.shutdown().await;
        };
        tokio::select! {
            () = drain => tracing::info!("all connections closed"),
            () = tokio::time::sleep(self.shutdown_timeout) => {
                tracing::warn!(timeout = ?self.shutdown_timeout, "shutdown timeout reached; closing remaining connections");
            }
        }
        Ok(())
    }
}

/// What the requests of one connection share.
struct Served {
    headers_due: HeaderDeadline,
    /// Set for every connection when shutdown begins: answers then close
    /// their connection (see `run_until`).
    draining: Arc<AtomicBool>,
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
