//! Signals: SIGTERM and SIGINT drain and stop the proxy; SIGHUP reloads the configuration
//! (or, with no configuration to reload, retries a failed token refresh at once); changed
//! `*_file` secrets reload as SIGHUP does.

use tokio::signal::unix::{Signal, SignalKind, signal};

use super::reload::{self, Cause, Reloader};
use super::{Error, Running};

/// SIGTERM, SIGINT and SIGHUP, handled from the moment they are installed (until then a
/// SIGTERM or SIGINT ends the process at once): install them before saying "listening".
pub struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
}

// === impl Signals ===

impl Signals {
    /// Installs the handlers.
    ///
    /// # Errors
    /// [`Error::Io`] when the runtime cannot install them.
    pub fn install() -> Result<Self, Error> {
        let signal_error = |source| Error::Io {
            what: "cannot install signal handlers".into(),
            source,
        };
        Ok(Self {
            term: signal(SignalKind::terminate()).map_err(signal_error)?,
            int: signal(SignalKind::interrupt()).map_err(signal_error)?,
            hup: signal(SignalKind::hangup()).map_err(signal_error)?,
        })
    }

    /// Waits for SIGTERM or SIGINT, ignoring SIGHUP: for a process with no proxy to reload
    /// (`sandbox --emulator-only`).
    pub async fn stopped(mut self) {
        loop {
            tokio::select! {
                _ = self.term.recv() => { tracing::info!(signal = "SIGTERM", "shutting down"); return; }
                _ = self.int.recv() => { tracing::info!(signal = "SIGINT", "shutting down"); return; }
                _ = self.hup.recv() => {}
            }
        }
    }
}

// === impl Running ===

impl Running {
    /// Serves until SIGTERM or SIGINT, then drains (at most `server.shutdown_grace`).
    /// Meanwhile SIGHUP reloads the configuration through `reloader` (which also retries a
    /// failed token refresh at once), or, without one, makes the token manager retry a
    /// failed refresh at once; and the `*_file` secrets are watched for changes, which
    /// reload as SIGHUP does.
    pub async fn serve_until_stopped(self, signals: Signals, mut reloader: Option<Reloader<'_>>) {
        let Signals {
            mut term,
            mut int,
            mut hup,
        } = signals;
        let mut watch = tokio::time::interval(reload::WATCH_INTERVAL);
        watch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = term.recv() => { tracing::info!(signal = "SIGTERM", "shutting down"); break; }
                _ = int.recv() => { tracing::info!(signal = "SIGINT", "shutting down"); break; }
                _ = hup.recv() => {
                    if let Some(reloader) = reloader.as_mut() {
                        tracing::info!(signal = "SIGHUP", "reloading the configuration");
                        reloader.reload(Cause::Signal).await;
                    } else {
                        tracing::info!(signal = "SIGHUP", "retrying the token refresh now");
                        self.manager().retry_now();
                    }
                }
                _ = watch.tick(), if reloader.is_some() => {
                    if let Some(reloader) = reloader.as_mut()
                        && reloader.secret_files_changed()
                    {
                        reloader.reload(Cause::SecretFile).await;
                    }
                }
            }
        }
        self.begin_shutdown();
        let grace = self.config().server.shutdown_grace;
        if self.finish().await {
            tracing::info!("shutdown complete");
        } else {
            tracing::warn!(
                grace_s = grace.as_secs(),
                "shutdown grace elapsed with requests still in flight"
            );
        }
    }
}
