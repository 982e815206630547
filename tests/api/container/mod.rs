//! Checks of the container files that need no Docker engine, since CI has none.
//!
//! The Dockerfile's runtime stage is read and the binary is started exactly as
//! the image would start it (its ENTRYPOINT, CMD, ENV and non-root USER), so a
//! typo in any of them fails here rather than on someone's Docker host. The
//! Compose file is held to what Tributary promises: no acknowledged reading is
//! lost, and Redis cannot be reached from outside. `scripts/compose-smoke` runs
//! the real stack where a Docker engine exists.
//!
//! Files: `image` runs the image as its Dockerfile describes it;
//! `compose_store` holds the store's Compose settings (durability, memory,
//! health, shutdown); `compose_access` what Compose exposes (passwords,
//! ports, metrics, keys, `.env.example`); `dockerfile`, `server` and
//! `compose_file` are the helpers that read the Dockerfile, run the binary
//! and read the Compose files.

mod compose_access;
mod compose_file;
mod compose_store;
mod dockerfile;
mod image;
mod server;

use std::collections::BTreeMap;
use std::fs::Permissions;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Output};
use std::time::{Duration, Instant};

use crate::common::{Process, free_port};
use serde_norway::Value;

const BINARY: &str = env!("CARGO_BIN_EXE_tributary");

/// How long the server may take to answer, and how often to ask.
const STARTUP_DEADLINE: Duration = Duration::from_secs(10);
const POLL_EVERY: Duration = Duration::from_millis(20);

/// `docker stop` waits this long after SIGTERM before it sends SIGKILL.
const DOCKER_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The user to run as when the image's USER is a name rather than a number.
const NOBODY: u32 = 65534;

use self::compose_file::*;
use self::dockerfile::*;
use self::server::*;

fn read(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}
