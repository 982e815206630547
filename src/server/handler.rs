//! One connection: served by hyper with the router, cut off when its header
//! deadline passes, and, once the server drains, answering with
//! `Connection: close`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, header};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use metrics::Gauge;
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tower::Service;

use super::deadline::HeaderDeadline;
use super::linger::LingeringStream;

/// What the requests of one connection share: one handle per connection for
/// its requests to clone, so the server-wide `draining` flag is cloned once per
/// connection, not on every request.
pub(super) struct Handler {
    headers_due: HeaderDeadline,
    /// Set for every connection when shutdown begins: answers then close
    /// their connection (see `Listener::run_until`).
    draining: Arc<AtomicBool>,
}

impl Handler {
    pub(super) fn new(client_timeout: Duration, draining: Arc<AtomicBool>) -> Arc<Self> {
        Arc::new(Self { headers_due: HeaderDeadline::new(client_timeout), draining })
    }
}

impl Handler {
    /// Serves `stream` in a task of its own until it closes or its header
    /// deadline passes; the connection `permit` is held until then.
    pub(super) fn spawn(
        self: Arc<Self>,
        stream: TcpStream,
        router: &Router,
        builder: &http1::Builder,
        graceful: &GracefulShutdown,
        open: &Gauge,
        permit: OwnedSemaphorePermit,
    ) {
        let router = router.clone();
        let served = self.clone();
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
        let connection =
            builder.serve_connection(TokioIo::new(LingeringStream::new(stream)), service);
        let connection = graceful.watch(connection);
        let open = open.clone();
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
                () = self.headers_due.expired() => tracing::debug!("headers not received in time: connection closed"),
            }
            open.decrement(1.0);
            drop(permit);
        });
    }
}
