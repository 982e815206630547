//! The [`Authenticator`]: verifies tokens once and remembers the result, and
//! follows the key file as it rotates.
//!
//! Shape: a cheap cloneable handle around `Arc<Shared>` (as mini-redis's
//! `Db`). The current keys and the cache of tokens they verified live together
//! in one immutable [`Generation`]; a key change builds a new generation with an
//! empty cache and swaps it in. So "dropped when its key is rotated out" holds
//! by construction, even for a verification that was in flight during the swap
//! (it fills the old generation's cache, which nobody reads any more). The swap
//! is an `ArcSwap`: every request reads the generation, and a lock or an `Arc`
//! clone there is a shared counter that both cores write on every request.
//!
//! The cache is a bounded `quick_cache` cache keyed by the SHA-256 digest of
//! the token (collision-resistant, so one token can never be taken for another;
//! a fast non-cryptographic hash could be made to collide). Each entry holds
//! the instant its token stops verifying (`exp` plus the leeway, at most a day
//! ahead), checked on every hit: an expired entry is never used, and is
//! replaced by the next verification or evicted as the cache fills. quick_cache
//! rather than moka: a moka hit records the read in a shared buffer that both
//! cores write, and replays it under a lock, on the request's thread; with a
//! token per vehicle of a 100,000-vehicle fleet that cost auth-on `/record` a
//! tenth of its throughput. Its shards are guarded by crossbeam's sharded lock
//! (the crate's `sharded-lock` feature), not parking_lot's: a read then locks
//! a lock of the reading thread's own, where parking_lot's read lock is one
//! word that every read writes. Two threads verifying one cached token took
//! 340-360 ns a call with parking_lot against 250-270 ns alone, and 240-270 ns
//! with the sharded lock (a loop of 2,000,000 calls per thread, HS256 tokens of
//! 160 bytes, on this 2-vCPU VM). Failures are never cached.
//!
//! Rotation is by polling, every [`POLL_INTERVAL`], the file's *content*
//! (through its path, following symlinks), plus SIGHUP. Kubernetes and Docker
//! update a secret mount by swapping a `..data` symlink, which an inotify watch
//! on the file (the `notify` crate) does not see without watching the directory
//! and re-resolving links; reading a file of a few KiB four times a second
//! costs nothing and sees every kind of update: in-place writes, renames,
//! symlink swaps, network filesystems. A file that cannot be read or parsed
//! keeps the old keys.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use quick_cache::sync::{Cache, DefaultLifecycle};
use quick_cache::{DefaultHashBuilder, OptionsBuilder, UnitWeighter};
use secrecy::{ExposeSecret, SecretString};

use super::error::{AuthError, MAX_TOKEN_BYTES};
use super::identity::Identity;
use super::keys::{Key, KeyFileError, KeySet};
use super::verify::{Policy, secret_key, verify_token};

/// How often the key file is re-read for changes.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// How many verified tokens are remembered: one per vehicle for a fleet of
/// 100,000 and room to spare. An entry is about a hundred bytes (the digest,
/// the identity, the deadline): with 100,000 tokens cached the server's
/// resident memory was about 20 MB over auth off's.
pub const CACHE_CAPACITY: usize = 200_000;

/// How many independently locked parts the cache has. quick_cache's default
/// is four per core (eight here), and every hit takes its part's read lock, a
/// write to that lock's cache line: with a token per vehicle both cores kept
/// taking those few lines from each other. With 128 parts (each still over
/// 1,500 tokens) two hits rarely meet; auth-on `/record` over 100,000
/// vehicles, alternating with the default in 8 rounds: 1.00–1.15 of it,
/// median 1.04, where the same build against itself gave 0.93–1.08.
const CACHE_SHARDS: usize = 128;

/// The longest a verified token is remembered, whatever its `exp`.
const MAX_CACHE_LIFETIME: Duration = Duration::from_secs(24 * 3600);

type Digest = [u8; 32];

/// What an [`Authenticator`] verifies with and against.
#[derive(Debug, Clone, Default)]
pub struct AuthenticatorConfig {
    /// The key file (JWKS or PEM), re-read when it changes.
    pub key_file: Option<PathBuf>,
    /// The HS256 shared secret.
    pub secret: Option<SecretString>,
    /// Allowed clock skew for `exp`, `nbf` and `iat`.
    pub leeway: Duration,
    /// The required `iss`, if any.
    pub issuer: Option<String>,
    /// The required `aud`, if any.
    pub audience: Option<String>,
}

/// Why an [`Authenticator`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum AuthenticatorError {
    /// Neither a key file nor a secret.
    #[error("no key file and no secret to verify tokens with")]
    NoKeys,
    /// The key file is unusable.
    #[error(transparent)]
    KeyFile(#[from] KeyFileError),
    /// The secret is unusable.
    #[error("the shared secret (TRIBUTARY_AUTH_SECRET) cannot be used: it is empty")]
    EmptySecret,
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reload {
    /// The file is as it was; nothing changed.
    Unchanged,
    /// New keys are in use (and the cache is empty).
    Replaced {
        /// How many keys the new file holds.
        keys: usize,
        /// Keys of the file that were skipped, one note each.
        skipped: Vec<String>,
    },
    /// There is no key file to reload (secret only).
    NoKeyFile,
}

/// Verifies bearer tokens; cheap to clone, shared by every request.
#[derive(Clone)]
pub struct Authenticator {
    shared: Arc<Shared>,
}

struct Shared {
    policy: Policy,
    key_file: Option<PathBuf>,
    secret: Option<Key>,
    current: ArcSwap<Generation>,
    /// The digest of the key file content last looked at (installed or refused),
    /// so that an unchanged file is neither re-parsed nor re-reported.
    seen: Mutex<Option<Digest>>,
    signature_checks: AtomicU64,
}

/// One version of the keys and the tokens verified with it.
struct Generation {
    keys: KeySet,
    cache: Cache<Digest, Verified>,
}

/// A verified token's identity, and until when it may be used.
#[derive(Clone)]
struct Verified {
    identity: Identity,
    until: Instant,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("key_file", &self.shared.key_file)
            .field("secret", &self.shared.secret.as_ref().map(|_| "[redacted]"))
            .field("keys", &self.generation().keys)
            .finish()
    }
}

/// How long `identity`'s token still verifies (zero once it does not).
fn remaining(identity: &Identity, leeway: u64) -> Duration {
    let Some(exp) = identity.expires_at() else { return MAX_CACHE_LIFETIME };
    let until = UNIX_EPOCH.checked_add(Duration::from_secs(exp.saturating_add(leeway)));
    until
        .and_then(|until| until.duration_since(SystemTime::now()).ok())
        .unwrap_or(if until.is_none() { MAX_CACHE_LIFETIME } else { Duration::ZERO })
}

impl Authenticator {
    /// Loads the key file and secret of `config`.
    pub fn new(config: AuthenticatorConfig) -> Result<Self, AuthenticatorError> {
        if config.key_file.is_none() && config.secret.is_none() {
            return Err(AuthenticatorError::NoKeys);
        }
        let secret = config
            .secret
            .as_ref()
            .map(|s| {
                secret_key(s.expose_secret().as_bytes())
                    .map_err(|_| AuthenticatorError::EmptySecret)
            })
            .transpose()?;
        let (keys, seen) = match &config.key_file {
            Some(path) => {
                let bytes = KeySet::read(path)?;
                let parsed = KeySet::parse_file(path, &bytes)?;
                for note in &parsed.skipped {
                    tracing::warn!(key = %note, file = %path.display(), "auth key skipped");
                }
                (parsed.keys, Some(digest(&bytes)))
            }
            None => (KeySet::default(), None),
        };
        let policy =
            Policy::new(config.leeway, config.issuer.as_deref(), config.audience.as_deref());
        let generation = Generation::new(keys);
        Ok(Self {
            shared: Arc::new(Shared {
                policy,
                key_file: config.key_file,
                secret,
                current: ArcSwap::from_pointee(generation),
                seen: Mutex::new(seen),
                signature_checks: AtomicU64::new(0),
            }),
        })
    }

    /// The identity `token` proves, from the cache or by verifying it.
    pub fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::TooLarge);
        }
        let key = digest(token.as_bytes());
        let generation = self.shared.current.load();
        let leeway = self.shared.policy.leeway();
        if let Some(verified) = generation.cache.get(&key)
            && Instant::now() < verified.until
        {
            return Ok(verified.identity);
        }
        self.shared.signature_checks.fetch_add(1, Ordering::Relaxed);
        let identity = verify_token(
            token,
            &generation.keys,
            self.shared.secret.as_ref(),
            &self.shared.policy,
        )?;
        let remaining = remaining(&identity, leeway).min(MAX_CACHE_LIFETIME);
        if !remaining.is_zero() {
            let until = Instant::now() + remaining;
            generation.cache.insert(key, Verified { identity: identity.clone(), until });
        }
        Ok(identity)
    }

    /// How many tokens were verified in full (cache misses) since start.
    pub fn signature_checks(&self) -> u64 {
        self.shared.signature_checks.load(Ordering::Relaxed)
    }

    /// The number of keys in use from the key file.
    pub fn key_count(&self) -> usize {
        self.generation().keys.keys().len()
    }

    /// The key file, if there is one.
    pub fn key_file(&self) -> Option<&std::path::Path> {
        self.shared.key_file.as_deref()
    }

    /// Re-reads the key file and, if its content changed, uses its keys from now
    /// on (dropping every cached token). A file that cannot be read or parsed
    /// leaves the current keys in place and returns the error; the same bad
    /// content is reported once, then counts as unchanged.
    pub fn reload_keys(&self) -> Result<Reload, KeyFileError> {
        self.reload(false)
    }

    /// As [`Authenticator::reload_keys`], but installs the file's keys even if
    /// its content looks unchanged (SIGHUP).
    pub fn force_reload_keys(&self) -> Result<Reload, KeyFileError> {
        self.reload(true)
    }

    fn reload(&self, force: bool) -> Result<Reload, KeyFileError> {
        let Some(path) = &self.shared.key_file else { return Ok(Reload::NoKeyFile) };
        // Read without parsing first: the common case is "unchanged".
        let bytes = KeySet::read(path)?;
        let content = digest(&bytes);
        {
            let mut seen = self.shared.seen.lock().unwrap_or_else(PoisonError::into_inner);
            if !force && *seen == Some(content) {
                return Ok(Reload::Unchanged);
            }
            *seen = Some(content);
        }
        let parsed = KeySet::parse_file(path, &bytes)?;
        let count = parsed.keys.keys().len();
        self.install(parsed.keys);
        Ok(Reload::Replaced { keys: count, skipped: parsed.skipped })
    }

    fn install(&self, keys: KeySet) {
        let generation = Arc::new(Generation::new(keys));
        self.shared.current.store(generation);
    }

    fn generation(&self) -> Arc<Generation> {
        self.shared.current.load_full()
    }
}

impl Generation {
    fn new(keys: KeySet) -> Self {
        let options = OptionsBuilder::new()
            .estimated_items_capacity(CACHE_CAPACITY)
            .weight_capacity(CACHE_CAPACITY as u64)
            .shards(CACHE_SHARDS)
            .build()
            .expect("the cache's options are all set and in range");
        let cache = Cache::with_options(
            options,
            UnitWeighter,
            DefaultHashBuilder::default(),
            DefaultLifecycle::default(),
        );
        Self { keys, cache }
    }
}

fn digest(bytes: &[u8]) -> Digest {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    digest.as_ref().try_into().expect("SHA-256 is 32 bytes")
}

/// Following the key file: the reloader task and SIGHUP.
#[path = "authenticator_reloader.rs"]
mod reloader;

#[cfg(test)]
#[path = "authenticator_tests.rs"]
mod tests;
