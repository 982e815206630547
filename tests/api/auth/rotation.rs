//! Key rotation on the real binary: the key file is followed as it changes,
//! and re-read on SIGHUP, without a restart.

use std::process::Stdio;
use std::time::{Duration, Instant};

use super::{AUDIENCE, ISSUER, Issuer, SigningKey, write_jwks};
use crate::common::{Process, eventually, start_binary};

/// How soon a change to the key file must take effect (the issue's bound; the
/// file is polled four times a second).
const ROTATION_BOUND: Duration = Duration::from_secs(1);

/// The status of `GET /v1/signals` on `port` with `token`.
async fn status(port: u16, token: &str) -> u16 {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = format!("http://127.0.0.1:{port}/v1/signals");
    client.get(url).bearer_auth(token).send().await.unwrap().status().as_u16()
}

/// The binary with `issuer`'s key file, logging to `log`.
fn start(issuer: &Issuer, log: &tempfile::NamedTempFile) -> (Process, u16) {
    start_binary(
        &[
            ("TRIBUTARY_AUTH_KEYS", issuer.key_file.to_str().unwrap()),
            ("TRIBUTARY_AUTH_ISSUER", ISSUER),
            ("TRIBUTARY_AUTH_AUDIENCE", AUDIENCE),
            ("TRIBUTARY_LOG", "info"),
        ],
        Stdio::from(log.reopen().unwrap()),
    )
}

#[tokio::test]
async fn a_removed_key_stops_working_and_a_new_one_starts_within_a_second_without_a_restart() {
    let issuer = Issuer::new();
    let log = tempfile::NamedTempFile::new().unwrap();
    let (mut server, port) = start(&issuer, &log);
    let old = issuer.token("read", &["car-1"]);
    assert_eq!(status(port, &old).await, 200, "the first key works");
    let new_key = SigningKey::ed25519("ed-2");
    let new = new_key.sign(&Issuer::claims("read", &["car-1"]));
    assert_eq!(status(port, &new).await, 401, "a key not in the file does not");

    write_jwks(&issuer.key_file, &[&new_key]);
    let changed = Instant::now();
    eventually(ROTATION_BOUND, "the removed key's token to be refused", || async {
        (status(port, &old).await == 401).then_some(())
    })
    .await;
    let left = ROTATION_BOUND.saturating_sub(changed.elapsed());
    eventually(left, "the new key's token to be accepted", || async {
        (status(port, &new).await == 200).then_some(())
    })
    .await;
    assert!(server.exited().is_none(), "the same process throughout");
}

#[tokio::test]
async fn sighup_reloads_the_key_file_at_once() {
    let issuer = Issuer::new();
    let log = tempfile::NamedTempFile::new().unwrap();
    let (server, port) = start(&issuer, &log);
    let token = issuer.token("read", &[]);
    assert_eq!(status(port, &token).await, 200);
    server.signal("HUP");
    eventually(Duration::from_secs(5), "a reload logged after SIGHUP", || async {
        let logs = std::fs::read_to_string(log.path()).unwrap();
        logs.lines()
            .any(|line| line.contains("auth keys reloaded") && line.contains("signal=true"))
            .then_some(())
    })
    .await;
    assert_eq!(status(port, &token).await, 200, "still serving, with the same keys");
}
