//! The Redis connection: one `ConnectionManager` shared by every call, each
//! call under the store's deadline, a connection that misses it retired (see
//! the store's module header for why), and Redis errors mapped to
//! [`StoreError`]s.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, RedisError};

use super::RedisStore;
use crate::store::StoreError;

/// The connection manager calls run on, and how many it replaced.
pub(super) struct Connection {
    pub(super) manager: ConnectionManager,
    pub(super) generation: u64,
}

impl RedisStore {
    /// A connection manager that connects on first use.
    pub(super) fn manager(client: &redis::Client) -> Result<ConnectionManager, RedisError> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(500)))
            // `with_deadline` bounds every call: a second timer per call here
            // would only cost a registration in the timer wheel.
            .set_response_timeout(None)
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        ConnectionManager::new_lazy_with_config(client.clone(), config)
    }

    /// Runs one call on the shared connection under the store timeout; if it times
    /// out, the connection is replaced (see the module's header).
    pub(super) async fn with_deadline<T>(
        &self,
        call: impl AsyncFnOnce(&mut ConnectionManager) -> Result<T, RedisError>,
    ) -> Result<T, StoreError> {
        let (mut manager, generation) = {
            let connection = self.connection.lock().expect("never poisoned: no panics inside");
            (connection.manager.clone(), connection.generation)
        };
        let outcome = tokio::time::timeout(self.limits.timeout, call(&mut manager)).await;
        if outcome
            .as_ref()
            .map_or(true, |result| result.as_ref().is_err_and(RedisError::is_timeout))
        {
            self.retire(generation);
        }
        match outcome {
            Ok(result) => result.map_err(store_error),
            Err(_) => Err(StoreError::Unavailable(
                format!("Redis did not answer within {} ms", self.limits.timeout.as_millis())
                    .into(),
            )),
        }
    }

    /// Replaces connection `generation` with a new one (connected on first use),
    /// unless a call that timed out on it too already has. Calls still waiting
    /// on the old one keep their deadlines; the last to finish closes it.
    fn retire(&self, generation: u64) {
        let mut connection = self.connection.lock().expect("never poisoned: no panics inside");
        if connection.generation != generation {
            return;
        }
        match Self::manager(&self.client) {
            Ok(manager) => {
                *connection = Connection { manager, generation: generation + 1 };
                tracing::warn!(generation, "a Redis call timed out: replacing its connection");
            }
            // Unreachable in practice: the same client built the first manager.
            Err(err) => tracing::error!(error = %err, "cannot replace the Redis connection"),
        }
    }
}

pub(super) fn store_error(err: RedisError) -> StoreError {
    // Redis 7 keeps the code of an error inside a script (6.2 wraps it in
    // ERR), and a MULTI refused for it is an EXECABORT listing each refusal.
    let oom = err.code() == Some("OOM") || {
        let text = err.to_string();
        text.contains("OOM") && text.contains("command not allowed when used memory")
    };
    match err.code() {
        Some("VEHICLELIMIT") => {
            let max = err.detail().and_then(|d| d.split_whitespace().nth(1)).unwrap_or("?");
            return StoreError::Full(format!(
                "the vehicle is new, and Redis is using 90% of its maxmemory of {max} bytes, \
the rest kept for the vehicles it holds, which keep working; raise Redis' maxmemory \
(REDIS_MAXMEMORY in the Compose file)"
            ));
        }
        _ if oom => {
            return StoreError::Full(
                "Redis is at its maxmemory (noeviction) and refuses writes; raise Redis' maxmemory \
(REDIS_MAXMEMORY in the Compose file)"
                    .to_owned(),
            );
        }
        _ => {}
    }
    match err.kind() {
        ErrorKind::Parse | ErrorKind::UnexpectedReturnType => StoreError::Internal(err.into()),
        _ => StoreError::Unavailable(err.into()),
    }
}
