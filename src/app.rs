//! Wiring: from a validated [`Config`] and a [`TokenManager`] to running tasks.
//!
//! [`start`] binds the listeners (so tests and benches can ask for port 0 and read the
//! addresses back), spawns the background refresher, the proxy server and the admin
//! server, and returns a [`Running`] handle. Shutdown is two-step, as a sidecar needs:
//! [`Running::begin_shutdown`] turns `/readyz` to 503 and stops accepting; [`Running::finish`]
//! waits for in-flight requests (at most `server.shutdown_grace`) and stops the rest.

pub mod reload;
pub mod wiring;

pub use wiring::{
    WiringError, apply_stored_login, credentials, describe_accounts, effective_config,
    oauth_client, open_store, token_manager,
};

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::admin::{self, Admin};
use crate::config::{Config, Listen};
use crate::metrics::Metrics;
use crate::proxy::Proxy;
use crate::proxy::route::{RouteError, Routes};
use crate::server::{self, ConnSettings, Listener};
use crate::token::TokenManager;

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
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

/// A running proxy.
#[derive(Debug)]
pub struct Running {
    proxy_addr: Option<SocketAddr>,
    admin_addr: Option<SocketAddr>,
    admin: Arc<Admin>,
    proxy: Arc<Proxy>,
    manager: Arc<TokenManager>,
    stop: watch::Sender<bool>,
    stop_admin: watch::Sender<bool>,
    proxy_task: JoinHandle<bool>,
    admin_task: Option<JoinHandle<()>>,
    refresher: JoinHandle<()>,
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

/// Binds the listeners and starts every task.
///
/// # Errors
/// [`StartupError`] when a listener cannot be bound or the upstream client cannot be built.
pub async fn start(config: &Config, manager: Arc<TokenManager>) -> Result<Running, StartupError> {
    let routes = Routes::new(config)?;
    let metrics = Arc::new(Metrics::new(manager.clone(), &routes.labels()));
    let proxy = Arc::new(Proxy::new(config, manager.clone(), routes, metrics.clone()));
    let admin = Arc::new(Admin::new(manager.clone(), metrics.clone()));

    let listener = bind_proxy(&config.server.listen).await?;
    let admin_listener = match config.server.admin_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|source| StartupError::Bind {
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

    let (stop, stop_rx) = watch::channel(false);
    let (stop_admin, stop_admin_rx) = watch::channel(false);
    let refresher = tokio::spawn(manager.clone().run(server::stopped(stop_rx.clone())));
    tokio::spawn(summarize(
        metrics.clone(),
        SUMMARY_EVERY,
        server::stopped(stop_rx.clone()),
    ));
    let settings = ConnSettings {
        max_connections: config.limits.max_connections,
        max_header_bytes: config.limits.max_header_bytes,
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
        proxy_addr,
        admin_addr,
        admin,
        proxy,
        manager,
        stop,
        stop_admin,
        proxy_task,
        admin_task,
        refresher,
    })
}

// === impl Running ===

impl Running {
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

    /// The token manager.
    pub fn manager(&self) -> &Arc<TokenManager> {
        &self.manager
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
        let _ = self.refresher.await;
        let _ = self.stop_admin.send(true);
        if let Some(task) = self.admin_task {
            let _ = task.await;
        }
        drained
    }
}

/// The accept queue of the proxy's TCP listener. tokio's `TcpListener::bind` asks for 1,024:
/// a batch job opening 2,000 connections at once overflowed it (the load bench's `wan` part
/// counted ~2,300 dropped SYNs, each a client waiting a second to retry). The kernel caps it
/// at `net.core.somaxconn` (4,096 on current Linux).
const ACCEPT_BACKLOG: u32 = 4096;

/// Binds `addr` as tokio's `TcpListener::bind` does (`SO_REUSEADDR` on Unix), with a deeper
/// accept queue.
fn listen_tcp(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(ACCEPT_BACKLOG)
}

async fn bind_proxy(listen: &Listen) -> Result<Listener, StartupError> {
    match listen {
        Listen::Tcp(addr) => {
            listen_tcp(*addr)
                .map(Listener::Tcp)
                .map_err(|source| StartupError::Bind {
                    key: "server.listen",
                    addr: addr.to_string(),
                    source,
                })
        }
        Listen::Unix(path) => {
            let bind_error = |source| StartupError::Bind {
                key: "server.listen",
                addr: format!("unix:{}", path.display()),
                source,
            };
            remove_stale_socket(path).map_err(bind_error)?;
            let listener = UnixListener::bind(path).map_err(bind_error)?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
                .map_err(bind_error)?;
            Ok(Listener::Unix(listener, path.clone()))
        }
    }
}

/// Removes a socket file left by a process that is gone; refuses one that still answers.
fn remove_stale_socket(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
        Ok(meta) if !meta.file_type().is_socket() => Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "a file that is not a socket is in the way",
        )),
        Ok(_) => match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                "another process is listening on this socket",
            )),
            Err(_) => std::fs::remove_file(path),
        },
    }
}
