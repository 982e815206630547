//! One connection: served by hyper with the router, cut off when its header
//! deadline passes, and, once the server drains, answering with
//! `Connection: close`.
//!
//! A live stream's answer (`text/event-stream`) is written for as long as the
//! stream lasts, so its connection's deadline starts when the stream's body
//! ends, not when its headers are ready (`UntilEnd`). The stream itself
//! answers for its client: it ends on shutdown, and a client that stops
//! reading costs a bounded inbox (see `live`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::{Body, HttpBody};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::body::{Frame, SizeHint};
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
                if is_event_stream(&response) {
                    let served = served.clone();
                    response =
                        response.map(|body| Body::new(UntilEnd { body, served: Some(served) }));
                } else {
                    served.headers_due.request_finished();
                }
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

/// Whether `response` is a live stream.
fn is_event_stream(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"text/event-stream"))
}

/// A stream's body, which starts its connection's deadline when it ends or
/// is dropped (the client went away).
struct UntilEnd {
    body: Body,
    served: Option<Arc<Handler>>,
}

impl UntilEnd {
    fn finish(&mut self) {
        if let Some(served) = self.served.take() {
            served.headers_due.request_finished();
        }
    }
}

impl Drop for UntilEnd {
    fn drop(&mut self) {
        self.finish();
    }
}

impl HttpBody for UntilEnd {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) {
            self.finish();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
