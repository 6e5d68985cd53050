//! Accept loops and connection serving, with a connection limit and graceful drain.
//!
//! One task per connection, served by hyper-util's auto builder: HTTP/1.1 with keep-alive,
//! and HTTP/2 cleartext for clients that open with the HTTP/2 preface (prior knowledge, as
//! `curl --http2-prior-knowledge` sends). Each connection is served by its own service,
//! [`Proxy::connection`], which keeps the connection's upstream connections for its
//! requests, and gets a span, [`telemetry::CONNECTION_SPAN`] at `debug`, with the client's
//! address ([`telemetry::CLIENT_ADDR`], TCP only) and the protocol its first request came in
//! ([`telemetry::HTTP_PROTOCOL`]: `http1` or `h2`): every request's span is its child. A
//! header read timeout bounds slow-loris clients and idle keep-alive connections. At most
//! `limits.max_connections` connections are served at once: the accept loop waits for a
//! slot, so further clients queue in the kernel's backlog until one closes. On shutdown the
//! loop stops accepting, and in-flight requests get `server.shutdown_grace` to finish.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{Semaphore, watch};

use crate::proxy::Proxy;
use crate::telemetry;

/// How long a client may take to send request headers, and how long an idle keep-alive
/// connection is kept.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// A bound listener.
#[derive(Debug)]
pub enum Listener {
    /// TCP.
    Tcp(TcpListener),
    /// A Unix domain socket, removed when dropped.
    Unix(UnixListener, PathBuf),
}

/// Connection-level settings.
#[derive(Clone, Debug)]
pub struct ConnSettings {
    /// `limits.max_connections`.
    pub max_connections: usize,
    /// `limits.max_header_bytes`: the HTTP/1 read buffer and HTTP/2 header list limit.
    pub max_header_bytes: usize,
}

// === impl Listener ===

impl Listener {
    /// The TCP address, if any.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Listener::Tcp(l) => l.local_addr().ok(),
            Listener::Unix(..) => None,
        }
    }

    /// Where it listens, for logs.
    pub fn describe(&self) -> String {
        match self {
            Listener::Tcp(l) => l
                .local_addr()
                .map_or_else(|_| "?".to_owned(), |a| a.to_string()),
            Listener::Unix(_, path) => format!("unix:{}", path.display()),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Serves the proxy on `listener` until `shutdown` turns true, then drains for at most
/// `grace`. Returns whether every connection finished in time.
pub async fn serve(
    listener: Listener,
    proxy: Arc<Proxy>,
    settings: ConnSettings,
    mut shutdown: watch::Receiver<bool>,
    grace: Duration,
) -> bool {
    let builder = builder(&settings);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(settings.max_connections.max(1)));
    loop {
        let permit = tokio::select! {
            biased;
            _ = shutdown.wait_for(|stop| *stop) => break,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            biased;
            _ = shutdown.wait_for(|stop| *stop) => break,
            accepted = accept(&listener) => accepted,
        };
        let Some((io, client)) = accepted else {
            continue;
        };
        let span = tracing::debug_span!(
            telemetry::CONNECTION_SPAN,
            { telemetry::CLIENT_ADDR } = client.map(tracing::field::display),
            { telemetry::HTTP_PROTOCOL } = tracing::field::Empty,
        );
        let service = proxy.connection(span.clone());
        let connection = builder
            .serve_connection(TokioIo::new(io), service)
            .into_owned();
        let watched = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = watched.await {
                tracing::debug!(parent: &span, error = %error, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    drain(graceful, grace).await
}

/// Waits up to `grace` for watched connections to finish their in-flight requests.
pub async fn drain(graceful: GracefulShutdown, grace: Duration) -> bool {
    match tokio::time::timeout(grace, graceful.shutdown()).await {
        Ok(()) => true,
        Err(_) => {
            tracing::warn!(
                grace_s = grace.as_secs_f32(),
                "graceful shutdown did not complete in time; closing remaining connections"
            );
            false
        }
    }
}

/// The connection builder: HTTP/1.1 keep-alive plus HTTP/2 prior knowledge.
///
/// HTTP/1 connections support half-closes: a client that shuts down its write side after
/// sending a request (`nc -N`, `shutdown(SHUT_WR)`) still gets the answer. Without it hyper
/// closes the connection as soon as it reads the end of the stream, and a request still
/// waiting for the upstream is answered to nobody.
pub fn builder(settings: &ConnSettings) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true)
        .half_close(true)
        .max_buf_size(settings.max_header_bytes.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(settings.max_header_bytes).unwrap_or(u32::MAX))
        .keep_alive_interval(Some(Duration::from_secs(60)));
    builder
}

/// Accepts one connection, with the client's address when it came over TCP; transient
/// accept errors (too many open files) back off instead of spinning.
async fn accept(listener: &Listener) -> Option<(Box<dyn Io>, Option<SocketAddr>)> {
    let result: std::io::Result<(Box<dyn Io>, Option<SocketAddr>)> = match listener {
        Listener::Tcp(l) => l.accept().await.map(|(stream, client)| {
            let _ = stream.set_nodelay(true);
            (Box::new(stream) as Box<dyn Io>, Some(client))
        }),
        Listener::Unix(l, _) => l
            .accept()
            .await
            .map(|(stream, _)| (Box::new(stream) as Box<dyn Io>, None)),
    };
    match result {
        Ok(accepted) => Some(accepted),
        Err(error) => {
            tracing::warn!(error = %error, "accept failed; retrying shortly");
            tokio::time::sleep(Duration::from_millis(50)).await;
            None
        }
    }
}

/// A client connection of any kind.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// Resolves when `rx` turns true (or its sender is gone).
pub async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}
