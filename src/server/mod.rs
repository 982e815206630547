//! The server: accepts TCP connections and serves HTTP/1.1 on each with the
//! router, until shutdown. Two pieces, as in tokio's mini-redis: the
//! [`Listener`] (connection permits, accept and its backoff, shutdown and the
//! drain) and one [`handler`] per connection (its header deadline, and
//! `Connection: close` on answers once draining has begun).
//!
//! Why our own accept loop rather than `axum::serve`: axum 0.8's `serve` has no
//! header-read timeout (a client that stops halfway through its headers would
//! hold a connection forever) and no connection limit. When a release of
//! axum's `serve` gains both, these reasons remain:
//! - the header deadline is one per connection, not a timer per request (which
//!   showed in the profile; see [`deadline`] and `docs/performance.md`), and it
//!   also covers writing the answer and the keep-alive wait;
//! - on shutdown, a request already sent on a keep-alive connection but not yet
//!   read is still answered (hyper's graceful shutdown closes such a connection
//!   at once), each answer closing its connection;
//! - HTTP/1.1 only, with a 64 KiB read buffer per connection, and the open
//!   connections as a metric;
//! - a lingering close ([`linger`]), so that an answer sent before the
//!   request's body was read (413) reaches a client still sending it.
//!
//! If axum's `serve` ever offers those, this module can go.

mod deadline;
mod handler;
mod linger;
mod listener;

pub use listener::{Limits, Listener};
