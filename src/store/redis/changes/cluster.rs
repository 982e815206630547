//! The Redis feed on a Redis Cluster: `SSUBSCRIBE` on the cluster connection,
//! which sends each to the node that owns the vehicle's slot. redis-rs' own
//! resubscription is not enough (after a failover it waits for a slot-map
//! refresh that a feed sending only `PING`s may never trigger, and a server
//! `SUNSUBSCRIBE` during a slot migration makes it forget the channel), so the
//! task here remakes lost subscriptions itself and resyncs each vehicle once
//! its subscription is back.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::cluster_async::ClusterConnection;
use redis::{ProtocolVersion, PushInfo, PushKind, RedisError, Value};
use tokio::sync::{broadcast, mpsc};

use super::{Command, PING_INTERVAL, RedisFeed, Shared, on_message};
use crate::domain::VehicleId;
use crate::store::changes::{
    FEED_BUFFER, FeedError, FeedEvent, Resync, channel, vehicle_of_channel,
};

impl RedisFeed {
    /// The feed of a Redis Cluster, whose seed nodes (and TLS) `builder`
    /// names; connects in the background. `timeout` bounds each command.
    /// Must be called inside a tokio runtime.
    pub fn with_cluster(
        builder: redis::cluster::ClusterClientBuilder,
        timeout: Duration,
    ) -> Result<Self, RedisError> {
        let (commands, receiver) = mpsc::unbounded_channel();
        let (events, _) = broadcast::channel(FEED_BUFFER);
        let connected = Arc::new(AtomicBool::new(false));
        let (lost, lost_receiver) = mpsc::unbounded_channel();
        let pushes = events.clone();
        let client = builder
            .use_protocol(ProtocolVersion::RESP3)
            .connection_timeout(timeout.min(Duration::from_millis(500)))
            .response_timeout(timeout)
            .overall_response_timeout(Some(timeout))
            .push_sender(move |push: PushInfo| -> Result<(), Infallible> {
                on_cluster_push(&pushes, &lost, push);
                Ok(())
            })
            .build()?;
        let config = redis::cluster::ClusterConfig::new()
            .set_connection_timeout(timeout.min(Duration::from_millis(500)))
            .set_response_timeout(timeout);
        let connection = client.get_pending_async_connection_with_config(config);
        let task = ClusterTask {
            connection,
            timeout,
            events: events.clone(),
            connected: connected.clone(),
            watched: BTreeSet::new(),
            pending: BTreeSet::new(),
        };
        tokio::spawn(task.run(receiver, lost_receiver));
        Ok(Self { shared: Arc::new(Shared { commands, events, connected }) })
    }
}

/// What the cluster connection's pushes say was lost: one vehicle's
/// subscription (its slot moved away), or possibly all (a node's connection
/// closed).
enum Lost {
    Vehicle(VehicleId),
    All,
}

/// How often lost subscriptions are tried again, while the cluster fails
/// over or its slot map catches up.
const RESUBSCRIBE_INTERVAL: Duration = Duration::from_millis(200);

/// The cluster feed's task: serves commands, pings, and subscribes again to
/// the vehicles whose subscriptions were lost, resyncing each once it is back.
struct ClusterTask {
    connection: ClusterConnection,
    timeout: Duration,
    events: broadcast::Sender<FeedEvent>,
    connected: Arc<AtomicBool>,
    /// Every vehicle to be subscribed to.
    watched: BTreeSet<VehicleId>,
    /// Watched vehicles whose subscription was lost and not yet remade.
    pending: BTreeSet<VehicleId>,
}

impl ClusterTask {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut lost: mpsc::UnboundedReceiver<Lost>,
    ) {
        let mut ping = tokio::time::interval(PING_INTERVAL);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut retry = tokio::time::interval(RESUBSCRIBE_INTERVAL);
        retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(command) => self.handle(command).await,
                    None => return,
                },
                Some(what) = lost.recv() => match what {
                    Lost::Vehicle(vehicle) if self.watched.contains(&vehicle) => {
                        self.pending.insert(vehicle);
                    }
                    Lost::Vehicle(_) => {}
                    Lost::All => self.pending.extend(self.watched.iter().cloned()),
                },
                _ = retry.tick(), if !self.pending.is_empty() => self.resubscribe().await,
                _ = ping.tick() => {
                    let answer = tokio::time::timeout(
                        self.timeout,
                        redis::cmd("PING").query_async::<Value>(&mut self.connection),
                    )
                    .await;
                    let up = matches!(answer, Ok(Ok(_)));
                    if self.connected.swap(up, Ordering::AcqRel) != up {
                        tracing::info!(connected = up, "live feed's Redis Cluster connection");
                    }
                }
            }
        }
    }

    async fn ssubscribe(&mut self, vehicle: &VehicleId) -> Result<(), FeedError> {
        match tokio::time::timeout(self.timeout, self.connection.ssubscribe(channel(vehicle))).await
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(FeedError::Unavailable(err.to_string())),
            Err(_) => Err(FeedError::Unavailable(
                "the Redis Cluster did not confirm the subscription in time".into(),
            )),
        }
    }

    /// Subscribes again to the vehicles whose subscription was lost, each
    /// resynced once it is back (messages may have been missed meanwhile).
    async fn resubscribe(&mut self) {
        for vehicle in std::mem::take(&mut self.pending) {
            if !self.watched.contains(&vehicle) {
                continue;
            }
            match self.ssubscribe(&vehicle).await {
                Ok(()) => {
                    tracing::info!(%vehicle, "live feed resubscribed on the cluster: resyncing");
                    let _ = self.events.send(FeedEvent::Resync(Resync::Vehicles(vec![vehicle])));
                }
                Err(_) => {
                    self.pending.insert(vehicle);
                }
            }
        }
    }

    async fn handle(&mut self, command: Command) {
        match command {
            Command::Subscribe(vehicle, reply) => {
                self.watched.insert(vehicle.clone());
                let result = self.ssubscribe(&vehicle).await;
                if result.is_err() {
                    self.watched.remove(&vehicle);
                }
                let _ = reply.send(result);
            }
            Command::Unsubscribe(vehicle) => {
                self.watched.remove(&vehicle);
                self.pending.remove(&vehicle);
                let name = channel(&vehicle);
                let answer =
                    tokio::time::timeout(self.timeout, self.connection.sunsubscribe(&name)).await;
                if !matches!(answer, Ok(Ok(()))) {
                    tracing::warn!("live feed cannot unsubscribe on the Redis Cluster");
                }
            }
        }
    }
}

/// Handles a push message of the cluster connection: must not block.
fn on_cluster_push(
    events: &broadcast::Sender<FeedEvent>,
    lost: &mpsc::UnboundedSender<Lost>,
    push: PushInfo,
) {
    match push.kind {
        PushKind::SMessage => on_message(events, &push.data),
        // Also the server's own, when the channel's slot moves to another
        // node (redis-rs then forgets the subscription: the task remakes it).
        PushKind::SUnsubscribe => {
            if let Some(Value::BulkString(name)) = push.data.first()
                && let Some(vehicle) = vehicle_of_channel(name)
            {
                let _ = lost.send(Lost::Vehicle(vehicle));
            }
        }
        PushKind::Disconnection => {
            let _ = lost.send(Lost::All);
        }
        _ => {}
    }
}
