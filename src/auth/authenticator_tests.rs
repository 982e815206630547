//! Tests of the [`Authenticator`]: the cache and key rotation, on real files.

use std::path::Path;
use std::time::{Duration, Instant};

use secrecy::SecretString;

use super::super::identity::{Identity, Scopes, Vehicles};
use super::super::testkeys::{TestKey, device_claims};
use super::*;

fn write(path: &Path, content: &str) {
    // Write beside and rename, as an editor or `kubectl` would: the reader sees
    // the old or the new file, never half of one.
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, content).unwrap();
    std::fs::rename(&temporary, path).unwrap();
}

fn authenticator(key_file: &Path) -> Authenticator {
    Authenticator::new(AuthenticatorConfig {
        key_file: Some(key_file.to_owned()),
        leeway: Duration::from_secs(30),
        ..AuthenticatorConfig::default()
    })
    .unwrap()
}

#[test]
fn a_cached_token_is_verified_once_and_yields_the_same_identity() {
    let dir = tempfile::tempdir().unwrap();
    let key = TestKey::ed25519("k1");
    let file = dir.path().join("keys.json");
    write(&file, &TestKey::jwks(&[&key]));
    let auth = authenticator(&file);
    let token = key.sign(&device_claims("car-1", "record"));

    let first = auth.verify(&token).unwrap();
    for _ in 0..1_000 {
        assert_eq!(first, auth.verify(&token).unwrap());
    }
    assert_eq!(auth.signature_checks(), 1);
    // A clone shares the cache.
    assert_eq!(first, auth.clone().verify(&token).unwrap());
    assert_eq!(auth.signature_checks(), 1);
}

#[test]
fn failures_are_not_cached() {
    let dir = tempfile::tempdir().unwrap();
    let key = TestKey::ed25519("k1");
    let file = dir.path().join("keys.json");
    write(&file, &TestKey::jwks(&[&key]));
    let auth = authenticator(&file);
    let forged = TestKey::ed25519("k1").sign(&device_claims("car-1", "record"));
    for _ in 0..3 {
        assert_eq!(auth.verify(&forged).unwrap_err(), AuthError::BadSignature);
    }
    assert_eq!(auth.signature_checks(), 3);
}

#[test]
fn rotation_drops_removed_keys_and_the_cache_and_accepts_added_keys() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (TestKey::ed25519("old"), TestKey::es256("new"));
    let file = dir.path().join("keys.json");
    write(&file, &TestKey::jwks(&[&old]));
    let auth = authenticator(&file);
    let (old_token, new_token) =
        (old.sign(&device_claims("car-1", "record")), new.sign(&device_claims("car-2", "read")));
    assert!(auth.verify(&old_token).is_ok());
    assert_eq!(auth.verify(&new_token).unwrap_err().reason(), "unknown_key");
    assert_eq!(auth.reload_keys().unwrap(), Reload::Unchanged);

    // Both keys: the old token is verified again (the cache was dropped).
    write(&file, &TestKey::jwks(&[&old, &new]));
    assert_eq!(auth.reload_keys().unwrap(), Reload::Replaced { keys: 2, skipped: vec![] });
    let checks = auth.signature_checks();
    assert!(auth.verify(&old_token).is_ok() && auth.verify(&new_token).is_ok());
    assert_eq!(auth.signature_checks(), checks + 2);

    // The old key removed: its token, cached a moment ago, fails at once.
    write(&file, &TestKey::jwks(&[&new]));
    assert!(matches!(auth.reload_keys().unwrap(), Reload::Replaced { keys: 1, .. }));
    assert_eq!(auth.verify(&old_token).unwrap_err().reason(), "unknown_key");
    assert!(auth.verify(&new_token).is_ok());
}

#[cfg(unix)]
#[test]
fn a_secret_mount_that_swaps_a_symlink_is_followed() {
    // Kubernetes' layout: keys.json -> ..data/keys.json, ..data -> ..v1, and an
    // update makes ..v2 and renames a new ..data link over the old one.
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (TestKey::ed25519("a"), TestKey::ed25519("b"));
    for (version, key) in [("..v1", &a), ("..v2", &b)] {
        std::fs::create_dir(dir.path().join(version)).unwrap();
        std::fs::write(dir.path().join(version).join("keys.json"), TestKey::jwks(&[key])).unwrap();
    }
    symlink("..v1", dir.path().join("..data")).unwrap();
    symlink("..data/keys.json", dir.path().join("keys.json")).unwrap();
    let auth = authenticator(&dir.path().join("keys.json"));
    let token_a = a.sign(&device_claims("car-1", "read"));
    assert!(auth.verify(&token_a).is_ok());

    symlink("..v2", dir.path().join("..data_tmp")).unwrap();
    std::fs::rename(dir.path().join("..data_tmp"), dir.path().join("..data")).unwrap();
    assert!(matches!(auth.reload_keys().unwrap(), Reload::Replaced { keys: 1, .. }));
    assert!(auth.verify(&token_a).is_err());
    assert!(auth.verify(&b.sign(&device_claims("car-1", "read"))).is_ok());
}

#[test]
fn a_broken_or_missing_file_keeps_the_old_keys_and_is_reported_once() {
    let dir = tempfile::tempdir().unwrap();
    let key = TestKey::ed25519("k1");
    let file = dir.path().join("keys.json");
    write(&file, &TestKey::jwks(&[&key]));
    let auth = authenticator(&file);
    let token = key.sign(&device_claims("car-1", "record"));

    write(&file, "{\"keys\": [");
    let error = auth.reload_keys().unwrap_err().to_string();
    assert!(error.contains("keys.json") && error.contains("not a valid JWKS"), "{error}");
    assert_eq!(auth.reload_keys().unwrap(), Reload::Unchanged);
    assert!(auth.verify(&token).is_ok());

    std::fs::remove_file(&file).unwrap();
    assert!(matches!(auth.reload_keys(), Err(KeyFileError::Unreadable { .. })));
    assert!(auth.verify(&token).is_ok());

    write(&file, &TestKey::jwks(&[&key]));
    assert!(matches!(auth.reload_keys().unwrap(), Reload::Replaced { keys: 1, .. }));
    // SIGHUP re-installs even an unchanged file.
    assert!(matches!(auth.force_reload_keys().unwrap(), Reload::Replaced { keys: 1, .. }));
}

#[test]
fn a_secret_alone_verifies_hs256_and_has_nothing_to_reload() {
    let secret = "a shared secret of at least 32 bytes!";
    let auth = Authenticator::new(AuthenticatorConfig {
        secret: Some(SecretString::from(secret)),
        ..AuthenticatorConfig::default()
    })
    .unwrap();
    let token = super::super::testkeys::hs256_token(
        &serde_json::json!({"alg": "HS256"}),
        &device_claims("car-1", "record"),
        secret.as_bytes(),
    );
    assert!(auth.verify(&token).is_ok());
    assert_eq!(auth.reload_keys().unwrap(), Reload::NoKeyFile);
    assert!(!format!("{auth:?}").contains(secret));
    assert!(matches!(
        Authenticator::new(AuthenticatorConfig::default()),
        Err(AuthenticatorError::NoKeys)
    ));
}

#[test]
fn cache_lifetimes_follow_exp_and_never_overflow() {
    let at = |exp| Identity::new(Scopes::NONE, Vehicles::ALL, Some(exp));
    assert_eq!(remaining(&at(0), 30), Duration::ZERO);
    assert_eq!(remaining(&at(u64::MAX), 30), MAX_CACHE_LIFETIME);
    let soon = remaining(&at(super::super::testkeys::now() + 100), 30);
    assert!(soon > Duration::from_secs(120) && soon <= Duration::from_secs(130), "{soon:?}");
}

#[tokio::test]
async fn the_reloader_follows_the_file_without_a_signal_and_stops_on_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (TestKey::ed25519("old"), TestKey::ed25519("new"));
    let file = dir.path().join("keys.json");
    write(&file, &TestKey::jwks(&[&old]));
    let auth = authenticator(&file);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = auth.spawn_reloader(async move {
        let _ = stopped.await;
    });
    let new_token = new.sign(&device_claims("car-1", "record"));
    write(&file, &TestKey::jwks(&[&new]));

    let deadline = Instant::now() + Duration::from_secs(10);
    while auth.verify(&new_token).is_err() {
        assert!(Instant::now() < deadline, "the new key was not picked up");
        tokio::time::sleep(POLL_INTERVAL / 5).await;
    }
    assert!(auth.verify(&old.sign(&device_claims("car-1", "record"))).is_err());
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), task).await.unwrap().unwrap();
}

/// Not a test of speed (those live in benchmarks): prints what a cached and an
/// uncached verification cost, for a look by hand with
/// `cargo test --release --lib auth::authenticator -- --ignored --nocapture`.
#[test]
#[ignore]
fn print_the_cost_of_a_cached_verification() {
    let dir = tempfile::tempdir().unwrap();
    let key = TestKey::ed25519("k1");
    let file = dir.path().join("keys.json");
    write(&file, &TestKey::jwks(&[&key]));
    let auth = authenticator(&file);
    let tokens: Vec<String> =
        (0..2_000).map(|i| key.sign(&device_claims(&format!("car-{i}"), "record"))).collect();
    let started = Instant::now();
    for token in &tokens {
        auth.verify(token).unwrap();
    }
    let uncached = started.elapsed() / tokens.len() as u32;
    let started = Instant::now();
    for _ in 0..50 {
        for token in &tokens {
            auth.verify(token).unwrap();
        }
    }
    let cached = started.elapsed() / (50 * tokens.len() as u32);
    println!("uncached verify: {uncached:?}, cached verify: {cached:?}");
}
