//! Tributary's integration tests, as one crate (one build, one binary), a
//! module per topic. They run against the real router or binary and real
//! `redis-server` processes that they start on free ports (see `common`).

#[macro_use]
mod common;
mod access_log;
mod auth;
mod browser;
mod cluster;
mod compression;
mod container;
mod legacy;
mod limits;
mod live;
mod openapi;
mod process;
mod redis_outage;
mod redis_store;
mod redis_tls;
mod reliability;
mod scripts;
mod simulate;
mod store_properties;
mod v1;
mod vehicle_limit;
