//! `serve`, and the two commands that talk to a running proxy: `wait` and `status`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{Signal, SignalKind, signal};

use super::RunError;
use crate::app::reload::{self, Cause, Reloader};
use crate::app::{self, open_store, token_manager};
use crate::config::{Config, ConfigError};
use crate::telemetry::Logging;
use crate::token::TokenManager;

/// Runs the proxy until SIGTERM or SIGINT, then drains. SIGHUP (and a change to a `*_file`
/// secret) reloads the configuration from `path` and the environment: see
/// [`reload`](crate::app::reload).
pub(super) async fn run(
    config: &Config,
    path: Option<PathBuf>,
    logging: Option<&Logging>,
) -> Result<(), RunError> {
    // Before anything says it listens: a SIGTERM sent as soon as the log line appears is
    // then a clean shutdown, not the default action (death).
    let signals = Signals::install()?;
    let store = open_store(config)?;
    let manager = token_manager(config, store).await?;
    let running = app::start(config, manager.clone()).await?;
    let mut reloader = Reloader::new(
        config,
        path,
        running.proxy().clone(),
        manager.clone(),
        logging,
    );
    until_signal(signals, Some(&manager), Some(&mut reloader)).await?;
    running.begin_shutdown();
    let grace = config.server.shutdown_grace;
    if running.finish().await {
        tracing::info!("shutdown complete");
    } else {
        tracing::warn!(
            grace_s = grace.as_secs(),
            "shutdown grace elapsed with requests still in flight"
        );
    }
    Ok(())
}

/// SIGTERM, SIGINT and SIGHUP, handled from the moment they are installed (until then a
/// SIGTERM or SIGINT ends the process at once): install them before saying "listening".
pub(super) struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
}

impl Signals {
    /// Installs the handlers.
    pub(super) fn install() -> Result<Self, RunError> {
        let signal_error = |source| RunError::Io {
            what: "cannot install signal handlers".into(),
            source,
        };
        Ok(Self {
            term: signal(SignalKind::terminate()).map_err(signal_error)?,
            int: signal(SignalKind::interrupt()).map_err(signal_error)?,
            hup: signal(SignalKind::hangup()).map_err(signal_error)?,
        })
    }
}

/// Waits for SIGTERM or SIGINT. Meanwhile SIGHUP reloads the configuration through
/// `reloader` (which also retries a failed token refresh at once), or, without one, makes
/// `manager` retry a failed token refresh at once; and the `*_file` secrets are watched for
/// changes, which reload as SIGHUP does.
pub(super) async fn until_signal(
    signals: Signals,
    manager: Option<&Arc<TokenManager>>,
    mut reloader: Option<&mut Reloader<'_>>,
) -> Result<(), RunError> {
    let Signals {
        mut term,
        mut int,
        mut hup,
    } = signals;
    let mut watch = tokio::time::interval(reload::WATCH_INTERVAL);
    watch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!(signal = "SIGTERM", "shutting down"); return Ok(()); }
            _ = int.recv() => { tracing::info!(signal = "SIGINT", "shutting down"); return Ok(()); }
            _ = hup.recv() => {
                if let Some(reloader) = reloader.as_deref_mut() {
                    tracing::info!(signal = "SIGHUP", "reloading the configuration");
                    reloader.reload(Cause::Signal).await;
                } else if let Some(manager) = manager {
                    tracing::info!(signal = "SIGHUP", "retrying the token refresh now");
                    manager.retry_now();
                }
            }
            _ = watch.tick(), if reloader.is_some() => {
                if let Some(reloader) = reloader.as_deref_mut()
                    && reloader.secret_files_changed()
                {
                    reloader.reload(Cause::SecretFile).await;
                }
            }
        }
    }
}

/// `wait`: polls `/readyz` until 200 or the timeout.
pub(super) async fn wait(config: &Config, timeout: Duration) -> Result<(), RunError> {
    let url = admin_url(config, "/readyz")?;
    let client = local_client()?;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let answer = client.get(&url).send().await;
        if let Ok(response) = &answer
            && response.status().is_success()
        {
            eprintln!("ready");
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            let why = match &answer {
                Err(error) if is_refused(error) => format!(
                    "nothing is listening on {} (is the proxy running, with this configuration's server.admin_listen?)",
                    admin_addr(&url)
                ),
                Err(error) => format!("{url}: {}", crate::telemetry::chain(error)),
                Ok(response) => format!("{url} answers {}", response.status()),
            };
            return Err(RunError::Failed(format!(
                "not ready after {}: {why}",
                humantime::format_duration(timeout)
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `status`: prints the running proxy's `/status` for a person.
pub(super) async fn status(config: &Config) -> Result<(), RunError> {
    let url = admin_url(config, "/status")?;
    let response = local_client()?.get(&url).send().await.map_err(|e| {
        RunError::Failed(if is_refused(&e) {
            format!(
                "nothing is listening on {} (is the proxy running, with this configuration's server.admin_listen?)",
                admin_addr(&url)
            )
        } else {
            format!("no proxy answers at {url}: {}", crate::telemetry::chain(&e))
        })
    })?;
    let json: serde_json::Value = response
        .json()
        .await
        .map_err(|_| RunError::Failed(format!("{url} did not answer JSON")))?;
    let field = |name: &str| match &json[name] {
        serde_json::Value::Null => "-".to_owned(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    println!("ready:              {}", field("ready"));
    if !json["reason"].is_null() {
        println!("reason:             {}", field("reason"));
    }
    if !json["blocked_by"].is_null() {
        println!("blocked by:         {}", field("blocked_by"));
    }
    if json["upstream_rejects_fresh_tokens"] == true {
        println!("upstream rejects freshly minted tokens: true");
    }
    if !json["hint"].is_null() {
        println!("hint:               {}", field("hint"));
    }
    let seconds = |name: &str| match json[name].as_u64() {
        Some(s) => format!("{s} s"),
        None => "-".to_owned(),
    };
    println!("token expires in:   {}", seconds("token_expires_in_s"));
    println!("token fingerprint:  {}", field("token_fingerprint"));
    println!("last refresh:       {}", field("last_refresh"));
    println!("last error:         {}", field("last_error"));
    println!(
        "mints in window:    {} ({} left)",
        field("mints_in_window"),
        field("mints_left")
    );
    println!("refresh stopped:    {}", field("refresh_stopped"));
    println!("next attempt in:    {}", seconds("next_attempt_in_s"));
    println!("accounts server:    {}", field("accounts_server"));
    Ok(())
}

fn admin_url(config: &Config, path: &str) -> Result<String, RunError> {
    match config.server.admin_listen {
        Some(mut addr) => {
            // Listening on every address (a container's `0.0.0.0:9090`): ask over loopback.
            if addr.ip().is_unspecified() {
                addr.set_ip(match addr {
                    std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                    std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                });
            }
            Ok(format!("http://{addr}{path}"))
        }
        None => Err(ConfigError::Invalid {
            key: "server.admin_listen".into(),
            origin: "the configuration".into(),
            message: "the admin listener is disabled; this command needs it".into(),
        }
        .into()),
    }
}

/// Whether nothing listens where `error` tried to connect.
fn is_refused(error: &reqwest::Error) -> bool {
    error.is_connect()
        && crate::upstream::error_chain(error).any(|e| {
            e.downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused)
        })
}

/// `host:port` of an admin URL.
fn admin_addr(url: &str) -> &str {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    rest.split('/').next().unwrap_or(rest)
}

fn local_client() -> Result<reqwest::Client, RunError> {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        .map_err(|e| RunError::Failed(format!("cannot build an HTTP client: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_reach_an_admin_listener_on_every_address_over_loopback() {
        let mut config = Config::from_figment(&figment::Figment::new(), None).unwrap();
        config.server.admin_listen = Some("0.0.0.0:9090".parse().unwrap());
        assert_eq!(
            admin_url(&config, "/readyz").unwrap(),
            "http://127.0.0.1:9090/readyz"
        );
        config.server.admin_listen = Some("[::]:9090".parse().unwrap());
        assert_eq!(admin_url(&config, "/x").unwrap(), "http://[::1]:9090/x");
        config.server.admin_listen = Some("10.1.2.3:9090".parse().unwrap());
        assert_eq!(admin_url(&config, "/x").unwrap(), "http://10.1.2.3:9090/x");
    }
}
