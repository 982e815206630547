//! The settings of `tributary serve`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser};

use super::secret::RedisUrl;
use super::{parse_duration, parse_duration_or_zero};
use crate::auth::AuthSettings;
use crate::store::StoreLimits;

#[derive(Debug, Clone, Parser)]
#[command(name = "serve")]
pub struct ServeSettings {
    /// Address and port to listen on.
    #[arg(long, env = "TRIBUTARY_LISTEN", default_value = "0.0.0.0:8000")]
    pub listen: String,
    /// Redis URL: `redis://[[user]:password@]host[:port][/db]`, or `rediss://`
    /// for TLS. Unset or empty: the embedded in-memory store, which keeps
    /// nothing across restarts.
    #[arg(long, env = "TRIBUTARY_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<RedisUrl>,
    /// A PEM file of the certificate authorities that sign the Redis server's
    /// certificate, for `rediss://` (instead of the built-in Mozilla roots).
    #[arg(long, env = "TRIBUTARY_REDIS_CA")]
    pub redis_ca: Option<String>,
    /// A PEM client certificate, for a Redis that requires one
    /// (`--tls-auth-clients yes`); with TRIBUTARY_REDIS_CLIENT_KEY.
    #[arg(long, env = "TRIBUTARY_REDIS_CLIENT_CERT")]
    pub redis_client_cert: Option<String>,
    /// The PEM private key of TRIBUTARY_REDIS_CLIENT_CERT.
    #[arg(long, env = "TRIBUTARY_REDIS_CLIENT_KEY")]
    pub redis_client_key: Option<String>,
    /// How many newest readings per vehicle and signal are kept and averaged.
    #[arg(long, env = "TRIBUTARY_WINDOW", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub window: u32,
    /// How long a vehicle that sends nothing is remembered (e.g. `7d`, `12h`).
    #[arg(long, env = "TRIBUTARY_RETENTION", default_value = "7d", value_parser = parse_duration)]
    pub retention: Duration,
    /// A TOML file of extra signals (see `signals.example.toml`). Unset: the built-ins.
    #[arg(long, env = "TRIBUTARY_SIGNALS")]
    pub signals: Option<PathBuf>,
    /// How long a client may take to send a request's headers, and again its body,
    /// before it is cut off (408 for a body).
    #[arg(long, env = "TRIBUTARY_CLIENT_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub client_timeout: Duration,
    /// How long in-flight requests may take to finish after SIGTERM or Ctrl-C.
    #[arg(long, env = "TRIBUTARY_SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,
    /// After SIGTERM or Ctrl-C, how long `/readyz` answers 503 while every
    /// other request is still served, before the listener closes and the drain
    /// begins: time for a load balancer polling `/readyz` to stop sending
    /// requests (5s in the Compose file). 0: the drain begins at once.
    #[arg(long, env = "TRIBUTARY_SHUTDOWN_DELAY", default_value = "0s", value_parser = parse_duration_or_zero)]
    pub shutdown_delay: Duration,
    /// How long one store operation may take before the request is answered 503.
    #[arg(long, env = "TRIBUTARY_STORE_TIMEOUT", default_value = "1s", value_parser = parse_duration)]
    pub store_timeout: Duration,
    /// Requests handled at once; above this, requests are answered 503 with
    /// `Retry-After` at once instead of queueing.
    #[arg(long, env = "TRIBUTARY_MAX_IN_FLIGHT", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_in_flight: u32,
    /// Open client connections; above this, new connections wait in the
    /// kernel's accept queue until one closes.
    #[arg(long, env = "TRIBUTARY_MAX_CONNECTIONS", default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// Vehicles the embedded store holds at most; a new vehicle past it is
    /// refused (507 vehicle-limit) while known ones keep working. A vehicle
    /// costs about 1.6 KB with the default window, so the default, 1,000,000,
    /// is about 1.6 GB. 0 turns the limit off. On Redis the bound is Redis'
    /// `maxmemory` (with `noeviction`) instead.
    #[arg(long, env = "TRIBUTARY_MAX_VEHICLES", default_value_t = 1_000_000)]
    pub max_vehicles: u64,
    /// Readings per second one vehicle may send (a batch of 100 counts 100);
    /// above it, 429 with `Retry-After`. 0 turns the limit off.
    #[arg(long, env = "TRIBUTARY_VEHICLE_RATE", default_value_t = 1000)]
    pub vehicle_rate: u32,
    /// Readings one vehicle may send at once after a quiet spell (at least 1000,
    /// the largest batch).
    #[arg(long, env = "TRIBUTARY_VEHICLE_BURST", default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1000..))]
    pub vehicle_burst: u32,
    /// Identity (tokens), browser (CORS) and metrics-port settings.
    #[command(flatten)]
    pub auth: AuthSettings,
    #[command(flatten)]
    pub live: super::LiveSettings,
}

impl ServeSettings {
    /// Settings for tests and embedding: clap's defaults (whatever the
    /// environment says), on a free loopback port, and no per-vehicle rate
    /// limit (tests write far faster than a car).
    pub fn for_tests() -> Self {
        let command = Self::command().mut_args(|arg| arg.env(None));
        let matches = command
            .try_get_matches_from(["serve", "--listen", "127.0.0.1:0", "--vehicle-rate", "0"])
            .expect("the defaults parse");
        Self::from_arg_matches(&matches).expect("the defaults parse")
    }

    /// The Redis URL, if one is set; an empty value (`TRIBUTARY_REDIS_URL=` in a
    /// `.env` file) means none.
    pub fn redis_url(&self) -> Option<&RedisUrl> {
        self.redis_url.as_ref().filter(|url| !url.is_empty())
    }

    /// The TLS files for `rediss://`: (CA, client certificate, client key),
    /// each if set (an empty value is unset, as Compose passes them).
    pub fn redis_tls_files(&self) -> [Option<&str>; 3] {
        [&self.redis_ca, &self.redis_client_cert, &self.redis_client_key]
            .map(|value| value.as_deref().filter(|path| !path.is_empty()))
    }

    /// What the store keeps, and for how long.
    pub fn store_limits(&self) -> StoreLimits {
        StoreLimits {
            window: self.window as usize,
            retention: self.retention,
            timeout: self.store_timeout,
            max_vehicles: (self.max_vehicles > 0).then_some(self.max_vehicles),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_settings_are_the_defaults_on_a_free_port_without_a_rate_limit() {
        let settings = ServeSettings::for_tests();
        assert_eq!(settings.listen, "127.0.0.1:0");
        assert_eq!(settings.vehicle_rate, 0);
        assert_eq!(settings.window, 10);
        assert_eq!(settings.retention, Duration::from_secs(7 * 24 * 3600));
        assert_eq!(settings.store_timeout, Duration::from_secs(1));
        assert_eq!(settings.shutdown_delay, Duration::ZERO);
        assert_eq!((settings.max_in_flight, settings.max_connections), (256, 4096));
        assert!(settings.redis_url().is_none());
    }
}
