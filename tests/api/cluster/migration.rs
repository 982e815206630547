//! A slot migration under load (`redis-cli --cluster reshard`, moving the
//! slots of the vehicles being written): no request fails except with a 503
//! that the writer retried, and no reading is lost or counted twice.

use std::collections::BTreeSet;
use std::time::Duration;

use super::load::Load;
use super::{signal, spawn_on};
use crate::common::RedisCluster;

/// Slots moved: the source master's lowest ones, where the vehicles are.
const MOVED: u16 = 100;

/// CRC16 (XMODEM) of `key`'s hash tag, mod 16384: Redis Cluster's slot.
fn slot(key: &str) -> u16 {
    let tag = match key.find('{').and_then(|open| Some((open, key[open + 1..].find('}')?))) {
        Some((open, len)) if len > 0 => &key[open + 1..open + 1 + len],
        _ => key,
    };
    let mut crc: u16 = 0;
    for byte in tag.bytes() {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
        }
    }
    crc % 16384
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_migration_under_load_loses_and_double_counts_nothing() {
    let cluster = RedisCluster::start();
    let source = cluster.master_of_slot(0);
    let target = cluster.topology().into_iter().find(|n| n.master && n.id != source.id).unwrap();
    let first = source.slots.iter().map(|(a, _)| *a).min().unwrap();
    // Vehicles whose slots are among the ones that move.
    let cars: Vec<String> = (0..100_000)
        .map(|i| format!("mig-{i}"))
        .filter(|car| (first..first + MOVED).contains(&slot(&format!("tributary:{{{car}}}:meta"))))
        .take(6)
        .collect();
    assert_eq!(cars.len(), 6);
    assert_eq!(
        slot("tributary:{car-0}:meta"),
        crate::common::key_slot(&cluster, "tributary:{car-0}:meta")
    );

    let app = spawn_on(&cluster, |settings| settings.window = 10_000).await;
    let load = Load::start(&app.address, &cars, true);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seed = format!("127.0.0.1:{}", source.port);
    let moved = MOVED.to_string();
    let (from, to) = (source.id.clone(), target.id.clone());
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("redis-cli")
            .args(["--cluster", "reshard", &seed, "--cluster-from", &from])
            .args(["--cluster-to", &to, "--cluster-slots", &moved, "--cluster-yes"])
            .args(["--cluster-pipeline", "5"])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stdout));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let logs = load.stop().await;
    for car in &cars {
        let key = format!("tributary:{{{car}}}:meta");
        assert_eq!(cluster.master_of_slot(slot(&key)).id, target.id, "{car}'s slot moved");
    }

    let mut retried = 0;
    for log in &logs {
        for attempt in &log.attempts {
            assert!(
                attempt.status == 200 || attempt.status == 503,
                "{}: {} answered {}",
                log.vehicle,
                attempt.reading,
                attempt.status
            );
            retried += usize::from(attempt.status == 503);
        }
        let acked: BTreeSet<u32> = log.acknowledged().into_iter().collect();
        // The last reading may have been answered 503 and not retried (the
        // writer stopped): it may or may not be there.
        let last = log.attempts.last().unwrap();
        let window = signal(&app, &log.vehicle, "engine_rpm").await;
        let mut kept: BTreeSet<u32> = window["readings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["value"].as_f64().unwrap() as u32)
            .collect();
        if last.status == 503 {
            kept.remove(&last.reading);
        }
        assert_eq!(kept, acked, "{}: kept and acknowledged", log.vehicle);
        let count = window["count"].as_u64().unwrap() as usize;
        let extra = usize::from(last.status == 503);
        assert!(
            count == acked.len() || count == acked.len() + extra,
            "{}: counted {count}, acknowledged {}",
            log.vehicle,
            acked.len()
        );
    }
    let total: usize = logs.iter().map(|l| l.acknowledged().len()).sum();
    println!(
        "slot migration of {MOVED} slots: {total} readings acknowledged, {retried} 503s retried"
    );
    app.stop().await;
}
