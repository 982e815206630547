//! Tributary: the backend between the sensors in a car and the driver's phone.
//! Arrows point down only:
//!
//! - [`startup`]: builds and runs the service from [`config`] settings (wiring only).
//! - [`server`]: the accept loop and each connection.
//! - [`http`]: one module per surface (legacy, v1, ops, and the pages: the
//!   car and fleet views, compiled into the binary) and what they share.
//! - [`fleet`]: the service: what each operation does, independent of HTTP.
//! - [`domain`]: readings, signals, vehicles, windows; no I/O.
//! - [`store`]: the `Store` trait and its memory and Redis implementations.
//! - [`simulate`]: a fleet of simulated cars, for trying the service by hand.

pub mod auth;
pub mod config;
pub mod domain;
pub mod fleet;
pub mod healthcheck;
pub mod http;
pub mod live;
pub mod metrics;
pub mod server;
pub mod simulate;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod upkeep;
pub mod watch;
