//! Following the key file: the task that re-reads it every [`POLL_INTERVAL`]
//! and on SIGHUP, and installs its keys when they change (see the parent
//! module's header for why polling).

use std::future::Future;
use std::path::PathBuf;

use super::{Authenticator, KeyFileError, POLL_INTERVAL, Reload};

impl Authenticator {
    /// Follows the key file until `shutdown` completes: re-reads it every
    /// [`POLL_INTERVAL`] and on SIGHUP, logging each change once (info) and each
    /// distinct failure once (error; the old keys stay). Returns at once, with
    /// a finished task, when there is no key file. Call from within a Tokio runtime.
    pub fn spawn_reloader<F>(&self, shutdown: F) -> tokio::task::JoinHandle<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let auth = self.clone();
        tokio::spawn(async move {
            if auth.shared.key_file.is_none() {
                return;
            }
            let mut hangup = hangup_signal();
            let mut tick = tokio::time::interval(POLL_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tokio::pin!(shutdown);
            let mut last_error: Option<String> = None;
            loop {
                let force = tokio::select! {
                    () = &mut shutdown => return,
                    () = next_hangup(&mut hangup) => true,
                    _ = tick.tick() => false,
                };
                let worker = auth.clone();
                let outcome = tokio::task::spawn_blocking(move || worker.reload(force))
                    .await
                    .unwrap_or_else(|e| {
                        Err(KeyFileError::Unreadable {
                            path: PathBuf::new(),
                            source: std::io::Error::other(e.to_string()),
                        })
                    });
                match outcome {
                    Ok(Reload::Replaced { keys, skipped }) => {
                        last_error = None;
                        tracing::info!(
                            keys,
                            signal = force,
                            "auth keys reloaded; cached tokens dropped"
                        );
                        for note in skipped {
                            tracing::warn!(key = %note, "auth key skipped");
                        }
                    }
                    Ok(_) => {}
                    Err(error) => {
                        let message = error.to_string();
                        if last_error.as_deref() != Some(message.as_str()) {
                            tracing::error!(error = %message, "auth keys not reloaded; the previous keys stay in use");
                            last_error = Some(message);
                        }
                    }
                }
            }
        })
    }
}

#[cfg(unix)]
type Hangup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangup = Option<()>;

#[cfg(unix)]
fn hangup_signal() -> Hangup {
    use tokio::signal::unix::{SignalKind, signal};
    signal(SignalKind::hangup())
        .inspect_err(
            |e| tracing::warn!(error = %e, "no SIGHUP handler; the key file is still polled"),
        )
        .ok()
}

#[cfg(not(unix))]
fn hangup_signal() -> Hangup {
    None
}

/// The next SIGHUP; never, without a handler.
async fn next_hangup(hangup: &mut Hangup) {
    #[cfg(unix)]
    if let Some(signal) = hangup
        && signal.recv().await.is_some()
    {
        return;
    }
    let _ = hangup;
    std::future::pending::<()>().await;
}
