//! Tributary: the backend between the sensors in a car and the driver's phone.
//!
//! - [`domain`]: readings, signals, vehicles, windows; no I/O.
//! - [`store`]: the `Store` trait and its memory and Redis implementations.
//! - [`http`]: routes, wire formats and errors, over the `Store` trait.
//! - [`startup`]: builds and runs the service from [`config`] settings.
//! - [`simulate`]: a fleet of simulated cars, for trying the service by hand.

pub mod config;
pub mod domain;
pub mod fleet;
pub mod healthcheck;
pub mod http;
pub mod metrics;
pub mod server;
pub mod simulate;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod upkeep;
