//! The composition root: from a validated [`Config`] to a running, reloadable, draining
//! proxy. `serve`, `sandbox`, the tests and the benches all start a proxy with [`start`].
//!
//! Start-up, in order, for every account (`default`, then each `[[accounts]]` entry, each
//! on its own view of the configuration, [`Config::for_account`]): the account's token
//! store is opened once ([`open_store`]); its configuration is shaped by the login stored
//! there ([`effective_config`]: a data centre recorded by `login` moves the Meeting and
//! accounts hosts); its token manager is built from both, reusing a stored access token
//! ([`tokens`], [`account_tokens`]). Then the listeners are bound (so tests and benches can
//! ask for port 0 and read the addresses back), each account's background refresher is
//! started ([`AccountSet`]), and the proxy server and the admin server are spawned. The
//! result is a [`Running`] proxy.
//!
//! [`serve`] is the whole life of the `serve` command: signal handlers installed before
//! anything says it listens, [`start`], then until SIGTERM or SIGINT, SIGHUP and changed
//! `*_file` secrets reload the configuration ([`reload`]); then the drain. Shutdown is
//! two-step, as a sidecar needs: [`Running::begin_shutdown`] turns `/readyz` to 503 and stops
//! accepting; [`Running::finish`] waits for in-flight requests (at most
//! `server.shutdown_grace`) and stops the rest.
//!
//! Every failure on the way is an [`Error`], whose [`Error::exit_code`] the command line
//! returns: 78 (`EX_CONFIG`) for configuration, 1 for the rest.

mod accounts;
pub mod check;
mod listen;
pub mod reload;
mod revoke;
mod signals;
mod wiring;

pub use self::accounts::{AccountSet, RunningAccount};
pub use self::revoke::{Revoked, revoke};
pub use self::signals::Signals;
pub use self::wiring::{
    apply_stored_login, credentials, describe_accounts, effective_config, oauth_client, open_store,
};

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::admin::{self, Admin};
use crate::config::{Config, ConfigError};
use crate::metrics::Metrics;
use crate::proxy::Proxy;
use crate::proxy::route::RouteError;
use crate::server::{self, ConnSettings};
use crate::telemetry::Logging;
use crate::token::{StoreError, TokenError, TokenManager, TokenStore, Unavailable};

/// `EX_CONFIG` from sysexits.h: the exit code of a configuration error.
pub const EXIT_CONFIG: u8 = 78;

/// Why a proxy could not start, or a command could not do its job.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad or missing configuration (exit 78).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The token store cannot be used.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A token-endpoint failure, or an OAuth client that cannot be set up.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// No access token could be had.
    #[error("no access token: {0}")]
    Unavailable(#[from] Unavailable),
    /// A listener could not be bound.
    #[error("cannot listen on {addr} ({key}{})", bind_hint(key, source))]
    Bind {
        /// The configuration key.
        key: &'static str,
        /// The address.
        addr: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An upstream client could not be built.
    #[error(transparent)]
    Routes(#[from] RouteError),
    /// An I/O failure while doing `what`.
    #[error("{what}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Anything else, said in words.
    #[error("{0}")]
    Failed(String),
}

// === impl Error ===

impl Error {
    /// The process exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Config(_) => EXIT_CONFIG,
            Error::Store(_)
            | Error::Token(_)
            | Error::Unavailable(_)
            | Error::Bind { .. }
            | Error::Routes(_)
            | Error::Io { .. }
            | Error::Failed(_) => 1,
        }
    }
}

/// How to move a listener whose address is taken: the key's environment variable (and
/// `sandbox`'s flag), which a newcomer with another program on 8080 looks for.
fn bind_hint(key: &str, source: &std::io::Error) -> String {
    if source.kind() != std::io::ErrorKind::AddrInUse {
        return String::new();
    }
    let (variable, flag) = match key {
        "server.admin_listen" => ("ZOHO_PROXY_SERVER__ADMIN_LISTEN", "--admin-listen"),
        _ => ("ZOHO_PROXY_SERVER__LISTEN", "--listen"),
    };
    format!(
        "; another program uses it: pick a free address with {variable}=127.0.0.1:PORT, \
         or `sandbox {flag} 127.0.0.1:PORT`"
    )
}

/// The token side of a proxy: the configuration as the stored login shapes it, and the token
/// manager built from it. What [`start`] builds before binding anything, and all that the
/// `token` command needs.
pub struct Tokens {
    /// The effective configuration ([`effective_config`]).
    pub config: Config,
    /// The token manager, holding the stored access token when one is still good.
    pub manager: Arc<TokenManager>,
}

/// Opens the configured token store once and builds the token side from it.
///
/// # Errors
/// As [`open_store`] and [`tokens_with_store`].
pub async fn tokens(config: &Config) -> Result<Tokens, Error> {
    tokens_with_store(config, open_store(config)?).await
}

/// Builds the token side on `store`: [`effective_config`], then the token manager, reusing a
/// stored token.
///
/// A shared (redis) store that cannot be reached does not stop the start: the replica
/// starts without the shared state, as during an outage (see [`TokenManager`]). One that
/// answers with an error (a wrong password, say) does.
///
/// # Errors
/// A store that cannot be read, a missing or foreign refresh token ([`credentials`]), a bad
/// OAuth client ([`oauth_client`]).
pub async fn tokens_with_store(
    config: &Config,
    store: Arc<dyn TokenStore>,
) -> Result<Tokens, Error> {
    let config = effective_config(config, store.as_ref()).await?;
    let manager = wiring::token_manager(&config, store).await?;
    Ok(Tokens { config, manager })
}

/// The token side of every account of `config`, `default` first: each on its own store
/// ([`open_store`]), `default` on `store` when one is given.
///
/// # Errors
/// As [`tokens`], for any account; the message names the account's keys.
pub async fn account_tokens(
    config: &Config,
    store: Option<Arc<dyn TokenStore>>,
) -> Result<Vec<Tokens>, Error> {
    let mut all = Vec::with_capacity(config.accounts.len() + 1);
    all.push(match store {
        Some(store) => tokens_with_store(config, store).await?,
        None => tokens(config).await?,
    });
    for name in config.accounts.iter().map(|a| &a.oauth.account) {
        let view = config.require_account(name)?;
        all.push(tokens(&view).await?);
    }
    Ok(all)
}

/// Starts a proxy: [`account_tokens`], then the listeners and every task.
///
/// # Errors
/// [`Error`]: a configuration, store or OAuth client problem, a listener that cannot be
/// bound, an upstream client that cannot be built.
pub async fn start(config: &Config) -> Result<Running, Error> {
    launch(account_tokens(config, None).await?).await
}

/// [`start`] with `default`'s token store given, not opened from the configuration.
///
/// # Errors
/// As [`start`].
pub async fn start_with_store(
    config: &Config,
    store: Arc<dyn TokenStore>,
) -> Result<Running, Error> {
    launch(account_tokens(config, Some(store)).await?).await
}

/// Runs the `serve` command: installs the signal handlers, [`start`]s, reloads on SIGHUP
/// and on changed `*_file` secrets (re-reading `path` and the environment), and drains on
/// SIGTERM or SIGINT.
///
/// # Errors
/// As [`start`], and signal handlers that cannot be installed.
pub async fn serve(
    config: &Config,
    path: Option<PathBuf>,
    logging: Option<&Logging>,
) -> Result<(), Error> {
    // Before anything says it listens: a SIGTERM sent as soon as the log line appears is
    // then a clean shutdown, not the default action (death).
    let signals = Signals::install()?;
    let running = start(config).await?;
    let reloader = reload::Reloader::new(&running, path, logging).await;
    running.serve_until_stopped(signals, Some(reloader)).await;
    Ok(())
}

/// A running proxy.
#[derive(Debug)]
pub struct Running {
    config: Config,
    proxy_addr: Option<SocketAddr>,
    admin_addr: Option<SocketAddr>,
    admin: Arc<Admin>,
    proxy: Arc<Proxy>,
    /// `default`'s token manager.
    manager: Arc<TokenManager>,
    accounts: Arc<tokio::sync::Mutex<AccountSet>>,
    stop: watch::Sender<bool>,
    stop_admin: watch::Sender<bool>,
    proxy_task: JoinHandle<bool>,
    admin_task: Option<JoinHandle<()>>,
    stop_summary: watch::Sender<bool>,
    summary: JoinHandle<()>,
}

/// How often the log summarises the requests (at `info`, when there were any).
const SUMMARY_EVERY: Duration = Duration::from_secs(60);

/// Logs, every `every` and once more on the way out, a summary line of the requests
/// finished since the last one (none when there were none): what a sidecar's log can afford
/// where a line per request (`log.requests`) is too much.
async fn summarize(
    metrics: Arc<Metrics>,
    every: Duration,
    stopped: impl std::future::Future<Output = ()>,
) {
    let mut stopped = std::pin::pin!(stopped);
    let mut before = metrics.totals();
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        let last = tokio::select! {
            () = &mut stopped => true,
            _ = tick.tick() => false,
        };
        let now = metrics.totals();
        let done = now.since(&before);
        if done.requests() > 0 {
            let seconds = every.as_secs();
            if last {
                tracing::info!("requests since the last summary: {}", done.summary());
            } else {
                tracing::info!("requests in the last {seconds} s: {}", done.summary());
            }
        }
        if last {
            return;
        }
        before = now;
    }
}

/// Binds the listeners and starts every task; `tokens` holds every account's, `default`
/// first.
async fn launch(tokens: Vec<Tokens>) -> Result<Running, Error> {
    let Some(first) = tokens.first() else {
        return Err(Error::Failed("no account to serve".to_owned()));
    };
    let config = &first.config.clone();
    let manager = first.manager.clone();
    let listener = listen::bind_proxy(&config.server.listen).await?;
    let admin_listener = match config.server.admin_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|source| Error::Bind {
                    key: "server.admin_listen",
                    addr: addr.to_string(),
                    source,
                })?,
        ),
        None => None,
    };
    let proxy_addr = listener.local_addr();
    let admin_addr = admin_listener.as_ref().and_then(|l| l.local_addr().ok());
    tracing::info!(addr = %listener.describe(), upstream = %crate::config::origin(&config.upstream.url), "proxy listening");
    if let Some(addr) = admin_addr {
        tracing::info!(addr = %addr, "admin listening");
    }

    // After the listeners: a start that fails leaves no refresher behind.
    let metrics = Arc::new(Metrics::new());
    let (stop, stop_rx) = watch::channel(false);
    let accounts = AccountSet::start(tokens, metrics.clone(), stop_rx.clone())?;
    let proxy = Arc::new(Proxy::new(config, accounts.table(), metrics.clone()));
    let admin = Arc::new(Admin::new(proxy.clone(), metrics.clone()));
    let (stop_admin, stop_admin_rx) = watch::channel(false);
    // The last summary comes once in-flight requests have drained ([`Running::finish`]), so
    // that it counts them, and before the process ends.
    let (stop_summary, stop_summary_rx) = watch::channel(false);
    let summary = tokio::spawn(summarize(
        metrics.clone(),
        SUMMARY_EVERY,
        server::stopped(stop_summary_rx),
    ));
    let settings = ConnSettings {
        max_connections: config.limits.max_connections,
        max_header_bytes: config.limits.max_header_bytes,
        header_read_timeout: config.limits.header_read_timeout,
    };
    let proxy_task = tokio::spawn(server::serve(
        listener,
        proxy.clone(),
        settings,
        stop_rx,
        config.server.shutdown_grace,
    ));
    let admin_task =
        admin_listener.map(|l| tokio::spawn(admin::serve(l, admin.clone(), stop_admin_rx)));
    Ok(Running {
        config: config.clone(),
        proxy_addr,
        admin_addr,
        admin,
        proxy,
        manager,
        accounts: Arc::new(tokio::sync::Mutex::new(accounts)),
        stop,
        stop_admin,
        proxy_task,
        admin_task,
        stop_summary,
        summary,
    })
}

// === impl Running ===

impl Running {
    /// The effective configuration it runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The proxy's TCP address (`None` on a Unix socket).
    pub fn proxy_addr(&self) -> Option<SocketAddr> {
        self.proxy_addr
    }

    /// The admin listener's address, when enabled.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// The forwarding service (its guard is replaced on reload).
    pub fn proxy(&self) -> &Arc<Proxy> {
        &self.proxy
    }

    /// `default`'s token manager.
    pub fn manager(&self) -> &Arc<TokenManager> {
        &self.manager
    }

    /// Every running account (a reload adds and removes some).
    pub fn accounts(&self) -> &Arc<tokio::sync::Mutex<AccountSet>> {
        &self.accounts
    }

    /// Readiness turns 503 and the proxy stops accepting; in-flight requests go on.
    pub fn begin_shutdown(&self) {
        self.admin.begin_drain();
        let _ = self.stop.send(true);
    }

    /// Waits for in-flight requests (at most `server.shutdown_grace`), then stops the
    /// refresher and the admin listener. Returns whether draining finished in time.
    pub async fn finish(self) -> bool {
        self.begin_shutdown();
        let drained = self.proxy_task.await.unwrap_or(false);
        let _ = self.stop_summary.send(true);
        let _ = self.summary.await;
        self.accounts.lock().await.finish().await;
        let _ = self.stop_admin.send(true);
        if let Some(task) = self.admin_task {
            let _ = task.await;
        }
        drained
    }
}
