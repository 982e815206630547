//! The Redis feed: one subscriber connection per instance, for all its streams.
//!
//! The write script `SPUBLISH`es the touched signals to the vehicle's sharded
//! channel ([`channel`]). This feed holds one RESP3 connection on which
//! change messages arrive as push messages: `SSUBSCRIBE` to a vehicle's
//! channel while a local stream watches it, `SUNSUBSCRIBE` when the last one
//! leaves, so Redis sends an instance only what its phones watch.
//!
//! Pub/sub is at most once: messages published while the connection is down
//! are lost. So when the connection drops (closed, or silent: a `PING` every
//! second must be answered within the timeout), the feed reconnects with
//! backoff, subscribes again to every watched channel, and only then emits
//! `Resync(All)`, so the hub's fresh snapshots are read once nothing can be
//! missed any more.
//!
//! Hand-written around a plain `MultiplexedConnection` rather than redis-rs'
//! `ConnectionManager` with automatic resubscription: the manager does not say
//! when it has reconnected (the resync needs that moment), stops retrying
//! after its retry budget until a command is sent, and never replaces a
//! connection that merely went silent. The loop below does those three things.
//!
//! On a Redis Cluster the feed is the cluster connection's, in [`cluster`].

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::MultiplexedConnection;
use redis::{
    AsyncConnectionConfig, Client, IntoConnectionInfo, ProtocolVersion, PushInfo, PushKind,
    RedisError, Value,
};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::Instant;

mod cluster;

use crate::domain::VehicleId;
use crate::store::changes::{
    FEED_BUFFER, Feed, FeedError, FeedEvent, FeedEvents, Resync, Touched, channel, decode_signals,
    vehicle_of_channel,
};

/// How often the connection must prove it is alive.
const PING_INTERVAL: Duration = Duration::from_secs(1);
/// Reconnection backoff: doubles from the first to the last.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// The Redis feed. Cheap to clone; its connection closes when the last clone goes.
#[derive(Clone)]
pub struct RedisFeed {
    shared: Arc<Shared>,
}

struct Shared {
    commands: mpsc::UnboundedSender<Command>,
    events: broadcast::Sender<FeedEvent>,
    connected: Arc<AtomicBool>,
}

enum Command {
    Subscribe(VehicleId, oneshot::Sender<Result<(), FeedError>>),
    Unsubscribe(VehicleId),
}

impl std::fmt::Debug for RedisFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The connection info holds the password: never print it.
        f.debug_struct("RedisFeed").field("connected", &self.is_connected()).finish()
    }
}

impl RedisFeed {
    /// Starts the feed for `url` (the store's URL: the feed speaks RESP3
    /// whatever the URL says). Connects in the background, so the service
    /// starts while Redis is still coming up; `timeout` bounds each connection
    /// attempt and each command. Must be called inside a tokio runtime.
    pub fn start(url: &str, timeout: Duration) -> Result<Self, RedisError> {
        let info = url.into_connection_info()?;
        let settings = info.redis_settings().clone().set_protocol(ProtocolVersion::RESP3);
        Ok(Self::with_client(Client::open(info.set_redis_settings(settings))?, timeout))
    }

    /// As [`RedisFeed::start`], with a client built by the caller (`rediss://`
    /// with its own CA or a client certificate), which must speak RESP3.
    pub fn with_client(client: Client, timeout: Duration) -> Self {
        let (commands, receiver) = mpsc::unbounded_channel();
        let (events, _) = broadcast::channel(FEED_BUFFER);
        let connected = Arc::new(AtomicBool::new(false));
        let (lost, lost_receiver) = mpsc::unbounded_channel();
        let task = Task {
            client,
            timeout,
            events: events.clone(),
            connected: connected.clone(),
            lost,
            watched: BTreeSet::new(),
            connection: None,
            generation: 0,
            backoff: BACKOFF_MIN,
            next_attempt: Instant::now(),
            outage_logged: false,
        };
        tokio::spawn(task.run(receiver, lost_receiver));
        Self { shared: Arc::new(Shared { commands, events, connected }) }
    }

    /// Whether the subscriber connection is up (and subscribed to every
    /// watched vehicle).
    pub fn is_connected(&self) -> bool {
        self.shared.connected.load(Ordering::Acquire)
    }
}

#[async_trait]
impl Feed for RedisFeed {
    async fn subscribe(&self, vehicle: &VehicleId) -> Result<(), FeedError> {
        let (reply, answer) = oneshot::channel();
        self.shared
            .commands
            .send(Command::Subscribe(vehicle.clone(), reply))
            .map_err(|_| FeedError::Unavailable("the Redis feed has stopped".into()))?;
        answer.await.map_err(|_| FeedError::Unavailable("the Redis feed has stopped".into()))?
    }

    fn unsubscribe(&self, vehicle: &VehicleId) {
        let _ = self.shared.commands.send(Command::Unsubscribe(vehicle.clone()));
    }

    fn events(&self) -> FeedEvents {
        FeedEvents::new(self.shared.events.subscribe())
    }
}

/// The connection's owner: a task that serves commands, pings, and reconnects.
struct Task {
    client: Client,
    timeout: Duration,
    events: broadcast::Sender<FeedEvent>,
    connected: Arc<AtomicBool>,
    /// Where a connection's push handler reports that it closed, by generation.
    lost: mpsc::UnboundedSender<u64>,
    /// Every vehicle to be subscribed to, whether connected or not.
    watched: BTreeSet<VehicleId>,
    connection: Option<(MultiplexedConnection, u64)>,
    /// Connections made so far; tells a stale "closed" report from a live one.
    generation: u64,
    backoff: Duration,
    next_attempt: Instant,
    /// Whether the current outage was logged: once per outage, not per attempt.
    outage_logged: bool,
}

impl Task {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut lost: mpsc::UnboundedReceiver<u64>,
    ) {
        let mut ping = tokio::time::interval(PING_INTERVAL);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if self.connection.is_none() && Instant::now() >= self.next_attempt {
                self.connect().await;
            }
            let next_attempt = self.next_attempt;
            tokio::select! {
                command = commands.recv() => match command {
                    Some(command) => self.handle(command).await,
                    // Every `RedisFeed` is gone.
                    None => return,
                },
                Some(generation) = lost.recv() => self.lose(generation, "the connection closed"),
                _ = ping.tick(), if self.connection.is_some() => self.ping().await,
                _ = tokio::time::sleep_until(next_attempt), if self.connection.is_none() => {}
            }
        }
    }

    /// Connects, subscribes to every watched channel, then asks for a resync
    /// of them; on failure, schedules the next attempt.
    async fn connect(&mut self) {
        self.generation += 1;
        let generation = self.generation;
        match self.open(generation).await {
            Ok(connection) => {
                self.connection = Some((connection, generation));
                self.connected.store(true, Ordering::Release);
                self.backoff = BACKOFF_MIN;
                if std::mem::take(&mut self.outage_logged) {
                    tracing::info!("live feed connected to Redis again");
                }
                if !self.watched.is_empty() {
                    tracing::info!(
                        channels = self.watched.len(),
                        "live feed resubscribed after reconnecting: resyncing streams"
                    );
                    let _ = self.events.send(FeedEvent::Resync(Resync::All));
                }
            }
            Err(err) => {
                if std::mem::replace(&mut self.outage_logged, true) {
                    tracing::debug!(error = %err, retry_in = ?self.backoff,
                        "live feed still cannot connect to Redis");
                } else {
                    tracing::warn!(error = %err, "live feed cannot connect to Redis: retrying");
                }
                self.next_attempt = Instant::now() + self.backoff;
                self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
            }
        }
    }

    async fn open(&self, generation: u64) -> Result<MultiplexedConnection, RedisError> {
        let events = self.events.clone();
        let lost = self.lost.clone();
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_push_sender(move |push: PushInfo| -> Result<(), Infallible> {
                on_push(&events, &lost, generation, push);
                Ok(())
            });
        let mut connection =
            self.client.get_multiplexed_async_connection_with_config(&config).await?;
        if !self.watched.is_empty() {
            // One channel per command: each is then answered by exactly one
            // confirmation, which the connection takes as its reply.
            let mut pipe = redis::pipe();
            for vehicle in &self.watched {
                pipe.cmd("SSUBSCRIBE").arg(channel(vehicle));
            }
            pipe.exec_async(&mut connection).await?;
        }
        Ok(connection)
    }

    async fn handle(&mut self, command: Command) {
        match command {
            Command::Subscribe(vehicle, reply) => {
                let command = redis::cmd("SSUBSCRIBE").arg(channel(&vehicle)).clone();
                self.watched.insert(vehicle);
                let result = match self.run_command(&command).await {
                    Some(Ok(())) => Ok(()),
                    Some(Err(err)) => Err(FeedError::Unavailable(err.to_string())),
                    None => {
                        Err(FeedError::Unavailable("not connected to Redis; reconnecting".into()))
                    }
                };
                let _ = reply.send(result);
            }
            Command::Unsubscribe(vehicle) => {
                let command = redis::cmd("SUNSUBSCRIBE").arg(channel(&vehicle)).clone();
                self.watched.remove(&vehicle);
                if let Some(Err(err)) = self.run_command(&command).await {
                    tracing::warn!(error = %err, "live feed cannot unsubscribe");
                }
            }
        }
    }

    /// Runs one command on the connection, if there is one; a failure of the
    /// connection itself drops it (the next loop reconnects).
    async fn run_command(&mut self, command: &redis::Cmd) -> Option<Result<(), RedisError>> {
        let (connection, generation) = self.connection.as_mut()?;
        let generation = *generation;
        let result = command.exec_async(connection).await;
        if let Err(err) = &result
            && (err.is_unrecoverable_error() || err.is_timeout() || err.is_io_error())
        {
            self.lose(generation, &err.to_string());
        }
        Some(result)
    }

    async fn ping(&mut self) {
        let Some((connection, generation)) = self.connection.as_mut() else {
            return;
        };
        let generation = *generation;
        let answer: Result<Value, RedisError> = redis::cmd("PING").query_async(connection).await;
        if let Err(err) = answer {
            self.lose(generation, &format!("PING failed: {err}"));
        }
    }

    /// Drops connection `generation` if it is the current one.
    fn lose(&mut self, generation: u64, why: &str) {
        if self.connection.as_ref().is_some_and(|(_, current)| *current == generation) {
            tracing::warn!(reason = why, "live feed lost its Redis connection: reconnecting");
            self.outage_logged = true;
            self.connection = None;
            self.connected.store(false, Ordering::Release);
            self.next_attempt = Instant::now();
        }
    }
}

/// Handles a push message of connection `generation`, on its reader: must not block.
fn on_push(
    events: &broadcast::Sender<FeedEvent>,
    lost: &mpsc::UnboundedSender<u64>,
    generation: u64,
    push: PushInfo,
) {
    match push.kind {
        PushKind::SMessage => on_message(events, &push.data),
        PushKind::Disconnection => {
            let _ = lost.send(generation);
        }
        _ => {}
    }
}

/// Turns a change message (`[channel, payload]`) into a feed event.
fn on_message(events: &broadcast::Sender<FeedEvent>, data: &[Value]) {
    let [Value::BulkString(channel), Value::BulkString(payload)] = data else {
        return;
    };
    let Some(vehicle) = vehicle_of_channel(channel) else {
        return;
    };
    let event = match decode_signals(payload) {
        Some(signals) => FeedEvent::Touched(Touched { vehicle, signals }),
        None => FeedEvent::Resync(Resync::Vehicles(vec![vehicle])),
    };
    let _ = events.send(event);
}
