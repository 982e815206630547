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
    /// Redis Cluster seed nodes, as comma-separated URLs
    /// (`redis://h1:7000,redis://h2:7000`; `rediss://` and passwords as for
    /// TRIBUTARY_REDIS_URL, which this excludes). A few nodes suffice: the
    /// client learns the others, and follows the slots as they move.
    #[arg(long, env = "TRIBUTARY_REDIS_CLUSTER", hide_env_values = true)]
    pub redis_cluster: Option<RedisUrl>,
    /// Replicas that must confirm each write (`WAIT n`) before it is
    /// acknowledged; if fewer do within the store timeout, the answer is 503
    /// store-unavailable. 0: acknowledged once the master has it.
    #[arg(long, env = "TRIBUTARY_REDIS_MIN_REPLICAS_ACK", default_value_t = 0)]
    pub redis_min_replicas_ack: u32,
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

    /// The Redis Cluster's seed URLs, if set (an empty value is unset), each
    /// trimmed; empty items (a trailing comma) are skipped.
    pub fn redis_cluster(&self) -> Option<Vec<RedisUrl>> {
        let list = self.redis_cluster.as_ref().filter(|urls| !urls.is_empty())?;
        Some(list.expose().split(',').map(RedisUrl::from).filter(|url| !url.is_empty()).collect())
    }

    /// Which Redis to use, refusing contradictory settings: both a URL and a
    /// cluster, or replica acknowledgements without Redis.
    pub fn redis_target(&self) -> anyhow::Result<RedisTarget> {
        let target = match (self.redis_url(), self.redis_cluster()) {
            (Some(_), Some(_)) => anyhow::bail!(
                "both TRIBUTARY_REDIS_URL (--redis-url) and TRIBUTARY_REDIS_CLUSTER (--redis-cluster) are set: set TRIBUTARY_REDIS_URL for one Redis, or TRIBUTARY_REDIS_CLUSTER for a Redis Cluster, not both"
            ),
            (Some(url), None) => RedisTarget::Single(url.clone()),
            (None, Some(urls)) if urls.is_empty() => {
                anyhow::bail!("TRIBUTARY_REDIS_CLUSTER names no node: give redis://host:port,...")
            }
            (None, Some(urls)) => RedisTarget::Cluster(urls),
            (None, None) => RedisTarget::Memory,
        };
        if matches!(target, RedisTarget::Memory) && self.redis_min_replicas_ack > 0 {
            anyhow::bail!(
                "TRIBUTARY_REDIS_MIN_REPLICAS_ACK is {} but no Redis is set (TRIBUTARY_REDIS_URL or TRIBUTARY_REDIS_CLUSTER): the embedded store has no replicas",
                self.redis_min_replicas_ack
            );
        }
        Ok(target)
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

/// The store the settings ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisTarget {
    /// No Redis: the embedded store.
    Memory,
    /// One Redis (`TRIBUTARY_REDIS_URL`).
    Single(RedisUrl),
    /// A Redis Cluster's seed nodes (`TRIBUTARY_REDIS_CLUSTER`).
    Cluster(Vec<RedisUrl>),
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
        assert_eq!(settings.redis_min_replicas_ack, 0);
        assert_eq!(settings.redis_target().unwrap(), RedisTarget::Memory);
    }

    #[test]
    fn a_cluster_is_a_list_of_seed_urls_and_excludes_a_single_url() {
        let mut settings = ServeSettings::for_tests();
        settings.redis_cluster = Some(" redis://a:7000, redis://:pw@b:7001 ,".into());
        let RedisTarget::Cluster(urls) = settings.redis_target().unwrap() else {
            panic!("a cluster")
        };
        let urls: Vec<&str> = urls.iter().map(RedisUrl::expose).collect();
        assert_eq!(urls, ["redis://a:7000", "redis://:pw@b:7001"]);

        settings.redis_url = Some("redis://c:6379".into());
        let err = settings.redis_target().unwrap_err().to_string();
        assert!(err.contains("TRIBUTARY_REDIS_URL") && err.contains("not both"), "{err}");

        settings.redis_cluster = Some(" ".into());
        assert!(matches!(settings.redis_target().unwrap(), RedisTarget::Single(_)));
    }

    #[test]
    fn replica_acknowledgements_need_redis() {
        let mut settings = ServeSettings::for_tests();
        settings.redis_min_replicas_ack = 1;
        let err = settings.redis_target().unwrap_err().to_string();
        assert!(err.contains("TRIBUTARY_REDIS_MIN_REPLICAS_ACK"), "{err}");
    }
}
