//! Building and running the service. `Application::build` binds the listener and
//! builds everything; `run_until` serves until a shutdown future completes (in
//! production, `shutdown_signal()`). Tests start exactly what production starts.
//!
//! This module only wires: settings to the store and its change feed, the
//! state, the router and the server's [`Listener`], which owns the accept loop.
//! Live streams end (each with a last `shutdown` event) the moment the stop
//! signal fires, before the listener drains: an open stream would otherwise
//! hold the drain until its timeout.

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use std::sync::Arc;

use crate::auth::{Auth, OFF_WARNING};
use crate::config::{RedisTarget, RedisUrl, ServeSettings};
use crate::domain::Catalog;
use crate::fleet::VehicleLimiter;
use crate::http::{AppState, router};
use crate::server::{Limits, Listener};
use crate::store::changes::Feed;
use crate::store::redis::RedisFeed;
use crate::store::{DynStore, MemoryStore, RedisStore};
use crate::upkeep;

pub struct Application {
    listener: Listener,
    state: AppState,
    shutdown_delay: std::time::Duration,
    /// `/metrics` alone, without a token, when `TRIBUTARY_METRICS_LISTEN` is set.
    metrics_listener: Option<Listener>,
    /// Dropped when the service stops: ends the tasks that run until then
    /// (the key-file reloader, the metrics listener).
    stop: tokio::sync::watch::Sender<()>,
    /// Ends every live stream.
    streams_end: CancellationToken,
}

impl Application {
    /// Binds the listener and builds the store and routes. Does not need Redis to
    /// be up: the Redis store connects on first use and reconnects by itself.
    pub async fn build(settings: &ServeSettings) -> anyhow::Result<Self> {
        let insecure = |url: &RedisUrl| url.expose().ends_with("#insecure");
        if settings.redis_url().is_some_and(insecure) {
            tracing::warn!(
                "TRIBUTARY_REDIS_URL ends in #insecure: Redis's TLS certificate is not verified; use this only for testing"
            );
        }
        if settings.redis_cluster().is_some_and(|urls| urls.iter().any(insecure)) {
            tracing::warn!(
                "a TRIBUTARY_REDIS_CLUSTER URL ends in #insecure: the cluster's TLS certificates are not verified; use this only for testing"
            );
        }
        let catalog = match &settings.signals {
            Some(path) => Catalog::with_file(path)?,
            None => Catalog::builtin(),
        };
        let auth = settings.auth.resolve()?;
        if matches!(auth, Auth::Off) {
            tracing::warn!("{OFF_WARNING}");
        }
        let (store, feed) = build_store_and_feed(settings)?;
        let listener = TcpListener::bind(&settings.listen)
            .await
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        let metrics_listener = match settings.auth.metrics_listen() {
            Some(address) => Some(TcpListener::bind(address).await.with_context(|| {
                format!("cannot listen on {address} (TRIBUTARY_METRICS_LISTEN)")
            })?),
            None => None,
        };
        let streams_end = CancellationToken::new();
        let state = AppState::with_live(store, catalog, settings, auth, feed, streams_end.clone());
        let (stop, stopped) = tokio::sync::watch::channel(());
        // Every background task of the service, started here and only here.
        if let Some(authenticator) = state.auth.authenticator() {
            authenticator.spawn_reloader(until_stopped(stopped.clone()));
        }
        upkeep::spawn_all(
            [
                state.fleet.store().upkeep(),
                Some(state.metrics.upkeep()),
                // A store that keeps the rate state leaves the limiter's map empty.
                state
                    .fleet
                    .limiter()
                    .filter(|_| !state.fleet.store().keeps_rate_state())
                    .map(VehicleLimiter::upkeep),
                Some(crate::telemetry::upkeep()),
            ]
            .into_iter()
            .flatten(),
        );
        tracing::info!(
            listen = %listener.local_addr()?,
            store = state.fleet.store_kind(),
            redis_url = settings.redis_url().map(RedisUrl::redacted),
            redis_cluster = settings.redis_cluster().map(|urls| {
                urls.iter().map(RedisUrl::redacted).collect::<Vec<_>>().join(",")
            }),
            min_replicas_ack = settings.redis_min_replicas_ack,
            window = settings.window,
            retention = %humantime::format_duration(settings.retention),
            signals = state.catalog.signals().len(),
            max_in_flight = settings.max_in_flight,
            max_connections = settings.max_connections,
            vehicle_rate = settings.vehicle_rate,
            auth = state.auth.mode_name(),
            metrics_listen = metrics_listener.as_ref().and_then(|l| l.local_addr().ok()).map(|a| a.to_string()),
            max_streams = settings.live.max_streams,
            "tributary listening"
        );
        let limits = Limits {
            max_connections: settings.max_connections as usize,
            client_timeout: settings.client_timeout,
            shutdown_timeout: settings.shutdown_timeout,
        };
        let open = state.metrics.connections().clone();
        let metrics_listener = metrics_listener.map(|listener| {
            let limits = Limits { max_connections: 64, ..limits };
            let routes = crate::http::metrics_routes(state.clone());
            Listener::new(listener, routes, limits, metrics::Gauge::noop())
        });
        let listener = Listener::new(listener, router(state.clone()), limits, open);
        Ok(Self {
            listener,
            metrics_listener,
            stop,
            streams_end,
            state,
            shutdown_delay: settings.shutdown_delay,
        })
    }

    /// The address of the separate metrics listener, if there is one.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener.as_ref().map(Listener::local_addr)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr()
    }

    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    /// Serves until `shutdown` completes; then `/readyz` answers 503 while
    /// everything else is still served for the shutdown delay (so that a load
    /// balancer stops sending requests before the socket closes); then stops
    /// accepting, lets in-flight requests finish (up to the shutdown timeout)
    /// and returns.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        // The metrics port stays up while the API drains, so the drain can be watched.
        let metrics = self
            .metrics_listener
            .map(|listener| tokio::spawn(listener.run_until(until_stopped(self.stop.subscribe()))));
        let (state, delay, streams_end) = (self.state, self.shutdown_delay, self.streams_end);
        let shutdown = async move {
            shutdown.await;
            state.begin_shutdown();
            if !delay.is_zero() {
                tracing::info!(
                    delay = %humantime::format_duration(delay),
                    "shutting down: /readyz answers 503; still serving until the delay is over"
                );
                tokio::time::sleep(delay).await;
            }
            // Streams end when the drain begins, not before: a phone that
            // reconnected during the delay would come back to this instance.
            streams_end.cancel();
        };
        self.listener.run_until(shutdown).await;
        drop(self.stop);
        if let Some(metrics) = metrics {
            let _ = metrics.await;
        }
        Ok(())
    }
}

/// Completes when the application's `stop` sender is dropped.
async fn until_stopped(mut stopped: tokio::sync::watch::Receiver<()>) {
    while stopped.changed().await.is_ok() {}
}

/// The store the settings ask for, and the feed of its changes: the memory
/// store's own, or a subscriber connection to the same Redis or cluster (which
/// connects in the background: call this inside a tokio runtime).
pub fn build_store_and_feed(settings: &ServeSettings) -> anyhow::Result<(DynStore, Arc<dyn Feed>)> {
    Ok(match settings.redis_target()? {
        RedisTarget::Memory => {
            let store = MemoryStore::new(settings.store_limits());
            let feed = store.feed();
            (Arc::new(store), Arc::new(feed))
        }
        RedisTarget::Single(url) => {
            let store = redis_store(&url, settings)?;
            let client = redis_client(settings, &url, Some(redis::ProtocolVersion::RESP3))?;
            let feed = RedisFeed::with_client(client, settings.store_timeout);
            (Arc::new(store), Arc::new(feed))
        }
        RedisTarget::Cluster(urls) => {
            let store = cluster_store(&urls, settings)?;
            let builder = cluster_builder(settings, &urls)?;
            let feed = RedisFeed::with_cluster(builder, settings.store_timeout)
                .map_err(|err| unusable_cluster(&urls, &err))?;
            (Arc::new(store), Arc::new(feed))
        }
    })
}

fn redis_store(url: &RedisUrl, settings: &ServeSettings) -> anyhow::Result<RedisStore> {
    let client = redis_client(settings, url, None)?;
    RedisStore::with_client(client, settings.store_limits())
        .and_then(|store| store.with_replica_acks(settings.redis_min_replicas_ack))
        .map_err(|err| unusable_redis_url(url, &err))
}

fn cluster_store(urls: &[RedisUrl], settings: &ServeSettings) -> anyhow::Result<RedisStore> {
    let builder = cluster_builder(settings, urls)?;
    RedisStore::with_cluster(builder, settings.store_limits())
        .and_then(|store| store.with_replica_acks(settings.redis_min_replicas_ack))
        .map_err(|err| unusable_cluster(urls, &err))
}

/// The cluster client's builder for the seed `urls`, with the TLS files of
/// the settings if any.
fn cluster_builder(
    settings: &ServeSettings,
    urls: &[RedisUrl],
) -> anyhow::Result<redis::cluster::ClusterClientBuilder> {
    use redis::IntoConnectionInfo;
    let infos = urls
        .iter()
        .map(|url| url.expose().into_connection_info().map_err(|err| unusable_cluster(urls, &err)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut builder = redis::cluster::ClusterClientBuilder::new(infos);
    let [ca, cert, key] = settings.redis_tls_files();
    if ca.is_none() && cert.is_none() && key.is_none() {
        return Ok(builder);
    }
    if !urls.iter().all(|url| url.expose().starts_with("rediss://")) {
        anyhow::bail!(
            "TRIBUTARY_REDIS_CA, _CLIENT_CERT and _KEY are for TLS, but TRIBUTARY_REDIS_CLUSTER \
             names a node that is not rediss://: use rediss://, or unset them"
        );
    }
    builder = builder.certs(tls_certificates(ca, cert, key)?);
    Ok(builder)
}

/// Why the cluster's seed URLs cannot be used.
fn unusable_cluster(urls: &[RedisUrl], err: &redis::RedisError) -> anyhow::Error {
    let shown: Vec<String> = urls.iter().map(RedisUrl::redacted).collect();
    anyhow::anyhow!(
        "TRIBUTARY_REDIS_CLUSTER (--redis-cluster) {} is not usable: {}; expected \
comma-separated redis://[[user]:password@]host:port (or rediss://), the same password on each",
        shown.join(","),
        err.detail().unwrap_or(&err.to_string())
    )
}

/// The Redis client for `url`, with the TLS files of the settings if any;
/// speaking `protocol` if given (the change feed needs RESP3), else what the
/// URL says.
fn redis_client(
    settings: &ServeSettings,
    url: &RedisUrl,
    protocol: Option<redis::ProtocolVersion>,
) -> anyhow::Result<redis::Client> {
    use redis::IntoConnectionInfo;
    let mut info =
        url.expose().into_connection_info().map_err(|err| unusable_redis_url(url, &err))?;
    if let Some(protocol) = protocol {
        let redis_settings = info.redis_settings().clone().set_protocol(protocol);
        info = info.set_redis_settings(redis_settings);
    }
    let [ca, cert, key] = settings.redis_tls_files();
    if ca.is_none() && cert.is_none() && key.is_none() {
        return redis::Client::open(info).map_err(|err| unusable_redis_url(url, &err));
    }
    if !url.expose().starts_with("rediss://") {
        anyhow::bail!(
            "TRIBUTARY_REDIS_CA, _CLIENT_CERT and _KEY are for TLS, but TRIBUTARY_REDIS_URL {url} \
             is not rediss://: use rediss://, or unset them"
        );
    }
    let certificates = tls_certificates(ca, cert, key)?;
    redis::Client::build_with_tls(info, certificates).map_err(|err| {
        anyhow::anyhow!(
            "cannot use the TLS files for Redis (TRIBUTARY_REDIS_CA, TRIBUTARY_REDIS_CLIENT_CERT, \
             TRIBUTARY_REDIS_CLIENT_KEY: PEM files): {err}"
        )
    })
}

/// The TLS files (CA, client certificate, client key), read.
fn tls_certificates(
    ca: Option<&str>,
    cert: Option<&str>,
    key: Option<&str>,
) -> anyhow::Result<redis::TlsCertificates> {
    let read = |path: &str, setting: &str| {
        std::fs::read(path).with_context(|| format!("cannot read {setting} {path}"))
    };
    let client_tls = match (cert, key) {
        (Some(cert), Some(key)) => Some(redis::ClientTlsConfig {
            client_cert: read(cert, "TRIBUTARY_REDIS_CLIENT_CERT")?,
            client_key: read(key, "TRIBUTARY_REDIS_CLIENT_KEY")?,
        }),
        (None, None) => None,
        _ => anyhow::bail!(
            "set both TRIBUTARY_REDIS_CLIENT_CERT and TRIBUTARY_REDIS_CLIENT_KEY, or neither"
        ),
    };
    let root_cert = ca.map(|ca| read(ca, "TRIBUTARY_REDIS_CA")).transpose()?;
    Ok(redis::TlsCertificates { client_tls, root_cert })
}

/// Why `url` cannot be used, naming the setting and what to change, rather
/// than the Redis client's own words alone (`InvalidClientConfig`).
fn unusable_redis_url(url: &RedisUrl, err: &redis::RedisError) -> anyhow::Error {
    let why = match reqwest::Url::parse(url.expose()) {
        Err(err) => format!("it is not a URL ({err})"),
        Ok(parsed) if !matches!(parsed.scheme(), "redis" | "rediss" | "unix" | "redis+unix") => {
            format!("its scheme is {:?}; use redis://, or rediss:// for TLS", parsed.scheme())
        }
        Ok(_) => err.detail().unwrap_or("the Redis client refused it").to_owned(),
    };
    anyhow::anyhow!(
        "TRIBUTARY_REDIS_URL (--redis-url) {url} is not usable: {why}; expected \
redis://[[user]:password@]host[:port][/db], or rediss:// for TLS"
    )
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM (what `docker stop` sends to PID 1).
///
/// The handlers are installed when this is called, not when the future is first
/// polled: call it before binding the listener, so that a signal arriving while
/// the service starts up still leads to a clean exit instead of the default
/// action (death by signal).
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let interrupt = signal(SignalKind::interrupt());
    let terminate = signal(SignalKind::terminate());
    async move {
        let (mut interrupt, mut terminate) = match (interrupt, terminate) {
            (Ok(interrupt), Ok(terminate)) => (interrupt, terminate),
            (Err(err), _) | (_, Err(err)) => {
                tracing::error!(error = %err, "cannot listen for SIGINT or SIGTERM");
                return std::future::pending().await;
            }
        };
        tokio::select! {
            _ = interrupt.recv() => tracing::info!("received Ctrl-C"),
            _ = terminate.recv() => tracing::info!("received SIGTERM"),
        }
    }
}
