//! The live feed on a cluster: `SSUBSCRIBE` on the node that owns the
//! vehicle's slot, change messages from the write script, and after a
//! failover or a slot migration, the subscription remade on the new owner
//! and a resync of the vehicle (its streams' fresh snapshot).

use std::time::Duration;

use crate::common::{RedisCluster, cli, eventually};
use tributary::config::ServeSettings;
use tributary::domain::{Clock, Reading, SignalName, StampedBy, VehicleId};
use tributary::live::{Feed, FeedEvent, FeedEvents, RedisFeed, Resync, channel};
use tributary::store::{RedisStore, Store};

const DEADLINE: Duration = Duration::from_secs(20);
const TIMEOUT: Duration = Duration::from_secs(1);

fn builder(cluster: &RedisCluster) -> redis::cluster::ClusterClientBuilder {
    redis::cluster::ClusterClientBuilder::new(cluster.urls().split(',').map(str::to_owned))
}

/// The next event that is not `ignore`d, within the deadline.
async fn next_event(events: &mut FeedEvents, ignore: impl Fn(&FeedEvent) -> bool) -> FeedEvent {
    tokio::time::timeout(DEADLINE, async {
        loop {
            let event = events.recv().await.expect("the feed is open");
            if !ignore(&event) {
                return event;
            }
        }
    })
    .await
    .expect("no feed event within the deadline")
}

/// Writes one reading, retrying while the cluster fails over.
async fn write(store: &RedisStore, vehicle: &VehicleId) {
    let clock = Clock::new();
    eventually(DEADLINE, "a write to succeed", || async {
        let reading = Reading {
            signal: SignalName::parse("engine_rpm").unwrap(),
            at: clock.now(),
            value: 900.0,
            stamped_by: StampedBy::Server,
        };
        store.record(vehicle, &[reading], clock.now()).await.ok()
    })
    .await;
}

/// How many subscribers `vehicle`'s channel has on the node at `port`.
fn subscribers(port: u16, vehicle: &VehicleId) -> i64 {
    let reply = cli(port, &["PUBSUB", "SHARDNUMSUB", &channel(vehicle)]);
    reply.lines().last().and_then(|l| l.trim().parse().ok()).unwrap_or(0)
}

struct Setup {
    cluster: RedisCluster,
    feed: RedisFeed,
    events: FeedEvents,
    store: RedisStore,
    vehicle: VehicleId,
}

async fn setup() -> Setup {
    let cluster = RedisCluster::start();
    let feed = RedisFeed::with_cluster(builder(&cluster), TIMEOUT).unwrap();
    let mut events = feed.events();
    let store =
        RedisStore::with_cluster(builder(&cluster), ServeSettings::for_tests().store_limits())
            .unwrap();
    let vehicle = VehicleId::try_from("car-7").unwrap();
    eventually(DEADLINE, "the feed to subscribe", || async { feed.subscribe(&vehicle).await.ok() })
        .await;
    let owner = cluster.master_of(&channel(&vehicle));
    assert_eq!(subscribers(owner.port, &vehicle), 1, "subscribed on the slot's master");
    write(&store, &vehicle).await;
    assert!(matches!(next_event(&mut events, |_| false).await, FeedEvent::Touched(_)));
    Setup { cluster, feed, events, store, vehicle }
}

fn is_touched(event: &FeedEvent) -> bool {
    matches!(event, FeedEvent::Touched(_))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_failover_the_feed_resubscribes_on_the_new_master_and_resyncs_the_vehicle() {
    let Setup { mut cluster, feed, mut events, store, vehicle } = setup().await;
    let owner = cluster.master_of(&channel(&vehicle));
    cluster.kill(owner.port);
    let resync = next_event(&mut events, is_touched).await;
    assert_eq!(resync, FeedEvent::Resync(Resync::Vehicles(vec![vehicle.clone()])));
    // The node asked may learn of the promotion a moment after the feed.
    let promoted = tokio::task::block_in_place(|| {
        let started = std::time::Instant::now();
        loop {
            let slot = crate::common::key_slot(&cluster, &channel(&vehicle));
            let serving = cluster.topology().into_iter().find(|n| {
                n.master && !n.failed && n.slots.iter().any(|(a, b)| (*a..=*b).contains(&slot))
            });
            match serving {
                Some(node) if node.port != owner.port => return node,
                _ => assert!(started.elapsed() < DEADLINE, "no new master for the slot"),
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    assert_eq!(subscribers(promoted.port, &vehicle), 1);
    write(&store, &vehicle).await;
    assert!(matches!(next_event(&mut events, |_| false).await, FeedEvent::Touched(_)));
    drop(feed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_slot_migration_the_feed_follows_the_slot_and_resyncs_the_vehicle() {
    let Setup { cluster, feed, mut events, store, vehicle } = setup().await;
    let owner = cluster.master_of(&channel(&vehicle));
    let target = cluster.topology().into_iter().find(|n| n.master && n.id != owner.id).unwrap();
    let slot = crate::common::key_slot(&cluster, &channel(&vehicle)).to_string();
    // The slot alone, by hand, as `redis-cli --cluster reshard` does it.
    let (owner_port, target_port) = (owner.port.to_string(), target.port.to_string());
    cli(target.port, &["CLUSTER", "SETSLOT", &slot, "IMPORTING", &owner.id]);
    cli(owner.port, &["CLUSTER", "SETSLOT", &slot, "MIGRATING", &target.id]);
    let keys = cli(owner.port, &["CLUSTER", "GETKEYSINSLOT", &slot, "100"]);
    for key in keys.lines().filter(|k| !k.is_empty()) {
        let out = cli(owner.port, &["MIGRATE", "127.0.0.1", &target_port, key, "0", "5000"]);
        assert!(out.contains("OK"), "MIGRATE {key}: {out}");
    }
    for port in [&target_port, &owner_port] {
        let out = cli(port.parse().unwrap(), &["CLUSTER", "SETSLOT", &slot, "NODE", &target.id]);
        assert!(out.contains("OK"), "{out}");
    }
    let resync = next_event(&mut events, is_touched).await;
    assert_eq!(resync, FeedEvent::Resync(Resync::Vehicles(vec![vehicle.clone()])));
    eventually(DEADLINE, "the subscription on the slot's new master", || async {
        (subscribers(target.port, &vehicle) == 1).then_some(())
    })
    .await;
    write(&store, &vehicle).await;
    assert!(matches!(next_event(&mut events, |_| false).await, FeedEvent::Touched(_)));
    drop(feed);
}
