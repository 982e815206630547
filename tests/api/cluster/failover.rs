//! A master SIGKILLed while writers run: fast 503s while its slots have no
//! master, writes again without restarting the service once its replica is
//! promoted, and, with `TRIBUTARY_REDIS_MIN_REPLICAS_ACK=1`, not one
//! acknowledged reading lost. With 0, the readings lost are printed (an
//! honest figure for the docs, not an assertion).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::load::Load;
use super::{meta_key, signal, spawn_on, vehicles};
use crate::common::{FAST_503, RedisCluster};

/// The bound on recovery, from the SIGKILL to writes acknowledged again on
/// the killed master's slots: the cluster's failure detection (the node
/// timeout, 1 s, and the failure reports), the replica's election, the
/// client's slot refresh; with replica acknowledgements, also the old master
/// restarted and resynchronised as the new master's replica.
const RECOVERY_BOUND: Duration = Duration::from_secs(20);

struct Outcome {
    /// From the SIGKILL to the cluster naming a new master.
    promoted: Duration,
    recovery: Duration,
    acknowledged: usize,
    lost: usize,
    unavailable: usize,
}

async fn kill_a_master_under_load(min_acks: u32) -> Outcome {
    let mut cluster = RedisCluster::start();
    let app = spawn_on(&cluster, |settings| {
        settings.window = 10_000;
        settings.redis_min_replicas_ack = min_acks;
    })
    .await;
    let cars = vehicles(9);
    let load = Load::start(&app.address, &cars, false);
    tokio::time::sleep(Duration::from_secs(1)).await;

    let victim = cluster.master_of(&meta_key(&cars[0]));
    let hit: BTreeSet<&String> =
        cars.iter().filter(|car| cluster.master_of(&meta_key(car)).port == victim.port).collect();
    cluster.kill(victim.port);
    let killed = Instant::now();
    // The victim's replica promoted (the cluster says so), then every slot served.
    let slot = victim.slots[0].0;
    tokio::task::block_in_place(|| {
        while cluster.topology().iter().any(|n| n.port == victim.port && !n.failed) {
            assert!(killed.elapsed() < RECOVERY_BOUND, "the victim was never flagged failed");
            std::thread::sleep(Duration::from_millis(50));
        }
        cluster.wait_serving(RECOVERY_BOUND);
        assert_ne!(cluster.master_of_slot(slot).port, victim.port);
    });
    let promoted = killed.elapsed();
    if min_acks > 0 {
        // The promoted replica has no replica of its own: the old master,
        // started again, rejoins as one (what an operator or orchestrator does).
        tokio::task::block_in_place(|| {
            cluster.restart(victim.port);
            cluster.wait_ok(Duration::from_secs(30));
        });
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let logs = load.stop().await;

    let mut recovery = Duration::ZERO;
    let mut unavailable = 0;
    for log in &logs {
        for attempt in &log.attempts {
            assert!(
                attempt.status == 200 || attempt.status == 503,
                "{}: reading {} answered {}",
                log.vehicle,
                attempt.reading,
                attempt.status
            );
            if attempt.status == 503 {
                unavailable += 1;
                assert!(attempt.took <= FAST_503, "a 503 took {:?}", attempt.took);
            }
        }
        if hit.contains(&log.vehicle) {
            let last_failure = log.attempts.iter().rposition(|a| a.status != 200);
            let recovered = match last_failure {
                Some(at) => log.attempts.get(at + 1).unwrap_or_else(|| {
                    let tail: Vec<(u16, Duration)> = log.attempts
                        [log.attempts.len().saturating_sub(5)..]
                        .iter()
                        .map(|a| (a.status, a.sent.saturating_duration_since(killed)))
                        .collect();
                    panic!("{} not acknowledged again after the outage: {tail:?}", log.vehicle)
                }),
                None => continue,
            };
            recovery = recovery.max(recovered.sent.saturating_duration_since(killed));
        }
    }
    assert!(recovery < RECOVERY_BOUND, "writes recovered after {recovery:?}");

    let mut acknowledged = 0;
    let mut lost = 0;
    for log in &logs {
        let window = signal(&app, &log.vehicle, "engine_rpm").await;
        let kept: BTreeSet<u32> = window["readings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["value"].as_f64().unwrap() as u32)
            .collect();
        let acked = log.acknowledged();
        acknowledged += acked.len();
        lost += acked.iter().filter(|reading| !kept.contains(reading)).count();
    }
    app.stop().await;
    Outcome { promoted, recovery, acknowledged, lost, unavailable }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_master_loses_no_acknowledged_reading_with_one_replica_ack() {
    let outcome = kill_a_master_under_load(1).await;
    println!(
        "failover, MIN_REPLICAS_ACK=1: replica promoted {:?} and writes recovered {:?} after the \
         SIGKILL (old master restarted as replica); {} readings acknowledged, {} lost, {} answered 503",
        outcome.promoted, outcome.recovery, outcome.acknowledged, outcome.lost, outcome.unavailable
    );
    assert_eq!(outcome.lost, 0, "acknowledged readings lost");
    assert!(outcome.acknowledged > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_master_fails_over_without_restarting_the_service() {
    let outcome = kill_a_master_under_load(0).await;
    // Not asserted: asynchronous replication may lose the newest writes.
    println!(
        "failover, MIN_REPLICAS_ACK=0: replica promoted {:?} and writes recovered {:?} after the \
         SIGKILL; {} readings acknowledged, {} lost, {} answered 503",
        outcome.promoted, outcome.recovery, outcome.acknowledged, outcome.lost, outcome.unavailable
    );
    assert!(outcome.acknowledged > 0);
}
