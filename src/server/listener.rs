//! The listener: owns the bound socket and the connection limit (the one home
//! of `TRIBUTARY_MAX_CONNECTIONS`), accepts connections and hands each to a
//! [`Handler`], and on shutdown drains them.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::server::graceful::GracefulShutdown;
use metrics::Gauge;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use super::handler::Handler;

/// After SIGTERM, how long connections keep being served (each answer closing
/// its connection) before the idle ones are closed; see `Listener::drain`.
const DRAIN_GRACE: Duration = Duration::from_millis(500);

/// How long to wait after a failed accept (out of file descriptors and the
/// like) before the next: backing off instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// What the listener needs to know besides the socket and the router.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Open connections at most; past it, new ones wait in the kernel's accept
    /// queue.
    pub max_connections: usize,
    /// How long a client may take to send a request's headers (see `deadline`).
    pub client_timeout: Duration,
    /// How long in-flight requests get to finish once shutdown begins.
    pub shutdown_timeout: Duration,
}

/// The bound socket and everything the accept loop shares between connections.
pub struct Listener {
    listener: TcpListener,
    router: Router,
    limits: Limits,
    /// The open-connections gauge.
    connections_open: Gauge,
}

impl Listener {
    pub fn new(listener: TcpListener, router: Router, limits: Limits, open: Gauge) -> Self {
        Self { listener, router, limits, connections_open: open }
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// Serves until `shutdown` completes, then stops accepting, lets in-flight
    /// requests finish (up to the shutdown timeout) and returns.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) {
        // HTTP/1.1 only: sensors and phones speak it, and hyper-util's automatic
        // HTTP/2 detection waits for a first byte with no timeout at all.
        let mut builder = http1::Builder::new();
        // The header deadline is kept per connection (see `deadline`): hyper's
        // own would set up a timer for every request.
        //
        // A client may fill a connection's read buffer before its header deadline:
        // 64 KiB (hyper's default is about 400 KiB) keeps MAX_CONNECTIONS of them
        // affordable. Longer headers get a 431.
        builder.header_read_timeout(None).max_buf_size(64 * 1024);
        let graceful = GracefulShutdown::new();
        // As in mini-redis: a permit per open connection, taken before accepting,
        // so that past the limit new connections wait in the kernel's accept
        // queue instead of costing this process memory.
        let permits = Arc::new(Semaphore::new(self.limits.max_connections));
        let draining = Arc::new(AtomicBool::new(false));
        tokio::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
                () = &mut shutdown => break,
            };
            let stream = tokio::select! {
                accepted = self.accept() => match accepted {
                    Some(stream) => stream,
                    None => continue,
                },
                () = &mut shutdown => break,
            };
            let handler = Handler::new(self.limits.client_timeout, draining.clone());
            handler.spawn(
                stream,
                &self.router,
                &builder,
                &graceful,
                &self.connections_open,
                permit,
            );
        }
        drop(self.listener);
        tracing::info!("shutting down: finishing in-flight requests");
        draining.store(true, Ordering::Relaxed);
        drain(graceful, self.limits.shutdown_timeout).await;
    }

    /// The next connection, or `None` after a failed accept and its backoff.
    async fn accept(&self) -> Option<TcpStream> {
        match self.listener.accept().await {
            Ok((stream, _peer)) => {
                let _ = stream.set_nodelay(true);
                Some(stream)
            }
            Err(err) => {
                tracing::warn!(error = %err, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                None
            }
        }
    }
}

/// Lets the open connections finish, up to `timeout`.
///
/// hyper's graceful shutdown closes a keep-alive connection at once when no
/// request has begun on it, even if the next one has already arrived unread: a
/// client that sent it before the signal would get no answer. So connections
/// are served for a moment first (the caller has set `draining`, so every
/// answer closes its connection), then shut down gracefully.
async fn drain(graceful: GracefulShutdown, timeout: Duration) {
    let drain = async move {
        let grace = tokio::time::Instant::now() + DRAIN_GRACE;
        while graceful.count() > 0 && tokio::time::Instant::now() < grace {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        graceful.shutdown().await;
    };
    tokio::select! {
        () = drain => tracing::info!("all connections closed"),
        () = tokio::time::sleep(timeout) => {
            tracing::warn!(?timeout, "shutdown timeout reached; closing remaining connections");
        }
    }
}
